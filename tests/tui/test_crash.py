"""An internal error while a key is in play: one line, a non-zero status, no key (issue 9
item 3). Textual's own crash screen prints every frame's locals, keys included, and exits 0.

The dashboard runs as a user runs it (`victron-bms dashboard --replay … --keys …`) in a
subprocess, on Textual's headless driver, with a fault injected into the decoder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from victron_ble_bms.sources.keys import KeyStore

from . import frames

INJECT = """
import sys
from victron_ble_bms.tui.app import DashboardApp
from victron_ble_bms.tui.screens.devices import DeviceListScreen

def broken(self, item):
    key = self.app.keys[next(iter(item))] if PLACE == "frame" else self.keys[item.address]
    raise TypeError("injected fault")  # with a key in a local of the frame that raises

if PLACE == "frame":  # a bug in a screen update, run from the event loop's own timer
    DeviceListScreen.devices_changed = broken
else:  # a bug in the dashboard's decoding step, with a key in hand
    DashboardApp.decode = broken
from victron_ble_bms.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("place", ["decode", "frame"])
def test_a_fault_with_a_key_in_play_exits_non_zero_with_one_line_and_no_key(
    tmp_path: Path, place: str
):
    capture = tmp_path / "c.jsonl"
    adv = frames.advert(frames.HOUSE, frames.house())
    lines = [
        {"format": "victron-ble-bms-capture", "version": 1, "source": "test"},
        {
            "ts": adv.ts,
            "address": adv.address,
            "rssi": adv.rssi,
            "manufacturer_data": {"737": adv.manufacturer_data[0x02E1].hex()},
        },
    ]
    capture.write_text("".join(json.dumps(obj) + "\n" for obj in lines))
    keys = KeyStore(tmp_path / "keys.toml")
    key = frames.KEYS[frames.HOUSE]
    keys.add(frames.HOUSE, key)
    keys.save()
    env = dict(os.environ, TEXTUAL_DRIVER="textual.drivers.headless_driver:HeadlessDriver")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            f"PLACE = {place!r}\n{INJECT}",
            "dashboard",
            "--replay",
            str(capture),
            "--keys",
            str(tmp_path / "keys.toml"),
            "--speed",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "internal error (TypeError" in out
    assert "Traceback (most recent call last)" not in out and "╭─" not in out  # no traceback
    assert "locals ─" not in out  # Rich's box of local variables
    # No more of the key than its first and last byte, in any spelling.
    raw = bytes.fromhex(key)
    for spelling in (key, key.upper(), repr(raw), raw.hex(" ")):
        for i in range(len(spelling) - 5):
            assert spelling[i : i + 6] not in out, "part of the key was printed"
