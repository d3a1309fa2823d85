"""The decoders compiled per record type and length agree with the per-field reading of the
layout table (`Field.extract`, docs/protocol.md §8.1: a field past the received bits is unknown)."""

from __future__ import annotations

import random

import pytest

from victron_ble_bms.protocol import RECORD_CLASSES, decode, decode_plaintext, encode, parse_frame
from victron_ble_bms.protocol.codec import _decode_frame

KEY = bytes.fromhex("0b7e151628aed2a6abf7158809cf4f3c")


def _reference(record_type: int, plaintext: bytes) -> tuple[list[object], tuple[str, ...]]:
    layout = RECORD_CLASSES[record_type].LAYOUT
    data = plaintext[: layout.data_bytes]
    payload, available = int.from_bytes(data, "little"), len(data) * 8
    return [f.extract(payload, available) for f in layout.fields], layout.missing(available)


@pytest.mark.parametrize("record_type", sorted(RECORD_CLASSES))
def test_every_length_matches_the_table(record_type: int) -> None:
    rng = random.Random(record_type)
    layout = RECORD_CLASSES[record_type].LAYOUT
    for n in range(layout.data_bytes + 3):
        for _ in range(40):
            plaintext = rng.randbytes(n)
            record = decode_plaintext(record_type, plaintext)
            values, missing = _reference(record_type, plaintext)
            assert [getattr(record, f.name) for f in layout.fields] == values, (n, plaintext)
            assert record.missing_fields == missing


@pytest.mark.parametrize("record_type", sorted(t for t in RECORD_CLASSES if t <= 0xFF))
def test_hot_path_equals_parse_then_decode(record_type: int) -> None:
    rng = random.Random(record_type)
    size = RECORD_CLASSES[record_type].LAYOUT.data_bytes
    for _ in range(20):
        record = decode_plaintext(record_type, rng.randbytes(size))
        try:
            frame = encode(record, key=KEY, nonce=rng.getrandbits(16), model_id=0xA389)
        except ValueError:
            continue
        frame += rng.randbytes(rng.randint(0, 10))  # longer than 24 bytes, too
        for length in range(9, len(frame) + 1):
            fast = decode(frame[:length], KEY)
            slow = _decode_frame(parse_frame(frame[:length]), KEY)
            assert fast == slow and fast.missing_fields == slow.missing_fields
            assert fast.to_dict() == slow.to_dict()


def test_decode_advertisement_fast_path_is_the_same_reading() -> None:
    from victron_ble_bms.protocol import decode_frame
    from victron_ble_bms.sources.advertisement import Advertisement
    from victron_ble_bms.sources.readings import KeyStatus, Reading, decode_advertisement

    rng = random.Random(5)
    address = "AA:BB:CC:DD:EE:01"
    for record_type in sorted(t for t in RECORD_CLASSES if t <= 0xFF):
        size = RECORD_CLASSES[record_type].LAYOUT.data_bytes
        try:
            record = decode_plaintext(record_type, rng.randbytes(size))
            frame = encode(record, key=KEY, nonce=7, model_id=0xA389)
        except ValueError:
            continue
        for length in (9, len(frame) - 1, len(frame)):
            adv = Advertisement(1.0, address, {0x02E1: frame[:length]}, -60, "n")
            for key in (KEY, KEY.hex(), bytearray(KEY)):
                reading = decode_advertisement(adv, {address: key})
                parsed = parse_frame(frame[:length])
                expected = Reading(adv, KeyStatus.OK, parsed, decode_frame(parsed, KEY))
                assert reading == expected
                assert reading.record is not None
                assert reading.record.missing_fields == expected.record.missing_fields  # type: ignore[union-attr]


def test_cipher_cache_is_bounded_and_keeps_working() -> None:
    from victron_ble_bms.protocol.codec import _CipherCache

    cache = _CipherCache(16)
    keys = [bytes((i,)) * 16 for i in range(100)]
    for key in keys:
        cipher = cache.get(key) or cache.add(key)
        assert cipher.key_check == key[0]
        assert len(cache) <= 16
    assert keys[-1] in cache and keys[0] not in cache  # the oldest went first
    text = keys[-1].hex().upper()
    assert cache.add(text) is cache[keys[-1]]  # a text spelling shares the bytes' cipher
