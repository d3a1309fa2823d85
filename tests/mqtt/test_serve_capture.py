"""Issue 18: `serve --source capture F --speed N` plays to the end and publishes what it read.

The capture is the bundled demo recording (captures/demo.jsonl, its keys captures/keys.toml)
with two hostile lines added in the middle: a frame dated in the year 2191 (finite, but a
replay that waits for it waits 167 years) and one at 1e308 s (no date at all). Every device's
final state on the broker (read by mosquitto_sub) must be the last one `decode` gives for the
same file, and serve must end by itself, with status 0, in seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.mqtt.broker import Broker, retained

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "captures" / "demo.jsonl"


def _hostile_capture(tmp_path: Path) -> Path:
    lines = DEMO.read_text().splitlines()
    middle = len(lines) // 2
    frame = json.loads(lines[middle])
    hostile = [json.dumps(frame | {"ts": 7.0e9}), json.dumps(frame | {"ts": 1e308})]
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join(lines[:middle] + hostile + lines[middle:]) + "\n")
    return path


VOLATILE = ("ts", "nonce", "rssi", "name")  # serve publishes a change, not every new nonce


def _last_decoded(capture: Path, keys: Path) -> dict[str, dict[str, object]]:
    """Each device's last reading, from `decode --format jsonl`, without what changes with
    every frame."""
    done = subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "decode", str(capture), "--keys", str(keys)]
        + ["--format", "jsonl"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    last: dict[str, dict[str, object]] = {}
    for line in done.stdout.splitlines():
        obj = json.loads(line)
        last[obj["address"]] = {k: v for k, v in obj.items() if k not in VOLATILE}
    return last


def _serve(broker: Broker, capture: Path, keys: Path, speed: str, tmp_path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "serve", "--source", "capture", str(capture)]
        + ["--speed", speed, "--mqtt", broker.url, "--keys", str(keys)],
        capture_output=True,
        text=True,
        timeout=90,  # before: waited for the year 2191
        env=dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg")),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert ", 0 not sent" in done.stderr
    return done.stderr


def _published_as_decoded(broker: Broker, capture: Path, keys: Path) -> None:
    expected = _last_decoded(capture, keys)
    assert len(expected) == 7
    states = {
        json.loads(payload)["address"]: json.loads(payload)
        for topic, payload in retained(broker, "victron-ble-bms/+/state").items()
        if payload
    }
    assert set(states) == set(expected)  # before: none at all (the capture ended first)
    for address, values in expected.items():
        assert {k: states[address][k] for k in values} == values, address
    assert all(s["key_status"] == "ok" for s in states.values())


def _keys(tmp_path: Path) -> Path:
    keys = tmp_path / "keys.toml"
    shutil.copy(REPO / "captures" / "keys.toml", keys)
    keys.chmod(0o600)
    return keys


def test_a_replay_at_full_speed_publishes_before_it_exits(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    keys = _keys(tmp_path)
    _serve(mqtt_broker, DEMO, keys, "max", tmp_path)
    _published_as_decoded(mqtt_broker, DEMO, keys)


def test_a_fast_replay_with_absurd_times_ends_and_publishes_every_device(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    capture = _hostile_capture(tmp_path)
    keys = _keys(tmp_path)
    log = _serve(mqtt_broker, capture, keys, "1000", tmp_path)
    assert "not waiting for a gap of" in log  # the frame of 2191
    assert "which is no date: skipped" in log  # the frame at 1e308
    _published_as_decoded(mqtt_broker, capture, keys)
