"""The device table: nonce rules (docs/protocol.md §1.1, §8.3), header-only facts, the LRU bound."""

from __future__ import annotations

import gc
import random
import tracemalloc

import pytest

from victron_ble_bms.protocol import COMPANY_ID
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.devices import DevicesState, Outcome
from victron_ble_bms.sources.readings import KeyStatus

from .fleet import KEY_KEYED, KEY_NOKEY, KEYED, NOKEY, advertisement

T0 = 1_700_000_000.0
KEYS = {KEYED: KEY_KEYED}


def test_repeat_is_not_a_new_reading() -> None:
    table = DevicesState(KEYS)
    first = advertisement(KEYED, KEY_KEYED, 10, T0)
    assert table.update(first).outcome is Outcome.NEW
    again = Advertisement(T0 + 0.1, KEYED, first.manufacturer_data, rssi=-60)  # RSSI-only change
    update = table.update(again)
    assert update.outcome is Outcome.REPEAT and update.reading is None
    dev = table.get(KEYED)
    assert dev is not None
    assert (dev.readings, dev.repeats, dev.rssi) == (1, 1, -60)


def test_same_nonce_different_bytes_is_suspect() -> None:
    table = DevicesState(KEYS)
    table.update(advertisement(KEYED, KEY_KEYED, 10, T0))
    data = bytearray(advertisement(KEYED, KEY_KEYED, 10, T0).manufacturer_data[COMPANY_ID])
    data[-1] ^= 0xFF  # same header and nonce, other ciphertext
    forged = Advertisement(T0 + 1, KEYED, {COMPANY_ID: bytes(data)})
    update = table.update(forged)
    assert update.outcome is Outcome.SUSPECT
    assert update.suspicion is not None and "reused" in update.suspicion
    assert update.reading is not None  # still reported, flagged


def test_small_backwards_jump_is_suspect_and_the_counter_wraps() -> None:
    table = DevicesState(KEYS)
    table.update(advertisement(KEYED, KEY_KEYED, 500, T0))
    back = table.update(advertisement(KEYED, KEY_KEYED, 490, T0 + 1))
    assert back.outcome is Outcome.SUSPECT and "back" in (back.suspicion or "")
    assert back.reading is not None and back.reading.suspect == back.suspicion
    # The 16-bit counter wraps: 65535 → 0 is forward.
    wrap = DevicesState(KEYS)
    wrap.update(advertisement(KEYED, KEY_KEYED, 65535, T0 + 3))
    assert wrap.update(advertisement(KEYED, KEY_KEYED, 0, T0 + 4)).outcome is Outcome.NEW


def test_device_without_key_is_listed_by_product_and_record_type() -> None:
    table = DevicesState(KEYS)
    update = table.update(advertisement(NOKEY, KEY_NOKEY, 3, T0))
    dev = update.device
    assert dev is not None
    assert dev.key_status is KeyStatus.NO_KEY
    # model 0xA0E0 is a 12.8 V Smart Lithium battery; record type 0x05 (docs/protocol.md §3, §2.1)
    assert dev.product is not None and dev.product.startswith("Smart Lithium Battery 12.8V")
    assert dev.record_type == 0x05
    assert update.status_changed


def test_non_victron_advertisements_are_ignored() -> None:
    table = DevicesState(KEYS)
    other = Advertisement(T0, "11:22:33:44:55:66", {0x004C: b"\x02\x15" + bytes(20)})
    assert table.update(other).outcome is Outcome.IGNORED
    assert len(table) == 0


def test_rate_age_and_slow_detection() -> None:
    table = DevicesState(KEYS)
    for i in range(6):  # every 10 s, nonce +10: nine of ten updates lost
        table.update(advertisement(KEYED, KEY_KEYED, 100 + 10 * i, T0 + 10 * i))
    dev = table.get(KEYED)
    assert dev is not None
    assert dev.interval_s == pytest.approx(10)
    assert dev.nonce_step == pytest.approx(10)
    assert dev.slow(5.0)
    assert dev.age(T0 + 53) == pytest.approx(3)
    fast = DevicesState(KEYS)
    for i in range(6):
        fast.update(advertisement(KEYED, KEY_KEYED, 100 + i, T0 + i))
    assert not fast.slow_devices(5.0)


def _flood(table: DevicesState, rng: random.Random, n: int, payload: dict[int, bytes]) -> None:
    for i in range(n):
        address = ":".join(f"{rng.randrange(256):02X}" for _ in range(6))
        table.update(Advertisement(T0 + i * 1e-4, address, payload))


def test_flood_of_random_addresses_stays_within_the_bound() -> None:
    """100,000 random addresses: the table keeps `max_devices`, memory stops growing."""
    rng = random.Random(1)
    payload = advertisement(NOKEY, KEY_NOKEY, 1, T0).manufacturer_data
    table = DevicesState(KEYS, max_devices=512)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        _flood(table, rng, 10_000, payload)
        gc.collect()
        at_10k = tracemalloc.get_traced_memory()[0]
        _flood(table, rng, 90_000, payload)
        gc.collect()
        at_100k, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(table) == 512
    assert table.evicted == 100_000 - 512
    # Bounded: the last 90,000 devices add (almost) nothing over the first 10,000.
    assert at_100k - at_10k < (at_10k - before) * 0.25 + 64 * 1024
    print(
        f"\nflood of 100,000 addresses: table 512 devices; traced memory "
        f"+{(at_10k - before) / 1024:.0f} KiB after 10k, +{(at_100k - before) / 1024:.0f} KiB "
        f"after 100k (peak +{(peak - before) / 1024:.0f} KiB)"
    )


def test_scan_output_remembers_a_bounded_number_of_addresses() -> None:
    """`scan`'s per-address status memory (issue 9 item 10: +10.9 MB per 10⁵ addresses) is
    bounded like the device table."""
    import io

    from victron_ble_bms.cli.scan import _Printer
    from victron_ble_bms.sources.devices import DEFAULT_MAX_DEVICES
    from victron_ble_bms.sources.readings import decode_advertisement

    printer = _Printer(io.StringIO(), True, {})
    payload = advertisement(NOKEY, KEY_NOKEY, 1, T0).manufacturer_data
    n = DEFAULT_MAX_DEVICES + 5_000
    for i in range(n):
        address = ":".join(f"{b:02X}" for b in (0xC0, 0, *i.to_bytes(4, "big")))
        adv = Advertisement(T0 + i * 1e-4, address, payload)
        printer.reading(decode_advertisement(adv, {}), None)
    assert len(printer.status) == DEFAULT_MAX_DEVICES
