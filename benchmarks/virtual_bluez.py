"""How many advertisement updates per second the virtual BlueZ carries end-to-end.

Path measured: BluezAdvertiser.publish → PropertiesChanged(LEAdvertisement1) → dbus-daemon →
virtual BlueZ → PropertiesChanged(Device1) → dbus-daemon → unmodified bleak.BleakScanner callback,
the scanner running in a separate process (as a third-party app would). Prints figures.

    python benchmarks/virtual_bluez.py [--devices 50] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

from victron_ble_bms.emulator.virtual_bluez import VirtualBluezAdvertiser
from victron_ble_bms.protocol import SmartLithiumRecord, encode
from victron_ble_bms.protocol.enums import BalancerStatus, BmsFlags, SmartLithiumErrorFlags
from victron_ble_bms.sources.advertisement import Advertisement

KEY = "0df4d0995b7d1e176c0c33ecb9e70dcd"
RECORD = SmartLithiumRecord(
    BmsFlags.ALLOWED_TO_CHARGE | BmsFlags.ALLOWED_TO_DISCHARGE,
    SmartLithiumErrorFlags(0),
    (3.31, 3.32, 3.30, 3.33, None, None, None, None),
    13.26,
    BalancerStatus.BALANCED,
    21,
)

SCANNER = r"""
import asyncio, sys, time
from bleak import BleakScanner
count = 0
first = last = None
def cb(device, adv):
    global count, first, last
    if 0x02E1 in adv.manufacturer_data:
        now = time.monotonic()
        first = first or now
        last = now
        count += 1
async def main():
    async with BleakScanner(cb):
        print("scanning", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await asyncio.sleep(float(sys.argv[1]))  # drain what is still in flight
    print(count, (last or 0) - (first or 0), flush=True)
asyncio.run(main())
"""


async def run(devices: int, seconds: float) -> None:
    virtual = VirtualBluezAdvertiser()
    await virtual.start()
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=virtual.bus_address)
    scanner = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", SCANNER, "1.0"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert scanner.stdin is not None and scanner.stdout is not None
    loop = asyncio.get_running_loop()
    # read in a thread: the scanner needs our in-process virtual BlueZ to answer meanwhile
    assert (await loop.run_in_executor(None, scanner.stdout.readline)).strip() == "scanning"
    addresses = [f"C0:FF:EE:00:{i >> 8:02X}:{i & 0xFF:02X}" for i in range(devices)]
    frames = [encode(RECORD, key=KEY, nonce=n, model_id=0xA0E5) for n in range(256)]
    t0 = time.perf_counter()
    for address in addresses:
        await virtual.publish(Advertisement(0.0, address, {0x02E1: frames[0]}, name="bench"))
    registered = time.perf_counter() - t0
    published = 0
    t0 = time.perf_counter()
    nonce = 0
    while time.perf_counter() - t0 < seconds:
        nonce = nonce % 255 + 1
        for address in addresses:
            await virtual.publish(Advertisement(0.0, address, {0x02E1: frames[nonce]}))
            published += 1
        await asyncio.sleep(0)  # let the in-process virtual BlueZ run
    elapsed = time.perf_counter() - t0
    scanner.stdin.write("\n")
    scanner.stdin.flush()
    count_text, span_text = (await loop.run_in_executor(None, scanner.stdout.readline)).split()
    scanner.wait(timeout=30)
    received, span = int(count_text), float(span_text)
    await virtual.close()
    print(f"devices:                    {devices}")
    print(f"register {devices} advertisements: {registered * 1000:.0f} ms")
    print(
        f"published updates:          {published} in {elapsed:.2f} s = {published / elapsed:,.0f}/s"
    )
    print(
        f"bleak callbacks (other process): {received} "
        f"({received / max(published + devices, 1):.1%} of frames)"
    )
    if span > 0:
        print(f"end-to-end rate at scanner: {received / span:,.0f} updates/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(run(args.devices, args.seconds))


if __name__ == "__main__":
    main()
