"""A bank of Lithium Battery Smart batteries behind one BMS, daisy-chained BMS cables.

Batteries in series carry the same current; parallel strings share it equally (emulator choice:
real strings share by resistance, which differs little between equal batteries — manual §5.2.1
"small differences … no damage will occur"). The BMS sees the chain's signals: a battery that
does not allow charging or discharging pulls the whole chain (manual §3.1, "all battery BMS cables
are connected in series").
"""

from __future__ import annotations

from .lithium import LithiumBattery, LithiumType
from .scenario import FaultKind


class Bank:
    def __init__(self, strings: list[list[LithiumBattery]]) -> None:
        self.strings = strings
        self.batteries = [b for s in strings for b in s]
        self.parallel = len(strings)

    @property
    def kind(self) -> LithiumType:
        return self.batteries[0].kind

    @property
    def capacity_ah(self) -> float:
        return self.kind.capacity_ah * self.parallel

    @property
    def scale(self) -> float:
        """Charge voltages are per 12.8 V battery (manual §4.4.2)."""
        return sum(b.scale for b in self.strings[0])

    @property
    def ocv_v(self) -> float:
        return sum(sum(b.ocv_v for b in s) for s in self.strings) / self.parallel

    @property
    def resistance_ohm(self) -> float:
        string_r = sum(sum(b.resistance_ohm for b in s) for s in self.strings) / self.parallel
        return string_r / self.parallel

    @property
    def voltage_v(self) -> float:
        return sum(sum(b.voltage_v for b in s) for s in self.strings) / self.parallel

    @property
    def allowed_to_charge(self) -> bool:
        return all(b.allowed_to_charge for b in self.batteries)

    @property
    def allowed_to_discharge(self) -> bool:
        return all(b.allowed_to_discharge for b in self.batteries)

    @property
    def pre_alarm(self) -> bool:
        return any(b.pre_alarm for b in self.batteries)

    @property
    def over_temperature(self) -> bool:
        return any(b.over_temperature_alarm for b in self.batteries)

    @property
    def max_charge_a(self) -> float:
        return self.kind.max_charge_a * self.parallel

    @property
    def max_discharge_a(self) -> float:
        return self.kind.max_discharge_a * self.parallel

    def step(
        self, current_a: float, ambient_c: float, faults: frozenset[FaultKind], t: float, dt: float
    ) -> None:
        share = current_a / self.parallel
        for b in self.batteries:
            b.step(share, ambient_c, faults, t, dt)
