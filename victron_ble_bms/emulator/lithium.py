"""Lithium Battery Smart 12.8 V / 25.6 V: cells, the BTV (balancing, temperature and voltage
control) and its alarm signals, advertising record 0x05 (docs/protocol.md §2.1, §8.4).

Every threshold below cites `manuals/lithium-battery-smart.txt` (section numbers of that manual).
Where the manual is silent the value is marked *emulator choice*.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from victron_ble_bms.protocol import SmartLithiumRecord
from victron_ble_bms.protocol.enums import BalancerStatus, BmsFlags, SmartLithiumErrorFlags
from victron_ble_bms.protocol.products import PRODUCT_NAMES

from . import lfp
from .base import (
    CELL_NOISE_V,
    TEMPERATURE_NOISE_C,
    VOLTAGE_NOISE_V,
    ChargerRuntime,
    Identity,
    System,
    Transmitter,
    charge_current,
)
from .scenario import Environment, FaultKind, InitialState

# -- thresholds (manual) -------------------------------------------------------------------------
PRE_ALARM_MIN_DELAY_S = 30.0  # §3.3: ≥ 30 s between pre-alarm and load disconnect
LOADS_BACK_CELL_V = 3.20  # §6: loads back (and pre-alarm off, §3.3) when all cells ≥ 3.2 V
CHARGE_DISCONNECT_CELL_V = 3.75  # §5.2.1 / §6: chargers off when a cell reaches 3.75 V
CHARGE_RECONNECT_CELL_V = 3.60  # §6: … on again once the highest cell is below 3.6 V
OVER_VOLTAGE_ALARM_CELL_V = 3.95  # §5.3 table: A-SL9 cell voltage > 3.95 V
OVER_TEMPERATURE_C = 75  # §5.3 table: A-SL15 "Temp > 75°C"
# Charging above 50 °C. The manuals disagree: §5.2.1 says the BMS turns the chargers off above
# 75 °C, but §1.2 ("the temperature range over which the battery can be charged is 5°C to 50°C")
# and §7 ("Charge: +5°C to +50°C") give 50 °C, and the smallBMS manual — which only passes on the
# battery's own charge signal — lists the charge disconnect "due to cell over temperature
# (>50°C), cell under temperature (<5°C)". Two manuals and three places against one sentence,
# and the lower limit is the safe one: the battery withdraws allowed-to-charge above 50 °C.
# No code is documented for it (the A-SL15 alarm stays at > 75 °C, §5.3, and docs/protocol.md
# §4.1 lists no warning bit this battery uses for it), so the record shows only "not allowed
# to charge" between 50 and 75 °C (issue 24 item 5).
CHARGE_MAX_TEMPERATURE_C = 50
# Hysteresis (inferred: no manual gives one). A threshold is crossed when the record's whole
# degree passes it (A-SL22 at a reading below 5 °C, A-SL15 above 75 °C, the charge stop above
# 50 °C); the condition clears once the battery's own finer sensor is back AT the threshold —
# half a degree back — so the reading then shows the threshold itself ("charging resumes at
# 5 °C", the cold-charge scenario) and a battery sitting near it does not toggle every second.
# E-SL24 "Hardware failure" (§5.3 cause 2: "one (or more) cells are very deeply discharged").
# §6.1.2 "Battery very low terminal voltage": "a cell voltage below 2.5V" means permanent damage;
# inferred: the error is raised while a cell is below 2.5 V (between the 2.0 V at which Bluetooth
# stops and the 2.5 V of the recovery procedure, §6.1.2).
DEEP_DISCHARGE_CELL_V = 2.5
BALANCE_TARGET_V = 0.01  # §5.2.2: "until all cell voltages are within 0.01V of each other"
# Inferred: a new balancing run starts only above twice the target, so that a spread sitting at
# the target (and the 0.01 V steps of the record) cannot start and stop it every second.
BALANCE_RESTART_V = 0.02
IMBALANCE_SPREAD_V = 0.10  # §5.2.2: "imbalance" when "more than 0.1V voltage difference"
BALANCE_CURRENT_A = 1.8  # §5.2.2: balancing current at most 1.8 A
BALANCE_EFFICIENCY = 0.9  # emulator choice: the active balancer loses ~10 % moving charge
# §5.2.2: the status "will be detected as soon as the battery voltage is above 13.8V (27.2V)"
# (an unknown status stays unknown below that, and a charge that reaches it counts as the last
# full charge). Balancing itself "starts when the first cell has reached 3.3V" — while the
# battery is charged ("only during the absorption charge stage": the battery has no current
# sensor, §3.5, so charging is what it can tell) — and it stops when the charge stops or the
# charger drops to float (13.5 V, §4.4.2): below 13.6 V (inferred, midway). §6.1.3: "balancing
# even takes place when the charger is disabled" by a high cell, and "will continue throughout
# this process", so the run goes on across the charge-disconnect cycle (issue 24 item 4).
STATUS_KNOWN_CELL_V = {4: 13.8 / 4, 8: 27.2 / 8}
BALANCE_START_CELL_V = 3.30
DISCHARGING_C = 0.05  # inferred: a net discharge above C/20 is "discharging", not a charge's tail
ABSORPTION_LEAVE_CELL_V = 13.6 / 4
# §5.2.3 "the battery itself also has a small amount of self-discharge" (no figure given):
# inferred 3 % a month, the usual LFP figure. A defective cell (§6.1.2: "one of the cells has
# dropped 0.1 to 0.2V below the other cells" a day after a full charge) — inferred 10 % of its
# capacity … a day: inferred 55 %, what takes a cell resting at 3.40 V (full, see lfp.OCV_REST)
# 0.1–0.2 V lower in 24 h on the flat LFP rest curve (issue 24 item 6; 10 % did, on the
# charged curve the emulator used to show at rest).
SELF_DISCHARGE_PER_S = 0.03 / (30 * 86400.0)
DEFECTIVE_CELL_LEAK_PER_S = 0.55 / 86400.0
UNKNOWN_AFTER_DAYS = 30  # §5.2.2: resets to unknown when not charged for a month
BLUETOOTH_MIN_TERMINAL_V = 8.0  # §6: Bluetooth off below 8 V terminal …
BLUETOOTH_MIN_CELL_V = 2.0  # … or any cell below 2 V
# Emulator choices (the manual only says "very low internal resistance", §3.4): 1 mΩ per cell of
# a 100 Ah battery, inversely proportional to capacity; heat capacity ~1 kJ/(kg·K) of the
# battery's weight (§7); cooling ~0.25 W/K per kg^(2/3) of battery.
CELL_RESISTANCE_OHM_100AH = 0.001
HEAT_CAPACITY_J_PER_KG_K = 1000.0
COOLING_W_PER_K_KG23 = 0.25


@dataclass(frozen=True, slots=True)
class LithiumSettings:
    """Battery settings with the manual's defaults and ranges (§4.4.1)."""

    atd_cell_v: float = 2.80  # allowed-to-discharge cell voltage, 2.60–2.80 V
    pre_alarm_cell_v: float = 3.10  # cell under-voltage pre-alarm, 2.80–3.15 V
    atc_min_temperature_c: float = 5.0  # allowed-to-charge minimum temperature, −20…+20 °C
    temperature_offset_c: float = 0.0  # battery temperature offset, −10…+10 °C

    RANGES: ClassVar[dict[str, tuple[float, float, str]]] = {
        "atd_cell_v": (2.60, 2.80, "V"),
        "pre_alarm_cell_v": (2.80, 3.15, "V"),
        "atc_min_temperature_c": (-20.0, 20.0, "°C"),
        "temperature_offset_c": (-10.0, 10.0, "°C"),
    }

    def __post_init__(self) -> None:
        for name, (low, high, unit) in self.RANGES.items():
            check_range(name, getattr(self, name), low, high, unit, "Lithium Battery Smart §4.4.1")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> LithiumSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in values.items() if k in known})


def check_range(name: str, value: Any, low: float, high: float, unit: str, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} = {value:g} {unit} is outside {low:g}…{high:g} {unit} ({where})")


@dataclass(frozen=True, slots=True)
class LithiumType:
    """One model from the manual's technical data (§7)."""

    name: str  # device type name on the command line
    cells: int  # 4 (12.8 V) or 8 (25.6 V) in series (§2)
    capacity_ah: float  # nominal capacity @ 25 °C
    max_discharge_a: float  # maximum continuous discharge current
    max_charge_a: float
    weight_kg: float
    model_id: int

    @property
    def nominal_v(self) -> float:
        return 3.2 * self.cells

    @property
    def product(self) -> str:
        return PRODUCT_NAMES[self.model_id]


def _model_id(nominal: str, capacity: int, revision: int = 0) -> int:
    """The product id whose name matches (docs/protocol.md §3; duplicates: hardware revisions)."""
    wanted = f"Smart Lithium Battery {nominal}V/{capacity}Ah"
    ids = sorted(i for i, n in PRODUCT_NAMES.items() if n == wanted and 0xA0E0 <= i <= 0xA0F2)
    return ids[min(revision, len(ids) - 1)]


# Manual §7 technical data: capacity, max continuous discharge = max charge current, weight.
LITHIUM_TYPES: dict[str, LithiumType] = {
    t.name: t
    for t in (
        LithiumType("lithium-12.8v-50ah", 4, 50, 100, 100, 7, _model_id("12.8", 50)),
        LithiumType("lithium-12.8v-60ah", 4, 60, 120, 120, 12, _model_id("12.8", 60)),
        LithiumType("lithium-12.8v-100ah", 4, 100, 200, 200, 14, _model_id("12.8", 100)),
        LithiumType("lithium-12.8v-160ah", 4, 160, 320, 320, 18, _model_id("12.8", 160)),
        LithiumType("lithium-12.8v-200ah", 4, 200, 400, 400, 20, _model_id("12.8", 200)),
        LithiumType("lithium-12.8v-300ah", 4, 300, 600, 600, 51, _model_id("12.8", 300)),
        LithiumType("lithium-12.8v-330ah", 4, 330, 400, 400, 30, _model_id("12.8", 330)),
        LithiumType("lithium-25.6v-100ah", 8, 100, 200, 200, 28, _model_id("25.6", 100)),
        LithiumType("lithium-25.6v-200ah", 8, 200, 400, 400, 56, _model_id("25.6", 200)),
        LithiumType("lithium-25.6v-200ah-a", 8, 200, 400, 400, 39, _model_id("25.6", 200, 1)),
    )
}

_FAULT_ERROR_FLAGS = {
    FaultKind.SETTINGS_LOST: SmartLithiumErrorFlags.SETTINGS_DATA_INVALID,  # E-SL119
    FaultKind.BALANCER_FAILURE: SmartLithiumErrorFlags.BALANCER_FAILURE,  # E-SL1
    FaultKind.COMMUNICATION_ERROR: SmartLithiumErrorFlags.COMMUNICATION_ERROR,  # E-SL2
    # docs/protocol.md §5: E-SL9 = error bit 8, E-SL10 = error bit 9 (manual §5.3 code table)
    FaultKind.OVERLAPPED_VOLTAGE: SmartLithiumErrorFlags.OVERLAPPED_VOLTAGE_ERROR,  # E-SL9
    FaultKind.BALANCER_UPDATE: SmartLithiumErrorFlags.BALANCER_UPDATE_ERROR,  # E-SL10
}


class LithiumBattery(Transmitter):
    """One Lithium Battery Smart: cells + BTV. `step` takes the current the system lets flow."""

    def __init__(
        self,
        identity: Identity,
        nonce: int,
        kind: LithiumType,
        settings: LithiumSettings,
        initial: InitialState,
        ambient_c: float,
        rng: random.Random,
        member: int = 0,
    ) -> None:
        """`member`: this battery's place in its bank (for `initial.battery_soc_pct`)."""
        super().__init__(identity, nonce)
        self.kind = kind
        self.settings = settings
        soc = initial.soc_pct + (rng.uniform(-1, 1) * initial.soc_jitter_pct)
        if initial.battery_soc_pct:
            soc = initial.battery_soc_pct[member % len(initial.battery_soc_pct)]
        offsets = list(initial.cell_offsets_pct) + [0.0] * kind.cells
        r_cell = CELL_RESISTANCE_OHM_100AH * 100.0 / kind.capacity_ah
        self.cells = [
            lfp.Cell(
                capacity_ah=kind.capacity_ah,
                soc=min(
                    max(
                        (soc + offsets[i] + rng.uniform(-1, 1) * initial.cell_spread_pct) / 100.0,
                        0.0,
                    ),
                    1.0,
                ),
                # cells are "not 100 % identical" (§5.2.2): ±5 % resistance (emulator choice)
                resistance_ohm=r_cell * rng.uniform(0.95, 1.05),
                leak_per_s=SELF_DISCHARGE_PER_S,
            )
            for i in range(kind.cells)
        ]
        self.temperature_c = ambient_c if initial.temperature_c is None else initial.temperature_c
        self.heat_capacity = kind.weight_kg * HEAT_CAPACITY_J_PER_KG_K
        self.cooling = COOLING_W_PER_K_KG23 * kind.weight_kg ** (2 / 3)
        self.current_a = 0.0
        self.t = 0.0
        self.faults: frozenset[FaultKind] = frozenset()
        # BTV signal state
        self.allowed_to_charge = True
        self.allowed_to_discharge = True
        self.pre_alarm_since: float | None = None
        self.under_voltage_alarm = False
        self.cell_high = False  # a cell reached 3.75 V; waiting for < 3.6 V
        self.over_voltage_alarm = False
        self.under_temperature_alarm = False
        self.over_temperature_alarm = False
        self.charge_too_hot = False  # above CHARGE_MAX_TEMPERATURE_C: no charging, no code
        self.deep_discharge = False  # E-SL24: a cell below DEEP_DISCHARGE_CELL_V
        self.balancing = False
        self.absorbing = False  # in a charge cycle's absorption (see STATUS_KNOWN_CELL_V)
        self.was_above_float = False  # this balancing run's charge reached 13.8 V
        self.balancer_status = initial.balancer
        self.last_full_charge_t = -initial.days_since_full_charge * 86400.0
        for c in self.cells:
            c.r_factor = lfp.resistance_factor(self.temperature_c)
        self.cell_v = [c.voltage(0.0) for c in self.cells]
        self._evaluate()

    # -- electrical view for chargers and banks ----------------------------------------------
    @property
    def ocv_v(self) -> float:
        """The voltage behind the ohmic resistance (open-circuit + diffusion, lfp.Cell.emf)."""
        return sum(c.emf() for c in self.cells)

    @property
    def resistance_ohm(self) -> float:
        """Ohmic resistance now (rises in the cold, lfp.resistance_factor)."""
        return sum(c.r_ohmic for c in self.cells)

    @property
    def voltage_v(self) -> float:
        return sum(self.cell_v)

    @property
    def scale(self) -> float:
        """Charge voltages are given per 12.8 V battery (§4.4.2)."""
        return self.kind.cells / 4

    @property
    def effective_settings(self) -> LithiumSettings:
        # E-SL119 "settings data lost": the stored settings cannot be read (§5.3), so the BTV
        # works with factory defaults until they are reset (emulator choice).
        if FaultKind.SETTINGS_LOST in self.faults:
            return LithiumSettings()
        return self.settings

    @property
    def measured_temperature_c(self) -> int:
        return round(self.temperature_c + self.effective_settings.temperature_offset_c)

    # -- simulation ----------------------------------------------------------------------------
    def step(
        self, current_a: float, ambient_c: float, faults: frozenset[FaultKind], t: float, dt: float
    ) -> None:
        self.t = t
        self.faults = faults
        self.current_a = current_a
        factor = lfp.capacity_factor(self.temperature_c)
        defective = FaultKind.DEFECTIVE_CELL in faults
        for i, cell in enumerate(self.cells):
            cell.leak_per_s = SELF_DISCHARGE_PER_S + (
                DEFECTIVE_CELL_LEAK_PER_S if defective and i == 0 else 0.0
            )
            cell.add_charge(current_a * dt, factor)
            cell.self_discharge(dt)
            cell.relax(current_a, dt)
        # the balancer sees the cells as they are with this step's current
        self.cell_v = [c.voltage(current_a) for c in self.cells]
        self._balance(dt, factor)
        # thermal mass: I²R heating, Newtonian cooling to ambient (emulator choice, see top)
        heat = current_a * current_a * self.resistance_ohm
        self.temperature_c += (
            (heat - self.cooling * (self.temperature_c - ambient_c)) * dt / (self.heat_capacity)
        )
        for c in self.cells:
            c.r_factor = lfp.resistance_factor(self.temperature_c)
        self.cell_v = [c.voltage(current_a) for c in self.cells]
        self._evaluate()

    def _update_absorbing(self) -> None:
        """§5.2.2: a charge that takes the pack above 13.8 V (27.2 V) is one the status is
        detected in; it ends when the charge stops or the voltage falls to float level (see
        STATUS_KNOWN_CELL_V)."""
        cells = len(self.cells)
        v = sum(self.cell_v)
        if self.current_a > 0.0 and v >= STATUS_KNOWN_CELL_V.get(cells, 3.45) * cells:
            self.absorbing = True
        elif self.current_a <= 0.0 or v < ABSORPTION_LEAVE_CELL_V * cells:
            self.absorbing = False

    def _charging_window(self) -> bool:
        """§5.2.2: balancing "starts when the first cell has reached 3.3V" while charging, goes
        on while a charger holds the battery at absorption level (above 13.8 V, 27.2 V: only a
        charger holds it there, even when its tail current no longer covers a small load) and
        stops "as soon as the charger has reached the float stage" (the pack back below 13.6 V)
        or the battery is discharged (more than C/20, inferred) or left at rest."""
        cells = len(self.cells)
        pack = sum(self.cell_v)
        held = (
            pack >= STATUS_KNOWN_CELL_V.get(cells, 3.45) * cells
            and self.current_a > -DISCHARGING_C * self.kind.capacity_ah
        )
        charging = self.current_a > 0.0 and max(self.cell_v) >= BALANCE_START_CELL_V
        if self.was_above_float and pack < ABSORPTION_LEAVE_CELL_V * cells:
            charging = False  # float
        return held or charging

    def _balance(self, dt: float, factor: float) -> None:
        """§5.2.2: energy moves from the highest cell to lower ones, ≤ 1.8 A, until all cells
        are within 0.01 V — while charging from a first cell at 3.3 V, in absorption, or while
        the BMS holds the charger off for a high cell (§6.1.3); never while discharging or at
        rest (see _charging_window)."""
        volts = self.cell_v
        high, low = max(volts), min(volts)
        spread = high - low
        self._update_absorbing()
        cells = len(self.cells)
        if sum(volts) >= STATUS_KNOWN_CELL_V.get(cells, 3.45) * cells:
            self.was_above_float = True
        elif not self.balancing:
            self.was_above_float = False
        # §6.1.3: the run goes on while the BMS holds the charger off for a high cell
        window = FaultKind.BALANCER_FAILURE not in self.faults and (
            self._charging_window() or self.cell_high
        )
        if not window:
            self.balancing = False
        elif self.balancing:
            self.balancing = spread > BALANCE_TARGET_V
        else:
            self.balancing = spread > BALANCE_RESTART_V
        if not self.balancing:
            return
        hi = volts.index(high)
        lo = volts.index(low)
        # §5.2.2: "the balancing speed is determined by the maximum current rating (1.8A) of
        # the active and the passive balancing circuits", and §6.1.2's arithmetic ("it will take
        # at least 100/1.8 = 55 hours" to put 100 Ah into a lagging cell) reads 1.8 A as how
        # fast a lagging cell catches up. With a charger holding the pack at absorption, what
        # is taken out of the high cell is put back by the charger into every cell, the low one
        # too: the circuits then run at 1.8 / (1 + 0.9) A so that the low cell closes in at
        # 1.8 A, not 3.4 A (a 20 Ah deficit took 8.6 h instead of at least 11.1 h: issue 24
        # item 6). With the charger held off for a high cell (§6.1.3) nothing refills it and
        # the high cell is drained at the full 1.8 A — the one-to-three-minute cycle. Inferred.
        rate = BALANCE_CURRENT_A
        if not self.cell_high:
            rate /= 1.0 + BALANCE_EFFICIENCY
        moved = rate * dt
        self.cells[hi].add_charge(-moved, factor)
        self.cells[lo].add_charge(moved * BALANCE_EFFICIENCY, factor)

    def _evaluate(self) -> None:
        """Recompute the BTV signals from cell voltages and temperature."""
        s = self.effective_settings
        t = self.t
        volts = self.cell_v
        low, high = min(volts), max(volts)
        # Under voltage (§3.3, §4.4.1, §5.2.4, §6)
        if low < s.pre_alarm_cell_v and self.pre_alarm_since is None:
            self.pre_alarm_since = t
        if self.allowed_to_discharge and low < s.atd_cell_v:
            if self.pre_alarm_since is None:
                self.pre_alarm_since = t
            if t - self.pre_alarm_since >= PRE_ALARM_MIN_DELAY_S:
                self.allowed_to_discharge = False
                self.under_voltage_alarm = True
        elif not self.allowed_to_discharge and low >= LOADS_BACK_CELL_V:
            self.allowed_to_discharge = True
            self.under_voltage_alarm = False
        if self.pre_alarm_since is not None and low > LOADS_BACK_CELL_V:
            self.pre_alarm_since = None  # §3.3: pre-alarm off once the lowest cell > 3.2 V
        # High cell voltage (§5.2.1, §6) and over-voltage alarm (§5.3)
        if high >= CHARGE_DISCONNECT_CELL_V:
            self.cell_high = True
        elif self.cell_high and high < CHARGE_RECONNECT_CELL_V:
            self.cell_high = False
        if high > OVER_VOLTAGE_ALARM_CELL_V:
            self.over_voltage_alarm = True
        elif self.over_voltage_alarm and high < CHARGE_RECONNECT_CELL_V:
            self.over_voltage_alarm = False  # emulator choice: clears with the charge-enable level
        # Temperature (§4.4.1, §5.2.1, §5.3): measured value incl. the offset setting
        temp = self.measured_temperature_c  # whole degrees, as the record carries it
        fine = self.temperature_c + s.temperature_offset_c  # the sensor itself
        if temp < s.atc_min_temperature_c:
            self.under_temperature_alarm = True
        elif fine >= s.atc_min_temperature_c:  # set at a reading of 4, cleared at 5.0 °C
            self.under_temperature_alarm = False
        if temp > OVER_TEMPERATURE_C:
            self.over_temperature_alarm = True
        elif fine <= OVER_TEMPERATURE_C:  # set at a reading of 76, cleared at 75.0 °C
            self.over_temperature_alarm = False
        if temp > CHARGE_MAX_TEMPERATURE_C:
            self.charge_too_hot = True
        elif fine <= CHARGE_MAX_TEMPERATURE_C:
            self.charge_too_hot = False
        self.deep_discharge = low < DEEP_DISCHARGE_CELL_V
        self.allowed_to_charge = not (
            self.cell_high
            or self.over_voltage_alarm
            or self.under_temperature_alarm
            or self.over_temperature_alarm
            or self.charge_too_hot
        )
        self._update_balancer_status(low, high)

    def _update_balancer_status(self, low: float, high: float) -> None:
        """§5.2.2, a state with memory (issue 13 item 3): *balancing* while a balancing run
        lasts; when it ends, *balanced* if it completed (all cells within 0.01 V) and
        *imbalance* if the charge stopped first ("not completed when the battery was charged
        the last time"); *imbalance* whenever "more than 0.1V" apart outside a run; an
        absorption that needs no run confirms *balanced*. Nothing else changes it."""
        spread = high - low
        if self.absorbing:
            self.last_full_charge_t = self.t
        status = self.balancer_status
        if status is BalancerStatus.UNKNOWN and not self.absorbing:
            return  # §5.2.2: detected only once the battery is above 13.8 V (27.2 V)
        if self.balancing:
            status = BalancerStatus.BALANCING
        elif status is BalancerStatus.BALANCING:
            done = spread <= BALANCE_TARGET_V + 1e-9
            status = BalancerStatus.BALANCED if done else BalancerStatus.IMBALANCE
        elif self.absorbing and spread <= BALANCE_RESTART_V:
            status = BalancerStatus.BALANCED
        if spread > IMBALANCE_SPREAD_V and not self.balancing:
            status = BalancerStatus.IMBALANCE
        if self.t - self.last_full_charge_t > UNKNOWN_AFTER_DAYS * 86400.0:
            status = BalancerStatus.UNKNOWN
        self.balancer_status = status

    # -- what it sends ---------------------------------------------------------------------------
    @property
    def silent(self) -> bool:
        """§6: Bluetooth is off below 8 V terminal voltage or with any cell below 2 V."""
        return self.voltage_v < BLUETOOTH_MIN_TERMINAL_V or min(self.cell_v) < BLUETOOTH_MIN_CELL_V

    @property
    def pre_alarm(self) -> bool:
        return self.pre_alarm_since is not None

    @property
    def bms_flags(self) -> BmsFlags:
        # Only the bits a Lithium Battery Smart is known to use (docs/protocol.md §4.1).
        flags = BmsFlags(0)
        if self.over_voltage_alarm:
            flags |= BmsFlags.ALARM_OVER_VOLTAGE  # A-SL9
        if self.under_voltage_alarm:
            flags |= BmsFlags.ALARM_UNDER_VOLTAGE  # A-SL11
        if self.pre_alarm:
            # W-SL12. Not bit 27 (PRE_ALARM): docs/protocol.md §4.1 lists the bits this battery
            # uses — 9, 11, 12, 15, 22, 24, 25, 26 (ESPHome #64); bit 27 is Lynx heritage.
            flags |= BmsFlags.WARNING_UNDER_VOLTAGE
        if self.over_temperature_alarm:
            flags |= BmsFlags.ALARM_OVER_TEMPERATURE  # A-SL15
        if self.under_temperature_alarm:
            flags |= BmsFlags.ALARM_UNDER_TEMPERATURE  # A-SL22
        if FaultKind.HARDWARE_FAILURE in self.faults or self.deep_discharge:
            flags |= BmsFlags.ALARM_HARDWARE_FAILURE  # E-SL24 (§5.3 causes 1-3)
        if self.allowed_to_charge:
            flags |= BmsFlags.ALLOWED_TO_CHARGE
        if self.allowed_to_discharge:
            flags |= BmsFlags.ALLOWED_TO_DISCHARGE
        return flags

    @property
    def error_flags(self) -> SmartLithiumErrorFlags:
        out = SmartLithiumErrorFlags(0)
        for fault, flag in _FAULT_ERROR_FLAGS.items():
            if fault in self.faults:
                out |= flag
        return out

    def record(self) -> SmartLithiumRecord | None:
        if self.silent:
            return None
        m = self.measure
        cells: list[float | None] = [round(m(v, CELL_NOISE_V), 2) for v in self.cell_v]
        cells += [None] * (8 - len(cells))
        temperature = self.temperature_c + self.effective_settings.temperature_offset_c
        return SmartLithiumRecord(
            bms_flags=self.bms_flags,
            error_flags=self.error_flags,
            cell_voltages_v=tuple(cells),
            battery_voltage_v=round(m(self.voltage_v, VOLTAGE_NOISE_V), 2),
            balancer_status=self.balancer_status,
            battery_temperature_c=max(-40, min(86, round(m(temperature, TEMPERATURE_NOISE_C)))),
        )


class StandaloneBattery(System):
    """A battery whose loads and chargers obey its ATD/ATC signals through some BMS (§3)."""

    def __init__(self, battery: LithiumBattery, chargers: list[ChargerRuntime]) -> None:
        self.battery = battery
        self.chargers = chargers

    @property
    def transmitters(self) -> list[Transmitter]:
        return [self.battery]

    def step(self, env: Environment, dt: float) -> None:
        b = self.battery
        # A charger that ignores the charge-disconnect signal is the one way to reach A-SL9 (§5.3).
        enabled = b.allowed_to_charge or FaultKind.UNCONTROLLED_CHARGER in env.faults
        sources = []
        active = []
        for rt, (_spec, avail) in zip(self.chargers, env.chargers, strict=True):
            target = rt.target_v(env.t, b.scale, avail, enabled)
            if target is not None:
                # no clamp at the battery's rating: the manual's maximum charge current (§7)
                # is what the user should not exceed, not a limit the battery enforces
                sources.append((target, avail))
                active.append((rt, target))
        charge = charge_current(b.ocv_v, b.resistance_ohm, sources)
        # A load ignoring the load-disconnect signal keeps draining the battery past A-SL11,
        # down to where Bluetooth switches off (§6.1.1: a cell below 2 V or the battery < 8 V).
        obeys = b.allowed_to_discharge or FaultKind.UNCONTROLLED_LOAD in env.faults
        # No clamp at the rating either (§7 "maximum continuous discharge current" is a
        # rating, issue 24 item 3): a 300 A load on a 100 Ah battery draws 300 A.
        load = env.load_a if obeys else 0.0
        b.step(charge - load, env.ambient_c, env.faults, env.t, dt)
        for rt, target in active:
            rt.observe(env.t, b.voltage_v, target)
