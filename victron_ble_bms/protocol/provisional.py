"""Every mapping the sources leave uncertain, kept in one place (docs/protocol.md §5, §7, §8).

When better evidence arrives (a real 0x0E frame with its VictronConnect screen, a published
code list), this is the file to change. Everything here is marked [I]nferred or a guess in
docs/protocol.md; output derived from it says "provisional".
"""

from __future__ import annotations

from .enums import AlarmReason, BmsError
from .fields import Field, Kind, Layout
from .plausibility import SMART_BMS_V

# -- Record 0x0E, Smart BMS CL 12/100 and 12/200 (docs/protocol.md §8.2) -------------------------
# Chosen to agree with the one public decrypted sample (a 12/200 with the engine off):
# 00 00 00 E8 04 E7 04 BF 04 00 18 25 11 00 → 12.56 V battery, 12.55 V System+, 12.15 V starter.
SMART_BMS_SAMPLE = bytes.fromhex("000000e804e704bf040018251100")
SMART_BMS_LAYOUT = Layout(
    record_type=0x0E,
    name="smart_bms",
    title="Smart BMS (CL 12/100, 12/200)",
    fields=(
        Field(
            "bms_error",
            0,
            8,
            Kind.ENUM,
            enum=BmsError,
            has_na=False,
            doc="VE_REG_BMS_ERROR value → E-Bn (inferred; sample 0)",
        ),
        Field(
            "alarm_reason",
            8,
            16,
            Kind.FLAGS,
            enum=AlarmReason,
            has_na=False,
            doc="VE_REG_ALARM_REASON bits → A-An (inferred; sample 0)",
        ),
        Field(
            "battery_voltage_v",
            24,
            16,
            signed=True,
            decimals=2,
            unit="V",
            plausible=SMART_BMS_V,
            doc="Li-ion port voltage (inferred; sample 12.56 V)",
        ),
        Field(
            "system_voltage_v",
            40,
            16,
            signed=True,
            decimals=2,
            unit="V",
            plausible=SMART_BMS_V,
            doc="System+ port voltage; CL 12/100 has none (inferred; sample 12.55 V)",
        ),
        Field(
            "alternator_voltage_v",
            56,
            16,
            signed=True,
            decimals=2,
            unit="V",
            plausible=SMART_BMS_V,
            doc="alternator/starter voltage (inferred; sample 12.15 V)",
        ),
        Field(
            "alternator_current_pct",
            72,
            8,
            unit="%",
            doc="alternator current, % of the fuse's limit (guess; sample 0, engine off)",
        ),
        Field(
            "unidentified",
            80,
            32,
            Kind.BYTES,
            has_na=False,
            json_name="unidentified_hex",
            doc="not understood; kept raw (unknown)",
        ),
    ),
    data_bytes=14,
    provisional=True,
    source="docs/protocol.md §8.2 (provisional)",
)
# What the emulator puts in the unidentified bits: the sample's idle pattern (§8.2).
SMART_BMS_IDLE_UNIDENTIFIED = SMART_BMS_SAMPLE[10:14]

# -- Code numbering (docs/protocol.md §5, §8.3) ---------------------------------------------------
# Lithium Battery Smart: BMS-flag bit n → "A-SLn"/"W-SLn"/"E-SLn" (letter = severity only).
# Error-flag bit k → "E-SL(k+1)", except bit 7 (settings data invalid), shown as E-SL119.
SMART_LITHIUM_ERROR_CODE_EXCEPTIONS = {7: 119}
# Lynx Smart BMS / SuperPack NG: warnings/alarms field i → W-B0(i+1) (value 2) / A-B0(i+1) (3).
LYNX_FIELD_CODE_BASE = 1
# Smart BMS: error byte n → E-Bn; alarm-reason bit n → A-An.
