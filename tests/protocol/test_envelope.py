"""The clear header (docs/protocol.md §1.1, §8.1)."""

from __future__ import annotations

import pytest

from victron_ble_bms import (
    NotInstantReadout,
    TruncatedFrame,
    UnsupportedRecord,
    decode,
    encode,
    parse_frame,
)
from victron_ble_bms.protocol import decode_plaintext

from . import vectors as v


def test_parse_frame_reads_the_header_without_a_key() -> None:
    frame = parse_frame(v.SMARTSHUNT_ADVERT)
    assert frame.byte1 == 0x02
    assert frame.model_id == 0xA389
    assert frame.record_type == 0x02
    assert frame.nonce == 0x40B0
    assert frame.key_check == 0xAF
    assert len(frame.data) == 15
    assert frame.to_bytes() == v.SMARTSHUNT_ADVERT


def test_other_victron_adverts_are_not_instant_readout() -> None:
    # VE.Smart Networking and friends share the company id with another first byte.
    with pytest.raises(NotInstantReadout) as info:
        parse_frame(bytes.fromhex("1100a3a30000"))
    assert info.value.first_byte == 0x11
    with pytest.raises(NotInstantReadout):
        decode(b"", v.SMARTSHUNT_KEY)


@pytest.mark.parametrize("length", [1, 4, 7, 8])
def test_truncated_headers(length: int) -> None:
    with pytest.raises(TruncatedFrame) as info:
        decode(v.SMARTSHUNT_ADVERT[:length], v.SMARTSHUNT_KEY)
    assert info.value.length == length


def test_unknown_record_type() -> None:
    data = bytearray(v.SMARTSHUNT_ADVERT)
    data[4] = 0x42
    with pytest.raises(UnsupportedRecord, match="0x42"):
        decode(bytes(data), v.SMARTSHUNT_KEY)


def test_unencrypted_test_record_needs_no_key() -> None:
    # 0xFF in byte 4, second type byte 0x00 in byte 7, data in clear (docs/protocol.md §1.1).
    # uptime 1000 s in bits 0-29, temperature 25 °C (raw 65) in bits 30-36, unused bits set.
    payload = (1000 | 65 << 30 | ((1 << 40) - (1 << 37))).to_bytes(5, "little")
    frame = bytes.fromhex("1000e5a0ff0100" + "00") + payload
    r = decode(frame, None)
    assert r.record_type == 0xFF00
    assert r.to_dict()["uptime_s"] == 1000 and r.to_dict()["temperature_c"] == 25
    assert encode(r, key=None, nonce=1, model_id=0xA0E5) == frame


def test_other_unencrypted_records_are_named() -> None:
    frame = bytes.fromhex("1000e5a0ff0100" + "01") + b"\x00" * 6
    with pytest.raises(UnsupportedRecord, match="unencrypted record 0xFF01, not supported"):
        decode(frame, None)


def test_more_than_16_data_bytes_decodes_the_first_16() -> None:
    key = "00112233445566778899aabbccddeeff"
    r = decode_plaintext(0x05, bytes.fromhex("000000060000c7e3f1f8ffffff2c35b5"))
    wire = encode(r, key=key, nonce=9, model_id=0xA0E5)
    longer = wire + b"\x01\x02\x03"
    back = decode(longer, key)
    assert back == r
    assert back.frame is not None and back.frame.data_truncated_to_block


def test_byte1_is_kept_not_validated() -> None:
    r = decode_plaintext(0x05, bytes.fromhex("000000060000c7e3f1f8ffffff2c35b5"))
    wire = encode(r, key="11" * 16, nonce=1, model_id=0xA0E5, byte1=0x80)
    back = decode(wire, "11" * 16)
    assert back.frame is not None and back.frame.byte1 == 0x80
