"""Lynx Smart BMS detail: SOC, voltage, current, power, time-to-go, IO, warnings/alarms."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from victron_ble_bms.protocol import LynxSmartBmsRecord, Record
from victron_ble_bms.protocol.enums import AlarmLevel, TriState

from ..format import amps, celsius, percent, time_to_go, volts
from ..state import DeviceState
from ..widgets.readout import Readout
from .detail import DetailScreen

_TRI = {TriState.YES: Text("yes", style="green"), TriState.NO: Text("no", style="red")}
_NA = Text("n/a", style="dim")
_LEVEL = {
    AlarmLevel.OK: Text("ok", style="green"),
    AlarmLevel.WARNING: Text("warning", style="yellow"),
    AlarmLevel.ALARM: Text("alarm", style="red"),
}


def _name(key: str) -> str:
    return key.replace("_", " ").capitalize()


class LynxScreen(DetailScreen):
    HISTORY = (
        ("soc", "State of charge", "%"),
        ("current", "Current", "A"),
        ("voltage", "Voltage", "V"),
    )

    def compose_body(self) -> ComposeResult:
        yield Readout(id="values")
        yield Static("Inputs and outputs", classes="section")
        yield Readout(id="io")
        yield Static("Warnings and alarms", classes="section")
        yield Readout(id="alarms")

    def show_record(self, dev: DeviceState, record: Record) -> None:
        if not isinstance(record, LynxSmartBmsRecord):
            return
        power = record.power_w
        consumed = record.consumed_ah
        self.query_one("#values", Readout).show(
            [
                ("State of charge", percent(record.soc_pct)),
                ("Voltage", volts(record.battery_voltage_v)),
                ("Current", amps(record.battery_current_a)),
                ("Power", "—" if power is None else f"{power:.0f} W"),
                ("Time to go", time_to_go(record.ttg_min)),
                ("Consumed", "—" if consumed is None else f"{consumed:.1f} Ah"),
                ("Temperature", celsius(record.temperature_c)),
            ]
        )
        self.query_one("#io", Readout).show(
            [(_name(k), _TRI.get(v, _NA)) for k, v in record.io.items() if k != "field_7"]
        )
        # Only the items this BMS reports (0 = unsupported, docs/protocol.md §4.5).
        self.query_one("#alarms", Readout).show(
            [(_name(k), _LEVEL[v]) for k, v in record.alarms.items() if v in _LEVEL]
            or [("(none reported)", Text(""))]
        )
