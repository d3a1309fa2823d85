"""Pending, then suspect (sources/devices.py), seen where a user sees it: one `serve` replaying a
recording into a real mosquitto (read by mosquitto_sub), its web page (read as a browser reads
it, the `/events` stream) and a real signalk-server (read through its own REST API).

The recording: 40 s of the bundled lynx-overcharge capture, in which the battery and the Lynx
change values many times (each change's first frame is pending until the next agrees), with
one forged frame put in: the battery's clear header with its next nonce and random bytes that
happen to decrypt to a complete, plausible record with other codes (what ~7 % of random
frames do). Wanted, on all three: no "suspect" for the genuine changes; the forged change,
never confirmed by the battery, said once the bound has passed — and never its codes."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.mqtt.broker import Broker, subscribe
from tests.mqtt.broker import mqtt_broker as mqtt_broker  # the fixture
from tests.ports import free_port
from tests.signalk.server import SignalKServer, values
from victron_ble_bms.protocol import decode
from victron_ble_bms.sources.capture import open_capture
from victron_ble_bms.sources.devices import (
    NEVER_CONFIRMED,
    DevicesState,
    Outcome,
)
from victron_ble_bms.sources.keys import KeyStore

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "captures" / "scenario-lynx-overcharge.jsonl"
START_S, LENGTH_S, FORGED_AT_S = 740.0, 40.0, 20.0  # a stretch with many changes
SPEED = 2.0


def _recording(tmp: Path, keys: dict[str, bytes]) -> tuple[Path, str, set[str]]:
    """The 40 s with the forged frame; its address and the codes it carries."""
    lines = SOURCE.read_text().splitlines()
    body = [json.loads(x) for x in lines[1:]]
    t0 = body[0]["ts"] + START_S
    kept = [o for o in body if t0 <= o["ts"] < t0 + LENGTH_S]
    at = next(
        i
        for i, o in enumerate(kept)
        if o["ts"] >= t0 + FORGED_AT_S and decode(_data(o), keys[o["address"]]).record_type == 0x05
    )
    genuine = kept[at]
    data = _data(genuine)
    key = keys[genuine["address"]]
    real = decode(data, key)
    nonce = ((data[5] | data[6] << 8) + 1) & 0xFFFF
    header = data[:5] + nonce.to_bytes(2, "little") + data[7:8]
    rng = random.Random(18)
    while True:  # the attacker's trials: most random bodies are implausible
        forged = header + rng.randbytes(len(data) - 8)
        record = decode(forged, key)
        if not record.missing_fields and not record.implausible and record.codes != real.codes:
            break
    fake = {**genuine, "ts": genuine["ts"] + 0.01, "manufacturer_data": {"737": forged.hex()}}
    kept.insert(at + 1, fake)
    path = tmp / "recording.jsonl"
    path.write_text("\n".join([lines[0], *(json.dumps(o) for o in kept)]) + "\n")
    # codes only the forged frame has: none of the window's genuine frames of any device
    genuine_codes = {
        c.id
        for o in kept
        if o is not fake
        for c in decode(_data(o), keys[o["address"]]).codes or ()
    }
    return path, genuine["address"], {c.id for c in record.codes or ()} - genuine_codes


def _data(obj: dict[str, Any]) -> bytes:
    return bytes.fromhex(obj["manufacturer_data"]["737"])


def _judged(path: Path, keys: dict[str, bytes]) -> tuple[int, list[tuple[float, str]]]:
    """Preconditions from the device table itself: pending frames, and when a flag is due."""
    table = DevicesState(keys)
    pending, notes = 0, []
    with open_capture(str(path)) as capture:
        for adv in capture:
            u = table.update(adv)
            pending += u.outcome is Outcome.PENDING
            if u.outcome is Outcome.SUSPECT or (u.reading is not None and u.reading.note):
                notes.append((adv.ts, u.suspicion or ""))
    return pending, notes


class _Collect(threading.Thread):
    def __init__(self, target: Any) -> None:
        super().__init__(daemon=True)
        self.seen: list[Any] = []
        self.stop = threading.Event()
        self._target = target

    def run(self) -> None:
        self._target(self)


def _web(url: str) -> _Collect:
    def read(me: _Collect) -> None:
        deadline = time.monotonic() + 20
        while not me.stop.is_set() and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "events", timeout=30) as r:  # noqa: S310
                    for raw in r:
                        line = raw.decode()
                        if line.startswith("data: ") and line[6:].strip() not in ("", "0"):
                            me.seen.append(json.loads(line[6:]))
                return  # serve ended the stream
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)

    return _Collect(read)


def _signalk(server: SignalKServer) -> _Collect:
    def poll(me: _Collect) -> None:
        while not me.stop.is_set():
            try:
                tree = server.get("electrical.batteries") or {}
            except Exception:  # noqa: BLE001 - not there yet
                tree = {}
            for battery_id, node in tree.items():
                got = values(node)
                me.seen.append((battery_id, got.get("bms.suspect"), got.get("bms.activeCodes")))
            time.sleep(0.05)

    return _Collect(poll)


def _suspects(obj: Any) -> list[str]:
    """Every "suspect" text anywhere in a JSON document."""
    if isinstance(obj, dict):
        here = [str(obj["suspect"])] if obj.get("suspect") else []
        return here + [s for v in obj.values() for s in _suspects(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _suspects(v)]
    return []


def test_genuine_changes_are_quiet_and_a_forged_one_is_said_after_the_bound(
    mqtt_broker: Broker, signalk_server: SignalKServer, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys.toml"
    keys_file.write_text((REPO / "captures" / "keys.toml").read_text())
    keys_file.chmod(0o600)
    keys = {e.address: e.key for e in KeyStore.load(keys_file).entries()}
    recording, forged_address, forged_codes = _recording(tmp_path, keys)
    pending, notes = _judged(recording, keys)
    assert pending >= 10  # genuine changes, each pending for a frame
    # the forged one, said with the battery's first frame past the bound
    assert len(notes) == 1 and NEVER_CONFIRMED in notes[0][1], notes

    config = tmp_path / "serve.toml"
    config.write_text("[mqtt]\nmin_interval_s = 0.0\n")  # every state, none coalesced
    config.chmod(0o600)
    port = free_port()
    web, sk = _web(f"http://127.0.0.1:{port}/"), _signalk(signalk_server)
    with subscribe(mqtt_broker, "victron-ble-bms/+/state") as sub:
        serve = subprocess.Popen(
            [sys.executable, "-m", "victron_ble_bms", "serve", "--source", "capture"]
            + [str(recording), "--speed", str(SPEED), "--keys", str(keys_file)]
            + ["--config", str(config), "--mqtt", mqtt_broker.url]
            + ["--http", f"127.0.0.1:{port}", "--signalk", signalk_server.stream_url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg")),
        )
        web.start()
        sk.start()
        try:
            _, err = serve.communicate(timeout=LENGTH_S / SPEED + 60)
        finally:
            if serve.poll() is None:
                serve.kill()
        time.sleep(1.0)  # the last deltas reach the server
        web.stop.set()
        sk.stop.set()
        web.join(10)
        sk.join(10)
        states = [json.loads(m.payload) for m in sub.messages if m.payload]
    assert serve.returncode == 0, err

    mqtt = [(s["address"], s.get("suspect")) for s in states]
    page = [s for doc in web.seen for s in _suspects(doc)]
    signalk = [(b, s) for b, s, _ in sk.seen if s]
    assert len(states) > 20 and len(web.seen) > 10 and len(sk.seen) > 10
    for where, said in (
        ("mqtt", [s for a, s in mqtt if s]),
        ("web", page),
        ("signalk", [s for _, s in signalk]),
    ):
        # never "unconfirmed change" for a genuine change; the forged one said, after the bound
        assert said, f"{where}: the forged change was never said"
        assert all(NEVER_CONFIRMED in s for s in said), (where, said)
    assert {a for a, s in mqtt if s} == {forged_address}
    # the forged frame's codes never reach anyone
    assert forged_codes
    for s in states:
        ids = {c["id"] for c in s.get("code_details") or ()}
        assert not ids & forged_codes, s
    assert not any(c and any(code in str(c) for code in forged_codes) for _, _, c in sk.seen), (
        forged_codes
    )
