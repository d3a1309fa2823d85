"""`victron-bms serve --source mqtt` with two receivers sending our raw format through a real
mosquitto (mosquitto_pub as the receivers, mosquitto_sub as the independent reader)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.mqtt.broker import Broker, publish, subscribe
from tests.tui import frames
from victron_ble_bms.receivers import encode_raw, raw_topic
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.keys import KeyStore


def test_two_receivers_one_device_and_garbage_in_between(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    keys = KeyStore(tmp_path / "keys.toml")
    keys.add(frames.BOW, frames.KEYS[frames.BOW], name="bow")
    keys.save()
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    args = [
        *(sys.executable, "-m", "victron_ble_bms", "serve", "--source", "mqtt"),
        *("--mqtt", mqtt_broker.url, "--keys", str(keys.path), "--duration", "30"),
    ]
    node = frames.BOW.replace(":", "").lower()
    log = tmp_path / "serve.log"
    with (
        subscribe(mqtt_broker, f"victron-ble-bms/{node}/state") as sub,
        log.open("wb") as out,
        subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env) as serve,
    ):
        try:
            time.sleep(1.5)  # serve connects and subscribes
            publish(mqtt_broker, "victron-ble-bms/raw/bow-pi", b"\x00garbage")
            publish(mqtt_broker, "victron-ble-bms/raw/bow-pi", b'{"v": 1, "ts": "soon"}')
            for nonce in range(1, 4):
                # A new temperature each time: a change serve publishes (receivers alone are not).
                record = dataclasses.replace(frames.bow(), battery_temperature_c=18 + nonce)
                adv = frames.advert(frames.BOW, record, nonce=nonce, ts=time.time())
                for receiver, rssi in (("bow-pi", -82), ("stern-pi", -58)):
                    heard = Advertisement(adv.ts, adv.address, adv.manufacturer_data, rssi)
                    publish(mqtt_broker, raw_topic("victron-ble-bms", receiver), encode_raw(heard))
                time.sleep(1.1)  # serve publishes a device at most once a second
            state = sub.wait_for(
                lambda m: '"stern-pi"' in m.payload and '"bow-pi"' in m.payload, 15
            )
        finally:
            serve.terminate()
            serve.wait(15)
    obj = state.json()
    assert isinstance(obj, dict)
    assert obj["receiver"] == "stern-pi"  # the stronger signal
    assert set(obj["receivers"]) == {"bow-pi", "stern-pi"}
    assert obj["receivers"]["stern-pi"]["rssi"] == -58
    assert isinstance(obj["receivers"]["bow-pi"]["last_seen"], float)
    assert [c["id"] for c in obj["codes"]] == ["W-SL12"]
    assert len(obj["cell_voltages_v"]) == 8
    text = log.read_text()
    assert "Traceback" not in text
    assert "receiver 'bow-pi' (raw) is sending" in text
    assert "ignored a gateway message on victron-ble-bms/raw/bow-pi: not JSON (1 so far)" in text
    assert "raw/bow-pi: ts: expected seconds since the epoch (2 so far)" in text
