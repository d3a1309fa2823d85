"""Sources for the dashboard that are not a radio: paced replay of a capture (no textual here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

from victron_ble_bms.sources.advertisement import Advertisement

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
) -> AsyncIterator[Advertisement]:
    """Yield a capture's advertisements spaced as recorded, `speed` times faster.

    A timestamp that goes backwards (captures merged from two adapters) is sent at once.
    The reader is iterated lazily, so a capture of any size plays in constant memory.
    """
    if speed <= 0:
        raise ValueError("speed must be positive")
    previous: float | None = None
    for adv in advertisements:
        if previous is not None and adv.ts > previous:
            await sleep((adv.ts - previous) / speed)
        else:
            await sleep(0)  # let the screen breathe between back-to-back frames
        previous = adv.ts if previous is None else max(previous, adv.ts)
        if clock is not None:
            clock.mark(previous)
        yield adv
