"""Lithium Battery Smart detail: cells, balance, charge/discharge permissions, codes."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from victron_ble_bms.protocol import Record, SmartLithiumRecord

from ..explain import SOURCE, why_not_charging, why_not_discharging
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
        yield Static(id="why")
        yield Static(id="balancer")

    def show_record(self, dev: DeviceState, record: Record) -> None:
        if not isinstance(record, SmartLithiumRecord):
            return
        self.query_one(CellBars).show(record)
        pre_alarm = (
            Text("unknown", "bold")
            if record.pre_alarm is None
            else Text("active", "yellow")
            if record.pre_alarm
            else Text("no", "green")
        )
        self.query_one("#values", Readout).show(
            [
                ("Battery voltage", volts(record.battery_voltage_v)),
                ("Temperature", celsius(record.battery_temperature_c)),
                ("Allowed to charge", yes_no(record.allowed_to_charge)),
                ("Allowed to discharge", yes_no(record.allowed_to_discharge)),
                ("Pre-alarm", pre_alarm),
                ("Balancer", balance(record.balancer_status)),
            ]
        )
        why = self.query_one("#why", Static)
        reasons = [("Not charging", r) for r in why_not_charging(record)]
        reasons += [("Not discharging", r) for r in why_not_discharging(record)]
        why.display = bool(reasons)
        if reasons:
            text = Text()
            for label, reason in reasons:
                text.append(f"{label} — likely: ", style="bold")
                text.append(reason + "\n")
            text.append(SOURCE, style="dim italic")
            why.update(text)
        status = record.balancer_status
        explanation = (
            "Balancer state not available."
            if status is None
            else (BALANCER_EXPLANATIONS.get(status, f"Unknown balancer state {int(status)}."))
        )
        text = Text(explanation + "\n")
        text.append(BALANCER_SOURCE, style="dim italic")
        self.query_one("#balancer", Static).update(text)
