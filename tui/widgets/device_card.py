"""One card per device on the home screen, like the VictronConnect device list."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.events import Click
from textual.widgets import Static

from ..format import SEVERITY_STYLE, STATUS_TEXT, main_values
from ..messages import OpenDevice
from ..state import DeviceState, format_age


class DeviceCard(Static, can_focus=True):
    BINDINGS = [Binding("enter", "open", "Open", show=False)]

    def __init__(self, address: str) -> None:
        super().__init__(id=card_id(address), classes="card")
        self.address = address

    def show(self, dev: DeviceState, now: float) -> None:
        stale = dev.stale(now)
        worst = dev.worst
        self.set_class(stale, "-stale")
        for sev, style in SEVERITY_STYLE.items():
            self.set_class(worst is sev and not stale, f"-{style}")
        self.border_title = dev.name
        age = format_age(dev.age(now))
        rssi = "—" if dev.rssi is None else f"{dev.rssi} dBm"
        self.border_subtitle = f"stale · {age} ago" if stale else f"{rssi} · {age}"
        lines = [f"[b]{dev.product or 'unknown product'}[/]", STATUS_TEXT[dev.status]]
        for label, value in main_values(dev.record):
            lines.append(f"{label:<12}{value}")
        if dev.codes:
            worst_codes = sorted(dev.codes.values(), key=lambda a: -a.code.severity)
            ids = " ".join(
                f"[{SEVERITY_STYLE[a.code.severity]}]{a.code.id}[/]" for a in worst_codes
            )
            lines.append(f"Codes       {ids}")
        if dev.codes_unknown:
            lines.append("Codes       [b]unknown[/] (frame incomplete)")
        self.update(Text.from_markup("\n".join(lines)))

    def action_open(self) -> None:
        self.post_message(OpenDevice(self.address))

    def on_click(self, event: Click) -> None:
        event.stop()
        self.post_message(OpenDevice(self.address))


def card_id(address: str) -> str:
    return "card-" + address.replace(":", "").replace("-", "").lower()
