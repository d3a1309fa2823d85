"""States and flag words carried in Instant Readout records (docs/protocol.md §2.4, §4).

Enums are "open": a value the table does not know decodes to a pseudo-member named
``UNKNOWN_<n>`` instead of raising, because devices gain values faster than lists do.
"""

from __future__ import annotations

import enum
from typing import Any, Self

_ENUM_CACHE_LIMIT = 1024


class OpenIntFlag(enum.IntFlag):
    """An IntFlag whose cache of unnamed combinations is bounded.

    `enum` keeps every combination ever built; with 32-bit words from the air (or random bits
    from a wrong key) that grows without end. Past the bound, combinations are built anew.
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        member = super()._missing_(value)
        if len(cls._value2member_map_) > _ENUM_CACHE_LIMIT:
            cls._value2member_map_.pop(value, None)
        return member


class OpenIntEnum(enum.IntEnum):
    """An IntEnum that accepts values it has no name for."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, int):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        # Cache so that the next lookup of this value is a dict hit, not a new object; bounded,
        # since values come from the air.
        if len(cls._value2member_map_) < _ENUM_CACHE_LIMIT:
            cls._value2member_map_[value] = member
        return member

    @property
    def label(self) -> str:
        """Human text: the member name in lower case with spaces."""
        return (self.name or str(int(self)).lower()).lower().replace("_", " ")

    @classmethod
    def parse(cls, value: int) -> Self:
        return cls(value)


class DeviceState(OpenIntEnum):
    """VE_REG_DEVICE_STATE (docs/protocol.md §2.4, last paragraph)."""

    OFF = 0
    LOW_POWER = 1
    FAULT = 2
    BULK = 3
    ABSORPTION = 4
    FLOAT = 5
    STORAGE = 6
    EQUALIZE_MANUAL = 7
    PASSTHRU = 8
    INVERTING = 9
    ASSISTING = 10
    POWER_SUPPLY = 11
    STARTING_UP = 0xF5
    REPEATED_ABSORPTION = 0xF6
    AUTO_EQUALIZE = 0xF7
    BATTERY_SAFE = 0xF8
    LOAD_DETECT = 0xF9
    BLOCKED = 0xFA
    TEST = 0xFB
    EXTERNAL_CONTROL = 0xFC


class ChargerError(OpenIntEnum):
    """VE_REG_CHR_ERROR_CODE: the common values; others decode as UNKNOWN_n."""

    NO_ERROR = 0
    TEMPERATURE_BATTERY_HIGH = 1
    VOLTAGE_HIGH = 2
    REMOTE_TEMPERATURE_A = 3
    REMOTE_TEMPERATURE_B = 4
    REMOTE_TEMPERATURE_C = 5
    REMOTE_BATTERY_A = 6
    REMOTE_BATTERY_B = 7
    REMOTE_BATTERY_C = 8
    HIGH_RIPPLE = 11
    TEMPERATURE_BATTERY_LOW = 14
    TEMPERATURE_CHARGER = 17
    OVER_CURRENT = 18
    POLARITY = 19
    BULK_TIME = 20
    CURRENT_SENSOR = 21
    INTERNAL_TEMPERATURE_A = 22
    INTERNAL_TEMPERATURE_B = 23
    FAN = 24
    OVERHEATED = 26
    SHORT_CIRCUIT = 27
    CONVERTER_ISSUE = 28
    OVER_CHARGE = 29
    INPUT_VOLTAGE = 33
    INPUT_CURRENT = 34
    INPUT_POWER = 35
    INPUT_SHUTDOWN_VOLTAGE = 38
    INPUT_SHUTDOWN_CURRENT = 39
    INPUT_SHUTDOWN_FAILURE = 40
    INVERTER_SHUTDOWN_41 = 41
    INVERTER_SHUTDOWN_42 = 42
    INVERTER_SHUTDOWN_43 = 43
    INVERTER_OVERLOAD = 50
    INVERTER_TEMPERATURE = 51
    INVERTER_PEAK_CURRENT = 52
    INVERTER_OUTPUT_VOLTAGE_A = 53
    INVERTER_OUTPUT_VOLTAGE_B = 54
    INVERTER_SELF_TEST_A = 55
    INVERTER_SELF_TEST_B = 56
    INVERTER_AC = 57
    INVERTER_SELF_TEST_C = 58
    COMMUNICATION = 65
    SYNCHRONISATION = 66
    BMS = 67
    NETWORK_A = 68
    NETWORK_B = 69
    NETWORK_C = 70
    NETWORK_D = 71
    PV_INPUT_SHUTDOWN_80 = 80
    PV_INPUT_SHUTDOWN_81 = 81
    PV_INPUT_SHUTDOWN_82 = 82
    PV_INPUT_SHUTDOWN_83 = 83
    PV_INPUT_SHUTDOWN_84 = 84
    PV_INPUT_SHUTDOWN_85 = 85
    PV_INPUT_SHUTDOWN_86 = 86
    PV_INPUT_SHUTDOWN_87 = 87
    CPU_TEMPERATURE = 114
    CALIBRATION_LOST = 116
    FIRMWARE = 117
    SETTINGS = 119
    TESTER_FAIL = 121
    INTERNAL_DC_VOLTAGE_A = 200
    INTERNAL_DC_VOLTAGE_B = 201
    SELF_TEST = 202
    INTERNAL_SUPPLY_A = 203
    INTERNAL_SUPPLY_B = 205
    INTERNAL_SUPPLY_C = 212
    INTERNAL_SUPPLY_D = 215


class OffReason(OpenIntFlag):
    """VE_REG_DEVICE_OFF_REASON_2, u32 bit field (docs/protocol.md §4.8)."""

    NO_INPUT_POWER = 0x0001
    SWITCHED_OFF_SWITCH = 0x0002
    SWITCHED_OFF_REGISTER = 0x0004
    REMOTE_INPUT = 0x0008
    PROTECTION_ACTIVE = 0x0010
    PAYGO = 0x0020
    BMS = 0x0040
    ENGINE_SHUTDOWN = 0x0080
    ANALYSING_INPUT_VOLTAGE = 0x0100
    LOW_BATTERY_TEMPERATURE = 0x0200
    NO_PV_POWER = 0x0400
    NO_BATTERY_POWER = 0x0800
    NO_MAINS = 0x1000
    NO_CAN_SYNC = 0x2000
    NOT_ENOUGH_INVERTERS = 0x4000
    ACTIVE_ALARM = 0x8000


class AlarmReason(OpenIntFlag):
    """VE_REG_ALARM_REASON / VE_REG_WARNING_REASON, u16 (docs/protocol.md §4.7)."""

    LOW_VOLTAGE = 1 << 0
    HIGH_VOLTAGE = 1 << 1
    LOW_SOC = 1 << 2
    LOW_STARTER_VOLTAGE = 1 << 3
    HIGH_STARTER_VOLTAGE = 1 << 4
    LOW_TEMPERATURE = 1 << 5
    HIGH_TEMPERATURE = 1 << 6
    MID_VOLTAGE = 1 << 7
    OVERLOAD = 1 << 8
    DC_RIPPLE = 1 << 9
    LOW_AC_OUT_VOLTAGE = 1 << 10
    HIGH_AC_OUT_VOLTAGE = 1 << 11
    SHORT_CIRCUIT = 1 << 12
    BMS_LOCKOUT = 1 << 13
    BMS_CABLE_FAILURE = 1 << 14


class BmsFlags(OpenIntFlag):
    """VE_REG_BMS_FLAGS (0x2100), the 32-bit word of record 0x05 (docs/protocol.md §4.1)."""

    CHARGED = 1 << 0
    ALMOST_CHARGED = 1 << 1
    DISCHARGED = 1 << 2
    ALMOST_DISCHARGED = 1 << 3
    CHARGING = 1 << 4
    DISCHARGING = 1 << 5
    BALANCING = 1 << 6
    RELAY_DISCHARGE = 1 << 7
    RELAY_CHARGE = 1 << 8
    ALARM_OVER_VOLTAGE = 1 << 9
    WARNING_OVER_VOLTAGE = 1 << 10
    ALARM_UNDER_VOLTAGE = 1 << 11
    WARNING_UNDER_VOLTAGE = 1 << 12
    WARNING_CHARGE_CURRENT = 1 << 13
    WARNING_DISCHARGE_CURRENT = 1 << 14
    ALARM_OVER_TEMPERATURE = 1 << 15
    WARNING_OVER_TEMPERATURE = 1 << 16
    WARNING_UNDER_TEMPERATURE_CHARGE = 1 << 17
    ALARM_UNDER_TEMPERATURE_CHARGE = 1 << 18
    WARNING_UNDER_TEMPERATURE_DISCHARGE = 1 << 19
    ALARM_UNDER_TEMPERATURE_DISCHARGE = 1 << 20
    LOW_SOC = 1 << 21
    ALARM_UNDER_TEMPERATURE = 1 << 22
    ALARM_SHORT_CIRCUIT = 1 << 23
    ALARM_HARDWARE_FAILURE = 1 << 24
    ALLOWED_TO_CHARGE = 1 << 25
    ALLOWED_TO_DISCHARGE = 1 << 26
    PRE_ALARM = 1 << 27
    WARNING_BAD_CONTACTOR = 1 << 28
    ALARM_HIGH_CURRENT = 1 << 29


class SmartLithiumErrorFlags(OpenIntFlag):
    """Low 16 bits of VE_REG_SMART_LITHIUM_ERROR_FLAGS (0xEC80) (docs/protocol.md §4.2)."""

    BALANCER_FAILURE = 1 << 0
    COMMUNICATION_ERROR = 1 << 1
    VOLTAGE_01_ERROR = 1 << 2
    VOLTAGE_12_ERROR = 1 << 3
    BALANCER_0_UPDATE_ERROR = 1 << 4
    BALANCER_1_UPDATE_ERROR = 1 << 5
    BALANCER_2_UPDATE_ERROR = 1 << 6
    SETTINGS_DATA_INVALID = 1 << 7
    OVERLAPPED_VOLTAGE_ERROR = 1 << 8
    BALANCER_UPDATE_ERROR = 1 << 9
    WRONG_BALANCER_PRODUCT_ID = 1 << 10


class BalancerStatus(OpenIntEnum):
    """VE_REG_BALANCER_STATUS (docs/protocol.md §4.6); 0xF in the record means not available."""

    UNKNOWN = 0
    BALANCED = 1
    BALANCING = 2
    IMBALANCE = 3


class BmsError(OpenIntEnum):
    """VE_REG_BMS_ERROR (0x2101), one value (docs/protocol.md §4.3)."""

    NONE = 0
    BATTERY_INITIALISATION = 1
    NO_BATTERIES = 2
    UNKNOWN_BATTERY = 3
    DIFFERENT_BATTERY_TYPES = 4
    NUMBER_OF_BATTERIES_INCORRECT = 5
    LYNX_SHUNT_NOT_FOUND = 6
    BATTERY_MEASURE = 7
    INTERNAL_CALCULATION = 8
    BATTERIES_IN_SERIES_INCORRECT = 9
    NUMBER_OF_BATTERIES_INCORRECT_10 = 10
    HARDWARE = 11
    WATCHDOG = 12
    OVER_VOLTAGE = 13
    UNDER_VOLTAGE = 14
    OVER_TEMPERATURE = 15
    UNDER_TEMPERATURE = 16
    HARDWARE_IO_EXPANDER = 17
    UNDER_CHARGE_STANDBY = 18
    SAFETY_CONTACTOR_AT_STARTUP = 20
    ADC = 22
    BATTERY_COMMUNICATION = 23
    PRE_CHARGE = 25
    SAFETY_CONTACTOR = 26
    BATTERY_UPDATE = 28
    BATTERY_UPDATE_UNAVAILABLE = 29
    CALIBRATION_DATA_LOST_OLD = 30
    SETTINGS_INVALID_OLD = 31
    BMS_CABLE = 32
    REFERENCE_VOLTAGE_FAILURE = 33
    WRONG_SYSTEM_VOLTAGE = 34
    PRE_CHARGE_TIMEOUT = 35
    ATC_ATD_FAILURE = 36
    INTERLOCK = 37
    EMERGENCY_STOP = 38
    COMMUNICATION_TIMEOUT = 39
    SAFETY_LOCK = 40
    TERMINAL_OVER_TEMPERATURE = 41
    CALIBRATION_DATA_LOST = 116
    SETTINGS_DATA_INVALID = 119


class TriState(OpenIntEnum):
    """One 2-bit field of VE_REG_BMS_IO (docs/protocol.md §4.4)."""

    NOT_AVAILABLE = 0
    YES = 1
    NO = 2


class AlarmLevel(OpenIntEnum):
    """One 2-bit field of VE_REG_BMS_WARNINGS_ALARMS (docs/protocol.md §4.5)."""

    UNSUPPORTED = 0
    OK = 1
    WARNING = 2
    ALARM = 3


class AuxInput(OpenIntEnum):
    """VE_REG_BMV_AUX_INPUT: what the battery monitor's aux value holds."""

    STARTER_VOLTAGE = 0
    MIDPOINT_VOLTAGE = 1
    TEMPERATURE = 2
    NONE = 3


class AcInput(OpenIntEnum):
    """VE_REG_AC_IN_ACTIVE."""

    AC_IN_1 = 0
    AC_IN_2 = 1
    NOT_CONNECTED = 2
    UNKNOWN = 3


class AlarmNotification(OpenIntEnum):
    """VE.Bus record 2-bit alarm field."""

    NO_ALARM = 0
    WARNING = 1
    ALARM = 2


class OutputState(OpenIntEnum):
    """VE_REG_DC_OUTPUT_STATUS (Smart BatteryProtect)."""

    OFF = 0
    ON = 1
    CONNECTING = 2
    ACTIVATING = 3


class CellBound(enum.Enum):
    """A cell voltage outside the 7-bit range: a bound, not a number (docs/protocol.md §2.1)."""

    BELOW = "<2.61"
    ABOVE = ">3.85"

    @property
    def bound_v(self) -> float:
        return 2.61 if self is CellBound.BELOW else 3.85

    def __str__(self) -> str:
        return self.value
