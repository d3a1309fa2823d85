"""Every active code across all devices, newest first, with when it started."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..format import CODES_UNKNOWN, SEVERITY_STYLE, outside
from ..state import format_age
from .base import FleetScreen


class AlertsScreen(FleetScreen):
    BINDINGS = [Binding("escape,backspace", "app.pop_screen", "Back")]

    def compose(self) -> ComposeResult:
        yield from self.header_widgets()
        with VerticalScroll(id="detail"):
            yield Static("Active codes, newest first", classes="section")
            yield Static(id="alerts")
        yield self.footer()

    def devices_changed(self, addresses: Collection[str]) -> None:
        self.refresh_all()

    def refresh_all(self) -> None:
        now = self.fleet.clock()
        alerts = self.fleet.alerts()
        out = Text()
        unknown = [d for d in self.fleet.devices.values() if d.codes_unknown]
        for dev in unknown:  # never an all-clear for a device whose codes were not received
            out.append(f"{CODES_UNKNOWN}: ", style="bold yellow")
            out.append_text(outside(dev.name))
            out.append("\n")
        if not alerts and not unknown:
            out.append("No active codes on any device.", style="green")
        for active in alerts:
            code = active.code
            style = SEVERITY_STYLE[code.severity]
            started = dt.datetime.fromtimestamp(active.started).strftime("%H:%M:%S")
            out.append(f"{started} ", style="bold")
            out.append(f"({format_age(now - active.started)} ago)  ", style="dim")
            out.append(f"{code.id:<8}", style=f"bold {style}")
            out.append_text(outside(active.device))  # a name from the air: plain text
            out.append(f": {code.title}\n")
            if code.remedy:
                out.append(f"           What to do: {code.remedy}\n", style="dim")
        self.query_one("#alerts", Static).update(out)
