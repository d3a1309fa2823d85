"""Why a Lithium Battery Smart says "Allowed to charge: no" (or discharge), from what its frame
carries: flags, cell voltages and temperature, against the thresholds of the Lithium Battery
Smart manual (§4.4, §5.2; docs/protocol.md §8.4). No textual here.

The frame only says *that* charging is disallowed, not why: the reasons below are inferred and
phrased "likely"; the user's settings (§4.4.1) may differ from the defaults used here.
"""

from __future__ import annotations

from victron_ble_bms.protocol import SmartLithiumRecord
from victron_ble_bms.protocol.enums import BmsFlags, CellBound

# §5.2.1 / §6.1.3: the BMS turns chargers off when a cell reaches 3.75 V and back on below 3.6 V.
CHARGE_CELL_HIGH_V = 3.75
CHARGE_CELL_RESUME_V = 3.60
# §4.4.1 "Allowed-To-Charge minimum temperature": default 5 °C (settable −20 … +20 °C).
CHARGE_MIN_TEMP_C = 5
# §5.2.1: chargers off when the battery temperature rises above 75 °C.
CHARGE_MAX_TEMP_C = 75
# §4.4.1 "Allowed-To-Discharge cell voltage": default 2.80 V (settable 2.60 … 2.80 V).
DISCHARGE_CELL_LOW_V = 2.80
# §2 safety / technical data: discharge only from −20 °C.
DISCHARGE_MIN_TEMP_C = -20
SOURCE = "Lithium Battery Smart manual §4.4.1, §5.2.1, §6.1.3"


def _volts(v: float | CellBound) -> float:
    return v.bound_v if isinstance(v, CellBound) else v


def _cells(record: SmartLithiumRecord) -> list[tuple[int, float]]:
    return [(i + 1, _volts(v)) for i, v in enumerate(record.cell_voltages_v) if v is not None]


def why_not_charging(record: SmartLithiumRecord) -> list[str]:
    """Likely reasons the battery disallows charging ([] when allowed or not received)."""
    if record.allowed_to_charge is not False:
        return []
    flags, temp = record.bms_flags or BmsFlags(0), record.battery_temperature_c
    reasons: list[str] = []
    cold = flags & (BmsFlags.ALARM_UNDER_TEMPERATURE_CHARGE | BmsFlags.ALARM_UNDER_TEMPERATURE)
    if cold or (temp is not None and temp < CHARGE_MIN_TEMP_C):
        at = "" if temp is None else f" ({temp} °C)"
        reasons.append(
            f"too cold to charge{at}: the BMS allows charging from {CHARGE_MIN_TEMP_C} °C "
            "(the default allowed-to-charge minimum temperature); charging resumes when it warms"
        )
    if flags & BmsFlags.ALARM_OVER_TEMPERATURE or (temp is not None and temp > CHARGE_MAX_TEMP_C):
        reasons.append(f"too hot: chargers are turned off above {CHARGE_MAX_TEMP_C} °C")
    high = [(n, v) for n, v in _cells(record) if v >= CHARGE_CELL_HIGH_V]
    if high or flags & BmsFlags.ALARM_OVER_VOLTAGE:
        which = ", ".join(f"cell {n} {v:.2f} V" for n, v in high) or "over-voltage alarm"
        reasons.append(
            f"a cell is high ({which}): the BMS stops charging at {CHARGE_CELL_HIGH_V:.2f} V and "
            f"resumes below {CHARGE_CELL_RESUME_V:.2f} V; with an imbalance this cycles every "
            "1–3 minutes while the cells balance — normal, not a fault"
        )
    if flags & BmsFlags.ALARM_HARDWARE_FAILURE:
        reasons.append("the battery reports a hardware failure")
    if not reasons:
        reasons.append(
            "the frame shows no cause (cells and temperature are within the defaults): the "
            "battery's own settings may differ from the defaults, or the BMS it is wired to "
            "has disabled charging — check both in VictronConnect"
        )
    return reasons


def why_not_discharging(record: SmartLithiumRecord) -> list[str]:
    """Likely reasons the battery disallows discharging ([] when allowed or not received)."""
    if record.allowed_to_discharge is not False:
        return []
    flags, temp = record.bms_flags or BmsFlags(0), record.battery_temperature_c
    reasons: list[str] = []
    low = [(n, v) for n, v in _cells(record) if v <= DISCHARGE_CELL_LOW_V]
    if low or flags & BmsFlags.ALARM_UNDER_VOLTAGE:
        which = ", ".join(f"cell {n} {v:.2f} V" for n, v in low) or "under-voltage alarm"
        reasons.append(
            f"a cell is low ({which}): loads are disconnected at the allowed-to-discharge "
            f"voltage (default {DISCHARGE_CELL_LOW_V:.2f} V) — recharge now"
        )
    cold = flags & BmsFlags.ALARM_UNDER_TEMPERATURE_DISCHARGE
    if cold or (temp is not None and temp < DISCHARGE_MIN_TEMP_C):
        reasons.append(f"too cold to discharge (below {DISCHARGE_MIN_TEMP_C} °C)")
    if flags & BmsFlags.ALARM_OVER_TEMPERATURE or (temp is not None and temp > CHARGE_MAX_TEMP_C):
        reasons.append("too hot")
    if flags & BmsFlags.ALARM_SHORT_CIRCUIT:
        reasons.append("short-circuit alarm")
    if flags & BmsFlags.ALARM_HARDWARE_FAILURE:
        reasons.append("the battery reports a hardware failure")
    if not reasons:
        reasons.append(
            "the frame shows no cause (cells and temperature are within the defaults): check "
            "the battery's settings and the BMS in VictronConnect"
        )
    return reasons
