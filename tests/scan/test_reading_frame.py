"""The device table's hot path leaves a good reading's header to be read from the frame's bytes
when first asked for (`Reading.frame`, issue 12): it must be the header the general path gives,
and the reading must behave as one built with it (equality, copy, pickle, repr)."""

from __future__ import annotations

import copy
import dataclasses
import pickle

from victron_ble_bms.protocol import COMPANY_ID, Frame, decode, encode, parse_frame
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.devices import DevicesState, Outcome
from victron_ble_bms.sources.readings import _FRAME_SLOT, Reading

# A real SmartShunt capture, from keshavdv/victron-ble's tests (docs/protocol.md
# §6): header byte1 0x02, model 0xA389, record 0x02, nonce 0x40B0, key check
# 0xAF, 15 bytes of ciphertext.
ADDRESS = "C0:11:00:00:00:0A"
KEY = "aff4d0995b7d1e176c0c33ecb9e70dcd"
ADVERT = bytes.fromhex("100289a302b040af925d09a4d89aa0128bdef48c6298a9")
HEADER = Frame(0x02, 41865, 0x02, 0x40B0, 0xAF, ADVERT[8:])
T0 = 1_700_000_000.0


def _tables() -> tuple[DevicesState, DevicesState, Advertisement]:
    """Two tables that heard the device's previous frame; the real frame comes next."""
    record = decode(ADVERT, KEY)
    before = encode(record, key=KEY, nonce=0x40B0 - 1, model_id=41865, byte1=0x02)
    fast, general = DevicesState({ADDRESS: KEY}), DevicesState({ADDRESS: KEY})
    for table in (fast, general):
        table.update(Advertisement(T0, ADDRESS, {COMPANY_ID: before}, rssi=-70))
    return fast, general, Advertisement(T0 + 1, ADDRESS, {COMPANY_ID: ADVERT}, rssi=-71)


def test_hot_path_reading_has_the_frames_header() -> None:
    fast, general, adv = _tables()
    got = fast.update(adv)
    want = general._update(adv, ADVERT)  # the general path builds the Frame at once
    assert got.outcome is want.outcome is Outcome.NEW
    assert got.reading is not None and want.reading is not None
    assert type(_FRAME_SLOT.__get__(got.reading, Reading)) is bytes  # the hot path: not read yet
    assert got.reading.frame == HEADER == want.reading.frame == parse_frame(ADVERT)
    assert type(_FRAME_SLOT.__get__(got.reading, Reading)) is Frame  # read once, then kept
    assert got.reading.frame is got.reading.frame


def test_lazy_reading_behaves_as_one_built_with_its_frame() -> None:
    fast, general, adv = _tables()
    lazy = fast.update(adv).reading
    built = general._update(adv, ADVERT).reading
    assert lazy is not None and built is not None
    assert lazy == built
    lazy = fast.update(Advertisement(T0 + 2, ADDRESS, {COMPANY_ID: _next_frame()})).reading
    assert lazy is not None and type(_FRAME_SLOT.__get__(lazy, Reading)) is bytes
    for other in (
        copy.copy(lazy),
        copy.deepcopy(lazy),
        pickle.loads(pickle.dumps(lazy)),  # noqa: S301 (our own bytes)
        dataclasses.replace(lazy, suspect="x"),
    ):
        assert other.frame == lazy.frame and other.frame is not None
        assert other.frame.nonce == 0x40B1
    assert "nonce=16561" in repr(lazy)
    try:
        lazy.frame = None  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("Reading.frame must stay read-only")


def _next_frame() -> bytes:
    return encode(decode(ADVERT, KEY), key=KEY, nonce=0x40B1, model_id=41865, byte1=0x02)
