"""Progress of a long job on one stderr line (issue 25 item 7: big conversions and long
emulations said nothing until the end).

Shown only when stderr is a terminal, or with `VICTRON_BMS_PROGRESS=1`; never in pipes, logs
or tests that read stderr (`VICTRON_BMS_PROGRESS=0` turns it off on a terminal too). The line
is erased when the job ends, so the final summary stands alone.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

REDRAW_S = 0.2


def wanted(stream: TextIO | None = None) -> bool:
    setting = os.environ.get("VICTRON_BMS_PROGRESS", "")
    if setting in ("0", "1"):
        return setting == "1"
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


class Progress:
    """`update(done)` out of `total` (simulated seconds, bytes …), or a plain count."""

    def __init__(self, label: str, total: float | None = None, unit: str = "") -> None:
        self.label, self.total, self.unit = label, total, unit
        self.enabled = wanted()
        self.items = 0
        self._last = 0.0
        self._width = 0

    def update(self, done: float, *, items: int = 1, force: bool = False) -> None:
        self.items += items
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < REDRAW_S:
            return
        self._last = now
        if self.total:
            frac = min(max(done / self.total, 0.0), 1.0)
            text = (
                f"{self.label}: [{'#' * int(frac * 24):24}] {frac:6.1%}  "
                f"{done:,.0f}/{self.total:,.0f} {self.unit}  {self.items:,} frames"
            )
        else:
            text = f"{self.label}: {self.items:,} frames"
        self._width = max(self._width, len(text))
        sys.stderr.write("\r" + text.ljust(self._width))
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self._width:
            sys.stderr.write("\r" + " " * self._width + "\r")
            sys.stderr.flush()


class ProgressTarget:
    """An advertiser for `emulate`'s fan-out that only counts: progress in simulated seconds."""

    def __init__(self, label: str, start_ts: float, duration: float) -> None:
        self.progress = Progress(label, duration, "simulated s")
        self.start_ts = start_ts

    async def start(self) -> None:
        return None

    async def publish(self, advertisement: Any) -> None:
        self.progress.update(float(advertisement.ts) - self.start_ts)

    async def remove(self, address: str) -> None:
        return None

    async def close(self) -> None:
        self.progress.close()
