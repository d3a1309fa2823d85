"""Frames shorter than their layout: never a traceback, never an all-clear (issue 9 items 1, 2).

Every record type is cut at every length from the header to past its layout, and each decoded
record goes through everything a user's output does with it.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import subprocess
import sys

import pytest

from victron_ble_bms.cli.output import codes_text, main_values, print_record
from victron_ble_bms.frame_json import frame_object
from victron_ble_bms.protocol import (
    RECORD_CLASSES,
    DecodeError,
    Record,
    TruncatedFrame,
    decode,
    decode_plaintext,
    encode,
)

from . import vectors as v

KEY = "aff4d0995b7d1e176c0c33ecb9e70dcd"  # the public SmartShunt key; check byte 0xaf
ALL_CLEAR = "no active warnings"
CODE_RECORDS = (0x05, 0x0A, 0x0E)  # records with a code catalogue


def _full_frame(record_type: int, seed: int = 1) -> bytes:
    """A complete frame of the type: random field bits, encrypted with KEY."""
    rng = random.Random(seed * 1000 + record_type)
    size = RECORD_CLASSES[record_type].LAYOUT.data_bytes
    while True:
        record = decode_plaintext(record_type, rng.randbytes(size))
        try:
            return encode(record, key=KEY, nonce=0x1234, model_id=0xA0E5)
        except ValueError:  # a second NA spelling that does not re-encode: draw again
            continue


def _every_output(record: Record) -> str:
    """What decode/scan/the JSON writers do with a record; returns the printed table."""
    record.codes  # noqa: B018 - the property must not raise
    json.dumps(record.to_dict())
    json.dumps(frame_object(1.0, "AA:BB:CC:DD:EE:FF", -60, "x", record))
    main_values(record)
    codes_text(record)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_record(record)
    return out.getvalue()


@pytest.mark.parametrize("record_type", sorted(t for t in RECORD_CLASSES if t <= 0xFF))
def test_every_length_of_every_record_type(record_type: int) -> None:
    full = _full_frame(record_type)
    layout = RECORD_CLASSES[record_type].LAYOUT
    for length in range(8, len(full) + 3):
        data = (full + b"\xff\xff")[:length]
        try:
            record = decode(data, KEY)
        except TruncatedFrame:
            assert length == 8
            continue
        shown = _every_output(record)
        received_bits = min(length - 8, 16) * 8
        assert record.partial == (received_bits < layout.used_bits), length
        if record.partial:
            assert record.missing_fields
            d = record.to_dict()
            assert d["partial"] is True and d["missing_fields"] == list(record.missing_fields)
            assert "frame incomplete" in shown
            assert "PARTIAL" in main_values(record)
        else:
            assert "partial" not in record.to_dict()
        if record.codes is None:
            assert record.to_dict()["codes"] is None
            assert "codes unknown" in shown and ALL_CLEAR not in shown
            assert "unknown" in codes_text(record)


@pytest.mark.parametrize("record_type", CODE_RECORDS)
def test_codes_unknown_until_their_fields_arrive(record_type: int) -> None:
    full = _full_frame(record_type)
    cls = RECORD_CLASSES[record_type]
    needed = max(f.end for f in cls.LAYOUT.fields if f.name in cls.CODE_FIELDS)
    for length in range(9, len(full) + 1):
        record = decode(full[:length], KEY)
        assert (record.codes is None) == ((length - 8) * 8 < needed), length


def test_issue_short_lithium_frame_is_unknown_not_clear() -> None:
    # The issue's reproduction: 1 data byte behind the right key-check byte.
    record = decode(bytes.fromhex("1000e5a0050100af00"), KEY)
    assert record.codes is None and record.partial
    assert "bms_flags" in record.missing_fields
    assert record.to_dict()["codes"] is None


def test_issue_lithium_cut_to_15_bytes() -> None:
    frame = encode(decode_plaintext(0x05, v.SMART_LITHIUM_1[:16]), key=KEY, nonce=7, model_id=1)
    record = decode(frame[:15], KEY)
    assert record.codes == ()  # flags (6 bytes) were received, so the codes are known …
    assert "battery_voltage_v" in record.missing_fields  # … but the rest is not
    assert "frame incomplete" in _every_output(record)


def test_lynx_io_and_alarms_unknown_when_cut() -> None:
    frame = encode(decode_plaintext(0x0A, v.LYNX_1[:16]), key=KEY, nonce=7, model_id=1)
    for length in range(9, 20):  # the issue's 9–19 bytes
        record = decode(frame[:length], KEY)
        assert record.codes is None
        d = record.to_dict()
        assert d["alarms"] is None and d["codes"] is None


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "decode", *args], capture_output=True, text=True
    )


def test_cli_partial_battery_monitor_says_unknown_and_exits_3() -> None:
    # the issue's: every field n/a and "no active warnings, alarms or errors", exit 0
    out = _cli("--key", v.SMARTSHUNT_KEY, v.SMARTSHUNT_ADVERT[:10].hex())
    assert out.returncode == 3, out.stderr
    text = " ".join(out.stdout.split())
    assert "codes unknown — frame incomplete (missing: battery_voltage_v" in text
    assert ALL_CLEAR not in text and "Traceback" not in out.stderr


def test_cli_one_data_byte_lithium_no_traceback() -> None:
    out = _cli("--key", KEY, "1000e5a0050100af00")
    assert out.returncode == 3 and "Traceback" not in out.stderr
    assert "codes unknown" in out.stdout and ALL_CLEAR not in out.stdout
    out = _cli("--key", KEY, "--json", "1000e5a0050100af00")
    assert out.returncode == 3
    d = json.loads(out.stdout)
    assert d["codes"] is None and d["partial"] is True


def test_cli_full_frame_unchanged() -> None:
    out = _cli("--key", v.SMARTSHUNT_KEY, "--json", v.SMARTSHUNT_ADVERT.hex())
    assert out.returncode == 0
    d = json.loads(out.stdout)
    assert "partial" not in d and "missing_fields" not in d and "implausible" not in d


@pytest.mark.parametrize(
    "key",
    [
        bytes.fromhex(v.SMARTSHUNT_KEY),
        bytearray.fromhex(v.SMARTSHUNT_KEY),
        memoryview(bytes.fromhex(v.SMARTSHUNT_KEY)),
        memoryview(bytearray.fromhex(v.SMARTSHUNT_KEY)),
        memoryview(bytes.fromhex(v.SMARTSHUNT_KEY)).cast("H"),
        v.SMARTSHUNT_KEY.upper(),
        "0x" + bytes.fromhex(v.SMARTSHUNT_KEY).hex(":"),
        f"  {v.SMARTSHUNT_KEY}\n",
    ],
    ids=lambda k: type(k).__name__,
)
def test_every_key_type(key: object) -> None:
    for _ in range(2):  # the second call goes through the cipher cache
        record = decode(v.SMARTSHUNT_ADVERT, key)  # type: ignore[arg-type]
        assert record.battery_voltage_v == 12.53  # victron-ble's known answer


@pytest.mark.parametrize("key", [5, None.__class__, ["af"], "af" * 5000, b"\xaf", object()])
def test_bad_key_types_are_decode_errors(key: object) -> None:
    with pytest.raises(DecodeError) as info:
        decode(v.SMARTSHUNT_ADVERT, key)  # type: ignore[arg-type]
    assert "internal" not in str(info.value)
