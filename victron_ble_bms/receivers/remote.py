"""Readings that a remote `victron-bms serve` publishes, for the dashboard over the network.

`serve` publishes each device's reading as JSON on `<prefix>/<addr>/state` (the objects of
`decode --format jsonl` plus `key_status`, mqtt/state.py) and `online`/`offline` on
`<prefix>/<addr>/availability` and `<prefix>/bridge/<instance>/availability`. Here each state
message becomes a `Reading` with a typed record again (`protocol.jsonform.record_from_dict`), so the
dashboard draws the same cards, detail pages and codes as for a local radio.

Time: a reading counts from the moment the remote received it (`ts` in the state), not from
when it crossed the network. `RemoteClock` is the dashboard's clock: while the dashboard applies
a reading it reads that reading's `ts`, otherwise the wall clock — so ages and staleness are
those of the data, and a state from an hour ago does not look fresh.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt

from victron_ble_bms.mqtt.config import MqttConfig
from victron_ble_bms.protocol import Frame
from victron_ble_bms.protocol.jsonform import JsonFormError, record_from_dict
from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.advertisement import (
    AddressError,
    Advertisement,
    epoch_seconds,
    normalize_address,
)
from victron_ble_bms.sources.readings import KeyStatus, Reading

from .formats import MAX_PAYLOAD_BYTES
from .stream import config_for, reconnecting

log = logging.getLogger("victron_ble_bms.receivers")

_STATUS = {s.value: s for s in KeyStatus} | {s.name.lower(): s for s in KeyStatus}
_HAS_SUSPECT = "suspect" in {f.name for f in dataclasses.fields(Reading)}  # live branch
# A remote clock ahead of ours by up to this much is believed; more is clamped to our "now".
_MAX_FUTURE_S = 5.0


class StateError(ValueError):
    """A state message that is not a reading; the text is one line."""


class RemoteClock:
    """The dashboard's clock for remote readings (see the module docstring)."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._pinned: float | None = None

    def pin(self, ts: float | None) -> None:
        self._pinned = ts

    def __call__(self) -> float:
        return self._wall() if self._pinned is None else self._pinned


def reading_from_state(payload: bytes, now: float) -> Reading:
    """One state message → the reading it describes. Raises `StateError`."""
    if len(payload) > 4 * MAX_PAYLOAD_BYTES:
        raise StateError(f"state of {len(payload)} bytes is larger than any reading")
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):
        raise StateError("not JSON") from None
    if not isinstance(obj, dict):
        raise StateError(f"expected a JSON object, got {type(obj).__name__}")
    try:
        address = normalize_address(str(obj.get("address"))[:64])
    except AddressError:
        raise StateError("address: not a Bluetooth address") from None
    # A retained state may be old (a device heard last week), so only the range is checked.
    ts = epoch_seconds(obj.get("ts"))
    if ts is None:
        raise StateError("ts: expected seconds since the epoch")
    ts = min(ts, now + _MAX_FUTURE_S)
    rssi = obj.get("rssi")
    if isinstance(rssi, bool) or not isinstance(rssi, int) or not -127 <= rssi <= 20:
        rssi = None
    name = obj.get("name")
    adv = Advertisement(
        ts=ts,
        address=address,
        rssi=rssi,
        name=name[:248] if isinstance(name, str) and name else None,
        origin="mqtt:state",
    )
    extra: dict[str, Any] = {}
    suspect = obj.get("suspect")
    if _HAS_SUSPECT and isinstance(suspect, str) and suspect:
        extra["suspect"] = plain(suspect)
    frame = _frame(obj)
    if "record_type" in obj and obj.get("key_status", "ok") == "ok":
        try:
            record = record_from_dict(obj)
        except JsonFormError as exc:
            raise StateError(str(exc)) from None
        return Reading(adv, KeyStatus.OK, frame, record, **extra)
    status = _STATUS.get(str(obj.get("key_status")))
    if status is None or status is KeyStatus.OK:
        raise StateError(f"key_status {plain(str(obj.get('key_status')))[:30]!r} without a record")
    message = obj.get("message")
    error = plain(message) if isinstance(message, str) and message else status.value
    return Reading(adv, status, frame, None, error, **extra)


def _frame(obj: dict[str, Any]) -> Frame | None:
    """The clear header as far as the state tells it (model, record type, nonce): enough for
    the product name. The encrypted data itself is not published, so `data` is empty."""
    model, record_type = _u16(obj.get("model_id")), _u16(obj.get("record_type_id"))
    if model is None or record_type is None:
        return None
    return Frame(0, model, record_type, _u16(obj.get("nonce")) or 0, None, b"")


def _u16(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFF
    return value if ok else None


async def remote_readings(
    target: str | MqttConfig,
    prefix: str = "victron-ble-bms",
    *,
    clock: RemoteClock | None = None,
    on_note: Callable[[str], None] | None = None,
) -> AsyncIterator[Reading]:
    """Readings from a remote serve's state topics, reconnecting with back-off.

    `clock` is pinned to each reading's `ts` while the consumer applies it. `on_note` gets one
    line when the remote bridge goes offline/online or a state message is malformed.
    """
    cfg = config_for(target)
    state_filter = f"{prefix}/+/state"
    availability_filter = f"{prefix}/+/availability"
    bad = 0

    def note(text: str) -> None:
        if on_note is not None:
            on_note(text)
        else:
            log.warning("%s", text)

    async def read(client: aiomqtt.Client) -> AsyncIterator[Reading]:
        nonlocal bad
        await client.subscribe(state_filter)
        await client.subscribe(availability_filter)
        await client.subscribe(f"{prefix}/bridge/+/availability")
        async for message in client.messages:
            topic = message.topic
            payload = message.payload
            data = payload.encode() if isinstance(payload, str) else payload
            if not isinstance(data, bytes | bytearray):
                continue
            if topic.matches(f"{prefix}/bridge/+/availability"):
                state = bytes(data[:20]).decode(errors="replace")
                instance = plain(topic.value.split("/")[-2], 48)
                note(f"remote serve {plain(state)} ({instance}, {cfg.broker})")
                continue
            if not topic.matches(state_filter):
                continue  # device availability: staleness follows the readings' own time
            if not data:
                continue  # an emptied retained state: the device left the remote's keys file
            try:
                reading = reading_from_state(bytes(data), time.time())
            except Exception as exc:  # noqa: BLE001 - StateError, or a bug: never the feed
                bad += 1
                if bad == 1 or bad % 100 == 0:
                    why = str(exc) if isinstance(exc, StateError) else type(exc).__name__
                    note(f"ignored a state message on {plain(topic.value)[:80]}: {why} ({bad})")
                continue
            if clock is not None:
                clock.pin(reading.advertisement.ts)
            try:
                yield reading
            finally:
                if clock is not None:
                    clock.pin(None)

    async for item in reconnecting(cfg, read, note):
        yield item
