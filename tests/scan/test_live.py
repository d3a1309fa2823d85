"""Live scanning end to end: unmodified bleak on a real dbus-daemon with the virtual BlueZ.

Recovery figures are printed (run with -s to see them), never asserted against a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from victron_ble_bms.emulator.bluez import BluezAdvertiser
from victron_ble_bms.emulator.dbus_daemon import PrivateBus
from victron_ble_bms.emulator.virtual_bluez import VirtualBluezAdvertiser
from victron_ble_bms.sources.live import (
    EventKind,
    LiveScan,
    StatusEvent,
    WatchdogConfig,
    readings,
)
from victron_ble_bms.sources.readings import KeyStatus, Reading

from .conftest import run, wait_until
from .fleet import (
    KEY_KEYED,
    KEY_WRONG_STORED,
    KEYED,
    NOKEY,
    WRONGKEY,
    Fleet,
    advertisement,
)

KEYS = {KEYED: KEY_KEYED, WRONGKEY: KEY_WRONG_STORED}
FAST = WatchdogConfig(backoff_initial_s=0.2, backoff_max_s=2.0, check_every_s=0.1)


class Collector:
    """Consumes a LiveScan in the background; tests wait on what it has seen."""

    def __init__(self, scan: LiveScan) -> None:
        self.scan = scan
        self.readings: list[tuple[float, Reading]] = []
        self.events: list[StatusEvent] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for item in self.scan:
            if isinstance(item, StatusEvent):
                self.events.append(item)
            else:
                self.readings.append((time.monotonic(), item))

    def status(self, address: str) -> set[KeyStatus]:
        return {r.status for _, r in self.readings if r.advertisement.address == address}

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events]

    def readings_since(self, t: float, address: str = KEYED) -> int:
        return sum(1 for at, r in self.readings if at > t and r.advertisement.address == address)

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.mark.parametrize("passive", [False, True], ids=["active", "passive"])
def test_scan_decodes_with_each_key_status(private_bus: PrivateBus, passive: bool) -> None:
    async def body() -> None:
        va = VirtualBluezAdvertiser(bus_address=private_bus.address)
        await va.start()
        fleet = Fleet(va)
        feeder = asyncio.create_task(fleet.run())
        try:
            seen: dict[str, set[KeyStatus]] = {}
            first_events: list[StatusEvent] = []
            items = readings(KEYS, passive=passive, config=FAST)
            async with contextlib.aclosing(items):
                async for item in items:
                    if isinstance(item, StatusEvent):
                        first_events.append(item)
                        continue
                    seen.setdefault(item.advertisement.address, set()).add(item.status)
                    if (
                        len(seen) == 3
                        and all(sum(1 for _ in s) >= 1 for s in seen.values())
                        and item.advertisement.address == KEYED
                    ):
                        break
            assert seen[KEYED] == {KeyStatus.OK}
            assert seen[NOKEY] == {KeyStatus.NO_KEY}
            assert seen[WRONGKEY] == {KeyStatus.MISMATCH}
            mode = "passive" if passive else "active"
            assert first_events[0].kind is EventKind.SCANNING
            assert mode in first_events[0].message
            if passive:
                assert va.bluez.monitor_count() == 0  # the monitor was unregistered on close
        finally:
            feeder.cancel()
            await va.close()

    run(body())


def test_decoded_reading_has_the_values_that_were_sent(private_bus: PrivateBus) -> None:
    async def body() -> None:
        va = VirtualBluezAdvertiser(bus_address=private_bus.address)
        await va.start()
        await va.publish(advertisement(KEYED, KEY_KEYED, 7))
        try:
            items = readings(KEYS, config=FAST, status_events=False)
            async with contextlib.aclosing(items):
                async for item in items:
                    assert isinstance(item, Reading)
                    assert item.record is not None
                    assert item.frame is not None and item.frame.nonce == 7
                    # 3.30 + 3.31 + 3.30 + 3.30 V (fleet.battery(7)): four LFP cells
                    assert item.record.to_dict()["battery_voltage_v"] == pytest.approx(13.21)
                    assert item.advertisement.rssi is not None
                    break
        finally:
            await va.close()

    run(body())


def test_adapter_removed_and_readded_resumes_by_itself(private_bus: PrivateBus) -> None:
    async def body() -> dict[str, float]:
        va = VirtualBluezAdvertiser(bus_address=private_bus.address)
        await va.start()
        fleet = Fleet(va)
        feeder = asyncio.create_task(fleet.run())
        scan = LiveScan(KEYS, config=FAST)
        await scan.start()
        got = Collector(scan)
        try:
            await wait_until(lambda: got.readings_since(0) >= 3)
            lost = time.monotonic()
            va.bluez.remove_adapter("hci0")
            await wait_until(lambda: EventKind.ADAPTER_REMOVED in got.kinds())
            await asyncio.sleep(1.0)  # unplugged for a while; the scan keeps trying
            back = time.monotonic()
            va.bluez.add_adapter("hci0")
            await wait_until(lambda: got.readings_since(back) >= 1)
            first = next(at for at, r in got.readings if at > back)
            resumed = [e for e in got.events if e.recovery_s is not None]
            assert resumed and resumed[-1].kind is EventKind.SCANNING
            assert scan.watchdog.restarts >= 1
            return {"outage_s": first - lost, "after_readd_s": first - back}
        finally:
            await got.close()
            await scan.close()
            feeder.cancel()
            await va.close()

    figures = run(body())
    print(
        f"\nadapter removed/re-added: readings again {figures['after_readd_s']:.3f} s after "
        f"re-add (outage {figures['outage_s']:.2f} s incl. 1 s unplugged; goal ≤ 10 s)"
    )


def test_power_off_and_on_resumes(private_bus: PrivateBus) -> None:
    async def body() -> None:
        va = VirtualBluezAdvertiser(bus_address=private_bus.address)
        await va.start()
        feeder = asyncio.create_task(Fleet(va).run())
        scan = LiveScan(KEYS, config=FAST)
        await scan.start()
        got = Collector(scan)
        try:
            await wait_until(lambda: got.readings_since(0) >= 2)
            va.bluez.set_powered("hci0", False)
            await wait_until(lambda: EventKind.POWERED_OFF in got.kinds())
            back = time.monotonic()
            va.bluez.set_powered("hci0", True)
            await wait_until(lambda: got.readings_since(back) >= 1)
            assert got.kinds().count(EventKind.POWERED_OFF) == 1
        finally:
            await got.close()
            await scan.close()
            feeder.cancel()
            await va.close()

    run(body())


def _start_service(address: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(  # noqa: S603 — our own module, fixed argv
        [sys.executable, "-m", "victron_ble_bms.emulator.virtual_bluez", "--bus-address", address],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_bluetoothd_killed_and_restarted_resumes(private_bus: PrivateBus) -> None:
    """The stand-in bluetoothd runs as its own process and is SIGKILLed, like a crash."""
    procs: list[subprocess.Popen[str]] = [_start_service(private_bus.address)]

    async def body() -> dict[str, float]:
        advertiser = BluezAdvertiser(bus_address=private_bus.address)
        await advertiser.start()
        feeder = asyncio.create_task(Fleet(advertiser).run())
        scan = LiveScan(KEYS, config=FAST)
        await scan.start()
        got = Collector(scan)
        try:
            await wait_until(lambda: got.readings_since(0) >= 3)
            lost = time.monotonic()
            os.kill(procs[0].pid, signal.SIGKILL)
            await wait_until(lambda: EventKind.BLUEZ_LOST in got.kinds())
            await asyncio.to_thread(procs[0].wait)
            await asyncio.sleep(1.0)  # down for a while; the scan keeps retrying
            back = time.monotonic()
            procs.append(await asyncio.to_thread(_start_service, private_bus.address))
            await wait_until(lambda: got.readings_since(back) >= 1)
            first = next(at for at, r in got.readings if at > back)
            assert any(e.recovery_s is not None for e in got.events)
            return {"outage_s": first - lost, "after_restart_s": first - back}
        finally:
            await got.close()
            await scan.close()
            feeder.cancel()
            await advertiser.close()

    try:
        figures = run(body())
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()
    print(
        f"\nbluetoothd killed/restarted: readings again {figures['after_restart_s']:.3f} s "
        f"after the new bluetoothd was ready (outage {figures['outage_s']:.2f} s incl. 1 s "
        "down; goal ≤ 10 s)"
    )


def test_slow_updates_give_the_hint_and_restart_discovery(private_bus: PrivateBus) -> None:
    """A device whose readings arrive every 0.3 s with nonce steps of 5 (most lost) is slow
    against a 0.2 s threshold: the hint names duplicate filtering; discovery is restarted."""
    config = WatchdogConfig(
        backoff_initial_s=0.2, check_every_s=0.1, slow_interval_s=0.2, rediscover_every_s=1.0
    )

    async def body() -> None:
        va = VirtualBluezAdvertiser(bus_address=private_bus.address)
        await va.start()
        fleet = Fleet(va, devices={KEYED: KEY_KEYED}, period=0.3, nonce_step=5)
        feeder = asyncio.create_task(fleet.run())
        scan = LiveScan(KEYS, config=config)
        await scan.start()
        got = Collector(scan)
        try:
            await wait_until(lambda: EventKind.SLOW_UPDATES in got.kinds())
            hint = next(e for e in got.events if e.kind is EventKind.SLOW_UPDATES)
            assert hint.address == KEYED
            assert "duplicate" in hint.message
            await wait_until(lambda: EventKind.REDISCOVERY in got.kinds())
            after = time.monotonic()
            await wait_until(lambda: got.readings_since(after) >= 1)
            dev = scan.devices.get(KEYED)
            assert dev is not None and dev.nonce_step == pytest.approx(5)
        finally:
            await got.close()
            await scan.close()
            feeder.cancel()
            await va.close()

    run(body())


def test_silence_restarts_scanning(private_bus: PrivateBus) -> None:
    config = WatchdogConfig(silence_s=0.5, backoff_initial_s=0.1, check_every_s=0.1)

    async def body() -> None:
        va = VirtualBluezAdvertiser(bus_address=private_bus.address)
        await va.start()
        scan = LiveScan(KEYS, config=config)
        await scan.start()
        got = Collector(scan)
        try:
            await wait_until(lambda: EventKind.SILENCE in got.kinds())
            await wait_until(lambda: sum(e.kind is EventKind.SCANNING for e in got.events) >= 2)
            await va.publish(advertisement(KEYED, KEY_KEYED, 1))
            await wait_until(lambda: got.readings_since(0) >= 1)
        finally:
            await got.close()
            await scan.close()
            await va.close()

    run(body())


def test_flood_through_virtual_bluez_stays_bounded(private_bus: PrivateBus) -> None:
    """1,000 random addresses through BlueZ and bleak; the table keeps at most 100."""
    rng = random.Random(5)
    addresses = {
        ":".join(
            f"{b:02X}" for b in [0xC0 | rng.randrange(64)] + [rng.randrange(256) for _ in range(5)]
        )
        for _ in range(1000)
    }

    async def body() -> dict[str, Any]:
        va = VirtualBluezAdvertiser(bus_address=private_bus.address, max_advertisements=2000)
        await va.start()
        scan = LiveScan(KEYS, config=FAST, max_devices=100)
        await scan.start()
        got = Collector(scan)
        try:
            await wait_until(lambda: scan.watchdog.scanning)
            t0 = time.monotonic()
            for address in addresses:
                await va.publish(advertisement(address, KEY_KEYED, 1))
            await wait_until(
                lambda: len({r.advertisement.address for _, r in got.readings}) >= len(addresses),
                30,
            )
            assert len(scan.devices) == 100
            assert scan.devices.evicted == len(addresses) - 100
            return {"n": len(addresses), "s": time.monotonic() - t0}
        finally:
            await got.close()
            await scan.close()
            await va.close()

    figures = run(body(), timeout=45)
    print(
        f"\nflood via virtual BlueZ: {figures['n']} devices seen in {figures['s']:.2f} s, table 100"
    )
