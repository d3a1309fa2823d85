"""Cards repaint only the lines that changed, and off-screen cards when they scroll into view
(issue 12): what the screen shows must be what a full repaint shows, with the newest state."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import weakref

from textual.geometry import Offset, Region
from textual.selection import Selection
from textual.visual import Visual
from textual.widget import Widget
from victron_ble_bms.tui.widgets import device_card
from victron_ble_bms.tui.widgets.device_card import DeviceCard

from victron_ble_bms.protocol import encode
from victron_ble_bms.sources.advertisement import Advertisement

from . import frames
from .harness import Clock, PushSource, make_app, screen_text, settle
from .test_keys_focus import _many, card


def test_line_repaints_show_the_same_screen_as_a_full_repaint():
    clock = Clock()
    source = PushSource(frames.fleet())
    app = make_app(source, clock=clock)

    async def main():
        async with app.run_test(size=(120, 50)) as pilot:
            await settle(pilot, source)
            for step, (cell, rssi) in enumerate([(3.40, -55), (3.45, -61), (3.47, -61)], 2):
                record = frames.lithium((cell, 3.52, 3.50, 3.49))
                clock.now += 3
                source.push(frames.advert(frames.HOUSE, record, nonce=step, rssi=rssi))
                await settle(pilot, source)
            clock.now += 2  # ages change with the clock: the once-a-second tick repaints them
            app.screen.refresh_all()
            await pilot.pause()
            shown = screen_text(app)
            assert "13.98 V" in shown and "-61 dBm · 2 s ago" in shown  # 3.47+3.52+3.50+3.49
            assert "13.93 V" not in shown and "-61 dBm · 0 s ago" not in shown
            assert "stale · last heard 11 s ago" in shown  # no new reading: gone stale
            for each in app.screen.query(DeviceCard):
                each.refresh()  # every line of every card rendered again from scratch
            await pilot.pause()
            assert screen_text(app) == shown

    asyncio.run(main())


def test_an_off_screen_card_shows_its_newest_reading_when_it_scrolls_into_view():
    keys, advs = _many(24)
    source = PushSource(advs)
    app = make_app(source, keys=keys)
    address, key = advs[20].address, keys[advs[20].address]

    async def main():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, source)
            await pilot.pause()
            assert "Battery 20" not in screen_text(app)
            for nonce, cell in enumerate((3.40, 3.50, 3.60, 3.45, 3.38), 2):
                record = frames.lithium((cell, 3.41, 3.42, 3.43))
                data = encode(record, key=key, nonce=nonce, model_id=0xA0E5)
                source.push(Advertisement(frames.T0, address, {0x02E1: data}, rssi=-50 - nonce))
                await settle(pilot, source)
            assert card(app, address).needs_paint  # changed while off screen: not painted
            await pilot.press(*["down"] * 10)  # two columns: card 20
            await pilot.pause(0.3)  # the scroll animates
            await pilot.pause()
            shown = screen_text(app)
            assert "Battery 20" in shown
            assert "13.64 V" in shown and "-56 dBm" in shown  # the last of the five readings
            assert "13.66 V" not in shown and "-55 dBm" not in shown  # not the one before

    asyncio.run(main())


def test_a_long_line_is_cut_and_the_card_keeps_its_last_line():
    """A line longer than the card is cut with an ellipsis, never wrapped: the card's height
    is its line count, so a wrapped line would push the last line (the age) out of view."""
    bad = dataclasses.replace(frames.lithium((3.30, 3.30, 3.30, 3.30)), battery_voltage_v=25.0)
    source = PushSource([frames.advert(frames.HOUSE, frames.house(), nonce=1, rssi=-55)])
    app = make_app(source)

    async def main():
        async with app.run_test(size=(60, 30)) as pilot:  # narrow: one column
            await settle(pilot, source)
            source.push(frames.advert(frames.HOUSE, bad, nonce=2, rssi=-55))
            await settle(pilot, source)
            rows = screen_text(app).splitlines()
            suspect = [r for r in rows if "⚠ suspect frame ignored" in r]
            assert len(suspect) == 1 and suspect[0].rstrip(" │┃║").endswith("…")
            assert any("-55 dBm · 0 s ago" in r for r in rows)

    asyncio.run(main())


def test_each_line_is_what_textual_renders_for_the_whole_card():
    """Lines are converted one at a time and cached; each must be the strip Textual makes when
    it renders the card's text as a whole, in every look a card has (focused, warning, stale,
    suspect, no key) and with part of a line selected."""
    bad = dataclasses.replace(frames.lithium((3.30, 3.30, 3.30, 3.30)), battery_voltage_v=25.0)
    clock = Clock()
    source = PushSource(frames.fleet())
    app = make_app(source, clock=clock)

    def compare(cards) -> None:
        for each in cards:
            whole = Visual.to_strips(
                each, each._render(), each.size.width, each.size.height, each.visual_style
            )
            assert len(whole) == len(each._shown) == each.size.height
            for y, strip in enumerate(whole):
                assert each.render_line(y) == strip, (each.address, y)

    async def main():
        async with app.run_test(size=(120, 60)) as pilot:
            await settle(pilot, source)
            source.push(frames.advert(frames.HOUSE, bad, nonce=2))
            await settle(pilot, source)
            cards = list(app.screen.query(DeviceCard))
            assert app.focused in cards
            compare(cards)  # first paint: each card converted whole
            source.push(frames.advert(frames.HOUSE, frames.house(1), nonce=3))
            await settle(pilot, source)
            compare(cards)  # two lines changed (voltage, spread): converted one at a time
            clock.now += 30  # every card stale
            app.screen.refresh_all()
            await pilot.pause()
            compare(cards)
            house = card(app, frames.HOUSE)
            app.screen.selections = {house: Selection(Offset(2, 1), Offset(6, 2))}
            await pilot.pause()
            compare([house])
            unselected = house._looks[(house.size.width, house.visual_style)][1][1]
            assert house.render_line(1) != unselected  # the selection shows

    asyncio.run(main())


def test_a_card_that_went_stale_off_screen_shows_stale_when_it_scrolls_into_view():
    keys, advs = _many(24)
    clock = Clock()
    source = PushSource(advs)
    app = make_app(source, keys=keys, clock=clock)
    address = advs[20].address

    async def main():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, source)
            await pilot.pause()
            assert "Battery 20" not in screen_text(app)
            clock.now += 30  # every device silent for 30 s
            app.screen.refresh_all()  # the once-a-second tick
            await pilot.pause()
            assert card(app, advs[0].address).has_class("-stale")  # on screen: at once
            await pilot.press(*["down"] * 10)  # two columns: card 20
            await pilot.pause(0.3)  # the scroll animates
            await pilot.pause()
            assert card(app, address).has_class("-stale")
            shown = screen_text(app)
            assert "Battery 20" in shown and "stale · last heard 30 s ago" in shown
            assert "-60 dBm · 0 s ago" not in shown

    asyncio.run(main())


def test_a_card_scrolling_into_view_builds_its_lines_once(monkeypatch):
    """A card that changed off screen takes the device's state when it is first rendered in
    view; when its look (classes) is as the device is, that is its paint: its lines are built
    once, not again by the repaint of changed cards after the scroll (issue 26). Its first
    frame shows the newest reading."""
    keys, advs = _many(24)
    clock = Clock()
    source = PushSource(advs)
    app = make_app(source, keys=keys, clock=clock)
    built: list[str] = []
    card_lines = device_card.card_lines

    def counted(dev, now):
        built.append(dev.address)
        return card_lines(dev, now)

    monkeypatch.setattr(device_card, "card_lines", counted)

    async def main():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, source)
            await pilot.pause()
            address, key = advs[20].address, keys[advs[20].address]
            record = frames.lithium((3.30, 3.31, 3.32, 3.33))  # as before: only the RSSI
            data = encode(record, key=key, nonce=2, model_id=0xA0E5)
            source.push(Advertisement(frames.T0, address, {0x02E1: data}, rssi=-70))
            await settle(pilot, source)
            clock.now += 1
            app.screen.refresh_all()  # the tick: every card off screen is behind its age
            await pilot.pause()
            assert card(app, address).needs_paint
            built.clear()
            await pilot.press(*["down"] * 10)  # two columns: card 20
            await pilot.pause(0.3)  # the scroll animates
            await pilot.pause()
            shown = screen_text(app)
            assert "Battery 20" in shown and "-70 dBm · 1 s ago" in shown
            assert built.count(address) == 1, built
            assert not card(app, address).needs_paint

    asyncio.run(main())


def test_an_off_screen_card_gaining_a_line_lays_out_nothing_until_it_scrolls_into_view():
    """A suspect mark adds a line to a card (a cut frame's, for a while): off screen, the
    card keeps its height, as a new height would lay out every card of the grid (issue 26);
    scrolled into view it shows the mark and its last line (the age) below it."""
    keys, advs = _many(24)
    source = PushSource(advs)
    app = make_app(source, keys=keys)
    address, key = advs[20].address, keys[advs[20].address]

    async def main():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, source)
            await pilot.pause()
            assert "Battery 20" not in screen_text(app)
            screen = app.screen
            layouts = 0
            layout = screen._refresh_layout  # Textual's internal: one call lays out the grid

            def refresh_layout(*args, **kw):
                nonlocal layouts
                layouts += 1
                layout(*args, **kw)

            screen._refresh_layout = refresh_layout
            before = card(app, address).size.height
            # A cut frame (partial: always suspect, sources/confirm.py) adds the mark's line; a
            # plain change of values is only pending until confirmed, and adds none.
            cells = frames.lithium((3.40, 3.31, 3.32, 3.33))
            cut = encode(cells, key=key, nonce=2, model_id=0xA0E5)[:-4]
            source.push(Advertisement(frames.T0, address, {0x02E1: cut}, rssi=-57))
            await settle(pilot, source)
            assert app.fleet.devices[address].suspect_recent(frames.T0)
            assert card(app, address).needs_paint
            assert layouts == 0
            await pilot.press(*["down"] * 10)  # two columns: card 20
            await pilot.pause()
            await pilot.pause()
            assert app.focused is card(app, address)
            assert card(app, address).size.height == before + 1
            rows = screen_text(app).splitlines()
            at = next(i for i, r in enumerate(rows) if "suspect frame ignored" in r)
            assert "-57 dBm · 0 s ago" in rows[at + 1]  # the last line still shows
            assert screen.can_view_entire(card(app, address))

    asyncio.run(main())


def test_a_card_shows_what_textual_renders_for_it_though_cards_share_finished_lines():
    """Finished lines (border, padding, text) are shared by the cards that show the same line
    in the same look (issue 26). Each card must still show exactly what Textual renders for it
    from scratch, with its own name and values, in every look (focused, warning, stale, a
    selection), and a hostile name stays plain text."""
    bad = dataclasses.replace(frames.lithium((3.30, 3.30, 3.30, 3.30)), battery_voltage_v=25.0)
    hostile = "[bold red]Bow[/] \x1b[2J"
    clock = Clock()
    source = PushSource(frames.fleet())
    app = make_app(source, clock=clock)

    def textual_own(each: DeviceCard) -> list:
        each._styles_cache.clear()
        return Widget.render_lines(each, Region(0, 0, *each.outer_size))

    def compare(cards) -> None:
        for each in cards:
            full = Region(0, 0, *each.outer_size)
            assert each.render_lines(full) == textual_own(each), each.address
            part = Region(2, 1, each.outer_size.width - 4, 3)  # a card partly in view
            assert each.render_lines(part) == [
                s.crop(2, full.width - 2) for s in textual_own(each)[1:4]
            ], each.address

    async def main():
        async with app.run_test(size=(120, 60)) as pilot:
            await settle(pilot, source)
            cards = list(app.screen.query(DeviceCard))
            bow = card(app, frames.BOW)
            bow.dev = dataclasses.replace(bow.dev, label=hostile)
            bow.show(bow.dev, clock())
            source.push(frames.advert(frames.HOUSE, bad, nonce=2))
            await settle(pilot, source)
            compare(cards)
            width = cards[0].outer_size.width
            top = bow.render_lines(Region(0, 0, bow.outer_size.width, 1))[0].text
            assert "[bold red]Bow[/]" in top  # as it came, never markup
            looks = [c.render_lines(Region(0, 0, *c.outer_size)) for c in cards]
            was = app.focused
            target = cards[0] if was is not cards[0] else cards[1]
            target.focus()
            await pilot.pause()
            compare(cards)
            # The two cards focus left and took change look, the others are as they were.
            for c, before in zip(cards, looks, strict=True):
                now = c.render_lines(Region(0, 0, *c.outer_size))
                assert (now != before) == (c in (was, target)), c.address
            source.push(frames.advert(frames.HOUSE, frames.house(1), nonce=3))
            await settle(pilot, source)
            compare(cards)  # a value changed: its line is the card's own
            clock.now += 30  # every card stale
            app.screen.refresh_all()
            await pilot.pause()
            compare(cards)
            # Cards keep their look between repaints (issue 26): a new theme or size must
            # still give what Textual renders from scratch.
            app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
            await pilot.pause()
            compare(cards)
            await pilot.resize_terminal(100, 60)
            await pilot.pause()
            assert cards[0].outer_size.width < width
            compare(cards)
            house = card(app, frames.HOUSE)
            app.screen.selections = {house: Selection(Offset(2, 1), Offset(6, 2))}
            await pilot.pause()
            compare([house])

    asyncio.run(main())


def test_a_card_titled_from_another_cards_border_shows_what_textual_renders(monkeypatch):
    """A card's top border is taken from one Textual finished for another title of the same
    length and style in the same look, with the title's text replaced (issue 26). Each card
    must show exactly what Textual renders for it from scratch, in every look, whatever its
    name (markup, wide characters, escape sequences, spaces); and most borders here are
    taken, not rendered."""
    names = [
        "Battery 00", "[red]Bat01", "Bättery 02", "電池 Batt 03", "Batt\x1b[2J", "Battery 05",
        " Battery 6", "Batt  ry 7", "Battery 08", "B" * 120, "Battery 10", "Battery 11",
    ]  # fmt: skip
    keys, advs = _many(len(names))
    for entry, name in zip(keys.entries(), names, strict=True):
        keys.add(entry.address, entry.key, name=name)
    clock = Clock()
    source = PushSource(advs)
    app = make_app(source, keys=keys, clock=clock)
    rendered: list[str] = []  # cards whose top border Textual rendered
    widget_render_lines = Widget.render_lines

    def counted(self, crop):
        if isinstance(self, DeviceCard) and crop.y == 0:
            rendered.append(self.address)
        return widget_render_lines(self, crop)

    def textual_own(each: DeviceCard) -> list:
        each._styles_cache.clear()
        return widget_render_lines(each, Region(0, 0, *each.outer_size))

    def compare(cards) -> None:
        for each in cards:
            full = Region(0, 0, *each.outer_size)
            assert each.render_lines(full) == textual_own(each), each.border_title

    async def main():
        async with app.run_test(size=(120, 80)) as pilot:
            await settle(pilot, source)
            await pilot.pause()
            cards = list(app.screen.query(DeviceCard))
            assert len(cards) == len(names)
            monkeypatch.setattr(Widget, "render_lines", counted)
            device_card.forget_finished()
            for each in cards:
                each.refresh()
            await pilot.pause()
            assert len(rendered) <= len(cards) // 2, rendered  # the others were retitled
            compare(cards)
            cards[5].focus()
            await pilot.pause()
            compare(cards)
            clock.now += 30  # every card stale
            app.screen.refresh_all()
            await pilot.pause()
            compare(cards)

    asyncio.run(main())


def test_a_forgotten_devices_card_is_freed():
    """The fleet forgets the device heard least recently beyond its bound (issue 9 item 10) and
    the screen removes its card; nothing the cards share (finished lines, looks, siblings) may
    keep the card alive while the dashboard runs on."""
    keys, advs = _many(12)
    source = PushSource(advs[:8])
    app = make_app(source, keys=keys)

    async def main() -> None:
        async with app.run_test(size=(120, 60)) as pilot:
            await settle(pilot, source)
            await pilot.pause()
            # From the screen's own table: a query by id would leave the card in Textual's
            # query cache (a test's reference, not the dashboard's).
            cards = {a.address: weakref.ref(app.screen.cards[a.address]) for a in advs[:8]}
            assert all(ref() is not None for ref in cards.values())
            await pilot.press("down", "up")  # the grid keeps the places of its cards
            app.fleet.max_devices = 8  # each new device: the one heard least recently goes
            for adv in advs[8:]:
                source.push(adv)
                await settle(pilot, source)
            await pilot.pause()
            forgotten = [a for a in cards if a not in app.fleet.devices]
            assert len(forgotten) == 4
            assert len(app.screen.query(DeviceCard)) == 8
            gc.collect()
            kept = [a for a in forgotten if cards[a]() is not None]
            assert not kept, f"removed cards still alive: {kept}"

    asyncio.run(main())
