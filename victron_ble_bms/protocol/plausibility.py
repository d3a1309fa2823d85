"""What values a record can physically hold: outside these, "implausible — wrong key or corrupt
frame?". The key check is one byte (docs/protocol.md §1.1), so 1 in 256 wrong keys passes it and
decrypts to random bits; these bounds catch most of such frames, and corrupt ones.

Every bound is deliberately wide: a genuine frame must never be flagged.
"""

from __future__ import annotations

from collections.abc import Iterable

# DC systems are 12, 24 or 48 V (manuals/bms-overview.txt, "System Voltages"); the widest
# operating range in the BMS family is 8–70 V (manuals/smallbms.txt, "Operating voltage"), and a
# 48 V lithium bank tops out at 16 × 3.65 V = 58.4 V. A battery (monitor, BMS) measures the
# battery that powers it, so its voltage is never negative.
BATTERY_V = (0.0, 70.0)
# Chargers, inverters and converters measure voltages on their terminals; a reversed battery
# (charger error 19, "polarity") can read negative, but never beyond the system voltage.
DC_V = (-70.0, 70.0)
# Smart BMS CL 12/100 and 12/200 are 12 V only (bms-overview.txt "System Voltages"); their charge
# limit is at most 15.3 V (docs/protocol.md §8.4); 20 V leaves room for an alternator's overshoot.
SMART_BMS_V = (-1.0, 20.0)
# A battery monitor's aux input as a temperature (docs/protocol.md §2.4: u16 kelvin × 0.01, so
# the field alone spans −273…382 °C). Its sensor sits on a battery, whose makers allow −20…50 °C
# in use; −60…150 °C is wider than any sensor reading of a battery that still exists.
AUX_TEMPERATURE_C = (-60.0, 150.0)
# State of charge is a percentage (docs/protocol.md §2.4: u10 × 0.1 % or u7 %).
SOC_PCT = (0.0, 100.0)

# A pack's terminal voltage against the sum of its cells (docs/protocol.md §2.1: cells in series,
# 0.01 V steps): the cells are read by the balancers, the pack by the BMS, through busbars that
# carry the current. 0.3 V + 3 % covers both; random bits miss the window ~95 % of the time.
PACK_VS_CELLS_ABS_V = 0.3
PACK_VS_CELLS_REL = 0.03
CELL_STEP_V = 0.01
CELL_BELOW_RANGE_V = (0.0, 2.61)  # raw 0: "below 2.61 V" (§2.1)
CELL_ABOVE_RANGE_V = (3.85, 5.0)  # raw 126: "above 3.85 V"; no lithium cell survives 5 V


def out_of_bounds(name: str, value: float, bounds: tuple[float, float], unit: str) -> str | None:
    low, high = bounds
    if low <= value <= high:
        return None
    return f"{name} {value:g} {unit} is outside {low:g}…{high:g} {unit}".replace("  ", " ")


def pack_vs_cells(pack_v: float, cells: Iterable[tuple[float, float]]) -> str | None:
    """`cells`: each cell's (lowest, highest) possible voltage. None when they agree."""
    ranges = list(cells)
    if not ranges:
        return None
    low = sum(r[0] for r in ranges)
    high = sum(r[1] for r in ranges)
    slack = PACK_VS_CELLS_ABS_V + PACK_VS_CELLS_REL * pack_v
    if low - slack <= pack_v <= high + slack:
        return None
    shown = f"{low:.2f} V" if high - low < 0.1 else f"{low:.2f}…{high:.2f} V"
    count = len(ranges)
    return f"battery_voltage_v {pack_v:g} V is far from the sum of its {count} cells ({shown})"
