"""Moving down a long list (issue 26): held ↓, PageDown/PageUp, Home/End each put focus on the
card they name, scroll it wholly into view, and a card scrolled in shows its newest reading."""

from __future__ import annotations

import asyncio

from victron_ble_bms.tui.screens.devices import CardGrid
from victron_ble_bms.tui.widgets.device_card import DeviceCard

from victron_ble_bms.protocol import encode
from victron_ble_bms.sources.advertisement import Advertisement

from . import frames
from .harness import PushSource, make_app, screen_text, settle
from .test_keys_focus import _many, card


def focused_index(app) -> int:
    focused = app.focused
    assert isinstance(focused, DeviceCard)
    return int(focused.address.rsplit(":", 1)[1], 16)  # _many: the last byte is the index


def test_holding_down_walks_the_whole_list_one_row_a_key():
    keys, advs = _many(60)
    source = PushSource(advs)
    app = make_app(source, keys=keys)
    far, key = advs[51].address, keys[advs[51].address]

    async def main():
        async with app.run_test(size=(120, 30)) as pilot:  # two columns, ~2 rows in view
            await settle(pilot, source)
            await pilot.pause()
            # A reading for a card far below the view: shown when the card scrolls in.
            data = encode(
                frames.lithium((3.31, 3.31, 3.32, 3.33)), key=key, nonce=2, model_id=0xA0E5
            )
            source.push(Advertisement(frames.T0, far, {0x02E1: data}, rssi=-71))
            await settle(pilot, source)
            assert "Battery 51" not in screen_text(app)
            grid = app.screen.query_one(CardGrid)
            for n in range(1, 31):
                await pilot.press("down")
                await pilot.pause()
                want = min(2 * n, 58)  # the last row holds cards 58 and 59
                assert focused_index(app) == want
                assert app.screen.can_view_entire(app.focused), n
                assert f"Battery {want:02d}" in screen_text(app)
                if want == 50:  # its row neighbour 51 is in view too, with the newest reading
                    rows = screen_text(app).splitlines()
                    assert any("Battery 51" in r for r in rows)
                    assert any("-71 dBm" in r for r in rows)
            assert grid.scroll_y == grid.max_scroll_y  # at the bottom

    asyncio.run(main())


def test_page_keys_and_home_end_move_focus_a_screen_at_a_time():
    keys, advs = _many(60)
    source = PushSource(advs)
    app = make_app(source, keys=keys)

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, source)
            await pilot.pause()
            grid = app.screen.query_one(CardGrid)
            rows = (
                grid.scrollable_content_region.height
                // card(app, advs[0].address).outer_size.height
            )
            assert rows >= 2
            seen = [0]
            while seen[-1] < 58:
                await pilot.press("pagedown")
                await pilot.pause()
                seen.append(focused_index(app))
                assert app.screen.can_view_entire(app.focused)
            # A page is the rows in view (same column), the last page stops on the last card.
            assert seen[:-1] == [2 * rows * i for i in range(len(seen) - 1)]
            assert seen[-1] == 59 or seen[-1] - seen[-2] == 2 * rows
            await pilot.press("home")
            await pilot.pause()
            assert focused_index(app) == 0 and grid.scroll_y == 0
            await pilot.press("end")
            await pilot.pause()
            assert focused_index(app) == 59 and app.screen.can_view_entire(app.focused)
            assert grid.scroll_y == grid.max_scroll_y
            await pilot.press("pageup")
            await pilot.pause()
            assert focused_index(app) == 59 - 2 * rows
            assert app.screen.can_view_entire(app.focused)

    asyncio.run(main())
