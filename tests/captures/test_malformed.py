"""Issue 9 item 9 reproductions: each malformed input gives a `CaptureError` naming a byte
offset or line number, reading goes on where the format allows, and no command tracebacks.

The pcapng files here are assembled with `struct` from draft-ietf-opsawg-pcapng, not by our
writer; the JSON lines by hand."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.cli.user import keys_file
from victron_ble_bms.cli import main
from victron_ble_bms.sources.capture import (
    CaptureError,
    CorruptRecord,
    ExportError,
    PcapngWriter,
    open_capture,
)

from .frames import SHUNT_ADDRESS, SHUNT_DATA, SHUNT_KEY

HEADER = '{"format":"victron-ble-bms-capture","version":1}\n'


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def _shb() -> bytes:
    return _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def _h4_event() -> bytes:
    """LINKTYPE 201 packet: direction header, H4 event with one LE Advertising Report."""
    ad = bytes((len(SHUNT_DATA) + 3, 0xFF, 0xE1, 0x02)) + SHUNT_DATA
    addr = bytes.fromhex(SHUNT_ADDRESS.replace(":", ""))[::-1]
    params = bytes((0x02, 1, 0x03, 1)) + addr + bytes((len(ad),)) + ad + struct.pack("b", -62)
    return struct.pack(">I", 1) + bytes((0x04, 0x3E, len(params))) + params


def _epb(packet: bytes, ts_us: int = 1_700_000_000_000_000) -> bytes:
    head = struct.pack("<IIIII", 0, ts_us >> 32, ts_us & 0xFFFFFFFF, len(packet), len(packet))
    return _block(6, head + packet)


def _idb(options: bytes = b"") -> bytes:
    return _block(1, struct.pack("<HHI", 201, 0, 0) + options)


def _keys(tmp_path: Path) -> Path:
    return keys_file(tmp_path, SHUNT_ADDRESS, SHUNT_KEY)


def test_pcapng_section_header_of_length_12(tmp_path: Path) -> None:
    f = tmp_path / "x.pcapng"
    bad_shb = struct.pack("<III", 0x0A0D0D0A, 12, 0x1A2B3C4D)  # magic, no room for more
    f.write_bytes(_shb() + _idb() + _epb(_h4_event()) + bad_shb + _idb() + _epb(_h4_event()))
    errors: list[CaptureError] = []
    got = list(open_capture(f, errors=errors))
    assert [a.address for a in got] == [SHUNT_ADDRESS]  # the frame before it is kept
    assert len(errors) == 1 and errors[0].offset == len(_shb() + _idb() + _epb(_h4_event()))
    assert "block length 12 is impossible" in str(errors[0])


@pytest.mark.parametrize(
    "options",
    [
        struct.pack("<HH", 14, 8) + b"\1\2",  # if_tsoffset says 8 bytes, 2 present
        struct.pack("<HH", 9, 1),  # if_tsresol with no value byte at all
        struct.pack("<HH", 2, 200) + b"eth0",  # if_name running past the block
    ],
)
def test_pcapng_truncated_interface_options(tmp_path: Path, options: bytes) -> None:
    f = tmp_path / "x.pcapng"
    f.write_bytes(_shb() + _idb(options) + _epb(_h4_event()) + _epb(_h4_event()))
    errors: list[CaptureError] = []
    got = list(open_capture(f, errors=errors))
    # The interface is kept (its link type is known): both packets still read.
    assert len(got) == 2 and got[0].victron_data == SHUNT_DATA
    assert len(errors) == 1 and isinstance(errors[0], CorruptRecord)
    assert errors[0].offset == len(_shb()) + 16 and "interface option" in str(errors[0])


def _jsonl(tmp_path: Path, *lines: str) -> Path:
    f = tmp_path / "x.jsonl"
    f.write_text(HEADER + "".join(line + "\n" for line in lines))
    return f


GOOD = json.dumps(
    {
        "ts": 1.5,
        "address": SHUNT_ADDRESS,
        "rssi": -60,
        "manufacturer_data": {"737": SHUNT_DATA.hex()},
    }
)


def _odd(**change: object) -> str:
    obj = json.loads(GOOD)
    obj.update(change)
    return json.dumps(obj)


ODD_LINES = [
    "[" * 1000 + "]" * 1000,  # RecursionError in json
    '{"ts": 1, "address": ' + "[" * 5000 + "]" * 5000 + "}",
    _odd(ts="yesterday"),
    _odd(ts=True),
    _odd(ts=None),
    '{"ts": NaN, "address": "AA:BB:CC:DD:EE:FF"}',
    '{"ts": Infinity, "address": "AA:BB:CC:DD:EE:FF"}',
    _odd(ts=10**400),
    _odd(name=5),
    _odd(name=["x"]),
    _odd(name={"a": 1}),
    _odd(address=5),
    _odd(address="zz:not:an:address"),
    _odd(address=None),
    _odd(rssi="-60"),
    _odd(rssi=1000),
    _odd(rssi=[1]),
    _odd(manufacturer_data={"737": 5}),
    _odd(manufacturer_data={"99999": "00"}),
    _odd(manufacturer_data={"-1": "00"}),
    _odd(manufacturer_data={"x": "00"}),
    _odd(manufacturer_data={"737": "zz"}),
    _odd(manufacturer_data=[1, 2]),
    _odd(address_type=7),
    _odd(origin={"x": 1}),
    "42",
    '"just a string"',
]


@pytest.mark.parametrize("bad", ODD_LINES, ids=range(len(ODD_LINES)))
def test_jsonl_odd_lines_are_skipped_with_line_number(tmp_path: Path, bad: str) -> None:
    f = _jsonl(tmp_path, GOOD, bad, GOOD)
    errors: list[CaptureError] = []
    got = list(open_capture(f, errors=errors))
    assert len(got) == 2  # the lines before and after the bad one
    assert len(errors) == 1 and errors[0].line == 3 and ": line 3: " in str(errors[0])
    assert errors[0].offset == len(HEADER) + len(GOOD) + 1


def test_jsonl_addresses_are_normalised(tmp_path: Path) -> None:
    lower = _odd(address=SHUNT_ADDRESS.lower().replace(":", "-"))
    f = _jsonl(tmp_path, lower)
    assert [a.address for a in open_capture(f)] == [SHUNT_ADDRESS]


def test_decode_lower_case_jsonl_address_finds_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _jsonl(tmp_path, _odd(address=SHUNT_ADDRESS.lower()))
    assert main(["decode", str(f), "--keys", str(_keys(tmp_path)), "--format", "jsonl"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["battery_voltage_v"] == 12.53 and "1 decoded" in err


@pytest.mark.parametrize("fmt", ["table", "csv", "jsonl"])
@pytest.mark.parametrize("ts", [1e300, -1e300, 1e11, 0.0, -1.5])
def test_decode_outputs_survive_extreme_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, ts: float
) -> None:
    f = _jsonl(tmp_path, _odd(ts=ts, name="\x1b[31mred\ud800"))
    assert main(["decode", str(f), "--keys", str(_keys(tmp_path)), "--format", fmt]) == 0
    out, err = capsys.readouterr()
    assert "12.53" in out and "Traceback" not in err
    if fmt != "jsonl":
        assert "\x1b" not in out  # a terminal escape in a name is shown, not obeyed


def test_decode_pcapng_with_huge_time_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # if_tsoffset (option 14) = 2^62 s: a time no C library can show.
    opts = struct.pack("<HHq", 14, 8, 1 << 62) + struct.pack("<HH", 0, 0)
    f = tmp_path / "x.pcapng"
    f.write_bytes(_shb() + _idb(opts) + _epb(_h4_event()))
    assert main(["decode", str(f), "--keys", str(_keys(tmp_path))]) == 0
    assert "12.53 V" in capsys.readouterr().out


def test_record_to_pcapng_skips_what_pcapng_cannot_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uuid = "0b7a3c2e-8d5c-4e4f-9a64-1c2d3e4f5a6b"
    f = _jsonl(
        tmp_path,
        _odd(address=uuid),  # macOS CoreBluetooth device id
        GOOD,
        _odd(manufacturer_data={"737": "00" * 300}),  # no AD structure holds it
        _odd(ts=1e300),  # beyond a 64-bit µs timestamp
        _odd(name="\ud800" + "é" * 40),
    )
    out = tmp_path / "out.pcapng"
    assert main(["record", "--from", str(f), "-o", str(out)]) == 3
    err = capsys.readouterr().err
    assert "advertisement 1 (" + uuid.upper() + ") not written" in err
    assert "advertisement 3" in err and "advertisement 4" in err
    assert "2 advertisements written" in err and "Traceback" not in err
    back = list(open_capture(out, strict=True))
    assert [a.address for a in back] == [SHUNT_ADDRESS] * 2
    assert back[0].victron_data == SHUNT_DATA and back[0].rssi == -60


def test_pcapng_writer_refuses_one_advertisement_and_goes_on(tmp_path: Path) -> None:
    from victron_ble_bms.sources.advertisement import Advertisement

    with PcapngWriter(tmp_path / "o.pcapng") as w:
        with pytest.raises(ExportError, match="company id 70000"):
            w.write(Advertisement(ts=1.0, address=SHUNT_ADDRESS, manufacturer_data={70000: b"1"}))
        w.write(Advertisement(ts=1.0, address=SHUNT_ADDRESS, manufacturer_data={0x2E1: b"1"}))
        assert (w.count, w.skipped) == (1, 1)


def test_skipping_is_the_default_for_every_consumer(tmp_path: Path) -> None:
    # dashboard --replay and serve call open_capture() plainly: a corrupt record in the
    # middle must not end the stream (issue 9 item 6: 2 of 24 frames shown).
    f = _jsonl(tmp_path, GOOD, "{broken", GOOD, GOOD)
    seen: list[CaptureError] = []
    capture = open_capture(f, on_error=seen.append)
    got = list(capture)
    assert len(got) == 3 and not capture.complete and capture.skipped == 1
    assert seen == list(capture.errors) and seen[0].line == 3


@pytest.mark.parametrize(
    "event", [b"\x04\x3e\x20\x02\x01\x00", b"\x04\x3e\x0c\x02\x01\x00\x00\x01"]
)
def test_short_le_report_event_is_a_corrupt_record(tmp_path: Path, event: bytes) -> None:
    # An LE Advertising Report whose parameter length runs past the record (found by the
    # 10,000-file fuzz run: the one-report fast path indexed before checking the length).
    f = tmp_path / "x.btsnoop"
    rec = struct.pack(">IIIIq", len(event), len(event), 3, 0, 0x00E03AB44A676000) + event
    f.write_bytes(b"btsnoop\0" + struct.pack(">II", 1, 1002) + rec + rec)
    errors: list[CaptureError] = []
    assert list(open_capture(f, errors=errors)) == []
    assert [type(e) for e in errors] == [CorruptRecord, CorruptRecord]
    assert errors[1].offset == 16 + len(rec)


def _damage_caplen(block: bytearray) -> None:
    struct.pack_into("<I", block, 20, len(block))  # caplen beyond the block


def _damage_interface(block: bytearray) -> None:
    struct.pack_into("<I", block, 8, 7)  # interface 7 was never declared


def _damage_trailer(block: bytearray) -> None:
    struct.pack_into("<I", block, len(block) - 4, len(block) + 4)


def _damage_length(block: bytearray) -> None:
    struct.pack_into("<I", block, 4, len(block) + 2)  # not a multiple of 4


def _damage_packet(block: bytearray) -> None:
    # caplen 3: too short for LINKTYPE 201's direction header + H4 byte.
    struct.pack_into("<I", block, 20, 3)


@pytest.mark.parametrize("chunk", [1 << 16, 64, 37], ids=["default", "chunk64", "chunk37"])
@pytest.mark.parametrize(
    ("damage", "kind", "goes_on"),
    [
        (_damage_caplen, "CorruptRecord", True),
        (_damage_interface, "CorruptRecord", True),
        (_damage_packet, "CorruptRecord", True),
        (_damage_trailer, "CorruptCapture", False),
        (_damage_length, "CorruptCapture", False),
    ],
)
def test_pcapng_damage_after_good_packets(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chunk: int,
    damage: object,
    kind: str,
    goes_on: bool,
) -> None:
    """A damaged Enhanced Packet after good ones of the same interface (the reader's fast
    loop; with small chunks, blocks also cross the chunk's end) gets the same error at the
    block's byte offset as a damaged first packet."""
    from victron_ble_bms.sources.capture import chunks

    monkeypatch.setattr(chunks, "CHUNK", chunk)
    good = _epb(_h4_event())
    bad = bytearray(good)
    damage(bad)  # type: ignore[operator]
    head = _shb() + _idb() + good * 3
    f = tmp_path / "x.pcapng"
    f.write_bytes(head + bytes(bad) + good * 2)
    errors: list[CaptureError] = []
    advs = list(open_capture(f, errors=errors))
    assert [(type(e).__name__, e.offset) for e in errors] == [(kind, len(head))]
    assert f"byte {len(head)}:" in str(errors[0])
    assert len(advs) == (5 if goes_on else 3)
    assert {a.address for a in advs} == {SHUNT_ADDRESS}
