"""The simulation engine: a simulated clock stepping every device once per second, each device
sending one advertisement per new reading (about 1 Hz, like the real devices).

    from victron_ble_bms.emulator import Emulator, DeviceSpec, load_scenario, demo_fleet

    emu = Emulator([DeviceSpec("lithium-12.8v-100ah")], load_scenario("deep-discharge"), seed=1)
    for adv in emu.run(600):            # as fast as the CPU allows; adv.ts is simulated time
        ...
    emu.keys                            # address → key, to decode what it sends

    emu = Emulator(demo_fleet(), seed=1, speed=1.0)
    async for adv in emu.stream():      # paced in real time (× speed), forever or until duration
        ...
    await emu.play(advertiser, duration_s=600)   # to an `Advertiser` (BlueZ, virtual, capture)

Deterministic: the same devices, scenario and seed give the same frames (addresses, keys,
nonces, values), whatever the speed.

Realism (issue 13 item 9), on unless `exact=True` (`emulate --exact`): seeded ADC noise on every
measured value (see `base.CELL_NOISE_V` …), jitter on the reading interval, and each reading
received several times with the same nonce, as a scanner sees a device that repeats its
advertisement until the next reading. Exact mode gives the model's values at exactly 1.000 s,
one frame per reading — for tests that want fixed values.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace

from victron_ble_bms.sources.advertisement import Advertisement

from .advertiser import Advertiser
from .base import Identity, System, Transmitter, rekeyed
from .devices import Builder, DeviceSpec, validate_scenario
from .scenario import FaultKind, Scenario, ScenarioError, load_scenario

# Simulated clock origin: 2024-01-01T00:00:00Z, fixed so that a seed gives the same capture.
DEFAULT_START_TS = 1_704_067_200.0
STEP_S = 1.0  # one new reading per device per simulated second
# Timing realism, inferred (no manual or protocol source gives these figures): a reading comes
# every 1 s ± 25 ms; between readings the device repeats the same advertisement (same nonce)
# every 250 ms plus the BLE advDelay of 0–10 ms (Core spec Vol 6 Part B §4.4.2.2.1), and a
# scanner receives each of those repeats with probability 0.35 — about two frames per reading.
READING_JITTER_S = 0.025
ADV_INTERVAL_S = 0.25
ADV_DELAY_MAX_S = 0.010
REPEAT_RECEIVED_P = 0.35


@dataclass(slots=True)
class _Unit:
    system: System
    scenario: Scenario


class Emulator:
    """Devices + scenario(s) + seed → a deterministic stream of `Advertisement`s."""

    def __init__(
        self,
        devices: Sequence[DeviceSpec],
        scenario: Scenario | None = None,
        *,
        seed: int = 0,
        speed: float | None = 1.0,
        start_ts: float = DEFAULT_START_TS,
        exact: bool = False,
    ) -> None:
        if not devices:
            raise ValueError("no devices to emulate")
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (or None for as fast as possible)")
        self.speed = speed
        self.start_ts = start_ts
        self.exact = exact
        self.time_s = 0.0
        rng = random.Random(seed)  # noqa: S311 - a deterministic simulation, not crypto
        builder = Builder(rng)
        self._units: list[_Unit] = []
        for spec in devices:
            sc = spec.scenario or scenario
            if sc is None:
                raise ScenarioError(f"no scenario for device {spec.type}")
            validate_scenario(sc)
            self._units.append(_Unit(builder.system(spec, sc), sc))
        margin = READING_JITTER_S  # phases stay inside the second, so time never runs backwards
        self._tx: list[tuple[Transmitter, float]] = [
            (tx, margin + rng.random() * (1.0 - 2 * margin))
            for u in self._units
            for tx in u.system.transmitters
        ]
        self._jitter = random.Random(rng.random())  # noqa: S311
        # Noise and timing draw from their own generators, so that exact and noisy runs of a
        # seed have the same devices, keys and physics.
        self._timing = random.Random(f"timing:{seed}")  # noqa: S311
        if not exact:
            noise = random.Random(f"noise:{seed}")  # noqa: S311
            for tx, _ in self._tx:
                tx.noise = random.Random(noise.random())  # noqa: S311
        self.silent: set[str] = set()  # addresses not advertising right now (manual §6)
        # address → (last advertisement, its RSSI base, time of its last advertising event)
        self._pending: dict[str, tuple[Advertisement, int, float]] = {}

    @property
    def systems(self) -> list[System]:
        return [u.system for u in self._units]

    @property
    def identities(self) -> list[Identity]:
        return [tx.identity for tx, _ in self._tx]

    @property
    def keys(self) -> dict[str, bytes]:
        return {tx.identity.address: tx.identity.key for tx, _ in self._tx}

    def transmitter(self, address: str) -> Transmitter:
        for tx, _ in self._tx:
            if tx.identity.address == address:
                return tx
        raise KeyError(address)

    def _repeats(self, address: str, until: float, out: list[Advertisement]) -> None:
        """Receptions of `address`'s current advertisement before `until`: one advertising
        event every ADV_INTERVAL_S + advDelay, each received with REPEAT_RECEIVED_P."""
        pending = self._pending.get(address)
        if pending is None:
            return
        adv, rssi, last = pending
        timing = self._timing
        while True:
            ts = last + ADV_INTERVAL_S + timing.uniform(0.0, ADV_DELAY_MAX_S)
            if ts >= until:
                break
            last = ts
            if timing.random() < REPEAT_RECEIVED_P:
                out.append(replace(adv, ts=ts, rssi=rssi + timing.randint(-3, 3)))
        self._pending[address] = (adv, rssi, last)

    def key_changes(self) -> list[tuple[float, str, bytes]]:
        """(simulated second, address, new key) of every PIN change the scenarios will make."""
        out = []
        for u in self._units:
            for f in u.scenario.faults:
                if f.kind is FaultKind.PIN_CHANGE:
                    tx = u.system.transmitters[0]
                    key = tx.identity.key if tx.rekeyed else rekeyed(tx.identity.key)
                    out.append((f.start_s, tx.identity.address, key))
        return out

    def step(self) -> list[Advertisement]:
        """One simulated second: the physics advances over it, then every device sends the
        reading it measured — so the first reading already shows the scenario's first second
        (its load, its charger), not the state before anything flowed (issue 24 item 7)."""
        t = self.time_s
        out: list[Advertisement] = []
        silent: set[str] = set()
        jitter = self._jitter
        envs = [u.scenario.environment(t) for u in self._units]
        for u, env in zip(self._units, envs, strict=True):
            if FaultKind.PIN_CHANGE in env.faults:  # the BMS, or the battery on its own
                u.system.transmitters[0].change_pin()
        for u, env in zip(self._units, envs, strict=True):
            u.system.step(env, STEP_S)
        timing = self._timing
        window_end = self.start_ts + t + STEP_S
        for tx, phase in self._tx:
            offset = 0.0 if self.exact else timing.uniform(-READING_JITTER_S, READING_JITTER_S)
            reading_ts = self.start_ts + t + phase + offset
            address = tx.identity.address
            if not self.exact:  # the previous reading repeats until this one is taken
                self._repeats(address, reading_ts, out)
            adv = tx.advertise(reading_ts, jitter.randint(-3, 3))
            if adv is None:
                silent.add(address)
                self._pending.pop(address, None)
                continue
            out.append(adv)
            if not self.exact:
                self._pending[address] = (adv, tx.identity.rssi, reading_ts)
                self._repeats(address, window_end, out)
        self.silent = silent
        self.time_s = t + STEP_S
        out.sort(key=lambda a: a.ts)
        return out

    def run(self, duration_s: float) -> Iterator[Advertisement]:
        """Simulate `duration_s` seconds as fast as possible (ignores `speed`)."""
        end = self.time_s + duration_s
        while self.time_s < end:
            yield from self.step()

    async def stream(self, duration_s: float | None = None) -> AsyncIterator[Advertisement]:
        """Advertisements paced by `speed` (simulated seconds per wall second; None = max)."""
        wall0 = time.monotonic()
        sim0 = self.time_s
        end = None if duration_s is None else sim0 + duration_s
        while end is None or self.time_s < end:
            for adv in self.step():
                if self.speed is not None:
                    due = wall0 + (adv.ts - self.start_ts - sim0) / self.speed
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                yield adv
            if self.speed is None:
                await asyncio.sleep(0)

    def __aiter__(self) -> AsyncIterator[Advertisement]:
        return self.stream()

    async def play(self, advertiser: Advertiser, duration_s: float | None = None) -> int:
        """Publish to an advertiser; a device that goes silent is removed, and comes back with
        its next frame. Returns the number of frames published."""
        await advertiser.start()
        count = 0
        on_air: set[str] = set()
        last: dict[str, Advertisement] = {}
        try:
            async for adv in self.stream(duration_s):
                for address in on_air & self.silent:
                    await advertiser.remove(address)
                    on_air.discard(address)
                previous = last.get(adv.address)
                if previous is not None and previous.manufacturer_data == adv.manufacturer_data:
                    # A repeat of the same reading: a radio repeats its advertisement by
                    # itself; only advertisers that record every reception (a capture) get it.
                    repeat = getattr(advertiser, "repeat", None)
                    if repeat is not None:
                        await repeat(adv)
                        count += 1
                    continue
                await advertiser.publish(adv)
                last[adv.address] = adv
                on_air.add(adv.address)
                count += 1
        finally:
            await advertiser.close()
        return count


# The demo fleet's identities are fixed (whatever the seed) and published in captures/keys.toml,
# so that a recording of the demo (`record --source emulator`, the dashboard's `r`) decodes with
# that file (issue 10 item 2). The batteries behind the two BMSes get addresses and keys derived
# from their BMS's (`devices.Builder.bank_member`), also listed there. Made-up TEST keys.
DEMO_KEYS_FILE = "captures/keys.toml"
DEMO_IDENTITIES = (
    ("lithium-25.6v-200ah", "imbalance", "D0:DE:00:00:00:01", "1b1d731dbcaeca7eca45f84d79feeead"),
    ("lithium-12.8v-50ah", "deep-discharge", "D0:DE:00:00:00:02",
     "d9e359217f474e0d703de3d11c3b0928"),
    ("smart-bms-12-200", "alternator", "D0:DE:00:00:00:03", "2b8368fdb5e05da877a9ea4315d53165"),
    ("lynx-smart-bms-500", "normal-day", "D0:DE:00:00:00:04", "7477621f1f9d6d74d8bfb4f4bacbaeaf"),
)  # fmt: skip


def demo_fleet() -> list[DeviceSpec]:
    """A mixed fleet in which, within the first simulated minute at speed 1, a battery balances
    and a W-/A- code appears: a 25.6 V battery charging while imbalanced, a 12.8 V/50 Ah
    battery running flat (W-SL12), a Smart BMS 12/200 on a running alternator and a Lynx Smart
    BMS 500 through a normal day — seven devices with the fixed identities above."""
    return [
        DeviceSpec(type_, address, bytes.fromhex(key), load_scenario(scenario))
        for type_, scenario, address, key in DEMO_IDENTITIES
    ]
