"""`victron-bms serve` as a user runs it (a subprocess), against a real mosquitto, watched by an
independent client (mosquitto_sub): the topic contract, and each fault of issue 11 — broker down
at start, broker restarted, wrong password, TLS name mismatch — gives one line, a reconnect, the
latest state, no traceback and no password."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.mqtt.broker import Broker, publish, retained, subscribe
from tests.serve_process import Serve, clean
from victron_ble_bms.emulator import DeviceSpec, load_scenario
from victron_ble_bms.emulator.engine import Emulator
from victron_ble_bms.mqtt.topics import bridge_object_id, instance_id_from_hostname
from victron_ble_bms.sources.capture.jsonl import JsonlWriter
from victron_ble_bms.sources.keys import KeyStore

PREFIX = "victron-ble-bms"
INSTANCE = instance_id_from_hostname(socket.gethostname())  # serve's default instance id
BRIDGE = f"{PREFIX}/bridge/{INSTANCE}/availability"
DEMO = f"{PREFIX}-demo/{INSTANCE}"  # where --source emulator publishes by default


def is_state_with_cells(m: object) -> bool:
    topic = getattr(m, "topic", "")
    if not topic.endswith("/state"):
        return False
    obj = json.loads(getattr(m, "payload", "{}"))
    return isinstance(obj.get("cell_voltages_v"), list) and "codes" in obj


def test_a_recording_publishes_the_contract(
    mqtt_broker: Broker, tmp_path: Path, serves: list[Serve]
) -> None:
    capture, keys = _capture(tmp_path)
    keys_file = _keys_file(tmp_path, keys)
    with subscribe(mqtt_broker) as sub:
        s = Serve(
            tmp_path,
            "--source", "capture", str(capture), "--keys", str(keys_file),
            "--mqtt", mqtt_broker.url, "--duration", "6",
        )  # fmt: skip
        serves.append(s)
        state = sub.wait_for(is_state_with_cells)
        assert not state.retain
        obj = json.loads(state.payload)
        addr = state.topic.split("/")[1]
        assert len(addr) == 12 and addr == obj["address"].replace(":", "").lower()
        assert obj["key_status"] == "ok" and isinstance(obj["codes"], list)
        # Retained while running: discovery, availability, bridge.
        now = retained(mqtt_broker)
        assert now[BRIDGE] == "online"
        assert now[f"{PREFIX}/{addr}/availability"] == "online"
        config = json.loads(now[f"homeassistant/device/victron_ble_bms_{addr}/config"])
        assert config["device"]["manufacturer"] == "Victron Energy"
        # The state is retained too: a subscriber starting now gets it without waiting.
        held = json.loads(now[f"{PREFIX}/{addr}/state"])
        assert held["address"] == obj["address"] and isinstance(held["cell_voltages_v"], list)
        assert s.stop(30) == 0
    after = retained(mqtt_broker)
    assert after[BRIDGE] == "offline"
    assert after[f"{PREFIX}/{addr}/availability"] == "offline"
    # The last known state stays (its ts tells its age); availability says it is not current.
    assert json.loads(after[f"{PREFIX}/{addr}/state"])["address"] == obj["address"]
    assert f"homeassistant/device/victron_ble_bms_{addr}/config" in after
    clean(s.stderr)


def test_broker_down_at_start_then_up(tmp_path: Path, serves: list[Serve]) -> None:
    broker = Broker(tmp_path / "late")  # configured, not started
    s = Serve(tmp_path, "--source", "emulator", "--mqtt", broker.url, "--duration", "40")
    serves.append(s)
    s.wait_stderr("cannot connect to")
    assert "connection refused" in s.stderr and "retrying in" in s.stderr
    with broker, subscribe(broker) as sub:
        sub.wait_for(is_state_with_cells, timeout=30)
        assert retained(broker)[f"{DEMO}/bridge/{INSTANCE}/availability"] == "online"
    s.stop()
    clean(s.stderr)


def test_broker_restart_while_serving(
    mqtt_broker: Broker, tmp_path: Path, serves: list[Serve]
) -> None:
    s = Serve(tmp_path, "--source", "emulator", "--mqtt", mqtt_broker.url, "--duration", "60")
    serves.append(s)
    with subscribe(mqtt_broker) as sub:
        sub.wait_for(is_state_with_cells)
    mqtt_broker.restart()  # persistence off: every retained message is gone
    s.wait_stderr("lost the connection to")
    with subscribe(mqtt_broker) as sub:
        # Back: discovery, availability and states again, without a restart of serve.
        sub.wait_for(lambda m: m.topic.startswith("homeassistant/device/") and m.payload != "", 30)
        sub.wait_for(is_state_with_cells, timeout=30)
    now = retained(mqtt_broker)
    assert now[f"{DEMO}/bridge/{INSTANCE}/availability"] == "online"
    assert any(t.startswith("homeassistant/device/victron_ble_bms_demo_") for t in now)
    s.stop()
    clean(s.stderr)
    assert s.stderr.count("connected to") >= 2


def test_wrong_password_is_one_line_and_never_printed(
    mqtt_broker_auth: Broker, tmp_path: Path, serves: list[Serve]
) -> None:
    wrong = "not-the-password-" + "x7q"
    s = Serve(
        tmp_path,
        "--source", "emulator", "--mqtt", mqtt_broker_auth.url_with_user, "--duration", "4",
        env={"VICTRON_BMS_MQTT_PASSWORD": wrong},
    )  # fmt: skip
    serves.append(s)
    assert s.proc.wait(30) == 1  # refused at start: a service that cannot work says so
    s.stop()
    assert "refused the user name or password" in s.stderr
    assert s.stderr.count("refused") == 1 and "retrying" not in s.stderr
    clean(s.stderr, wrong, mqtt_broker_auth.password or "")
    # The right one, from the environment: connects.
    assert mqtt_broker_auth.password
    ok = Serve(
        tmp_path,
        "--source", "emulator", "--mqtt", mqtt_broker_auth.url_with_user, "--duration", "3",
        env={"VICTRON_BMS_MQTT_PASSWORD": mqtt_broker_auth.password},
    )  # fmt: skip
    serves.append(ok)
    assert ok.proc.wait(30) == 0
    ok.stop()
    assert "connected to" in ok.stderr
    clean(ok.stderr, mqtt_broker_auth.password)


def test_password_in_the_url_is_refused_without_echo(tmp_path: Path) -> None:
    secret = "hunter2-secret"  # noqa: S105 - a test value that must not be echoed
    out = subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "serve", "--mqtt",
         f"mqtt://user:{secret}@127.0.0.1:1", "--source", "emulator"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
    )  # fmt: skip
    assert out.returncode == 2
    assert "password" in out.stderr and secret not in out.stderr + out.stdout
    clean(out.stderr)


def test_tls_name_mismatch_then_the_right_name(
    mqtt_broker_tls: Broker, tmp_path: Path, serves: list[Serve]
) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(f'[mqtt]\ncafile = "{mqtt_broker_tls.cafile}"\n')
    s = Serve(
        tmp_path,
        "--source", "emulator", "--config", str(config), "--duration", "4",
        "--mqtt", f"mqtts://127.0.0.1:{mqtt_broker_tls.port}",
    )  # fmt: skip
    serves.append(s)
    assert s.proc.wait(30) == 0
    s.stop()
    assert "TLS certificate not accepted" in s.stderr and "127.0.0.1" in s.stderr
    clean(s.stderr)
    good = Serve(
        tmp_path,
        "--source", "emulator", "--config", str(config), "--duration", "3",
        "--mqtt", f"mqtts://{mqtt_broker_tls.tls_name}:{mqtt_broker_tls.port}",
    )  # fmt: skip
    serves.append(good)
    assert good.proc.wait(30) == 0
    good.stop()
    assert "connected to mqtts://localhost" in good.stderr
    clean(good.stderr)


# --- keys file: removing a device removes its entities ----------------------------------------


def _capture(tmp_path: Path, seconds: int = 90) -> tuple[Path, dict[str, bytes]]:
    emu = Emulator(
        [DeviceSpec("lithium-12.8v-100ah"), DeviceSpec("lynx-smart-bms-500")],
        load_scenario("normal-day"),
        seed=5,
        speed=None,
        start_ts=time.time(),
    )
    path = tmp_path / "two.jsonl"
    with JsonlWriter(path, source="test") as writer:
        for adv in emu.run(seconds):
            writer.write(adv)
    return path, emu.keys


def _keys_file(tmp_path: Path, keys: dict[str, bytes]) -> Path:
    keys_file = tmp_path / "keys.toml"
    store = KeyStore(keys_file)
    for address, key in keys.items():
        store.add(address, key)
    store.save()
    return keys_file


def test_removing_a_key_removes_the_entities(
    mqtt_broker: Broker, tmp_path: Path, serves: list[Serve]
) -> None:
    capture, keys = _capture(tmp_path)
    keys_file = _keys_file(tmp_path, keys)
    store = KeyStore.load(keys_file)
    # A device removed while serve was not running: its retained config is still there.
    gone = "homeassistant/device/victron_ble_bms_0a0b0c0d0e0f/config"
    mine = {"device": {"identifiers": ["x"], "via_device": f"victron_ble_bms_bridge_{INSTANCE}"}}
    publish(mqtt_broker, gone, json.dumps(mine), retain=True)
    # Another instance's device (another Pi on the same broker): never ours to remove.
    theirs = "homeassistant/device/victron_ble_bms_0a0b0c0d0e10/config"
    other = {"device": {"identifiers": ["y"], "via_device": "victron_ble_bms_bridge_other-pi"}}
    publish(mqtt_broker, theirs, json.dumps(other), retain=True)
    gone_state = f"{PREFIX}/0a0b0c0d0e0f/state"
    publish(mqtt_broker, gone_state, '{"address": "0A:0B:0C:0D:0E:0F"}', retain=True)
    nodes = [a.replace(":", "").lower() for a in keys]
    s = Serve(
        tmp_path,
        "--source", "capture", str(capture), "--keys", str(keys_file),
        "--mqtt", mqtt_broker.url, "--duration", "60",
    )  # fmt: skip
    serves.append(s)
    with subscribe(mqtt_broker, "homeassistant/#") as sub:
        for node in nodes:
            sub.wait_for(lambda m, n=node: n in m.topic and m.payload != "")  # type: ignore[misc]
        sub.wait_for(lambda m: m.topic == gone and m.payload == "")
        removed = next(iter(keys))
        node = removed.replace(":", "").lower()
        held = retained(mqtt_broker, f"{PREFIX}/+/state")
        assert f"{PREFIX}/{node}/state" in held and gone_state not in held
        store.remove(removed)
        store.save()
        sub.wait_for(lambda m: node in m.topic and m.payload == "", timeout=20)
    now = retained(mqtt_broker)
    assert f"homeassistant/device/victron_ble_bms_{node}/config" not in now
    assert f"{PREFIX}/{node}/availability" not in now
    assert f"{PREFIX}/{node}/state" not in now  # emptied, not left behind
    assert f"{PREFIX}/{nodes[1]}/state" in now
    assert f"homeassistant/device/victron_ble_bms_{nodes[1]}/config" in now
    assert gone not in now
    assert json.loads(now[theirs]) == other
    s.stop()
    clean(s.stderr)


def test_home_assistant_restart_gets_the_configs_again(
    mqtt_broker: Broker, tmp_path: Path, serves: list[Serve]
) -> None:
    s = Serve(tmp_path, "--source", "emulator", "--mqtt", mqtt_broker.url, "--duration", "30")
    serves.append(s)
    with subscribe(mqtt_broker, "homeassistant/device/#") as sub:
        sub.wait_for(lambda m: m.topic.endswith(f"_bridge_{INSTANCE}/config"))
        time.sleep(1)
        before = len(sub.messages)
        publish(mqtt_broker, "homeassistant/status", "online")  # HA's birth message
        bridge = f"homeassistant/device/{bridge_object_id(DEMO, INSTANCE)}/config"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            again = {m.topic for m in sub.messages[before:]}
            if bridge in again and len(again) >= 2:  # the bridge and the devices
                break
            time.sleep(0.1)
        assert bridge in again and len(again) >= 2, again
    s.stop()
    clean(s.stderr)


# --- serve fails (non-zero) when it cannot do its job at start ---------------------------------


def test_a_missing_capture_file_fails_at_once(tmp_path: Path) -> None:
    missing = tmp_path / "no-such.jsonl"
    out = subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "serve", "--source", "capture", str(missing),
         "--mqtt", "mqtt://127.0.0.1:1"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert len(out.stderr.splitlines()) == 1 and "no-such.jsonl" in out.stderr
    clean(out.stderr)


def test_the_radio_without_bleak_or_dbus_fast_fails_and_names_the_fix(tmp_path: Path) -> None:
    # None in sys.modules is how Python itself makes a module not importable: the same as a
    # venv where `pip install victron-ble-bms[mqtt]` left them out (issue 19).
    code = (
        "import sys; sys.modules['bleak'] = None; sys.modules['dbus_fast'] = None; "
        "from victron_ble_bms.cli import main; "
        "sys.exit(main(['serve', '--mqtt', 'mqtt://127.0.0.1:1']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "bleak and dbus-fast" in out.stderr and "victron-ble-bms[serve]" in out.stderr
    assert len(out.stderr.splitlines()) == 1
    clean(out.stderr)
