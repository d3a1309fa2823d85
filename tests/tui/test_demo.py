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


def test_a_demo_recording_names_its_keys_and_decodes_with_them(tmp_path):
    """`r` in the demo: the published test keys go beside the recording (0600) and its header
    names them, so the recording decodes completely afterwards (issue 10 item 2)."""
    import json
    import stat

    from victron_ble_bms.protocol import decode

    emulator = engine.Emulator(engine.demo_fleet(), seed=1, speed=None)
    keys = KeyStore()
    for address, key in emulator.keys.items():
        keys.add(address, key)
    advs = list(emulator.run(20))
    source = PushSource()
    app = make_app(source, keys=keys, demo=True, record_dir=tmp_path, toasts=False)

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("r")
            source.push(*advs)
            await settle(pilot, source)
            await pilot.press("r")
            await pilot.pause()

    asyncio.run(main())
    [recording] = tmp_path.glob("*.jsonl")
    header = json.loads(recording.read_text().splitlines()[0])
    keys_file = recording.parent / header["keys"]
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    stored = KeyStore.load(keys_file)
    lines = [json.loads(line) for line in recording.read_text().splitlines()[1:]]
    assert len(lines) == len(advs)
    for line in lines:
        data = bytes.fromhex(line["manufacturer_data"]["737"])
        decode(data, stored[line["address"]])  # raises if any frame does not decode


def test_a_recording_of_real_devices_never_copies_their_keys(tmp_path):
    source = PushSource()
    app = make_app(source, record_dir=tmp_path)

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("r")
            await pilot.pause()
            await pilot.press("r")
            await pilot.pause()

    asyncio.run(main())
    assert list(tmp_path.glob("*.keys.toml")) == []
