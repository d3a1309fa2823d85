"""A two-column block of labelled values."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ..format import Value


class Readout(Static):
    def show(self, rows: list[tuple[str, Value]]) -> None:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim", no_wrap=True)
        table.add_column()
        for label, value in rows:
            table.add_row(Text(label), value if isinstance(value, Text) else Text(value))
        self.update(table)
