"""A bar per cell with its voltage; the lowest and highest cell marked, and the spread."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from victron_ble_bms.protocol import SmartLithiumRecord
from victron_ble_bms.protocol.enums import CellBound

from ..format import cell

# The 7-bit cell field spans 2.60–3.86 V (docs/protocol.md §2.1); draw bars over the LFP range
# that matters: 2.80 V (allowed-to-discharge default) … 3.75 V (charge disconnect), from the
# Lithium Battery Smart manual (docs/protocol.md §8.4).
BAR_LOW_V = 2.80
BAR_HIGH_V = 3.75
BAR_WIDTH = 24


class CellBars(Static):
    def show(self, record: SmartLithiumRecord) -> None:
        cells = [(i + 1, v) for i, v in enumerate(record.cell_voltages_v) if v is not None]
        low, high = record.min_cell_v, record.max_cell_v
        out = Text()
        for n, v in cells:
            volts = v.bound_v if isinstance(v, CellBound) else v
            frac = (volts - BAR_LOW_V) / (BAR_HIGH_V - BAR_LOW_V)
            filled = max(0, min(BAR_WIDTH, round(frac * BAR_WIDTH)))
            mark, style = "", "green"
            if len(cells) > 1 and low != high:
                if volts == low:
                    mark, style = " ▼ min", "bold cyan"
                elif volts == high:
                    mark, style = " ▲ max", "bold red"
            out.append(f"Cell {n} ")
            out.append("█" * filled, style=style)
            out.append("░" * (BAR_WIDTH - filled), style="grey30")
            out.append(f" {cell(v):>8}", style=style if mark else "")
            out.append(mark + "\n", style=style)
        spread = record.cell_spread_mv
        out.append(
            f"min {cell(low)}   max {cell(high)}   spread {'—' if spread is None else spread} mV"
        )
        self.update(out)
