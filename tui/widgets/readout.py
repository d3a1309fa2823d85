"""A two-column block of labelled values."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static


class Readout(Static):
    def show(self, rows: list[tuple[str, str]]) -> None:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim", no_wrap=True)
        table.add_column()
        for label, value in rows:
            table.add_row(label, Text.from_markup(value))
        self.update(table)
