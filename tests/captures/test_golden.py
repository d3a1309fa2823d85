"""Every frame of every sample capture decodes to byte-identical output (table, JSON lines,
CSV) as main at d2e9094 printed it — issue 12: the speed work may not change one byte.

The known answers were produced by the old code from a pristine checkout (golden/README.md)."""

from __future__ import annotations

import gzip
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from victron_ble_bms.cli import main

GOLDEN = Path(__file__).parent / "golden"
INPUTS = sorted(p.name[: -len(".gz")] for p in (GOLDEN / "inputs").glob("*.gz"))
FORMATS = ("table", "jsonl", "csv")


def _sums() -> dict[str, str]:
    out = {}
    for line in (GOLDEN / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        out[name] = digest
    return out


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("golden")
    sums = _sums()
    for name in INPUTS:
        raw = gzip.decompress((GOLDEN / "inputs" / f"{name}.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == sums[name], f"{name}: stored input changed"
        (d / name).write_bytes(raw)
    keys = d / "keys.toml"
    keys.write_bytes((GOLDEN / "keys.toml").read_bytes())
    keys.chmod(0o600)
    return d


def test_every_sample_capture_is_stored() -> None:
    # 2 hardware-tool captures + the 11 emulator scenario recordings of d2e9094.
    assert len(INPUTS) == 13
    assert {"sample-android.btsnoop", "sample-hci.pcap", "scenario-fleet.jsonl"} <= set(INPUTS)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", INPUTS)
def test_output_is_byte_identical_to_d2e9094(
    name: str,
    fmt: str,
    unpacked: Path,
    utc: None,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    expected = gzip.decompress((GOLDEN / "outputs" / f"{name}.{fmt}.gz").read_bytes())
    status = main(
        ["decode", str(unpacked / name), "--keys", str(unpacked / "keys.toml"), "--format", fmt]
    )
    got = capsysbinary.readouterr().out
    assert status == 0
    assert got.count(b"\n") == expected.count(b"\n")
    if got != expected:  # show the first differing line, not 16 MB of diff
        for i, (a, b) in enumerate(zip(got.splitlines(), expected.splitlines(), strict=True)):
            assert a == b, f"{name} --format {fmt}: line {i + 1} differs"
    assert got == expected
