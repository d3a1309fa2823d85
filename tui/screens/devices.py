"""The home screen: one card per device, like the VictronConnect device list.

Cards are found through an address → card dict and kept in name order with a sorted list, so
an update costs the same with 5 cards or 5,000 (issue 12); new cards are mounted in batches.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Collection, Iterator

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.events import DescendantFocus
from textual.widgets import Static

from ..state import sort_key
from ..widgets.device_card import DeviceCard
from .base import FleetScreen


class CardGrid(VerticalScroll, can_focus=False):
    """The scrolling grid of cards. Not focusable itself: focus is always on a card."""

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.call_after_refresh(self._paint_visible)

    def on_resize(self) -> None:
        self.call_after_refresh(self._paint_visible)

    def _paint_visible(self) -> None:
        screen = self.screen
        if isinstance(screen, DeviceListScreen):
            screen.paint_visible()


class _Everything:
    def __contains__(self, item: object) -> bool:
        return True

    def __iter__(self) -> Iterator[object]:
        return iter(())

    def __len__(self) -> int:
        return 0


class DeviceListScreen(FleetScreen):
    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[str, DeviceCard] = {}
        self._order: list[tuple[tuple[str, str], str]] = []  # (sort key, address), sorted
        self._keys: dict[str, tuple[str, str]] = {}
        self._user_moved = False  # until the user moves, focus stays on the first card
        self._auto_focus: DeviceCard | None = None
        self._moving_to: str | None = None  # the card an arrow key is moving focus to

    def compose(self) -> ComposeResult:
        yield from self.header_widgets()
        yield Static(
            "Waiting for devices… (Instant Readout devices advertise about once a second)",
            id="empty",
        )
        yield CardGrid(id="cards")
        yield self.footer()

    # -- updates ------------------------------------------------------------------------------
    def on_screen(self) -> Collection[object]:
        """The widgets painted in the last screen update. Textual keeps this map (and uses it
        itself to scroll focus into view); asking a card that is not in it for its region
        makes Textual lay out every card, so updates of off-screen cards are deferred."""
        if not self.is_current:
            return ()
        try:
            return self._compositor.visible_widgets
        except AttributeError:  # a Textual without it: paint everything (correct, slower)
            return _Everything()

    def paint_visible(self) -> None:
        """Repaint cards that changed while off screen and are now in view."""
        for widget in self.on_screen():
            if isinstance(widget, DeviceCard) and widget.needs_paint:
                widget.paint()

    def devices_changed(self, addresses: Collection[str]) -> None:
        fleet = self.fleet
        now = fleet.clock()
        visible = self.on_screen()
        for address in fleet.forgotten:
            self._remove(address)
        fleet.forgotten.clear()
        new: list[DeviceCard] = []
        for address in addresses:
            dev = fleet.devices.get(address)
            if dev is None:
                continue
            card = self.cards.get(address)
            if card is None:
                card = DeviceCard(dev, fleet.clock)
                self.cards[address] = card
                new.append(card)
            elif self._keys[address] != sort_key(dev):  # renamed: move to its new place
                self._order.remove((self._keys[address], address))
                target = self._place(address, sort_key(dev))
                grid = self.query_one(CardGrid)
                if target is not None and target is not card:
                    grid.move_child(card, before=target)
                elif target is None and grid.children[-1] is not card:
                    grid.move_child(card, after=grid.children[-1])
            card.show(dev, now, paint=card in visible)
        if new:
            self._mount(new)

    def _place(self, address: str, key: tuple[str, str]) -> DeviceCard | None:
        """Insert into the order; return the card that now follows it (None: it is last)."""
        self._keys[address] = key
        item = (key, address)
        insort(self._order, item)
        i = bisect_left(self._order, item) + 1
        return self.cards[self._order[i][1]] if i < len(self._order) else None

    def _mount(self, new: list[DeviceCard]) -> None:
        grid = self.query_one(CardGrid)
        new.sort(key=lambda c: sort_key(c.dev))
        # Cards that go before the same existing card (or at the end) are mounted together.
        groups: dict[str | None, list[DeviceCard]] = {}
        for card in new:
            self._keys[card.address] = sort_key(card.dev)
            insort(self._order, (self._keys[card.address], card.address))
        added = {c.address for c in new}
        following: str | None = None
        for _, address in reversed(self._order):
            if address not in added:
                following = address
            else:
                groups.setdefault(following, []).insert(0, self.cards[address])
        for before, cards in groups.items():
            if before is None:
                grid.mount_all(cards)
            else:
                grid.mount_all(cards, before=self.cards[before])
        self.query_one("#empty").display = False
        if not self._user_moved:
            self.call_after_refresh(self._focus_first)

    def _focus_first(self) -> None:
        """At start the first card has focus (issue 10 item 5), also when devices arrive out of
        name order, until the user moves focus themselves."""
        if not self._order or self._user_moved:
            return
        if self.focused is not None and self.focused is not self._auto_focus:
            self._user_moved = True  # Tab, a click: the user chose
            return
        first = self.cards[self._order[0][1]]
        if self.focused is not first:
            first.focus()
        self._auto_focus = first

    def _remove(self, address: str) -> None:
        card = self.cards.pop(address, None)
        key = self._keys.pop(address, None)
        if key is not None:
            self._order.remove((key, address))
        if card is not None:
            card.remove()

    def refresh_all(self) -> None:
        now = self.fleet.clock()
        devices = self.fleet.devices
        visible = self.on_screen()
        for address, card in self.cards.items():
            dev = devices.get(address)
            if dev is None:
                continue
            if card in visible or card.state_changes(dev, now):
                card.show(dev, now, paint=card in visible)
            else:  # off screen, only its age changed: painted when it scrolls into view
                card.needs_paint = True

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.call_after_refresh(self.paint_visible)

    # -- keys -----------------------------------------------------------------------------------
    def columns(self) -> int:
        grid = self.query_one(CardGrid)
        return max(1, grid.styles.grid_size_columns or 1)

    def move_focus(self, address: str, dx: int, dy: int) -> None:
        """An arrow key on a card. Textual moves focus later (call_later), so keys typed fast
        (↓↓↓) all reach the card focused before them: each move starts from the card the
        previous move is taking focus to."""
        if self._moving_to in self._keys:
            address = self._moving_to
        key = self._keys.get(address)
        if key is None:
            return
        index = bisect_left(self._order, (key, address))
        cols = self.columns()
        target = index + dx + dy * cols
        if dx and target // cols != index // cols:
            return  # ← → stay within the row
        if 0 <= target < len(self._order):
            self._user_moved = True
            self._moving_to = self._order[target][1]
            card = self.cards[self._moving_to]
            # Textual's own scroll on focus is animated: a dozen frames, each repainting every
            # card in view. One jump instead, and only when the card is not wholly in view.
            card.focus(scroll_visible=False)
            if not self.can_view_entire(card):
                self.scroll_to_center(card, animate=False, origin_visible=True)

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        if isinstance(event.widget, DeviceCard) and event.widget.address == self._moving_to:
            self._moving_to = None  # arrived
