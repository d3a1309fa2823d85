"""Home Assistant MQTT discovery: one *device-based* discovery document per Victron device
(`<discovery_prefix>/device/<object_id>/config`, HA ≥ 2024.11; docs/ecosystem.md §7).

Every entity reads the device's state topic (`mqtt/state.py` computes what templates would get
wrong: lowest/highest cell, allowed-to-charge, worst code). A template that meets a missing or
non-numeric value renders `None`, which HA shows as *unknown* — so an incomplete frame or an
undecodable reading never looks like a healthy value or an all-clear.

One declarative table (`VALUE_ENTITIES`) says which JSON key becomes which entity with which
device class, state class and unit; an entity is offered only when the device's record has the
key (a 12.8 V battery gets 4 cell sensors, a 25.6 V one 8) and the product can send a value
there (`NEVER_SENT`): every entity offered can have a value.

Layouts marked provisional (0x0E, docs/protocol.md §8.2) say so in the device's model and in the
attributes of the "Data status" entity, not in entity names: Home Assistant derives entity ids
from names, and the ids must not change when the layout is confirmed.

Why values are unknown is on the device too: "Data status" (ok, suspect, key mismatch,
undecodable, with the reason as an attribute) and "Heard recently" (the device's availability),
both diagnostic and available while the bridge is, so they show while the values do not.
No entity is disabled by default: Home Assistant (before 2026.5, core PR 168382) logs a warning
when a device with a disabled entity is removed through discovery.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from victron_ble_bms import __version__
from victron_ble_bms.protocol.enums import BalancerStatus
from victron_ble_bms.protocol.products import LYNX_SMART_BMS_IDS
from victron_ble_bms.safetext import plain

from . import topics
from .config import MqttConfig

MANUFACTURER = "Victron Energy"
ORIGIN = {"name": "victron-ble-bms", "sw_version": __version__}
MAX_NAME = 64


@dataclass(frozen=True, slots=True)
class ValueEntity:
    key: str  # the state JSON key
    name: str
    device_class: str | None
    unit: str | None
    icon: str | None = None
    precision: int | None = None


# JSON key → sensor. Device classes and units are from HA's sensor documentation
# (https://www.home-assistant.io/integrations/sensor/#device-class); tests/mqtt checks them.
VALUE_ENTITIES: tuple[ValueEntity, ...] = (
    ValueEntity("battery_voltage_v", "Battery voltage", "voltage", "V", precision=2),
    ValueEntity("battery_current_a", "Battery current", "current", "A", precision=1),
    ValueEntity("soc_pct", "State of charge", "battery", "%", precision=1),
    ValueEntity("battery_temperature_c", "Battery temperature", "temperature", "°C"),
    ValueEntity("temperature_c", "Temperature", "temperature", "°C"),
    # HA has no device class for charge (Ah); J2M publishes it without one too.
    ValueEntity("consumed_ah", "Consumed", None, "Ah", "mdi:battery-minus", 1),
    ValueEntity("ttg_min", "Time to go", "duration", "min"),
    ValueEntity("system_voltage_v", "System voltage", "voltage", "V", precision=2),
    ValueEntity("alternator_voltage_v", "Alternator voltage", "voltage", "V", precision=2),
    ValueEntity("alternator_current_pct", "Alternator current", None, "%", "mdi:engine"),
    ValueEntity("cell_min_v", "Lowest cell voltage", "voltage", "V", precision=2),
    ValueEntity("cell_max_v", "Highest cell voltage", "voltage", "V", precision=2),
    ValueEntity("cell_spread_mv", "Cell voltage spread", "voltage", "mV"),
    # V × I (mqtt/state.py), + charging; the Integration (Riemann sum) helper turns it into the
    # kWh the Energy dashboard wants.
    ValueEntity("power_w", "Power", "power", "W", precision=0),
)

# Keys a record type has but a product never fills (offered, they would stay unknown forever).
SMART_BMS_CL_12_100 = 0xA3E0
NEVER_SENT: tuple[tuple[frozenset[int], frozenset[str]], ...] = (
    # docs/protocol.md §2.2: a Lynx Smart BMS always sends "not available" as its temperature.
    (frozenset(LYNX_SMART_BMS_IDS), frozenset({"temperature_c"})),
    # docs/protocol.md §8.2: the Smart BMS CL 12/100 has no System+ port.
    (frozenset({SMART_BMS_CL_12_100}), frozenset({"system_voltage_v"})),
)

# The Lynx Smart BMS's IO bits (docs/protocol.md §4.4: "yes" / "no" / "not_available").
IO_ENTITIES: tuple[tuple[str, str, str], ...] = (
    ("contactor_closed", "Contactor closed", "mdi:electric-switch-closed"),
    ("user_relay_active", "User relay", "mdi:electric-switch"),
    ("aux_output_enabled", "Aux output", "mdi:power-plug"),
    ("remote_enabled", "Remote on", "mdi:toggle-switch"),
    ("alternator_allowed_to_charge", "Alternator allowed to charge", "mdi:engine"),
)

DATA_STATUS_OPTIONS = ["ok", "suspect", "key mismatch", "undecodable", "no key"]


def never_sent(state: Mapping[str, Any]) -> frozenset[str]:
    """The keys this device's product never fills (NEVER_SENT)."""
    model = state.get("model_id")
    out: frozenset[str] = frozenset()
    for models, keys in NEVER_SENT:
        if model in models:
            out |= keys
    return out


BALANCER_OPTIONS = [m.name.lower() for m in BalancerStatus]


def _number(key: str, index: int | None = None) -> str:
    """A template giving the number at `key` (or `key[index]`), else None (= unknown)."""
    if index is None:
        pick = f"{{% set v = value_json.get('{key}') %}}"
    else:  # a list shorter than the index, or a bound like "<2.61", gives no number
        pick = (
            f"{{% set l = value_json.get('{key}') or [] %}}"
            f"{{% set v = l[{index}] if l | length > {index} else none %}}"
        )
    return pick + "{{ v if v is number and v is not boolean else None }}"


def _io(key: str) -> str:
    return (
        "{% set io = value_json.get('io') %}"
        f"{{% set v = io.get('{key}') if io is mapping else none %}}"
        "{{ 'ON' if v == 'yes' else ('OFF' if v == 'no' else 'None') }}"
    )


def _binary(key: str) -> str:
    return (
        f"{{% set v = value_json.get('{key}') %}}"
        "{{ 'ON' if v is sameas true else ('OFF' if v is sameas false else 'None') }}"
    )


def _device_name(address: str, name: str | None, product: str | None) -> str:
    base = plain(name, MAX_NAME) if name else (product or "Victron device")
    return f"{base} {topics.node_id(address)[-4:].upper()}" if not name else base


def bridge_identifier(cfg: MqttConfig) -> str:
    """This `serve` instance as an HA device id; every device config it publishes names it as
    `via_device`, which is how an instance recognises its own retained configs (`owner`)."""
    return topics.bridge_object_id(cfg.topic_prefix, cfg.instance)


def owner(payload: bytes) -> str | None:
    """The `via_device` of a retained device discovery document (the instance that published
    it, for ours), or None when it is not one of that shape."""
    if len(payload) > 256 * 1024:
        return None
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    device = doc.get("device", doc.get("dev")) if isinstance(doc, dict) else None
    via = device.get("via_device") if isinstance(device, dict) else None
    return via if isinstance(via, str) else None


def device_config(
    cfg: MqttConfig,
    address: str,
    name: str | None,
    state: Mapping[str, Any],
    *,
    cell_count: int | None = None,
    demo: bool = False,
) -> tuple[str, dict[str, Any]]:
    """(topic, payload) of one Victron device's discovery document. `state` is a state object
    of the device (`mqtt/state.py`): an entity is offered for each key it has; `cell_count`
    cells get a sensor (default: those `state` reports)."""
    object_id = topics.discovery_object_id(cfg.topic_prefix, address)
    is_provisional = bool(state.get("provisional"))
    never = never_sent(state)
    product = state.get("product")
    product = plain(product, MAX_NAME) if isinstance(product, str) else None
    record_type = state.get("record_type_id")
    state_topic = topics.state_topic(cfg.topic_prefix, address)
    bridge_only = [{"topic": topics.bridge_availability_topic(cfg.topic_prefix, cfg.instance)}]
    common: dict[str, Any] = {
        "state_topic": state_topic,
        "availability": [
            *bridge_only,
            {"topic": topics.availability_topic(cfg.topic_prefix, address)},
        ],
        "availability_mode": "all",
    }
    cmps: dict[str, dict[str, Any]] = {}

    def add(suffix: str, platform: str, name_: str, **options: Any) -> None:
        cmp = {
            "platform": platform,
            "name": name_,
            "unique_id": f"{object_id}_{suffix}",
            **common,
            **{k: v for k, v in options.items() if v is not None},
        }
        cmps[suffix] = cmp

    for ent in VALUE_ENTITIES:
        if ent.key in state and ent.key not in never:
            add(
                ent.key,
                "sensor",
                ent.name,
                device_class=ent.device_class,
                state_class="measurement",
                unit_of_measurement=ent.unit,
                icon=ent.icon,
                suggested_display_precision=ent.precision,
                value_template=_number(ent.key),
            )
    cells = state.get("cell_voltages_v")
    if isinstance(cells, list):
        if cell_count is None:  # cells that report no value do not exist (4 of 8 on 12.8 V)
            present = [i for i, v in enumerate(cells) if v is not None]
            cell_count = present[-1] + 1 if present else 0
        for i in range(min(cell_count, len(cells))):
            add(
                f"cell_{i + 1}",
                "sensor",
                f"Cell {i + 1} voltage",
                device_class="voltage",
                state_class="measurement",
                unit_of_measurement="V",
                suggested_display_precision=2,
                value_template=_number("cell_voltages_v", i),
            )
    if "balancer_status" in state:
        add(
            "balancer_status",
            "sensor",
            "Balancer",
            device_class="enum",
            options=BALANCER_OPTIONS,
            icon="mdi:scale-balance",
            value_template=(
                "{% set v = value_json.get('balancer_status') %}"
                f"{{{{ v if v in {BALANCER_OPTIONS!r} else None }}}}"
            ),
        )
    for key, label in (
        ("allowed_to_charge", "Allowed to charge"),
        ("allowed_to_discharge", "Allowed to discharge"),
    ):
        if key in state:
            add(
                key,
                "binary_sensor",
                label,
                icon="mdi:battery-charging",
                value_template=_binary(key),
            )
    io = state.get("io")
    if isinstance(io, dict):
        for key, label, icon in IO_ENTITIES:
            if key in io:
                add(f"io_{key}", "binary_sensor", label, icon=icon, value_template=_io(key))
    if "codes" in state:
        add(
            "codes",
            "sensor",
            "Active code",
            icon="mdi:alert-circle-outline",
            value_template=(
                "{% set v = value_json.get('worst_code') %}{{ v if v is string else None }}"
            ),
            json_attributes_topic=state_topic,
            json_attributes_template=(
                "{{ {'codes': value_json.get('code_details'), "
                "'codes_known': value_json.get('codes') is not none, "
                f"'provisional_layout': {is_provisional!r}"
                "} | tojson }}"
            ),
        )
        add(
            "problem",
            "binary_sensor",
            "Problem",
            device_class="problem",
            value_template=(
                "{% set c = value_json.get('codes') %}"
                "{{ 'None' if c is none or c is undefined "
                "else ('ON' if c | length > 0 else 'OFF') }}"
            ),
        )
    add(
        "rssi",
        "sensor",
        "Signal strength",
        device_class="signal_strength",
        state_class="measurement",
        unit_of_measurement="dBm",
        entity_category="diagnostic",
        value_template=_number("rssi"),
    )
    # Why the values are unknown: available while the bridge is (not gated by the device's own
    # availability), so they still show when everything else is unavailable.
    add(
        "data_status",
        "sensor",
        "Data status",
        device_class="enum",
        options=DATA_STATUS_OPTIONS,
        entity_category="diagnostic",
        icon="mdi:shield-key-outline",
        value_template=(
            "{% set s = value_json.get('key_status') %}"
            "{{ 'suspect' if s == 'ok' and value_json.get('suspect') "
            f"else (s if s in {DATA_STATUS_OPTIONS!r} else None) }}}}"
        ),
        json_attributes_topic=state_topic,
        json_attributes_template=(
            "{{ {'reason': value_json.get('suspect') or value_json.get('message'), "
            f"'provisional_layout': {is_provisional!r}"
            "} | tojson }}"
        ),
    )
    add(
        "heard",
        "binary_sensor",
        "Heard recently",
        device_class="connectivity",
        entity_category="diagnostic",
        state_topic=topics.availability_topic(cfg.topic_prefix, address),
        payload_on=topics.ONLINE,
        payload_off=topics.OFFLINE,
    )
    for cid in ("data_status", "heard"):
        cmps[cid]["availability"] = bridge_only
        cmps[cid].pop("availability_mode", None)
    payload: dict[str, Any] = {
        "device": {
            "identifiers": [object_id],
            "name": ("Demo " if demo else "") + _device_name(address, name, product),
            "manufacturer": MANUFACTURER,
            "model": product or f"record type {record_type}",
            "via_device": bridge_identifier(cfg),
        },
        "origin": ORIGIN,
        "components": cmps,
        "qos": 0,
    }
    if is_provisional:
        payload["device"]["model"] += " (provisional layout)"
    if demo:
        payload["device"]["model"] += " (emulated)"
    return topics.discovery_topic(cfg.discovery_prefix, object_id), payload


def bridge_config(
    cfg: MqttConfig, hostname: str, *, demo: bool = False
) -> tuple[str, dict[str, Any]]:
    """The bridge (this `serve` instance) as an HA device with a connectivity sensor; the
    Victron devices name it as their `via_device`. Named after the instance id, so two bridges
    (two Pis, or two `serve`s on one host) never share a name."""
    object_id = topics.bridge_object_id(cfg.topic_prefix, cfg.instance)
    shown = cfg.instance  # the host name by default: `hostname` says where it runs
    payload = {
        "device": {
            "identifiers": [bridge_identifier(cfg)],
            "name": f"Victron BLE {'demo ' if demo else ''}bridge {shown}",
            "manufacturer": "victron-ble-bms",
            "model": f"victron-bms serve on {plain(hostname, 40)}"
            if hostname
            else "victron-bms serve",
            "sw_version": __version__,
        },
        "origin": ORIGIN,
        "components": {
            "status": {
                "platform": "binary_sensor",
                "name": "Status",
                "unique_id": f"{object_id}_status",
                "device_class": "connectivity",
                "entity_category": "diagnostic",
                "state_topic": topics.bridge_availability_topic(cfg.topic_prefix, cfg.instance),
                "payload_on": topics.ONLINE,
                "payload_off": topics.OFFLINE,
            }
        },
        "qos": 0,
    }
    return topics.discovery_topic(cfg.discovery_prefix, object_id), payload
