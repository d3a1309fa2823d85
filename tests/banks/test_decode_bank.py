"""The emulator's parallel-bank scenario through `decode --format jsonl`, run as a user runs it
(issue 20 "Tests"): a `{"type": "bank"}` line per change whose lowest/highest cell agree with
the members' own frame lines above it; one member silenced mid-run (its lines cut from the
capture, as a receiver that stops hearing it) turns the verdict degraded, naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.cli.user import victron_bms

SILENCE_AFTER_S = 150.0


@pytest.fixture(scope="module")
def bank_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("bank")
    capture = home / "bank.jsonl"
    done = victron_bms(
        home,
        "emulate",
        "--scenario",
        "parallel-bank",
        "--capture",
        str(capture),
        "--speed",
        "max",
        "--duration",
        "300",
    )
    assert done.returncode == 0, done.stderr
    return capture


def _decode(home: Path, capture: Path, keys: Path) -> list[dict[str, Any]]:
    done = victron_bms(home, "decode", str(capture), "--keys", str(keys), "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _cells(frame: dict[str, Any]) -> list[tuple[float, int]]:
    return [
        (float(v), i)
        for i, v in enumerate(frame.get("cell_voltages_v") or (), 1)
        if isinstance(v, int | float)
    ]


def test_bank_lines_agree_with_the_member_frames(bank_capture: Path, tmp_path: Path) -> None:
    objs = _decode(tmp_path, bank_capture, Path(f"{bank_capture}.keys.toml"))
    banks = [o for o in objs if o.get("type") == "bank"]
    frames = [o for o in objs if o.get("type") != "bank"]
    assert banks and frames and all(o["name"] == "parallel-bank" for o in banks)
    assert banks[-1]["verdict"] == "ok" and banks[-1]["members_heard"] == 4
    latest: dict[str, dict[str, Any]] = {}
    checked = 0
    for o in objs:
        if o.get("type") != "bank":
            latest[o["address"]] = o
            continue
        if o["members_heard"] != 4:
            continue
        # the plain loop, over the decoder's own frame lines
        cells = [
            (v, f"{latest[a]['name']}", n)
            for a, f in latest.items()
            for v, n in _cells(f)
            if a in {m["address"] for m in o["member_states"]}
        ]
        low = min(c[0] for c in cells)
        high = max(c[0] for c in cells)
        assert o["cell_voltage_min_v"] == low and o["cell_voltage_max_v"] == high
        assert o["cell_spread_mv"] == round((high - low) * 1000)
        at_member, _, at_cell = o["cell_voltage_min_at"].rpartition(": cell ")
        assert any(
            m.endswith(at_member[-4:]) and n == int(at_cell) for v, m, n in cells if v == low
        )
        lynx = next(f for f in latest.values() if f["record_type"] == "lynx_smart_bms")
        assert o["soc_pct"] == lynx["soc_pct"] and o["current_a"] == lynx["battery_current_a"]
        checked += 1
    assert checked > 50


def test_a_member_silenced_mid_run_is_named(bank_capture: Path, tmp_path: Path) -> None:
    lines = bank_capture.read_text().splitlines()
    header, body = lines[0], [json.loads(x) for x in lines[1:]]
    start = body[0]["ts"]
    keys = Path(f"{bank_capture}.keys.toml")
    victim = next(o["address"] for o in body if o["name"].startswith("LI 12.8V"))
    kept = [o for o in body if not (o["address"] == victim and o["ts"] > start + SILENCE_AFTER_S)]
    cut = tmp_path / "silenced.jsonl"
    cut.write_text("\n".join([header, *(json.dumps(o) for o in kept)]) + "\n")
    shutil.copy(keys, tmp_path / keys.name)
    objs = _decode(tmp_path, cut, tmp_path / keys.name)
    banks = [o for o in objs if o.get("type") == "bank"]
    before = [b for b in banks if b["ts"] < start + SILENCE_AFTER_S]
    after = [b for b in banks if b["ts"] > start + SILENCE_AFTER_S + 61]
    assert before[-1]["verdict"] == "ok"
    assert after and all(b["verdict"] in ("degraded", "unknown", "alarm") for b in after)
    last = after[-1]
    name = next(m["name"] for m in last["member_states"] if m["address"] == victim)
    assert f"{name}: stale" in last["reason"]
    assert last["members_heard"] == 3 and last["members_stale"] == 1
    assert last["problem"] is None and last["allowed_to_charge"] is None
