"""Every per-device structure of the dashboard is bounded (issue 9 item 10): devices (and their
cards), history points, the device table that judges frames."""

from __future__ import annotations

import asyncio

from victron_ble_bms.tui.state import HISTORY_POINTS, Series
from victron_ble_bms.tui.widgets.device_card import DeviceCard

from victron_ble_bms.protocol import encode
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.keys import KeyStore

from . import frames
from .harness import PushSource, make_app, settle


def test_history_keeps_one_point_per_second_and_at_most_history_points():
    series = Series()
    for i in range(10 * (HISTORY_POINTS + 50)):  # 10 Hz for HISTORY_POINTS + 50 seconds
        series.push(1000.0 + i / 10, float(i))
    assert len(series.values) == HISTORY_POINTS
    assert series.values[-1] == 10 * (HISTORY_POINTS + 50) - 1  # the newest value of its second


def test_devices_and_cards_stay_bounded_least_recently_heard_forgotten_first():
    keys = KeyStore()
    advs = []
    for i in range(40):
        address, key = f"D0:00:00:00:01:{i:02X}", f"{i:02x}" * 16
        keys.add(address, key)
        data = encode(frames.lithium((3.30, 3.31, 3.32, 3.33)), key=key, nonce=1, model_id=0xA0E5)
        advs.append(Advertisement(frames.T0 + i, address, {0x02E1: data}, rssi=-60))
    source = PushSource()
    app = make_app(source, keys=keys)
    app.fleet.max_devices = 16
    app.judge.max_devices = 16

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            for adv in advs:
                app.fleet.clock.now = adv.ts  # type: ignore[attr-defined]
                source.push(adv)
                await settle(pilot, source)
            assert len(app.fleet.devices) <= 16
            assert len(app.judge) <= 16
            cards = list(app.screen.query(DeviceCard))
            assert len(cards) == len(app.fleet.devices)
            assert {c.address for c in cards} == set(app.fleet.devices)
            assert advs[-1].address in app.fleet.devices  # the newest stays
            assert advs[0].address not in app.fleet.devices  # the oldest went first

    asyncio.run(main())
