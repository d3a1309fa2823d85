"""The dashboard on the emulator's demo fleet: within the first simulated minute a battery
balances and a W-/A- code shows with its remedy (issue 6, "Done when")."""

from __future__ import annotations

import asyncio

import pytest
from victron_ble_bms.tui.feeds import ReplayClock
from victron_ble_bms.tui.messages import OpenDevice

from victron_ble_bms.sources.keys import KeyStore

from .harness import PushSource, make_app, screen_text, settle

engine = pytest.importorskip("victron_ble_bms.emulator.engine")


def test_demo_fleet_shows_balancing_and_a_code_with_its_remedy():
    emulator = engine.Emulator(engine.demo_fleet(), seed=1, speed=None)
    keys = KeyStore()
    for address, key in emulator.keys.items():
        keys.add(address, key)
    clock = ReplayClock(1.0)
    advs = list(emulator.run(60))
    clock.mark(advs[-1].ts)
    app = make_app(PushSource(advs), clock=clock, keys=keys, toasts=False)

    async def main():
        async with app.run_test(size=(120, 80)) as pilot:
            await settle(pilot)
            text = screen_text(app)
            assert "balancing" in text
            coded = [d for d in app.fleet.devices.values() if d.codes]
            assert coded, "no code within the first minute"
            code = next(iter(coded[0].codes.values())).code
            assert code.id[:2] in ("W-", "A-")
            app.post_message(OpenDevice(coded[0].address))
            await settle(pilot)
            detail = screen_text(app)
            assert code.id in detail and "What to do:" in detail

    asyncio.run(main())
