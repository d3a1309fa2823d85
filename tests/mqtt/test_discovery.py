"""Every discovery document we publish, checked against Home Assistant's documented MQTT
discovery schema, and every value template rendered (Jinja2, as HA does) against real state
payloads of emulated devices.

Known answers are HA's, not ours (quoted here with their source):
- device-based discovery (https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload):
  topic `<discovery_prefix>/device/<object_id>/config`; `device` (with `identifiers` or
  `connections`) and `origin` (with `name`) at the root; `components` maps ids to components,
  each with `platform` and a `unique_id`;
- sensor device classes → units and state classes: homeassistant/components/sensor/const.py
  `DEVICE_CLASS_UNITS`, `DEVICE_CLASS_STATE_CLASSES` (UnitOfElectricPotential = V, mV, µV, kV,
  MV; UnitOfElectricCurrent = A, mA; UnitOfTemperature = °C, °F, K; battery = %);
- binary sensor device classes: homeassistant/components/binary_sensor/__init__.py
  `BinarySensorDeviceClass`; `None` rendered by a template = unknown state (mqtt/const.py
  `PAYLOAD_NONE = "None"`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

jinja2 = pytest.importorskip("jinja2")
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

from victron_ble_bms.emulator import DeviceSpec, load_scenario  # noqa: E402
from victron_ble_bms.emulator.engine import Emulator  # noqa: E402
from victron_ble_bms.mqtt import MqttConfig  # noqa: E402
from victron_ble_bms.mqtt.discovery import bridge_config  # noqa: E402
from victron_ble_bms.mqtt.publisher import Publisher  # noqa: E402
from victron_ble_bms.sources.advertisement import Advertisement  # noqa: E402
from victron_ble_bms.sources.readings import decode_advertisement  # noqa: E402

# --- HA's documented schema (see the module docstring for the sources) --------------------------
SENSOR_UNITS: dict[str, set[str | None]] = {
    "voltage": {"V", "mV", "µV", "kV", "MV"},
    "current": {"A", "mA"},
    "battery": {"%"},
    "temperature": {"°C", "°F", "K"},
    "duration": {"d", "h", "min", "s", "ms", "µs"},
    "signal_strength": {"dB", "dBm"},
    "power": {"mW", "W", "kW", "MW", "GW", "TW", "BTU/h"},  # UnitOfPower
    "enum": {None},
}
SENSOR_STATE_CLASSES: dict[str, set[str]] = {
    "voltage": {"measurement"},
    "current": {"measurement"},
    "battery": {"measurement"},
    "temperature": {"measurement"},
    "duration": {"measurement", "total", "total_increasing"},
    "signal_strength": {"measurement"},
    "power": {"measurement"},
    "enum": set(),
}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
BINARY_SENSOR_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window",
}  # fmt: skip
# The keys a sensor / binary_sensor component may carry (HA mqtt/sensor.py, binary_sensor.py,
# schemas.py MQTT_ENTITY_COMMON_SCHEMA, MQTT_AVAILABILITY_SCHEMA).
COMMON = {
    "platform", "name", "unique_id", "state_topic", "value_template", "availability",
    "availability_mode", "availability_topic", "payload_available", "payload_not_available",
    "icon", "entity_category", "enabled_by_default", "json_attributes_topic",
    "json_attributes_template", "qos", "device_class", "expire_after", "force_update",
    "object_id", "default_entity_id",
}  # fmt: skip
SENSOR_KEYS = COMMON | {
    "unit_of_measurement", "state_class", "suggested_display_precision", "options",
    "last_reset_value_template",
}  # fmt: skip
BINARY_KEYS = COMMON | {"payload_on", "payload_off", "off_delay"}
DEVICE_KEYS = {
    "identifiers", "connections", "name", "manufacturer", "model", "model_id", "sw_version",
    "hw_version", "serial_number", "suggested_area", "configuration_url", "via_device",
}  # fmt: skip
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
TOPIC = re.compile(r"^[^+#\s]+/device/[a-zA-Z0-9_-]+/config$")


def validate(topic: str, payload: dict[str, Any]) -> None:
    """Raise AssertionError naming the first way `payload` breaks HA's schema."""
    assert TOPIC.match(topic), topic
    assert set(payload) <= {"device", "origin", "components", "qos", "state_topic"}, payload.keys()
    device, origin = payload["device"], payload["origin"]
    assert set(device) <= DEVICE_KEYS, set(device) - DEVICE_KEYS
    assert device.get("identifiers") or device.get("connections")
    assert isinstance(origin.get("name"), str) and set(origin) <= ORIGIN_KEYS
    uids = set()
    for cid, cmp in payload["components"].items():
        assert re.fullmatch(r"[a-zA-Z0-9_-]+", cid), cid
        platform = cmp["platform"]
        assert cmp["unique_id"] not in uids
        uids.add(cmp["unique_id"])
        assert isinstance(cmp.get("name"), str) and cmp["name"], cmp
        cls = cmp.get("device_class")
        if platform == "sensor":
            assert set(cmp) <= SENSOR_KEYS, set(cmp) - SENSOR_KEYS
            unit = cmp.get("unit_of_measurement")
            state_class = cmp.get("state_class")
            if state_class is not None:
                assert state_class in STATE_CLASSES
            if cls is not None:
                assert cls in SENSOR_UNITS, f"{cid}: device class {cls} not checked here"
                assert unit in SENSOR_UNITS[cls], f"{cid}: {unit} invalid for {cls}"
                if state_class is not None:
                    assert state_class in SENSOR_STATE_CLASSES[cls], f"{cid}: {state_class}"
            if cls == "enum":
                assert isinstance(cmp.get("options"), list) and cmp["options"]
                assert state_class is None and unit is None
        elif platform == "binary_sensor":
            assert set(cmp) <= BINARY_KEYS, set(cmp) - BINARY_KEYS
            assert cls is None or cls in BINARY_SENSOR_CLASSES, cls
        else:
            raise AssertionError(f"unexpected platform {platform}")
        for key in ("entity_category",):
            assert cmp.get(key) in (None, "diagnostic", "config")


# --- rendering templates like HA ---------------------------------------------------------------
ENV = ImmutableSandboxedEnvironment()


def render(template: str, state: dict[str, Any]) -> str:
    return ENV.from_string(template).render(value_json=json.loads(json.dumps(state))).strip()


def published(devices: list[str], seconds: int = 3) -> tuple[Publisher, list[Any]]:
    emu = Emulator(
        [DeviceSpec(d, scenario=load_scenario("normal-day")) for d in devices], seed=3, speed=None
    )
    publisher = Publisher(MqttConfig(instance_id="boat"), emu.keys, hostname="test-host")
    out = []
    for adv in emu.run(seconds):
        out.extend(publisher.reading(decode_advertisement(adv, emu.keys)))
    return publisher, out


def configs(messages: list[Any]) -> dict[str, dict[str, Any]]:
    return {m.topic: json.loads(m.payload) for m in messages if m.topic.endswith("/config")}


ALL_TYPES = [
    "lithium-12.8v-100ah",
    "lithium-25.6v-200ah",
    "smart-bms-cl-12-100",
    "smart-bms-12-200",
    "lynx-smart-bms-500",
    "lynx-smart-bms-ng",
]


def test_every_discovery_document_follows_the_schema() -> None:
    _, out = published(ALL_TYPES)
    docs = configs(out)
    assert len(docs) >= len(ALL_TYPES)
    for topic, payload in docs.items():
        validate(topic, payload)
    topic, payload = bridge_config(MqttConfig(), "host")
    validate(topic, payload)
    # The validator itself rejects what HA rejects.
    bad = json.loads(json.dumps(next(iter(docs.values()))))
    next(c for c in bad["components"].values() if c.get("device_class") == "voltage")[
        "unit_of_measurement"
    ] = "volts"
    with pytest.raises(AssertionError):
        validate(next(iter(docs)), bad)


def _doc_for(docs: dict[str, dict[str, Any]], model_part: str) -> dict[str, Any]:
    return next(d for d in docs.values() if model_part in d["device"]["model"])


def test_cells_follow_the_battery_and_devices_hang_off_the_bridge() -> None:
    _, out = published(["lithium-12.8v-100ah", "lithium-25.6v-200ah"])
    docs = configs(out)
    small = _doc_for(docs, "12.8V")
    big = _doc_for(docs, "25.6V")

    def cells(d: dict[str, Any]) -> list[str]:
        return sorted(k for k in d["components"] if k.startswith("cell_") and k[5:].isdigit())

    assert cells(small) == [f"cell_{i}" for i in range(1, 5)]
    assert cells(big) == [f"cell_{i}" for i in range(1, 9)]
    for d in (small, big):
        assert d["device"]["manufacturer"] == "Victron Energy"
        assert d["device"]["via_device"] == "victron_ble_bms_bridge_boat"
        kinds = {k: (c["platform"], c.get("device_class")) for k, c in d["components"].items()}
        assert kinds["battery_voltage_v"] == ("sensor", "voltage")
        assert kinds["battery_temperature_c"] == ("sensor", "temperature")
        assert kinds["balancer_status"] == ("sensor", "enum")
        assert kinds["allowed_to_charge"][0] == "binary_sensor"
        assert kinds["allowed_to_discharge"][0] == "binary_sensor"
        assert kinds["problem"] == ("binary_sensor", "problem")
        assert {"cell_min_v", "cell_max_v", "cell_spread_mv", "codes"} <= set(kinds)


def test_lynx_has_soc_and_current_and_smart_bms_says_provisional() -> None:
    _, out = published(["lynx-smart-bms-500", "smart-bms-12-200"])
    docs = configs(out)
    lynx = _doc_for(docs, "Lynx")
    assert lynx["components"]["soc_pct"]["device_class"] == "battery"
    assert lynx["components"]["battery_current_a"]["unit_of_measurement"] == "A"
    sbms = _doc_for(docs, "Smart BMS")
    assert "provisional" in sbms["device"]["model"]
    # Not in names: HA makes entity ids of them, and those must survive the layout's
    # confirmation. The data status entity's attributes say it.
    assert not any("provisional" in c["name"].lower() for c in sbms["components"].values())
    attrs = sbms["components"]["data_status"]["json_attributes_template"]
    assert json.loads(render(attrs, {"provisional": True}))["provisional_layout"] is True
    assert "provisional" not in lynx["device"]["model"]


def test_templates_render_values_and_unknown_never_all_clear() -> None:
    publisher, out = published(["lithium-25.6v-200ah"])
    doc = next(iter(configs(out).values()))
    state = json.loads(next(m.payload for m in reversed(out) if m.topic.endswith("/state")))
    cmps = doc["components"]
    assert float(render(cmps["cell_8"]["value_template"], state)) == state["cell_voltages_v"][7]
    assert render(cmps["battery_voltage_v"]["value_template"], state) == str(
        state["battery_voltage_v"]
    )
    assert (
        render(cmps["balancer_status"]["value_template"], state)
        in cmps["balancer_status"]["options"]
    )
    assert render(cmps["problem"]["value_template"], state) == ("ON" if state["codes"] else "OFF")
    assert render(cmps["allowed_to_charge"]["value_template"], state) in ("ON", "OFF")
    # Codes unknown (frame incomplete, CONTRACTS.md): unknown, not "no problem".
    unknown = {**state, "codes": None, "worst_code": None, "code_details": None}
    assert render(cmps["problem"]["value_template"], unknown) == "None"
    assert render(cmps["codes"]["value_template"], unknown) == "None"
    # An undecodable reading (key mismatch): every value unknown, not zero or stale.
    mismatch = {"ts": 1.0, "address": state["address"], "key_status": "key mismatch"}
    for cid, cmp in cmps.items():
        if cid in ("data_status", "heard"):
            continue
        assert render(cmp["value_template"], mismatch) == "None", cid
    # … and the data status entity says why.
    assert render(cmps["data_status"]["value_template"], mismatch) == "key mismatch"
    assert render(cmps["data_status"]["value_template"], state) == "ok"
    suspect = {**state, "suspect": "replayed frame"}
    assert render(cmps["data_status"]["value_template"], suspect) == "suspect"
    why = json.loads(render(cmps["data_status"]["json_attributes_template"], suspect))
    assert why["reason"] == "replayed frame"
    # A cell beyond the 7-bit range is a bound ("<2.61"), not a number HA could chart.
    bounded = {**state, "cell_voltages_v": ["<2.61", *state["cell_voltages_v"][1:]]}
    assert render(cmps["cell_1"]["value_template"], bounded) == "None"
    attrs = json.loads(render(cmps["codes"]["json_attributes_template"], state))
    assert attrs["codes_known"] is True and isinstance(attrs["codes"], list)


def test_codes_of_a_short_frame_are_unknown_in_the_state() -> None:
    emu = Emulator([DeviceSpec("lithium-12.8v-100ah")], load_scenario("normal-day"), speed=None)
    adv = next(iter(emu.run(1)))
    data = adv.victron_data
    assert data is not None
    short = Advertisement(adv.ts, adv.address, {0x02E1: data[:10]})
    publisher = Publisher(MqttConfig(), emu.keys)
    out = publisher.reading(decode_advertisement(short, emu.keys))
    state = json.loads(next(m.payload for m in out if m.topic.endswith("/state")))
    assert state.get("codes") is None and state.get("worst_code") is None


def test_names_from_the_air_are_plain_text() -> None:
    emu = Emulator([DeviceSpec("lithium-12.8v-100ah")], load_scenario("normal-day"), speed=None)
    adv = next(iter(emu.run(1)))
    hostile = "[@click=app.quit]Tap\x1b[31m me\u202e" + "x" * 300
    evil = Advertisement(adv.ts, adv.address, adv.manufacturer_data, adv.rssi, hostile)
    out = Publisher(MqttConfig(), emu.keys).reading(decode_advertisement(evil, emu.keys))
    # A keyed device is named by the keys file, else by its product (issue 18: a neighbour
    # could name it); a device without a key by what it advertises, as plain text.
    doc = next(iter(configs(out).values()))
    name = doc["device"]["name"]
    assert "Tap" not in name and name.startswith("Smart Lithium Battery") and len(name) <= 64
    state = json.loads(next(m.payload for m in out if m.topic.endswith("/state")))
    assert "name" not in state
    out = Publisher(MqttConfig(), {}).reading(decode_advertisement(evil, {}))
    state = json.loads(next(m.payload for m in out if m.topic.endswith("/state")))
    assert "\x1b" not in state["name"] and "\u202e" not in state["name"]
    assert "\\x1b" in state["name"]


def test_every_truncation_is_unknown_never_all_clear() -> None:
    """Frames cut at every length: whenever the record cannot vouch for its codes (codes
    raise, or — protocol branch contract — codes None), the state says unknown and the problem
    sensor renders unknown, not OFF."""
    emu = Emulator([DeviceSpec("lithium-25.6v-200ah")], load_scenario("normal-day"), speed=None)
    adv = next(iter(emu.run(1)))
    data = adv.victron_data
    assert data is not None
    _, out = published(["lithium-25.6v-200ah"])
    problem = next(iter(configs(out).values()))["components"]["problem"]["value_template"]
    unknown = 0
    for n in range(8, len(data)):
        cut = Advertisement(adv.ts, adv.address, {0x02E1: data[:n]}, adv.rssi)
        reading = decode_advertisement(cut, emu.keys)
        sent = Publisher(MqttConfig(), emu.keys).reading(reading)
        state = json.loads(next(m.payload for m in sent if m.topic.endswith("/state")))
        record = reading.record
        try:
            vouched = record is not None and record.codes is not None
        except Exception:  # noqa: BLE001 - main before the protocol branch: codes raise
            vouched = False
        if not vouched:  # a partial record whose code fields arrived does vouch for them
            unknown += 1
            assert state.get("codes") is None and state.get("worst_code") is None, n
            assert render(problem, state) == "None", n
    assert unknown > 0


# Scenarios in which each product shows every value it has (TTG needs a discharge, System+ an
# output switched on, the alternator an engine running).
VALUE_RUNS = {
    "lithium-12.8v-100ah": "normal-day",
    "lithium-25.6v-200ah": "normal-day",
    "smart-bms-cl-12-100": "normal-day",
    "smart-bms-12-200": "alternator",
    "lynx-smart-bms-500": "normal-day",
    "lynx-smart-bms-ng": "normal-day",
}


@pytest.mark.parametrize("device", ALL_TYPES)
def test_every_entity_offered_gets_a_value(device: str) -> None:
    """An entity that can never have a value is noise in HA (issue 19: the Lynx temperature,
    the CL 12/100 System+ voltage). Over a run of its scenario, each entity offered for the
    device renders a value at least once."""
    emu = Emulator(
        [DeviceSpec(device, scenario=load_scenario(VALUE_RUNS[device]))], seed=3, speed=None
    )
    publisher = Publisher(MqttConfig(instance_id="boat"), emu.keys, hostname="test-host")
    docs: dict[str, dict[str, Any]] = {}
    states: dict[str, list[dict[str, Any]]] = {}
    for adv in emu.run(900):
        for m in publisher.reading(decode_advertisement(adv, emu.keys)):
            if m.topic.endswith("/config"):
                docs[m.topic] = json.loads(m.payload)
            elif m.topic.endswith("/state"):
                states.setdefault(m.topic, []).append(json.loads(m.payload))
    assert docs
    for doc in docs.values():
        state_topic = next(iter(doc["components"].values()))["state_topic"]
        waiting = {cid: c for cid, c in doc["components"].items() if "value_template" in c}
        for st in states[state_topic]:
            for cid in [
                c for c, cmp in waiting.items() if render(cmp["value_template"], st) != "None"
            ]:
                del waiting[cid]
        assert not waiting, f"{doc['device']['model']}: {sorted(waiting)} never have a value"


def test_lynx_outputs_and_power_and_what_is_never_sent() -> None:
    _, out = published(["lynx-smart-bms-500", "smart-bms-cl-12-100", "smart-bms-12-200"])
    docs = configs(out)
    lynx = _doc_for(docs, "Lynx")["components"]
    assert "temperature_c" not in lynx  # docs/protocol.md §2.2: a Lynx always sends n/a there
    for key in ("contactor_closed", "user_relay_active", "aux_output_enabled", "remote_enabled"):
        assert lynx[f"io_{key}"]["platform"] == "binary_sensor"
    assert (
        lynx["power_w"]["device_class"] == "power" and lynx["power_w"]["unit_of_measurement"] == "W"
    )
    state = {
        "io": {
            "contactor_closed": "yes",
            "user_relay_active": "no",
            "aux_output_enabled": "not_available",
        }
    }
    assert render(lynx["io_contactor_closed"]["value_template"], state) == "ON"
    assert render(lynx["io_user_relay_active"]["value_template"], state) == "OFF"
    assert render(lynx["io_aux_output_enabled"]["value_template"], state) == "None"
    assert render(lynx["io_remote_enabled"]["value_template"], {"io": None}) == "None"
    cl = _doc_for(docs, "CL 12-100")["components"]
    assert "system_voltage_v" not in cl  # no System+ port (docs/protocol.md §8.2)
    # Why values are unknown shows while the bridge is up, whatever the device's availability.
    for cid in ("data_status", "heard"):
        assert [a["topic"] for a in lynx[cid]["availability"]] == [
            "victron-ble-bms/bridge/boat/availability"
        ]
    assert not any(c.get("enabled_by_default") is False for c in lynx.values())
