"""Issue 18: an oversized message is refused by the client's own limit before it is read whole.

Our readers connect with MQTT 5 and a Maximum Packet Size of 64 KiB, so the broker (a real
mosquitto) never sends them a 10 MB message at all; on main serve read each one whole (RSS grew
by 146 MB after 30) and only then refused it. A broker that speaks only MQTT 3.1.1 still works:
a proxy in front of mosquitto answers an MQTT 5 CONNECT as a 3.1.1 broker does (return code 1,
MQTT 3.1.1 §3.1.2.2) and passes 3.1.1 through.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.mqtt.broker import Broker, publish, subscribe
from tests.tui import frames
from victron_ble_bms.receivers import Receivers, advertisements, encode_raw, raw_topic
from victron_ble_bms.receivers.remote import remote_readings
from victron_ble_bms.receivers.stream import default_topics
from victron_ble_bms.sources.keys import KeyStore

RAW = raw_topic("victron-ble-bms", "pi")
TEN_MB = 10 * 1024 * 1024


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _publish_file(broker: Broker, topic: str, path: Path, retain: bool = False) -> None:
    pub = shutil.which("mosquitto_pub")
    if pub is None:
        pytest.skip("mosquitto-clients not installed")
    flags = ["-r"] if retain else []
    subprocess.run(  # noqa: S603
        [pub, *broker.client_args(), "-t", topic, "-f", str(path), *flags],
        check=True,
        timeout=60,
    )


def test_serve_is_never_sent_a_10_mb_message(mqtt_broker: Broker, tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys.toml")
    keys.add(frames.BOW, frames.KEYS[frames.BOW], name="bow")
    keys.save()
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    node = frames.BOW.replace(":", "").lower()
    big = tmp_path / "big.json"
    # Valid JSON claiming the keyed address: it would go first and be parsed, were it received.
    big.write_bytes(b'{"v": 1, "address": "' + frames.BOW.encode() + b'", "x": "' + b"a" * TEN_MB)
    log = tmp_path / "serve.log"
    args = [
        *(sys.executable, "-m", "victron_ble_bms", "serve", "--source", "mqtt"),
        *("--mqtt", mqtt_broker.url, "--keys", str(keys.path), "--duration", "60"),
    ]
    with (
        subscribe(mqtt_broker, f"victron-ble-bms/{node}/state") as sub,
        log.open("wb") as out,
        subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env) as serve,
    ):
        try:
            mqtt_broker.wait_subscribed(default_topics())  # serve connects and subscribes
            before = _rss_kib(serve.pid)
            for _ in range(10):
                _publish_file(mqtt_broker, RAW, big)
            record = dataclasses.replace(frames.bow(), battery_temperature_c=31)
            adv = frames.advert(frames.BOW, record, nonce=5, ts=time.time())
            publish(mqtt_broker, RAW, encode_raw(adv))
            sub.wait_for(lambda m: '"battery_temperature_c":31,' in m.payload, 20)
            grown = _rss_kib(serve.pid) - before
            assert serve.poll() is None
        finally:
            serve.terminate()
            serve.wait(15)
    text = log.read_text()
    assert "Traceback" not in text
    # Never received, so never refused: on main each one was read whole, then "ignored … payload
    # of 10485823 bytes is larger than 4096".
    assert "larger than 4096" not in text
    assert grown < TEN_MB // 1024, f"serve grew by {grown} KiB"


def test_the_dashboard_reader_is_never_sent_a_10_mb_state(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b'{"address": "' + frames.BOW.encode() + b'", "x": "' + b"a" * TEN_MB)
    node = frames.BOW.replace(":", "").lower()
    _publish_file(mqtt_broker, f"victron-ble-bms/{node}/state", big, retain=True)
    state = {"address": frames.HOUSE, "ts": time.time(), "key_status": "no_key"}
    publish(mqtt_broker, "victron-ble-bms/c00000000001/state", json.dumps(state), retain=True)
    notes: list[str] = []

    async def first_reading() -> str:
        async for reading in remote_readings(mqtt_broker.url, on_note=notes.append):
            return reading.advertisement.address
        raise AssertionError("no reading")

    address = asyncio.run(asyncio.wait_for(first_reading(), 20))
    assert address == frames.HOUSE
    assert not any("bytes is larger" in n for n in notes), notes  # main: the state was read whole


class _Mqtt311Only:
    """A TCP proxy in front of mosquitto that answers an MQTT 5 CONNECT as a broker that speaks
    only 3.1.1 must (CONNACK return code 1, then close) and passes any other connection on."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.refused = 0
        self.passed = 0
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []  # every connection, closed by `close`

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def close(self) -> None:
        """Close every connection it still pipes (the server's close() leaves them open, and a
        transport left for the garbage collector warns in whichever test runs next)."""
        for writer in self.writers:
            writer.close()
        for writer in self.writers:
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        head = await reader.read(12)  # type, remaining length (< 128 here), "\0\4MQTT", level
        if len(head) >= 9 and head[8] == 5:
            self.refused += 1
            writer.write(bytes([0x20, 0x02, 0x00, 0x01]))
            await writer.drain()
            writer.close()
            return
        self.passed += 1
        up_reader, up_writer = await asyncio.open_connection(self.broker.host, self.broker.port)
        self.writers.append(up_writer)
        up_writer.write(head)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def test_a_broker_without_mqtt_5_is_read_with_3_1_1(
    mqtt_broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = _Mqtt311Only(mqtt_broker)
    caplog.set_level(logging.WARNING, "victron_ble_bms.receivers")

    async def run() -> str:
        server = await proxy.start()
        tracker = Receivers()
        url = f"mqtt://127.0.0.1:{proxy.port}"
        stream = advertisements(url, receivers=tracker)

        async def send() -> None:
            await asyncio.sleep(1.5)
            adv = frames.advert(frames.BOW, frames.bow(), nonce=3, ts=time.time())
            await asyncio.to_thread(publish, mqtt_broker, RAW, encode_raw(adv))

        sender = asyncio.ensure_future(send())
        try:
            async for adv in stream:
                return adv.address
            raise AssertionError("no advertisement")
        finally:
            await stream.aclose()
            await sender
            server.close()
            await proxy.close()
            await server.wait_closed()

    assert asyncio.run(asyncio.wait_for(run(), 20)) == frames.BOW
    assert proxy.refused == 1 and proxy.passed == 1
    assert "does not speak MQTT 5: connecting with 3.1.1, where messages larger" in caplog.text
