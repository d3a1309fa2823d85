"""Lithium Battery Smart detail: cells, balance, charge/discharge permissions, codes."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from victron_ble_bms.protocol import Record, SmartLithiumRecord

from ..format import (
    BALANCER_EXPLANATIONS,
    BALANCER_SOURCE,
    balance,
    celsius,
    volts,
    yes_no,
)
from ..state import DeviceState
from ..widgets.cell_bars import CellBars
from ..widgets.readout import Readout
from .detail import DetailScreen


class BatteryScreen(DetailScreen):
    HISTORY = (
        ("voltage", "Battery voltage", "V"),
        ("spread", "Cell spread", "mV"),
        ("temperature", "Temperature", "°C"),
    )

    def compose_body(self) -> ComposeResult:
        yield Static("Cells", classes="section")
        yield CellBars(id="cells")
        yield Readout(id="values")
        yield Static(id="balancer")

    def show_record(self, dev: DeviceState, record: Record) -> None:
        if not isinstance(record, SmartLithiumRecord):
            return
        self.query_one(CellBars).show(record)
        self.query_one("#values", Readout).show(
            [
                ("Battery voltage", volts(record.battery_voltage_v)),
                ("Temperature", celsius(record.battery_temperature_c)),
                ("Allowed to charge", yes_no(record.allowed_to_charge)),
                ("Allowed to discharge", yes_no(record.allowed_to_discharge)),
                (
                    "Pre-alarm",
                    "[b]unknown[/]"
                    if record.pre_alarm is None
                    else "[yellow]active[/]"
                    if record.pre_alarm
                    else "[green]no[/]",
                ),
                ("Balancer", balance(record.balancer_status)),
            ]
        )
        status = record.balancer_status
        text = (
            "Balancer state not available."
            if status is None
            else (BALANCER_EXPLANATIONS.get(status, f"Unknown balancer state {int(status)}."))
        )
        self.query_one("#balancer", Static).update(f"{text}\n[dim italic]{BALANCER_SOURCE}[/]")
