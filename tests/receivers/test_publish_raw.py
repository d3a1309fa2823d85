"""`serve --publish-raw` feeding `serve --source mqtt` through a real mosquitto, watched by an
independent client (mosquitto_sub): a receiver (A, the emulator standing in for its radio)
forwards raw frames without keys; the decoder (B, with the keys) publishes decoded state
naming A as the receiver. Both run as a user runs them (subprocesses)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mqtt.broker import Broker, retained, subscribe
from tests.mqtt.test_serve import PREFIX
from tests.serve_process import Serve, clean
from victron_ble_bms.sources.keys import KeyStore

BATTERY = "C0:FF:EE:00:00:01"  # 25.6 V: 8 cells
BMS = "C0:FF:EE:00:00:02"
KEYS = {BATTERY: "0102030405060708090a0b0c0d0e0f10", BMS: "a1a2a3a4a5a6a7a8a9aaabacadaeafb0"}
RECEIVER = "pi-zero.bow"


def node(address: str) -> str:
    return address.replace(":", "").lower()


def test_a_receiver_forwards_raw_and_a_decoder_publishes_its_state(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    store = KeyStore(tmp_path / "keys.toml")
    for address, key in KEYS.items():
        store.add(address, key)
    store.save()
    decoder = receiver = None
    try:
        with subscribe(mqtt_broker) as sub:
            decoder = Serve(
                tmp_path, "--source", "mqtt", "--mqtt", mqtt_broker.url,
                "--keys", str(store.path), "--duration", "60",
            )  # fmt: skip
            decoder.wait_stderr("connected to")
            receiver = Serve(
                tmp_path, "--source", "emulator",
                "--device", f"lithium-25.6v-200ah:{BATTERY}:{KEYS[BATTERY]}",
                "--device", f"smart-bms-12-200:{BMS}:{KEYS[BMS]}",
                "--publish-raw", "--receiver-id", RECEIVER,
                "--mqtt", mqtt_broker.url, "--duration", "6",
            )  # fmt: skip
            battery = sub.wait_for(
                lambda m: m.topic == f"{PREFIX}/{node(BATTERY)}/state" and RECEIVER in m.payload
            )
            bms = sub.wait_for(
                lambda m: m.topic == f"{PREFIX}/{node(BMS)}/state" and RECEIVER in m.payload
            )
            assert receiver.proc.wait(30) == 0  # --duration ended it
            receiver.stop()
            decoder.wait_stderr(f"receiver {RECEIVER!r} went offline")
            # Heard only through that receiver: offline at once, not after stale_after_s (60 s).
            for address in (BATTERY, BMS):
                sub.wait_for(
                    lambda m, a=address: (
                        m.topic == f"{PREFIX}/{node(a)}/availability"  # type: ignore[misc]
                        and m.payload == "offline"
                    ),
                    timeout=5,
                )
            held = retained(mqtt_broker)
            messages = sub.messages
        assert decoder.stop(30) == 0
    finally:
        for s in (decoder, receiver):
            if s is not None and s.proc.poll() is None:
                s.proc.kill()
                s.stop(10)

    obj = battery.json()
    assert isinstance(obj, dict)
    assert obj["key_status"] == "ok" and obj["receiver"] == RECEIVER
    assert set(obj["receivers"]) == {RECEIVER}
    cells = obj["cell_voltages_v"]
    assert len(cells) == 8 and all(2.5 < v < 3.7 for v in cells)
    assert isinstance(obj["codes"], list)
    bms_obj = bms.json()
    assert isinstance(bms_obj, dict) and bms_obj["product"].startswith("Smart BMS")
    assert isinstance(bms_obj["codes"], list) and bms_obj["receiver"] == RECEIVER

    raw = [m for m in messages if m.topic == f"{PREFIX}/raw/{RECEIVER}"]
    frames = [(m.json()["address"], m.json()["manufacturer_data"]["737"]) for m in raw]  # type: ignore[index]
    # The decoded state is of a frame the receiver sent: its nonce is in bytes 5-6 (§1.1).
    nonces = {int.from_bytes(bytes.fromhex(d)[5:7], "little") for a, d in frames if a == BATTERY}
    assert obj["nonce"] in nonces
    # Each transmission once, though the emulator repeats adverts as BlueZ does.
    assert len(frames) == len(set(frames)) >= 4
    repeats = re.search(r"(\d+) repeats", receiver.stderr)
    assert repeats is not None and int(repeats.group(1)) > 0, receiver.stderr
    # Never retained; no key anywhere; the receiver published no state and no entities.
    assert not any(
        t.startswith(f"{PREFIX}/raw/{RECEIVER}") and "availability" not in t for t in held
    )
    assert held[f"{PREFIX}/raw/{RECEIVER}/availability"] == "offline"
    for m in messages:
        for key in KEYS.values():
            assert key not in m.payload.lower()
        if m.topic.endswith("/state"):
            assert '"receivers"' in m.payload, m  # only the decoder publishes states
    clean(receiver.stderr, *KEYS.values())
    clean(decoder.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--publish-raw", "--receiver-id", "bow/pi"], "--receiver-id may contain only"),
        (["--publish-raw", "--receiver-id", "bow+"], "--receiver-id may contain only"),
        (["--publish-raw", "--receiver-id", "#"], "--receiver-id may contain only"),
        (["--publish-raw", "--receiver-id", ""], "--receiver-id must be 1"),
        (["--publish-raw", "--source", "mqtt"], "it would loop"),
        (["--receiver-id", "bow"], "goes with --publish-raw"),
    ],
)
def test_bad_receiver_options_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    s = Serve(tmp_path, "--mqtt", "mqtt://127.0.0.1:1", "--source", "emulator", *args)
    assert s.proc.wait(30) == 2
    s.stop()
    assert message in s.stderr and len(s.stderr.splitlines()) == 1, s.stderr
    clean(s.stderr)


def test_the_systemd_unit_of_a_receiver_keeps_its_mode(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "serve", "--mqtt", "mqtt://broker",
         "--source", "emulator", "--publish-raw", "--receiver-id", RECEIVER,
         "--print-systemd-unit"],
        capture_output=True, text=True, check=True,
        env=dict(os.environ, XDG_CONFIG_HOME=str(tmp_path)),
    ).stdout  # fmt: skip
    (exec_start,) = [line for line in out.splitlines() if line.startswith("ExecStart=")]
    assert f"--publish-raw --receiver-id {RECEIVER}" in exec_start
    assert "--keys" not in exec_start  # a receiver reads no keys
