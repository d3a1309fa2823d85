"""Dashboard under load: N devices × R Hz in real time, headless. Prints CPU share and the
latency from a reading's arrival to its card being updated.

    python benchmarks/dashboard.py [--devices 50] [--rate 10] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from victron_ble_bms.tui.app import DashboardApp  # noqa: E402
from victron_ble_bms.tui.messages import DeviceUpdated  # noqa: E402

from tests.tui import frames  # noqa: E402
from victron_ble_bms.protocol import encode  # noqa: E402
from victron_ble_bms.sources.advertisement import Advertisement  # noqa: E402
from victron_ble_bms.sources.keys import KeyStore  # noqa: E402


class TimedApp(DashboardApp):
    """Stamps when a device's update is queued and when the screen has applied it."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.queued_at: dict[str, float] = {}
        self.latencies: list[float] = []

    def ingest(self, item: Advertisement) -> None:  # type: ignore[override]
        self.queued_at.setdefault(item.address, time.perf_counter())
        super().ingest(item)

    def on_device_updated(self, message: DeviceUpdated) -> None:
        super().on_device_updated(message)
        start = self.queued_at.pop(message.address, None)
        if start is not None:
            self.latencies.append(time.perf_counter() - start)


async def bench(devices: int, rate: float, seconds: float) -> None:
    keys = KeyStore()
    payloads = []
    for i in range(devices):
        key = f"{i % 256:02x}" * 16
        address = f"D0:00:00:00:{i // 256:02X}:{i % 256:02X}"
        keys.add(address, key)
        rec = frames.lithium((3.30 + (i % 10) / 100, 3.31, 3.32, 3.33))
        payloads.append((address, encode(rec, key=key, nonce=1, model_id=0xA0E5)))

    async def source():
        t0 = time.perf_counter()
        tick = 0
        while time.perf_counter() - t0 < seconds:
            for address, data in payloads:
                yield Advertisement(time.time(), address, {0x02E1: data}, rssi=-60)
            tick += 1
            delay = t0 + tick / rate - time.perf_counter()
            await asyncio.sleep(max(0.0, delay))

    app = TimedApp(source(), keys=keys, toasts=False)
    async with app.run_test(size=(160, 50)) as pilot:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        while not app.source_done:
            await pilot.pause(0.1)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        readings = sum(d.count for d in app.fleet.devices.values())
    lat = sorted(app.latencies)
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    print(
        f"{devices} devices × {rate:g} Hz for {seconds:g} s: {readings} readings "
        f"({readings / wall:.0f}/s), {len(lat)} card updates"
    )
    print(f"CPU share: {100 * cpu / wall:.1f} % of one core (process time / wall time)")
    print(
        f"update latency (reading → card updated): median {statistics.median(lat) * 1000:.1f} ms,"
        f" p95 {p(0.95):.1f} ms, max {lat[-1] * 1000:.1f} ms"
    )
    print(f"deepest app message queue: {app.max_queue}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    a = ap.parse_args()
    asyncio.run(bench(a.devices, a.rate, a.seconds))
