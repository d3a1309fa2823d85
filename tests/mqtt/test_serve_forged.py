"""Issue 18 item 2 through `serve`: forged frames (a device's clear header with its next nonce,
random bytes after it, cut to 9–24 bytes) interleaved in a real recording must never reach the
broker as a device's state. Read by an independent client (mosquitto_sub): every state
published with values carries the values of the genuine frame with its nonce (from `decode` of
the clean recording), and the genuine warning of the scenario is published."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

from tests.mqtt.broker import Broker, subscribe

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "captures" / "scenario-deep-discharge.jsonl"
SKIP = ("ts", "nonce", "rssi", "name", "suspect")


def _forged_capture(tmp_path: Path) -> tuple[Path, int]:
    rng = random.Random(18)
    lines = SCENARIO.read_text().splitlines()
    out, forged = [lines[0]], 0
    for line in lines[1:]:
        out.append(line)
        obj = json.loads(line)
        data = bytes.fromhex(obj["manufacturer_data"]["737"])
        nonce = ((data[5] | data[6] << 8) + 1) & 0xFFFF  # the device's next nonce
        header = data[:5] + nonce.to_bytes(2, "little") + data[7:8]
        body = rng.randbytes(rng.randrange(1, 17))
        fake = obj | {"ts": obj["ts"] + 0.01, "manufacturer_data": {"737": (header + body).hex()}}
        out.append(json.dumps(fake))
        forged += 1
    path = tmp_path / "forged.jsonl"
    path.write_text("\n".join(out) + "\n")
    return path, forged


def _genuine(keys: Path) -> dict[tuple[str, int], dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "decode", str(SCENARIO), "--keys", str(keys)]
        + ["--format", "jsonl"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    frames = {}
    for line in done.stdout.splitlines():
        obj = json.loads(line)
        frames[obj["address"], obj["nonce"]] = obj
    return frames


def test_forged_frames_through_serve_are_never_published_as_state(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.toml"
    shutil.copy(REPO / "captures" / "keys.toml", keys)
    keys.chmod(0o600)
    capture, forged = _forged_capture(tmp_path)
    genuine = _genuine(keys)
    with subscribe(mqtt_broker, "victron-ble-bms/+/state") as sub:
        done = subprocess.run(
            [sys.executable, "-m", "victron_ble_bms", "serve", "--source", "capture"]
            + [str(capture), "--speed", "max", "--mqtt", mqtt_broker.url, "--keys", str(keys)],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg")),
            check=False,
        )
        assert done.returncode == 0, done.stderr
        states = [json.loads(m.payload) for m in sub.messages if m.payload]
    assert forged > 800
    assert states
    # serve holds a value until it moves by its deadband (mqtt/publisher.py `_hold`), so a
    # state's numbers are a recent genuine frame's within a band; its codes exactly.
    bands = {"battery_voltage_v": 0.05, "cell_voltages_v": 0.02, "battery_temperature_c": 1.0}

    def close(state: dict[str, object], frame: dict[str, object]) -> bool:
        if {c["id"] for c in state.get("code_details") or ()} != {  # type: ignore[attr-defined]
            c["id"]
            for c in frame.get("codes") or ()  # type: ignore[attr-defined]
        } or state.get("balancer_status") != frame.get("balancer_status"):
            return False
        for key, band in bands.items():
            a, b = state.get(key), frame.get(key)
            pairs = zip(a, b, strict=True) if isinstance(a, list) else [(a, b)]  # type: ignore[arg-type]
            for x, y in pairs:
                if (x is None) != (y is None) or (x is not None and abs(x - y) > band):  # type: ignore[operator]
                    return False
        return True

    wrong = []
    for state in states:
        if state.get("key_status") != "ok" or "battery_voltage_v" not in state:
            continue
        # Trusted: the genuine frame with its nonce (or one just before, held values); a
        # suspect state re-sends the last good values with the suspect frame's nonce.
        nonce = state["nonce"]
        recent = [genuine.get((state["address"], (nonce - k) & 0xFFFF)) for k in range(6)]
        if not any(f is not None and close(state, f) for f in recent):
            wrong.append(state)
    assert wrong == []
    # serve sends a device's state at most every few seconds: the last one it sent carries the
    # codes of the recording's last genuine frame (the alarm the scenario ends in), never a
    # forged frame's, though a forged frame came after it.
    last_genuine = list(genuine.values())[-1]
    wanted = {c["id"] for c in last_genuine.get("codes") or ()}
    assert wanted, last_genuine
    assert {c["id"] for c in states[-1].get("code_details") or ()} == wanted, states[-1]
