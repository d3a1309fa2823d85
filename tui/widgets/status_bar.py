"""The line under the header: demo banner or source, recording, active codes.

The app gives the parts with a priority; what does not fit the width is dropped, least
important first, so the warning count survives a 70-column terminal (issue 10 item 5).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from rich.text import Text
from textual.widget import Widget

Part = tuple[int, Text]  # (priority: 0 = never dropped, higher = dropped first, text)
SEPARATOR = "  ·  "


def fit(parts: list[Part], width: int) -> Text:
    """Join the parts that fit in `width` columns, dropping the least important first."""
    kept = list(parts)
    while len(kept) > 1:
        total = sum(p[1].cell_len for p in kept) + len(SEPARATOR) * (len(kept) - 1)
        if total <= width:
            break
        drop = max(kept, key=lambda p: p[0])
        if drop[0] == 0:
            break
        kept.remove(drop)
    out = Text(no_wrap=True, overflow="ellipsis")
    for i, (_, text) in enumerate(kept):
        if i:
            out.append(SEPARATOR, style="dim")
        out.append_text(text)
    return out


class StatusBar(Widget):
    """Text comes from the app (`DashboardApp.status_parts`); it flashes on a new alarm."""

    def on_mount(self) -> None:
        self.set_class(bool(getattr(self.app, "demo", False)), "-demo")

    _shown: str | None = None

    def refresh_status(self) -> None:
        # Called every frame: repaint only when the line's text changed.
        text = getattr(self.app, "status_text", None)
        now = text() if callable(text) else ""
        if now != self._shown:
            self._shown = now
            self.refresh()

    def render(self) -> Text:
        parts = getattr(self.app, "status_parts", None)
        if not callable(parts):
            return Text()
        width = max(1, self.content_region.width or self.size.width)
        return fit(cast(Callable[[], list[Part]], parts)(), width)
