"""Write a JSON-lines recording of every bundled emulator scenario (and of the demo fleet) into
this directory and put every emulated device's (test) key into keys.toml, so that

    victron-bms decode captures/scenario-deep-discharge.jsonl --keys captures/keys.toml

decodes every frame. Each recording's header names its keys file ("keys": "keys.toml", relative
to the recording). Deterministic: each scenario has its own seed (so no two recordings share a
device address), the emulator's fixed simulated start time, and noise/jitter/repeats on, as a
receiver would record them. Only `scenario-pin-change.jsonl` has frames that do not decode with
keys.toml: after its PIN change the battery uses a new key — the key-mismatch case on purpose.

    python captures/make_emulator_samples.py
"""

from __future__ import annotations

import zlib
from pathlib import Path

from victron_ble_bms.emulator import DeviceSpec, Emulator, bundled_names, demo_fleet, load_scenario
from victron_ble_bms.sources.capture.jsonl import JsonlWriter
from victron_ble_bms.sources.keys import KeyStore

HERE = Path(__file__).resolve().parent
MAX_DURATION_S = 900  # keep each file small: at most 15 simulated minutes …
MAX_FRAMES = 4000  # … and about this many frames (the fleet has dozens of devices)
FRAMES_PER_READING = 2  # noise mode receives each reading about twice (engine.REPEAT_…)
DEMO_DURATION_S = 120
# Entries written by hand for make_samples.py's pcap/btsnoop samples; everything else is ours.
HAND_WRITTEN = {"D1:23:45:67:89:AB", "E4:00:00:00:00:01", "E4:00:00:00:00:02"}


def seed_for(name: str) -> int:
    return zlib.crc32(name.encode()) & 0xFFFF


def record(path: Path, emu: Emulator, duration: float, **header: object) -> int:
    with JsonlWriter(path, source="emulator", keys="keys.toml", **header) as writer:
        for adv in emu.run(duration):
            writer.write(adv)
    return writer.count


def main() -> None:
    store = KeyStore.load(HERE / "keys.toml")
    for address in [a for a in store if a not in HAND_WRITTEN]:
        store.remove(address)
    for name in bundled_names():
        scenario = load_scenario(name)
        specs = [DeviceSpec(d.type) for d in scenario.devices for _ in range(d.count)]
        seed = seed_for(name)
        emu = Emulator(specs, scenario, seed=seed, speed=None)
        n = len(emu.identities)
        duration = min(scenario.duration_s, MAX_DURATION_S, MAX_FRAMES // (FRAMES_PER_READING * n))
        path = HERE / f"scenario-{name}.jsonl"
        count = record(path, emu, duration, scenario=name, seed=seed)
        for identity in emu.identities:
            store.add(identity.address, identity.key, name=f"{name}: {identity.name}")
        print(f"{path.name}: {count} frames, {duration:.0f} simulated s, {n} devices")
    emu = Emulator(demo_fleet(), seed=1, speed=None)
    count = record(HERE / "demo.jsonl", emu, DEMO_DURATION_S, scenario="demo", seed=1)
    for identity in emu.identities:
        store.add(identity.address, identity.key, name=f"demo: {identity.name}")
    print(f"demo.jsonl: {count} frames, {DEMO_DURATION_S} simulated s")
    store.save()


if __name__ == "__main__":
    main()
