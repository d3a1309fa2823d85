"""What every card in the device list shares: its keys, how it moves focus, how it opens."""

from __future__ import annotations

from textual.binding import Binding
from textual.events import Click
from textual.message import Message
from textual.reactive import Reactive
from textual.widget import Widget


class Card(Widget, can_focus=True):
    """A focusable card with an `address` (its place in the list's order); `open_message` is
    what Enter or a click posts (the device's or the bank's page)."""

    BINDINGS = [
        Binding("enter", "open", "Open", show=False),
        # On the card itself, so that the scrolling container's own arrow bindings never win.
        Binding("down,j", "move(0, 1)", "Down", show=False),
        Binding("up,k", "move(0, -1)", "Up", show=False),
        Binding("right,l", "move(1, 0)", "Right", show=False),
        Binding("left,h", "move(-1, 0)", "Left", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("home", "end(False)", "First", show=False),
        Binding("end", "end(True)", "Last", show=False),
    ]

    address: str
    # A card holds no links (its text comes from the air: never markup). Textual otherwise
    # restyles every segment of every line it renders, looking for links (issue 26: ~1/4 of a
    # card's conversion, paid for each card a scroll brings into view).
    auto_links = Reactive(False)

    def open_message(self) -> Message:
        raise NotImplementedError

    def action_open(self) -> None:
        self.post_message(self.open_message())

    def action_move(self, dx: int, dy: int) -> None:
        # Handled at once, not posted: keys typed quickly (↓↓↓) each start from the card the
        # previous one focused (a posted message would let all three start from this card).
        mover = getattr(self.screen, "move_focus", None)
        if callable(mover):
            mover(self.address, dx, dy)

    def action_page(self, pages: int) -> None:
        mover = getattr(self.screen, "move_page", None)
        if callable(mover):
            mover(self.address, pages)

    def action_end(self, last: bool) -> None:
        mover = getattr(self.screen, "move_to_end", None)
        if callable(mover):
            mover(self.address, last)

    def on_click(self, event: Click) -> None:
        event.stop()
        self.focus()
        self.post_message(self.open_message())
