"""Readings reach the screen in frames (issue 12), and a reading after a quiet spell does not
wait for the frame timer (issue 26: p95 reading→screen under 100 ms at 500 devices)."""

from __future__ import annotations

import asyncio

from victron_ble_bms.tui.app import FRAME_S

from victron_ble_bms.protocol import encode
from victron_ble_bms.sources.advertisement import Advertisement

from . import frames
from .harness import PushSource, make_app, screen_text, settle
from .test_focus_cost import _many


def test_a_reading_after_a_quiet_spell_is_shown_at_once():
    keys, advs = _many(3)
    source = PushSource(advs)
    app = make_app(source, keys=keys)

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            key = keys[advs[0].address]
            cells = frames.lithium((3.40, 3.41, 3.42, 3.43))
            change = encode(cells, key=key, nonce=2, model_id=0xA0E5)
            # A change is the device's state once a frame with a fresh nonce agrees (issue 18
            # item 2): the change comes first, its confirming frame after the quiet spell.
            await settle(pilot, source)
            source.push(Advertisement(frames.T0 + 1, advs[0].address, {0x02E1: change}, rssi=-60))
            await settle(pilot, source)
            await asyncio.sleep(2 * FRAME_S)
            await pilot.pause()
            assert "13.66 V" not in screen_text(app)
            # pending, not suspect: the last good values stand, unmarked (sources/devices.py)
            assert "suspect" not in screen_text(app)
            await asyncio.sleep(2 * FRAME_S)  # quiet: no frame is due
            shown = app.frames
            data = encode(cells, key=key, nonce=3, model_id=0xA0E5)
            source.push(Advertisement(frames.T0 + 2, advs[0].address, {0x02E1: data}, rssi=-60))
            # Only the messages already queued are handled (no timer is waited for): the
            # frame runs among them.
            for _ in range(3):
                await pilot.pause()
            assert app.frames == shown + 1
            assert "13.66 V" in screen_text(app)  # 3.40 + 3.41 + 3.42 + 3.43
            assert "suspect frame ignored" not in screen_text(app)

    asyncio.run(main())
