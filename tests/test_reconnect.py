"""The one reconnect policy of the MQTT sink, the Signal K sink and the remote receivers."""

from __future__ import annotations

import asyncio
import random

from victron_ble_bms.reconnect import Backoff


def test_delays_double_to_a_minute_and_start_over_once_connected() -> None:
    backoff = Backoff(draw=lambda low, high: 1.0)  # no jitter: the nominal delays
    waits = [backoff.next_wait_s() for _ in range(9)]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff.text() == "60 s"
    backoff.reset()
    assert backoff.text() == "1 s"
    assert backoff.next_wait_s() == 1


def test_each_wait_is_spread_around_the_nominal_delay() -> None:
    # Many serves sharing a broker must not all come back in the same instant after it
    # restarts: 200 links after the same failures wait times spread over ±20 % of 8 s.
    waits = []
    for seed in range(200):
        backoff = Backoff(draw=random.Random(seed).uniform)
        for _ in range(3):
            backoff.next_wait_s()
        assert backoff.text() == "8 s"
        waits.append(backoff.next_wait_s())
    assert min(waits) >= 8 * 0.8 and max(waits) <= 8 * 1.2
    assert max(waits) - min(waits) > 2.5  # spread, not one instant
    assert len({round(w, 3) for w in waits}) > 150


def test_a_stop_ends_the_wait() -> None:
    async def main() -> None:
        stop = asyncio.Event()
        backoff = Backoff(first_s=3600.0)  # an hour: only the stop can end it in time
        waiting = asyncio.create_task(backoff.wait(stop))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        stop.set()
        await asyncio.wait_for(waiting, 5)
        assert backoff.text() == "60 s"  # doubled, bounded by the most

    asyncio.run(main())
