"""The dashboard on the radio path at a marina's size, in tmux: the process's own CPU.

    python benchmarks/dashboard_live.py [--devices 500] [--seconds 20] [--runs 3]

`benchmarks/dashboard_terminal.py` feeds the dashboard from a capture file; a boat owner's
dashboard hears the radio: BlueZ signals each advertisement over D-Bus and unmodified bleak turns
it into a callback. Here the virtual BlueZ (a real `dbus-daemon`, our stand-in `org.bluez`, in
this process) carries `--devices` devices × 1 Hz, each on its own phase (100 groups a second, as
a radio hears them), to `victron-bms dashboard --keys …` running live in a detached tmux session
(160×50, its own tmux server). Its CPU is read from /proc/PID/stat while only the readings flow.

Beside it, the same traffic into a bare `BleakScanner` that counts its callbacks (another
process): the floor any program using bleak pays for these signals before it does anything with
them. Also printed: the share of the published frames the scanner received, and what this
process (feeder and virtual BlueZ) and the dbus-daemon spent, which a real BlueZ spends instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dashboard import fleet_of, spread  # noqa: E402
from dashboard_terminal import SIZE, Tmux, cpu_s, dashboard_pid, runs_of  # noqa: E402

from victron_ble_bms.emulator.virtual_bluez import VirtualBluezAdvertiser  # noqa: E402
from victron_ble_bms.sources.advertisement import Advertisement  # noqa: E402

T = TypeVar("T")
GROUPS_PER_S = 100
SETTLE_S = 3.0  # after every card is on screen: cards painted, readings in their steady state

SCANNER = r"""
import asyncio, sys
from bleak import BleakScanner
count = 0
def cb(device, adv):
    global count
    if 0x02E1 in adv.manufacturer_data:
        count += 1
async def main():
    async with BleakScanner(cb):
        print("scanning", flush=True)
        while await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline):
            print(count, flush=True)  # each line asks for the count so far
asyncio.run(main())
"""


class Feeder:
    """`devices` × 1 Hz through the virtual BlueZ, each frame with the next nonce."""

    def __init__(self, virtual: VirtualBluezAdvertiser, payloads: list[tuple[str, list[bytes]]]):
        self.virtual, self.payloads = virtual, payloads
        self.published = 0
        self.late_s = 0.0  # how far behind its schedule the feeder fell at worst

    async def run(self, seconds: int) -> None:
        n = len(self.payloads)
        t0 = time.monotonic()
        for second in range(seconds):
            for group in range(GROUPS_PER_S):
                delay = t0 + second + group / GROUPS_PER_S - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    self.late_s = max(self.late_s, -delay)
                for address, variants in self.payloads[
                    group * n // GROUPS_PER_S : (group + 1) * n // GROUPS_PER_S
                ]:
                    adv = Advertisement(time.time(), address, {0x02E1: variants[second]}, rssi=-60)
                    await self.virtual.publish(adv)
                    self.published += 1


async def blocking(call: Callable[[], T]) -> T:
    """A blocking call (tmux, a child's pipe) off the loop: the virtual BlueZ must keep
    answering meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(None, call)


async def stretch(pids: list[int], seconds: float) -> list[float]:
    """Each process's CPU share of one core over `seconds`."""
    before = [cpu_s(p) for p in pids]
    await asyncio.sleep(seconds)
    return [100 * (cpu_s(p) - b) / seconds for p, b in zip(pids, before, strict=True)]


async def run(devices: int, seconds: float) -> dict[str, float]:
    total = int(2 * seconds + 60)
    keys, payloads = fleet_of(devices, total)
    with tempfile.TemporaryDirectory() as tmp:
        keys_path = keys.save(Path(tmp) / "keys.toml")
        virtual = VirtualBluezAdvertiser()
        await virtual.start()
        feeder = Feeder(virtual, payloads)
        feeding = asyncio.create_task(feeder.run(total))
        env = ["env", "TERM=xterm-256color", f"DBUS_SYSTEM_BUS_ADDRESS={virtual.bus_address}"]
        tmux = Tmux(f"dashlive-{os.getpid()}")
        out: dict[str, float] = {}
        scanner: subprocess.Popen[str] | None = None
        try:
            await blocking(
                lambda: tmux(
                    "new-session",
                    "-d",
                    "-s",
                    "bench",
                    "-x",
                    str(SIZE[0]),
                    "-y",
                    str(SIZE[1]),
                    *env,
                    sys.executable,
                    "-m",
                    "victron_ble_bms",
                    "dashboard",
                    "--keys",
                    str(keys_path),
                )  # fmt: skip
            )
            pane = int(
                await blocking(lambda: tmux("list-panes", "-t", "bench", "-F", "#{pane_pid}"))
            )
            pid = await blocking(lambda: dashboard_pid(pane))
            started = time.monotonic()
            while not any(f"{devices} devices" in line for line in await blocking(tmux.screen)):
                if time.monotonic() - started > 60:
                    raise RuntimeError("the dashboard did not show every device in 60 s")
                await asyncio.sleep(0.2)
            await asyncio.sleep(SETTLE_S)
            bus = virtual._private.pid if virtual._private is not None else None  # noqa: SLF001
            sent = feeder.published
            shares = await stretch([pid, os.getpid(), *([bus] if bus else [])], seconds)
            out["dashboard %"], out["feeder + virtual BlueZ %"] = shares[0], shares[1]
            if bus:
                out["dbus-daemon %"] = shares[2]
            out["published/s"] = (feeder.published - sent) / seconds
            await blocking(lambda: tmux("kill-server"))

            scanner = subprocess.Popen(  # noqa: S603 - our own interpreter and script
                [sys.executable, "-c", SCANNER],
                env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=virtual.bus_address),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert scanner.stdin is not None and scanner.stdout is not None
            stdin, stdout = scanner.stdin, scanner.stdout
            assert (await blocking(stdout.readline)).strip() == "scanning"
            await asyncio.sleep(SETTLE_S)
            sent = feeder.published
            stdin.write("\n")  # the scanner prints its count so far: the stretch starts
            stdin.flush()
            counted = int(await blocking(stdout.readline))
            (share,) = await stretch([scanner.pid], seconds)
            stdin.write("\n")
            stdin.flush()
            out["bare bleak %"] = share
            out["bleak received"] = (int(await blocking(stdout.readline)) - counted) / max(
                1, feeder.published - sent
            )
            out["feeder late s"] = feeder.late_s
            return out
        finally:
            if scanner is not None:
                scanner.kill()
                scanner.wait()
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
            await blocking(lambda: subprocess.run(  # noqa: S603
                [tmux.tmux, "-L", tmux.socket, "kill-server"], capture_output=True, check=False
            ))  # fmt: skip
            await virtual.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=20.0, help="each measured stretch")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    load = os.getloadavg()
    r = runs_of(a.runs, lambda: asyncio.run(run(a.devices, a.seconds)))
    print(
        f"dashboard live (virtual BlueZ, unmodified bleak) in tmux {SIZE[0]}×{SIZE[1]}, "
        f"{a.devices} devices × 1 Hz, {a.runs} runs of {a.seconds:g} s (min/median/max); "
        f"load average before {load[0]:.1f}, after {os.getloadavg()[0]:.1f}"
    )
    print(f"  published: {spread(r['published/s'], '{:.0f}')} frames/s")
    print(f"  dashboard:          CPU share of one core {spread(r['dashboard %'])} %")
    print(
        f"  bare BleakScanner:  CPU share of one core {spread(r['bare bleak %'])} %   "
        f"(the floor: bleak's callbacks alone; it received "
        f"{spread([100 * x for x in r['bleak received']], '{:.0f}')} % of the frames sent)"
    )
    extra = f", dbus-daemon {spread(r['dbus-daemon %'])} %" if "dbus-daemon %" in r else ""
    print(
        f"  this process (feeder + virtual BlueZ) {spread(r['feeder + virtual BlueZ %'])} %"
        f"{extra}: what a real BlueZ spends instead"
    )
    late = max(r["feeder late s"])
    if late > 0.5:
        print(f"  the feeder fell up to {late:.2f} s behind its schedule: figures are low")


if __name__ == "__main__":
    main()
