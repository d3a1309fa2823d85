"""Smart BMS CL 12/100 and 12/200 detail. Provisional record layout (docs/protocol.md §8.2)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from victron_ble_bms.protocol import Record, SmartBmsRecord

from ..format import volts
from ..state import DeviceState
from ..widgets.readout import Readout
from .detail import DetailScreen

PROVISIONAL_NOTE = (
    "⚠ PROVISIONAL DECODING — record 0x0E has no published layout; these values follow the "
    "project's best guess (docs/protocol.md §8.2) and may be wrong."
)


class SmartBmsScreen(DetailScreen):
    HISTORY = (
        ("voltage", "Battery voltage", "V"),
        ("alternator", "Alternator voltage", "V"),
    )

    def compose_body(self) -> ComposeResult:
        yield Static(PROVISIONAL_NOTE, id="provisional")
        yield Readout(id="values")

    def show_record(self, dev: DeviceState, record: Record) -> None:
        if not isinstance(record, SmartBmsRecord):
            return
        pct = record.alternator_current_pct
        err, alarm, raw = record.bms_error, record.alarm_reason, record.unidentified
        self.query_one("#values", Readout).show(
            [
                ("Battery", volts(record.battery_voltage_v)),
                ("System+", volts(record.system_voltage_v)),
                ("Alternator/starter", volts(record.alternator_voltage_v)),
                ("Alternator current", "—" if pct is None else f"{pct} % of limit"),
                ("BMS error", "unknown" if err is None else err.label),
                ("Alarm reason", "unknown" if alarm is None else str(alarm.name or "none").lower()),
                ("Unidentified bits", "unknown" if raw is None else raw.hex(" ")),
            ]
        )
