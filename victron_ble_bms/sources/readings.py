"""An advertisement plus what decoding it gave: a record, or the reason there is none."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from victron_ble_bms.protocol import (
    COMPANY_ID,
    DecodeError,
    Frame,
    KeyMismatch,
    NotInstantReadout,
    Record,
    UnsupportedRecord,
    decode,
    parse_frame,
)
from victron_ble_bms.protocol.crypto import KeyLike
from victron_ble_bms.protocol.envelope import encrypted_frame

from .advertisement import Advertisement

NO_KEY_PREFIX = "no key for "  # + the address: a reading's error when no key is stored


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
    # Why this frame looks replayed, forged or implausible, or is an unconfirmed change or a
    # partial frame (set by the live device table, `sources/devices.py`, `sources/confirm.py`);
    # a suspect reading never replaces a device's last good values.
    suspect: str | None = None
    # `suspect` is a change not confirmed *yet* (sources/confirm.py): still never the device's
    # values, but not shown as suspect while last good values stand in for it — a genuine
    # change is confirmed by the device's next frame, and only a change left unconfirmed past
    # `devices.PENDING_SUSPECT_S` is shown (`shown_suspect`).
    pending: bool = False
    # A good frame (its values are the device's) with something to say about the device: a
    # change of codes it sent earlier was never confirmed (devices.py) — a forged frame, most
    # likely. Shown as the device's `suspect` for this frame (`shown_suspect`); never `suspect`
    # itself, so no output holds the good values back for it.
    note: str | None = None


def shown_suspect(reading: Reading, last_good: bool) -> str | None:
    """The `suspect` text a viewer shows beside a device's values after `reading` (MQTT's
    `suspect`, the web page, Signal K's `bms.suspect`, the dashboards), `last_good`: whether the
    viewer has the device's last good values to show instead of this reading's. The one rule
    for every sink: a pending change (`Reading.pending`) is quiet while last good values
    stand; anything else suspect is shown, and a good frame's `note`."""
    suspect = reading.suspect
    if suspect and not (reading.pending and last_good):
        return suspect
    return reading.note


# `frame` is read on demand where a hot path left the frame's bytes in its slot: the header is
# a pure function of them, and most consumers of a good reading never ask for it (the scan
# output and MQTT read it only for readings without a record). Like `Record.frame` (from
# `wire`), but cached: the first read stores the `Frame` in place of the bytes.
_FRAME_SLOT: Any = Reading.__dict__["frame"]  # the slot's member descriptor


def _get_frame(reading: Reading) -> Frame | None:
    frame = _FRAME_SLOT.__get__(reading, Reading)
    if type(frame) is bytes:  # an encrypted frame's data, checked by the hot path that built it
        frame = encrypted_frame(frame)
        _FRAME_SLOT.__set__(reading, frame)
    return frame  # type: ignore[no-any-return]


setattr(Reading, "frame", property(_get_frame, _FRAME_SLOT.__set__))  # noqa: B010
_OK = KeyStatus.OK
_NO_KEY = KeyStatus.NO_KEY


def _ok_reading(adv: Advertisement, frame: Frame | bytes, record: Record) -> Reading:
    """`Reading(adv, OK, frame, record)`."""
    return Reading(adv, _OK, frame, record)  # type: ignore[arg-type]


# The hot paths pass the frame's `data` (manufacturer data already checked to be an encrypted
# Instant Readout frame: byte 0 0x10, more than 8 bytes, byte 4 not 0xFF) for `frame` to be
# read from when asked.
ok_reading_lazy: Callable[[Advertisement, bytes, Record], Reading] = _ok_reading
ok_reading: Callable[[Advertisement, Frame, Record], Reading] = _ok_reading


def no_key_reading_lazy(adv: Advertisement, data: bytes, error: str) -> Reading:
    """`Reading(adv, NO_KEY, frame, error=error)`, with the frame's `data` as above."""
    return Reading(adv, _NO_KEY, data, error=error)  # type: ignore[arg-type]


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
                return ok_reading_lazy(adv, data, record)
    if data is None:
        return Reading(adv, KeyStatus.NOT_VICTRON, error="no Victron manufacturer data")
    try:
        frame = parse_frame(data)
    except NotInstantReadout as exc:
        return Reading(adv, KeyStatus.NOT_VICTRON, error=str(exc))
    except DecodeError as exc:
        return Reading(adv, KeyStatus.UNDECODABLE, error=str(exc))
    return decode_parsed(adv, frame, data, key)


def decode_parsed(adv: Advertisement, frame: Frame, data: bytes, key: KeyLike | None) -> Reading:
    """Decode `data` (whose header `frame` is already parsed) with `key`: a `Reading`, never
    an exception — one bad frame must not end a scan or a capture (issue 9 item 1)."""
    if key is None and frame.encrypted:
        return Reading(adv, KeyStatus.NO_KEY, frame, error=NO_KEY_PREFIX + adv.address)
    try:
        record = decode(data, key)  # the protocol's hot path for complete frames
    except KeyMismatch as exc:
        return Reading(adv, KeyStatus.MISMATCH, frame, error=str(exc))
    except (UnsupportedRecord, DecodeError) as exc:
        return Reading(adv, KeyStatus.UNDECODABLE, frame, error=str(exc))
    except Exception as exc:  # decode promises DecodeError only; a bug must still not escape
        return Reading(
            adv,
            KeyStatus.UNDECODABLE,
            frame,
            error=f"internal decoding error ({type(exc).__name__})",
        )
    return _ok_reading(adv, frame, record)
