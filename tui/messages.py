"""Messages the dashboard passes around."""

from __future__ import annotations

from textual.message import Message


class OpenDevice(Message):
    """A card was chosen: show its detail, or the key dialog when it has no key."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address


class MoveFocus(Message):
    """An arrow key on a card: move focus to the card dx columns / dy rows away in the grid."""

    def __init__(self, address: str, dx: int, dy: int) -> None:
        super().__init__()
        self.address = address
        self.dx = dx
        self.dy = dy
