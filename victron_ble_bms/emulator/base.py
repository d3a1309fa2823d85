"""What every emulated device shares: identity (address, key, product id), its nonce, and turning
the model's state into an advertisement with the protocol core's `encode` — nothing else builds
frames."""

from __future__ import annotations

import abc
import enum
import hashlib
import random
from dataclasses import dataclass, replace

from victron_ble_bms.protocol import COMPANY_ID, Record, encode, mask_key
from victron_ble_bms.sources.advertisement import Advertisement

from .scenario import ChargerKind, ChargerSpec, Environment

# Measurement noise (issue 13 item 9). No manual gives ADC noise; inferred so that the last digit on
# the wire (0.01 V, 0.1 A, 1 °C) changes now and then between readings, as it does on real devices,
# while every value stays well inside the resolution the app shows: 1σ = 3 mV per cell, 10 mV
# per pack or port voltage, 0.3 °C, 0.1 A.
CELL_NOISE_V = 0.003
VOLTAGE_NOISE_V = 0.010
TEMPERATURE_NOISE_C = 0.3
CURRENT_NOISE_A = 0.1


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a device is on the air. The key is a test key made up for this device."""

    address: str
    key: bytes
    model_id: int
    name: str
    type_name: str
    rssi: int = -60

    @property
    def masked_key(self) -> str:
        return mask_key(self.key)


def rekeyed(old: bytes) -> bytes:
    """The key a device has after a PIN change: byte 0 + 1 (docs/protocol.md §1.1), the rest derived
    from the old key so that a seed gives the same run."""
    return bytes([(old[0] + 1) & 0xFF]) + hashlib.sha256(b"pin-change" + old).digest()[1:16]


class Transmitter(abc.ABC):
    """An emulated device that advertises: one frame per new reading, nonce + 1 each time."""

    def __init__(self, identity: Identity, nonce: int) -> None:
        self.identity = identity
        self.nonce = nonce & 0xFFFF
        self.noise: random.Random | None = None  # None = exact readings (`--exact`)
        self.rekeyed = False

    def measure(self, value: float, sigma: float) -> float:
        """What the device's ADC reads: the model's value plus seeded Gaussian noise
        (none in exact mode). The model's decisions use the true value."""
        return value if self.noise is None else value + self.noise.gauss(0.0, sigma)

    def change_pin(self) -> None:
        """A PIN change gives the device a new advertisement key (docs/protocol.md §1.1: "a changed
        Bluetooth PIN generates a new key, and the device increments byte 0 on re-keying").
        Deterministic: the rest is derived from the old key."""
        if not self.rekeyed:
            self.identity = replace(self.identity, key=rekeyed(self.identity.key))
            self.rekeyed = True

    @abc.abstractmethod
    def record(self) -> Record | None:
        """The record of the current state, or None while the device is silent."""

    def advertise(self, ts: float, rssi_jitter: int = 0) -> Advertisement | None:
        record = self.record()
        if record is None:
            return None
        self.nonce = (self.nonce + 1) & 0xFFFF  # new reading → next nonce (docs/protocol.md §1.1)
        ident = self.identity
        data = encode(record, key=ident.key, nonce=self.nonce, model_id=ident.model_id)
        return Advertisement(
            ts=ts,
            address=ident.address,
            manufacturer_data={COMPANY_ID: data},
            rssi=ident.rssi + rssi_jitter,
            name=ident.name,
            address_type="random",
            origin="emulator",
        )


class System(abc.ABC):
    """One `--device`: a battery on its own, or a BMS with its bank. Steps on the sim clock."""

    @property
    @abc.abstractmethod
    def transmitters(self) -> list[Transmitter]: ...

    @abc.abstractmethod
    def step(self, env: Environment, dt: float) -> None: ...


# -- chargers --------------------------------------------------------------------------------


class Stage(enum.Enum):
    OFF = "off"
    BULK = "bulk"
    ABSORPTION = "absorption"
    FLOAT = "float"


class ChargerRuntime:
    """A BMS-controlled charger: bulk → absorption (fixed time) → float (manual §4.4.2).

    Switched off by the BMS's charge-disconnect it restarts in bulk when switched on again, which
    is what makes an imbalanced battery cycle the charger (manual §6, "BMS frequently disables
    the charger")."""

    __slots__ = ("spec", "stage", "absorption_start")

    def __init__(self, spec: ChargerSpec) -> None:
        self.spec = spec
        self.stage = Stage.OFF
        self.absorption_start = 0.0

    def target_v(self, t: float, scale: float, available: float, enabled: bool) -> float | None:
        """The voltage this charger regulates to now, or None when it delivers nothing."""
        if not enabled or available <= 0.0:
            self.stage = Stage.OFF
            return None
        spec = self.spec
        if self.stage is Stage.OFF:
            self.stage = Stage.BULK
        if self.stage is Stage.ABSORPTION and t - self.absorption_start >= spec.absorption_s:
            self.stage = Stage.FLOAT
        return (spec.float_v if self.stage is Stage.FLOAT else spec.absorption_v) * scale

    def observe(self, t: float, terminal_v: float, target: float) -> None:
        if self.stage is Stage.BULK and terminal_v >= target - 0.01:
            self.stage = Stage.ABSORPTION
            self.absorption_start = t


def charge_current(
    ocv_v: float, resistance_ohm: float, sources: list[tuple[float, float]]
) -> float:
    """Net current of parallel voltage-regulated, current-limited sources (target V, limit A)
    into a pack with open-circuit voltage `ocv_v` and resistance `resistance_ohm`."""
    if not sources:
        return 0.0
    limit = sum(a for _, a in sources)
    target = max(v for v, _ in sources)
    return max(0.0, min(limit, (target - ocv_v) / resistance_ohm))


def mains_and_solar(env: Environment) -> list[tuple[ChargerSpec, float]]:
    return [(c, a) for c, a in env.chargers if c.kind is not ChargerKind.ALTERNATOR]
