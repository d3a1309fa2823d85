"""Keys: any spelling accepted; wrong lengths named; never echoed."""

from __future__ import annotations

import pytest

from victron_ble_bms import InvalidKey, decode
from victron_ble_bms.protocol import mask_key, normalize_key

from . import vectors as v

KEY = bytes.fromhex(v.SMARTSHUNT_KEY)


@pytest.mark.parametrize(
    "spelling",
    [
        "aff4d0995b7d1e176c0c33ecb9e70dcd",
        "AFF4D0995B7D1E176C0C33ECB9E70DCD",
        "0xaff4d0995b7d1e176c0c33ecb9e70dcd",
        "af:f4:d0:99:5b:7d:1e:17:6c:0c:33:ec:b9:e7:0d:cd",
        "aff4 d099 5b7d 1e17 6c0c 33ec b9e7 0dcd",
        "  aff4d099-5b7d-1e17-6c0c-33ecb9e70dcd\n",
        "0xaf 0xf4 0xd0 0x99 0x5b 0x7d 0x1e 0x17 0x6c 0x0c 0x33 0xec 0xb9 0xe7 0x0d 0xcd",
    ],
)
def test_key_spellings(spelling: str) -> None:
    assert normalize_key(spelling) == KEY
    assert decode(v.SMARTSHUNT_ADVERT, spelling).to_dict()["battery_voltage_v"] == 12.53


def test_31_digit_key_names_the_copy_mistake() -> None:
    with pytest.raises(InvalidKey) as info:
        normalize_key(v.SMARTSHUNT_KEY[:31])
    message = str(info.value)
    assert "31" in message and "missing" in message
    assert v.SMARTSHUNT_KEY[:31] not in message


def test_mac_given_as_key_is_named() -> None:
    with pytest.raises(InvalidKey, match="MAC address"):
        normalize_key("AA:BB:CC:DD:EE:FF")


def test_non_hex_key_is_not_echoed() -> None:
    with pytest.raises(InvalidKey) as info:
        normalize_key("zz" * 16)
    assert "zz" not in str(info.value)


def test_invalid_key_is_a_decode_error_from_decode() -> None:
    with pytest.raises(InvalidKey):
        decode(v.SMARTSHUNT_ADVERT, "1234")


def test_mask_shows_first_and_last_byte_only() -> None:
    masked = mask_key(v.SMARTSHUNT_KEY)
    assert masked.startswith("af") and masked.endswith("cd")
    assert "f4d0" not in masked and len([c for c in masked if c in "0123456789abcdef"]) == 4
