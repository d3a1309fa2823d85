"""Corrupt and truncated files: a clear message with the byte offset, nothing readable lost;
and a seeded mutation fuzzer: only our CaptureError, never anything else."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from victron_ble_bms.sources.capture import (
    CaptureError,
    CorruptRecord,
    TruncatedCapture,
    open_capture,
)

from .frames import ADVS, write_btsnoop, write_scapy


def test_truncated_btsnoop_keeps_what_was_read(tmp_path: Path) -> None:
    path = write_btsnoop(tmp_path / "log", 1002, ADVS)
    raw = path.read_bytes()
    path.write_bytes(raw[:-5])  # cut inside the last record
    errors: list[CaptureError] = []
    got = list(open_capture(path, errors=errors))
    assert len(got) == 3  # the last event (3 reports) is lost, the first two events are kept
    assert len(errors) == 1 and isinstance(errors[0], TruncatedCapture)
    # Record offsets: header 16, reset command 24+4=28, event 1 …; the cut one starts at:
    sizes = []
    off = 16
    while off < len(raw):
        n = int.from_bytes(raw[off + 4 : off + 8], "big")
        sizes.append(off)
        off += 24 + n
    assert errors[0].offset == sizes[-1]
    assert f"byte {sizes[-1]}" in str(errors[0])


def test_bad_record_is_skipped_and_reading_goes_on(tmp_path: Path) -> None:
    path = write_scapy(tmp_path / "h4.pcap", 187, ADVS, ng=False)
    raw = bytearray(path.read_bytes())
    # First record: pcap header 24 + record header 16, then H4 04, event 3e, length byte.
    raw[24 + 16 + 2] = 0xFF  # parameter length far beyond the record
    path.write_bytes(raw)
    errors: list[CaptureError] = []
    got = list(open_capture(path, errors=errors))
    assert len(got) == 5
    assert isinstance(errors[0], CorruptRecord) and errors[0].offset == 24
    with pytest.raises(CorruptRecord, match="byte 24"):
        list(open_capture(path, strict=True))  # strict: the first problem is raised


def _fixtures(tmp_path: Path) -> list[bytes]:
    files = [write_btsnoop(tmp_path / f"b{d}", d, ADVS) for d in (1001, 1002, 2001)]
    for lt in (187, 201, 251, 254, 256, 272):
        files.append(write_scapy(tmp_path / f"p{lt}", lt, ADVS, ng=False))
        files.append(write_scapy(tmp_path / f"n{lt}", lt, ADVS, ng=True))
    jl = tmp_path / "j.jsonl"
    jl.write_text(
        '{"format":"victron-ble-bms-capture","version":1}\n'
        '{"ts":1,"address":"AA:BB:CC:DD:EE:FF","rssi":-60,"manufacturer_data":{"737":"1002"}}\n'
    )
    files.append(jl)
    return [f.read_bytes() for f in files]


def test_mutation_fuzzer_only_raises_capture_errors(tmp_path: Path) -> None:
    rng = random.Random(0xC0FFEE)
    seeds = _fixtures(tmp_path)
    target = tmp_path / "mutant"
    for _ in range(1500):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            op = rng.random()
            pos = rng.randrange(len(data)) if data else 0
            if op < 0.5 and data:
                data[pos] = rng.randrange(256)
            elif op < 0.7:
                del data[pos : pos + rng.randint(1, 32)]
            elif op < 0.85:
                data[pos:pos] = rng.randbytes(rng.randint(1, 16))
            else:
                data = data[: rng.randrange(len(data) + 1)]
        target.write_bytes(bytes(data))
        try:
            for adv in open_capture(target, errors=[]):
                assert isinstance(adv.address, str)
        except CaptureError:
            pass
