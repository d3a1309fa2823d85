"""Active codes with their title, the manual's explanation and the remedy."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import Static

from ..format import CODES_UNKNOWN, SEVERITY_STYLE
from ..state import ActiveCode, format_age


class CodeList(Static):
    def show(self, codes: Iterable[ActiveCode], now: float, *, unknown: bool = False) -> None:
        ordered = sorted(codes, key=lambda a: (-a.code.severity, a.code.id))
        out = Text()
        if unknown:  # the last frame lacked the flag/code fields: never the green all-clear
            out.append(CODES_UNKNOWN[0].upper() + CODES_UNKNOWN[1:], style="bold yellow")
            out.append(
                ": the last frame was shorter than its layout, so active codes are not known."
                + (" Codes shown below are from earlier frames." if ordered else ""),
            )
            if ordered:
                out.append("\n\n")
        elif not ordered:
            self.update(Text("No active codes.", style="green"))
            return
        for i, active in enumerate(ordered):
            code = active.code
            style = SEVERITY_STYLE[code.severity]
            if i:
                out.append("\n")
            out.append(f"{code.id} ", style=f"bold {style}")
            out.append(f"{code.severity.name.lower()}: {code.title}", style="bold")
            out.append(f"  (since {format_age(now - active.started)})\n", style="dim")
            if code.explanation:
                out.append(f"  {code.explanation}\n")
            if code.remedy:
                out.append("  What to do: ", style="bold")
                out.append(f"{code.remedy}\n")
            note = code.source + ("" if code.in_manual else " — not listed in the manual")
            if note:
                out.append(f"  {note}\n", style="dim italic")
        self.update(out)
