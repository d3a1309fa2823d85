"""Driving the device list with the keyboard (issue 10 item 5): the first card has focus at
start, arrow keys move spatially in the grid, focus follows into view, Enter opens the focused
card, focus looks different from a warning, and the status line keeps the warning count."""

from __future__ import annotations

import asyncio

from textual import events
from victron_ble_bms.tui.screens.battery import BatteryScreen
from victron_ble_bms.tui.widgets.device_card import DeviceCard, card_id

from victron_ble_bms.protocol import encode
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.keys import KeyStore

from . import frames
from .harness import PushSource, make_app, screen_text, settle


def card(app, address: str) -> DeviceCard:
    return app.screen.query_one(f"#{card_id(address)}", DeviceCard)


def test_first_card_focused_and_arrows_move_spatially_in_the_grid():
    # Sent House first; in name order the first card is "Bow thruster".
    source = PushSource(frames.fleet())
    app = make_app(source)

    async def main():
        async with app.run_test(size=(120, 60)) as pilot:
            await settle(pilot, source)
            await pilot.pause()
            assert app.focused is card(app, frames.BOW)
            # Name order: Bow thruster, Engine BMS, House, Lynx, Smart Lithium… (two columns).
            await pilot.press("down")
            assert app.focused is card(app, frames.HOUSE)  # straight down, not sideways
            assert card(app, frames.HOUSE).region.x == card(app, frames.BOW).region.x
            assert card(app, frames.HOUSE).region.y > card(app, frames.BOW).region.y
            await pilot.press("right")
            assert app.focused is card(app, frames.LYNX)
            await pilot.press("right")  # the row ends: focus stays
            assert app.focused is card(app, frames.LYNX)
            await pilot.press("up")
            assert app.focused is card(app, frames.SMART_BMS)  # "Engine BMS"
            await pilot.press("left", "down", "down")
            assert app.focused is card(app, frames.NOKEY)
            await pilot.press("down")  # nothing below: focus stays
            assert app.focused is card(app, frames.NOKEY)

    asyncio.run(main())


def _many(n: int) -> tuple[KeyStore, list[Advertisement]]:
    keys = KeyStore()
    advs = []
    for i in range(n):
        address, key = f"D0:00:00:00:00:{i:02X}", f"{i:02x}" * 16
        keys.add(address, key, name=f"Battery {i:02d}")
        data = encode(frames.lithium((3.30, 3.31, 3.32, 3.33)), key=key, nonce=1, model_id=0xA0E5)
        advs.append(Advertisement(frames.T0, address, {0x02E1: data}, rssi=-60))
    return keys, advs


def test_focus_follows_into_view_and_enter_opens_the_focused_card():
    keys, advs = _many(24)
    source = PushSource(advs)
    app = make_app(source, keys=keys)

    async def main():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, source)
            await pilot.pause()
            # Card 20 is painted, scrolled away, changes off screen, and must show the new
            # value when it scrolls back (off-screen cards are repainted lazily).
            await pilot.press(*["down"] * 10)
            await pilot.pause(0.3)
            assert "13.26 V" in screen_text(app)
            await pilot.press(*["up"] * 10)
            await pilot.pause(0.3)
            assert "Battery 20" not in screen_text(app)
            key = keys[advs[20].address]
            for nonce in (2, 3):  # a change, and the frame that confirms it (issue 18)
                data = encode(
                    frames.lithium((3.40, 3.41, 3.42, 3.43)), key=key, nonce=nonce, model_id=0xA0E5
                )
                source.push(Advertisement(frames.T0, advs[20].address, {0x02E1: data}, rssi=-60))
            await settle(pilot, source)
            await pilot.press(*["down"] * 10)  # two columns: card 20
            await pilot.pause(0.3)  # the scroll animates
            focused = app.focused
            assert isinstance(focused, DeviceCard) and focused.address == advs[20].address
            region = focused.region
            assert region.height > 0 and 0 <= region.y and region.bottom <= app.size.height
            widget, _ = app.screen.get_widget_at(region.x + 2, region.y + 2)
            assert widget is focused  # really on screen, not under the footer
            assert "13.66 V" in screen_text(app)  # 3.40 + 3.41 + 3.42 + 3.43
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, BatteryScreen)
            assert app.screen.address == advs[20].address
            assert "Battery 20" in screen_text(app)

    asyncio.run(main())


def test_focus_style_is_unmistakable_and_not_the_warning_colour():
    source = PushSource(frames.fleet())
    app = make_app(source)

    async def main():
        async with app.run_test(size=(120, 60)) as pilot:
            await settle(pilot, source)
            await pilot.pause()
            card(app, frames.HOUSE).focus()  # no code: its focus style alone
            await pilot.pause()
            focused = card(app, frames.HOUSE).styles.border_top
            warning = card(app, frames.BOW).styles.border_top  # W-SL12, not focused
            plain = card(app, frames.SMART_BMS).styles.border_top
            assert focused[0] != warning[0] and focused[0] != plain[0]  # another line style
            assert focused[1] != warning[1]  # and not the warning's colour

    asyncio.run(main())


def test_status_line_keeps_the_warning_count_at_70_columns(tmp_path):
    source = PushSource(frames.fleet())
    app = make_app(source, demo=True, record_dir=tmp_path)

    async def main():
        async with app.run_test(size=(70, 40)) as pilot:
            await settle(pilot, source)
            await pilot.press("r")  # recording: the line gets longer
            await pilot.pause()
            status = screen_text(app).splitlines()[1]
            assert "2 warning" in status, status
            assert "DEMO" in status  # the demo banner stays too

    asyncio.run(main())


def test_arrow_keys_typed_faster_than_focus_moves_each_move_one_step():
    """Three ↓ queued before the app handles any (a fast typist, a slow Pi) go three rows down."""
    keys, advs = _many(12)
    source = PushSource(advs)
    app = make_app(source, keys=keys)

    async def main():
        async with app.run_test(size=(70, 40)) as pilot:  # one column
            await settle(pilot, source)
            await pilot.pause()
            assert isinstance(app.focused, DeviceCard) and app.focused.address == advs[0].address
            for _ in range(3):  # queued at once, no waiting in between
                app.post_message(events.Key("down", None))
            await pilot.pause(0.3)
            assert isinstance(app.focused, DeviceCard)
            assert app.focused.address == advs[3].address

    asyncio.run(main())
