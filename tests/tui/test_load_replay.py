"""Load (50 devices × 10 Hz × 60 s of simulated time) and paced replay of capture files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from victron_ble_bms.tui.feeds import ReplayClock, replay
from victron_ble_bms.tui.widgets.device_card import DeviceCard, card_id

from victron_ble_bms.protocol import encode
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture import open_capture
from victron_ble_bms.sources.keys import KeyStore

from . import frames
from .harness import Clock, make_app, settle

DEVICES, RATE_HZ, SECONDS = 50, 10, 60


def _address(i: int) -> str:
    return f"D0:00:00:00:00:{i:02X}"


def test_fifty_devices_at_ten_hertz_do_not_grow_the_queue():
    keys = KeyStore()
    variants: list[list[dict[int, bytes]]] = []
    for i in range(DEVICES):
        key = f"{i:02x}" * 16
        keys.add(_address(i), key)
        # Ten different readings per device, cycled: cell 1 steps by 10 mV.
        variants.append(
            [
                {
                    0x02E1: encode(
                        frames.lithium((3.30 + v / 100, 3.31, 3.32, 3.33)),
                        key=key,
                        nonce=v + 1,
                        model_id=0xA0E5,
                    )
                }
                for v in range(10)
            ]
        )
    clock = Clock()
    sent = 0
    samples: list[int] = []

    class Flood:
        async def __aiter__(self):
            nonlocal sent
            for tick in range(SECONDS * RATE_HZ):
                clock.now = frames.T0 + tick / RATE_HZ  # simulated time, not wall time
                for i in range(DEVICES):
                    yield Advertisement(
                        clock.now, _address(i), variants[i][tick % 10], rssi=-60, origin="load"
                    )
                    sent += 1
                samples.append(app._message_queue.qsize())
                await asyncio.sleep(0)

    app = make_app(Flood(), clock=clock, keys=keys, toasts=False)

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            while not app.source_done:
                await pilot.pause(0.05)
            await settle(pilot)
            assert sent == DEVICES * RATE_HZ * SECONDS == 30_000
            assert all(d.count == RATE_HZ * SECONDS for d in app.fleet.devices.values())
            # At most one queued repaint per device (plus a few of Textual's own events),
            # however many readings arrive: the queue cannot grow without bound.
            assert max(samples) <= DEVICES + 10
            # Right after a post (Textual's own events included) it stays within a few per
            # device, and the second half of the run is no deeper than the first.
            assert app.max_queue <= 4 * DEVICES
            half = len(samples) // 2
            assert max(samples[half:]) <= max(samples[:half]) + 5
            # The screen kept up: every card shows the last reading (tick 599 → variant 9).
            last = app.screen.query_one(f"#{card_id(_address(7))}", DeviceCard)
            assert "13.35 V" in str(last.render())  # 3.39 + 3.31 + 3.32 + 3.33
            assert app.handled < sent  # repaints were coalesced

    asyncio.run(main())


def _write_capture(path: Path, ts_list: list[float]) -> list[Advertisement]:
    """A capture written with plain json (not our writer), per the format in issue 4."""
    advs = [
        frames.advert(frames.HOUSE, frames.house(i), ts=ts, nonce=i + 1)
        for i, ts in enumerate(ts_list)
    ]
    lines = [{"format": "victron-ble-bms-capture", "version": 1, "source": "test"}]
    lines += [
        {
            "ts": a.ts,
            "address": a.address,
            "rssi": a.rssi,
            "manufacturer_data": {"737": a.manufacturer_data[0x02E1].hex()},
        }
        for a in advs
    ]
    path.write_text("".join(json.dumps(obj) + "\n" for obj in lines))
    return advs


def test_replay_keeps_the_recorded_spacing_scaled_by_speed(tmp_path: Path):
    capture = tmp_path / "c.jsonl"
    _write_capture(capture, [100.0, 101.0, 103.0, 102.5, 107.0])
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    async def main():
        clock = ReplayClock(4.0, monotonic=lambda: 0.0)
        got = [
            a.ts
            async for a in replay(open_capture(capture), speed=4.0, clock=clock, sleep=fake_sleep)
        ]
        assert got == [100.0, 101.0, 103.0, 102.5, 107.0]
        assert clock() == 107.0  # the capture's own time
        return got

    asyncio.run(main())
    # 1 s and 2 s gaps at ×4; a timestamp going backwards is sent at once; then 4 s at ×4.
    assert delays == [0, 0.25, 0.5, 0, 1.0]


def test_replay_through_the_dashboard(tmp_path: Path):
    capture = tmp_path / "c.jsonl"
    _write_capture(capture, [float(t) for t in range(0, 60, 2)])
    clock = ReplayClock(1000.0)
    keys = KeyStore()
    keys.add(frames.HOUSE, frames.KEYS[frames.HOUSE])
    app = make_app(replay(open_capture(capture), speed=1000.0, clock=clock), clock=clock, keys=keys)

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            while not app.source_done:
                await pilot.pause(0.02)
            await settle(pilot)
            dev = app.fleet.devices[frames.HOUSE]
            assert dev.count == 30
            assert len(dev.series("voltage")) == 30
            assert "source ended" in app.status_text()

    asyncio.run(main())


def test_replay_continues_past_a_corrupt_record_like_decode(tmp_path: Path):
    """Issue 9 item 6: `dashboard --replay` stopped at the first corrupt record that `decode`
    skips. The corrupt lines are written by hand (not by our writer)."""
    from victron_ble_bms.cli.dashboard import _replay_plan

    capture = tmp_path / "c.jsonl"
    _write_capture(capture, [float(t) for t in range(10)])
    lines = capture.read_text().splitlines()
    lines.insert(4, '{"ts": 3.5, "address": "C0:00:00:00:00:01", "manufacturer_data": {"737": "zz')
    lines.insert(8, "[1, 2")
    capture.write_text("\n".join(lines) + "\n")
    keys = KeyStore()
    keys.add(frames.HOUSE, frames.KEYS[frames.HOUSE])
    plan = _replay_plan(str(capture), 1000.0, keys)
    assert plan.clock is not None
    app = make_app(plan.source, clock=plan.clock, keys=keys, skipped=plan.skipped)

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            while not app.source_done:
                await pilot.pause(0.02)
            await settle(pilot)
            assert app.source_error is None
            assert app.fleet.devices[frames.HOUSE].count == 10  # every good record shown
            assert "2 corrupt records skipped" in app.status_text()

    asyncio.run(main())
    assert plan.skipped is not None and len(plan.skipped) == 2
    assert all("line" in str(e) for e in plan.skipped)  # each says where


def test_replay_sums_waits_too_short_for_a_wake_up(tmp_path: Path):
    """500 devices at 1 Hz are 2 ms apart: waits under MIN_SLEEP_S (20 ms) are added up and
    paid at once (issue 26), the recorded spacing kept in total."""
    capture = tmp_path / "c.jsonl"
    _write_capture(capture, [100.0 + i * 0.008 for i in range(6)] + [101.0])
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    async def main():
        return [a.ts async for a in replay(open_capture(capture), sleep=fake_sleep)]

    got = asyncio.run(main())
    assert len(got) == 7  # every frame, in order
    # The first is sent at once; 8 ms + 8 ms are owed, the third 8 ms pays 24 ms; 8 + 8 owed,
    # paid with the last gap (1 s after the first frame: 0.96 s).
    assert delays == pytest.approx([0, 0.024, 0.016 + 0.96])
    assert sum(delays) == pytest.approx(1.0)
