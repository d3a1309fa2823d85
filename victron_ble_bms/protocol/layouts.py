"""One declarative table per record type (docs/protocol.md §2; payload bit = SPEC bit − 32)."""

from __future__ import annotations

from .enums import (
    AcInput,
    AlarmNotification,
    AlarmReason,
    AuxInput,
    BalancerStatus,
    BmsError,
    BmsFlags,
    ChargerError,
    DeviceState,
    OffReason,
    OutputState,
    SmartLithiumErrorFlags,
)
from .fields import Field, Kind, Layout
from .plausibility import BATTERY_V, DC_V, SOC_PCT
from .provisional import SMART_BMS_LAYOUT


def _state(start: int = 0) -> Field:
    return Field("device_state", start, 8, Kind.ENUM, enum=DeviceState, doc="VE_REG_DEVICE_STATE")


def _charger_error(start: int = 8, name: str = "charger_error") -> Field:
    return Field(name, start, 8, Kind.ENUM, enum=ChargerError, doc="VE_REG_CHR_ERROR_CODE")


def _volts(
    name: str,
    start: int,
    width: int = 16,
    signed: bool = True,
    plausible: tuple[float, float] | None = DC_V,
) -> Field:
    return Field(name, start, width, signed=signed, decimals=2, unit="V", plausible=plausible)


def _amps(name: str, start: int, width: int = 16, signed: bool = True, decimals: int = 1) -> Field:
    return Field(name, start, width, signed=signed, decimals=decimals, unit="A")


def _temperature(name: str, start: int) -> Field:
    # 7 bits, °C = raw − 40 (−40..86 °C), NA 0x7F
    return Field(name, start, 7, offset=-40, unit="°C")


def _flags(name: str, start: int, width: int, flags: type, doc: str) -> Field:
    return Field(name, start, width, Kind.FLAGS, enum=flags, has_na=False, doc=doc)


def _test_layout(record_type: int, name: str, title: str) -> Layout:
    return Layout(
        record_type,
        name,
        title,
        (
            Field("uptime_s", 0, 30, unit="s", doc="VE_REG_UPTIME"),
            # SPEC prints NA 0xFF for this 7-bit field; 0x7F is what fits (docs/protocol.md §2.5)
            _temperature("temperature_c", 30),
        ),
        data_bytes=5,
    )


# Battery monitor / DC energy meter current: signed 22 bits, 0.001 A. SPEC gives NA 0x3FFFFF
# (all ones); Smart Battery Sense sends 0x1FFFFF (max positive): both mean "not available".
def _milliamps(start: int) -> Field:
    return Field(
        "battery_current_a", start, 22, signed=True, decimals=3, unit="A", extra_na=(0x3FFFFF,)
    )


LAYOUTS: dict[int, Layout] = {
    layout.record_type: layout
    for layout in (
        _test_layout(0x00, "test", "Test record"),
        Layout(
            0x01,
            "solar_charger",
            "Solar charger",
            (
                _state(),
                _charger_error(),
                _volts("battery_voltage_v", 16),
                _amps("battery_current_a", 32),
                Field("yield_today_kwh", 48, 16, decimals=2, unit="kWh"),
                Field("pv_power_w", 64, 16, unit="W"),
                _amps("load_current_a", 80, 9, signed=False),
            ),
            data_bytes=12,
        ),
        Layout(
            0x02,
            "battery_monitor",
            "Battery monitor",
            (
                Field("ttg_min", 0, 16, unit="min"),
                _volts("battery_voltage_v", 16, plausible=BATTERY_V),
                _flags("alarm_reason", 32, 16, AlarmReason, "VE_REG_ALARM_REASON"),
                Field(
                    "aux_raw", 48, 16, has_na=False, doc="starter V, mid V or temperature: aux_mode"
                ),
                Field("aux_mode", 64, 2, Kind.ENUM, enum=AuxInput, has_na=False),
                _milliamps(66),
                Field(
                    "consumed_ah",
                    88,
                    20,
                    negate=True,
                    decimals=1,
                    unit="Ah",
                    doc="consumed Ah = −raw (SPEC)",
                ),
                Field("soc_pct", 108, 10, decimals=1, unit="%", plausible=SOC_PCT),
            ),
            data_bytes=15,
        ),
        Layout(
            0x03,
            "inverter",
            "Inverter",
            (
                _state(),
                _flags("alarm_reason", 8, 16, AlarmReason, "VE_REG_ALARM_REASON"),
                _volts("battery_voltage_v", 24),
                Field("ac_apparent_power_va", 40, 16, unit="VA"),
                _volts("ac_voltage_v", 56, 15, signed=False, plausible=None),
                _amps("ac_current_a", 71, 11, signed=False),
            ),
            data_bytes=11,
        ),
        Layout(
            0x04,
            "dcdc_converter",
            "DC/DC converter",
            (
                _state(),
                _charger_error(),
                _volts("input_voltage_v", 16, signed=False),
                _volts("output_voltage_v", 32),
                _flags("off_reason", 48, 32, OffReason, "VE_REG_DEVICE_OFF_REASON_2"),
            ),
            data_bytes=10,
        ),
        Layout(
            0x05,
            "smart_lithium",
            "SmartLithium (Lithium Battery Smart)",
            (
                _flags("bms_flags", 0, 32, BmsFlags, "VE_REG_BMS_FLAGS (§4.1)"),
                _flags(
                    "error_flags",
                    32,
                    16,
                    SmartLithiumErrorFlags,
                    "VE_REG_SMART_LITHIUM_ERROR_FLAGS, low 16 bits (§4.2)",
                ),
                Field(
                    "cell_voltages_v",
                    48,
                    7,
                    Kind.CELL,
                    count=8,
                    unit="V",
                    doc="2.60 V + raw × 0.01; 0 = <2.61 V, 126 = >3.85 V, 127 = n/a",
                ),
                _volts("battery_voltage_v", 104, 12, signed=False, plausible=BATTERY_V),
                Field(
                    "balancer_status",
                    116,
                    4,
                    Kind.ENUM,
                    enum=BalancerStatus,
                    json_as_name=True,
                    doc="VE_REG_BALANCER_STATUS (§4.6)",
                ),
                _temperature("battery_temperature_c", 120),
            ),
            data_bytes=16,
        ),
        Layout(
            0x06,
            "inverter_rs",
            "Inverter RS",
            (
                _state(),
                _charger_error(),
                _volts("battery_voltage_v", 16),
                _amps("battery_current_a", 32),
                Field("pv_power_w", 48, 16, unit="W"),
                Field("yield_today_kwh", 64, 16, decimals=2, unit="kWh"),
                Field("ac_out_power_w", 80, 16, signed=True, unit="W"),
            ),
            data_bytes=12,
        ),
        Layout(
            0x07,
            "gx_device",
            "GX device (SPEC: layout to be determined)",
            (
                _volts("battery_voltage_v", 0, signed=False),
                Field("pv_power_w", 16, 20, unit="W"),
                Field("soc_pct", 36, 7, unit="%", plausible=SOC_PCT),
                Field("battery_power_w", 43, 21, signed=True, unit="W"),
                Field("dc_power_w", 64, 21, signed=True, unit="W"),
            ),
            data_bytes=11,
        ),
        Layout(
            0x08,
            "ac_charger",
            "AC charger",
            (
                _state(),
                _charger_error(),
                _volts("battery_voltage_1_v", 16, 13, signed=False),
                _amps("battery_current_1_a", 29, 11, signed=False),
                _volts("battery_voltage_2_v", 40, 13, signed=False),
                _amps("battery_current_2_a", 53, 11, signed=False),
                _volts("battery_voltage_3_v", 64, 13, signed=False),
                _amps("battery_current_3_a", 77, 11, signed=False),
                _temperature("temperature_c", 88),
                _amps("ac_current_a", 95, 9, signed=False),
            ),
            data_bytes=13,
        ),
        # SPEC's start bits for this record are 24 too low; the real advert decodes with these.
        Layout(
            0x09,
            "smart_battery_protect",
            "Smart BatteryProtect",
            (
                _state(),
                Field("output_state", 8, 8, Kind.ENUM, enum=OutputState),
                _charger_error(16, "error_code"),
                _flags("alarm_reason", 24, 16, AlarmReason, "VE_REG_ALARM_REASON"),
                _flags("warning_reason", 40, 16, AlarmReason, "VE_REG_WARNING_REASON"),
                _volts("input_voltage_v", 56),
                _volts("output_voltage_v", 72, signed=False),
                _flags("off_reason", 88, 32, OffReason, "VE_REG_DEVICE_OFF_REASON_2"),
            ),
            data_bytes=15,
        ),
        Layout(
            0x0A,
            "lynx_smart_bms",
            "(Lynx Smart) BMS",
            (
                # SPEC's "NA 0x0" for the error is simply "no error" (docs/protocol.md §2.2)
                Field(
                    "bms_error",
                    0,
                    8,
                    Kind.ENUM,
                    enum=BmsError,
                    has_na=False,
                    doc="VE_REG_BMS_ERROR (§4.3)",
                ),
                Field("ttg_min", 8, 16, unit="min"),
                _volts("battery_voltage_v", 24, plausible=BATTERY_V),
                _amps("battery_current_a", 40),
                Field("io_status", 56, 16, has_na=False, doc="VE_REG_BMS_IO, 8 × 2-bit (§4.4)"),
                Field(
                    "warnings_alarms",
                    72,
                    18,
                    has_na=False,
                    doc="VE_REG_BMS_WARNINGS_ALARMS, 9 × 2-bit (§4.5)",
                ),
                Field("soc_pct", 90, 10, decimals=1, unit="%", plausible=SOC_PCT),
                Field(
                    "consumed_ah",
                    100,
                    20,
                    negate=True,
                    decimals=1,
                    unit="Ah",
                    doc="consumed Ah = −raw (SPEC; DBS scale −10)",
                ),
                _temperature("temperature_c", 120),
            ),
            data_bytes=16,
        ),
        Layout(
            0x0B,
            "multi_rs",
            "Multi RS",
            (
                _state(),
                _charger_error(),
                _amps("battery_current_a", 16),
                _volts("battery_voltage_v", 32, 14, signed=False),
                Field("active_ac_in", 46, 2, Kind.ENUM, enum=AcInput, has_na=False),
                Field("active_ac_in_power_w", 48, 16, signed=True, unit="W"),
                Field("ac_out_power_w", 64, 16, signed=True, unit="W"),
                Field("pv_power_w", 80, 16, unit="W"),
                Field("yield_today_kwh", 96, 16, decimals=2, unit="kWh"),
            ),
            data_bytes=14,
        ),
        Layout(
            0x0C,
            "ve_bus",
            "VE.Bus",
            (
                _state(),
                Field("vebus_error", 8, 8, doc="VE_REG_VEBUS_VEBUS_ERROR"),
                _amps("battery_current_a", 16),
                _volts("battery_voltage_v", 32, 14, signed=False),
                Field("active_ac_in", 46, 2, Kind.ENUM, enum=AcInput, has_na=False),
                Field("active_ac_in_power_w", 48, 19, signed=True, unit="W"),
                Field("ac_out_power_w", 67, 19, signed=True, unit="W"),
                Field("alarm", 86, 2, Kind.ENUM, enum=AlarmNotification),
                _temperature("battery_temperature_c", 88),
                Field("soc_pct", 95, 7, unit="%", plausible=SOC_PCT),
            ),
            data_bytes=13,
        ),
        Layout(
            0x0D,
            "dc_energy_meter",
            "DC energy meter",
            (
                Field(
                    "monitor_mode",
                    0,
                    16,
                    signed=True,
                    has_na=False,
                    doc="VE_REG_BMV_MONITOR_MODE (−3 DC/DC charger, −1 generic source …)",
                ),
                _volts("battery_voltage_v", 16, plausible=BATTERY_V),
                _flags("alarm_reason", 32, 16, AlarmReason, "VE_REG_ALARM_REASON"),
                Field("aux_raw", 48, 16, has_na=False, doc="starter V or temperature: aux_mode"),
                Field("aux_mode", 64, 2, Kind.ENUM, enum=AuxInput, has_na=False),
                _milliamps(66),
            ),
            data_bytes=11,
        ),
        SMART_BMS_LAYOUT,
        # Not in SPEC; name from DBS, layout from esphome-victron_ble#50 (docs/protocol.md §2.4).
        Layout(
            0x0F,
            "orion_xs",
            "Orion XS DC/DC",
            (
                _state(),
                _charger_error(),
                _volts("output_voltage_v", 16),
                _amps("output_current_a", 32),
                _volts("input_voltage_v", 48),
                _amps("input_current_a", 64),
                _flags("off_reason", 80, 32, OffReason, "VE_REG_DEVICE_OFF_REASON_2"),
            ),
            data_bytes=14,
            source="esphome-victron_ble#50",
        ),
        _test_layout(0xFF00, "test_unencrypted", "Unencrypted test record (0xFF00)"),
    )
}

for _layout in LAYOUTS.values():
    _layout.check()
