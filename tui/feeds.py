"""Sources for the dashboard that are not a radio: paced replay of a capture (no textual here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture.pace import Pacer, dated

Sleep = Callable[[float], Awaitable[None]]


class ReplayClock:
    """The capture's own time while it plays: the last timestamp sent plus the time since,
    scaled by the speed, so that ages on screen are the ages the capture had."""

    def __init__(self, speed: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.speed = speed
        self._monotonic = monotonic
        self._ts: float | None = None
        self._at = 0.0

    def mark(self, ts: float) -> None:
        self._ts = ts
        self._at = self._monotonic()

    def __call__(self) -> float:
        if self._ts is None:
            return time.time()
        return self._ts + (self._monotonic() - self._at) * self.speed


async def replay(
    advertisements: Iterable[Advertisement],
    *,
    speed: float = 1.0,
    clock: ReplayClock | None = None,
    sleep: Sleep = asyncio.sleep,
    on_gap: Callable[[str], None] | None = None,
) -> AsyncIterator[Advertisement]:
    """Yield a capture's advertisements spaced as recorded, `speed` times faster.

    Pacing is `sources.capture.pace.Pacer`'s: a timestamp that goes backwards (captures merged
    from two adapters) is sent at once, and a gap of more than five recorded minutes (a pause,
    or one absurd timestamp) is not waited for — `on_gap` is told instead, as it is of a frame
    whose time is no date at all (skipped). The reader is
    iterated lazily, so a capture of any size plays in constant memory.
    """
    pacer = Pacer(speed, on_gap=on_gap)
    for adv in dated(advertisements, on_gap):
        # A zero wait still lets the screen breathe between back-to-back frames.
        await sleep(pacer.delay(adv.ts))
        if clock is not None and pacer.latest is not None:
            clock.mark(pacer.latest)
        yield adv
