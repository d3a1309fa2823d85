"""The receivers' incoming queue: bounded, and the devices we decode go first (issue 18).

Anyone who can publish to the broker (or whose advertisements a gateway forwards) can send
tens of thousands of messages a second for addresses that never existed. aiomqtt's own queue
is first come, first served and, when full, drops whatever arrives next — a keyed battery's
frame as readily as the flood's — and what it keeps waits behind the whole backlog.

So the queue aiomqtt fills (its documented `queue_type` hook: aiomqtt calls only
`put_nowait` from paho's message callback and `get` from `client.messages`) sorts each
message as it arrives, before any JSON parsing, into one of three lanes, served in order:

1. **first** — gateways' online/offline (tiny, and they say when a receiver drops off) and
   messages for an address in the keys file. Each address has its own short queue (the newest
   `PER_ADDRESS` kept) and the addresses take turns, so one keyed address forged in a flood
   cannot hold back another.
2. **known** — addresses the receivers' table already holds (heard before and Victron):
   neighbours without a key. Bounded; the oldest is dropped when full.
3. **new** — everything else (new addresses, non-Victron traffic, unparseable messages):
   admitted at most `NEW_PER_S` a second (a token bucket) and bounded; the rest is dropped,
   counted and reported in one line at most every 10 s.

A payload larger than any gateway message (`MAX_PAYLOAD_BYTES`) is refused here, so at most
`PER_ADDRESS × keyed + KNOWN_MAX + NEW_MAX` messages of ≤ 4 KiB wait at any time (≈ 10 MB
at worst), whatever is sent. The address is found cheaply (the BTtoMQTT topic's last level
or the payload's `"id"`/`"mac"`/`"address"`); the full parse that follows decides what the
message really says. A message that claims a keyed address it does not parse to goes first
but only into that address's own short queue — no more than forging the address outright,
which anyone on the broker can do.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import aiomqtt

from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.advertisement import AddressError, normalize_address

from .formats import MAX_PAYLOAD_BYTES
from .tracker import Receivers

PER_ADDRESS = 16  # a keyed device's messages waiting: several receivers × a few frames
MAX_FIRST_ADDRESSES = 1024  # keys files are far smaller; a bound all the same
STATUS_MAX = 64  # gateways' last wills waiting
KNOWN_MAX = 2000
NEW_MAX = 500
NEW_PER_S = 200.0  # a busy Theengs gateway forwards tens of messages a second, not thousands
REPORT_EVERY_S = 10.0

_STATUS = ""  # the first lane's key for gateways' online/offline
# The usual spelling (AA:BB:CC:DD:EE:FF, any case) is taken as it is; anything else in that
# field goes through the one address rule (normalize_address), which is slower.
_ADDRESS = re.compile(
    rb'"(?:id|mac|address)"\s*:\s*"(?:([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})|([^"\\]{1,64}))"'
)


@dataclass(slots=True)
class IntakeCounters:
    first: int = 0  # taken into the first lane
    known: int = 0
    new: int = 0
    shed_first: int = 0  # a keyed address's own queue overflowed (its oldest dropped)
    shed_known: int = 0  # the known lane was full (its oldest dropped)
    shed_new: int = 0  # over the rate or the bound for new addresses
    oversized: int = 0  # refused before parsing

    @property
    def shed(self) -> int:
        return self.shed_first + self.shed_known + self.shed_new + self.oversized


class Intake:
    """The policy and its counters; they outlive a connection (each gets a fresh queue).

    `first(address)` says whether an address goes first (serve: is it in the keys file — read
    at each message, so a reloaded keys file applies at once). `tracker` is the receivers'
    table: its devices are the known lane, and oversized messages are counted there as
    malformed with its usual one line. `say` gets the shedding report.
    """

    def __init__(
        self,
        *,
        first: Callable[[str], bool] | None = None,
        tracker: Receivers | None = None,
        say: Callable[[str], None] | None = None,
        new_per_s: float = NEW_PER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.first = first
        self.tracker = tracker
        self.say = say
        self.new_per_s = new_per_s
        self.clock = clock
        self.counters = IntakeCounters()
        self._tokens = new_per_s
        self._refilled = clock()
        self._reported_at: float | None = None
        self._reported_shed = 0

    def queue_type(self) -> type[asyncio.Queue[aiomqtt.Message]]:
        """The class for `aiomqtt.Client(queue_type=…)`; aiomqtt's `maxsize` is ignored (the
        lanes have their own bounds, so `put_nowait` never raises `QueueFull`)."""
        intake = self

        class _Queue(IntakeQueue):
            def __init__(self, maxsize: int = 0) -> None:
                super().__init__(intake)

        return _Queue

    # -- sorting ---------------------------------------------------------------------------
    def address_of(self, topic: str, payload: bytes) -> str | None:
        """The device address a message claims, without parsing it (None: none found)."""
        match = _ADDRESS.search(payload, 0, MAX_PAYLOAD_BYTES)
        if match and match.group(1):
            return match.group(1).decode("ascii").upper()
        candidate = match.group(2).decode("ascii", "replace") if match else topic.rsplit("/", 1)[-1]
        try:
            return normalize_address(candidate)
        except AddressError:
            return None

    def admit_new(self) -> bool:
        """The token bucket for the new lane."""
        now = self.clock()
        elapsed = max(0.0, now - self._refilled)
        self._refilled = now
        self._tokens = min(self.new_per_s, self._tokens + elapsed * self.new_per_s)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def refuse_oversized(self, topic: str, size: int) -> None:
        self.counters.oversized += 1
        if self.tracker is not None:
            reason = f"payload of {size} bytes is larger than {MAX_PAYLOAD_BYTES}"
            self.tracker.malformed(plain(topic)[:80], reason, time.time())

    def report(self) -> None:
        """One line at most every REPORT_EVERY_S while messages are being shed."""
        c = self.counters
        if c.shed == self._reported_shed:
            return
        now = self.clock()
        if self._reported_at is not None and now - self._reported_at < REPORT_EVERY_S:
            return
        self._reported_at, self._reported_shed = now, c.shed
        line = (
            f"incoming flood: dropped {c.shed_new} messages for new addresses, {c.shed_known} "
            f"for known ones, {c.shed_first} for keyed ones, {c.oversized} oversized, so far; "
            "keyed devices and gateway status go first"
        )
        if self.say is not None:
            self.say(line)


class IntakeQueue(asyncio.Queue[aiomqtt.Message]):
    """The lanes of one connection (see the module docstring)."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self._first: OrderedDict[str, deque[aiomqtt.Message]] = OrderedDict()
        self._known: deque[aiomqtt.Message] = deque(maxlen=KNOWN_MAX)
        self._new: deque[aiomqtt.Message] = deque(maxlen=NEW_MAX)
        self._size = 0
        super().__init__(0)  # unbounded to asyncio: the lanes bound themselves

    def qsize(self) -> int:
        return self._size

    def empty(self) -> bool:
        return self._size == 0

    def full(self) -> bool:
        return False

    def _put(self, item: aiomqtt.Message) -> None:
        intake, counters = self.intake, self.intake.counters
        intake.report()  # what was shed since the last line, if it is time
        payload = item.payload
        data = payload.encode() if isinstance(payload, str) else payload
        topic = item.topic.value
        if isinstance(data, bytes | bytearray) and len(data) > MAX_PAYLOAD_BYTES:
            intake.refuse_oversized(topic, len(data))
            return
        parts = topic.split("/")
        if (len(parts) == 3 and parts[2] == "LWT") or parts[-1] == "availability":
            self._to_first(_STATUS, item, STATUS_MAX)
            return
        address = (
            intake.address_of(topic, bytes(data)) if isinstance(data, bytes | bytearray) else None
        )
        if address is not None and intake.first is not None and intake.first(address):
            if address in self._first or len(self._first) < MAX_FIRST_ADDRESSES:
                self._to_first(address, item, PER_ADDRESS)
                return
        tracker = intake.tracker
        if address is not None and tracker is not None and address in tracker.devices:
            counters.known += 1
            if len(self._known) == KNOWN_MAX:
                counters.shed_known += 1
                self._size -= 1
            self._known.append(item)
            self._size += 1
        elif intake.admit_new():
            counters.new += 1
            if len(self._new) == NEW_MAX:
                counters.shed_new += 1
                self._size -= 1
            self._new.append(item)
            self._size += 1
        else:
            counters.shed_new += 1

    def _to_first(self, key: str, item: aiomqtt.Message, bound: int) -> None:
        counters = self.intake.counters
        counters.first += 1
        waiting = self._first.get(key)
        if waiting is None:
            waiting = self._first[key] = deque(maxlen=bound)
        if len(waiting) == bound:
            counters.shed_first += 1
            self._size -= 1
        waiting.append(item)
        self._size += 1

    def _get(self) -> aiomqtt.Message:
        self._size -= 1
        if self._first:
            key, waiting = next(iter(self._first.items()))
            item = waiting.popleft()
            if waiting:
                self._first.move_to_end(key)  # the next address's turn
            else:
                del self._first[key]
            return item
        if self._known:
            return self._known.popleft()
        return self._new.popleft()
