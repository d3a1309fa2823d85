"""What to publish, and when — no I/O here (the connection is `mqtt/link.py`).

`Publisher.reading(r)` takes every new reading and returns the messages due now;
`Publisher.tick()` (about once a second) returns heartbeats, delayed changes and "offline" for
devices that went silent. Rules (issue 11, configurable in `MqttConfig`):

- a device's state is published when it changed (values, codes, key status — not ts, nonce or
  RSSI), at most once per `min_interval_s`; a change inside that interval is sent when it ends;
- and at least once per `heartbeat_s` while the device is heard;
- a keyed device's state is *retained*, so a subscriber that starts later (Home Assistant, a
  remote `dashboard --mqtt`) gets the latest state at once instead of at the next heartbeat; it
  stays retained while the device is offline (its `ts` says how old it is, its availability
  says "offline"), and is cleared (empty retained payload) when the device leaves the keys file;
- `<prefix>/<addr>/availability` (retained) is "online" while heard and "offline" once the
  device has been silent for `stale_after_s`;
- devices with a key in the keys file get retained availability and an HA discovery document
  (when their first record arrives, again when its shape changes); others (no key, a flood of
  random addresses from remote receivers) only get non-retained state messages when their status
  changes or at the heartbeat, from a bounded LRU table and a global rate budget, so they can
  neither fill the broker with retained topics nor push a real device out of memory;
- a suspect reading (replayed/forged frame, implausible values) never replaces the last good
  values: the last good state is re-sent with `"suspect": "<reason>"`; a change pending
  confirmation (sources/devices.py) leaves the last good state as it was, without `suspect`;
- per-key deadbands (`MqttConfig.deadband`): a keyed device's value is replaced in its state
  only when it moved at least that far from the value published, so noise is not news;
- a device heard only through remote receivers that have all gone (their last will said
  offline) is offline at once (`unheard`), not after `stale_after_s`.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.readings import KeyStatus, Reading, shown_suspect

from . import discovery, topics
from .config import MqttConfig
from .state import state_object

# A change in these alone is not news. "receiver(s)": which remote receiver hears the device
# best and when each last did (serve --source mqtt) change with every message, like the RSSI.
_VOLATILE = ("ts", "nonce", "rssi", "receiver", "receivers")
UNKEYED_RATE = 20.0  # state messages per second for devices without a key, all together
UNKEYED_BURST = 50.0


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 0
    # The outbox key (default: the topic). While disconnected a newer message replaces an older
    # one with the same key; raw advertisements share one topic, so they are keyed per device.
    key: str | None = None


@dataclass(slots=True)
class _Device:
    address: str
    keyed: bool
    last_seen: float
    name: str | None = None
    online: bool = False
    last_sent: float | None = None
    signature: int | None = None  # hash of the state without ts/nonce/rssi
    state: bytes | None = None  # the latest state payload (sent or pending)
    good: bytes | None = None  # the last state from a trusted record (often `state` itself)
    pending: bool = False
    status: KeyStatus | None = None
    discovery_sig: tuple[Any, ...] | None = None
    cells: int = 0  # the highest cell count seen: discovery never drops a cell that blinks
    held: dict[str, Any] = field(default_factory=dict)  # values as published (deadbands)
    # The last trusted state's values before deadbands, where they replaced any (only those:
    # the rest is `good`; the whole state with extra_state, which `good` has merged in).
    exact: dict[str, Any] | None = None


@dataclass(slots=True)
class Budget:
    """A token bucket: `rate` messages per second, bursts of up to `burst`; `spend(now)` says
    whether one more may go. Caps what a flood of addresses from the air can make us send."""

    rate: float
    burst: float
    at: float
    tokens: float = -1.0  # -1: full at the start

    def spend(self, now: float) -> bool:
        full = self.burst if self.tokens < 0 else self.tokens + (now - self.at) * self.rate
        self.tokens, self.at = min(self.burst, full), now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def _near(old: Any, new: Any, band: float) -> bool:
    """Both numbers, less than `band` apart."""
    if type(old) is float and type(new) is float:  # nearly every case (cells, volts): fast
        return abs(new - old) < band - 1e-9
    numbers = (int, float)
    if isinstance(old, bool) or isinstance(new, bool):
        return False
    return isinstance(old, numbers) and isinstance(new, numbers) and abs(new - old) < band - 1e-9


# One encoder for every payload: json.dumps with options builds a new one on each call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode()


def _encode(obj: Mapping[str, Any]) -> tuple[bytes, int]:
    """The payload, and a hash of everything but ts/nonce/rssi — one JSON encoding, not two:
    the volatile keys go first, the rest is encoded once and hashed."""
    rest = dict(obj)
    head = {k: rest.pop(k) for k in _VOLATILE if k in rest}
    text = _ENCODER.encode(rest)
    if head and len(text) > 2:
        return (_ENCODER.encode(head)[:-1] + "," + text[1:]).encode(), hash(text)
    return _json(obj), hash(text)


class Publisher:
    """Per-device publishing state; bounded (see the module docstring)."""

    def __init__(
        self,
        cfg: MqttConfig,
        keys: Mapping[str, Any],
        *,
        hostname: str = "",
        names: Callable[[str], str | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        extra_state: Callable[[str], Mapping[str, Any]] | None = None,
        demo: bool = False,
        unheard: Callable[[str], bool] | None = None,
    ) -> None:
        self.cfg = cfg
        # A demo run (emulated devices): named so in HA, and removed when it stops cleanly.
        self.demo = demo
        self.unheard = unheard  # serve --source mqtt: every receiver of the device is gone
        self.bands = {k: v for k, v in cfg.deadband if v > 0}
        self.keys = keys
        self.hostname = hostname
        self.names = names or (lambda _address: None)
        self.extra_state = extra_state  # fields added to each state (serve --source mqtt)
        self.clock = clock
        self.keyed: dict[str, _Device] = {}
        self.unkeyed: OrderedDict[str, _Device] = OrderedDict()
        self.evicted = 0
        self.throttled = 0  # unkeyed messages not sent because of the global budget
        self._budget = Budget(UNKEYED_RATE, UNKEYED_BURST, clock())
        self.prefix = cfg.topic_prefix
        self.found_own: set[str] = set()  # addresses of our configs found on the broker
        self.found_own_ids: set[str] = set()  # object ids of all our configs found there
        from victron_ble_bms.banks import declared_banks

        from .bank import BankPublisher  # here: mqtt/bank.py uses Outgoing

        self.banks = BankPublisher(cfg, declared_banks(keys), clock=clock)  # issue 20
        self.banks.demo = demo

    # --- whole-bridge messages ---------------------------------------------------------------
    def bridge_online(self) -> list[Outgoing]:
        """On every (re)connect: the bridge, every known device's config, availability and
        latest state — the broker may have restarted and lost everything retained."""
        out: list[Outgoing] = []
        if self.cfg.discovery:
            topic, payload = discovery.bridge_config(self.cfg, self.hostname, demo=self.demo)
            out.append(Outgoing(topic, _json(payload), retain=True, qos=1))
        out.append(self._bridge(topics.ONLINE))
        for dev in self.keyed.values():
            if dev.discovery_sig is not None and self.cfg.discovery:
                out.extend(self._discovery_message(dev))
            out.append(self._availability(dev))
            if dev.state is not None:  # retained: the broker may have lost it
                out.append(self._state_message(dev))
        return out + self.banks.online()

    def rediscover(self) -> list[Outgoing]:
        """Home Assistant came online (`<discovery_prefix>/status`): send the configs again."""
        return self.bridge_online()

    def bridge_offline(self) -> list[Outgoing]:
        """On a clean stop: every device and the bridge offline (retained). A demo run removes
        everything it published instead: made-up devices must not stay in Home Assistant."""
        if self.demo:
            return self.remove_everything()
        out = []
        for dev in self.keyed.values():
            dev.online = False
            out.append(self._availability(dev))
        out.append(self._bridge(topics.OFFLINE))
        return out

    def remove_everything(self) -> list[Outgoing]:
        """Empty retained payloads for every device this instance published, then its bridge."""
        out: list[Outgoing] = []
        for dev in self.keyed.values():
            dev.online = False
            out.extend(self.removal(dev.address))
        for address in self.found_own - set(self.keyed):  # left by an earlier run, not heard yet
            out.extend(self.removal(address))
        out.extend(self.banks.keys_changed({}))  # every bank it declared: no bank left either
        removed = {m.topic for m in out}
        for object_id in sorted(self.found_own_ids):  # banks too, from an earlier run
            topic = topics.discovery_topic(self.cfg.discovery_prefix, object_id)
            if topic not in removed:
                out.append(Outgoing(topic, b"", retain=True, qos=1))
        if self.cfg.discovery:
            object_id = topics.bridge_object_id(self.prefix, self.cfg.instance)
            topic = topics.discovery_topic(self.cfg.discovery_prefix, object_id)
            out.append(Outgoing(topic, b"", retain=True, qos=1))
        out.append(self._bridge(""))
        return out

    def will(self) -> Outgoing:
        return self._bridge(topics.OFFLINE)

    def _bridge(self, payload: str) -> Outgoing:
        return Outgoing(
            topics.bridge_availability_topic(self.prefix, self.cfg.instance),
            payload.encode(),
            retain=True,
            qos=1,
        )

    def _availability(self, dev: _Device) -> Outgoing:
        return Outgoing(
            topics.availability_topic(self.prefix, dev.address),
            (topics.ONLINE if dev.online else topics.OFFLINE).encode(),
            retain=True,
            qos=1,
        )

    # --- readings ------------------------------------------------------------------------------
    def _device(self, address: str, now: float) -> _Device:
        if address in self.keys:
            dev = self.keyed.get(address)
            if dev is None:
                dev = self.unkeyed.pop(address, None) or _Device(address, True, now)
                dev.keyed = True
                self.keyed[address] = dev
            return dev
        dev = self.unkeyed.get(address)
        if dev is not None:
            self.unkeyed.move_to_end(address)
            return dev
        dev = self.keyed.pop(address, None) or _Device(address, False, now)
        dev.keyed = False
        self.unkeyed[address] = dev
        while len(self.unkeyed) > self.cfg.max_devices:
            self.unkeyed.popitem(last=False)
            self.evicted += 1
        return dev

    def _name(self, dev: _Device, reading: Reading) -> str | None:
        configured = self.names(dev.address)
        if configured:
            return configured
        if dev.keyed:
            # Anyone in range can advertise any name with a keyed device's address: its Home
            # Assistant device is named by the keys file, else by its product (issue 18).
            return None
        if dev.name is None and reading.advertisement.name:
            dev.name = plain(reading.advertisement.name, discovery.MAX_NAME)  # first name heard
        return dev.name

    def reading(self, reading: Reading) -> list[Outgoing]:
        return self._device_reading(reading) + self.banks.reading(reading)

    def _device_reading(self, reading: Reading) -> list[Outgoing]:
        now = self.clock()
        address = reading.advertisement.address
        dev = self._device(address, now)
        dev.last_seen = now
        out: list[Outgoing] = []
        status_changed = dev.status is not reading.status
        dev.status = reading.status
        if not dev.keyed:
            # Unkeyed: status changes and heartbeats only, within the global budget; the JSON
            # is built only when it goes out (a flood costs little CPU).
            beat = dev.last_sent is None or now - dev.last_sent >= self.cfg.heartbeat_s
            if (status_changed or beat) and self._spend(now):
                obj = state_object(reading, self._name(dev, reading))
                if self.extra_state is not None:  # which receiver heard it: for these too
                    obj = {**obj, **self.extra_state(address)}
                dev.state = _json(obj)
                out.append(self._state(dev, now))
            return out
        record = reading.record
        suspect = getattr(reading, "suspect", None)
        name = self._name(dev, reading)
        obj = state_object(reading, name)
        # The record's own list (`Record.implausible`, in its JSON when not empty): read from
        # the state, not asked again — the checks cost as much as the rest of the state.
        implausible = obj.get("implausible", ()) if record is not None else ()
        if record is not None and (suspect or implausible):
            reason = suspect or (
                "implausible — wrong key or corrupt frame? " + "; ".join(implausible)
            )
            base = json.loads(dev.good) if dev.good is not None else obj
            if dev.good is not None:
                base.pop("suspect", None)  # a note the good state carried is its frame's own
            shown = shown_suspect(reading, dev.good is not None) if suspect else reason
            obj = {**base, "suspect": plain(shown)} if shown else base
            trusted = False
        else:
            trusted = record is not None
            if trusted and self.bands:
                exact = dict(obj) if self.extra_state is not None else None
                moved = self._hold(dev, obj)
                # What the deadbands replaced (few values, usually), for `pending`; serve
                # --source mqtt keeps the whole state: its extra fields are not in it.
                dev.exact = exact if exact is not None else moved
        # A partial record (protocol branch: fields not received) would offer too few cells.
        partial = bool(getattr(record, "partial", False))
        if trusted and self.cfg.discovery and not partial:
            out.extend(self._discovery(dev, obj, name))
        if not dev.online:
            dev.online = True
            out.append(self._availability(dev))
        if self.extra_state is not None:
            obj = {**obj, **self.extra_state(address)}
        dev.state, signature = _encode(obj)
        if trusted:
            dev.good = dev.state
        changed = signature != dev.signature
        dev.signature = signature
        due = dev.last_sent is None or now - dev.last_sent >= self.cfg.min_interval_s
        if changed or (dev.last_sent is not None and now - dev.last_sent >= self.cfg.heartbeat_s):
            if due:
                out.append(self._state(dev, now))
            else:
                dev.pending = True
        return out

    def _hold(self, dev: _Device, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Deadbands: keep each published value until the new one is at least its band away.
        Returns the exact values it replaced (by key), None when it replaced none."""
        moved: dict[str, Any] | None = None
        for key, band in self.bands.items():
            if key not in obj:
                continue
            exact = new = obj[key]
            old = dev.held.get(key)
            if isinstance(new, list):
                if isinstance(old, list) and len(old) == len(new):
                    new = [o if _near(o, n, band) else n for o, n in zip(old, new, strict=True)]
                    obj[key] = new
                    if any(h is not n for h, n in zip(new, exact, strict=True)):
                        moved = moved or {}
                        moved[key] = exact
            elif _near(old, new, band):
                obj[key] = new = old
                moved = moved or {}
                moved[key] = exact
            dev.held[key] = new
        return moved

    def _spend(self, now: float) -> bool:
        if self._budget.spend(now):
            return True
        self.throttled += 1
        return False

    def _state(self, dev: _Device, now: float) -> Outgoing:
        dev.last_sent = now
        dev.pending = False
        return self._state_message(dev)

    def _state_message(self, dev: _Device) -> Outgoing:
        assert dev.state is not None  # noqa: S101 - set before any state is sent
        # Retained only for keyed devices: a flood of random addresses must not leave
        # thousands of retained topics on the broker.
        return Outgoing(topics.state_topic(self.prefix, dev.address), dev.state, retain=dev.keyed)

    def _discovery(self, dev: _Device, obj: Mapping[str, Any], name: str | None) -> list[Outgoing]:
        cells = obj.get("cell_voltages_v")
        if isinstance(cells, list):
            present = [i for i, v in enumerate(cells) if v is not None]
            dev.cells = max(dev.cells, present[-1] + 1 if present else 0)
        sig: tuple[Any, ...] = (name, dev.cells, hash(tuple(k for k in obj if k not in _VOLATILE)))
        sig += (obj.get("record_type_id"), obj.get("provisional"), obj.get("product"))
        if sig == dev.discovery_sig:
            return []
        dev.discovery_sig = sig
        return self._discovery_message(dev, obj, name)

    def _discovery_message(
        self, dev: _Device, obj: Mapping[str, Any] | None = None, name: str | None = None
    ) -> list[Outgoing]:
        """The device's discovery document, rebuilt from its last good state (not kept: at
        several kB per device it would dominate memory with thousands of devices)."""
        if obj is None:
            if dev.good is None or dev.discovery_sig is None:
                return []
            obj = json.loads(dev.good)
            name = dev.discovery_sig[0]
        topic, payload = discovery.device_config(
            self.cfg, dev.address, name, obj, cell_count=dev.cells, demo=self.demo
        )
        return [Outgoing(topic, _json(payload), retain=True, qos=1)]

    # --- time ---------------------------------------------------------------------------------
    def tick(self) -> list[Outgoing]:
        now = self.clock()
        out: list[Outgoing] = []
        for dev in self.keyed.values():
            gone = self.unheard is not None and dev.online and self.unheard(dev.address)
            if dev.online and (gone or now - dev.last_seen > self.cfg.stale_after_s):
                dev.online = False
                dev.pending = False
                out.append(self._availability(dev))
                continue
            if not dev.online or dev.state is None or dev.last_sent is None:
                continue
            since = now - dev.last_sent
            if (dev.pending and since >= self.cfg.min_interval_s) or since >= self.cfg.heartbeat_s:
                out.append(self._state(dev, now))
        return out + self.banks.tick()

    def pending(self) -> list[Outgoing]:
        """Every change still held back by `min_interval_s`, now: the source has ended (a
        capture replayed), so there is no later tick to send them."""
        now = self.clock()
        for dev in self.keyed.values():
            # The source is done: its last values exactly, not within their deadbands.
            if dev.exact is not None and dev.good == dev.state and dev.state is not None:
                if self.extra_state is not None:  # the whole exact state was kept
                    obj = {**dev.exact, **self.extra_state(dev.address)}
                else:  # the state as published, with the values the deadbands replaced
                    obj = {**json.loads(dev.state), **dev.exact}
                payload, dev.signature = _encode(obj)
                if payload != dev.state:
                    dev.state = dev.good = payload
                    dev.held = {k: obj[k] for k in self.bands if k in obj}
                    dev.pending = True
        return [self._state(dev, now) for dev in self.keyed.values() if dev.pending and dev.state]

    # --- keys file ----------------------------------------------------------------------------
    def forget_unkeyed(self) -> list[Outgoing]:
        """The keys file changed: devices no longer in it lose their HA entities (empty
        retained config), their retained availability and their retained state."""
        out: list[Outgoing] = []
        for address in [a for a in self.keyed if a not in self.keys]:
            dev = self.keyed.pop(address)
            out.extend(self.removal(dev.address))
        from victron_ble_bms.banks import declared_banks

        return out + self.banks.keys_changed(declared_banks(self.keys))

    def removal(self, address: str) -> list[Outgoing]:
        """Empty retained payloads (MQTT's way to delete them): the entities first, so Home
        Assistant has removed them before their state topic is cleared."""
        object_id = topics.discovery_object_id(self.prefix, address)
        return [
            Outgoing(topics.discovery_topic(self.cfg.discovery_prefix, object_id), b"", True, 1),
            Outgoing(topics.availability_topic(self.prefix, address), b"", True, 1),
            Outgoing(topics.state_topic(self.prefix, address), b"", True, 1),
        ]

    def stale_configs(self, found: Mapping[str, str | None]) -> list[Outgoing]:
        """Retained discovery documents found on the broker (object id → the `via_device` in
        it) that this instance published — its bridge is their `via_device` — but whose device
        is not in the keys file any more (removed while `serve` was not running). Another
        instance's configs, on the same prefix or not, are never touched."""
        ours = topics.prefix_id(self.prefix) + "_"
        me = discovery.bridge_identifier(self.cfg)
        wanted = {topics.node_id(a) for a in self.keys}
        out: list[Outgoing] = []
        for object_id, via in found.items():
            if via != me or not object_id.startswith(ours):
                continue
            self.found_own_ids.add(object_id)
            node = object_id[len(ours) :]
            if len(node) != 12 or not node.isalnum():
                continue
            address = ":".join(node[i : i + 2] for i in range(0, len(node), 2)).upper()
            if node in wanted:
                self.found_own.add(address)  # a demo removes these too when it stops
            else:
                out.extend(self.removal(address))
        return out

    def __len__(self) -> int:
        return len(self.keyed) + len(self.unkeyed)
