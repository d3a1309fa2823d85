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
from .fuzzing import fuzz_captures


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


def test_mutation_fuzzer_only_raises_capture_errors(tmp_path: Path) -> None:
    # Every format incl. pcapng option blocks, nested JSON, odd field types; read, export
    # and decode output paths. `python benchmarks/fuzz_captures.py` runs 10,000 files.
    stats = fuzz_captures(400, random.Random(0xC0FFEE), tmp_path)
    assert stats.foreign == [] and stats.hangs == []
    # The fuzzer reached every path: files read, errors met, adverts exported and decoded.
    assert stats.read_ok > 100 and stats.capture_errors > 10
    assert stats.exported > 300 and stats.export_refused > 0 and stats.decode_runs == 100
