"""Smart BMS CL 12/100 and Smart BMS 12/200 with their battery bank, advertising record 0x0E in
the project's PROVISIONAL layout (docs/protocol.md §8.2).

Sources: `manuals/smart-bms-cl-12-100.txt` (CL) and `manuals/smart-bms-12-200.de.txt` (12/200),
section numbers of those manuals; `manuals/bms-overview.txt`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from victron_ble_bms.protocol import SmartBmsRecord
from victron_ble_bms.protocol.enums import AlarmReason, BmsError, BmsFlags
from victron_ble_bms.protocol.provisional import SMART_BMS_IDLE_UNIDENTIFIED

from .bank import Bank
from .base import (
    VOLTAGE_NOISE_V,
    ChargerRuntime,
    Identity,
    System,
    Transmitter,
    charge_current,
)
from .lithium import check_range
from .scenario import ChargerKind, Connection, Environment, FaultKind

# CL manual §3.4 fuse table (identical in the 12/200 manual): fuse rating → max alternator
# charge current ("electronically limited to approximately 90 % of the fuse rating", §2.2).
FUSE_LIMITS_A: dict[str, float] = {
    # The 12/200 ships with a "Megafuse 200A pre-installed" (12/200 manual §2.3), a rating the
    # fuse table does not list: ~90 % of it (§2.2) would be 180 A, but the alternator port's
    # maximum is 100 A (§4 "Alternator port - maximum charge current 100 A"; bms-overview:
    # "Alternator port … 100 A"), so a 200 A fuse limits to 100 A (inferred from those two).
    "200A": 100.0,
    "125A": 100.0,
    "100A": 90.0,
    "80A": 60.0,
    "60A": 50.0,
    "2x30A": 40.0,
    "2x20A": 25.0,
    "2x15A": 20.0,
    "2x10A": 12.0,
    "2x7.5A": 9.0,
}
FUSE_RATINGS_A = {"200A": 200, "125A": 125, "100A": 100, "80A": 80, "60A": 60, "2x30A": 60,
                  "2x20A": 40, "2x15A": 30, "2x10A": 20, "2x7.5A": 15}  # fmt: skip
ALTERNATOR_MIN_STARTER_V = 13.0  # §2.2: current flows only when the starter voltage exceeds 13 V
CHARGE_LIMIT_HYSTERESIS_V = 0.5  # §3.5.1: back on 0.5 V below the limit …
CHARGE_LIMIT_HOLD_S = 10.0  # … for 10 consecutive seconds
SYSTEM_PLUS_MAX_A = 200.0  # 12/200 manual §2.2: "maximum continuous current of 200A"
SYSTEM_PLUS_PEAK_A = 400.0  # 12/200 manual §4: "Spitzenentladestrom 400 A"
# A-A12 (12/200 Anhang B): "Kurzschluss, Überlastbedingung oder zu hoher Einschaltstrom". No
# manual gives the timing; inferred: a peak above 200 A is allowed for 5 s (the start-up surge
# of an inverter or motor lasts a few seconds), above 400 A the port trips at once (inrush or
# short). A-A12 does NOT latch: the port retries after 10 s — the one re-enable delay the Smart
# BMS manuals give (§3.5.1 charge limit, "10 (consecutive) seconds") — and trips again at once
# while the cause is still there, so A-A12 stays until the short or overload is gone.
OVERLOAD_PEAK_S = 5.0
SYSTEM_PLUS_RETRY_S = 10.0
ALTERNATOR_PATH_OHM = 0.01  # emulator choice: cables + the BMS's switch between the two batteries
# Errors in order of precedence (manual Appendix B); the record carries one value.
_FAULT_ERRORS = (
    (FaultKind.BMS_CABLE, BmsError.BMS_CABLE),  # E-B32
    (FaultKind.CALIBRATION_FAILURE, BmsError.CALIBRATION_DATA_LOST_OLD),  # E-B30
    (FaultKind.CONFIGURATION_FAILURE, BmsError.SETTINGS_INVALID_OLD),  # E-B31
    (FaultKind.REFERENCE_VOLTAGE_FAILURE, BmsError.REFERENCE_VOLTAGE_FAILURE),  # E-B33
)


@dataclass(frozen=True, slots=True)
class SmartBmsSettings:
    """§3.5.1 settings: fuse type, pre-alarm usage, battery charge limit 13.0–15.3 V (14.2)."""

    fuse: str = "100A"  # CL: "Megafuse 100A pre-installed" (CL §2.3); 12/200: see from_mapping
    pre_alarm_usage: bool = True
    charge_limit_v: float = 14.2

    def __post_init__(self) -> None:
        if self.fuse not in FUSE_LIMITS_A:
            raise ValueError(
                f"fuse {self.fuse!r} is not in the fuse table (Smart BMS manual §3.4): "
                + ", ".join(FUSE_LIMITS_A)
            )
        check_range("charge_limit_v", self.charge_limit_v, 13.0, 15.3, "V", "Smart BMS §3.5.1")
        if not isinstance(self.pre_alarm_usage, bool):
            raise ValueError(f"pre_alarm_usage must be true or false, not {self.pre_alarm_usage!r}")

    @property
    def alternator_limit_a(self) -> float:
        return FUSE_LIMITS_A[self.fuse]

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], *, default_fuse: str = "100A"
    ) -> SmartBmsSettings:
        """`default_fuse`: what the model ships with (12/200: "200A", 12/200 manual §2.3)."""
        known = {"fuse", "pre_alarm_usage", "charge_limit_v"}
        args: dict[str, Any] = {"fuse": default_fuse}
        args.update({k: v for k, v in values.items() if k in known})
        if "charge_limit_v" in args and isinstance(args["charge_limit_v"], int | float):
            args["charge_limit_v"] = float(args["charge_limit_v"])
        return cls(**args)


class SmartBms(Transmitter, System):
    """A Smart BMS: alternator port, load/charge-disconnect and pre-alarm outputs, System+."""

    def __init__(
        self,
        identity: Identity,
        nonce: int,
        bank: Bank,
        settings: SmartBmsSettings,
        chargers: list[ChargerRuntime],
        *,
        system_plus: bool,
    ) -> None:
        super().__init__(identity, nonce)
        self.bank = bank
        self.settings = settings
        self.chargers = chargers
        self.has_system_plus = system_plus
        self.faults: frozenset[FaultKind] = frozenset()
        self.starter_v = 12.6
        self.alternator_current_a = 0.0
        self.charge_limit_tripped = False
        self.below_limit_since: float | None = None
        self.system_plus_on = system_plus  # conducting for loads (discharge direction)
        self.system_plus_charging = False  # a System+ charger is charging through the port
        self.port_tripped_at: float | None = None  # A-A12: when the System+ port last tripped
        self.overload_s = 0.0
        self.alarm_reason = AlarmReason(0)
        # outputs (§2.2): load disconnect, charge disconnect (high = allowed), pre-alarm
        self.load_output = True
        self.charge_output = True
        self.pre_alarm_output = False

    @property
    def transmitters(self) -> list[Transmitter]:
        return [self, *self.bank.batteries]

    def step(self, env: Environment, dt: float) -> None:
        t, faults, bank = env.t, env.faults, self.bank
        self.faults = faults
        self.starter_v = env.starter_v
        # The daisy chain's signals are "normally high"; an open cable reads as "not allowed",
        # so the BMS fails safe (E-B32, Appendix B).
        cable_ok = FaultKind.BMS_CABLE not in faults
        atc = bank.allowed_to_charge and cable_ok
        atd = bank.allowed_to_discharge and cable_ok
        remote_off = FaultKind.REMOTE_OFF in faults
        over_temp = FaultKind.BMS_OVER_TEMPERATURE in faults  # A-B15: internal temperature
        self.load_output = atd
        self.charge_output = atc
        # Pre-alarm output: on with the battery's pre-alarm, off again at load disconnect
        # (Lithium Battery Smart manual §3.3); "Pre-alarm not available" disables it (§3.5.1).
        self.pre_alarm_output = self.settings.pre_alarm_usage and bank.pre_alarm and atd
        uncontrolled_load = FaultKind.UNCONTROLLED_LOAD in faults
        uncontrolled_charger = FaultKind.UNCONTROLLED_CHARGER in faults
        # Battery charge limit with 0.5 V / 10 s hysteresis (§3.5.1d). It acts on the
        # alternator/starter-battery input only: "the battery charge is stopped by deactivating
        # the alternator/starter battery+ input" — System+ and battery-side chargers are not
        # cut by it (issue 24 item 2); the charge-disconnect output protects those.
        v = bank.voltage_v
        limit = self.settings.charge_limit_v
        if not self.charge_limit_tripped:
            if v >= limit:
                self.charge_limit_tripped = True
                self.below_limit_since = None
        elif v <= limit - CHARGE_LIMIT_HYSTERESIS_V:
            if self.below_limit_since is None:
                self.below_limit_since = t
            if t - self.below_limit_since >= CHARGE_LIMIT_HOLD_S:
                self.charge_limit_tripped = False
                self.below_limit_since = None
        else:
            self.below_limit_since = None
        # Alternator port (§2.2): > 13 V starter, current-limited by the fuse table, one-way.
        alternator_rating = sum(
            a for c, a in env.chargers if c.kind is ChargerKind.ALTERNATOR and a > 0
        )
        i_alt = 0.0
        if (
            atc
            and not self.charge_limit_tripped
            and not remote_off
            and not over_temp
            and env.starter_v > ALTERNATOR_MIN_STARTER_V
            and alternator_rating > 0
        ):
            push = (env.starter_v - bank.ocv_v) / (ALTERNATOR_PATH_OHM + bank.resistance_ohm)
            i_alt = max(0.0, min(push, self.settings.alternator_limit_a, alternator_rating))
        self.alternator_current_a = i_alt
        # System+ (12/200) works in both directions (12/200 manual §2.1: "the power port works
        # in both directions and the BMS ensures that it will cut-off loads in case of imminent
        # cell under voltage … and also enables charging through this port"; Appendix C has
        # its own LED "Charging from System+ port enabled"). So the two directions are switched
        # apart: loads need ATD (LBS §3.2.5: on low cell voltage the 12/200 "will disconnect
        # the load/charger port"; an open BMS cable reads as "not allowed"), charging needs ATC
        # (§2.2 "interrupts the battery charge/discharge if there is a risk of imminent cell
        # under- or overvoltage or low/high temperature"). Remote off (§2.2) and an A-A12 trip
        # cut both. After a load disconnect a charger on System+ therefore still charges and
        # the battery recovers (issue 24 item 1). The CL has no port: outputs only.
        port = self.has_system_plus and not remote_off
        if port and self.port_tripped_at is not None:
            if t - self.port_tripped_at < SYSTEM_PLUS_RETRY_S:
                port = False
            else:
                self.port_tripped_at = None  # retry
        demand = env.load_a if not uncontrolled_load else 0.0
        discharge_on = port and atd
        if discharge_on:
            short = FaultKind.SHORT_CIRCUIT in faults
            if demand > SYSTEM_PLUS_MAX_A:
                self.overload_s += dt
            else:
                self.overload_s = 0.0
            if short or demand > SYSTEM_PLUS_PEAK_A or self.overload_s > OVERLOAD_PEAK_S:
                self.port_tripped_at = t
                self.overload_s = 0.0
                port = discharge_on = False
        self.system_plus_on = discharge_on
        reason = AlarmReason(0)
        if self.has_system_plus and self.port_tripped_at is not None:
            reason |= AlarmReason.SHORT_CIRCUIT  # A-A12 (VELIB-P bit 12, docs/protocol.md §4.7)
        if not cable_ok:
            reason |= AlarmReason.BMS_CABLE_FAILURE  # "used in Smart BMS" (docs/protocol.md §4.7)
        self.alarm_reason = reason
        # Chargers. On a 12/200 a charger is on System+ (connection "system", as the 12/200
        # manual's examples wire a Multi) or on the battery, switched by the charge-disconnect
        # output (§3.2.3 "chargers that are not connected to the System+ port must interrupt
        # the charging process … the Charge disconnect output … can be used for this"). The CL
        # has only the output.
        port_charge = port and atc
        sources = []
        active = []
        through_port = 0.0
        for rt, (spec, avail) in zip(self.chargers, env.chargers, strict=True):
            if spec.kind is ChargerKind.ALTERNATOR:
                continue  # handled by the alternator port
            on_port = self.has_system_plus and spec.connection is Connection.SYSTEM
            enabled = uncontrolled_charger or (port_charge if on_port else atc)
            target = rt.target_v(t, bank.scale, avail, enabled)
            if target is not None:
                sources.append((target, avail))
                active.append((rt, target))
                if on_port:
                    through_port += avail
        i_chg = charge_current(bank.ocv_v, bank.resistance_ohm, sources)
        if through_port and not uncontrolled_charger:
            # the System+ share of it is limited to the port's 200 A (§2.2)
            share = through_port / sum(a for _, a in sources)
            i_chg -= max(0.0, i_chg * share - SYSTEM_PLUS_MAX_A)
        self.system_plus_charging = port_charge and through_port > 0.0 and i_chg > 0.0
        # Loads: on System+ (12/200) or switched by the load-disconnect output (CL); a load
        # ignoring the output is wired straight to the battery and keeps drawing. No clamp at
        # the batteries' rating (issue 24 item 3): their maximum currents (LBS §7) are what
        # the user "should not exceed", not limits anything enforces — the 12/200's own
        # System+ protection (A-A12) is what stops an overload.
        if uncontrolled_load:
            load = env.load_a
        elif self.has_system_plus:
            load = demand if discharge_on else 0.0
        else:
            load = env.load_a if atd else 0.0
        current = i_alt + i_chg - load
        bank.step(current, env.ambient_c, _battery_faults(faults), t, dt)
        for rt, target in active:
            rt.observe(t, bank.voltage_v, target)

    @property
    def bms_flags(self) -> BmsFlags:
        """The A-B11 / W-B12 / A-B15 conditions (not carried in the provisional 0x0E, §8.2)."""
        flags = BmsFlags(0)
        if not self.load_output:
            flags |= BmsFlags.ALARM_UNDER_VOLTAGE
        if self.pre_alarm_output:
            flags |= BmsFlags.WARNING_UNDER_VOLTAGE
        if FaultKind.BMS_OVER_TEMPERATURE in self.faults:
            flags |= BmsFlags.ALARM_OVER_TEMPERATURE
        return flags

    @property
    def bms_error(self) -> BmsError:
        for fault, error in _FAULT_ERRORS:
            if fault in self.faults:
                return error
        return BmsError.NONE

    @property
    def alternator_current_pct(self) -> int:
        return round(100.0 * self.alternator_current_a / self.settings.alternator_limit_a)

    def record(self) -> SmartBmsRecord:
        m = self.measure
        bank_v = self.bank.voltage_v
        system_v: float | None = None
        if self.has_system_plus:
            # the port conducts in either direction: loads on, or a charger charging through
            live = self.system_plus_on or self.system_plus_charging
            system_v = round(m(bank_v, VOLTAGE_NOISE_V), 2) if live else 0.0
        return SmartBmsRecord(
            bms_error=self.bms_error,
            alarm_reason=self.alarm_reason,
            battery_voltage_v=round(m(bank_v, VOLTAGE_NOISE_V), 2),
            system_voltage_v=system_v,
            alternator_voltage_v=round(m(self.starter_v, VOLTAGE_NOISE_V), 2),
            alternator_current_pct=min(self.alternator_current_pct, 254),
            unidentified=SMART_BMS_IDLE_UNIDENTIFIED,
        )


# Faults that belong to the BMS, not to the batteries behind it.
BMS_ONLY_FAULTS = frozenset(
    {
        FaultKind.BMS_CABLE,
        FaultKind.SHORT_CIRCUIT,
        FaultKind.CALIBRATION_FAILURE,
        FaultKind.CONFIGURATION_FAILURE,
        FaultKind.REFERENCE_VOLTAGE_FAILURE,
        FaultKind.BMS_OVER_TEMPERATURE,
        FaultKind.REMOTE_OFF,
        FaultKind.PIN_CHANGE,
        FaultKind.UNCONTROLLED_LOAD,
        FaultKind.UNCONTROLLED_CHARGER,
    }
)


def _battery_faults(faults: frozenset[FaultKind]) -> frozenset[FaultKind]:
    return faults - BMS_ONLY_FAULTS
