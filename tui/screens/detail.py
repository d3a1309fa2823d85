"""Base of the per-device detail screens: title line, body, codes, history."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from victron_ble_bms.protocol import Record

from ..format import STATUS_TEXT
from ..state import DeviceState, format_age
from ..widgets.code_list import CodeList
from ..widgets.history import History
from .base import FleetScreen


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

    def device_changed(self, address: str) -> None:
        if address == self.address:
            self.refresh_all()

    def refresh_all(self) -> None:
        dev = self.fleet.devices.get(self.address)
        if dev is None:
            return
        now = self.fleet.clock()
        self.set_class(dev.stale(now), "-stale")
        rssi = "—" if dev.rssi is None else f"{dev.rssi} dBm"
        rate = "—" if dev.rate_hz is None else f"{dev.rate_hz:.1f}/s"
        stale = " [b]STALE[/]" if dev.stale(now) else ""
        self.query_one("#title", Static).update(
            f"[b]{dev.name}[/]  {dev.product or ''}  {dev.address}\n"
            f"{STATUS_TEXT[dev.status]}   RSSI {rssi}   updates {rate}   "
            f"last {format_age(dev.age(now))} ago{stale}"
        )
        if dev.record is not None:
            self.show_record(dev, dev.record)
        self.query_one(CodeList).show(dev.codes.values(), now)
        for hist in self.query(History):
            hist.show(dev.series(hist.series))
