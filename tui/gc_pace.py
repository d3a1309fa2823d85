"""Fewer garbage collections while the dashboard runs (issue 26).

500 cards keep ~160,000 objects alive, and every screen update allocates tens of thousands
more (strips, segments, styles), nearly all freed by reference counting, not by the cyclic
collector. With CPython's default thresholds (700, 10, 10) the collector ran a young
collection every 700 allocations and a full one, walking every live object (~0.1 s at 500
cards), every few seconds while the list scrolled: measured in-process, garbage collection
was about half of the CPU of a scroll (20 ms → 16 ms per 3-row scroll with these thresholds)
and each full collection a pause a key press waited behind.

Process-wide state, so it is set around the dashboard's run (the CLI) and restored after it,
never on import: a test process keeps its own collector.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# A young collection after 20,000 net allocations (a screen update's worth), an older one
# after 20 of those, a full one after 100 older ones (and only when, as CPython also
# requires, a quarter of the long-lived objects are new since the last).
THRESHOLDS = (20_000, 20, 100)


@contextmanager
def fewer_collections() -> Iterator[None]:
    old = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)
