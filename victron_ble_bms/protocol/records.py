"""Typed, immutable records: one frozen dataclass per record type, fields in layout order.

Each class names its `LAYOUT`; a test checks that the dataclass fields and the layout agree,
so the table stays the one description of the wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import codes as _codes
from . import plausibility as _plausible
from .enums import (
    AcInput,
    AlarmLevel,
    AlarmNotification,
    AlarmReason,
    AuxInput,
    BalancerStatus,
    BmsError,
    BmsFlags,
    CellBound,
    ChargerError,
    DeviceState,
    OffReason,
    OutputState,
    SmartLithiumErrorFlags,
    TriState,
)
from .envelope import Frame, parse_frame
from .errors import DecodeError
from .fields import Layout
from .layouts import LAYOUTS
from .products import product_name

CellVoltage = float | CellBound | None


@dataclass(frozen=True, slots=True)
class Record:
    """Base of every record.

    `wire` is the manufacturer data the record was decoded from (None for records built in
    code); it is not part of equality, so `decode(encode(r, …)) == r`. The header is parsed
    from it on demand (`frame`), which keeps decoding a stream cheap.

    `missing_fields`: the layout's fields that reached past the received bytes (docs/protocol.md
    §8.1), so their value is unknown, not "not available" from the device.
    """

    LAYOUT: ClassVar[Layout]
    # The fields `codes` are derived from: when one was not received, the codes are unknown.
    CODE_FIELDS: ClassVar[frozenset[str]] = frozenset()
    wire: bytes | None = field(default=None, compare=False, repr=False, kw_only=True)
    missing_fields: tuple[str, ...] = field(default=(), compare=False, repr=False, kw_only=True)

    @property
    def frame(self) -> Frame | None:
        """The clear header this record arrived in (None if built in code or unreadable)."""
        if self.wire is None:
            return None
        try:
            return parse_frame(self.wire)
        except DecodeError:
            return None

    @property
    def partial(self) -> bool:
        """True when the frame was shorter than the layout: some values are unknown."""
        return bool(self.missing_fields)

    @property
    def record_type(self) -> int:
        return self.LAYOUT.record_type

    @property
    def record_name(self) -> str:
        return self.LAYOUT.name

    @property
    def provisional(self) -> bool:
        """True when the layout is the project's guess (0x0E, docs/protocol.md §8.2)."""
        return self.LAYOUT.provisional

    @property
    def codes(self) -> tuple[_codes.Code, ...] | None:
        """Active warning/alarm/error codes, worst first; None = unknown (a field they come
        from was not received). Never show None as "no active codes"."""
        if self.missing_fields and not self.CODE_FIELDS.isdisjoint(self.missing_fields):
            return None
        return self._codes()

    def _codes(self) -> tuple[_codes.Code, ...] | None:
        return ()

    @property
    def implausible(self) -> tuple[str, ...]:
        """Why the values can't be physically true ("wrong key or corrupt frame?"); () if fine."""
        reasons = []
        for f in self.LAYOUT.fields:
            bounds = f.plausible
            if bounds is not None:
                value = getattr(self, f.name)
                if value is not None:
                    reason = _plausible.out_of_bounds(f.name, value, bounds, f.unit)
                    if reason:
                        reasons.append(reason)
        reasons.extend(self._implausible_extra())
        return tuple(reasons)

    def _implausible_extra(self) -> list[str]:
        """Checks across fields (a pack against its cells …)."""
        return []

    @property
    def product(self) -> str | None:
        return None if self.frame is None else product_name(self.frame.model_id)

    def values(self) -> dict[str, Any]:
        """The layout's fields by name, typed."""
        return {f.name: getattr(self, f.name) for f in self.LAYOUT.fields}

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of `victron-bms decode --json`."""
        frame = self.frame
        codes = self.codes
        out: dict[str, Any] = {
            "record_type": self.LAYOUT.name,
            "record_type_id": self.LAYOUT.record_type,
            "model_id": None if frame is None else frame.model_id,
            "product": None if frame is None else product_name(frame.model_id),
            "nonce": None if frame is None else frame.nonce,
            "provisional": self.LAYOUT.provisional,
            "codes": None if codes is None else [c.to_dict() for c in codes],
        }
        for f in self.LAYOUT.fields:
            out[f.key] = f.json_value(getattr(self, f.name))
        out.update(self._json_extra())
        # Only for partial or implausible frames, so full plausible frames' JSON is unchanged.
        if self.missing_fields:
            out["partial"] = True
            out["missing_fields"] = list(self.missing_fields)
        implausible = self.implausible
        if implausible:
            out["implausible"] = list(implausible)
        return out

    def _json_extra(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True)
class TestRecord(Record):
    __test__: ClassVar[bool] = False  # not a pytest class
    LAYOUT: ClassVar[Layout] = LAYOUTS[0x00]
    uptime_s: int | None
    temperature_c: int | None


@dataclass(frozen=True, slots=True)
class UnencryptedTestRecord(Record):
    __test__: ClassVar[bool] = False  # not a pytest class
    LAYOUT: ClassVar[Layout] = LAYOUTS[0xFF00]
    uptime_s: int | None
    temperature_c: int | None


@dataclass(frozen=True, slots=True)
class SolarChargerRecord(Record):
    LAYOUT: ClassVar[Layout] = LAYOUTS[0x01]
    device_state: DeviceState | None
    charger_error: ChargerError | None
    battery_voltage_v: float | None
    battery_current_a: float | None
    yield_today_kwh: float | None
    pv_power_w: int | None
    load_current_a: float | None


def _aux_values(aux_mode: AuxInput | None, raw: int | None) -> dict[str, float | None]:
    """The battery monitor's aux value, read according to its mode (docs/protocol.md §2.4)."""
    starter = mid = temperature = None
    if raw is None:
        pass
    elif aux_mode is AuxInput.STARTER_VOLTAGE and raw != 0x7FFF:
        starter = (raw - 0x10000 if raw & 0x8000 else raw) / 100
    elif aux_mode is AuxInput.MIDPOINT_VOLTAGE and raw != 0xFFFF:
        mid = raw / 100
    elif aux_mode is AuxInput.TEMPERATURE and raw != 0xFFFF:
        temperature = round(raw / 100 - 273.15, 2)
    return {"starter_voltage_v": starter, "midpoint_voltage_v": mid, "temperature_c": temperature}


def _aux_implausible(aux: dict[str, float | None], battery_v: float | None) -> list[str]:
    """A starter battery is a 12/24 V battery; a midpoint is the middle of the bank."""
    out = []
    starter, mid, temperature = (
        aux["starter_voltage_v"],
        aux["midpoint_voltage_v"],
        aux["temperature_c"],
    )
    if temperature is not None:
        bounds = _plausible.AUX_TEMPERATURE_C
        out.append(_plausible.out_of_bounds("temperature_c", temperature, bounds, "°C"))
    if starter is not None:
        out.append(_plausible.out_of_bounds("starter_voltage_v", starter, _plausible.DC_V, "V"))
    if mid is not None and battery_v is not None:
        out.append(_plausible.out_of_bounds("midpoint_voltage_v", mid, (0.0, battery_v + 1.0), "V"))
    return [r for r in out if r]


@dataclass(frozen=True, slots=True)
class BatteryMonitorRecord(Record):
    LAYOUT: ClassVar[Layout] = LAYOUTS[0x02]
    ttg_min: int | None
    battery_voltage_v: float | None
    alarm_reason: AlarmReason | None
    aux_raw: int | None
    aux_mode: AuxInput | None
    battery_current_a: float | None
    consumed_ah: float | None
    soc_pct: float | None

    @property
    def aux(self) -> dict[str, float | None]:
        return _aux_values(self.aux_mode, self.aux_raw)

    def _json_extra(self) -> dict[str, Any]:
        return self.aux

    def _implausible_extra(self) -> list[str]:
        return _aux_implausible(self.aux, self.battery_voltage_v)


@dataclass(frozen=True, slots=True)
class InverterRecord(Record):
    LAYOUT: ClassVar[Layout] = LAYOUTS[0x03]
    device_state: DeviceState | None
    alarm_reason: AlarmReason | None
    battery_voltage_v: float | None
    ac_apparent_power_va: int | None
    ac_voltage_v: float | None
    ac_current_a: float | None


@dataclass(frozen=True, slots=True)
class DcDcConverterRecord(Record):
    LAYOUT: ClassVar[Layout] = LAYOUTS[0x04]
    device_state: DeviceState | None
    charger_error: ChargerError | None
    input_voltage_v: float | None
    output_voltage_v: float | None
    off_reason: OffReason | None


@dataclass(frozen=True, slots=True)
class SmartLithiumRecord(Record):
    """Lithium Battery Smart (record 0x05, docs/protocol.md §2.1)."""

    LAYOUT: ClassVar[Layout] = LAYOUTS[0x05]
    CODE_FIELDS: ClassVar[frozenset[str]] = frozenset({"bms_flags", "error_flags"})
    bms_flags: BmsFlags | None  # None only when not received (partial frame)
    error_flags: SmartLithiumErrorFlags | None
    cell_voltages_v: tuple[CellVoltage, ...]
    battery_voltage_v: float | None
    balancer_status: BalancerStatus | None
    battery_temperature_c: int | None

    def _codes(self) -> tuple[_codes.Code, ...] | None:
        if self.bms_flags is None or self.error_flags is None:
            return None
        return _codes.smart_lithium_codes(int(self.bms_flags), int(self.error_flags))

    def _implausible_extra(self) -> list[str]:
        pack = self.battery_voltage_v
        if pack is None or "cell_voltages_v" in self.missing_fields:
            return []
        reason = _plausible.pack_vs_cells(pack, (_cell_range(v) for v in self.cells))
        return [reason] if reason else []

    @property
    def cells(self) -> tuple[float | CellBound, ...]:
        """The cells that report a value (4 on 12.8 V batteries, 8 on 25.6 V)."""
        return tuple(v for v in (self.cell_voltages_v or ()) if v is not None)

    @property
    def cell_count(self) -> int:
        return len(self.cells)

    @property
    def min_cell_v(self) -> float | None:
        numeric = [_as_volts(v) for v in self.cells]
        return min(numeric) if numeric else None

    @property
    def max_cell_v(self) -> float | None:
        numeric = [_as_volts(v) for v in self.cells]
        return max(numeric) if numeric else None

    @property
    def cell_spread_mv(self) -> int | None:
        numeric = [_as_volts(v) for v in self.cells]  # min_cell_v's and max_cell_v's, once
        return round((max(numeric) - min(numeric)) * 1000) if numeric else None

    @property
    def allowed_to_charge(self) -> bool | None:
        return None if self.bms_flags is None else BmsFlags.ALLOWED_TO_CHARGE in self.bms_flags

    @property
    def allowed_to_discharge(self) -> bool | None:
        flags = self.bms_flags
        return None if flags is None else BmsFlags.ALLOWED_TO_DISCHARGE in flags

    @property
    def pre_alarm(self) -> bool | None:
        """The cell under-voltage pre-alarm (LBS manual §3.3, code W-SL12). The battery reports
        it in bit 12, WARN_UNDER_VOLTAGE: that is among the bits it sets, while the generic
        PRE_ALARM bit 27 is not (docs/protocol.md §4.1). Either bit counts."""
        if self.bms_flags is None:
            return None
        return bool(self.bms_flags & (BmsFlags.PRE_ALARM | BmsFlags.WARNING_UNDER_VOLTAGE))


def _as_volts(value: float | CellBound) -> float:
    return value.bound_v if isinstance(value, CellBound) else value


def _cell_range(value: float | CellBound) -> tuple[float, float]:
    """The voltages a cell reading can stand for (docs/protocol.md §2.1)."""
    if value is CellBound.BELOW:
        return _plausible.CELL_BELOW_RANGE_V
    if value is CellBound.ABOVE:
        return _plausible.CELL_ABOVE_RANGE_V
    v = float(value)
    return v - _plausible.CELL_STEP_V, v + _plausible.CELL_STEP_V


@dataclass(frozen=True, slots=True)
class InverterRsRecord(Record):
    LAYOUT: ClassVar[Layout] = LAYOUTS[0x06]
    device_state: DeviceState | None
    charger_error: ChargerError | None
    battery_voltage_v: float | None
    battery_current_a: float | None
    pv_power_w: int | None
    yield_today_kwh: float | None
    ac_out_power_w: int | None


@dataclass(frozen=True, slots=True)
class GxDeviceRecord(Record):
    LAYOUT: ClassVar[Layout] = LAYOUTS[0x07]
    battery_voltage_v: float | None
    pv_power_w: int | None
    soc_pct: int | None
    battery_power_w: int | None
    dc_power_w: int | None


@dataclass(frozen=True, slots=True)
class AcChargerRecord(Record):
    LAYOUT: ClassVar[Layout] = LAYOUTS[0x08]
    device_state: DeviceState | None
    charger_error: ChargerError | None
    battery_voltage_1_v: float | None
    battery_current_1_a: float | None
    battery_voltage_2_v: float | None
    battery_current_2_a: float | None
    battery_voltage_3_v: float | None
    battery_current_3_a: float | None
    temperature_c: int | None
    ac_current_a: float | None


@dataclass(frozen=True, slots=True)
class SmartBatteryProtectRecord(Record):
    LAYOUT: ClassVar[Layout] = LAYOUTS[0x09]
    device_state: DeviceState | None
    output_state: OutputState | None
    error_code: ChargerError | None
    alarm_reason: AlarmReason | None
    warning_reason: AlarmReason | None
    input_voltage_v: float | None
    output_voltage_v: float | None
    off_reason: OffReason | None


# VE_REG_BMS_IO fields, 2 bits each (docs/protocol.md §4.4).
LYNX_IO_FIELDS = (
    "contactor_closed",
    "allowed_to_charge",
    "allowed_to_discharge",
    "user_relay_active",
    "aux_output_enabled",
    "remote_enabled",
    "alternator_allowed_to_charge",
    "field_7",
)


@dataclass(frozen=True, slots=True)
class LynxSmartBmsRecord(Record):
    """(Lynx Smart) BMS, also Lithium SuperPack NG (record 0x0A, docs/protocol.md §2.2)."""

    LAYOUT: ClassVar[Layout] = LAYOUTS[0x0A]
    CODE_FIELDS: ClassVar[frozenset[str]] = frozenset({"bms_error", "warnings_alarms"})
    bms_error: BmsError | None  # None only when not received (partial frame)
    ttg_min: int | None
    battery_voltage_v: float | None
    battery_current_a: float | None
    io_status: int | None
    warnings_alarms: int | None
    soc_pct: float | None
    consumed_ah: float | None
    temperature_c: int | None

    def _codes(self) -> tuple[_codes.Code, ...] | None:
        if self.bms_error is None or self.warnings_alarms is None:
            return None
        return _codes.lynx_codes(int(self.bms_error), self.warnings_alarms)

    @property
    def io(self) -> dict[str, TriState]:
        """Each IO item: yes / no / not available ({} when the field was not received)."""
        raw = self.io_status
        if raw is None:
            return {}
        return {name: TriState(raw >> (2 * i) & 3) for i, name in enumerate(LYNX_IO_FIELDS)}

    @property
    def alarms(self) -> dict[str, AlarmLevel]:
        """Each warnings/alarms item: ok / warning / alarm / unsupported ({} if not received)."""
        raw = self.warnings_alarms
        if raw is None:
            return {}
        return {
            key: AlarmLevel(raw >> (2 * i) & 3)
            for i, (key, _) in enumerate(_codes.LYNX_ALARM_FIELDS)
        }

    @property
    def power_w(self) -> float | None:
        v, i = self.battery_voltage_v, self.battery_current_a
        return None if v is None or i is None else round(v * i, 1)

    def _json_extra(self) -> dict[str, Any]:
        io, alarms = self.io, self.alarms
        return {
            "io": {k: v.name.lower() for k, v in io.items()} if io else None,
            "alarms": {k: v.name.lower() for k, v in alarms.items()} if alarms else None,
        }


@dataclass(frozen=True, slots=True)
class MultiRsRecord(Record):
    LAYOUT: ClassVar[Layout] = LAYOUTS[0x0B]
    device_state: DeviceState | None
    charger_error: ChargerError | None
    battery_current_a: float | None
    battery_voltage_v: float | None
    active_ac_in: AcInput | None
    active_ac_in_power_w: int | None
    ac_out_power_w: int | None
    pv_power_w: int | None
    yield_today_kwh: float | None


@dataclass(frozen=True, slots=True)
class VeBusRecord(Record):
    LAYOUT: ClassVar[Layout] = LAYOUTS[0x0C]
    device_state: DeviceState | None
    vebus_error: int | None
    battery_current_a: float | None
    battery_voltage_v: float | None
    active_ac_in: AcInput | None
    active_ac_in_power_w: int | None
    ac_out_power_w: int | None
    alarm: AlarmNotification | None
    battery_temperature_c: int | None
    soc_pct: int | None


@dataclass(frozen=True, slots=True)
class DcEnergyMeterRecord(Record):
    LAYOUT: ClassVar[Layout] = LAYOUTS[0x0D]
    monitor_mode: int | None
    battery_voltage_v: float | None
    alarm_reason: AlarmReason | None
    aux_raw: int | None
    aux_mode: AuxInput | None
    battery_current_a: float | None

    @property
    def aux(self) -> dict[str, float | None]:
        return _aux_values(self.aux_mode, self.aux_raw)

    def _json_extra(self) -> dict[str, Any]:
        return self.aux

    def _implausible_extra(self) -> list[str]:
        return _aux_implausible(self.aux, self.battery_voltage_v)


@dataclass(frozen=True, slots=True)
class SmartBmsRecord(Record):
    """Smart BMS CL 12/100 and 12/200 (record 0x0E). PROVISIONAL layout (docs/protocol.md §8.2)."""

    LAYOUT: ClassVar[Layout] = LAYOUTS[0x0E]
    CODE_FIELDS: ClassVar[frozenset[str]] = frozenset({"bms_error", "alarm_reason"})
    bms_error: BmsError | None  # None only when not received (partial frame)
    alarm_reason: AlarmReason | None
    battery_voltage_v: float | None
    system_voltage_v: float | None
    alternator_voltage_v: float | None
    alternator_current_pct: int | None
    unidentified: bytes | None

    def _codes(self) -> tuple[_codes.Code, ...] | None:
        if self.bms_error is None or self.alarm_reason is None:
            return None
        return _codes.smart_bms_codes(int(self.bms_error), int(self.alarm_reason))


@dataclass(frozen=True, slots=True)
class OrionXsRecord(Record):
    LAYOUT: ClassVar[Layout] = LAYOUTS[0x0F]
    device_state: DeviceState | None
    charger_error: ChargerError | None
    output_voltage_v: float | None
    output_current_a: float | None
    input_voltage_v: float | None
    input_current_a: float | None
    off_reason: OffReason | None


# Records without a code catalogue: their alarm/warning/error fields still decide whether "no
# active codes" can be said.
_STATUS_FIELDS = frozenset(
    {"alarm_reason", "warning_reason", "charger_error", "error_code", "vebus_error", "alarm"}
)

RECORD_CLASSES: dict[int, type[Record]] = {
    cls.LAYOUT.record_type: cls
    for cls in (
        TestRecord,
        SolarChargerRecord,
        BatteryMonitorRecord,
        InverterRecord,
        DcDcConverterRecord,
        SmartLithiumRecord,
        InverterRsRecord,
        GxDeviceRecord,
        AcChargerRecord,
        SmartBatteryProtectRecord,
        LynxSmartBmsRecord,
        MultiRsRecord,
        VeBusRecord,
        DcEnergyMeterRecord,
        SmartBmsRecord,
        OrionXsRecord,
        UnencryptedTestRecord,
    )
}

for _cls in RECORD_CLASSES.values():
    if not _cls.CODE_FIELDS:
        _cls.CODE_FIELDS = _STATUS_FIELDS & {f.name for f in _cls.LAYOUT.fields}
