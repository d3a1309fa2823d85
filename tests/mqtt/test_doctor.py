"""`victron-bms doctor` as a user runs it: everything ready (the virtual BlueZ on a private
D-Bus, a 0600 keys file, a real mosquitto with a password file), then each thing broken the way
it breaks on a Pi — every problem one line with its fix, status 1, no password printed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.mqtt.broker import Broker
from tests.mqtt.virtual_radio import virtual_radio
from victron_ble_bms.emulator.dbus_daemon import PrivateBus
from victron_ble_bms.sources.keys import KeyStore


def doctor(tmp: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "VICTRON_BMS_MQTT_PASSWORD"}
    environ.update({"XDG_CONFIG_HOME": str(tmp / "xdg"), **env})
    return subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "doctor", *args],
        capture_output=True, text=True, timeout=90, env=environ, check=False,
    )  # fmt: skip


def lines(out: str) -> dict[str, str]:
    """'ok   keys: …' → {'keys': 'ok   keys: …'}"""
    return {line[5:].split(":", 1)[0]: line for line in out.splitlines() if ":" in line}


def test_ready_then_each_problem_with_its_fix(mqtt_broker_auth: Broker, tmp_path: Path) -> None:
    assert mqtt_broker_auth.password
    with virtual_radio() as radio:
        store = KeyStore(tmp_path / "keys.toml")
        store.add(radio.address, radio.key)
        store.save()
        env = {"DBUS_SYSTEM_BUS_ADDRESS": radio.bus}
        args = ("--keys", str(store.path), "--mqtt", mqtt_broker_auth.url_with_user)
        good = doctor(
            tmp_path, *args, env={**env, "VICTRON_BMS_MQTT_PASSWORD": mqtt_broker_auth.password}
        )
        assert good.returncode == 0, good.stdout + good.stderr
        seen = lines(good.stdout)
        for name in ("packages", "D-Bus", "BlueZ", "adapter", "scan", "keys", "broker"):
            assert seen[name].startswith("ok  "), good.stdout
        assert "1 keys" in seen["keys"] and "0600" in seen["keys"]
        assert good.stdout.splitlines()[-1] == "ready for `victron-bms serve`"
        assert mqtt_broker_auth.password not in good.stdout + good.stderr

        # Broken: keys readable by others, a wrong password, no such adapter, Signal K down.
        store.path.chmod(0o644)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        wrong = "wrong-" + mqtt_broker_auth.password[::-1]
        bad = doctor(
            tmp_path, *args, "--adapter", "hci7", "--signalk", f"http://127.0.0.1:{closed}",
            env={**env, "VICTRON_BMS_MQTT_PASSWORD": wrong},
        )  # fmt: skip
    assert bad.returncode == 1, bad.stdout + bad.stderr
    seen = lines(bad.stdout)
    assert "hci7 not present (there is hci0)" in seen["adapter"]
    assert "fix: chmod 600" in seen["keys"]
    assert "refused the user name or password" in seen["broker"] and "fix:" in seen["broker"]
    assert seen["Signal K"].startswith("FAIL") and "fix: start signalk-server" in seen["Signal K"]
    assert wrong not in bad.stdout + bad.stderr and "Traceback" not in bad.stderr


def test_no_bluez_and_no_bus(tmp_path: Path) -> None:
    if PrivateBus.find_executable() is None:
        import pytest

        pytest.skip("dbus-daemon not installed (Debian package 'dbus')")
    with PrivateBus() as bus:  # a system bus where bluetoothd never started
        out = doctor(tmp_path, env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address})
    assert out.returncode == 1
    seen = lines(out.stdout)
    assert seen["BlueZ"].startswith("FAIL") and "systemctl enable --now bluetooth" in seen["BlueZ"]
    assert "no such file" in seen["keys"] and "keys add" in seen["keys"]
    assert "none configured" in seen["broker"]
    gone = doctor(tmp_path, env={"DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus"})
    assert gone.returncode == 1
    assert lines(gone.stdout)["D-Bus"].startswith("FAIL D-Bus: system bus not reachable")


def test_the_example_config_file_is_one_serve_reads(tmp_path: Path) -> None:
    from victron_ble_bms.mqtt.config import load_config

    example = Path(__file__).resolve().parents[2] / "contrib" / "serve.toml"
    private = tmp_path / "serve.toml"
    private.write_bytes(example.read_bytes())
    private.chmod(0o600)
    cfg, warnings = load_config(private)
    assert cfg.broker is not None and cfg.broker.username == "homeassistant"
    assert cfg.topic_prefix == "victron-ble-bms" and cfg.stale_after_s == 60.0
    assert warnings == []
