"""Write a JSON-lines recording of every bundled emulator scenario into this directory and add
the emulated devices' (test) keys to keys.toml, so that

    victron-bms decode captures/scenario-deep-discharge.jsonl --keys captures/keys.toml

works out of the box. Deterministic: seed 1, the emulator's fixed simulated start time.

    python captures/make_emulator_samples.py
"""

from __future__ import annotations

from pathlib import Path

from victron_ble_bms.emulator import DeviceSpec, Emulator, bundled_names, load_scenario
from victron_ble_bms.sources.capture.jsonl import JsonlWriter
from victron_ble_bms.sources.keys import KeyStore

HERE = Path(__file__).resolve().parent
SEED = 1
FALLBACK_DEVICE = "lithium-12.8v-100ah"  # for scenarios that name no devices
MAX_DURATION_S = 900  # keep each file small: at most 15 simulated minutes …
MAX_FRAMES = 4000  # … and at most this many frames (the fleet has dozens of devices)


def main() -> None:
    store = KeyStore.load(HERE / "keys.toml")
    for name in bundled_names():
        scenario = load_scenario(name)
        specs = [DeviceSpec(d.type) for d in scenario.devices for _ in range(d.count)]
        specs = specs or [DeviceSpec(FALLBACK_DEVICE)]
        emu = Emulator(specs, scenario, seed=SEED, speed=None)
        duration = min(scenario.duration_s, MAX_DURATION_S, MAX_FRAMES // len(specs))
        path = HERE / f"scenario-{name}.jsonl"
        with JsonlWriter(path, source="emulator", scenario=name, seed=SEED) as writer:
            for adv in emu.run(duration):
                writer.write(adv)
        for identity in emu.identities:
            store.add(identity.address, identity.key, name=f"{name}: {identity.name}")
        print(f"{path.name}: {writer.count} frames, {duration:.0f} simulated s")
    store.save()


if __name__ == "__main__":
    main()
