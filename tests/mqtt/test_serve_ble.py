"""`serve` with its default source (the radio): unmodified bleak scanning the emulator's virtual
BlueZ on a private D-Bus, publishing into a real mosquitto."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.mqtt.broker import Broker, subscribe
from tests.mqtt.virtual_radio import virtual_radio
from tests.serve_process import Serve, clean
from victron_ble_bms.sources.keys import KeyStore


def test_serve_reads_the_radio_by_default(
    mqtt_broker: Broker,
    tmp_path: Path,
    serves: list[Serve],  # noqa: F811
) -> None:
    with virtual_radio(seconds=60) as radio:
        store = KeyStore(tmp_path / "keys.toml")
        store.add(radio.address, radio.key, name="House battery")
        store.save()
        node = radio.address.replace(":", "").lower()
        with subscribe(mqtt_broker) as sub:
            s = Serve(
                tmp_path,
                "--keys", str(tmp_path / "keys.toml"), "--mqtt", mqtt_broker.url,
                "--duration", "30",
                env={"DBUS_SYSTEM_BUS_ADDRESS": radio.bus, "PATH": os.environ.get("PATH", "")},
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
