"""One card per device on the home screen, like the VictronConnect device list.

The card keeps a reference to its device's state and builds its text in `render()`, which
Textual calls only for cards on screen: an update of a card scrolled out of view costs a flag,
not a repaint (issue 12: CPU per reading independent of the number of cards).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.binding import Binding
from textual.events import Click
from textual.widget import Widget

from ..format import CODES_UNKNOWN, SEVERITY_STYLE, STATUS_TEXT, main_values, outside
from ..messages import MoveFocus, OpenDevice
from ..state import DeviceState, format_age


class DeviceCard(Widget, can_focus=True):
    BINDINGS = [
        Binding("enter", "open", "Open", show=False),
        # On the card itself, so that the scrolling container's own arrow bindings never win.
        Binding("down,j", "move(0, 1)", "Down", show=False),
        Binding("up,k", "move(0, -1)", "Up", show=False),
        Binding("right,l", "move(1, 0)", "Right", show=False),
        Binding("left,h", "move(-1, 0)", "Left", show=False),
    ]

    def __init__(self, dev: DeviceState, clock: Callable[[], float]) -> None:
        super().__init__(id=card_id(dev.address), classes="card")
        self.dev = dev
        self.address = dev.address
        self._clock = clock
        self._shape: tuple[int, str | None] = (0, None)
        self._title: str | None = None
        self._subtitle: str | None = None

    def show(self, dev: DeviceState, now: float) -> None:
        """Take the device's new state: classes and border now, the body when next painted."""
        self.dev = dev
        stale = dev.stale(now)
        worst = dev.worst
        self.set_class(stale, "-stale")
        for sev, style in SEVERITY_STYLE.items():
            self.set_class(worst is sev and not stale, f"-{style}")
        self.set_class(dev.suspect_recent(now), "-suspect")
        title = dev.title
        if title != self._title:
            self._title = title
            self.border_title = outside(title)  # Text: never parsed as markup
        age = format_age(dev.age(now))
        rssi = "—" if dev.rssi is None else f"{dev.rssi} dBm"
        subtitle = f"stale · {age} ago" if stale else f"{rssi} · {age}"
        if subtitle != self._subtitle:
            self._subtitle = subtitle
            self.border_subtitle = Text(subtitle)
        # Layout (the card's height) only when the number of lines or the wrapped reason changes.
        shape = (self.line_count(dev, now), dev.suspect if dev.suspect_recent(now) else None)
        self.refresh(layout=shape != self._shape)
        self._shape = shape

    @staticmethod
    def line_count(dev: DeviceState, now: float) -> int:
        return (
            2
            + len(main_values(dev.record))
            + bool(dev.codes or dev.codes_unknown)
            + dev.suspect_recent(now)
        )

    def render(self) -> Text:
        dev, now = self.dev, self._clock()
        out = Text()
        out.append(dev.product or "unknown product", style="bold")
        out.append("\n")
        out.append_text(STATUS_TEXT[dev.status])
        for label, value in main_values(dev.record):
            out.append(f"\n{label:<12}")
            out.append_text(value if isinstance(value, Text) else Text(value))
        if dev.codes:
            out.append("\nCodes       ")
            for active in sorted(dev.codes.values(), key=lambda a: -a.code.severity):
                out.append(active.code.id + " ", style=SEVERITY_STYLE[active.code.severity])
        if dev.codes_unknown:
            out.append("\n" if not dev.codes else "")
            out.append(("" if dev.codes else "Codes       ") + CODES_UNKNOWN, style="bold yellow")
        if dev.suspect_recent(now):
            out.append("\n⚠ suspect frame ignored: ", style="bold magenta")
            out.append(dev.suspect or "")
        return out

    def action_open(self) -> None:
        self.post_message(OpenDevice(self.address))

    def action_move(self, dx: int, dy: int) -> None:
        self.post_message(MoveFocus(self.address, dx, dy))

    def on_click(self, event: Click) -> None:
        event.stop()
        self.focus()
        self.post_message(OpenDevice(self.address))


def card_id(address: str) -> str:
    # Addresses are normalised by the sources; anything else is reduced to safe id characters.
    return "card-" + "".join(ch for ch in address.lower() if ch.isalnum())
