"""A labelled sparkline of one value over the session."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline


class History(Vertical):
    def __init__(self, series: str, label: str, unit: str, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="history")
        self.series = series
        self.label = label
        self.unit = unit

    def compose(self) -> ComposeResult:
        yield Label(Text(self.label), classes="history-label")
        yield Sparkline([], summary_function=max)

    def show(self, points: list[float]) -> None:
        label = self.query_one(Label)
        if points:
            lo, hi, last = min(points), max(points), points[-1]
            text = Text(f"{self.label}  ")
            text.append(f"{last:g} {self.unit}", style="bold")
            text.append(f"  ({lo:g}–{hi:g})", style="dim")
            label.update(text)
        self.query_one(Sparkline).data = points
