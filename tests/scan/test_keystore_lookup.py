"""A key is found by its device's address however the address is written (the scanner and the
dashboard look one up per frame; issue 26 made the lookup of an AA:BB:… address skip
normalising it, so every other spelling must still reach the same entry)."""

from __future__ import annotations

import pytest

from victron_ble_bms.sources.advertisement import AddressError, normalize_address
from victron_ble_bms.sources.keys import KeyStore

KEY = "0123456789abcdef0123456789abcdef"
UUID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


@pytest.fixture
def store() -> KeyStore:
    keys = KeyStore()
    keys.add("AA:BB:CC:0D:1E:2F", KEY)
    keys.add(UUID, KEY)
    return keys


@pytest.mark.parametrize(
    "spelling",
    [
        "AA:BB:CC:0D:1E:2F",
        "aa:bb:cc:0d:1e:2f",
        "Aa:bB:cC:0d:1E:2f",
        "AA-BB-CC-0D-1E-2F",
        "AABBCC0D1E2F",
        " AA:BB:CC:0D:1E:2F\n",
        "AA.BB.CC.0D.1E.2F",
        UUID,
        UUID.upper(),
    ],
)
def test_every_spelling_finds_the_key(store: KeyStore, spelling: str) -> None:
    assert store[spelling] == bytes.fromhex(KEY)
    assert store.get(spelling) == bytes.fromhex(KEY)
    assert spelling in store


@pytest.mark.parametrize(
    "other",
    [
        "AA:BB:CC:0D:1E:20",  # another device, written as entries are
        "GG:BB:CC:0D:1E:2F",  # the same length and colons, not hex
        "AA:BB:CC:0D:1E:2",
        "AA:BB:CC:0D:1E:2F:00",
        "",
        "not an address",
        "A :BB:CC:0D:1E:2F",
    ],
)
def test_anything_else_is_no_key(store: KeyStore, other: str) -> None:
    assert store.get(other) is None
    assert store.get(other, b"default") == b"default"
    assert other not in store
    with pytest.raises(KeyError):
        store[other]


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("AA:BB:CC:0D:1E:2F", "AA:BB:CC:0D:1E:2F"),  # as BlueZ reports it: returned as it is
        ("aa:bb:cc:0d:1e:2f", "AA:BB:CC:0D:1E:2F"),
        ("AA:BB:CC:0D:1E:2F\n", "AA:BB:CC:0D:1E:2F"),
        ("\tAA-BB-CC-0D-1E-2F ", "AA:BB:CC:0D:1E:2F"),
        ("aabbcc0d1e2f", "AA:BB:CC:0D:1E:2F"),
        (UUID, UUID.upper()),
    ],
)
def test_an_address_in_any_spelling_is_normalised(text: str, address: str) -> None:
    assert normalize_address(text) == address


@pytest.mark.parametrize(
    "text", ["GG:BB:CC:0D:1E:2F", "AA:BB:CC:0D:1E:2", "AA:BB:CC:0D:1E:2F:30", "AA:BB:CC:0D:1E", ""]
)
def test_anything_else_is_no_address(text: str) -> None:
    with pytest.raises(AddressError):
        normalize_address(text)
