"""Sources for the dashboard that are not a radio: paced replay of a capture (no textual here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture.pace import Pacer, dated

Sleep = Callable[[float], Awaitable[None]]

# Waits shorter than this are added up rather than slept one by one: a frame is sent at most
# this early, too little to see on a card that shows ages in seconds, and a capture of 500
# devices wakes the dashboard ~50 times a second instead of ~170 (issue 26).
MIN_SLEEP_S = 0.02


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
    owed = 0.0  # waits too short to be worth a wake-up, summed until they are
    for adv in dated(advertisements, on_gap):
        delay = pacer.delay(adv.ts)
        if not delay:
            await sleep(0)  # a zero wait still lets the screen breathe between frames
        elif owed + delay < MIN_SLEEP_S:
            # 500 devices at 1 Hz are 2 ms apart: a wake-up per frame cost the dashboard as
            # much as decoding it (issue 26). Sent up to MIN_SLEEP_S early instead; the total
            # pacing is kept (the next wait pays what is owed).
            owed += delay
        else:
            await sleep(owed + delay)
            owed = 0.0
        if clock is not None and pacer.latest is not None:
            clock.mark(pacer.latest)
        yield adv
