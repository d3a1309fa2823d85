"""How every network link of ours waits before it tries again: the MQTT sink, the Signal K sink
and the remote receivers' broker connection.

One second after the first failure, doubling to at most a minute: a broker or server that is
restarting is back within seconds, one that is gone is not hammered. Each wait is drawn within
±20 % of the nominal delay, so that many `serve`s sharing a broker (a marina's, a boat's hub) do
not all reconnect in the same instant after it restarts — the spread grows with the delay. The
messages say the nominal delay ("retrying in 4 s").
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

FIRST_S = 1.0
MOST_S = 60.0
JITTER = 0.2  # each wait within ±20 % of the nominal delay


class Backoff:
    """The delay before the next attempt: `delay` (nominal, for messages), `wait()` to wait it
    (returning early when `stop` is set) and double it, `reset()` once connected."""

    def __init__(
        self,
        first_s: float = FIRST_S,
        most_s: float = MOST_S,
        *,
        draw: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.first_s = first_s
        self.most_s = most_s
        self._draw = draw
        self.delay = first_s

    def reset(self) -> None:
        self.delay = self.first_s

    def text(self) -> str:
        """The nominal delay as messages say it: "4 s"."""
        return f"{self.delay:.0f} s"

    def next_wait_s(self) -> float:
        """How long the next wait lasts (the nominal delay, jittered), and double the delay."""
        seconds = self.delay * self._draw(1 - JITTER, 1 + JITTER)
        self.delay = min(self.most_s, self.delay * 2)
        return seconds

    async def wait(self, stop: asyncio.Event | None = None) -> None:
        """Wait the jittered delay, or until `stop` is set, whichever comes first."""
        seconds = self.next_wait_s()
        if stop is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
