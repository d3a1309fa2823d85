"""A decoded record → Signal K: paths, SI values, meta and notifications. Pure: no I/O, no state.

Paths by the Signal K specification 1.7 (`schemas/groups/electrical.json`, battery keyed by an
id matching `^[A-Za-z0-9]+$`), relative to `electrical.batteries.<id>.`:

    voltage (V) · current (A, positive = charging) · temperature (K) · name ·
    manufacturer.name · manufacturer.model · capacity.stateOfCharge (ratio 0–1) ·
    capacity.timeRemaining (s) · capacity.dischargeSinceFull (C)

The spec has no path for cells (SignalK/specification #603). We use the convention proposed in
the Venus plugin's PR #201, `cellVoltages.<n>.voltage` (V, n from 1). Everything else is ours,
under `bms.` (see `OWN_PATHS` and the README). A value the device did not send, or that was not
received, is null; never a 0 or a false "ok".

Notifications: each active code → `notifications.electrical.batteries.<id>.<code>` with the
spec's states (`definitions.json#/definitions/alarmState`): a warning → warn, an alarm → alarm,
an error → alarm, or emergency where a manual says the BMS switches everything off
(`EMERGENCY`). `message` carries the manual's title, explanation and remedy.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from victron_ble_bms.protocol import Code, Record, Severity
from victron_ble_bms.protocol.enums import CellBound, TriState
from victron_ble_bms.protocol.records import (
    BatteryMonitorRecord,
    LynxSmartBmsRecord,
    SmartBmsRecord,
    SmartLithiumRecord,
)
from victron_ble_bms.safetext import plain

ROOT = "electrical.batteries"
NOTIFICATIONS = "notifications." + ROOT
KELVIN = 273.15
MAX_ID = 48  # characters of a slugged name kept: a path element, not a sentence

# The record types that describe a battery (a Signal K `electrical.batteries.<id>`): Lithium
# Battery Smart, Lynx Smart BMS / SuperPack, Smart BMS CL / 12-200 (provisional), and battery
# monitors (SmartShunt, BMV), which measure the battery they sit on.
BATTERY_RECORDS = {
    BatteryMonitorRecord.LAYOUT.record_type,
    SmartLithiumRecord.LAYOUT.record_type,
    LynxSmartBmsRecord.LAYOUT.record_type,
    SmartBmsRecord.LAYOUT.record_type,
}

# Our paths (relative to the battery), with their unit and description: the README lists them.
OWN_PATHS: dict[str, tuple[str | None, str]] = {
    "bms.allowedToCharge": (None, "the BMS allows charging (true/false; null: not reported)"),
    "bms.allowedToDischarge": (None, "the BMS allows discharging (true/false; null: not reported)"),
    "bms.balancerStatus": (None, "cell balancer: balanced, balancing, imbalance, unknown"),
    "bms.cellVoltageMin": ("V", "lowest cell voltage"),
    "bms.cellVoltageMax": ("V", "highest cell voltage"),
    "bms.activeCodes": (
        None,
        "active warning/alarm/error codes as in the manuals (e.g. 'W-SL12,A-SL11'); '' none; "
        "null unknown (frame incomplete)",
    ),
    "bms.keyStatus": (None, "ok, key mismatch, undecodable, no key"),
    "bms.suspect": (
        None,
        "why the latest frame was not trusted (replayed, forged, implausible), or that a change "
        "of codes was never confirmed by the device; null when fine, and while a change waits "
        "for its confirming frame (about 1 s). The values shown stay the last trusted ones",
    ),
    "bms.provisional": (None, "true when the record layout is the project's guess (0x0E)"),
    "bms.systemVoltage": ("V", "system port voltage (Smart BMS, provisional)"),
    "bms.alternatorVoltage": ("V", "alternator/starter port voltage (Smart BMS, provisional)"),
}
CELL_BEYOND = "cellVoltages.<n>.beyondRange"  # "<2.61" / ">3.85" when the cell is off the scale

# Errors after which, by a manual, the BMS switches all loads and chargers off: on a boat that
# is the instruments, lights and autopilot going dark, so the spec's `emergency`.
EMERGENCY: dict[str, str] = {
    # Lithium Battery Smart manual §4.5 (commissioning): "Disconnect a random BMS cable and
    # verify that the BMS is turning off all charge sources and all loads."
    "E-B32": "Lithium Battery Smart manual §4.5",
}

# The manuals' fixed thresholds (not settings) as Signal K zones: the server raises
# `notifications.<path>` itself when a value enters one (lower ≤ value < upper).
_LBS_CELL_ZONES: list[dict[str, Any]] = [
    {
        "upper": 2.60,
        "state": "alarm",
        "message": "Cell below 2.60 V, the lowest allowed-to-discharge setting: about 1 % left "
        "(Lithium Battery Smart manual §4.4.1)",
    },
    {
        "lower": 3.75,
        "upper": 3.95,
        "state": "warn",
        "message": "Cell at 3.75 V or more: the BMS turns the chargers off "
        "(Lithium Battery Smart manual §5.2.1)",
    },
    {
        "lower": 3.95,
        "upper": 4.20,
        "state": "alarm",
        "message": "Cell above 3.95 V: over-voltage alarm A-SL9 "
        "(Lithium Battery Smart manual §5.3)",
    },
    {
        "lower": 4.20,
        "state": "emergency",
        "message": "Cell at 4.2 V or more: the cell is being damaged "
        "(Lithium Battery Smart manual §5.2.1)",
    },
]
_LBS_TEMPERATURE_ZONES: list[dict[str, Any]] = [
    {
        "upper": round(-20 + KELVIN, 2),
        "state": "warn",
        "message": "Below −20 °C, the battery's discharge range "
        "(Lithium Battery Smart manual §1.2)",
    },
    {
        "lower": round(50 + KELVIN, 2),
        "upper": round(75 + KELVIN, 2),
        "state": "warn",
        "message": "Above 50 °C, the battery's charge and discharge range "
        "(Lithium Battery Smart manual §1.2)",
    },
    {
        "lower": round(75 + KELVIN, 2),
        "state": "alarm",
        "message": "Above 75 °C: over-temperature alarm, the BMS turns the chargers off "
        "(Lithium Battery Smart manual §5.2.1, §5.3 A-SL15)",
    },
]
_ALARM_METHODS = {
    "warnMethod": ["visual"],
    "alarmMethod": ["visual", "sound"],
    "emergencyMethod": ["visual", "sound"],
}


# --- ids -----------------------------------------------------------------------------------


def address_id(address: str) -> str:
    """`D0:DE:00:00:00:01` → `D0DE00000001`: stable and a valid battery id."""
    return "".join(ch for ch in address.upper() if ch.isascii() and ch.isalnum())


def slug(name: str) -> str:
    """A keys-file name → a battery id: ASCII letters and digits, camelCase ('House bank' →
    'houseBank'), accents dropped; '' when nothing is left (then the address is used)."""
    text = unicodedata.normalize("NFKD", name)
    words = re.findall(r"[A-Za-z0-9]+", text.encode("ascii", "ignore").decode())
    if not words:
        return ""
    first, rest = words[0], words[1:]
    out: str = first[:1].lower() + first[1:] + "".join(w[:1].upper() + w[1:] for w in rest)
    return out[:MAX_ID]


def battery_ids(names: Mapping[str, str | None]) -> dict[str, str]:
    """address → battery id for every address: the keys-file name slugged, else the address.
    Two names that slug alike both get their address's last four hex digits appended, and an
    id never equals another device's address id, so each device keeps one id of its own."""
    slugs = {address: slug(name) if name else "" for address, name in names.items()}
    counts: dict[str, int] = {}
    for s in slugs.values():
        if s:
            counts[s.lower()] = counts.get(s.lower(), 0) + 1
    address_ids = {address_id(a).lower() for a in names}
    out: dict[str, str] = {}
    for address, s in slugs.items():
        if not s:
            out[address] = address_id(address)
        elif counts[s.lower()] > 1 or s.lower() in address_ids:
            out[address] = s[: MAX_ID - 4] + address_id(address)[-4:]
        else:
            out[address] = s
    return out


def battery_path(battery_id: str, relative: str) -> str:
    return f"{ROOT}.{battery_id}.{relative}"


# --- values ----------------------------------------------------------------------------------


def _kelvin(celsius: float | None) -> float | None:
    return None if celsius is None else round(celsius + KELVIN, 2)


def _ratio(pct: float | None) -> float | None:
    return None if pct is None else round(pct / 100.0, 4)


def _seconds(minutes: int | None) -> int | None:
    return None if minutes is None else minutes * 60


def _coulombs(consumed_ah: float | None) -> float | None:
    # The record's consumed Ah is negative while the battery is below full (docs/protocol.md §2.2).
    return None if consumed_ah is None else round(max(0.0, -consumed_ah) * 3600.0, 1)


def _tristate(value: TriState | None) -> bool | None:
    return True if value is TriState.YES else False if value is TriState.NO else None


def cell_values(record: SmartLithiumRecord) -> list[tuple[str, Any]]:
    """`cellVoltages.<n>.voltage` for each cell the battery reports (4 or 8), 1-based. A cell off
    the 7-bit scale is sent as the scale's end with `beyondRange` saying which side."""
    out: list[tuple[str, Any]] = []
    for n, cell in enumerate(record.cell_voltages_v or (), start=1):
        if cell is None:
            continue  # a cell slot the battery does not have (12.8 V: cells 5–8)
        beyond = cell.value if isinstance(cell, CellBound) else None
        volts = cell.bound_v if isinstance(cell, CellBound) else cell
        out.append((f"cellVoltages.{n}.voltage", volts))
        out.append((f"cellVoltages.{n}.beyondRange", beyond))
    return out


def values(record: Record) -> list[tuple[str, Any]]:
    """The measured values of one battery record, as (path relative to the battery, value)."""
    out: list[tuple[str, Any]] = []
    if isinstance(record, SmartLithiumRecord):
        out += [
            ("voltage", record.battery_voltage_v),
            ("temperature", _kelvin(record.battery_temperature_c)),
            *cell_values(record),
            ("bms.cellVoltageMin", record.min_cell_v),
            ("bms.cellVoltageMax", record.max_cell_v),
            (
                "bms.balancerStatus",
                None if record.balancer_status is None else record.balancer_status.label,
            ),
            ("bms.allowedToCharge", record.allowed_to_charge),
            ("bms.allowedToDischarge", record.allowed_to_discharge),
        ]
    elif isinstance(record, LynxSmartBmsRecord):
        io = record.io
        out += [
            ("voltage", record.battery_voltage_v),
            ("current", record.battery_current_a),
            ("temperature", _kelvin(record.temperature_c)),
            ("capacity.stateOfCharge", _ratio(record.soc_pct)),
            ("capacity.timeRemaining", _seconds(record.ttg_min)),
            ("capacity.dischargeSinceFull", _coulombs(record.consumed_ah)),
            ("bms.allowedToCharge", _tristate(io.get("allowed_to_charge"))),
            ("bms.allowedToDischarge", _tristate(io.get("allowed_to_discharge"))),
        ]
    elif isinstance(record, SmartBmsRecord):
        out += [
            ("voltage", record.battery_voltage_v),
            ("bms.systemVoltage", record.system_voltage_v),
            ("bms.alternatorVoltage", record.alternator_voltage_v),
        ]
    elif isinstance(record, BatteryMonitorRecord):
        out += [
            ("voltage", record.battery_voltage_v),
            ("current", record.battery_current_a),
            ("temperature", _kelvin(record.aux["temperature_c"])),
            ("capacity.stateOfCharge", _ratio(record.soc_pct)),
            ("capacity.timeRemaining", _seconds(record.ttg_min)),
            ("capacity.dischargeSinceFull", _coulombs(record.consumed_ah)),
        ]
    out.append(("bms.provisional", record.provisional))
    return out


def codes_text(codes: tuple[Code, ...] | None) -> str | None:
    """`bms.activeCodes`: 'W-SL12,A-SL11', '' for none, None when unknown."""
    return None if codes is None else ",".join(c.id for c in codes)


def identity(display_name: str, product: str | None) -> list[tuple[str, Any]]:
    return [
        ("name", display_name),
        ("manufacturer.name", "Victron Energy"),
        ("manufacturer.model", product),
    ]


# --- meta ------------------------------------------------------------------------------------

_SPEC_META: dict[str, tuple[str, str]] = {
    "voltage": ("V", "voltage"),
    "current": ("A", "current"),
    "temperature": ("K", "temperature"),
    "capacity.stateOfCharge": ("ratio", "state of charge"),
    "capacity.timeRemaining": ("s", "time remaining"),
    "capacity.dischargeSinceFull": ("C", "discharged since full"),
}


def meta(
    relative_paths: Iterable[str],
    display_name: str,
    record_type: int | None,
    *,
    own: Mapping[str, tuple[str | None, str]] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """`meta` for the value paths sent: units, displayName, description, and for a Lithium
    Battery Smart the manual's fixed thresholds as zones. `own`: more paths of ours (a bank's)."""
    lbs = record_type == SmartLithiumRecord.LAYOUT.record_type
    ours = {**OWN_PATHS, **(own or {})}
    out: list[tuple[str, dict[str, Any]]] = []
    for rel in relative_paths:
        m: dict[str, Any]
        if rel in _SPEC_META:
            units, what = _SPEC_META[rel]
            m = {"units": units, "displayName": f"{display_name} {what}", "description": what}
            if lbs and rel == "temperature":
                m.update(zones=_LBS_TEMPERATURE_ZONES, **_ALARM_METHODS)
        elif rel == "name":
            m = {"displayName": display_name, "description": "the battery's name"}
        elif rel.startswith("cellVoltages.") and rel.endswith(".voltage"):
            n = rel.split(".")[1]
            m = {
                "units": "V",
                "displayName": f"{display_name} cell {n}",
                "description": f"voltage of cell {n}, numbered from 1 as the battery reports them",
            }
            if lbs:
                m.update(zones=_LBS_CELL_ZONES, **_ALARM_METHODS)
        elif rel.startswith("cellVoltages.") and rel.endswith(".beyondRange"):
            m = {
                "displayName": f"{display_name} cell {rel.split('.')[1]} off scale",
                "description": "'<2.61' or '>3.85' when the cell is beyond what the frame can "
                "carry (its voltage is then the scale's end); null otherwise",
            }
        elif rel in ours:
            units_or_none, description = ours[rel]
            m = {"displayName": f"{display_name} {rel.split('.')[-1]}", "description": description}
            if units_or_none:
                m["units"] = units_or_none
        else:
            continue
        out.append((rel, m))
    return out


# --- notifications -----------------------------------------------------------------------------


def state_of(code: Code) -> str:
    if code.severity is Severity.WARNING:
        return "warn"
    if code.severity is Severity.ERROR and code.id in EMERGENCY:
        return "emergency"
    return "alarm"


def notification(code: Code, display_name: str) -> dict[str, Any]:
    """The value of `notifications.electrical.batteries.<id>.<code>` while the code is active."""
    state = state_of(code)
    parts = [f"{display_name}: {code.id} {code.title}."]
    if code.explanation:
        parts.append(code.explanation)
    if code.remedy:
        parts.append(f"Remedy: {code.remedy}")
    if code.source:
        parts.append(f"({code.source})")
    return {
        "state": state,
        "method": ["visual"] if state == "warn" else ["visual", "sound"],
        "message": plain(" ".join(parts), 1000),
    }


def cleared(code_id: str, display_name: str) -> dict[str, Any]:
    """The value once the code has gone (the device said so in a complete frame)."""
    return {"state": "normal", "method": [], "message": f"{display_name}: {code_id} cleared"}


def no_data(display_name: str, age_s: float) -> dict[str, Any]:
    """`notifications.electrical.batteries.<id>.noData`: the device went silent; its values
    are unknown (sent as null) and its codes' notifications stay as they were."""
    return {
        "state": "warn",
        "method": ["visual"],
        "message": f"{display_name}: no reading for {age_s:.0f} s; values unknown",
    }


def data_back(display_name: str) -> dict[str, Any]:
    return {"state": "normal", "method": [], "message": f"{display_name}: readings again"}


def code_path(battery_id: str, code_id: str) -> str:
    # Code ids are letters, digits and '-', which the notification branch pattern allows.
    return f"{NOTIFICATIONS}.{battery_id}.{code_id}"
