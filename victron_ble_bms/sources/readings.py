"""An advertisement plus what decoding it gave: a record, or the reason there is none."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields

from victron_ble_bms.protocol import (
    COMPANY_ID,
    DecodeError,
    Frame,
    KeyMismatch,
    NotInstantReadout,
    Record,
    UnsupportedRecord,
    decode,
    decode_frame,
    parse_frame,
)
from victron_ble_bms.protocol.crypto import KeyLike
from victron_ble_bms.protocol.envelope import make_frame

from .advertisement import Advertisement


class KeyStatus(enum.Enum):
    NO_KEY = "no key"
    OK = "ok"
    MISMATCH = "key mismatch"
    UNDECODABLE = "undecodable"  # unsupported record, truncated frame …
    NOT_VICTRON = "not instant readout"  # no Victron data, or not record type 0x10


@dataclass(frozen=True, slots=True)
class Reading:
    advertisement: Advertisement
    status: KeyStatus
    frame: Frame | None = None
    record: Record | None = None
    error: str | None = None  # the specific message when there is no record


def _slot_builder() -> Callable[[Advertisement, Frame, Record], Reading]:
    """`Reading(adv, OK, frame, record)` through its slots, every other field at its default:
    the same object at a fraction of the frozen dataclass __init__ (the hot path)."""
    setters = {f.name: getattr(Reading, f.name).__set__ for f in fields(Reading)}
    rest = [
        (setters[f.name], f.default)
        for f in fields(Reading)
        if f.name not in ("advertisement", "status", "frame", "record")
    ]
    if any(default is MISSING for _, default in rest):  # a new field without a default
        return lambda adv, frame, record: Reading(adv, KeyStatus.OK, frame, record)
    set_adv, set_status = setters["advertisement"], setters["status"]
    set_frame, set_record = setters["frame"], setters["record"]
    new, ok = object.__new__, KeyStatus.OK

    def build(adv: Advertisement, frame: Frame, record: Record) -> Reading:
        reading = new(Reading)
        set_adv(reading, adv)
        set_status(reading, ok)
        set_frame(reading, frame)
        set_record(reading, record)
        for setter, default in rest:
            setter(reading, default)
        return reading

    return build


_ok_reading = _slot_builder()


def decode_advertisement(adv: Advertisement, keys: Mapping[str, KeyLike]) -> Reading:
    """Decode with the key stored for the advertisement's address (keys by normalised address)."""
    data = adv.manufacturer_data.get(COMPANY_ID)
    key = keys.get(adv.address)
    # Hot path: an encrypted Instant Readout frame with a key; `decode` checks the rest.
    if key is not None and type(data) is bytes and len(data) > 8 and data[0] == 0x10:
        if data[4] != 0xFF:
            try:
                record = decode(data, key)
            except DecodeError:
                pass  # the path below gives the specific status and message
            else:
                frame = make_frame(
                    data[1], data[2] | data[3] << 8, data[4], data[5] | data[6] << 8, data[7],
                    data[8:],
                )  # fmt: skip
                return _ok_reading(adv, frame, record)
    if data is None:
        return Reading(adv, KeyStatus.NOT_VICTRON, error="no Victron manufacturer data")
    try:
        frame = parse_frame(data)
    except NotInstantReadout as exc:
        return Reading(adv, KeyStatus.NOT_VICTRON, error=str(exc))
    except DecodeError as exc:
        return Reading(adv, KeyStatus.UNDECODABLE, error=str(exc))
    if key is None and frame.encrypted:
        return Reading(adv, KeyStatus.NO_KEY, frame, error=f"no key for {adv.address}")
    try:
        record = decode_frame(frame, key)
    except KeyMismatch as exc:
        return Reading(adv, KeyStatus.MISMATCH, frame, error=str(exc))
    except (UnsupportedRecord, DecodeError) as exc:
        return Reading(adv, KeyStatus.UNDECODABLE, frame, error=str(exc))
    return Reading(adv, KeyStatus.OK, frame, record)
