"""Messages the dashboard passes around."""

from __future__ import annotations

from textual.message import Message


class OpenDevice(Message):
    """A card was chosen: show its detail, or the key dialog when it has no key."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address


class OpenBank(Message):
    """A bank's card was chosen: show the bank's screen."""

    def __init__(self, bank: str) -> None:
        super().__init__()
        self.bank = bank
