"""Values a record can't physically hold are flagged "implausible" (issue 9 item 5).

The key check is one byte, so a wrong key with the same first byte decrypts to random bits;
most of those frames must be caught, and no genuine frame (outside known answers) flagged.
"""

from __future__ import annotations

import random

import pytest

from victron_ble_bms.protocol import decode, decode_plaintext, encode
from victron_ble_bms.protocol.enums import AuxInput
from victron_ble_bms.protocol.records import BatteryMonitorRecord, SmartLithiumRecord

from . import vectors as v


def test_genuine_known_answers_are_plausible() -> None:
    for advert, key in (
        (v.SMARTSHUNT_ADVERT, v.SMARTSHUNT_KEY),
        (v.ORION_ADVERT, v.ORION_KEY),
        (v.MPPT_ADVERT, v.MPPT_KEY),
    ):
        record = decode(advert, key)
        assert record.implausible == ()
        assert "implausible" not in record.to_dict()
    for record_type, payload in (
        (0x05, v.SMART_LITHIUM_1),
        (0x05, v.SMART_LITHIUM_2),
        (0x05, v.SMART_LITHIUM_3),
        (0x0A, v.LYNX_1),
        (0x0E, v.SMART_BMS_12_200),
    ):
        assert decode_plaintext(record_type, payload).implausible == ()


def _frame(record_type: int, payload: bytes) -> bytes:
    return encode(decode_plaintext(record_type, payload), key=v.ORION_KEY, nonce=1, model_id=1)


def _wrong_keys(check_byte: int, count: int) -> list[bytes]:
    rng = random.Random(9)
    return [bytes((check_byte,)) + rng.randbytes(15) for _ in range(count)]


@pytest.mark.parametrize(
    ("advert", "key", "at_least"),
    [
        (v.SMARTSHUNT_ADVERT, v.SMARTSHUNT_KEY, 0.8),
        (
            _frame(0x05, v.SMART_LITHIUM_1),
            v.ORION_KEY,
            0.9,
        ),
        (
            _frame(0x0E, v.SMART_BMS_12_200),
            v.ORION_KEY,
            0.95,
        ),
        (
            _frame(0x0A, v.LYNX_1),
            v.ORION_KEY,
            0.8,
        ),
    ],
    ids=["smartshunt", "smart_lithium", "smart_bms", "lynx"],
)
def test_wrong_key_with_same_check_byte_is_usually_caught(
    advert: bytes, key: str, at_least: float
) -> None:
    assert decode(advert, key).implausible == ()
    wrong = _wrong_keys(advert[7], 400)
    flagged = sum(bool(decode(advert, k).implausible) for k in wrong)
    assert flagged >= at_least * len(wrong), flagged


def test_the_issue_examples() -> None:
    base = decode(v.SMARTSHUNT_ADVERT, v.SMARTSHUNT_KEY)
    assert isinstance(base, BatteryMonitorRecord)
    fields = {f: getattr(base, f) for f in base.values()}
    neg = BatteryMonitorRecord(**{**fields, "battery_voltage_v": -327.68})
    assert any("battery_voltage_v -327.68 V" in r for r in neg.implausible)
    soc = BatteryMonitorRecord(**{**fields, "soc_pct": 102.3})
    assert any("soc_pct" in r for r in soc.implausible)
    assert soc.to_dict()["implausible"] == list(soc.implausible)


def test_pack_far_from_the_sum_of_its_cells() -> None:
    record = decode_plaintext(0x05, v.SMART_LITHIUM_1)
    assert isinstance(record, SmartLithiumRecord)
    fields = {f: getattr(record, f) for f in record.values()}
    assert SmartLithiumRecord(**{**fields, "battery_voltage_v": 13.3}).implausible == ()
    far = SmartLithiumRecord(**{**fields, "battery_voltage_v": 26.4})
    assert any("sum of its 4 cells" in r for r in far.implausible)


def test_ve_bus_soc_over_100() -> None:
    payload = bytearray(b"\xff" * 13)
    # SOC: 7 bits at payload bit 95 (docs/protocol.md §2.4); raw 126 %
    raw = int.from_bytes(payload, "little")
    raw = (raw & ~(0x7F << 95)) | (126 << 95)
    record = decode_plaintext(0x0C, raw.to_bytes(13, "little"))
    assert record.soc_pct == 126  # type: ignore[attr-defined]
    assert any("soc_pct 126" in r for r in record.implausible)


@pytest.mark.parametrize(
    ("kelvin_x100", "plausible"),
    [(63615, False), (12315, False), (29815, True), (25315, True), (33315, True)],
)
def test_aux_temperature_outside_any_battery_is_implausible(
    kelvin_x100: int, plausible: bool
) -> None:
    """Issue 18: 363 °C (raw 63615) and −150 °C (raw 12315) passed; a battery monitor's
    temperature sensor on a battery that still exists reads neither (25, −20, 60 °C do)."""
    base = decode(v.SMARTSHUNT_ADVERT, v.SMARTSHUNT_KEY)
    assert isinstance(base, BatteryMonitorRecord)
    fields = {f: getattr(base, f) for f in base.values()}
    record = BatteryMonitorRecord(
        **{**fields, "aux_mode": AuxInput.TEMPERATURE, "aux_raw": kelvin_x100}
    )
    assert (record.implausible == ()) is plausible
    if not plausible:
        assert any(r.startswith("temperature_c ") for r in record.implausible)
