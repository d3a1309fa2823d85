"""A bank's state from its members' latest readings: one pure function, `bank_state`.

Rules (issue 20; docs/ecosystem.md §8 for how Victron's GX and its aggregators do it):
- a member's values count only when its latest reading is fresh (heard within `stale_after_s`),
  decoded and not suspect or implausible; a partial frame counts for the values it has;
- lowest/highest cell and temperatures are taken over the batteries heard (as the GX
  aggregators drop stale batteries); the verdict says when that is not every battery;
- allowed to charge/discharge: every member that reports it allows; one that does not blocks
  the bank (Lithium Battery Smart manual §3.1: the BMS cables are daisy-chained, so any battery's
  signal acts for all); unknown (None) when a member that could block is not heard;
- never an all-clear it does not know: any member not heard, stale, keyless, unreadable,
  partial or suspect, or any problem in the declaration makes the verdict DEGRADED (UNKNOWN when
  no member is heard at all), naming the member. A known alarm is still ALARM.
"""

from __future__ import annotations

import enum
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from victron_ble_bms.protocol import (
    Code,
    LynxSmartBmsRecord,
    Record,
    Severity,
    SmartBmsRecord,
    SmartLithiumRecord,
)
from victron_ble_bms.protocol.enums import CellBound, TriState
from victron_ble_bms.sources.readings import KeyStatus, Reading

from .spec import BankSpec, Layout, Member

# Inter-battery imbalance (issue 20). The manual gives no figure for a difference between
# batteries; it says only that the batteries' balancers "correct small differences in state of
# charge from one battery to another" and that a large one, as between new batteries, is not
# corrected (Lithium Battery Smart manual §4.1.4, "Charge batteries before use"). Inferred:
# 25 mV per cell (0.1 V per 12.8 V battery) from the bank's median — the manual's own figure
# for cells within one battery ("more than 0.1V voltage difference between the battery cells"
# is "Imbalance", §5.2.2) applied per battery; far above cabling losses in a parallel bank
# (about 20 mV at 20 A per battery through 1 mΩ) and the 0.01 V the voltage is sent in.
IMBALANCE_V_PER_CELL = 0.025
# Inferred: 10 percentage points of state of charge between members that each report one.
IMBALANCE_SOC_PCT = 10.0
IMBALANCE_REMEDY = (
    "Batteries at different states of charge are a different imbalance from cells within a "
    "battery, and the balancers only even out small differences between batteries: charge each "
    "battery fully on its own, then reconnect it (Lithium Battery Smart manual §4.1.4). A bank "
    "with batteries in series needs a full charge every week (§5.2.2). In a parallel bank a "
    "battery whose voltage differs while connected points to its fuse or cables: they should "
    "give each battery an equal current path (§4.3.1)."
)


class Verdict(enum.Enum):
    OK = "ok"  # every member heard, no code, nothing blocking, no imbalance
    WARNING = "warning"  # every member heard; a warning code, a blocking member or imbalance
    DEGRADED = "degraded"  # some member not fully known (or a declaration problem)
    UNKNOWN = "unknown"  # no member heard
    ALARM = "alarm"  # a known alarm or error code, whatever else is unknown


class MemberStatus(enum.Enum):
    OK = "ok"
    PARTIAL = "partial"  # a short frame: some values unknown
    SILENT = "not heard"
    STALE = "stale"
    NO_KEY = "no key"
    KEY_MISMATCH = "key mismatch"
    UNDECODABLE = "undecodable"
    SUSPECT = "suspect"
    UNRESOLVED = "not in keys file"  # its name matches no device

    @property
    def usable(self) -> bool:
        return self in (MemberStatus.OK, MemberStatus.PARTIAL)


@dataclass(frozen=True, slots=True)
class MemberState:
    member: Member
    status: MemberStatus
    detail: str = ""  # why it is not OK, one line
    role: str | None = None  # battery | bms | monitor | other; None when not read
    age_s: float | None = None  # since its latest reading
    voltage_v: float | None = None
    cell_count: int | None = None
    cell_min_v: float | None = None
    cell_max_v: float | None = None
    temperature_c: float | None = None
    soc_pct: float | None = None
    deviation_v: float | None = None  # from the bank's median battery (scaled by cells)
    soc_deviation_pct: float | None = None
    imbalance: bool | None = None  # past IMBALANCE_V_PER_CELL / IMBALANCE_SOC_PCT
    allowed_to_charge: bool | None = None
    allowed_to_discharge: bool | None = None
    codes: tuple[Code, ...] | None = None  # None = unknown


@dataclass(frozen=True, slots=True)
class CellExtreme:
    voltage_v: float
    member: str
    cell: int  # 1-based, as VictronConnect numbers them
    bound: CellBound | None = None  # beyond the field's range (docs/protocol.md §2.1)

    @property
    def at(self) -> str:
        return f"{self.member}: cell {self.cell}"


@dataclass(frozen=True, slots=True)
class MemberCode:
    member: str
    code: Code


@dataclass(frozen=True, slots=True)
class BankState:
    name: str
    layout: Layout
    ts: float  # `now`
    members: tuple[MemberState, ...]
    verdict: Verdict
    reason: str
    problems: tuple[str, ...]  # every reason line: alarms, then what is unknown, then warnings
    voltage_v: float | None = None
    voltage_spread_v: float | None = None  # parallel: members; series-parallel: strings
    string_voltages_v: tuple[float | None, ...] = ()  # series layouts: each string's sum
    cell_min: CellExtreme | None = None
    cell_max: CellExtreme | None = None
    temperature_min: tuple[float, str] | None = None  # (°C, member)
    temperature_max: tuple[float, str] | None = None
    allowed_to_charge: bool | None = None
    allowed_to_discharge: bool | None = None
    blocking_charge: tuple[str, ...] | None = None  # None when unknown
    blocking_discharge: tuple[str, ...] | None = None
    codes: tuple[MemberCode, ...] = ()  # the known ones, worst first
    codes_complete: bool = False  # False: some member's codes are unknown
    imbalance: tuple[str, ...] | None = None  # members past the threshold; None unknown
    soc_pct: float | None = None
    current_a: float | None = None
    consumed_ah: float | None = None
    ttg_min: int | None = None
    soc_from: str | None = None  # the member they come from

    @property
    def members_expected(self) -> int:
        return len(self.members)

    @property
    def members_heard(self) -> int:
        return sum(1 for m in self.members if m.status.usable)

    @property
    def members_stale(self) -> int:
        return sum(1 for m in self.members if m.status is MemberStatus.STALE)

    @property
    def cell_spread_mv(self) -> int | None:
        if self.cell_min is None or self.cell_max is None:
            return None
        return round((self.cell_max.voltage_v - self.cell_min.voltage_v) * 1000)

    @property
    def worst_code(self) -> str | None:
        """The worst known code's id; "none" only when every member's codes are known."""
        if self.codes:
            return self.codes[0].code.id
        return "none" if self.codes_complete else None

    @property
    def problem(self) -> bool | None:
        """True: a known alarm, warning, blocking member or imbalance. False only for OK.
        None (unknown) otherwise — never "no problem" while a member is unknown."""
        if self.verdict in (Verdict.ALARM, Verdict.WARNING):
            return True
        if self.verdict is Verdict.OK:
            return False
        return True if self._known_warnings else None

    @property
    def _known_warnings(self) -> bool:
        return bool(self.codes or self.blocking_charge or self.blocking_discharge or self.imbalance)


# --- reading one member ---------------------------------------------------------------------


def _role(record: Record) -> str:
    if isinstance(record, SmartLithiumRecord):
        return "battery"
    if isinstance(record, LynxSmartBmsRecord | SmartBmsRecord):
        return "bms"
    if hasattr(record, "soc_pct"):
        return "monitor"
    return "other"


def _allowed(record: Record, name: str) -> tuple[bool, bool | None]:
    """(does this record report the flag, its value: True/False/None unknown)."""
    if isinstance(record, SmartLithiumRecord):
        return True, getattr(record, name)
    if isinstance(record, LynxSmartBmsRecord):
        state = record.io.get(name)
        return True, {TriState.YES: True, TriState.NO: False}.get(state) if state else None
    return False, None


def _codes(record: Record) -> tuple[Code, ...] | None:
    try:
        codes: tuple[Code, ...] | None = record.codes
    except Exception:  # noqa: BLE001 - a record that cannot tell its codes: unknown, not clear
        return None
    return codes


def _number(record: Record, name: str) -> float | None:
    value = getattr(record, name, None)
    return float(value) if isinstance(value, int | float) else None


def _cells(record: Record) -> list[tuple[int, float, CellBound | None]]:
    """(1-based cell, volts, bound) of each reported cell."""
    if not isinstance(record, SmartLithiumRecord):
        return []
    out: list[tuple[int, float, CellBound | None]] = []
    for i, v in enumerate(record.cell_voltages_v or (), 1):
        if isinstance(v, CellBound):
            out.append((i, v.bound_v, v))
        elif v is not None:
            out.append((i, float(v), None))
    return out


@dataclass(frozen=True, slots=True)
class _Facts:
    """What one reading says about its member, judged without the clock (so computed once per
    reading, not at every bank evaluation: a bank is evaluated for each member's reading)."""

    status: MemberStatus
    detail: str
    record: Record | None = None
    role: str | None = None
    voltage_v: float | None = None
    cells: tuple[tuple[int, float, CellBound | None], ...] = ()
    cell_count: int | None = None
    temperature_c: float | None = None
    soc_pct: float | None = None
    charge: tuple[bool, bool | None] = (False, None)  # (reports the flag, its value)
    discharge: tuple[bool, bool | None] = (False, None)
    codes: tuple[Code, ...] | None = None


def _judge(reading: Reading) -> _Facts:
    status = reading.status
    if status is KeyStatus.NO_KEY:
        return _Facts(MemberStatus.NO_KEY, "no key: heard but cannot be read")
    if status is KeyStatus.MISMATCH:
        return _Facts(MemberStatus.KEY_MISMATCH, "key mismatch (wrong key in the keys file?)")
    record = reading.record
    if status is not KeyStatus.OK or record is None:
        return _Facts(MemberStatus.UNDECODABLE, "undecodable")
    if reading.suspect:
        return _Facts(MemberStatus.SUSPECT, f"suspect ({reading.suspect})")
    try:
        implausible = record.implausible
    except Exception:  # noqa: BLE001 - cannot judge: not trusted either
        implausible = ("values cannot be checked",)
    if implausible:
        return _Facts(MemberStatus.SUSPECT, f"implausible ({implausible[0]})")
    partial = record.partial
    cells = tuple(_cells(record))
    lithium = isinstance(record, SmartLithiumRecord)
    return _Facts(
        MemberStatus.PARTIAL if partial else MemberStatus.OK,
        "partial frame: some values unknown" if partial else "",
        record,
        _role(record),
        _number(record, "battery_voltage_v"),
        cells,
        (len(cells) or None) if lithium else None,
        _number(record, "battery_temperature_c") if lithium else None,
        _number(record, "soc_pct"),
        _allowed(record, "allowed_to_charge"),
        _allowed(record, "allowed_to_discharge"),
        _codes(record),
    )


# Memo of `_judge` by reading identity (readings are immutable; the entry holds the reading,
# so its id cannot be reused while it is here). Bounded: cleared when full.
_FACTS: dict[int, tuple[Reading, _Facts]] = {}
_FACTS_MAX = 4096


def _facts(reading: Reading) -> _Facts:
    hit = _FACTS.get(id(reading))
    if hit is not None and hit[0] is reading:
        return hit[1]
    facts = _judge(reading)
    if len(_FACTS) >= _FACTS_MAX:
        _FACTS.clear()
    _FACTS[id(reading)] = (reading, facts)
    return facts


# --- the bank -------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


@dataclass(slots=True)
class _Row:
    """A member while the bank is worked out (MemberState's fields, mutable, and its record)."""

    member: Member
    status: MemberStatus
    detail: str
    age_s: float | None
    record: Record | None = None
    facts: _Facts | None = None
    role: str | None = None
    voltage_v: float | None = None
    cell_count: int | None = None
    cell_min_v: float | None = None
    cell_max_v: float | None = None
    temperature_c: float | None = None
    soc_pct: float | None = None
    deviation_v: float | None = None
    soc_deviation_pct: float | None = None
    imbalance: bool | None = None
    allowed_to_charge: bool | None = None
    allowed_to_discharge: bool | None = None
    codes: tuple[Code, ...] | None = None

    @property
    def name(self) -> str:
        return self.member.name

    def state(self) -> MemberState:
        return MemberState(
            self.member,
            self.status,
            self.detail,
            self.role,
            self.age_s,
            self.voltage_v,
            self.cell_count,
            self.cell_min_v,
            self.cell_max_v,
            self.temperature_c,
            self.soc_pct,
            self.deviation_v,
            self.soc_deviation_pct,
            self.imbalance,
            self.allowed_to_charge,
            self.allowed_to_discharge,
            self.codes,
        )


def _row(member: Member, readings: Mapping[str, Reading], now: float, stale_s: float) -> _Row:
    if member.address is None:
        return _Row(member, MemberStatus.UNRESOLVED, "names no device in the keys file", None)
    reading = readings.get(member.address)
    if reading is None:
        return _Row(member, MemberStatus.SILENT, "not heard", None)
    age = max(0.0, now - reading.advertisement.ts)
    if age > stale_s:
        return _Row(member, MemberStatus.STALE, f"stale (last heard {age:.0f} s ago)", age)
    f = _facts(reading)
    row = _Row(member, f.status, f.detail, age)
    if f.record is None:
        return row
    row.record, row.facts = f.record, f
    row.role, row.voltage_v, row.cell_count = f.role, f.voltage_v, f.cell_count
    row.temperature_c, row.soc_pct, row.codes = f.temperature_c, f.soc_pct, f.codes
    if f.cells:
        row.cell_min_v = min(v for _, v, _ in f.cells)
        row.cell_max_v = max(v for _, v, _ in f.cells)
    row.allowed_to_charge = f.charge[1]
    row.allowed_to_discharge = f.discharge[1]
    return row


def bank_state(
    spec: BankSpec, readings: Mapping[str, Reading], now: float, stale_after_s: float
) -> BankState:
    """The bank's state from the latest reading of each address (normalised addresses; any
    reading, good or not). `now` is on the readings' clock (capture time when replaying)."""
    rows = [_row(m, readings, now, stale_after_s) for m in spec.members]
    degraded: list[str] = list(spec.problems)
    degraded.extend(f"{r.name}: {r.detail}" for r in rows if r.status is not MemberStatus.OK)
    batteries = [r for r in rows if r.role == "battery"]
    # Series layouts: a mix of 12.8 V and 25.6 V batteries (issue 20, "Bad input").
    if spec.layout is not Layout.PARALLEL:
        if len({r.cell_count for r in batteries if r.cell_count}) > 1:
            listed = ", ".join(f"{r.name} {r.cell_count}" for r in batteries)
            degraded.append(
                f"a series bank whose batteries report different cell counts ({listed})"
            )
    warnings: list[str] = []
    imbalance, imbalance_known = _imbalance(spec, rows, batteries, warnings)
    voltage, spread, strings = _voltages(spec, rows)

    cell_min = cell_max = None
    for r in batteries:
        assert r.facts is not None  # noqa: S101 - batteries were read
        for cell, v, bound in r.facts.cells:
            if cell_min is None or v < cell_min.voltage_v:
                cell_min = CellExtreme(v, r.name, cell, bound)
            if cell_max is None or v > cell_max.voltage_v:
                cell_max = CellExtreme(v, r.name, cell, bound)
    temps = [(r.temperature_c, r.name) for r in batteries if r.temperature_c is not None]
    t_min = min(temps, key=lambda t: t[0]) if temps else None
    t_max = max(temps, key=lambda t: t[0]) if temps else None

    charge = _blocking(rows, "allowed_to_charge", "charging", warnings)
    discharge = _blocking(rows, "allowed_to_discharge", "discharging", warnings)

    codes: list[MemberCode] = []
    codes_complete = True
    for r in rows:
        if r.record is None or r.codes is None:
            codes_complete = False
        else:
            codes.extend(MemberCode(r.name, c) for c in r.codes)
    codes.sort(key=lambda mc: -mc.code.severity)  # stable: member order within a severity
    alarms = [f"{mc.member}: {mc.code.id} {mc.code.title}" for mc in codes if _is_alarm(mc.code)]
    warnings[:0] = [
        f"{mc.member}: {mc.code.id} {mc.code.title}" for mc in codes if not _is_alarm(mc.code)
    ]

    heard = sum(1 for r in rows if r.status.usable)
    if alarms:
        verdict = Verdict.ALARM
    elif heard == 0:
        verdict = Verdict.UNKNOWN
    elif degraded:
        verdict = Verdict.DEGRADED
    elif warnings:
        verdict = Verdict.WARNING
    else:
        verdict = Verdict.OK
    problems = (*alarms, *degraded, *warnings)
    if verdict is Verdict.OK:
        reason = f"all {len(rows)} members heard: no codes, nothing blocking, no imbalance"
    elif verdict is Verdict.UNKNOWN:
        reason = "; ".join(("no member heard", *problems))
    else:
        reason = "; ".join(problems)

    source = _soc_source(spec, rows)
    record = None if source is None else source.record
    ttg = getattr(record, "ttg_min", None)
    return BankState(
        name=spec.name,
        layout=spec.layout,
        ts=now,
        members=tuple(r.state() for r in rows),
        verdict=verdict,
        reason=reason,
        problems=problems,
        voltage_v=voltage,
        voltage_spread_v=spread,
        string_voltages_v=strings,
        cell_min=cell_min,
        cell_max=cell_max,
        temperature_min=t_min,
        temperature_max=t_max,
        allowed_to_charge=charge[0],
        allowed_to_discharge=discharge[0],
        blocking_charge=charge[1],
        blocking_discharge=discharge[1],
        codes=tuple(codes),
        codes_complete=codes_complete,
        imbalance=tuple(imbalance) if imbalance or imbalance_known else None,
        soc_pct=None if record is None else _number(record, "soc_pct"),
        current_a=None if record is None else _number(record, "battery_current_a"),
        consumed_ah=None if record is None else _number(record, "consumed_ah"),
        ttg_min=ttg if isinstance(ttg, int) else None,
        soc_from=None if source is None else source.name,
    )


def _is_alarm(code: Code) -> bool:
    return code.severity >= Severity.ALARM


def _imbalance(
    spec: BankSpec, rows: list[_Row], batteries: list[_Row], warnings: list[str]
) -> tuple[list[str], bool]:
    """Each battery's deviation from the bank's median (voltage per cell, scaled back to the
    battery; and SOC between members that each report one). (flagged members, known?)"""
    flagged: list[str] = []
    per_cell = {
        id(r): (r, r.voltage_v / r.cell_count)
        for r in batteries
        if r.voltage_v is not None and r.cell_count
    }
    if len(per_cell) >= 2:
        mid = _median([pc for _, pc in per_cell.values()])
        for r, pc in per_cell.values():
            assert r.cell_count is not None  # noqa: S101 - filtered above
            r.deviation_v = round((pc - mid) * r.cell_count, 3)
            r.imbalance = abs(pc - mid) > IMBALANCE_V_PER_CELL
            if r.imbalance:
                flagged.append(r.name)
                warnings.append(
                    f"{r.name}: inter-battery imbalance, {r.deviation_v:+.2f} V from the bank"
                )
    source = _soc_source(spec, rows)
    socs = [(r, r.soc_pct) for r in rows if r.soc_pct is not None and r is not source]
    if len(socs) >= 2:
        mid = _median([soc for _, soc in socs])
        for r, soc in socs:
            r.soc_deviation_pct = round(soc - mid, 1)
            off = abs(soc - mid) > IMBALANCE_SOC_PCT
            r.imbalance = bool(r.imbalance) or off
            if off:
                if r.name not in flagged:
                    flagged.append(r.name)
                warnings.append(
                    f"{r.name}: inter-battery imbalance, state of charge "
                    f"{soc - mid:+.0f} points from the bank"
                )
    return flagged, len(per_cell) >= 2 or len(socs) >= 2


def _blocking(
    rows: list[_Row], flag: str, verb: str, warnings: list[str]
) -> tuple[bool | None, tuple[str, ...] | None]:
    """(allowed, blocking members): False with the members that do not allow; True when every
    member that reports the flag allows and every member was read; else (None, None)."""
    blocking: list[str] = []
    unknown, reporters = False, 0
    for r in rows:
        if r.facts is None:
            unknown = True  # not read: it might be the one that blocks
            continue
        reports, value = r.facts.charge if flag == "allowed_to_charge" else r.facts.discharge
        if not reports:
            continue
        reporters += 1
        if value is None:
            unknown = True
        elif not value:
            blocking.append(r.name)
    if blocking:
        warnings.append(f"{', '.join(blocking)}: not allowed {verb}, blocks the bank")
        return False, tuple(blocking)
    if unknown or not reporters:
        return None, None
    return True, ()


def _soc_source(spec: BankSpec, rows: list[_Row]) -> _Row | None:
    """The declared soc source's row; else the first member read whose record carries SOC."""
    if spec.soc_source is not None:
        return next((r for r in rows if r.member == spec.soc_source), None)
    return next((r for r in rows if r.record is not None and r.soc_pct is not None), None)


def _voltages(
    spec: BankSpec, rows: list[_Row]
) -> tuple[float | None, float | None, tuple[float | None, ...]]:
    """(bank voltage, spread, each string's sum) — parallel: the batteries' voltages and their
    spread; series: the sum of the string; series-parallel: each string's sum and their spread."""
    if spec.layout is Layout.PARALLEL:
        volts = [r.voltage_v for r in rows if r.role == "battery" and r.voltage_v is not None]
        if not volts:
            return None, None, ()
        return round(statistics.fmean(volts), 3), round(max(volts) - min(volts), 3), ()
    if spec.layout is Layout.SERIES:
        # the batteries, and any member not read (it may be one); known non-batteries are not
        groups = [[r for r in rows if r.role in ("battery", None)]]
    else:
        by_member = {r.member: r for r in rows}
        groups = [[by_member[m] for m in s if m in by_member] for s in spec.strings]
    sums: list[float | None] = []
    for group in groups:
        values = [g.voltage_v for g in group]
        known_values = [v for v in values if v is not None]
        ok = bool(values) and len(known_values) == len(values)
        sums.append(round(sum(known_values), 3) if ok else None)
    if spec.layout is Layout.SERIES:
        return sums[0] if sums else None, None, tuple(sums)
    known = [s for s in sums if s is not None]
    if not known:
        return None, None, tuple(sums)
    return round(statistics.fmean(known), 3), round(max(known) - min(known), 3), tuple(sums)
