"""LFP cell physics: open-circuit voltage curve, per-cell state of charge, internal resistance.

The curve is ours (no manual publishes one) but is pinned to what the battery manual says
(`manuals/lithium-battery-smart.txt`):

* nominal 3.2 V per cell (§2), the long flat plateau around 3.3 V;
* "at 2.8 V … approximately 3 % remaining capacity … at 2.6 V about 1 %" (§5.2.3);
* "when the battery is almost empty, the voltage will drop faster" (§5.2.3);
* absorption 14.2 V = 3.55 V per cell is reached only when (nearly) full, float 13.5 V = 3.375 V;
* above full the voltage shoots up: a lagging-behind imbalance makes one cell climb to 3.75 V "in a
  matter of seconds" and fall back below 3.6 V while the balancer moves charge out of it at 1.8 A;
  "this cycling typically takes between one and three minutes" (§6.1.3). That fixes the charge
  between 3.60 and 3.75 V at about 1.8 A × 60…180 s, *whatever the capacity*, so the over-full
  region is an absolute charge in ampere-seconds (OVERFULL_CURVE), not a fraction of capacity
  (a fraction made the cycle 35 s on a 50 Ah and 331 s on a 330 Ah battery: issue 13 item 7);
* below empty it collapses towards the 2 V at which Bluetooth stops (§6 "VictronConnect issues").

That curve is the cell *while and just after charging*. At rest LiFePO₄ relaxes (issue 24 item 6):

* the top of the curve is surface charge: a full battery rests at about 3.40 V per cell (13.6 V),
  the float level §6.1.2 treats as full ("the charge voltage drops to 13.5V and the battery can be
  considered full"), and §6.1.2's recovery procedure expects a charged battery to "comfortably sit
  above 12.8V … like 13.2V or higher" after a few hours' rest — OCV_REST, reached with
  REST_TAU_S. Inferred: the rest curve itself is the usual published LFP equilibrium curve;
* a load step relaxes: besides the ohmic resistance the cell has a diffusion (RC) part that
  follows the current with a time constant of a minute (RC_TAU_S, RC_SHARE; inferred from the
  usual two-element LFP equivalent circuit — no manual gives it);
* cold raises the resistance several-fold (resistance_factor): inferred, Arrhenius with an
  activation energy of 25 kJ/mol (×2.5 at 0 °C, ×6 at −20 °C), in line with the manual's cold
  capacities (§7: 80 % at 0 °C, 50 % at −20 °C) that come from the same slower kinetics.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

# (state of charge as a fraction, open-circuit volts). SOC may leave [0, 1] a little: that is the
# over-charged / over-discharged region the BMS exists to prevent.
OCV_CURVE: tuple[tuple[float, float], ...] = (
    (-0.010, 1.80),
    (0.000, 2.50),
    (0.010, 2.60),  # manual §5.2.3: 2.6 V ≈ 1 % left
    (0.030, 2.80),  # manual §5.2.3: 2.8 V ≈ 3 % left
    (0.050, 2.98),
    (0.070, 3.08),
    (0.090, 3.13),
    (0.120, 3.18),
    (0.150, 3.21),
    (0.200, 3.24),
    (0.300, 3.27),
    (0.400, 3.285),
    (0.600, 3.30),
    (0.700, 3.31),
    (0.800, 3.33),
    (0.900, 3.34),
    (0.950, 3.36),
    (0.980, 3.40),
    (0.990, 3.45),
    (0.995, 3.50),
    (1.000, 3.60),
)
# The same cell after hours at rest (see top): identical up to 95 %, then the surface charge gone —
# a full cell rests at 3.40 V (13.6 V per 12.8 V battery), not at the 3.60 V of a finished charge.
OCV_REST: tuple[tuple[float, float], ...] = (
    *(p for p in OCV_CURVE if p[0] <= 0.950),
    (0.980, 3.37),
    (0.995, 3.39),
    (1.000, 3.40),
)
# Charge beyond full does not relax: OVERFULL_CURVE is calibrated on the cycle §6.1.3 observes
# (3.75 V → below 3.6 V in one to three minutes with the charger off), which already contains
# whatever the cell relaxes; that charge goes only by balancing or discharge (inferred).
# Surface charge builds up with a charge current (REST_RISE_TAU_S) and fades at rest over hours
# (REST_TAU_S, 10 min: 14.2 V → ~13.8 V in ten minutes, ~13.6 V within the hour; §6.1.2 "let
# the battery rest for a few hours" before judging its voltage) or
# faster under a discharge (REST_DISCHARGE_TAU_S). All three inferred.
REST_RISE_TAU_S = 60.0
REST_TAU_S = 600.0
REST_DISCHARGE_TAU_S = 120.0
# Diffusion part of the resistance (inferred, see top): 30 % of the cell's DC resistance, τ = 60 s.
RC_SHARE = 0.3
RC_TAU_S = 60.0
# Arrhenius factor for the resistance (inferred, see top): Ea / R in kelvin.
ACTIVATION_K = 25000.0 / 8.314
SOC_MIN = OCV_CURVE[0][0]
SOC_MAX = OCV_CURVE[-1][0]

# Charge above full (ampere-seconds) → open-circuit volts. Inferred from §6.1.3 (see top): 330 As
# between 3.60 and 3.75 V is 180 s of balancing at 1.8 A with the charger off, less whatever a
# small load takes as well — inside "one to three minutes" either way;
# the same slope on to the A-SL9 level (3.95 V, §5.3) and to 4.2 V, where "all charge into that
# cell will be dissipated as heat" (§5.2.1) — so the cell stops there.
OVERFULL_CURVE: tuple[tuple[float, float], ...] = (
    (0.0, 3.60),
    (330.0, 3.75),
    (570.0, 3.95),
    (870.0, 4.20),
)
OVERFULL_MAX_AS = OVERFULL_CURVE[-1][0]
_OX = tuple(p[0] for p in OVERFULL_CURVE)
_OY = tuple(p[1] for p in OVERFULL_CURVE)
_XS = tuple(p[0] for p in OCV_CURVE)
_YS = tuple(p[1] for p in OCV_CURVE)
_RX = tuple(p[0] for p in OCV_REST)
_RY = tuple(p[1] for p in OCV_REST)

# Usable capacity against temperature, from the manual's technical data (§7): nominal capacity
# @25 °C = 100 %, @0 °C = 80 %, @-20 °C = 50 % (e.g. 100/80/50 Ah for the 12.8 V/100 Ah).
CAPACITY_VS_TEMPERATURE: tuple[tuple[float, float], ...] = ((-20.0, 0.5), (0.0, 0.8), (25.0, 1.0))


def _interp(xs: tuple[float, ...], ys: tuple[float, ...], x: float) -> float:
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect_right(xs, x)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def ocv(soc: float) -> float:
    """Open-circuit cell voltage for a state of charge (fraction), just after charging."""
    return _interp(_XS, _YS, soc)


def ocv_rest(soc: float) -> float:
    """Open-circuit cell voltage after hours at rest (see OCV_REST)."""
    return _interp(_RX, _RY, soc)


def resistance_factor(temperature_c: float) -> float:
    """How much higher the resistance is than at 25 °C (inferred Arrhenius, see top); the
    formula is not extrapolated beyond the manual's operating range (−20…+50 °C, §7)."""
    t = min(max(temperature_c, -20.0), 50.0) + 273.15
    return math.exp(ACTIVATION_K * (1.0 / t - 1.0 / 298.15))


_CT_X = tuple(p[0] for p in CAPACITY_VS_TEMPERATURE)
_CT_Y = tuple(p[1] for p in CAPACITY_VS_TEMPERATURE)


def capacity_factor(temperature_c: float) -> float:
    """Fraction of the nominal (25 °C) capacity available at a temperature (manual §7)."""
    return _interp(_CT_X, _CT_Y, temperature_c)


@dataclass(slots=True)
class Cell:
    """One LFP cell: mutable simulation state. `soc` ≤ 1 is the fraction of capacity; charge
    pushed in beyond full is `over_as` ampere-seconds (see OVERFULL_CURVE)."""

    capacity_ah: float
    soc: float  # fraction of capacity_ah
    resistance_ohm: float
    over_as: float = 0.0
    leak_per_s: float = 0.0  # self-discharge, fraction of capacity per second
    surface: float = 0.0  # 0 = rested … 1 = just charged (see OCV_REST)
    v_rc: float = 0.0  # diffusion overpotential, V (see RC_TAU_S)
    r_factor: float = 1.0  # resistance_factor at the cell's temperature

    def ocv(self) -> float:
        if self.over_as > 0.0:
            return _interp(_OX, _OY, self.over_as)
        rest = ocv_rest(self.soc)
        return rest + self.surface * (ocv(self.soc) - rest)

    @property
    def r_ohmic(self) -> float:
        """The part of the resistance that acts at once (the rest is the RC part)."""
        return self.resistance_ohm * (1.0 - RC_SHARE) * self.r_factor

    def emf(self) -> float:
        """The voltage behind the ohmic resistance: open-circuit plus diffusion overpotential."""
        return self.ocv() + self.v_rc

    def voltage(self, current_a: float) -> float:
        """Terminal voltage; current > 0 charges (voltage rises by I·R)."""
        return self.emf() + current_a * self.r_ohmic

    def relax(self, current_a: float, dt: float) -> None:
        """Advance the RC part and the surface charge by dt with this current (exact
        exponential steps, stable for any dt)."""
        target = current_a * self.resistance_ohm * RC_SHARE * self.r_factor
        self.v_rc = target + (self.v_rc - target) * math.exp(-dt / RC_TAU_S)
        # any charge current (above C/500) builds surface charge and keeps it — a charger's
        # tail in absorption too; a discharge or rest lets it go
        if current_a > 0.002 * self.capacity_ah:
            goal, tau = 1.0, REST_RISE_TAU_S
        else:
            goal = 0.0
            tau = REST_DISCHARGE_TAU_S if current_a < -0.05 * self.capacity_ah else REST_TAU_S
        self.surface = goal + (self.surface - goal) * math.exp(-dt / tau)

    def dv_das(self, capacity_factor_: float = 1.0) -> float:
        """How fast the open-circuit voltage moves per ampere-second here (V/As), for the
        bank's implicit current split."""
        if self.over_as > 0.0 or self.soc >= 1.0:
            step = 10.0
            return (_interp(_OX, _OY, self.over_as + step) - self.ocv()) / step
        usable = self.capacity_ah * 3600.0 * capacity_factor_
        d = 1e-4
        return (ocv(min(self.soc + d, 1.0)) - ocv(self.soc)) / (d * usable) + 1e-9

    def add_charge(self, ampere_seconds: float, capacity_factor_: float = 1.0) -> None:
        """Move charge in (positive) or out (negative); cold cells have less usable capacity.
        Charge beyond full goes into the over-full region, and comes out of it first."""
        if ampere_seconds < 0.0 and self.over_as > 0.0:
            taken = min(self.over_as, -ampere_seconds)
            self.over_as -= taken
            ampere_seconds += taken
        usable = self.capacity_ah * 3600.0 * capacity_factor_
        soc = self.soc + ampere_seconds / usable
        if soc > SOC_MAX:
            self.over_as = min(self.over_as + (soc - SOC_MAX) * usable, OVERFULL_MAX_AS)
            soc = SOC_MAX
        self.soc = SOC_MIN if soc < SOC_MIN else soc

    def self_discharge(self, dt: float) -> None:
        if self.leak_per_s:
            self.add_charge(-self.leak_per_s * self.capacity_ah * 3600.0 * dt)
