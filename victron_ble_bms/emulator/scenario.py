"""Scenarios: a declarative timeline (TOML) of loads, chargers, ambient temperature and faults.

A scenario file looks like this (every key optional unless noted; times in simulated seconds)::

    name = "deep-discharge"
    description = "…"
    demonstrates = "…"                # the manual behaviour it shows, with sections (--list)
    duration_s = 1800                 # default for `--duration`

    [initial]                         # state of each battery at t = 0
    soc_pct = 8.0                     # state of charge, %
    soc_jitter_pct = 0.0              # ± random per battery (seeded), for fleets
    battery_soc_pct = [30, 50, 70]    # or: each bank member's state of charge, in order
    cell_offsets_pct = [0, -0.6, 0, 0]  # per-cell SOC offsets (imbalance), % points
    cell_spread_pct = 0.0             # or: ± random per cell (seeded)
    temperature_c = 20.0              # default: the ambient temperature at t = 0
    balancer = "balanced"             # unknown | balanced | balancing | imbalance
    days_since_full_charge = 0

    [settings]                        # device settings; ranges from the manuals are checked
    atd_cell_v = 2.80                 # Lithium Battery Smart (manual §4.4.1)
    pre_alarm_cell_v = 3.10
    atc_min_temperature_c = 5
    temperature_offset_c = 0
    fuse = "100A"                     # Smart BMS fuse table (CL manual §3.4)
    charge_limit_v = 14.2             # Smart BMS battery charge limit, 13.0–15.3 V

    [bank]                            # the batteries behind a Smart BMS / Lynx Smart BMS
    battery = "lithium-12.8v-200ah"
    parallel = 1
    series = 1

    [[loads]]
    current_a = 40.0
    start_s = 0                       # default 0
    end_s = 600                       # default: never

    [[chargers]]
    kind = "mains"                    # solar | mains | alternator (required)
    current_a = 50.0                  # maximum current (alternator: its rating) (required)
    start_s = 420
    end_s = 7200
    absorption_v = 14.2               # per 12.8 V of battery (manual §4.4.2), scaled for 25.6 V
    float_v = 13.5
    absorption_s = 7200               # 2 h fixed absorption (manual §4.4.2)
    voltage_v = 14.4                  # alternator only: starter-battery voltage, engine running
    connection = "system"             # mains/solar behind a BMS: "system" = on the BMS's system
                                      # side (12/200 System+, Lynx after the contactor), or
                                      # "battery" = wired to the battery, switched by the BMS's
                                      # charge-disconnect output (12/200 manual §3.2.3)

    [[ambient]]                       # linear interpolation between points
    at_s = 0
    temperature_c = 20.0

    [[faults]]
    kind = "settings-lost"            # see FaultKind (required); "pin-change" is a one-off at
                                      # start_s: the device advertises with a new key from then
    start_s = 60
    end_s = 600                       # default: never

    [[devices]]                       # used when the command line names no --device
    type = "lithium-12.8v-100ah"
    count = 10

`load_scenario(name_or_path)` reads a bundled scenario by name or a file; errors are
`ScenarioError` naming the file and key.
"""

from __future__ import annotations

import enum
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from victron_ble_bms.protocol.enums import BalancerStatus

T = TypeVar("T")


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the file and key."""


class ChargerKind(enum.Enum):
    SOLAR = "solar"
    MAINS = "mains"
    ALTERNATOR = "alternator"


class Connection(enum.Enum):
    """Where a mains/solar charger is wired behind a BMS (12/200 manual §2.2, §3.2.3)."""

    SYSTEM = "system"  # 12/200 System+ port; Lynx: the system side, after the contactor
    BATTERY = "battery"  # straight to the battery, switched by the charge-disconnect output


class FaultKind(enum.Enum):
    """Faults a scenario can inject, and the code each makes the device show."""

    SETTINGS_LOST = "settings-lost"  # battery E-SL119 (manual §5.3)
    HARDWARE_FAILURE = "hardware-failure"  # battery E-SL24
    BALANCER_FAILURE = "balancer-failure"  # battery E-SL1
    COMMUNICATION_ERROR = "communication-error"  # battery E-SL2
    OVERLAPPED_VOLTAGE = "overlapped-voltage"  # battery E-SL9 (error bit 8, docs/protocol.md §4.2)
    BALANCER_UPDATE = "balancer-update"  # battery E-SL10 (error bit 9)
    DEFECTIVE_CELL = "defective-cell"  # battery: cell 1 leaks, drifts 0.1–0.2 V low (§6.1.2)
    UNCONTROLLED_CHARGER = "uncontrolled-charger"  # a charger ignoring ATC → A-SL9 (manual §5.3)
    UNCONTROLLED_LOAD = "uncontrolled-load"  # a load ignoring ATD (wired straight to battery)
    PIN_CHANGE = "pin-change"  # the device's PIN is changed: it advertises with a new key
    BMS_CABLE = "bms-cable"  # Smart BMS / Lynx E-B32
    SHORT_CIRCUIT = "short-circuit"  # Smart BMS 12/200 System+ A-A12
    CALIBRATION_FAILURE = "calibration-failure"  # Smart BMS E-B30
    CONFIGURATION_FAILURE = "configuration-failure"  # Smart BMS E-B31
    REFERENCE_VOLTAGE_FAILURE = "reference-voltage-failure"  # Smart BMS E-B33
    BMS_OVER_TEMPERATURE = "bms-over-temperature"  # Smart BMS A-B15 (internal temperature)
    REMOTE_OFF = "remote-off"  # Smart BMS alternator/System+ off; Lynx contactor open


BALANCER_NAMES = {s.name.lower(): s for s in BalancerStatus if s.name}


@dataclass(frozen=True, slots=True)
class InitialState:
    soc_pct: float = 60.0
    soc_jitter_pct: float = 0.0
    battery_soc_pct: tuple[float, ...] = ()
    cell_offsets_pct: tuple[float, ...] = ()
    cell_spread_pct: float = 0.0
    temperature_c: float | None = None
    balancer: BalancerStatus = BalancerStatus.BALANCED
    days_since_full_charge: float = 0.0


@dataclass(frozen=True, slots=True)
class LoadSpec:
    current_a: float
    start_s: float = 0.0
    end_s: float = math.inf

    def current(self, t: float) -> float:
        return self.current_a if self.start_s <= t < self.end_s else 0.0


@dataclass(frozen=True, slots=True)
class ChargerSpec:
    kind: ChargerKind
    current_a: float
    start_s: float = 0.0
    end_s: float = math.inf
    # Charge voltages per 12.8 V battery; manual §4.4.2 "charger settings": absorption 14.2 V,
    # 2 h fixed absorption, float 13.5 V (25.6 V batteries: double).
    absorption_v: float = 14.2
    float_v: float = 13.5
    absorption_s: float = 7200.0
    voltage_v: float = 14.4  # alternator: the starter-battery voltage while the engine runs
    connection: Connection = Connection.SYSTEM

    def available_a(self, t: float) -> float:
        """The current the source can deliver at time t (solar follows the sun)."""
        if not self.start_s <= t < self.end_s:
            return 0.0
        if self.kind is ChargerKind.SOLAR and math.isfinite(self.end_s):
            phase = (t - self.start_s) / (self.end_s - self.start_s)
            return self.current_a * math.sin(math.pi * phase)
        return self.current_a


@dataclass(frozen=True, slots=True)
class FaultSpec:
    kind: FaultKind
    start_s: float = 0.0
    end_s: float = math.inf


@dataclass(frozen=True, slots=True)
class BankSpec:
    battery: str = "lithium-12.8v-200ah"
    parallel: int = 1
    series: int = 1


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    type: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class Environment:
    """What the scenario says at one instant."""

    t: float
    load_a: float
    chargers: tuple[tuple[ChargerSpec, float], ...]  # (spec, available current)
    ambient_c: float
    faults: frozenset[FaultKind]
    starter_v: float  # starter battery / alternator port voltage


# Starter battery at rest, engine off (the public 0x0E sample shows 12.15 V; 12.6 V is a full
# lead-acid battery at rest). Only the alternator port reads it.
STARTER_REST_V = 12.6


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str = ""
    demonstrates: str = ""
    duration_s: float = 3600.0
    initial: InitialState = field(default_factory=InitialState)
    settings: Mapping[str, Any] = field(default_factory=dict)
    bank: BankSpec = field(default_factory=BankSpec)
    loads: tuple[LoadSpec, ...] = ()
    chargers: tuple[ChargerSpec, ...] = ()
    ambient: tuple[tuple[float, float], ...] = ((0.0, 20.0),)
    faults: tuple[FaultSpec, ...] = ()
    devices: tuple[DeviceEntry, ...] = ()
    source: str = ""

    def ambient_at(self, t: float) -> float:
        pts = self.ambient
        if t <= pts[0][0]:
            return pts[0][1]
        for (t0, c0), (t1, c1) in zip(pts, pts[1:], strict=False):
            if t < t1:
                return c0 + (c1 - c0) * (t - t0) / (t1 - t0)
        return pts[-1][1]

    def environment(self, t: float) -> Environment:
        chargers = tuple((c, c.available_a(t)) for c in self.chargers)
        starter = STARTER_REST_V
        for c, avail in chargers:
            if c.kind is ChargerKind.ALTERNATOR and avail > 0:
                starter = max(starter, c.voltage_v)
        return Environment(
            t=t,
            load_a=sum(ld.current(t) for ld in self.loads),
            chargers=chargers,
            ambient_c=self.ambient_at(t),
            faults=frozenset(f.kind for f in self.faults if f.start_s <= t < f.end_s),
            starter_v=starter,
        )


# -- loading and validation -------------------------------------------------------------------

BUNDLED = resources.files("victron_ble_bms.emulator") / "scenarios"


def bundled_names() -> list[str]:
    return sorted(p.name[:-5] for p in BUNDLED.iterdir() if p.name.endswith(".toml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A bundled scenario by name (`deep-discharge`), or a TOML file by path."""
    text_name = str(name_or_path)
    bundled = BUNDLED / f"{text_name}.toml"
    if "/" not in text_name and not text_name.endswith(".toml") and bundled.is_file():
        return parse_scenario(bundled.read_text(encoding="utf-8"), f"{text_name} (bundled)")
    path = Path(name_or_path)
    if not path.is_file():
        raise ScenarioError(
            f"{text_name}: no such scenario file, and not a bundled scenario "
            f"(bundled: {', '.join(bundled_names())})"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from exc
    return parse_scenario(text, str(path), default_name=path.stem)


def parse_scenario(text: str, source: str, *, default_name: str = "") -> Scenario:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from exc
    r = _Reader(source)
    r.only(doc, "", _TOP_KEYS)
    initial_doc = r.table(doc, "initial")
    r.only(initial_doc, "initial", _INITIAL_KEYS)
    initial = InitialState(
        soc_pct=r.number(initial_doc, "initial.soc_pct", 60.0, 0.0, 100.0),
        soc_jitter_pct=r.number(initial_doc, "initial.soc_jitter_pct", 0.0, 0.0, 50.0),
        battery_soc_pct=tuple(
            r.number({"v": v}, f"initial.battery_soc_pct[{i}]", 0.0, 0.0, 100.0, key="v")
            for i, v in enumerate(r.array(initial_doc, "initial.battery_soc_pct"))
        ),
        cell_offsets_pct=tuple(
            r.number({"v": v}, f"initial.cell_offsets_pct[{i}]", 0.0, -50.0, 50.0, key="v")
            for i, v in enumerate(r.array(initial_doc, "initial.cell_offsets_pct"))
        ),
        cell_spread_pct=r.number(initial_doc, "initial.cell_spread_pct", 0.0, 0.0, 20.0),
        temperature_c=r.optional_number(initial_doc, "initial.temperature_c", -40.0, 86.0),
        balancer=r.choice(initial_doc, "initial.balancer", BALANCER_NAMES, "balanced"),
        days_since_full_charge=r.number(
            initial_doc, "initial.days_since_full_charge", 0.0, 0.0, 3650.0
        ),
    )
    if len(initial.cell_offsets_pct) > 8:
        raise ScenarioError(f"{source}: initial.cell_offsets_pct: at most 8 cells")
    bank_doc = r.table(doc, "bank")
    r.only(bank_doc, "bank", ("battery", "parallel", "series"))
    bank = BankSpec(
        battery=r.string(bank_doc, "bank.battery", "lithium-12.8v-200ah"),
        # manual §4.3 "connecting multiple batteries": at most 5 strings in parallel, at most
        # four 12.8 V (two 25.6 V) in series; bms-overview: at most 20 batteries per BMS.
        parallel=int(r.number(bank_doc, "bank.parallel", 1, 1, 5)),
        series=int(r.number(bank_doc, "bank.series", 1, 1, 4)),
    )
    loads = tuple(
        LoadSpec(
            current_a=r.number(d, f"loads[{i}].current_a", None, 0.0, 2000.0),
            start_s=r.number(d, f"loads[{i}].start_s", 0.0, 0.0, math.inf),
            end_s=r.number(d, f"loads[{i}].end_s", math.inf, 0.0, math.inf),
        )
        for i, d in enumerate(r.tables(doc, "loads", _LOAD_KEYS))
    )
    chargers = tuple(
        ChargerSpec(
            kind=r.choice(d, f"chargers[{i}].kind", {k.value: k for k in ChargerKind}, None),
            current_a=r.number(d, f"chargers[{i}].current_a", None, 0.0, 2000.0),
            start_s=r.number(d, f"chargers[{i}].start_s", 0.0, 0.0, math.inf),
            end_s=r.number(d, f"chargers[{i}].end_s", math.inf, 0.0, math.inf),
            # manual §7: charge voltage 14.0–14.4 V (14.2 recommended); wider here so that a
            # scenario can misconfigure a charger on purpose.
            absorption_v=r.number(d, f"chargers[{i}].absorption_v", 14.2, 12.0, 16.0),
            float_v=r.number(d, f"chargers[{i}].float_v", 13.5, 12.0, 16.0),
            absorption_s=r.number(d, f"chargers[{i}].absorption_s", 7200.0, 0.0, 1e7),
            voltage_v=r.number(d, f"chargers[{i}].voltage_v", 14.4, 10.0, 16.0),
            connection=r.choice(
                d, f"chargers[{i}].connection", {k.value: k for k in Connection}, "system"
            ),
        )
        for i, d in enumerate(r.tables(doc, "chargers", _CHARGER_KEYS))
    )
    ambient_tables = r.tables(doc, "ambient", ("at_s", "temperature_c"))
    ambient = tuple(
        (
            r.number(d, f"ambient[{i}].at_s", None, 0.0, math.inf),
            r.number(d, f"ambient[{i}].temperature_c", None, -40.0, 120.0),
        )
        for i, d in enumerate(ambient_tables)
    ) or ((0.0, 20.0),)
    if any(b[0] <= a[0] for a, b in zip(ambient, ambient[1:], strict=False)):
        raise ScenarioError(f"{source}: ambient: at_s must increase from one point to the next")
    faults = tuple(
        FaultSpec(
            kind=r.choice(d, f"faults[{i}].kind", {k.value: k for k in FaultKind}, None),
            start_s=r.number(d, f"faults[{i}].start_s", 0.0, 0.0, math.inf),
            end_s=r.number(d, f"faults[{i}].end_s", math.inf, 0.0, math.inf),
        )
        for i, d in enumerate(r.tables(doc, "faults", ("kind", "start_s", "end_s")))
    )
    devices = tuple(
        DeviceEntry(
            type=r.string(d, f"devices[{i}].type", None),
            count=int(r.number(d, f"devices[{i}].count", 1, 1, 10000)),
        )
        for i, d in enumerate(r.tables(doc, "devices", ("type", "count")))
    )
    settings = r.table(doc, "settings")
    return Scenario(
        name=r.string(doc, "name", default_name or "scenario"),
        description=r.string(doc, "description", ""),
        demonstrates=r.string(doc, "demonstrates", ""),
        duration_s=r.number(doc, "duration_s", 3600.0, 1.0, 1e9),
        initial=initial,
        settings=dict(settings),
        bank=bank,
        loads=loads,
        chargers=chargers,
        ambient=ambient,
        faults=faults,
        devices=devices,
        source=source,
    )


_TOP_KEYS = (
    "name",
    "description",
    "demonstrates",
    "duration_s",
    "initial",
    "settings",
    "bank",
    "loads",
    "chargers",
    "ambient",
    "faults",
    "devices",
)
_INITIAL_KEYS = (
    "soc_pct",
    "soc_jitter_pct",
    "battery_soc_pct",
    "cell_offsets_pct",
    "cell_spread_pct",
    "temperature_c",
    "balancer",
    "days_since_full_charge",
)
_LOAD_KEYS = ("current_a", "start_s", "end_s")
_CHARGER_KEYS = (
    "kind",
    "current_a",
    "start_s",
    "end_s",
    "absorption_v",
    "float_v",
    "absorption_s",
    "voltage_v",
    "connection",
)


class _Reader:
    """Typed access to a parsed TOML document with errors that name the file and key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {key}: {message}")

    def only(self, doc: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> None:
        for k in doc:
            if k not in allowed:
                prefix = f"{where}." if where else ""
                raise self.fail(f"{prefix}{k}", f"unknown key (allowed: {', '.join(allowed)})")

    def _get(self, doc: Mapping[str, Any], path: str, key: str | None) -> Any:
        return doc.get(key if key is not None else path.rsplit(".", 1)[-1])

    def table(self, doc: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = doc.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        return value

    def tables(
        self, doc: Mapping[str, Any], key: str, allowed: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        value = doc.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, f"must be an array of tables ([[{key}]])")
        for i, d in enumerate(value):
            self.only(d, f"{key}[{i}]", allowed)
        return value

    def array(self, doc: Mapping[str, Any], path: str) -> list[Any]:
        value = self._get(doc, path, None)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, "must be an array")
        return value

    def number(
        self,
        doc: Mapping[str, Any],
        path: str,
        default: float | None,
        low: float,
        high: float,
        key: str | None = None,
    ) -> float:
        value = self._get(doc, path, key)
        if value is None:
            if default is None:
                raise self.fail(path, "is required")
            return float(default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"must be a number, not {value!r}")
        if not low <= value <= high:
            raise self.fail(path, f"{value} is out of range {low:g}…{high:g}")
        return float(value)

    def optional_number(
        self, doc: Mapping[str, Any], path: str, low: float, high: float
    ) -> float | None:
        if self._get(doc, path, None) is None:
            return None
        return self.number(doc, path, None, low, high)

    def string(self, doc: Mapping[str, Any], path: str, default: str | None) -> str:
        value = self._get(doc, path, None)
        if value is None:
            if default is None:
                raise self.fail(path, "is required")
            return default
        if not isinstance(value, str):
            raise self.fail(path, f"must be a string, not {value!r}")
        return value

    def choice(
        self, doc: Mapping[str, Any], path: str, options: Mapping[str, T], default: str | None
    ) -> T:
        text = self.string(doc, path, default)
        try:
            return options[text]
        except KeyError:
            raise self.fail(path, f"{text!r} is not one of {', '.join(options)}") from None


def check_settings(
    source: str, settings: Mapping[str, Any], builders: Mapping[str, Callable[[Any], Any]]
) -> None:
    """Every key in [settings] must belong to some device type (builders: key → validator)."""
    for key, value in settings.items():
        check = builders.get(key)
        if check is None:
            raise ScenarioError(
                f"{source}: settings.{key}: unknown setting (known: {', '.join(sorted(builders))})"
            )
        try:
            check(value)
        except (ValueError, TypeError) as exc:
            raise ScenarioError(f"{source}: settings.{key}: {exc}") from exc
