"""A capture holding a cut frame is not a clean read: the summary counts it, the JSON says the
codes are unknown, and the exit status is 3 (issue 9 item 2: never a silent all-clear)."""

from __future__ import annotations

import json
from pathlib import Path

from .user import SHUNT_HEX, keys_file, victron_bms

ADDRESS = "D1:23:45:67:89:AB"
# The public SmartShunt vector cut after two data bytes (the reproduction): the alarm
# reason, which the battery monitor's codes come from, never arrived.
CUT_HEX = "100289a302b040af925d"


def _recording(path: Path, frames: list[str]) -> Path:
    lines = [json.dumps({"format": "victron-ble-bms-capture", "version": 1})]
    for i, hex_data in enumerate(frames):
        lines.append(
            json.dumps(
                {
                    "ts": 1700000000.0 + i,
                    "address": ADDRESS,
                    "rssi": -60,
                    "manufacturer_data": {"737": hex_data},
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def _keys(home: Path) -> Path:
    return keys_file(home, ADDRESS)


def test_a_cut_frame_makes_the_read_partial_and_its_codes_unknown(tmp_path: Path) -> None:
    capture = _recording(tmp_path / "cut.jsonl", [SHUNT_HEX, CUT_HEX, SHUNT_HEX])
    keys = _keys(tmp_path)
    result = victron_bms(tmp_path, "decode", str(capture), "--keys", str(keys), "--format", "jsonl")
    assert result.returncode == 3, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(objects) == 3
    assert objects[0]["codes"] == [] and objects[2]["codes"] == []
    assert objects[1]["codes"] is None and objects[1]["partial"] is True
    assert "1 partial (codes unknown)" in result.stderr


def test_complete_frames_alone_still_exit_zero(tmp_path: Path) -> None:
    capture = _recording(tmp_path / "ok.jsonl", [SHUNT_HEX, SHUNT_HEX])
    keys = _keys(tmp_path)
    result = victron_bms(tmp_path, "decode", str(capture), "--keys", str(keys), "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    assert "partial" not in result.stderr


def test_the_table_does_not_draw_the_all_clear_for_a_cut_frame(tmp_path: Path) -> None:
    capture = _recording(tmp_path / "cut.jsonl", [CUT_HEX])
    keys = _keys(tmp_path)
    result = victron_bms(tmp_path, "decode", str(capture), "--keys", str(keys))
    assert result.returncode == 3, result.stderr
    assert "unknown" in result.stdout.lower()
