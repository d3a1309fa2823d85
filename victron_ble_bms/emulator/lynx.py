"""Lynx Smart BMS 500 / 1000 / NG with its battery bank, advertising 0x0A (docs/protocol.md §2.2).

No Lynx manual is in `manuals/`; behaviour comes from `manuals/bms-overview.txt` (contactor that
"disconnects the system from the battery … in case of a battery cell voltage or temperature
alarm", built-in battery monitor, 12/24/48 V, alternator ATC) and docs/protocol.md §2.2/§4.4/§4.5.
Choices the sources leave open are marked *emulator choice*.
"""

from __future__ import annotations

from victron_ble_bms.protocol import LynxSmartBmsRecord
from victron_ble_bms.protocol.enums import AlarmLevel, BmsError, TriState

from .bank import Bank
from .base import (
    CURRENT_NOISE_A,
    VOLTAGE_NOISE_V,
    ChargerRuntime,
    Identity,
    System,
    Transmitter,
    charge_current,
)
from .scenario import Environment, FaultKind

# Faults of the BMS or the wiring, not of the batteries behind it.
_NOT_BATTERY_FAULTS = frozenset(
    {
        FaultKind.BMS_CABLE,
        FaultKind.REMOTE_OFF,
        FaultKind.PIN_CHANGE,
        FaultKind.UNCONTROLLED_LOAD,
        FaultKind.UNCONTROLLED_CHARGER,
    }
)


def _since(since: float | None, condition: bool, t: float) -> float | None:
    if not condition:
        return None
    return t if since is None else since


def _held(since: float | None, t: float) -> bool:
    return since is not None and t - since >= CONTACTOR_DELAY_S


# Emulator choices for the battery monitor (the BMV/SmartShunt defaults are of this kind):
SYNC_CELL_V = 3.50  # "charged" when the bank is above 3.50 V per cell (14.0 V per 12.8 V) …
SYNC_TAIL_FRACTION = 0.04  # … and the charge current is below 4 % of capacity (C/25)
LOW_SOC_WARNING_PCT = 10.0  # warnings/alarms field 6 "low SOC" → W-B07
TTG_MAX_MIN = 0xFFFE  # largest TTG the 16-bit field can carry (0xFFFF = n/a)
# Contactor. LBS manual §3.2.3: the Lynx sends "load disconnect" on low cell voltage, and only "if
# the batteries are even further discharged (or overcharged), the contactor will open". No manual
# in manuals/ gives the threshold; the Lynx Smart BMS manual's chart "Very deep discharge and
# shutdown sequence after loads were not disabled by the ATD signal" does: after the load
# disconnect the BMS stays operational for 30 s while the battery still discharges > 700 mA,
# then opens the contactor. Used here, and (inferred) the same for over-charge: a charger still
# pushing > 700 mA 30 s after the charge disconnect. With no charge voltage for 2 hours after a
# low-cell alarm it goes OFF (contactor open) too (same manual, "BMS operating modes").
CONTACTOR_CURRENT_A = 0.7
CONTACTOR_DELAY_S = 30.0
OFF_AFTER_LOW_CELL_S = 2 * 3600.0
# Current rating (Lynx Smart BMS manual §5.2.1 "Current rating", NG manual "System design"): the
# 500 A model "will allow 600A for 5 minutes" (the 1000 A model 1200 A); beyond that current or
# time an over-current alarm is raised, the contactor stays closed, and "ATC or ATD (depending on
# current direction) is disabled after 30s delay". The warnings/alarms field 1 "high current"
# (docs/protocol.md §4.5) carries it: W-B02 while above the continuous rating inside the
# allowed peak (inferred: the GX's high-current warning), A-B02 past 120 % or after 5 minutes
# above the rating.
# Inferred: the warning clears once the current is back within the rating; the alarm — and the
# ATC/ATD it took away — once the current has been within the rating for 30 s (the same delay).
PEAK_FACTOR = 1.2
PEAK_ALLOWED_S = 300.0
OVERCURRENT_DELAY_S = 30.0


class LynxSmartBms(Transmitter, System):
    def __init__(
        self,
        identity: Identity,
        nonce: int,
        bank: Bank,
        chargers: list[ChargerRuntime],
        rating_a: float = 500.0,
    ) -> None:
        super().__init__(identity, nonce)
        self.bank = bank
        self.chargers = chargers
        self.rating_a = rating_a
        self.faults: frozenset[FaultKind] = frozenset()
        self.current_a = 0.0
        self.last_t = 0.0
        # The monitor starts from the charge really in the bank (it was synchronised before
        # t = 0): the batteries' own states of charge, not the scenario's nominal figure —
        # parallel-bank's 30/50/70 % members make a 50 % bank (issue 24 item 7).
        self.consumed_ah = (1.0 - bank.soc) * bank.capacity_ah
        self.over_rating_since: float | None = None  # |current| above the rating since
        self.within_since: float | None = None  # … within the rating since
        self.overcurrent_alarm_since: float | None = None
        self.overcurrent_direction = 0  # +1 charging, -1 discharging, while the alarm lasts
        self.high_current = int(AlarmLevel.OK)
        self.contactor_closed = True
        self.opened_for: str | None = None  # "discharge" | "charge" | "off" while open
        self.atd_off_since: float | None = None
        self.atc_off_since: float | None = None
        self.discharging_since: float | None = None
        self.charging_since: float | None = None
        self.allowed_to_charge = True
        self.allowed_to_discharge = True

    @property
    def transmitters(self) -> list[Transmitter]:
        return [self, *self.bank.batteries]

    @property
    def soc_pct(self) -> float:
        return max(0.0, min(100.0, 100.0 - 100.0 * self.consumed_ah / self.bank.capacity_ah))

    def step(self, env: Environment, dt: float) -> None:
        t, faults, bank = env.t, env.faults, self.bank
        self.faults = faults
        self.last_t = t
        cable_ok = FaultKind.BMS_CABLE not in faults
        self._high_current(t)
        self.allowed_to_charge = self._atc(bank.allowed_to_charge and cable_ok, t)
        self.allowed_to_discharge = self._atd(bank.allowed_to_discharge and cable_ok, t)
        charger_present = any(a > 0 for _, a in env.chargers)
        self._contactor(t, charger_present)
        closed = self.contactor_closed and FaultKind.REMOTE_OFF not in faults
        uncontrolled_charger = FaultKind.UNCONTROLLED_CHARGER in faults
        sources = []
        active = []
        # Chargers and loads sit on the system side: the contactor cuts all of them; those that
        # ignore the ATC/ATD contacts (uncontrolled) only the contactor stops.
        enabled = closed and (self.allowed_to_charge or uncontrolled_charger)
        for rt, (_spec, avail) in zip(self.chargers, env.chargers, strict=True):
            # Alternators too: the Lynx controls them with its alternator ATC (bms-overview).
            target = rt.target_v(t, bank.scale, avail, enabled)
            if target is not None:
                sources.append((target, avail))
                active.append((rt, target))
        # No clamp at the batteries' rating (issue 24 item 3): LBS §7's maximum currents are
        # what the user should not exceed; the Lynx's own over-current alarm is what reacts.
        charge = charge_current(bank.ocv_v, bank.resistance_ohm, sources)
        loads_on = closed and (self.allowed_to_discharge or FaultKind.UNCONTROLLED_LOAD in faults)
        load = env.load_a if loads_on else 0.0
        self.current_a = charge - load
        bank.step(self.current_a, env.ambient_c, faults - _NOT_BATTERY_FAULTS, t, dt)
        # Coulomb counting, synchronised to 100 % at the end of a charge (emulator choice).
        self.consumed_ah = max(0.0, self.consumed_ah - self.current_a * dt / 3600.0)
        cells = bank.scale * 4
        if (
            bank.voltage_v >= SYNC_CELL_V * cells
            and 0 <= self.current_a < SYNC_TAIL_FRACTION * bank.capacity_ah
        ):
            self.consumed_ah = 0.0
        for rt, target in active:
            rt.observe(t, bank.voltage_v, target)

    def _high_current(self, t: float) -> None:
        """The over-current rule of the Lynx manual §5.2.1 (see PEAK_FACTOR), on the current
        its shunt measured in the last step."""
        i = self.current_a
        over = abs(i) > self.rating_a
        self.over_rating_since = _since(self.over_rating_since, over, t)
        alarm = over and (
            abs(i) > PEAK_FACTOR * self.rating_a
            or t - (self.over_rating_since or t) >= PEAK_ALLOWED_S
            or self.overcurrent_alarm_since is not None
        )
        if alarm and self.overcurrent_alarm_since is None:
            self.overcurrent_alarm_since = t
            self.overcurrent_direction = 1 if i > 0 else -1
        self.within_since = _since(self.within_since, not over, t)
        if (
            self.overcurrent_alarm_since is not None
            and self.within_since is not None
            and t - self.within_since >= OVERCURRENT_DELAY_S
        ):
            self.overcurrent_alarm_since = None
            self.overcurrent_direction = 0
        if self.overcurrent_alarm_since is not None:
            self.high_current = int(AlarmLevel.ALARM)
        elif over:
            self.high_current = int(AlarmLevel.WARNING)
        else:
            self.high_current = int(AlarmLevel.OK)

    def _overcurrent_blocks(self, direction: int, t: float) -> bool:
        since = self.overcurrent_alarm_since
        return (
            since is not None
            and self.overcurrent_direction == direction
            and t - since >= OVERCURRENT_DELAY_S
        )

    def _atc(self, chain: bool, t: float) -> bool:
        return chain and not self._overcurrent_blocks(1, t)

    def _atd(self, chain: bool, t: float) -> bool:
        return chain and not self._overcurrent_blocks(-1, t)

    def _contactor(self, t: float, charger_present: bool) -> None:
        """Open 30 s after ATD (ATC) went off if the bank still discharges (charges) more than
        0.7 A — see CONTACTOR_DELAY_S; closed again once the cause is gone: a charge voltage
        after a discharge shutdown, charging allowed again after an over-charge."""
        i = self.current_a  # last step's current, as the shunt measured it
        self.atd_off_since = _since(self.atd_off_since, not self.allowed_to_discharge, t)
        self.atc_off_since = _since(self.atc_off_since, not self.allowed_to_charge, t)
        self.discharging_since = _since(self.discharging_since, i < -CONTACTOR_CURRENT_A, t)
        self.charging_since = _since(self.charging_since, i > CONTACTOR_CURRENT_A, t)
        if self.contactor_closed:
            if _held(self.atd_off_since, t) and _held(self.discharging_since, t):
                self.contactor_closed, self.opened_for = False, "discharge"
            elif _held(self.atc_off_since, t) and _held(self.charging_since, t):
                self.contactor_closed, self.opened_for = False, "charge"
            elif (
                self.atd_off_since is not None
                and t - self.atd_off_since >= OFF_AFTER_LOW_CELL_S
                and not charger_present
            ):
                self.contactor_closed, self.opened_for = False, "off"
        elif self.opened_for in ("discharge", "off"):
            # "As soon as the Lynx Smart BMS sees a charge voltage, it will automatically
            # reactivate and close its contactor", or when all cells are above 3.2 V again.
            if charger_present or self.allowed_to_discharge:
                self.contactor_closed, self.opened_for = True, None
        elif self.allowed_to_charge:
            self.contactor_closed, self.opened_for = True, None

    def ttg_min(self, current_a: float) -> int | None:
        """Time to go at the discharge current the record shows (the measured, noisy one, so
        that TTG and current agree on the wire — issue 24 item 7); n/a when not discharging."""
        if current_a >= -0.05:
            return None
        remaining = self.soc_pct / 100.0 * self.bank.capacity_ah
        return min(round(remaining / -current_a * 60.0), TTG_MAX_MIN)

    @property
    def io_status(self) -> int:
        """VE_REG_BMS_IO, 2 bits per item, 1 = yes, 2 = no, 0 = n/a (docs/protocol.md §4.4)."""

        def yn(v: bool) -> int:
            return int(TriState.YES if v else TriState.NO)

        items = (
            yn(self.contactor_closed and FaultKind.REMOTE_OFF not in self.faults),
            yn(self.allowed_to_charge),
            yn(self.allowed_to_discharge),
            yn(False),  # user relay: not used in these scenarios
            yn(True),  # aux output on
            yn(FaultKind.REMOTE_OFF not in self.faults),
            yn(self.allowed_to_charge),  # alternator ATC follows ATC
            int(TriState.NOT_AVAILABLE),  # field 7 undefined
        )
        return sum(v << (2 * i) for i, v in enumerate(items))

    @property
    def warnings_alarms(self) -> int:
        """VE_REG_BMS_WARNINGS_ALARMS, 0 = unsupported, 1 ok, 2 warning, 3 alarm (§4.5).

        Supported fields as in the real Lynx vector (0x1455, docs/protocol.md §4.5): 0-3, 5, 6.
        """
        ok, warn, alarm = int(AlarmLevel.OK), int(AlarmLevel.WARNING), int(AlarmLevel.ALARM)
        bank = self.bank
        low_cell = alarm if not bank.allowed_to_discharge else warn if bank.pre_alarm else ok
        fields = [0] * 9
        fields[0] = low_cell  # low cell voltage
        fields[1] = self.high_current  # Lynx manual §5.2.1, see PEAK_FACTOR
        fields[2] = alarm if FaultKind.BMS_OVER_TEMPERATURE in self.faults else ok
        fields[3] = ok  # contactor
        fields[5] = low_cell  # load disconnect: "W-B06, load will disconnect" (venus #851)
        fields[6] = warn if self.soc_pct < LOW_SOC_WARNING_PCT else ok
        return sum(v << (2 * i) for i, v in enumerate(fields))

    @property
    def bms_error(self) -> BmsError:
        return BmsError.BMS_CABLE if FaultKind.BMS_CABLE in self.faults else BmsError.NONE

    def record(self) -> LynxSmartBmsRecord:
        # the chain's signals as they are now, like the warnings/alarms field
        cable_ok = FaultKind.BMS_CABLE not in self.faults
        t = self.last_t
        self.allowed_to_charge = self._atc(self.bank.allowed_to_charge and cable_ok, t)
        self.allowed_to_discharge = self._atd(self.bank.allowed_to_discharge and cable_ok, t)
        m = self.measure
        current = round(m(self.current_a, CURRENT_NOISE_A), 1)
        return LynxSmartBmsRecord(
            bms_error=self.bms_error,
            ttg_min=self.ttg_min(current),
            battery_voltage_v=round(m(self.bank.voltage_v, VOLTAGE_NOISE_V), 2),
            battery_current_a=current,
            io_status=self.io_status,
            warnings_alarms=self.warnings_alarms,
            soc_pct=round(self.soc_pct, 1),
            consumed_ah=-round(self.consumed_ah, 1),
            temperature_c=None,  # Lynx Smart BMS always sends n/a here (docs/protocol.md §2.2)
        )
