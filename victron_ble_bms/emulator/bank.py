"""A bank of Lithium Battery Smart batteries behind one BMS, daisy-chained BMS cables.

Batteries in series carry the same current. Strings in parallel are ONE electrical node: the
current splits so that their terminal voltages agree, each string taking (V − OCV) / R — a fuller
string takes less charge and gives more on discharge, and at rest a circulating current evens out
different states of charge (Lithium Battery Smart manual §5.2.1: "up to 5 batteries can be
connected in parallel … no damage will occur if there are small differences in individual battery
voltages because of varying cable resistances or internal battery resistances"). The BMS sees the
chain's signals: a battery that does not allow charging or discharging pulls the whole chain
(manual §3.1, "all battery BMS cables are connected in series").

What the bank's members advertise adds up (issue 20 item 4): the strings' currents sum to the
bank current the BMS measures (`split`), and the BMS's voltage is the node behind the cables —
each member's terminal voltage is that node's plus its own current times its cabling
(`voltage_v`), so a bank view can check one against the other.
"""

from __future__ import annotations

from .lithium import LithiumBattery, LithiumType
from .scenario import FaultKind

# Inferred (no manual gives it): 1 mΩ of cable and fuse per battery connection, the order of a
# metre of 35 mm² cable there and back — the "varying cable resistances" of §5.2.1.
CABLE_OHM = 0.001


class Bank:
    def __init__(self, strings: list[list[LithiumBattery]]) -> None:
        self.strings = strings
        self.batteries = [b for s in strings for b in s]
        self.parallel = len(strings)
        self.currents = [0.0] * self.parallel  # each string's current in the last step

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

    def _string(self, s: list[LithiumBattery]) -> tuple[float, float]:
        return sum(b.ocv_v for b in s), sum(b.resistance_ohm + CABLE_OHM for b in s)

    @property
    def ocv_v(self) -> float:
        """Thevenin equivalent of the parallel strings: conductance-weighted OCV."""
        if self.parallel == 1:
            return self._string(self.strings[0])[0]
        pairs = [self._string(s) for s in self.strings]
        g = sum(1.0 / r for _, r in pairs)
        return sum(v / r for v, r in pairs) / g

    @property
    def resistance_ohm(self) -> float:
        return 1.0 / sum(1.0 / self._string(s)[1] for s in self.strings)

    @property
    def voltage_v(self) -> float:
        """The bank's voltage where the strings meet (at the BMS): each string's terminal
        voltages plus the drop of its current through its cabling (CABLE_OHM per battery
        connection; a discharge, i < 0, leaves the node lower than the terminals)."""
        nodes = [
            sum(b.voltage_v for b in s) + i * CABLE_OHM * len(s)
            for s, i in zip(self.strings, self.currents, strict=True)
        ]
        return sum(nodes) / self.parallel

    @property
    def soc(self) -> float:
        """The charge actually in the bank, as a fraction of its capacity (what a battery
        monitor synchronised before t = 0 starts from)."""
        socs = [sum(c.soc for c in b.cells) / len(b.cells) for b in self.batteries]
        return min(max(sum(socs) / len(socs), 0.0), 1.0)

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
        self.currents = self.split(current_a, dt)
        for string, i in zip(self.strings, self.currents, strict=True):
            for b in string:
                b.step(i, ambient_c, faults, t, dt)

    def split(self, current_a: float, dt: float) -> list[float]:
        """Each string's current when they share one terminal voltage V: I_s = (V − OCV_s)/R_s
        with Σ I_s = current_a. Solved implicitly (R_s plus dt × dOCV/dQ) so that a step of dt
        cannot overshoot where the OCV curve is steep (backward Euler, stable for any dt)."""
        if self.parallel == 1:
            return [current_a]
        ocvs, gs = [], []
        for s in self.strings:
            v, r = self._string(s)
            slope = sum(c.dv_das() for b in s for c in b.cells)
            ocvs.append(v)
            gs.append(1.0 / (r + dt * slope))
        node = (current_a + sum(v * g for v, g in zip(ocvs, gs, strict=True))) / sum(gs)
        return [(node - v) * g for v, g in zip(ocvs, gs, strict=True)]
