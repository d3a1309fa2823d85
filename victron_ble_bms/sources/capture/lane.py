"""A reader's short cut for packets its consumer has seen before (issue 23).

A capture repeats itself: a device sends the same advertisement several times per nonce, its
values for minutes. What a consumer makes of a packet (a line of text, or nothing but a count)
depends only on the packet's bytes, its time and its RSSI. So a consumer that writes text can
hand the reader a `Lane`: for each packet it has seen, keyed by the packet's bytes *without*
time and RSSI, the text around where those two go. The reader then writes such a packet's text
itself, with the time and RSSI spliced in, without building an `Advertisement` — and hands
every other packet to the consumer's `miss` (which may take it in one piece too), or, failing
that, parses it as always and yields its advertisements, with `pending` set to the packet's
key when the packet is of a shape the lane can learn (one advertisement, RSSI where the key
says).

An entry is a list `[before_ts, between, after_rssi, count, effect, end]`: the reader adds 1
to `count` on every hit and, where `before_ts` is not None, appends the text (`before_ts`,
time, `between`, RSSI, `after_rssi`, `end`) to `out`; the
consumer owns `effect` (what a hit means to its tallies) and folds the counts in (`fold`).
The consumer makes every entry, from the very output it wrote the slow way, so nothing here
interprets a packet. Bounded: past `limit` entries the consumer folds and clears.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# An HCI LE Advertising Report's RSSI byte → its JSON text (127: not available, null).
RSSI_TEXT = tuple("null" if b == 127 else str(b - 256 if b > 127 else b) for b in range(256))
# JSON-lines RSSI text → itself, for the texts `json.dumps` of an int in -128..127 or None
# writes (anything else, "-0" or "1e1" or " 5", goes the slow way).
JSON_RSSI = {str(v).encode(): str(v) for v in range(-128, 128)} | {b"null": "null"}

Entry = list[Any]

_T3 = tuple(f"{i:03d}" for i in range(1000))
_T3_STRIPPED = tuple(f"{i:03d}".rstrip("0") for i in range(1000))  # "" for 0
_US_MAX = (1 << 33) * 1_000_000
_SECONDS: dict[int, str] = {}  # whole seconds → "<seconds>." (bounded below)


def us_text(us: int) -> str:
    """`repr(us / 1e6)` — how JSON writes a time in whole microseconds — at a fraction of its
    cost. From 1 s to 2**33 s (the year 2242) the float nearest us/10**6 lies less than a
    microsecond from any other 6-decimal number, so its shortest repr is that decimal itself,
    trailing zeros dropped ("1.5", "2.0"); outside, repr itself."""
    if not 1_000_000 <= us < _US_MAX:
        return repr(us / 1e6)
    seconds, fraction = divmod(us, 1_000_000)
    head = _SECONDS.get(seconds)
    if head is None:
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        head = _SECONDS[seconds] = f"{seconds}."
    high, low = divmod(fraction, 1000)
    if low:
        return head + _T3[high] + _T3_STRIPPED[low]
    return head + (_T3_STRIPPED[high] or "0")


# A JSON time text that is its float's shortest repr by its digits alone (`time_text`): up
# to 15 significant digits, positive, fixed notation, one "." neither first nor last, no
# leading 0, no trailing 0 but "X.0". A double holds 15 digits, so no shorter text reads back
# as the same float and the text is the repr. One pattern, for readers to build theirs from.
SHORT_TIME = rb"(?=[0-9.]{3,16}(?![0-9.]))[1-9][0-9]*\.(?:[0-9]*[1-9]|0)"
_short_time = re.compile(SHORT_TIME).fullmatch


def time_text(t: bytes) -> str | None:
    """`t` (a JSON number's text) when it is `repr(float(t))` — what our output writes for
    the time — else None: then splicing `t` through would change a byte. `SHORT_TIME`
    recognises the usual texts by their digits; any other takes the round trip through float.
    """
    if _short_time(t) is not None:
        return t.decode()
    try:
        text = t.decode("ascii")
        value = float(text)
    except ValueError:
        return None
    return text if value - value == 0.0 and repr(value) == text else None


class Lane:
    """The packets seen before → the consumer's text (module docstring)."""

    __slots__ = ("packets", "miss", "out", "pending", "flush_at", "flush")

    def __init__(
        self,
        miss: Callable[[bytes, str, str], bool],
        flush: Callable[[], None],
        flush_at: int = 256,
    ) -> None:
        self.packets: dict[bytes, Entry] = {}
        # Called with (key, ts text, rssi text) for a packet not in `packets`; True when the
        # consumer took it (and wrote what it writes for it).
        self.miss = miss
        self.out: list[str] = []  # text the reader wrote; the consumer writes it out
        self.pending: bytes | None = None  # the key of the packet whose advertisement is next
        self.flush_at = flush_at  # `flush()` when `out` holds this many pieces
        self.flush = flush


def hci_report_shape(key: bytes) -> bool:
    """`key` (an HCI event from its code, without its last byte) is an LE Advertising Report
    of one legacy report filling the event: then the last byte is the RSSI, and bytes 6-11
    the address (Core spec Vol 4 Part E §7.7.65.2)."""
    n = len(key)
    return (n > 13 and key[0] == 0x3E and key[1] == n - 1 and key[2] == 2 and key[3] == 1) and key[
        12
    ] == n - 13
