"""Regenerate the README's dashboard screenshots (docs/dashboard-*.svg) from the demo fleet.

    TZ=UTC python -m tests.tui.screenshots [docs]

Deterministic: the emulator's demo fleet with seed 1, 90 s of simulated time, the clock fixed
at the last frame, no toasts. Prints what each picture shows, for the captions.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from victron_ble_bms.tui.app import DashboardApp
from victron_ble_bms.tui.messages import OpenDevice
from victron_ble_bms.tui.state import DeviceState

from victron_ble_bms.emulator.engine import Emulator, demo_fleet
from victron_ble_bms.protocol import LynxSmartBmsRecord, SmartBmsRecord, SmartLithiumRecord
from victron_ble_bms.sources.keys import KeyStore

from .harness import Clock, PushSource, make_app, settle

SIZE = (120, 44)


def demo_app() -> DashboardApp:
    emulator = Emulator(demo_fleet(), seed=1, speed=None)
    keys = KeyStore()
    for address, key in emulator.keys.items():
        keys.add(address, key)
    advs = list(emulator.run(90))
    clock = Clock(advs[0].ts)

    class Simulated(PushSource):  # the app's clock follows the frames (rates, ages)
        async def __aiter__(self):  # type: ignore[override]
            for adv in advs:
                clock.now = adv.ts
                yield adv

    app = make_app(Simulated(), clock=clock, keys=keys, toasts=False)
    app.demo = True
    return app


def pick(app: DashboardApp, want: str) -> DeviceState:
    devices = app.fleet.sorted_devices()
    for dev in devices:
        rec = dev.record
        if want == "12v" and isinstance(rec, SmartLithiumRecord) and rec.cell_count == 4:
            if rec.balancer_status is not None and rec.balancer_status.label == "balancing":
                return dev
        if want == "24v" and isinstance(rec, SmartLithiumRecord) and rec.cell_count == 8:
            return dev
        if want == "lynx" and isinstance(rec, LynxSmartBmsRecord):
            return dev
        if want == "smart-bms" and isinstance(rec, SmartBmsRecord):
            return dev
    if want == "12v":  # none balancing right now: any 12.8 V battery
        return next(
            d
            for d in devices
            if isinstance(d.record, SmartLithiumRecord) and d.record.cell_count == 4
        )
    raise LookupError(want)


async def shoot(
    out: Path,
    name: str,
    size: tuple[int, int],
    device: str | None = None,
    keys: tuple[str, ...] = (),
) -> None:
    app = demo_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.pause(0.2)
        caption = ""
        if device is not None:
            dev = pick(app, device)
            app.post_message(OpenDevice(dev.address))
            await settle(pilot)
            codes = " ".join(sorted(dev.codes)) or "no codes"
            caption = f"{dev.title}: {dev.product}, {codes}"
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        await pilot.pause(0.2)
        app.save_screenshot(str(out / f"dashboard-{name}.svg"))
        print(f"dashboard-{name}.svg  {size[0]}×{size[1]}  {caption}")


async def main(out: Path) -> None:
    await shoot(out, "devices", SIZE)
    await shoot(out, "battery-12v", SIZE, "12v")
    await shoot(out, "battery-24v", (120, 56), "24v")
    await shoot(out, "lynx", SIZE, "lynx")
    await shoot(out, "smart-bms", SIZE, "smart-bms")
    await shoot(out, "alerts", SIZE, keys=("a",))
    await shoot(out, "help", SIZE, keys=("question_mark",))
    await shoot(out, "narrow", (70, 50))


if __name__ == "__main__":
    time.tzset()
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs")))
