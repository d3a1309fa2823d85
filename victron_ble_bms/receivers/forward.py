"""The sending end of our raw format: `victron-bms serve --publish-raw` (a small receiver, e.g. a
Pi Zero, forwards what its radio hears; a bigger box runs `serve --source mqtt` and decodes).

No keys are needed or read here: Victron frames are encrypted on the air and forwarded as they
were heard, so the keys stay on the decoding machine. No MQTT client here either (the
connection is `mqtt/link.py`); `RawForwarder.advertisement(adv)` returns the message due now.

Rate: BlueZ reports the same advertisement many times (every RSSI change, docs/ecosystem.md
§3.1); a Victron device changes its bytes (nonce, docs/protocol.md §1.1) once per new reading. So an
advertisement whose Victron data equals the last one sent for that address is not sent again —
the same rule `sources/devices.py` uses to tell a repeat from a reading. The table of last data
is an LRU of `max_devices`, and a global budget (`RAW_RATE` per second, bursts of `RAW_BURST`)
caps what a flood of forged addresses can push into the broker; both are counted.

Raw messages are never retained (a late decoder wants the next frame, not an old one). The
receiver's own `online`/`offline` is retained on `<prefix>/raw/<id>/availability` (its MQTT last
will), so a decoder learns at once that a receiver dropped off.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from victron_ble_bms.mqtt import topics
from victron_ble_bms.mqtt.publisher import Budget, Outgoing
from victron_ble_bms.sources.advertisement import Advertisement

from .formats import MAX_RECEIVER_ID, encode_raw, raw_topic

MAX_DEVICES = 4096
# Victron devices send a new reading about once a second (docs/protocol.md §1.1); 200 devices in
# range of one receiver is far beyond a marina pontoon, so this only bites on a flood.
RAW_RATE = 200.0
RAW_BURST = 400.0
# A receiver id is one MQTT topic level: no "/", no wildcards "+" "#", no NUL — and, so it reads
# the same in a log, a shell and a JSON key, nothing but these.
_ALLOWED = re.compile(r"[A-Za-z0-9._-]+")
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9._-]+")


class ReceiverIdError(ValueError):
    """A receiver id that cannot be a topic level; the text is one line."""


def check_receiver_id(text: str) -> str:
    """A receiver id given by the user, unchanged, or `ReceiverIdError` saying why not."""
    if not text or len(text) > MAX_RECEIVER_ID:
        raise ReceiverIdError(f"--receiver-id must be 1–{MAX_RECEIVER_ID} characters")
    if not _ALLOWED.fullmatch(text):
        raise ReceiverIdError(
            "--receiver-id may contain only letters, digits, '.', '_' and '-' "
            "(it is one MQTT topic level)"
        )
    return text


def receiver_id_from_hostname(hostname: str) -> str:
    """The default receiver id: the host name with anything else replaced by '-'."""
    text = _NOT_ALLOWED.sub("-", hostname).strip("-.")[:MAX_RECEIVER_ID].strip("-.")
    return text or "receiver"


class RawForwarder:
    """Advertisements → raw messages, each transmission once (see the module docstring)."""

    def __init__(
        self,
        prefix: str,
        receiver: str,
        *,
        max_devices: int = MAX_DEVICES,
        rate: float = RAW_RATE,
        burst: float = RAW_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.receiver = check_receiver_id(receiver)
        self.topic = raw_topic(prefix, receiver)
        self.availability_topic = f"{self.topic}/availability"
        self.max_devices = max_devices
        self.clock = clock
        self._last: OrderedDict[str, bytes] = OrderedDict()  # address → Victron data sent
        self._budget = Budget(rate, burst, clock())
        self.sent = 0
        self.repeats = 0  # the same data again: not sent
        self.not_victron = 0
        self.throttled = 0  # over the global budget: not sent
        self.evicted = 0

    def advertisement(self, adv: Advertisement) -> list[Outgoing]:
        data = adv.victron_data
        if data is None:
            self.not_victron += 1
            return []
        last = self._last.get(adv.address)
        if last is not None:
            self._last.move_to_end(adv.address)
            if last == data:
                self.repeats += 1
                return []
        if not self._budget.spend(self.clock()):
            self.throttled += 1
            return []  # not remembered: the next copy may go when the budget allows
        self._last[adv.address] = data
        while len(self._last) > self.max_devices:
            self._last.popitem(last=False)
            self.evicted += 1
        self.sent += 1
        # Keyed per device in the outbox: after an outage each device's latest frame goes out.
        return [Outgoing(self.topic, encode_raw(adv), key=f"{self.topic}#{adv.address}")]

    # --- what mqtt/link.py asks on (re)connect and stop ----------------------------------------
    def _availability(self, payload: str) -> Outgoing:
        return Outgoing(self.availability_topic, payload.encode(), retain=True, qos=1)

    def bridge_online(self) -> list[Outgoing]:
        return [self._availability(topics.ONLINE)]

    def bridge_offline(self) -> list[Outgoing]:
        return [self._availability(topics.OFFLINE)]

    def will(self) -> Outgoing:
        return self._availability(topics.OFFLINE)

    def rediscover(self) -> list[Outgoing]:
        return []  # a receiver offers Home Assistant nothing: the decoder does

    def stale_configs(self, object_ids: Iterable[str]) -> list[Outgoing]:
        return []  # and so never removes anything there

    def summary(self) -> str:
        return (
            f"{self.sent} sent, {self.repeats} repeats and "
            f"{self.throttled} over the rate budget not sent"
        )
