"""Base of the per-device detail screens: title line, body, codes, history."""

from __future__ import annotations

from collections.abc import Collection

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from victron_ble_bms.protocol import Record

from ..format import STATUS_TEXT, outside
from ..state import DeviceState, format_age
from ..widgets.code_list import CodeList
from ..widgets.history import History
from .base import FleetScreen, ready


class DetailScreen(FleetScreen):
    BINDINGS = [Binding("escape,backspace", "app.pop_screen", "Back")]
    HISTORY: tuple[tuple[str, str, str], ...] = ()  # (series, label, unit)

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def compose(self) -> ComposeResult:
        yield from self.header_widgets()
        with VerticalScroll(id="detail"):
            yield Static(id="title")
            yield Static(id="suspect")
            yield from self.compose_body()
            yield Static("Active codes", classes="section")
            yield CodeList(id="codes")
            if self.HISTORY:
                yield Static("History (this session)", classes="section")
                for series, label, unit in self.HISTORY:
                    yield History(series, label, unit, id=f"hist-{series}")
        yield self.footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def show_record(self, dev: DeviceState, record: Record) -> None:
        """Fill the body from the device's last record."""

    def devices_changed(self, addresses: Collection[str]) -> None:
        if self.address in addresses:
            self.refresh_all()

    def refresh_all(self) -> None:
        dev = self.fleet.devices.get(self.address)
        if dev is None or not ready(self):
            return
        now = self.fleet.clock()
        stale = dev.stale(now)
        self.set_class(stale, "-stale")
        rssi = "—" if dev.rssi is None else f"{dev.rssi} dBm"
        rate = "—" if dev.rate_hz is None else f"{dev.rate_hz:.1f}/s"
        title = outside(dev.title, style="bold")
        title.append(f"  {dev.product or ''}  ")
        title.append_text(outside(dev.address))
        title.append("\n")
        title.append_text(STATUS_TEXT[dev.status])
        title.append(f"   RSSI {rssi}   updates {rate}   last {format_age(dev.age(now))} ago")
        if stale:
            title.append(" STALE", style="bold")
        self.query_one("#title", Static).update(title)
        suspect = self.query_one("#suspect", Static)
        suspect.display = dev.suspect_recent(now)
        if suspect.display:
            text = Text(
                f"⚠ {dev.suspect_count} suspect frame(s) ignored, the last "
                f"{format_age(now - (dev.suspect_at or now))} ago: ",
                style="bold magenta",
            )
            text.append(dev.suspect or "")
            text.append("\nThe values below are the last good reading.", style="dim")
            suspect.update(text)
        if dev.record is not None:
            self.show_record(dev, dev.record)
        self.query_one(CodeList).show(dev.codes.values(), now, unknown=dev.codes_unknown)
        for hist in self.query(History):
            hist.show(dev.series(hist.series))
