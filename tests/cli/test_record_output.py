"""`record` when the disk fills up (issue 9 item 7) and its output format (issue 10 item 3),
run as a user runs it. The full disk is a real 64 KiB tmpfs (or /dev/full); pcap and pcapng
files are checked with tshark, not with our readers."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .user import CAPTURES, victron_bms

FLEET = str(CAPTURES / "scenario-fleet.jsonl")  # 4,896 advertisements, ~1 MB
SAMPLE = str(CAPTURES / "sample-hci.pcap")  # made by scapy (captures/make_samples.py)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs (needs root, as CI runs)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _tshark_count(path: Path) -> int:
    r = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return len(r.stdout.split())


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_record_jsonl_on_a_full_disk(tmp_path: Path, small_disk: Path) -> None:
    out = small_disk / "run.jsonl"
    r = victron_bms(tmp_path, "record", "-o", str(out), "--from", FLEET)
    assert r.returncode == 1
    line = _one_line(r.stderr)
    assert "disk full" in line and "intact" in line
    written = int(line.split("after ")[1].split(" ")[0])
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b""  # ends with a whole line, no partial line left
    objects = [json.loads(x) for x in lines[:-1]]
    assert objects[0]["format"] == "victron-ble-bms-capture"
    assert len(objects) - 1 == written > 100
    # Every line before the failure is the input's advertisement, unchanged.
    source = [json.loads(x) for x in Path(FLEET).read_text().splitlines()[1:]]
    for got, want in zip(objects[1:], source, strict=False):
        assert (got["ts"], got["address"], got["manufacturer_data"]) == (
            want["ts"],
            want["address"],
            want["manufacturer_data"],
        )


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("suffix", [".pcapng", ".pcap"])
def test_record_pcap_formats_on_a_full_disk(tmp_path: Path, small_disk: Path, suffix: str) -> None:
    out = small_disk / f"run{suffix}"
    r = victron_bms(tmp_path, "record", "-o", str(out), "--from", FLEET)
    assert r.returncode == 1
    line = _one_line(r.stderr)
    written = int(line.split("after ")[1].split(" ")[0])
    assert written > 100
    assert _tshark_count(out) == written  # tshark reads every record, no cut-short one


def test_record_to_dev_full(tmp_path: Path) -> None:
    r = victron_bms(tmp_path, "record", "-o", "/dev/full", "--format", "jsonl", "--from", SAMPLE)
    assert r.returncode != 0
    assert "disk full" in _one_line(r.stderr)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_record_pcap_by_suffix_opens_in_tshark(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    r = victron_bms(tmp_path, "record", "-o", str(out), "--from", SAMPLE)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:4] == bytes.fromhex("d4c3b2a1")  # pcap magic, not JSON
    info = subprocess.run(
        ["capinfos", "-t", "-E", str(out)], capture_output=True, text=True, timeout=60
    )
    assert "pcap" in info.stdout.lower() and "Bluetooth H4 with linux header" in info.stdout
    assert _tshark_count(out) == _tshark_count(Path(SAMPLE)) == 60


@pytest.mark.parametrize("name", ["out.txt", "out", "out.pcap.gz"])
def test_record_refuses_a_suffix_it_cannot_write(tmp_path: Path, name: str) -> None:
    r = victron_bms(tmp_path, "record", "-o", name, "--from", SAMPLE)
    assert r.returncode == 2
    assert ".jsonl, .pcapng or .pcap" in _one_line(r.stderr)
    assert not (tmp_path / name).exists()
