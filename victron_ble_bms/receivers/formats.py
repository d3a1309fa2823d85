"""Gateway messages → `Advertisement`s, one parser per format, and the encoder of our own.

Formats (checked against each tool's own source; sample payloads are test constants in
tests/receivers/test_formats.py):

* **BTtoMQTT** — Theengs Gateway (PyPI `theengsgateway`) and OpenMQTTGateway publish each
  advertisement as JSON on `home/<gateway>/BTtoMQTT/<MAC without colons>`:
  `{"id": "AA:BB:CC:DD:EE:FF", "rssi": -70, "name": "…", "manufacturerdata": "e102…"}`.
  `manufacturerdata` is hex of the company id (little-endian, `e102` = 0x02E1) followed by the
  data (Theengs `ble_gateway.py` `detection_callback`: `struct.pack("<H", company_id).hex()`).
  Theengs Gateway decodes Victron frames itself as model `VICTRON_ENCR` and then drops
  `manufacturerdata` unless started with `--publish_advdata 1`; OpenMQTTGateway needs
  `{"pubadvdata": true}` on `home/<gw>/commands/MQTTtoBT/config`. Neither sends a timestamp,
  so the time of arrival is used. Give Theengs Gateway no `bindkeys` for Victron devices: it
  would replace the frame with its own decryption (type 0x11), which we do not accept.
* **raw** — our own `serve --publish-raw` (a small receiver forwards, a bigger box decodes):
  topic `<prefix>/raw/<receiver-id>`, JSON
  `{"v": 1, "ts": 1700000000.5, "address": "AA:BB:CC:DD:EE:FF", "rssi": -70, "name": "…",
  "manufacturer_data": {"737": "1000a3a0…"}}` — company ids as decimal strings, data hex
  WITHOUT the company id (as bleak gives it). `name` and `rssi` may be null or absent.

Everything here is pure (no MQTT client): a message is `(topic, payload bytes)`. Anything
malformed raises `MessageError` with one line saying what is wrong; nothing else escapes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from victron_ble_bms.protocol import COMPANY_ID
from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.advertisement import (
    AddressError,
    Advertisement,
    epoch_seconds,
    normalize_address,
)

RAW_VERSION = 1
# An advertisement is at most 31 bytes (legacy) or 255 (extended), so a gateway message with
# its JSON keys is well under 4 KiB; anything larger is refused before it is parsed.
MAX_PAYLOAD_BYTES = 4096
MAX_MANUFACTURER_BYTES = 255
MAX_RECEIVER_ID = 64
MAX_NAME = 248  # a Bluetooth local name is at most 248 bytes
# A receiver forwards what it hears at once, so its `ts` is this machine's now give or take the
# two clocks' difference. Further off, the receiver's clock is wrong (a Pi without a real-time
# clock before NTP) or the message is forged: times drive the device table's replay checks and
# staleness, so such a message is refused (one line says which) rather than believed.
MAX_CLOCK_SKEW_S = 600.0


class MessageError(ValueError):
    """A message that is not a usable advertisement; the text is one line for a log."""


@dataclass(frozen=True, slots=True)
class Heard:
    """One advertisement as one receiver heard it."""

    receiver: str
    advertisement: Advertisement
    gateway: str  # "theengs/omg" (BTtoMQTT) or "raw"


def raw_topic(prefix: str, receiver: str) -> str:
    """`<prefix>/raw/<receiver>` — the topic `serve --publish-raw` publishes on."""
    return f"{prefix}/raw/{receiver}"


def encode_raw(adv: Advertisement) -> bytes:
    """Our raw format for one advertisement (the payload for `raw_topic`)."""
    obj: dict[str, Any] = {
        "v": RAW_VERSION,
        "ts": adv.ts,
        "address": adv.address,
        "rssi": adv.rssi,
        "name": adv.name,
        "manufacturer_data": {
            str(cid): bytes(data).hex() for cid, data in adv.manufacturer_data.items()
        },
    }
    return json.dumps(obj, separators=(",", ":")).encode()


def parse_message(topic: str, payload: bytes, now: float) -> Heard:
    """One MQTT message → what a receiver heard. Raises `MessageError`."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MessageError(f"payload of {len(payload)} bytes is larger than {MAX_PAYLOAD_BYTES}")
    parts = topic.split("/")
    if len(parts) >= 3 and parts[-2] == "raw":
        return _parse_raw(parts[-1], _json_object(payload), now)
    if len(parts) >= 3 and parts[-2] == "BTtoMQTT":
        return _parse_bttomqtt(parts[-3], _json_object(payload), now)
    raise MessageError(
        f"unknown gateway topic {plain(topic)[:80]!r} (expected …/BTtoMQTT/<mac> or …/raw/<id>)"
    )


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise MessageError("not JSON") from None
    if not isinstance(obj, dict):
        raise MessageError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _receiver_id(text: str) -> str:
    if not text or len(text) > MAX_RECEIVER_ID:
        raise MessageError(f"receiver id must be 1–{MAX_RECEIVER_ID} characters")
    return plain(text)


def _address(value: Any) -> str:
    if not isinstance(value, str):
        raise MessageError(f"address: expected text, got {type(value).__name__}")
    try:
        return normalize_address(value[:64])
    except AddressError:
        raise MessageError(f"address {plain(value)[:40]!r} is not a Bluetooth address") from None


def _rssi(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MessageError(f"rssi: expected a number, got {type(value).__name__}")
    if not (isinstance(value, int) or math.isfinite(value)) or not -127 <= value <= 20:
        raise MessageError(f"rssi {str(value)[:20]} is not a signal strength in dBm")
    return int(value)


def _name(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MessageError(f"name: expected text, got {type(value).__name__}")
    return value[:MAX_NAME]


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise MessageError(f"{what}: expected hex text, got {type(value).__name__}")
    if len(value) > 2 * MAX_MANUFACTURER_BYTES + 4:
        raise MessageError(f"{what}: longer than an advertisement")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise MessageError(f"{what}: not hex") from None


def _parse_bttomqtt(gateway: str, obj: dict[str, Any], now: float) -> Heard:
    address = _address(obj.get("id", obj.get("mac")))
    mdata: dict[int, bytes] = {}
    if "manufacturerdata" in obj:
        data = _hex(obj["manufacturerdata"], "manufacturerdata")
        if len(data) < 2:
            raise MessageError("manufacturerdata: shorter than a company id")
        mdata[int.from_bytes(data[:2], "little")] = data[2:]
    adv = Advertisement(
        ts=now,
        address=address,
        manufacturer_data=mdata,
        rssi=_rssi(obj.get("rssi")),
        name=_name(obj.get("name")),
        origin="mqtt:bttomqtt",
    )
    return Heard(_receiver_id(gateway), adv, "theengs/omg")


def _parse_raw(receiver: str, obj: dict[str, Any], now: float) -> Heard:
    if obj.get("v") != RAW_VERSION:
        raise MessageError(f"raw format version {str(obj.get('v'))[:10]!r}, expected {RAW_VERSION}")
    ts = epoch_seconds(obj.get("ts"))
    if ts is None:
        raise MessageError("ts: expected seconds since the epoch")
    if abs(ts - now) > MAX_CLOCK_SKEW_S:
        raise MessageError(
            f"ts: {ts - now:+.0f} s from this machine's clock (is the receiver's clock set?)"
        )
    table = obj.get("manufacturer_data")
    if not isinstance(table, dict):
        raise MessageError("manufacturer_data: expected an object of company id → hex")
    if len(table) > 16:
        raise MessageError("manufacturer_data: more entries than an advertisement holds")
    mdata: dict[int, bytes] = {}
    for cid, hexdata in table.items():
        # ASCII digits only: "²" is a digit to str.isdigit() but not to int().
        ok = isinstance(cid, str) and cid.isascii() and cid.isdigit() and len(cid) <= 5
        if not (ok and int(cid) <= 0xFFFF):
            raise MessageError(f"manufacturer_data: {plain(str(cid))[:20]!r} is not a company id")
        mdata[int(cid)] = _hex(hexdata, f"manufacturer_data[{cid}]")
    adv = Advertisement(
        ts=ts,
        address=_address(obj.get("address")),
        manufacturer_data=mdata,
        rssi=_rssi(obj.get("rssi")),
        name=_name(obj.get("name")),
        origin="mqtt:raw",
    )
    return Heard(_receiver_id(receiver), adv, "raw")


def victron_only(heard: Heard) -> bool:
    """True when the advertisement carries Victron data (the rest of a busy gateway is noise)."""
    return COMPANY_ID in heard.advertisement.manufacturer_data
