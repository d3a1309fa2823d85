"""A bank's card (issue 20): the bank judged as one system, first in the device list, above its
members, the width of the grid.

Cheap to repaint (issue 26): the card always has `CARD_LINES` lines, so an update never lays
out the grid; it is repainted only when one of its lines changed and it is on screen (off
screen it is marked, and painted when it scrolls into view, as a device card is).
"""

from __future__ import annotations

import zlib

from rich.text import Text
from textual.geometry import Size
from textual.message import Message

from victron_ble_bms.banks import BankState, Verdict

from ..bank_format import CARD_LINES, card_lines, title
from ..bank_state import BANK_ID
from ..messages import OpenBank
from .card import Card


def bank_card_id(name: str) -> str:
    # Bank names come from the keys file: reduced to safe id characters, and made unique by
    # the name's checksum (two names may reduce to the same characters).
    safe = "".join(ch for ch in name.lower() if ch.isalnum())[:40]
    return f"bank-{safe}-{zlib.crc32(name.encode('utf-8', 'replace')):08x}"


class BankCard(Card):
    def __init__(self, name: str) -> None:
        super().__init__(id=bank_card_id(name), classes="card bank-card")
        self.bank = name
        self.address = BANK_ID + name  # its place in the device list's order
        self.state: BankState | None = None
        self.needs_paint = False
        self._lines: list[Text] = []
        self._verdict: Verdict | None = None

    def show(self, state: BankState, *, paint: bool = True) -> None:
        """Take the bank's new state; repaint when on screen and a line changed."""
        if self.state is None or state.name != self.state.name or state.layout != self.state.layout:
            self.border_title = title(state)
        self.state = state
        if not self.is_mounted or paint:
            self.paint()
        else:
            self.needs_paint = True

    def paint(self) -> None:
        state = self.state
        self.needs_paint = False
        if state is None:
            return
        if state.verdict is not self._verdict:  # a class change re-applies the stylesheet
            self._verdict = state.verdict
            for verdict in Verdict:
                self.set_class(verdict is state.verdict, f"-{verdict.value}")
        lines = card_lines(state)
        if lines != self._lines:
            self._lines = lines
            if self.is_mounted:
                self.refresh()  # a repaint of this card only: its height never changes

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return CARD_LINES

    def render(self) -> Text:
        if not self._lines:
            return Text("\n".join(["…"] * CARD_LINES))
        return Text("\n").join(self._lines)

    def open_message(self) -> Message:
        return OpenBank(self.bank)
