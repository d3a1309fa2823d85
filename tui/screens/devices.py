"""The home screen: one card per device, like the VictronConnect device list.

Cards are found through an address → card dict and kept in name order with a sorted list, so
an update costs the same with 5 cards or 5,000 (issue 12); new cards are mounted in batches.
Each bank declared in the keys file (issue 20) comes first, as one card the width of the grid,
followed by its members' cards; then every other device.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Collection, Iterator

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.events import DescendantFocus
from textual.geometry import Region
from textual.layout import DockArrangeResult
from textual.widget import Widget
from textual.widgets import Static

from ..bank_state import BANK_ID
from ..state import DeviceState, sort_key
from ..widgets.bank_card import BankCard
from ..widgets.device_card import DeviceCard
from .base import FleetScreen

# A card's place: (0, bank, 0, "", "") for a bank; (0, bank, 1 + member, name, address) for its
# members; (1, 0, 0, name, address) for every other device (name order, as before banks).
CardKey = tuple[int, int, int, str, str]


class CardGrid(VerticalScroll, can_focus=False):
    """The scrolling grid of cards. Not focusable itself: focus is always on a card."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self._placed: tuple[DockArrangeResult | None, dict[Widget, Region]] = (None, {})

    def show_card(self, card: Widget) -> bool:
        """Scroll `card` wholly into view in one jump, centred, if it is not; False when its
        place is not known yet (the caller falls back to Textual's own scrolling).

        The card's place comes from the grid's arrangement (`Widget.arrange`, public and
        cached by Textual: the same result the screen's layout used), never from the card's
        `region`: asking Textual where a card out of view is makes it place all 500 cards
        again (its compositor's full map, ~5 ms), which a held ↓ paid on every row (issue 26).
        """
        size = self.scrollable_content_region.size
        arrangement = self.arrange(size)
        placed = self._placed[1]
        if self._placed[0] is not arrangement:
            placed = {p.widget: p.region for p in arrangement.placements}
            self._placed = (arrangement, placed)
        region = placed.get(card)
        if region is None:
            return False
        view, top, height = size.height, region.y, region.height
        if top >= self.scroll_y and top + height <= self.scroll_y + view:
            return True
        # Centred; a card taller than the view shows its top.
        self.scroll_to(y=top if height >= view else top - (view - height) // 2, animate=False)
        return True

    def forget_placements(self) -> None:
        """Drop the places kept from the last arrangement (a card was removed: they hold it)."""
        self._placed = (None, {})

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
    # Focus at start is _focus_first's (the first card in the order). Textual's own would take
    # the first card mounted, which the first frame can mount before the banks' cards: a
    # focused card _focus_first did not choose reads as the user's choice.
    AUTO_FOCUS = ""  # "" is none; None would be the app's ("*")

    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[str, DeviceCard] = {}
        self.bank_cards: dict[str, BankCard] = {}  # by BANK_ID + the bank's name
        self._order: list[tuple[CardKey, str]] = []  # (sort key, address), sorted
        self._keys: dict[str, CardKey] = {}
        self._user_moved = False  # until the user moves, focus stays on the first card
        self._auto_focus: Widget | None = None
        self._moving_to: str | None = None  # the card an arrow key is moving focus to

    def compose(self) -> ComposeResult:
        yield from self.header_widgets()
        yield Static(
            "Waiting for devices… (Instant Readout devices advertise about once a second)",
            id="empty",
        )
        yield CardGrid(id="cards")
        yield self.footer()

    def on_mount(self) -> None:
        """The banks' cards, before any reading: a bank not heard yet shows as unknown."""
        banks = self.fleet.banks
        if not banks:
            return
        now = self.fleet.clock()
        cards = []
        for name in banks.specs:
            card = BankCard(name)
            card.show(banks.state(name, now))
            self.bank_cards[card.address] = card
            self._keys[card.address] = (0, banks.index(name), 0, "", "")
            insort(self._order, (self._keys[card.address], card.address))
            cards.append(card)
        grid = self.query_one(CardGrid)
        # First in the grid as in the order: the first frame may have mounted device cards
        # already (a reading is shown as soon as it arrives, issue 26).
        first = grid.children[0] if grid.children else None
        grid.mount_all(cards, before=first)
        self.call_after_refresh(self._focus_first)

    def card_key(self, dev: DeviceState) -> CardKey:
        name, address = sort_key(dev)
        place = self.fleet.banks.place(dev.address)
        if place is None:
            return (1, 0, 0, name, address)
        return (0, place[0], 1 + place[1], name, address)

    def _card(self, address: str) -> Widget:
        card: Widget | None = self.cards.get(address)
        return card if card is not None else self.bank_cards[address]

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
            if isinstance(widget, DeviceCard | BankCard) and widget.needs_paint:
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
            elif self._keys[address] != self.card_key(dev):  # renamed: move to its new place
                self._order.remove((self._keys[address], address))
                target = self._place(address, self.card_key(dev))
                grid = self.query_one(CardGrid)
                if target is not None and target is not card:
                    grid.move_child(card, before=target)
                elif target is None and grid.children[-1] is not card:
                    grid.move_child(card, after=grid.children[-1])
            card.show(dev, now, paint=card in visible)
        if new:
            self._mount(new)

    def banks_changed(self, names: Collection[str]) -> None:
        banks = self.fleet.banks
        now = self.fleet.clock()
        visible = self.on_screen()
        for name in names:
            card = self.bank_cards.get(BANK_ID + name)
            if card is not None and name in banks.specs:
                card.show(banks.state(name, now), paint=card in visible)

    def _place(self, address: str, key: CardKey) -> Widget | None:
        """Insert into the order; return the card that now follows it (None: it is last)."""
        self._keys[address] = key
        item = (key, address)
        insort(self._order, item)
        i = bisect_left(self._order, item) + 1
        return self._card(self._order[i][1]) if i < len(self._order) else None

    def _mount(self, new: list[DeviceCard]) -> None:
        grid = self.query_one(CardGrid)
        new.sort(key=lambda c: self.card_key(c.dev))
        # Cards that go before the same existing card (or at the end) are mounted together.
        groups: dict[str | None, list[DeviceCard]] = {}
        for card in new:
            self._keys[card.address] = self.card_key(card.dev)
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
                grid.mount_all(cards, before=self._card(before))
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
        first = self._card(self._order[0][1])
        if self.focused is not first:
            # At once, not Widget.focus()'s later: the next call must see where focus is (a
            # bank's card can be mounted after the first frame's cards, issue 26).
            self.set_focus(first, scroll_visible=False)
        self._auto_focus = first

    def _remove(self, address: str) -> None:
        card = self.cards.pop(address, None)
        key = self._keys.pop(address, None)
        if key is not None:
            self._order.remove((key, address))
        if card is not None:
            if self._auto_focus is card:
                self._auto_focus = None
            self.query_one(CardGrid).forget_placements()
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
        # A member that falls silent turns its bank degraded on the clock, not on a reading.
        self.banks_changed(self.fleet.banks.specs)

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
        target = self._target(index, dx, dy, self.columns())
        if target is None and abs(dy) > 1:  # a page past either end: the first or last card
            target = 0 if dy < 0 else len(self._order) - 1
        if target is not None and target != index:
            self._go(target)

    def move_page(self, address: str, pages: int) -> None:
        """PageDown / PageUp on a card: as many rows as the view shows, in one jump (the grid's
        own page keys scrolled with an animation and left focus on a card out of view)."""
        card = self._card(self._moving_to if self._moving_to in self._keys else address)
        height = card.outer_size.height
        rows = self.query_one(CardGrid).scrollable_content_region.height // max(1, height)
        self.move_focus(address, 0, pages * max(1, rows))

    def move_to_end(self, address: str, last: bool) -> None:
        """Home / End on a card: the first or the last card."""
        if self._order:
            self._go(len(self._order) - 1 if last else 0)

    def _go(self, target: int) -> None:
        self._user_moved = True
        self._moving_to = self._order[target][1]
        card = self._card(self._moving_to)
        # Textual's own scroll on focus is animated: a dozen frames, each repainting every
        # card in view. One jump instead, and only when the card is not wholly in view.
        card.focus(scroll_visible=False)
        grid = self.query_one(CardGrid)
        if not grid.show_card(card):
            if not self.can_view_entire(card):
                self.scroll_to_center(card, animate=False, origin_visible=True)

    def _target(self, index: int, dx: int, dy: int, cols: int) -> int | None:
        """The card an arrow key moves to from the card at `index` in the order."""
        if not self.bank_cards:
            target = index + dx + dy * cols
            if dx and target // cols != index // cols:
                return None  # ← → stay within the row
            return target if 0 <= target < len(self._order) else None
        # A bank's card fills a row of its own: place every card in its grid slot.
        slots: list[int] = []
        slot = 0
        for _, card in self._order:
            if card.startswith(BANK_ID):
                slot = -(-slot // cols) * cols  # the next row's start
                slots.append(slot)
                slot += cols
            else:
                slots.append(slot)
                slot += 1
        row, col = divmod(slots[index], cols)
        if dx:
            want = slots[index] + dx
            if self._order[index][1].startswith(BANK_ID) or want // cols != row:
                return None
            return slots.index(want) if want in slots else None
        in_row = [i for i, s in enumerate(slots) if s // cols == row + dy]
        if not in_row:
            return None
        before = [i for i in in_row if slots[i] % cols <= col]  # same column, else nearest left
        return before[-1] if before else in_row[0]

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        if getattr(event.widget, "address", None) == self._moving_to:
            self._moving_to = None  # arrived
