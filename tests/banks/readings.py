"""Readings for bank tests, made the way a receiver makes them: a record encoded to a frame
with a key, then decoded by `decode_advertisement` (the sources' own path)."""

from __future__ import annotations

from victron_ble_bms.protocol import COMPANY_ID, Record, SmartLithiumRecord, encode
from victron_ble_bms.protocol.enums import BalancerStatus, BmsFlags, SmartLithiumErrorFlags
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.readings import Reading, decode_advertisement

KEY = bytes(range(16))
ALLOWED = BmsFlags.ALLOWED_TO_CHARGE | BmsFlags.ALLOWED_TO_DISCHARGE


def address(i: int) -> str:
    return f"C0:00:00:00:00:{i:02X}"


def battery(
    cells: tuple[float, ...] = (3.30, 3.30, 3.30, 3.30),
    *,
    flags: BmsFlags = ALLOWED,
    temperature_c: int = 20,
) -> SmartLithiumRecord:
    padded = tuple(cells) + (None,) * (8 - len(cells))
    return SmartLithiumRecord(
        flags,
        SmartLithiumErrorFlags(0),
        padded,
        round(sum(cells), 2),
        BalancerStatus.BALANCED,
        temperature_c,
    )


def reading(i: int, record: Record, ts: float = 1000.0, key: bytes = KEY) -> Reading:
    """`record` as device `i` sends it, decoded with `key` (KEY unless a wrong one is wanted)."""
    data = encode(record, key=KEY, nonce=i + 1, model_id=0xA3A4)
    adv = Advertisement(ts, address(i), {COMPANY_ID: data}, rssi=-60, origin="test")
    return decode_advertisement(adv, {address(i): key})


def truncated(i: int, record: Record, cut: int, ts: float = 1000.0) -> Reading:
    """A frame `cut` bytes short, as a receiver gets one that was cut off: a partial record."""
    data = encode(record, key=KEY, nonce=i + 1, model_id=0xA3A4)[:-cut]
    adv = Advertisement(ts, address(i), {COMPANY_ID: data}, rssi=-60, origin="test")
    return decode_advertisement(adv, {address(i): KEY})


def no_key(i: int, record: Record, ts: float = 1000.0) -> Reading:
    data = encode(record, key=KEY, nonce=i + 1, model_id=0xA3A4)
    adv = Advertisement(ts, address(i), {COMPANY_ID: data}, rssi=-60, origin="test")
    return decode_advertisement(adv, {})
