"""Banks on MQTT (issue 20 item 3): `<prefix>/bank/<name>/state` retained and an HA device.

End to end as a user runs it: `victron-bms emulate --scenario parallel-bank --capture …`, one
battery cut from the capture mid-run, then `victron-bms serve --source capture … --mqtt` into a
real mosquitto, read by an independent client (mosquitto_sub): the bank's verdict is ok, then
degraded naming the silent battery, and its problem sensor renders unknown — never off."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.banks.readings import address, battery, reading
from tests.cli.user import victron_bms
from tests.mqtt.broker import Broker, retained, subscribe
from tests.mqtt.test_discovery import render, validate
from tests.serve_process import Serve, clean
from victron_ble_bms.mqtt import MqttConfig
from victron_ble_bms.mqtt.bank import bank_config
from victron_ble_bms.mqtt.publisher import Publisher
from victron_ble_bms.sources.keys import KeyStore

PREFIX = "victron-ble-bms"
KEY = bytes(range(16))


def _store(tmp_path: Path) -> KeyStore:
    store = KeyStore(tmp_path / "keys.toml")
    store.add(address(1), KEY, name="House 1")
    store.add(address(2), KEY, name="House 2")
    store.add_bank("house", {"members": ["House 1", "House 2"]})
    store.save()
    return KeyStore.load(tmp_path / "keys.toml")


def test_discovery_follows_home_assistants_schema_and_problem_is_never_off_when_unknown(
    tmp_path: Path,
) -> None:
    clock = [100.0]
    publisher = Publisher(MqttConfig(), _store(tmp_path), clock=lambda: clock[0])
    out = publisher.reading(reading(1, battery(), ts=1000.0))
    configs = [o for o in out if o.topic.endswith("_bank_house/config")]
    states = [o for o in out if o.topic == f"{PREFIX}/bank/house/state"]
    assert len(configs) == 1 and len(states) == 1 and states[0].retain
    payload = json.loads(configs[0].payload)
    validate(configs[0].topic, payload)
    cmps = payload["components"]
    for key in ("members", "members_heard", "cell_voltage_min_v", "cell_voltage_min_at",
                "cell_voltage_max_v", "cell_voltage_max_at", "cell_spread_mv",
                "allowed_to_charge", "allowed_to_discharge", "blocking_charge",
                "blocking_discharge", "worst_code", "problem", "verdict"):  # fmt: skip
        assert key in cmps, key
    state: dict[str, Any] = json.loads(states[0].payload)
    # House 2 not heard yet: degraded, and the problem sensor unknown
    assert state["verdict"] == "degraded"
    assert render(cmps["problem"]["value_template"], state) == "None"
    assert render(cmps["allowed_to_charge"]["value_template"], state) == "None"
    assert render(cmps["blocking_charge"]["value_template"], state) == "None"
    assert render(cmps["worst_code"]["value_template"], state) == "None"
    assert render(cmps["cell_voltage_min_at"]["value_template"], state) == "House 1: cell 1"
    clock[0] += 5
    out = publisher.reading(reading(2, battery(), ts=1001.0))
    state = json.loads(next(o for o in out if o.topic.endswith("bank/house/state")).payload)
    assert state["verdict"] == "ok"
    assert render(cmps["problem"]["value_template"], state) == "OFF"
    assert render(cmps["blocking_charge"]["value_template"], state) == "none"
    assert render(cmps["verdict"]["value_template"], state) == "ok"
    # the publisher's clock carries the readings' clock on: House 2 silent past stale_after_s
    clock[0] += 30
    publisher.reading(reading(1, battery((3.3, 3.3, 3.3, 3.31)), ts=1031.0))
    clock[0] += 35
    ticked = [o for o in publisher.tick() if o.topic.endswith("bank/house/state")]
    assert ticked, "House 2's silence is news"
    state = json.loads(ticked[-1].payload)
    assert state["verdict"] == "degraded" and "House 2: stale" in state["reason"]
    assert render(cmps["problem"]["value_template"], state) == "None"
    # reconnect: config and retained state again
    again = {o.topic for o in publisher.bridge_online()}
    assert configs[0].topic in again and f"{PREFIX}/bank/house/state" in again


def test_a_bank_name_is_safe_in_a_topic() -> None:
    topic, payload = bank_config(MqttConfig(), "house/+#\x1b")
    validate(topic, payload)
    assert payload["device"]["name"] == "Bank house/+#\\x1b"


@pytest.fixture
def silenced(tmp_path: Path) -> tuple[Path, Path, str]:
    capture = tmp_path / "bank.jsonl"
    done = victron_bms(
        tmp_path, "emulate", "--scenario", "parallel-bank", "--capture", str(capture),
        "--speed", "max", "--duration", "240",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = capture.read_text().splitlines()
    body = [json.loads(x) for x in lines[1:]]
    start = body[0]["ts"]
    victim = next(o["address"] for o in body if o["name"].startswith("LI 12.8V"))
    kept = [o for o in body if not (o["address"] == victim and o["ts"] > start + 100)]
    capture.write_text("\n".join([lines[0], *(json.dumps(o) for o in kept)]) + "\n")
    return capture, Path(f"{capture}.keys.toml"), victim


def test_serve_publishes_the_bank_and_names_a_member_silenced_mid_run(
    mqtt_broker: Broker, tmp_path: Path, serves: list[Serve], silenced: tuple[Path, Path, str]
) -> None:
    capture, keys, victim = silenced
    topic = f"{PREFIX}/bank/parallel-bank/state"
    with subscribe(mqtt_broker, "#") as sub:
        s = Serve(
            tmp_path,
            "--source", "capture", str(capture), "--keys", str(keys),
            "--mqtt", mqtt_broker.url, "--speed", "20",
        )  # fmt: skip
        serves.append(s)

        def bank(m: Any, verdict: str) -> bool:
            return bool(m.topic == topic and json.loads(m.payload)["verdict"] == verdict)

        ok = json.loads(sub.wait_for(lambda m: bank(m, "ok"), timeout=30).payload)
        assert ok["members"] == 4 and ok["members_heard"] == 4
        assert ok["cell_voltage_min_at"].startswith("emulated LI 12.8V-100AH ")
        assert ok["soc_from"].startswith("emulated LYNX") and ok["soc_pct"] is not None
        assert ok["allowed_to_charge"] is True and ok["worst_code"] == "none"
        # wait_for also matches old messages: the first states, before every member was
        # heard, are degraded too ("not heard"); the silenced member is "stale".
        late = sub.wait_for(
            lambda m: bank(m, "degraded") and ": stale" in json.loads(m.payload)["reason"],
            timeout=60,
        )
        state = json.loads(late.payload)
        name = next(m["name"] for m in state["member_states"] if m["address"] == victim)
        assert f"{name}: stale" in state["reason"]
        assert state["members_heard"] == 3 and state["problem"] is None
        config = sub.wait_for(lambda m: m.topic.endswith("_bank_parallel-bank/config"))
        cmps = json.loads(config.payload)["components"]
        assert render(cmps["problem"]["value_template"], state) == "None"
        held = retained(mqtt_broker, f"{PREFIX}/bank/#")
        assert topic in held
        s.wait_stderr("stopped:", timeout=60)  # the capture ended: serve stops by itself
        s.stop()
    clean(s.stderr)
