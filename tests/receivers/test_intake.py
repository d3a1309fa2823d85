"""Issue 18: a flood of new addresses cannot starve keyed devices, and what waits is bounded.

The lanes of receivers/intake.py directly (aiomqtt's own Message objects, a fake clock), then
`serve --source mqtt` against a real mosquitto flooded by mosquitto_pub (an independent client)
while a keyed device keeps sending: every one of its readings must be published.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest

from tests.mqtt.broker import Broker, subscribe
from tests.tui import frames
from victron_ble_bms.receivers import Receivers, raw_topic
from victron_ble_bms.receivers.formats import MAX_PAYLOAD_BYTES
from victron_ble_bms.receivers.intake import KNOWN_MAX, NEW_MAX, PER_ADDRESS, Intake
from victron_ble_bms.receivers.stream import default_topics, handle
from victron_ble_bms.sources.keys import KeyStore

RAW = raw_topic("victron-ble-bms", "pi")
VICTRON = "e1021000a0a305341274aabbccddeeff00112233445566778899"


def _bt(address: str, topic_mac: str | None = None) -> aiomqtt.Message:
    mac = topic_mac or address.replace(":", "")
    payload = json.dumps({"id": address, "rssi": -70, "manufacturerdata": VICTRON}).encode()
    return aiomqtt.Message(f"home/gw/BTtoMQTT/{mac}", payload, 0, False, 0, None)


def _new(i: int) -> aiomqtt.Message:
    mac = f"{0xD0_00_00_00_00_00 + i:012X}"
    return _bt(":".join(mac[j : j + 2] for j in range(0, 12, 2)))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _queue(
    intake: Intake,
) -> asyncio.Queue[aiomqtt.Message]:
    return intake.queue_type()(maxsize=10)  # as aiomqtt builds it; its maxsize is not ours


def _drain(queue: asyncio.Queue[aiomqtt.Message]) -> list[str]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait().topic.value)
    return out


def test_keyed_then_known_then_new_whatever_the_arrival_order() -> None:
    tracker = Receivers()
    known = "C0:00:00:00:00:09"
    handle(tracker, "home/gw/BTtoMQTT/x", _bt(known).payload, 0.0)  # heard before
    intake = Intake(first={frames.BOW}.__contains__, tracker=tracker, clock=Clock())
    queue = _queue(intake)
    for i in range(50):
        queue.put_nowait(_new(i))
    queue.put_nowait(_bt(known))
    queue.put_nowait(aiomqtt.Message("home/gw/LWT", b"offline", 0, False, 0, None))
    queue.put_nowait(_bt(frames.BOW.lower()))  # the keys file's address, any spelling
    assert queue.qsize() == 53
    order = _drain(queue)
    assert set(order[:2]) == {"home/gw/LWT", "home/gw/BTtoMQTT/c00000000002"}
    assert order[2] == "home/gw/BTtoMQTT/C00000000009"
    assert order[3:] == [_new(i).topic.value for i in range(50)]  # new ones in arrival order
    assert queue.qsize() == 0


def test_new_addresses_are_rate_limited_and_bounded() -> None:
    clock = Clock()
    intake = Intake(tracker=Receivers(), clock=clock, new_per_s=200.0)
    queue = _queue(intake)
    for i in range(10_000):  # all at one instant: the bucket holds 200
        queue.put_nowait(_new(i))
    assert queue.qsize() == 200
    assert intake.counters.shed_new == 9_800
    for step in range(100):  # 10 s at 200/s admitted, more than the lane holds
        clock.now += 0.1
        for i in range(300):
            queue.put_nowait(_new(step * 300 + i))
    assert queue.qsize() == NEW_MAX
    assert intake.counters.new == 200 + 2000
    assert intake.counters.shed_new == 40_000 - NEW_MAX  # all but those waiting


def test_one_flooded_keyed_address_does_not_hold_back_another() -> None:
    other = frames.HOUSE
    intake = Intake(first={frames.BOW, other}.__contains__, clock=Clock())
    queue = _queue(intake)
    for _ in range(1000):  # forged frames under BOW's address
        queue.put_nowait(_bt(frames.BOW))
    queue.put_nowait(_bt(other))
    assert queue.qsize() == PER_ADDRESS + 1
    assert intake.counters.shed_first == 1000 - PER_ADDRESS
    assert _drain(queue)[:2] == ["home/gw/BTtoMQTT/C00000000002", "home/gw/BTtoMQTT/C00000000001"]


def test_known_lane_is_bounded() -> None:
    tracker = Receivers()
    handle(tracker, "t/BTtoMQTT/x", _bt(frames.HOUSE).payload, 0.0)
    intake = Intake(tracker=tracker, clock=Clock())
    queue = _queue(intake)
    for _ in range(KNOWN_MAX + 10):
        queue.put_nowait(_bt(frames.HOUSE))
    assert queue.qsize() == KNOWN_MAX
    assert intake.counters.shed_known == 10


def test_an_oversized_payload_is_refused_before_it_waits() -> None:
    tracker = Receivers()
    lines: list[str] = []
    tracker.on_event = lines.append
    intake = Intake(first={frames.BOW}.__contains__, tracker=tracker, clock=Clock())
    queue = _queue(intake)
    big = b'{"id": "C0:00:00:00:00:02", "x": "' + b"a" * MAX_PAYLOAD_BYTES + b'"}'
    queue.put_nowait(aiomqtt.Message(RAW, big, 0, False, 0, None))
    assert queue.qsize() == 0
    assert intake.counters.oversized == 1
    assert tracker.counters.malformed == 1
    assert lines == [
        f"ignored a gateway message on {RAW}: payload of {len(big)} bytes is larger than "
        f"{MAX_PAYLOAD_BYTES} (1 so far)"
    ]


def test_the_shedding_is_reported_in_one_line_at_most_every_ten_seconds() -> None:
    clock = Clock()
    said: list[str] = []
    intake = Intake(tracker=Receivers(), clock=clock, say=said.append, new_per_s=1.0)
    queue = _queue(intake)
    for i in range(100):
        queue.put_nowait(_new(i))
    assert len(said) == 1  # the first shed message, at once
    clock.now += 10.5
    queue.put_nowait(_new(1000))
    assert len(said) == 2
    assert said[-1].startswith("incoming flood: dropped 99 messages for new addresses, 0 for")


def _flood_lines(start: int, n: int) -> list[str]:
    lines = []
    for i in range(start, start + n):
        mac = f"{0xD0_00_00_00_00_00 + i:012X}"
        address = ":".join(mac[j : j + 2] for j in range(0, 12, 2))
        lines.append(json.dumps({"id": address, "rssi": -70, "manufacturerdata": VICTRON}))
    return lines


def _keyed_line(temperature: int, nonce: int) -> str:
    """A Theengs/OpenMQTTGateway message (BTtoMQTT) carrying BOW's genuine frame."""
    record = dataclasses.replace(frames.bow(), battery_temperature_c=temperature)
    data = frames.advert(frames.BOW, record, nonce=nonce).manufacturer_data[0x02E1]
    return json.dumps({"id": frames.BOW, "rssi": -60, "manufacturerdata": "e102" + data.hex()})


def test_serve_publishes_every_keyed_reading_through_a_flood(tmp_path: Path) -> None:
    """One gateway connection sends 20,000 messages for new addresses, then the keyed device's
    frames (a new temperature, twice), and again: messages of one connection reach serve in
    that order.
    On main the client's queue (10,000) was full each time the keyed frame arrived, and it was
    dropped with the flood; now it is read before the backlog."""
    pub = shutil.which("mosquitto_pub")
    if pub is None:
        pytest.skip("mosquitto-clients not installed")
    broker = Broker(tmp_path / "broker")
    # The broker itself must not drop (its default is 1000 waiting messages per client, then
    # dropping in arrival order): any reading lost here is lost by serve.
    with broker.config.open("a") as conf:
        conf.write("max_queued_messages 0\n")
    keys = KeyStore(tmp_path / "keys.toml")
    keys.add(frames.BOW, frames.KEYS[frames.BOW], name="bow")
    keys.save()
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    # Every state published, not one a second (min_interval_s, 1 s by default): the three
    # changes come ahead of the backlog, often within one second, and the publisher would
    # rightly send only the newest — the test then waited for one that was coalesced away.
    config = tmp_path / "xdg" / "victron-ble-bms" / "serve.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[mqtt]\nmin_interval_s = 0\n")
    config.chmod(0o600)
    node = frames.BOW.replace(":", "").lower()
    temperatures = (11, 22, 33)
    lines: list[str] = []
    for n, temperature in enumerate(temperatures):
        lines += _flood_lines(n * 20_000, 20_000)
        # a change and the frame that confirms it (issue 18 item 2: a change is the device's
        # state once a frame with a fresh nonce agrees), as a real device repeats its values
        lines.append(_keyed_line(temperature, nonce=2 * n + 1))
        lines.append(_keyed_line(temperature, nonce=2 * n + 2))
    log = tmp_path / "serve.log"
    with broker:
        args = [
            *(sys.executable, "-m", "victron_ble_bms", "serve", "--source", "mqtt"),
            *("--mqtt", broker.url, "--keys", str(keys.path), "--duration", "90"),
        ]
        with (
            subscribe(broker, f"victron-ble-bms/{node}/state") as sub,
            log.open("wb") as out,
            subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env) as serve,
        ):
            try:
                broker.wait_subscribed(default_topics())  # serve connects and subscribes
                subprocess.run(  # noqa: S603
                    [pub, *broker.client_args(), "-t", "home/gw/BTtoMQTT/x", "-l"],
                    input=("\n".join(lines) + "\n").encode(),
                    check=True,
                    timeout=60,
                )
                for temperature in temperatures:
                    sub.wait_for(
                        lambda m, t=temperature: _temperature(m.payload) == t,
                        45,
                    )
                assert serve.poll() is None
            finally:
                serve.terminate()
                serve.wait(15)
    text = log.read_text()
    assert "Traceback" not in text
    assert "incoming flood: dropped" in text  # the flood was shed, and said so
    assert "Outgoing messages are being dropped" not in broker.log_text()


def _temperature(payload: str) -> object:
    try:
        obj = json.loads(payload)
    except ValueError:
        return None
    return obj.get("battery_temperature_c") if isinstance(obj, dict) else None
