"""Flags become the codes the manuals use (docs/protocol.md §5, §8.3)."""

from __future__ import annotations

from victron_ble_bms.protocol import Severity, decode_plaintext, encode_plaintext
from victron_ble_bms.protocol.codes import lookup
from victron_ble_bms.protocol.records import LynxSmartBmsRecord, SmartBmsRecord, SmartLithiumRecord

from . import vectors as v

IDLE = decode_plaintext(0x05, v.SMART_LITHIUM_1)


def _with_flags(bms_flags: int, error_flags: int = 0) -> SmartLithiumRecord:
    payload = bytearray(encode_plaintext(IDLE))
    payload[0:4] = bms_flags.to_bytes(4, "little")
    payload[4:6] = error_flags.to_bytes(2, "little")
    r = decode_plaintext(0x05, bytes(payload))
    assert isinstance(r, SmartLithiumRecord)
    return r


def test_manual_codes_from_bms_flag_bits() -> None:
    r = _with_flags(1 << 9 | 1 << 11 | 1 << 12 | 1 << 15 | 1 << 22 | 1 << 24)
    assert {c.id for c in r.codes} == {"A-SL9", "A-SL11", "W-SL12", "A-SL15", "A-SL22", "E-SL24"}
    assert r.codes[0].id == "E-SL24"  # worst first
    assert all(c.in_manual for c in r.codes)
    w = next(c for c in r.codes if c.id == "W-SL12")
    assert w.severity is Severity.WARNING and "3.10" in w.explanation and w.remedy


def test_status_bits_are_not_codes() -> None:
    assert _with_flags(1 << 25 | 1 << 26 | 1 << 27 | 1 << 6).codes == ()


def test_error_flag_codes_and_the_settings_exception() -> None:
    r = _with_flags(0, 1 << 0 | 1 << 1 | 1 << 7 | 1 << 8 | 1 << 9)
    assert [c.id for c in r.codes] == ["E-SL1", "E-SL2", "E-SL119", "E-SL9", "E-SL10"]
    assert lookup("E-SL119") is not None and "factory" in lookup("E-SL119").remedy  # type: ignore[union-attr]


def test_unlisted_bits_still_show_marked_not_in_manual() -> None:
    r = _with_flags(1 << 10 | 1 << 30, 1 << 2 | 1 << 12)
    ids = {c.id: c for c in r.codes}
    assert set(ids) == {"W-SL10", "W-SL30", "E-SL3", "E-SL13"}
    assert not any(c.in_manual for c in r.codes)


def _lynx(warnings_alarms: int, bms_error: int = 0) -> LynxSmartBmsRecord:
    payload = bytearray(encode_plaintext(decode_plaintext(0x0A, v.LYNX_1)))
    value = int.from_bytes(payload, "little")
    value &= ~((0x3FFFF << 72) | 0xFF)
    value |= warnings_alarms << 72 | bms_error
    r = decode_plaintext(0x0A, value.to_bytes(16, "little"))
    assert isinstance(r, LynxSmartBmsRecord)
    return r


def test_lynx_codes_from_warning_fields() -> None:
    # field 0 warning (2), field 5 alarm (3), others ok
    r = _lynx(0x15555 & ~(3 << 0) & ~(3 << 10) | 2 << 0 | 3 << 10)
    assert [c.id for c in r.codes] == ["A-B06", "W-B01"]
    assert r.alarms["low_cell_voltage"].name == "WARNING"


def test_lynx_error_byte() -> None:
    r = _lynx(0x15555, bms_error=26)
    assert [c.id for c in r.codes] == ["E-B26"]
    assert "contactor" in r.codes[0].title.lower()


def _smart_bms(bms_error: int, alarm_reason: int) -> SmartBmsRecord:
    payload = bytearray(v.SMART_BMS_12_200)
    payload[0] = bms_error
    payload[1:3] = alarm_reason.to_bytes(2, "little")
    r = decode_plaintext(0x0E, bytes(payload))
    assert isinstance(r, SmartBmsRecord)
    return r


def test_smart_bms_codes() -> None:
    r = _smart_bms(32, 1 << 12)
    assert [c.id for c in r.codes] == ["E-B32", "A-A12"]
    assert r.codes[0].in_manual and "pre-alarm" in r.codes[0].remedy
    assert "short" in r.codes[1].title.lower()
    assert _smart_bms(0, 1 << 14).codes[0].in_manual is False  # BMS cable bit: register only
