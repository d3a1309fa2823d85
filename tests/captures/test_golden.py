"""Every frame of every sample capture decodes to byte-identical output (table, JSON lines,
CSV) as main at d2e9094 printed it — issue 12: the speed work may not change one byte.

The known answers were produced by the old code from a pristine checkout (golden/README.md)."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from victron_ble_bms.cli import main

NAME_W, PRODUCT_W = 20, 34  # issue 25 item 7

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


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def with_ellipses(table: bytes, jsonl_gz: bytes) -> bytes:
    """d2e9094 cut names at 16 and products at 28 characters silently; since issue 25 item 7
    the columns are 20 and 34 wide and a cut ends in "…". The full texts come from the same
    reference run's JSON lines, row by row (time 23, address 17, name, product; two spaces)."""
    lines = table.decode().split("\n")
    rows = [json.loads(line) for line in gzip.decompress(jsonl_gz).decode().splitlines()]
    assert len(lines) == len(rows) + 2  # the header, the rows, the final newline
    head = lines[0]
    out = [head[:44] + "name".ljust(NAME_W) + "  " + "product".ljust(PRODUCT_W) + head[90:]]
    for line, row in zip(lines[1:], rows, strict=False):
        name, product = _fit(row["name"] or "", NAME_W), _fit(row["product"] or "?", PRODUCT_W)
        out.append(line[:44] + name + "  " + product + line[90:])
    return "\n".join([*out, ""]).encode()


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
    if fmt == "table":
        expected = with_ellipses(expected, (GOLDEN / "outputs" / f"{name}.jsonl.gz").read_bytes())
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
