"""Many receivers, one decoder: duplicates merged, best receiver per device, silent receivers.

Several receivers (a Pi at each end of a boat) hear the same advertisement. A copy is the
same address and the same manufacturer data — Victron data carries a nonce that changes with
every new record (docs/protocol.md §1.1), so equal bytes are one transmission heard twice. The
first copy is passed on at once (no added latency); later copies only tell which receiver
heard the device best (highest RSSI for its latest frame) and when each one last heard it.

Everything is bounded, because addresses come from the air through other people's gateways:
devices (LRU, `max_devices`), receivers per device, frames remembered per device, receivers
overall. A flood of new addresses evicts the longest-unheard devices and is counted.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from victron_ble_bms.protocol import COMPANY_ID
from victron_ble_bms.sources.advertisement import Advertisement

from .formats import Heard

log = logging.getLogger("victron_ble_bms.receivers")

MAX_DEVICES = 10_000
MAX_RECEIVERS = 256
MAX_RECEIVERS_PER_DEVICE = 16
FRAMES_PER_DEVICE = 8
# Copies of one transmission arrive within a gateway's batching delay (Theengs Gateway
# publishes from its detection callback; OpenMQTTGateway within its scan). The same bytes
# after this long are a repeat transmission, which counts as a new sighting.
DUPLICATE_WINDOW_S = 5.0
SILENT_AFTER_S = 60.0  # the default stale limit, for receivers too
_LOG_EVERY_S = 10.0  # the same kind of bad message is logged at most this often


@dataclass(slots=True)
class Sighting:
    last_seen: float
    rssi: int | None


@dataclass(slots=True)
class RemoteDevice:
    """What the receivers together know about one device."""

    address: str
    receivers: OrderedDict[str, Sighting] = field(default_factory=OrderedDict)
    frames: OrderedDict[bytes, float] = field(default_factory=OrderedDict)  # data → first heard

    def best(self, window_s: float = DUPLICATE_WINDOW_S) -> str | None:
        """The receiver with the strongest signal among those that heard the device within
        `window_s` of the latest sighting (so a receiver that lost it does not stay "best")."""
        if not self.receivers:
            return None
        latest = max(s.last_seen for s in self.receivers.values())
        recent = [
            (s.rssi if s.rssi is not None else -999, s.last_seen, rid)
            for rid, s in self.receivers.items()
            if latest - s.last_seen <= window_s
        ]
        return max(recent)[2]

    def to_json(self) -> dict[str, Any]:
        """`receiver` (best recent RSSI) and each receiver's last sighting."""
        return {
            "receiver": self.best(),
            "receivers": {
                rid: {"last_seen": s.last_seen, "rssi": s.rssi} for rid, s in self.receivers.items()
            },
        }


@dataclass(slots=True)
class ReceiverState:
    id: str
    gateway: str
    first_seen: float
    last_seen: float
    messages: int = 0
    silent: bool = False


@dataclass(slots=True)
class Counters:
    messages: int = 0  # every message taken from the broker
    advertisements: int = 0  # passed on (first copies)
    duplicates: int = 0  # further copies merged
    not_victron: int = 0  # well-formed, but no Victron manufacturer data
    malformed: int = 0
    evicted_devices: int = 0
    evicted_receivers: int = 0


class Receivers:
    """The bookkeeping `advertisements()` keeps; also what `serve` reports per device."""

    def __init__(
        self,
        *,
        max_devices: int = MAX_DEVICES,
        max_receivers: int = MAX_RECEIVERS,
        duplicate_window_s: float = DUPLICATE_WINDOW_S,
        silent_after_s: float = SILENT_AFTER_S,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.max_devices = max_devices
        self.max_receivers = max_receivers
        self.duplicate_window_s = duplicate_window_s
        self.silent_after_s = silent_after_s
        self.on_event = on_event
        self.devices: OrderedDict[str, RemoteDevice] = OrderedDict()
        self.receivers: OrderedDict[str, ReceiverState] = OrderedDict()
        self.counters = Counters()
        self._last_logged: dict[str, float] = {}

    # -- messages --------------------------------------------------------------------------
    def heard(self, heard: Heard, now: float) -> Advertisement | None:
        """Account for one received copy; the advertisement when it is the first copy."""
        self.counters.messages += 1
        self._receiver_alive(heard.receiver, heard.gateway, now)
        adv = heard.advertisement
        data = adv.manufacturer_data.get(COMPANY_ID)
        if data is None:
            self.counters.not_victron += 1
            return None
        dev = self._device(adv.address)
        sighting = dev.receivers.get(heard.receiver)
        if sighting is None:
            if len(dev.receivers) >= MAX_RECEIVERS_PER_DEVICE:
                dev.receivers.popitem(last=False)
            dev.receivers[heard.receiver] = Sighting(now, adv.rssi)
        else:
            sighting.last_seen, sighting.rssi = now, adv.rssi
            dev.receivers.move_to_end(heard.receiver)
        first = dev.frames.get(data)
        if first is not None and now - first <= self.duplicate_window_s:
            self.counters.duplicates += 1
            return None
        dev.frames[data] = now
        dev.frames.move_to_end(data)
        while len(dev.frames) > FRAMES_PER_DEVICE:
            dev.frames.popitem(last=False)
        self.counters.advertisements += 1
        return adv

    def malformed(self, where: str, reason: str, now: float) -> None:
        """Count a bad message and log one line (the same reason at most every 10 s)."""
        self.counters.malformed += 1
        kind = reason.split(":", 1)[0][:40]
        last = self._last_logged.get(kind)
        if last is not None and now - last < _LOG_EVERY_S:
            return
        if len(self._last_logged) > 256:
            self._last_logged.clear()
        self._last_logged[kind] = now
        line = f"ignored a gateway message on {where}: {reason} ({self.counters.malformed} so far)"
        if self.on_event is not None:
            self.on_event(line)
        else:
            log.warning("%s", line)

    # -- receivers -------------------------------------------------------------------------
    def _receiver_alive(self, rid: str, gateway: str, now: float) -> None:
        state = self.receivers.get(rid)
        if state is None:
            state = ReceiverState(rid, gateway, now, now)
            if len(self.receivers) >= self.max_receivers:
                # The longest unheard goes; a flood of receiver ids is counted, not announced.
                self.receivers.popitem(last=False)
                self.counters.evicted_receivers += 1
                if self.counters.evicted_receivers == 1:
                    self._event(f"more than {self.max_receivers} receivers; forgetting the oldest")
            else:
                self._event(f"receiver {rid!r} ({gateway}) is sending")
            self.receivers[rid] = state
        elif state.silent:
            state.silent = False
            self._event(f"receiver {rid!r} is sending again")
        state.last_seen = now
        state.messages += 1
        self.receivers.move_to_end(rid)

    def gateway_status(self, rid: str, payload: bytes, now: float) -> None:
        """A gateway's own online/offline (its MQTT last will): offline is silence, at once."""
        state = self.receivers.get(rid)
        if payload.strip().lower() == b"offline":
            if state is not None and not state.silent:
                state.silent = True
                self._event(f"receiver {rid!r} went offline (its last will)")
        elif state is not None and state.silent and payload.strip().lower() == b"online":
            state.silent = False
            state.last_seen = now
            self._event(f"receiver {rid!r} is online again")

    def check_silent(self, now: float | None = None) -> list[str]:
        """Receivers that just went silent (each reported once until it sends again)."""
        now = time.time() if now is None else now
        newly = []
        for state in self.receivers.values():
            if not state.silent and now - state.last_seen > self.silent_after_s:
                state.silent = True
                newly.append(state.id)
                self._event(
                    f"receiver {state.id!r} silent for {now - state.last_seen:.0f} s "
                    f"(limit {self.silent_after_s:g} s)"
                )
        return newly

    def silent(self) -> list[str]:
        return [s.id for s in self.receivers.values() if s.silent]

    # -- devices ---------------------------------------------------------------------------
    def _device(self, address: str) -> RemoteDevice:
        dev = self.devices.get(address)
        if dev is None:
            if len(self.devices) >= self.max_devices:
                self.devices.popitem(last=False)  # the longest unheard
                self.counters.evicted_devices += 1
            dev = self.devices[address] = RemoteDevice(address)
        else:
            self.devices.move_to_end(address)
        return dev

    def device(self, address: str) -> RemoteDevice | None:
        return self.devices.get(address)

    def state_fields(self, address: str) -> dict[str, Any]:
        """Extra fields for a device's state JSON: best receiver and per-receiver sightings."""
        dev = self.devices.get(address)
        return {} if dev is None else dev.to_json()

    def _event(self, text: str) -> None:
        log.info("%s", text)
        if self.on_event is not None:
            self.on_event(text)
