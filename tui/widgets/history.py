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
        # Kept, not queried: a detail page opened by a fast Enter is updated before this
        # widget's own children are mounted, and a query then raised NoMatches (issue 18).
        self._label = Label(Text(self.label), classes="history-label")
        self._sparkline: Sparkline = Sparkline([], summary_function=max)

    def compose(self) -> ComposeResult:
        yield self._label
        yield self._sparkline

    def show(self, points: list[float]) -> None:
        label = self._label
        if points:
            lo, hi, last = min(points), max(points), points[-1]
            text = Text(f"{self.label}  ")
            text.append(f"{last:g} {self.unit}", style="bold")
            text.append(f"  ({lo:g}–{hi:g})", style="dim")
            label.update(text)
        self._sparkline.data = points
