"""`?`: what the keys do and what the screens show."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..state import STALE_AFTER_S

# Paragraphs are single lines and the keys a two-column grid, so the text reflows at any width
# (hard line breaks at 78 columns wrapped into ragged half-lines at 60, issue 25 item 8).
KEYS = (
    ("← ↑ ↓ →  Tab", "move between cards"),
    ("PgUp PgDn", "a screen of cards up or down"),
    ("Home End", "the first or the last card"),
    ("⏎  click", "open a device"),
    ("a", "alerts (every active code)"),
    ("r", "record (on/off)"),
    ("?", "this help"),
    ("Esc", "back"),
    ("q", "quit"),
)
DEVICE_LIST = (
    "Each card shows a device's advertised name (its keys-file label beside it), product, key "
    'status, main values, its codes and "RSSI · age". The border colour is the worst active '
    "code: yellow warning, red alarm, magenta error. The focused card has a double white frame "
    "and a tinted background.",
    f"A device not heard for {STALE_AFTER_S:.0f} s turns grey and shows how long ago it was "
    "last heard.",
    '"codes unknown (frame incomplete)": the last frame was too short to carry the codes — not '
    'an all-clear. "⚠ suspect frame ignored": a frame looked replayed, forged or implausible; '
    "the card keeps the last good values.",
    '"no key — add key": press ⏎ to enter the device\'s Instant Readout key; it is saved to the '
    'keys file (mode 0600) and used at once. "key mismatch": the key no longer fits — the '
    "device probably has a new key after a PIN change.",
)
CODES = (
    "A- alarm, W- warning, E- error, as in the manuals and VictronConnect. Each detail screen "
    "explains active codes and says what to do.",
)
SMART_BMS = (
    "Record 0x0E has no published layout, so its values are decoded provisionally and marked "
    "so (docs/protocol.md §8.2).",
)


def help_text() -> Group:
    keys = Table.grid(padding=(0, 2))
    keys.add_column(no_wrap=True, style="bold")
    keys.add_column()
    for key, what in KEYS:
        keys.add_row(key, what)
    parts: list[RenderableType] = [Text("victron-bms dashboard", style="bold"), Text()]
    parts += [Text("Keys", style="bold"), Padding(keys, (0, 0, 0, 2)), Text()]
    for title, paragraphs in (
        ("Device list", DEVICE_LIST),
        ("Codes", CODES),
        ("Smart BMS CL 12/100 and 12/200", SMART_BMS),
    ):
        parts.append(Text(title, style="bold"))
        parts += [Padding(Text(p), (0, 0, 0, 2)) for p in paragraphs]
        parts.append(Text())
    parts.append(Text("Press Esc or ? to close."))
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_text())

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
