"""`?`: what the keys do and what the screens show."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..state import STALE_AFTER_S

HELP = f"""[b]victron-bms dashboard[/]

[b]Keys[/]
  ← ↑ ↓ →   move between cards (Tab too)   ⏎ / click  open a device
  a         alerts (every active code)     r          record (on/off)
  ?         this help                      Esc        back        q  quit

[b]Device list[/]
  Each card shows a device's advertised name (its keys-file label beside it),
  product, key status, main values, its codes and "RSSI · age". The border
  colour is the worst active code: yellow warning, red alarm, magenta error.
  The focused card has a double white frame and a tinted background.
  A device not heard for {STALE_AFTER_S:.0f} s turns grey and shows how long ago it was
  last heard. "codes unknown (frame incomplete)": the last frame was too short
  to carry the codes — not an all-clear. "⚠ suspect frame ignored": a frame
  looked replayed, forged or implausible; the card keeps the last good values.
  "no key — add key": press ⏎ to enter the device's Instant Readout key; it is
  saved to the keys file (mode 0600) and used at once.
  "key mismatch": the key no longer fits — the device probably has a new key
  after a PIN change.

[b]Codes[/]  A- alarm, W- warning, E- error, as in the manuals and VictronConnect.
  Each detail screen explains active codes and says what to do.

[b]Smart BMS CL 12/100 and 12/200[/]: record 0x0E has no published layout, so
  its values are decoded provisionally and marked so.

Press Esc or ? to close."""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(HELP)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
