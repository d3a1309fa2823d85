"""Issue 18: no single message stops `serve --source mqtt`. Fourteen hostile messages go through
a real mosquitto (sent by mosquitto_pub, an independent client); after each one a genuine frame
with a new value must still be decoded and published (read back by mosquitto_sub), and serve
must still be running. Six of these messages stopped serve before (with exit status 0)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.mqtt.broker import Broker, publish, subscribe
from tests.tui import frames
from victron_ble_bms.receivers import encode_raw, raw_topic
from victron_ble_bms.sources.keys import KeyStore

RAW = raw_topic("victron-ble-bms", "pi")
BT_TOPIC = "home/gw/BTtoMQTT/" + frames.BOW.replace(":", "")
BIG = "1" + "0" * 400  # a JSON integer beyond float range


def _raw(nonce: int, ts: str | None = None, **fields: object) -> bytes:
    """Our raw format for a genuine BOW frame (nonce `nonce`), with `ts` written verbatim as
    JSON text and any field replaced."""
    adv = frames.advert(frames.BOW, frames.bow(), nonce=nonce, ts=time.time())
    obj = json.loads(encode_raw(adv)) | fields
    if ts is not None:
        obj["ts"] = "@ts@"
    return json.dumps(obj).replace('"@ts@"', ts or "").encode()


def _bt(**json_texts: str) -> bytes:
    """A BTtoMQTT message for BOW whose fields are given as JSON text."""
    fields = "".join(f',"{k}":{v}' for k, v in json_texts.items())
    return f'{{"id":"{frames.BOW}"{fields}}}'.encode()


def hostile(nonce: int) -> list[tuple[str, str, bytes]]:
    """(what, topic, payload): frames of the known, keyed device whose nonce jumps ahead (the
    device table then computes its allowance from the time), and malformed messages."""
    victron = frames.advert(frames.BOW, frames.bow(), nonce=nonce + 200).manufacturer_data[0x02E1]
    return [
        ("ts: an integer beyond float range", RAW, _raw(nonce + 200, BIG)),
        ("ts: a negative integer beyond float range", RAW, _raw(nonce + 200, "-" + BIG)),
        (
            "a company id of digits int() refuses",
            RAW,
            _raw(nonce + 200, manufacturer_data={"²": "00"}),
        ),
        ("ts: 1e308 for a known device", RAW, _raw(nonce + 200, "1e308")),
        ("ts: the largest double", RAW, _raw(nonce + 200, "1.7976931348623157e308")),
        ("ts: 1970 for a known device", RAW, _raw(nonce + 200, "0")),
        ("ts: NaN", RAW, _raw(nonce + 200, "NaN")),
        ("ts: Infinity", RAW, _raw(nonce + 200, "Infinity")),
        (
            "rssi: an integer beyond float range",
            BT_TOPIC,
            _bt(rssi=BIG, manufacturerdata=f'"e102{victron.hex()}"'),
        ),
        ("a message of 5000 bytes", RAW, b"{" + b" " * 4998 + b"}"),
        ("4000 nested arrays", RAW, b"[" * 4000),
        ("not UTF-8", RAW, b'{"v":1,"ts":\xff\xfe}'),
        ("a name of control characters", RAW, _raw(nonce + 200, name="\x1b[2J\x00\u202e" * 100)),
        (
            "a short Victron frame",
            BT_TOPIC,
            _bt(manufacturerdata=f'"e102{victron[:5].hex()}"'),
        ),
    ]


def test_no_single_message_stops_serve(mqtt_broker: Broker, tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys.toml")
    keys.add(frames.BOW, frames.KEYS[frames.BOW], name="bow")
    keys.save()
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    args = [
        *(sys.executable, "-m", "victron_ble_bms", "serve", "--source", "mqtt"),
        *("--mqtt", mqtt_broker.url, "--keys", str(keys.path), "--duration", "300"),
    ]
    node = frames.BOW.replace(":", "").lower()
    log = tmp_path / "serve.log"
    survived: list[str] = []
    with (
        subscribe(mqtt_broker, f"victron-ble-bms/{node}/state") as sub,
        log.open("wb") as out,
        subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env) as serve,
    ):
        try:
            time.sleep(1.5)  # serve connects and subscribes
            nonce = 1
            for what, topic, payload in hostile(nonce):
                publish(mqtt_broker, topic, payload)
                # Then a genuine next frame with a new temperature: it must come out decoded.
                nonce += 1
                temperature = 10 + nonce
                record = dataclasses.replace(frames.bow(), battery_temperature_c=temperature)
                adv = frames.advert(frames.BOW, record, nonce=nonce, ts=time.time())
                publish(mqtt_broker, RAW, encode_raw(adv))
                try:
                    sub.wait_for(
                        lambda m, t=temperature: f'"battery_temperature_c":{t},' in m.payload, 10
                    )
                except TimeoutError:
                    break
                if serve.poll() is not None:
                    break
                survived.append(what)
        finally:
            serve.terminate()
            status = serve.wait(15)
    text = log.read_text()
    assert len(survived) == 14, f"serve stopped after {survived[-1:]}; its log:\n{text}"
    assert status == 0, text
    assert "Traceback" not in text
    assert "ts: expected seconds since the epoch" in text
