"""How many emulated devices one core sustains at 1 Hz: simulate N devices for S simulated
seconds at max speed and report device-readings per CPU second (goal ≥ 1,000).

    python benchmarks/emulator.py [N] [S]
"""

from __future__ import annotations

import sys
import time

from victron_ble_bms.emulator import DeviceSpec, Emulator, load_scenario


def measure(specs: list[DeviceSpec], seconds: int, label: str, *, exact: bool = True) -> None:
    """Counts readings (new nonces), not frames: with noise on, each reading is received
    about twice (repeated adverts), which would double the figure."""
    emu = Emulator(specs, load_scenario("normal-day"), seed=1, speed=None, exact=exact)
    n = len(emu.identities)
    cpu0 = time.process_time()
    frames = sum(
        1 for _ in {(a.address, a.manufacturer_data[0x02E1][5:7]) for a in emu.run(seconds)}
    )
    cpu = time.process_time() - cpu0
    rate = frames / cpu
    print(
        f"{label:<34} {n:5d} advertising devices × {seconds} s: {frames:7d} frames in "
        f"{cpu:6.2f} CPU s → {rate:8.0f} device·Hz per CPU second "
        f"({'meets' if rate >= 1000 else 'BELOW'} the 1,000 goal)"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    measure([DeviceSpec("lithium-12.8v-100ah")] * n, seconds, "Lithium Battery Smart 12.8 V")
    measure(
        [DeviceSpec("lithium-12.8v-100ah")] * n,
        seconds,
        "… with noise, jitter, repeats",
        exact=False,
    )
    measure([DeviceSpec("lithium-25.6v-200ah")] * n, seconds, "Lithium Battery Smart 25.6 V")
    mix = ["lithium-12.8v-200ah", "smart-bms-12-200", "lynx-smart-bms-500", "smart-bms-cl-12-100"]
    measure([DeviceSpec(mix[i % 4]) for i in range(n // 2)], seconds, "mix incl. BMS + bank")


if __name__ == "__main__":
    main()
