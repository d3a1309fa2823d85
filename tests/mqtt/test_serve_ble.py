"""`serve` with its default source (the radio): unmodified bleak scanning the emulator's virtual
BlueZ on a private D-Bus, publishing into a real mosquitto."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.mqtt.broker import Broker, subscribe
from tests.mqtt.test_serve import Serve, clean, serves  # noqa: F401 - fixture
from victron_ble_bms.sources.keys import KeyStore


def test_serve_reads_the_radio_by_default(
    mqtt_broker: Broker,
    tmp_path: Path,
    serves: list[Serve],  # noqa: F811
) -> None:
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon not installed (Debian package 'dbus'; scripts/test.sh has it)")
    emulate = subprocess.Popen(
        [sys.executable, "-m", "victron_ble_bms", "emulate", "--device", "lithium-12.8v-100ah",
         "--advertise", "virtual", "--duration", "60", "--seed", "4"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        address = key = bus = None
        assert emulate.stdout is not None
        deadline = time.monotonic() + 30
        while bus is None and time.monotonic() < deadline:
            line = emulate.stdout.readline()
            if found := re.search(r"([0-9A-F:]{17})\s+key ([0-9a-f]{32})", line):
                address, key = found.groups()
            if found := re.search(r"DBUS_SYSTEM_BUS_ADDRESS=(\S+)", line):
                bus = found.group(1)
        assert address and key and bus
        store = KeyStore(tmp_path / "keys.toml")
        store.add(address, key, name="House battery")
        store.save()
        node = address.replace(":", "").lower()
        with subscribe(mqtt_broker) as sub:
            s = Serve(
                tmp_path,
                "--keys", str(tmp_path / "keys.toml"), "--mqtt", mqtt_broker.url,
                "--duration", "30",
                env={"DBUS_SYSTEM_BUS_ADDRESS": bus, "PATH": os.environ.get("PATH", "")},
            )  # fmt: skip
            serves.append(s)
            state = sub.wait_for(lambda m: m.topic == f"victron-ble-bms/{node}/state", 30)
            obj = json.loads(state.payload)
            assert obj["key_status"] == "ok" and len(obj["cell_voltages_v"]) == 8
            assert obj["name"] == "House battery"
            config = sub.wait_for(lambda m: m.topic.endswith(f"_{node}/config"))
            assert json.loads(config.payload)["device"]["name"] == "House battery"
        s.stop()
        clean(s.stderr)
    finally:
        emulate.terminate()
        emulate.wait(15)
        if emulate.stdout:
            emulate.stdout.close()
