"""Replay pacing: a capture's own gaps between frames, scaled by a speed — one rule for every
replay (`serve --source capture --speed N`, the dashboard's `--replay`).

A capture's times come from a file anyone can make. `dated()` drops a frame whose time is no
date (before 1970 or after 2242, `sources.advertisement.LATEST_TS`): a replay feeds the device
table, whose arithmetic on times must not overflow (1e308 doubled is inf). `decode` shows such
frames, with their time as written; a replay, which paces by time, cannot place them.

Waiting for "the next frame's time" would let one absurd timestamp (the year 2200 between two
frames of today) stall a replay for ever, and taking the latest time seen as "now" would then
send the rest of the file unpaced. So:

- a frame earlier than the latest one (captures merged from two adapters) goes at once and
  moves nothing;
- a gap longer than `MAX_GAP_S` of recorded time is a pause in recording or a wrong clock: it
  is not waited for, pacing restarts from that frame, and `on_gap` is told once per such gap;
  a jump back of more than `MAX_GAP_S` (the frame after an absurd one) restarts pacing too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from ..advertisement import LATEST_TS, Advertisement

# Victron devices advertise about once a second (docs/protocol.md §1.1): five minutes without a
# frame in a recording means the recording stopped, not the radio.
MAX_GAP_S = 300.0


class Pacer:
    """`delay(ts)`: the seconds to wait before sending a frame recorded at `ts`."""

    def __init__(
        self,
        speed: float,
        *,
        max_gap_s: float = MAX_GAP_S,
        on_gap: Callable[[str], None] | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.max_gap_s = max_gap_s
        self.on_gap = on_gap
        self.latest: float | None = None  # the recorded time pacing has reached
        self.skipped_gaps = 0

    def delay(self, ts: float) -> float:
        latest = self.latest
        if latest is None:
            self.latest = ts
            return 0.0
        gap = ts - latest
        if gap <= 0:
            if -gap > self.max_gap_s:  # back from an absurd time: pace from here
                self.latest = ts
            return 0.0
        self.latest = ts
        if gap > self.max_gap_s:
            self.skipped_gaps += 1
            if self.on_gap is not None:
                self.on_gap(
                    f"capture: not waiting for a gap of {gap:.6g} s between two frames "
                    "(recording paused, or a wrong timestamp)"
                )
            return 0.0
        return gap / self.speed


def dated(
    advertisements: Iterable[Advertisement], on_skip: Callable[[str], None] | None = None
) -> Iterator[Advertisement]:
    """The advertisements whose time is a date (1970 to 2242); `on_skip` hears of the others."""
    for adv in advertisements:
        if 0.0 <= adv.ts <= LATEST_TS:
            yield adv
        elif on_skip is not None:
            on_skip(f"a frame of {adv.address} at time {adv.ts:.6g}, which is no date: skipped")


__all__ = ["MAX_GAP_S", "Pacer", "dated"]
