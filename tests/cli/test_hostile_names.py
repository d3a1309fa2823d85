"""Names from the air and from capture files are shown as plain text in every CLI table and
in CSV: rich markup is shown as written (never obeyed, never a crash), terminal escape
sequences never reach the terminal raw (issue 9 item 4)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from .user import SHUNT_HEX, keys_file, victron_bms

ADDRESS = "D1:23:45:67:89:AB"
HOSTILE = [
    "[@click=app.quit]Tap me[/]",
    "x[/b]y",
    "[bold red]ALARM[/]",
    "\x1b[2J\x1b]0;pwned\x07clear",
    "bidi\u202eevil",
    "line\nbreak\rcr",
]


def _capture(path: Path, names: list[str]) -> Path:
    """A recording written by hand (json.dumps, not our writer): one SmartShunt vector frame
    per name."""
    lines = [{"format": "victron-ble-bms-capture", "version": 1, "source": "test"}]
    for i, name in enumerate(names):
        lines.append(
            {
                "ts": 1_700_000_000.0 + i,
                "address": ADDRESS,
                "rssi": -60,
                "name": name,
                "manufacturer_data": {"737": SHUNT_HEX},
            }
        )
    path.write_text("".join(json.dumps(obj) + "\n" for obj in lines))
    return path


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return keys_file(tmp_path, ADDRESS, name="[blink]label[/]")


def _no_raw_controls(text: str) -> None:
    bad = [c for c in text if (ord(c) < 0x20 and c not in "\n") or 0x7F <= ord(c) < 0xA0]
    assert bad == [], repr(text)
    assert "\u202e" not in text


def test_decode_table_shows_names_as_written(tmp_path: Path, keys: Path) -> None:
    cap = _capture(tmp_path / "hostile.jsonl", HOSTILE)
    r = victron_bms(tmp_path, "decode", str(cap), "--keys", str(keys))
    assert r.returncode == 0, r.stderr
    _no_raw_controls(r.stdout + r.stderr)
    rows = r.stdout.splitlines()[1:]
    assert len(rows) == len(HOSTILE)
    assert "[@click=app.quit" in rows[0] and "x[/b]y" in rows[1]
    assert "\\x1b[2J" in rows[3]  # escaped, visible
    assert all("12.53 V" in row for row in rows)  # the vector's value, every row


def test_decode_csv_cells_are_plain(tmp_path: Path, keys: Path) -> None:
    cap = _capture(tmp_path / "hostile.jsonl", HOSTILE)
    r = victron_bms(tmp_path, "decode", str(cap), "--keys", str(keys), "--format", "csv")
    assert r.returncode == 0, r.stderr
    _no_raw_controls(r.stdout)
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["name"] for row in rows[:3]] == HOSTILE[:3]
    assert rows[3]["name"].startswith("\\x1b[2J\\x1b]0;pwned\\x07")
    assert rows[5]["name"] == "line\\x0abreak\\x0dcr"  # one row per frame, not three lines


def test_decode_jsonl_keeps_the_name_exactly(tmp_path: Path, keys: Path) -> None:
    cap = _capture(tmp_path / "hostile.jsonl", HOSTILE)
    r = victron_bms(tmp_path, "decode", str(cap), "--keys", str(keys), "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["name"] for line in r.stdout.splitlines()] == HOSTILE


def test_odd_timestamps_and_names_do_not_crash_the_table(tmp_path: Path, keys: Path) -> None:
    path = tmp_path / "odd.jsonl"
    head = {"format": "victron-ble-bms-capture", "version": 1}
    frames = [
        {"ts": ts, "address": ADDRESS, "name": name, "manufacturer_data": {"737": SHUNT_HEX}}
        for ts, name in ((1e300, "huge"), (-1e18, 7), (1_700_000_000.5, ["a", "b"]))
    ]
    path.write_text("".join(json.dumps(o) + "\n" for o in [head, *frames]))
    for fmt in ("table", "csv"):
        r = victron_bms(tmp_path, "decode", str(path), "--keys", str(keys), "--format", fmt)
        assert "Traceback" not in r.stderr, r.stderr
        assert r.stdout.count("12.53") >= 1
