"""A focus move is cheap with many cards (issue 26): it repaints the two cards involved, lays
out nothing, leaves the footer as it is, and a move out of view scrolls in one jump.

Counted, not timed: the cards that ask to be repainted (`Widget.refresh`), the lines each card
converts (`render_line`, Textual's Line API: a card that shows lines other cards finished in
the same look converts none) and the screen's layouts (`Screen._refresh_layout`, Textual's
internal: a layout places every card again, which is what made a key cost ~100 ms at 500)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from textual.widgets import Footer
from victron_ble_bms.tui.screens.devices import CardGrid
from victron_ble_bms.tui.widgets import device_card
from victron_ble_bms.tui.widgets.bank_card import BankCard
from victron_ble_bms.tui.widgets.device_card import DeviceCard

from victron_ble_bms.protocol import encode
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.keys import KeyStore

from . import frames
from .harness import PushSource, make_app, settle


def _many(n: int) -> tuple[KeyStore, list[Advertisement]]:
    keys = KeyStore()
    advs = []
    for i in range(n):
        address, key = f"D0:00:00:00:00:{i:02X}", f"{i:02x}" * 16
        keys.add(address, key, name=f"Battery {i:02d}")
        data = encode(frames.lithium((3.30, 3.31, 3.32, 3.33)), key=key, nonce=1, model_id=0xA0E5)
        advs.append(Advertisement(frames.T0, address, {0x02E1: data}, rssi=-60))
    return keys, advs


class Spy:
    """Counts, per card, repaints asked for and lines converted; and layouts of the screen."""

    def __init__(self, app: Any) -> None:
        self.lines: Counter[str] = Counter()
        self.refreshed: Counter[str] = Counter()
        self.layouts = 0
        screen = app.screen
        for card in screen.query(DeviceCard):
            original = card.render_line

            def render_line(y: int, card: DeviceCard = card, original: Any = original) -> Any:
                self.lines[card.address] += 1
                return original(y)

            card.render_line = render_line  # type: ignore[method-assign]
            refresh = card.refresh

            def refresh_card(
                *args: Any, card: DeviceCard = card, refresh: Any = refresh, **kw: Any
            ) -> Any:
                self.refreshed[card.address] += 1
                return refresh(*args, **kw)

            card.refresh = refresh_card  # type: ignore[method-assign]
        layout = screen._refresh_layout

        def refresh_layout(*args: Any, **kw: Any) -> None:
            self.layouts += 1
            layout(*args, **kw)

        screen._refresh_layout = refresh_layout

    def reset(self) -> None:
        self.lines.clear()
        self.refreshed.clear()
        self.layouts = 0


def test_a_focus_move_repaints_the_two_cards_and_lays_out_nothing():
    keys, advs = _many(40)
    source = PushSource(advs)
    app = make_app(source, keys=keys)

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:  # two columns, ~3 rows in view
            await settle(pilot, source)
            await pilot.pause()
            assert isinstance(app.focused, DeviceCard) and app.focused.address == advs[0].address
            footer_keys = list(app.screen.query_one(Footer).children)
            assert footer_keys  # the footer shows the app's keys
            spy = Spy(app)
            await pilot.press("right")
            await pilot.pause()
            assert app.focused.address == advs[1].address
            assert set(spy.refreshed) == {advs[0].address, advs[1].address}, spy.refreshed
            assert set(spy.lines) <= {advs[0].address, advs[1].address}, spy.lines
            assert spy.layouts == 0
            spy.reset()
            await pilot.press("down")  # still in view
            await pilot.pause()
            assert app.focused.address == advs[3].address
            assert set(spy.refreshed) == {advs[1].address, advs[3].address}, spy.refreshed
            assert set(spy.lines) <= {advs[1].address, advs[3].address}, spy.lines
            assert spy.layouts == 0
            # The footer was not rebuilt: the same key widgets (a rebuild lays out the screen).
            assert list(app.screen.query_one(Footer).children) == footer_keys

    asyncio.run(main())


def test_a_move_out_of_view_scrolls_in_one_jump():
    keys, advs = _many(40)
    source = PushSource(advs)
    app = make_app(source, keys=keys)

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, source)
            await pilot.pause()
            grid = app.screen.query_one(CardGrid)
            assert grid.scroll_y == 0
            positions: list[float] = []
            watch = grid.watch_scroll_y

            def watch_scroll_y(old: float, new: float) -> None:
                positions.append(new)
                watch(old, new)

            grid.watch_scroll_y = watch_scroll_y  # type: ignore[method-assign]
            await pilot.press(*["down"] * 6)  # row 7 of 20: below the view
            await pilot.pause()
            # No animation (each of its frames repaints every card in view): at most one new
            # scroll position per key.
            assert 0 < len(positions) <= 6, positions
            assert grid.scroll_y > 0
            focused = app.focused
            assert isinstance(focused, DeviceCard) and focused.address == advs[12].address
            assert app.screen.can_view_entire(focused)

    asyncio.run(main())


def test_focus_moving_off_and_onto_a_bank_card_lays_out_nothing():
    """The bank's card (issue 20) keeps its size when focused, as a device card does."""
    keys, advs = _many(40)
    keys.add_bank("House bank", {"members": [advs[0].address, advs[1].address]})
    source = PushSource(advs)
    app = make_app(source, keys=keys, toasts=False)

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, source)
            await pilot.pause()
            bank = app.screen.query_one(BankCard)
            assert app.focused is bank  # first in the list, above its members
            height = bank.size.height
            spy = Spy(app)
            await pilot.press("down")
            await pilot.pause()
            assert isinstance(app.focused, DeviceCard)
            assert app.focused.address == advs[0].address
            assert set(spy.refreshed) <= {advs[0].address}, spy.refreshed  # and the bank's card
            assert set(spy.lines) <= {advs[0].address}, spy.lines
            assert spy.layouts == 0
            await pilot.press("up")
            await pilot.pause()
            assert app.focused is bank and bank.size.height == height
            assert set(spy.refreshed) <= {advs[0].address}, spy.refreshed
            assert set(spy.lines) <= {advs[0].address}, spy.lines
            assert spy.layouts == 0

    asyncio.run(main())


def test_focus_going_back_and_forth_converts_no_line_again():
    """A card keeps its lines converted in its last two looks (issue 26): focus leaving a card
    shows again the lines it had before it got focus, without converting them."""
    keys, advs = _many(8)
    source = PushSource(advs)
    app = make_app(source, keys=keys)

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, source)
            await pilot.pause()
            converted: Counter[str] = Counter()
            for card in app.screen.query(DeviceCard):
                original = card._render_whole

                def whole(*args: Any, card: DeviceCard = card, original: Any = original) -> Any:
                    converted[card.address] += 1
                    return original(*args)

                card._render_whole = whole  # type: ignore[method-assign]
            # No card has finished lines in any look yet (cards share them, issue 26).
            device_card.forget_finished()
            await pilot.press("right")  # card 1 is converted in its focused look
            await pilot.pause()
            assert app.focused.address == advs[1].address
            assert converted[advs[1].address] == 1
            converted.clear()
            for key, now in (("left", 0), ("right", 1), ("left", 0)):
                await pilot.press(key)
                await pilot.pause()
                assert app.focused.address == advs[now].address
            assert not converted, converted

    asyncio.run(main())
