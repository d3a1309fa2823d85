"""The codes a person sees in the manuals and VictronConnect (A-SL9, W-B12, E-B32 …).

Each decoded record exposes its active codes. Where the manuals list a code we carry its
meaning and remedy in our own words; other set bits still show, named from the register and
marked "not in manual". The numbering rules themselves are inferred (docs/protocol.md §5) and live
in `provisional.py`.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

from .enums import AlarmLevel, AlarmReason, BmsError, BmsFlags, SmartLithiumErrorFlags
from .provisional import LYNX_FIELD_CODE_BASE, SMART_LITHIUM_ERROR_CODE_EXCEPTIONS


class Severity(enum.IntEnum):
    """Ordered so that max() gives the worst."""

    WARNING = 1
    ALARM = 2
    ERROR = 3

    @property
    def letter(self) -> str:
        return self.name[0]


@dataclass(frozen=True, slots=True)
class Code:
    id: str
    severity: Severity
    title: str
    explanation: str = ""
    remedy: str = ""
    source: str = ""
    in_manual: bool = True

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "severity": self.severity.name.lower(), "title": self.title}


_LBS = "Lithium Battery Smart manual §5.3"
_CL = "Smart BMS CL 12/100 manual, appendix B"
_SB200 = "Smart BMS 12/200 manual, appendix B"
_RECHARGE = "Recharge the battery as soon as possible; switch off loads you do not need."
_DEALER = "Contact your Victron dealer or distributor; this is not something you can fix."

A, W, E = Severity.ALARM, Severity.WARNING, Severity.ERROR

# -- Lithium Battery Smart (record 0x05) ---------------------------------------------------------
SMART_LITHIUM_CODES: dict[str, Code] = {
    c.id: c
    for c in (
        Code(
            "A-SL9",
            A,
            "Over voltage alarm",
            "A cell voltage has risen above 3.95 V.",
            "Switch off every charger now, then have the installer check that each charger is "
            "controlled by the BMS's charge-disconnect contact: wired that way, the BMS stops "
            "charging long before this alarm.",
            _LBS,
        ),
        Code(
            "A-SL11",
            A,
            "Under voltage alarm",
            "A cell is below the allowed-to-discharge voltage (default 2.80 V); the BMS has "
            "switched the loads off. They come back when every cell is at 3.2 V or more.",
            _RECHARGE,
            _LBS,
        ),
        Code(
            "W-SL12",
            W,
            "Under voltage warning (pre-alarm)",
            "A cell is below the pre-alarm setting (default 3.10 V). If it keeps falling the BMS "
            "switches the loads off — at least 30 seconds after this warning.",
            _RECHARGE,
            _LBS,
        ),
        Code(
            "A-SL15",
            A,
            "Over temperature alarm",
            "The battery is above 75 °C; charging is disabled.",
            "Let the battery cool: check ventilation, nearby heat sources and the charge and "
            "discharge currents. Charging resumes when the temperature is back in range.",
            _LBS,
        ),
        Code(
            "A-SL22",
            A,
            "Under temperature alarm",
            "The battery is below the allowed-to-charge temperature (default 5 °C); charging is "
            "disabled.",
            "Warm the battery or wait for it to warm up before charging; discharging is still "
            "allowed.",
            _LBS,
        ),
        Code(
            "E-SL24",
            E,
            "Hardware failure",
            "A software fault, one or more very deeply discharged or defective cells, or a fault "
            "on the internal circuit board.",
            "First restart the battery's microcontroller (manual: 'Communication error or "
            "hardware failure'); then check the terminal voltage — if it is very low follow "
            "'Battery very low terminal voltage'. Only then contact your dealer.",
            _LBS,
        ),
        Code(
            "E-SL1", E, "Balancer failure", "A cell balancer has a critical failure.", _DEALER, _LBS
        ),
        Code(
            "E-SL2",
            E,
            "Internal communication failure",
            "The battery has had no data from its balancers for a long time.",
            _DEALER,
            _LBS,
        ),
        Code(
            "E-SL9",
            E,
            "Overlapped voltage error",
            "Two balancers measure the same cell more than 250 mV apart.",
            _DEALER,
            _LBS,
        ),
        Code(
            "E-SL10",
            E,
            "Balancer update error",
            "A balancer firmware update failed.",
            _DEALER,
            _LBS,
        ),
        Code(
            "E-SL119",
            E,
            "Settings data lost",
            "The battery's settings storage is corrupt and the settings cannot be read.",
            "Reset the settings to factory defaults on the settings page. If the error stays, "
            "contact your dealer with the battery's serial number and firmware version.",
            _LBS,
        ),
    )
}

# BMS-flag bits that are codes, and their severity (names from VE_REG_BMS_FLAGS, §4.1). Bit 24,
# hardware failure, is an alarm bit that VictronConnect shows as an error (E-SL24, §5).
_FLAG_SEVERITY: dict[int, Severity] = {
    9: A,
    10: W,
    11: A,
    12: W,
    13: W,
    14: W,
    15: A,
    16: W,
    17: W,
    18: A,
    19: W,
    20: A,
    21: W,
    22: A,
    23: A,
    24: E,
    28: W,
    29: A,
}
_BMS_FLAG_TITLES = {
    10: "Over voltage warning",
    13: "Charge current warning",
    14: "Discharge current warning",
    16: "Over temperature warning",
    17: "Under temperature warning (charging)",
    18: "Under temperature alarm (charging)",
    19: "Under temperature warning (discharging)",
    20: "Under temperature alarm (discharging)",
    21: "Low state of charge",
    23: "Short circuit alarm",
    28: "Bad contactor warning",
    29: "High current alarm",
}


# One shared Code per unlisted id (a few hundred at most), so cached code tuples stay small.
@functools.lru_cache(maxsize=1024)
def _unlisted(code_id: str, severity: Severity, title: str, register: str) -> Code:
    return Code(
        code_id,
        severity,
        title,
        f"Reported by the device ({register}); the manual does not list this code.",
        "",
        register,
        in_manual=False,
    )


@functools.lru_cache(maxsize=256)  # devices show few combinations; random bits must not fill RAM
def smart_lithium_codes(bms_flags: int, error_flags: int) -> tuple[Code, ...]:
    out: list[Code] = []
    for bit, severity in _FLAG_SEVERITY.items():
        if bms_flags >> bit & 1:
            code_id = f"{severity.letter}-SL{bit}"
            out.append(
                SMART_LITHIUM_CODES.get(code_id)
                or _unlisted(
                    code_id,
                    severity,
                    _BMS_FLAG_TITLES.get(bit, BmsFlags(1 << bit).name or ""),
                    f"VE_REG_BMS_FLAGS bit {bit}",
                )
            )
    for bit in (30, 31):
        if bms_flags >> bit & 1:
            out.append(
                _unlisted(
                    f"W-SL{bit}", W, f"Undefined BMS flag bit {bit}", f"VE_REG_BMS_FLAGS bit {bit}"
                )
            )
    for bit in range(16):
        if error_flags >> bit & 1:
            code_id = f"E-SL{SMART_LITHIUM_ERROR_CODE_EXCEPTIONS.get(bit, bit + 1)}"
            name = SmartLithiumErrorFlags(1 << bit).name
            out.append(
                SMART_LITHIUM_CODES.get(code_id)
                or _unlisted(
                    code_id,
                    E,
                    (name or f"undefined error bit {bit}").replace("_", " ").capitalize(),
                    f"SmartLithium error flags bit {bit}",
                )
            )
    return _ordered(out)


# -- Smart BMS CL 12/100 and 12/200 (record 0x0E) -----------------------------------------------
SMART_BMS_CODES: dict[str, Code] = {
    c.id: c
    for c in (
        Code(
            "E-B30",
            E,
            "Calibration failure",
            "Internal malfunction: calibration data missing.",
            "Contact your dealer: the Smart BMS needs replacing.",
            _CL,
        ),
        Code(
            "E-B31",
            E,
            "Configuration failure",
            "Internal malfunction: configuration data missing.",
            "Reset to factory defaults (Settings → More options → Reset to defaults), disconnect "
            "all power for 3 minutes, then configure the unit again.",
            _CL,
        ),
        Code(
            "E-B32",
            E,
            "BMS cable not connected or defective",
            "The battery's BMS cable (M8 connector) is detached or damaged — or the pre-alarm "
            "feature is on while the batteries do not support pre-alarm.",
            "Check the BMS cables. If they are fine, check whether the battery supports "
            "pre-alarm; if not, disable pre-alarm in the settings. (Firmware v1.08 and later no "
            "longer report this error.)",
            _CL,
        ),
        Code(
            "E-B33",
            E,
            "Reference voltage failure",
            "Internal malfunction: reference voltage missing.",
            "Contact your dealer: the Smart BMS needs replacing.",
            _CL,
        ),
        Code(
            "A-B11",
            A,
            "Under voltage",
            "Under-voltage protection: the battery does not allow discharging.",
            "Switch off or disconnect loads and recharge the battery; check the charging system "
            "and the battery.",
            _CL,
        ),
        Code(
            "A-B15",
            A,
            "Over temperature",
            "Over-temperature protection: the BMS's internal temperature is too high.",
            "Check the fuse rating is right, look for loose or high-resistance connections and "
            "thin wiring, and move the BMS somewhere cooler or add cooling.",
            _CL,
        ),
        Code(
            "W-B12",
            W,
            "Under voltage warning",
            "Urgent: the system is about to shut down.",
            "Switch off or disconnect loads and recharge the battery; check the charging system "
            "and the battery.",
            _CL,
        ),
        Code(
            "A-A12",
            A,
            "Short circuit",
            "Short-circuit protection tripped: a short circuit, an overload or too high an "
            "inrush current.",
            "Look for a short circuit; make sure the load current is within the Smart BMS's "
            "rating; check for loose or high-resistance connections and adequate wire gauge.",
            _SB200,
        ),
    )
}


def _bms_error_code(value: int, catalogue: dict[str, Code]) -> Code:
    code_id = f"E-B{value}"
    if code_id in catalogue:
        return catalogue[code_id]
    name = BmsError(value).name or f"error {value}"
    return _unlisted(code_id, E, name.replace("_", " ").capitalize(), f"VE_REG_BMS_ERROR {value}")


@functools.lru_cache(maxsize=256)
def smart_bms_codes(bms_error: int, alarm_reason: int) -> tuple[Code, ...]:
    out: list[Code] = []
    if bms_error:
        out.append(_bms_error_code(bms_error, SMART_BMS_CODES))
    for bit in range(16):
        if alarm_reason >> bit & 1:
            code_id = f"A-A{bit}"
            name = AlarmReason(1 << bit).name or f"undefined bit {bit}"
            out.append(
                SMART_BMS_CODES.get(code_id)
                or _unlisted(
                    code_id,
                    A,
                    name.replace("_", " ").capitalize(),
                    f"VE_REG_ALARM_REASON bit {bit}",
                )
            )
    return _ordered(out)


# -- Lynx Smart BMS / SuperPack NG (record 0x0A) -------------------------------------------------
_REG = "VE_REG_BMS_WARNINGS_ALARMS (velib; Victron dbus-ble-sensors)"
LYNX_ALARM_FIELDS: tuple[tuple[str, str], ...] = (
    ("low_cell_voltage", "Low cell voltage"),
    ("high_current", "High current"),
    ("high_bms_temperature", "High BMS temperature"),
    ("bad_contactor", "Bad contactor (high contactor resistance)"),
    ("bms_cable", "BMS cable fault / battery communication lost"),
    ("load_disconnect", "Load disconnect"),
    ("low_soc", "Low state of charge"),
    ("field_7", "Unidentified warnings/alarms field 7"),
    ("high_battery_temperature", "High battery temperature"),
)
_LYNX_REMEDIES = {
    "low_cell_voltage": _RECHARGE,
    "load_disconnect": "Loads are (about to be) disconnected: " + _RECHARGE,
    "low_soc": _RECHARGE,
}


@functools.lru_cache(maxsize=256)
def lynx_codes(bms_error: int, warnings_alarms: int) -> tuple[Code, ...]:
    out: list[Code] = []
    if bms_error:
        out.append(_bms_error_code(bms_error, {}))
    for index in range(len(LYNX_ALARM_FIELDS)):
        level = AlarmLevel(warnings_alarms >> (2 * index) & 3)
        if level is AlarmLevel.WARNING or level is AlarmLevel.ALARM:
            out.append(_lynx_code(index, level))
    return _ordered(out)


@functools.lru_cache(maxsize=64)  # 9 fields × 2 levels: one shared Code each
def _lynx_code(index: int, level: AlarmLevel) -> Code:
    key, title = LYNX_ALARM_FIELDS[index]
    severity = W if level is AlarmLevel.WARNING else A
    return Code(
        f"{severity.letter}-B{index + LYNX_FIELD_CODE_BASE:02d}",
        severity,
        title,
        f"Warnings/alarms field {index} reports {level.name.lower()}.",
        _LYNX_REMEDIES.get(key, ""),
        _REG,
        in_manual=False,
    )


def _ordered(codes: list[Code]) -> tuple[Code, ...]:
    """Worst first; the order within a severity is the register's."""
    return tuple(sorted(codes, key=lambda c: -c.severity))


CATALOGUE: dict[str, dict[str, Code]] = {
    "smart_lithium": SMART_LITHIUM_CODES,
    "smart_bms": SMART_BMS_CODES,
}


def lookup(code_id: str) -> Code | None:
    """Find a catalogued code by id (e.g. 'W-SL12')."""
    for table in CATALOGUE.values():
        if code_id in table:
            return table[code_id]
    return None
