"""A device whose record has no dedicated screen (the bundled SmartShunt, record 0x02) shows
its values on its card and opens to every field, as `decode` shows them (issue 25 item 4)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from victron_ble_bms.tui.messages import OpenDevice
from victron_ble_bms.tui.screens.record import RecordScreen

from victron_ble_bms.sources.capture import open_capture
from victron_ble_bms.sources.keys import KeyStore

from .harness import Clock, PushSource, make_app, screen_text, settle

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
SHUNT = "D1:23:45:67:89:AB"


def test_the_bundled_smartshunt_shows_what_decode_shows() -> None:
    keys = KeyStore.load(CAPTURES / "keys.toml")
    advs = [a for a in open_capture(CAPTURES / "sample-android.btsnoop") if a.address == SHUNT]
    clock = Clock(advs[-1].ts)
    source = PushSource(advs)
    source.end()
    app = make_app(source, clock=clock, keys=keys, toasts=False)

    async def go() -> tuple[str, str]:
        async with app.run_test(size=(120, 44)) as pilot:
            await settle(pilot, source)
            card = screen_text(app)
            app.post_message(OpenDevice(SHUNT))
            await settle(pilot)
            assert isinstance(app.screen, RecordScreen)
            return card, screen_text(app)

    card, detail = asyncio.run(go())
    # keshavdv/victron-ble's public SmartShunt vector: 12.53 V, 0.0 A, 50.0 % (docs/protocol.md §6)
    assert "12.53 V" in card and "50.0 %" in card
    assert "no decoded reading yet" not in detail
    for shown in ("Battery voltage", "12.53 V", "Soc", "50.0 %", "SmartShunt 500A/50mV"):
        assert shown in detail, shown
