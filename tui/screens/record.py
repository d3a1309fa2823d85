"""Any other decoded record — a SmartShunt's battery monitor record, a charger … —: every field
as `decode` shows it (issue 25 item 4: the dashboard said "no decoded reading yet" for a
device `decode` decodes)."""

from __future__ import annotations

from textual.app import ComposeResult

from victron_ble_bms.cli.output import record_rows
from victron_ble_bms.protocol import Record

from ..format import Value
from ..state import DeviceState
from ..widgets.readout import Readout
from .detail import DetailScreen

UNITS = ("_v", "_a", "_pct", "_c", "_min", "_ah", "_w", "_kwh", "_va", "_k")


def _label(field: str) -> str:
    """battery_voltage_v → "Battery voltage" (the value carries its unit)."""
    for unit in UNITS:
        if field.endswith(unit):
            field = field[: -len(unit)]
            break
    return field.replace("_", " ").capitalize()


class RecordScreen(DetailScreen):
    def compose_body(self) -> ComposeResult:
        yield Readout(id="values")

    def show_record(self, dev: DeviceState, record: Record) -> None:
        rows: list[tuple[str, Value]] = [
            ("Record", record.record_name),
            ("Product", record.product or "unknown"),
        ]
        rows += [(_label(name), value) for name, value in record_rows(record)]
        self.query_one("#values", Readout).show(rows)
