"""Several `serve`s on one broker (issue 19): each has its own instance id, bridge device and
availability, and its start, stop or crash (kill -9) leaves the others' retained discovery
configs and availability exactly as they were. Real mosquitto, `serve` run as a user runs it
(subprocesses), everything read by an independent client (mosquitto_sub)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.mqtt.broker import Broker, retained, subscribe
from tests.mqtt.test_serve import PREFIX
from tests.serve_process import Serve, clean
from victron_ble_bms.emulator.engine import Emulator, demo_fleet
from victron_ble_bms.sources.keys import KeyStore

BATTERY = "C0:FF:EE:00:00:01"
BMS = "C0:FF:EE:00:00:02"
KEYS = {BATTERY: "0102030405060708090a0b0c0d0e0f10", BMS: "a1a2a3a4a5a6a7a8a9aaabacadaeafb0"}
DISCOVERY = "homeassistant/device/"
FLEET = len(Emulator(demo_fleet(), seed=1).keys)  # the devices of a demo run (7)


def owned(snapshot: dict[str, str], prefix: str, instance: str) -> dict[str, str]:
    """What one instance holds on the broker: the discovery configs naming its bridge as
    `via_device`, its bridge's config and availability, and its devices' availability (states
    are left out: they change with every reading)."""
    pid = prefix.replace("-", "_").replace("/", "_")
    bridge_id = f"{pid}_bridge_{instance}"
    out: dict[str, str] = {}
    for topic, payload in snapshot.items():
        if topic.startswith(DISCOVERY) and payload:
            doc = json.loads(payload)
            if doc["device"].get("via_device") == bridge_id or topic.endswith(
                f"/{bridge_id}/config"
            ):
                out[topic] = payload
        elif topic == f"{prefix}/bridge/{instance}/availability" or (
            topic.startswith(f"{prefix}/") and topic.endswith("/availability")
            and "/bridge/" not in topic and len(topic.split("/")) == len(prefix.split("/")) + 2
        ):  # fmt: skip
            out[topic] = payload
    return out


def shape(held: dict[str, str]) -> dict[str, str]:
    """Which configs exist (their payloads change as a device's shape becomes known: cells
    that appear) and every availability value."""
    return {t: "config" if t.startswith(DISCOVERY) else v for t, v in held.items()}


def devices(held: dict[str, str]) -> int:
    return sum(
        1 for t in held if t.startswith(DISCOVERY) and "_bridge_" not in t and "_bank_" not in t
    )


def wait_owned(
    broker: Broker, prefix: str, instance: str, n: int, timeout: float = 30
) -> dict[str, str]:
    """Wait until the instance holds `n` device configs and its bridge is online."""
    deadline = time.monotonic() + timeout
    while True:
        held = owned(retained(broker), prefix, instance)
        if devices(held) >= n and held.get(f"{prefix}/bridge/{instance}/availability") == "online":
            time.sleep(1.0)  # and settled: banks follow their members' first readings
            again = owned(retained(broker), prefix, instance)
            if shape(again) == shape(held):
                return shape(held)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{instance}: {sorted(held)}")
        time.sleep(0.3)


def kill9(s: Serve) -> None:
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait(10)


def test_a_demo_beside_a_decoder_touches_nothing_of_it(mqtt_broker: Broker, tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.toml")
    for address, key in KEYS.items():
        store.add(address, key)
    store.save()
    started: list[Serve] = []

    def serve(*args: str) -> Serve:
        s = Serve(tmp_path, "--mqtt", mqtt_broker.url, *args)
        started.append(s)
        return s

    def decoder() -> Serve:
        return serve("--source", "mqtt", "--keys", str(store.path), "--instance-id", "boat-pi")

    def demo() -> Serve:
        return serve("--source", "emulator", "--instance-id", "laptop", "--duration", "120")

    demo_prefix = f"{PREFIX}-demo/laptop"
    try:
        d = decoder()
        d.wait_stderr("connected to")
        serve(
            "--source", "emulator", "--publish-raw", "--receiver-id", "pi-zero",
            "--device", f"lithium-25.6v-200ah:{BATTERY}:{KEYS[BATTERY]}",
            "--device", f"smart-bms-12-200:{BMS}:{KEYS[BMS]}", "--duration", "120",
        )  # fmt: skip
        mine = wait_owned(mqtt_broker, PREFIX, "boat-pi", 2)
        assert devices(mine) == 2

        e = demo()  # start: the decoder's configs and availability stay as they were
        theirs = wait_owned(mqtt_broker, demo_prefix, "laptop", FLEET)
        assert shape(owned(retained(mqtt_broker), PREFIX, "boat-pi")) == mine
        held = owned(retained(mqtt_broker), demo_prefix, "laptop")
        names = {
            json.loads(v)["device"]["name"] for t, v in held.items() if t.startswith(DISCOVERY)
        }
        assert all(n.startswith(("Demo ", "Victron BLE demo bridge laptop")) for n in names), names

        kill9(e)  # crash: its last will says offline for it alone
        time.sleep(1.5)
        now = retained(mqtt_broker)
        assert now[f"{demo_prefix}/bridge/laptop/availability"] == "offline"
        assert shape(owned(now, PREFIX, "boat-pi")) == mine

        e = demo()  # start again, then a clean stop: the demo removes all it published
        wait_owned(mqtt_broker, demo_prefix, "laptop", FLEET)
        assert e.stop(30) == 0
        now = retained(mqtt_broker)
        assert owned(now, demo_prefix, "laptop") == {}
        assert not any(t.startswith(f"{demo_prefix}/") for t in now), sorted(now)
        assert shape(owned(now, PREFIX, "boat-pi")) == mine
        clean(e.stderr)

        e = demo()  # the decoder stops, crashes and restarts beside a running demo
        theirs = wait_owned(mqtt_broker, demo_prefix, "laptop", FLEET)
        assert d.stop(30) == 0
        now = retained(mqtt_broker)
        assert now[f"{PREFIX}/bridge/boat-pi/availability"] == "offline"
        assert devices(owned(now, PREFIX, "boat-pi")) == 2  # its entities stay, unavailable
        assert shape(owned(now, demo_prefix, "laptop")) == theirs
        d = decoder()
        again = wait_owned(mqtt_broker, PREFIX, "boat-pi", 2)
        assert {t for t in again if t.startswith(DISCOVERY)} == {
            t for t in mine if t.startswith(DISCOVERY)
        }
        time.sleep(3)  # past the decoder's start-up clean-up window
        assert shape(owned(retained(mqtt_broker), demo_prefix, "laptop")) == theirs
        kill9(d)
        time.sleep(1.5)
        now = retained(mqtt_broker)
        assert now[f"{PREFIX}/bridge/boat-pi/availability"] == "offline"
        assert shape(owned(now, demo_prefix, "laptop")) == theirs
        assert e.stop(30) == 0
    finally:
        for s in started:
            if s.proc.poll() is None:
                s.proc.kill()
            s.stop(10)


def test_two_demos_with_their_own_instance_ids(mqtt_broker: Broker, tmp_path: Path) -> None:
    started: list[Serve] = []

    def demo(instance: str) -> Serve:
        s = Serve(
            tmp_path, "--source", "emulator", "--instance-id", instance,
            "--mqtt", mqtt_broker.url, "--duration", "120",
        )  # fmt: skip
        started.append(s)
        return s

    a_prefix, b_prefix = f"{PREFIX}-demo/a", f"{PREFIX}-demo/b"
    try:
        with subscribe(mqtt_broker, "homeassistant/#") as sub:
            a = demo("a")
            held_a = wait_owned(mqtt_broker, a_prefix, "a", FLEET)
            b = demo("b")
            held_b = wait_owned(mqtt_broker, b_prefix, "b", FLEET)
            assert shape(owned(retained(mqtt_broker), a_prefix, "a")) == held_a
            # Different HA devices, different bridge names, nothing shared.
            assert not set(held_a) & set(held_b)
            kill9(b)
            time.sleep(1.5)
            now = retained(mqtt_broker)
            assert shape(owned(now, a_prefix, "a")) == held_a
            assert now[f"{b_prefix}/bridge/b/availability"] == "offline"
            assert a.stop(30) == 0
            now = retained(mqtt_broker)
            assert owned(now, a_prefix, "a") == {}
            assert devices(owned(now, b_prefix, "b")) == devices(held_b)
            # Nobody ever emptied the other's configs.
            emptied = {m.topic for m in sub.messages if m.payload == ""}
            assert not emptied & {t for t in held_b if t.startswith(DISCOVERY)}
            clean(a.stderr)
    finally:
        for s in started:
            if s.proc.poll() is None:
                s.proc.kill()
            s.stop(10)


def test_a_bad_instance_id_is_one_line(tmp_path: Path) -> None:
    s = Serve(
        tmp_path,
        "--source",
        "emulator",
        "--mqtt",
        "mqtt://127.0.0.1:1",
        "--instance-id",
        "Boat Pi/1",
    )
    assert s.proc.wait(30) == 2
    s.stop()
    assert "instance id 'Boat Pi/1'" in s.stderr and "lower-case" in s.stderr
    clean(s.stderr)
