"""Banks on MQTT (issue 20): `<prefix>/bank/<bank>/state` and a Home Assistant device per bank.

    <prefix>/bank/<bank>/state    the bank's JSON (`banks.bank_object`, README "Banks"), retained
    <discovery_prefix>/device/<prefix_id>_bank_<bank>/config     its HA device (retained)

`<bank>` is the bank's name from the keys file with anything but letters, digits, '_' and '-'
made '_'. The state is sent when the bank changes — at once when its verdict, the members heard
or a blocking member change, otherwise at most once per `min_interval_s` — and at least once per
`heartbeat_s`. Its entities are available while the bridge is; the bank's own "unknown" is in
the state: every value a member did not give is null, which HA shows as unknown, and the
problem sensor is unknown (never off) while any member is not fully known.

Staleness runs on the readings' clock (capture time when replaying), carried forward by the
publisher's clock between readings, so a member that falls silent is noticed even when no other
member speaks.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from victron_ble_bms.banks import BankSpec, BankTracker, Verdict
from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.readings import Reading

from . import topics
from .config import MqttConfig
from .discovery import MAX_NAME, ORIGIN, _binary, _number, bridge_identifier
from .publisher import Outgoing

_NOT_TOPIC = re.compile(r"[^A-Za-z0-9_-]+")
# Sent at once when these change; other changes wait for min_interval_s.
_URGENT = ("verdict", "members_heard", "members_stale", "blocking_charge", "blocking_discharge")
VERDICT_OPTIONS = [v.value for v in Verdict if v is not Verdict.UNKNOWN]  # unknown: HA's own


def bank_id(name: str) -> str:
    return _NOT_TOPIC.sub("_", name).strip("_") or "bank"


def bank_state_topic(prefix: str, name: str) -> str:
    return f"{prefix}/bank/{bank_id(name)}/state"


def bank_object_id(prefix: str, name: str) -> str:
    return f"{topics.prefix_id(prefix)}_bank_{bank_id(name).lower()}"


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


# (key, name, options): the bank's numeric sensors, one row each.
_SENSOR = "sensor"
_V2 = {"device_class": "voltage", "unit": "V", "precision": 2}
_ENTITIES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("members", "Members", {"icon": "mdi:battery-outline"}),
    ("members_heard", "Members heard", {"icon": "mdi:battery-check-outline"}),
    ("members_stale", "Members stale", {"icon": "mdi:battery-alert-variant-outline"}),
    ("voltage_v", "Bank voltage", _V2),
    (
        "voltage_spread_v",
        "Voltage spread",
        {"device_class": "voltage", "unit": "V", "precision": 2},
    ),
    ("cell_voltage_min_v", "Lowest cell", _V2),
    (
        "cell_voltage_max_v",
        "Highest cell",
        {"device_class": "voltage", "unit": "V", "precision": 2},
    ),
    ("cell_spread_mv", "Cell spread", {"device_class": "voltage", "unit": "mV"}),
    ("temperature_min_c", "Lowest temperature", {"device_class": "temperature", "unit": "°C"}),
    ("temperature_max_c", "Highest temperature", {"device_class": "temperature", "unit": "°C"}),
    ("soc_pct", "State of charge", {"device_class": "battery", "unit": "%", "precision": 1}),
    ("current_a", "Current", {"device_class": "current", "unit": "A", "precision": 1}),
    ("consumed_ah", "Consumed", {"unit": "Ah", "icon": "mdi:battery-minus", "precision": 1}),
    ("ttg_min", "Time to go", {"device_class": "duration", "unit": "min"}),
)
_TEXTS = (
    ("cell_voltage_min_at", "Lowest cell at", "mdi:battery-arrow-down-outline"),
    ("cell_voltage_max_at", "Highest cell at", "mdi:battery-arrow-up-outline"),
    ("worst_code", "Active code", "mdi:alert-circle-outline"),
)


def _text(key: str) -> str:
    return f"{{% set v = value_json.get('{key}') %}}{{{{ v if v is string else None }}}}"


def _names(key: str) -> str:
    """A list of member names: joined, "none" when known to be empty, unknown when null."""
    return (
        f"{{% set v = value_json.get('{key}') %}}"
        "{{ None if v is none or v is undefined else (v | join(', ') if v else 'none') }}"
    )


def bank_config(cfg: MqttConfig, name: str, *, demo: bool = False) -> tuple[str, dict[str, Any]]:
    """(topic, payload) of a bank's HA device discovery document."""
    object_id = bank_object_id(cfg.topic_prefix, name)
    state_topic = bank_state_topic(cfg.topic_prefix, name)
    common = {
        "state_topic": state_topic,
        "availability": [
            {"topic": topics.bridge_availability_topic(cfg.topic_prefix, cfg.instance)}
        ],
    }
    cmps: dict[str, dict[str, Any]] = {}

    def add(key: str, platform: str, label: str, **options: Any) -> None:
        cmps[key] = {
            "platform": platform,
            "name": label,
            "unique_id": f"{object_id}_{key}",
            **common,
            **{k: v for k, v in options.items() if v is not None},
        }

    add(
        "verdict",
        _SENSOR,
        "Verdict",
        device_class="enum",
        options=VERDICT_OPTIONS,
        icon="mdi:car-battery",
        value_template=(
            "{% set v = value_json.get('verdict') %}"
            f"{{{{ v if v in {VERDICT_OPTIONS!r} else None }}}}"
        ),
        json_attributes_topic=state_topic,
        json_attributes_template=(
            "{{ {'reason': value_json.get('reason'), 'problems': value_json.get('problems'), "
            "'imbalance': value_json.get('imbalance'), "
            "'imbalance_remedy': value_json.get('imbalance_remedy')} | tojson }}"
        ),
    )
    add(
        "problem",
        "binary_sensor",
        "Problem",
        device_class="problem",
        value_template=_binary("problem"),  # null → unknown, never off
    )
    for key, label, opts in _ENTITIES:
        add(
            key,
            _SENSOR,
            label,
            device_class=opts.get("device_class"),
            state_class="measurement",
            unit_of_measurement=opts.get("unit"),
            icon=opts.get("icon"),
            suggested_display_precision=opts.get("precision"),
            value_template=_number(key),
        )
    for key, label, icon in _TEXTS:
        add(key, _SENSOR, label, icon=icon, value_template=_text(key))
    cmps["worst_code"].update(
        json_attributes_topic=state_topic,
        json_attributes_template="{{ {'codes': value_json.get('codes')} | tojson }}",
    )
    for key, label in (
        ("allowed_to_charge", "Allowed to charge"),
        ("allowed_to_discharge", "Allowed to discharge"),
    ):
        add(key, "binary_sensor", label, icon="mdi:battery-charging", value_template=_binary(key))
    add(
        "blocking_charge",
        _SENSOR,
        "Blocking charge",
        icon="mdi:battery-lock",
        value_template=_names("blocking_charge"),
    )
    add(
        "blocking_discharge",
        _SENSOR,
        "Blocking discharge",
        icon="mdi:battery-lock",
        value_template=_names("blocking_discharge"),
    )
    payload = {
        "device": {
            "identifiers": [object_id],
            "name": f"{'Demo bank' if demo else 'Bank'} {plain(name, MAX_NAME)}",
            "manufacturer": "victron-ble-bms",
            "model": "Battery bank",
            "via_device": bridge_identifier(cfg),
        },
        "origin": ORIGIN,
        "components": cmps,
        "qos": 0,
    }
    return topics.discovery_topic(cfg.discovery_prefix, object_id), payload


@dataclass(slots=True)
class _Bank:
    payload: bytes | None = None
    urgent: tuple[Any, ...] | None = None
    last_sent: float | None = None
    pending: bool = False


class BankPublisher:
    """The banks' messages beside the devices' (`Publisher` calls it); no I/O."""

    def __init__(
        self,
        cfg: MqttConfig,
        banks: Mapping[str, BankSpec],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.tracker = BankTracker(banks, stale_after_s=cfg.stale_after_s)
        self.banks: dict[str, _Bank] = {}
        self._heard_at: float | None = None  # our clock when the latest reading came
        self.demo = False  # a demo run's banks are named so (set by Publisher)

    def reading(self, reading: Reading) -> list[Outgoing]:
        if not self.tracker.banks:
            return []
        objs = self.tracker.update(reading)
        self._heard_at = self.clock()
        return self._take(objs)

    def tick(self) -> list[Outgoing]:
        if not self.tracker.banks or self._heard_at is None:
            return []
        now = self.clock()
        out = self._take(self.tracker.tick(self.tracker.now + (now - self._heard_at)))
        self._heard_at = now  # the readings' clock was carried forward to now
        for name, bank in self.banks.items():
            if bank.payload is None or bank.last_sent is None or bank.last_sent == now:
                continue
            since = now - bank.last_sent
            if (bank.pending and since >= self.cfg.min_interval_s) or (
                since >= self.cfg.heartbeat_s
            ):
                out.append(self._send(name, bank, now))
        return out

    def _take(self, objs: list[dict[str, Any]]) -> list[Outgoing]:
        now = self.clock()
        out: list[Outgoing] = []
        for obj in objs:
            name = obj["name"]
            bank = self.banks.get(name)
            if bank is None:
                bank = self.banks[name] = _Bank()
                if self.cfg.discovery:
                    out.append(self._config(name))
            bank.payload = _json(obj)
            urgent = tuple(json.dumps(obj.get(k)) for k in _URGENT)
            due = bank.last_sent is None or now - bank.last_sent >= self.cfg.min_interval_s
            if due or urgent != bank.urgent:
                out.append(self._send(name, bank, now))
            else:
                bank.pending = True
            bank.urgent = urgent
        return out

    def _send(self, name: str, bank: _Bank, now: float) -> Outgoing:
        assert bank.payload is not None  # noqa: S101 - set before any send
        bank.last_sent = now
        bank.pending = False
        return Outgoing(bank_state_topic(self.cfg.topic_prefix, name), bank.payload, retain=True)

    def _config(self, name: str) -> Outgoing:
        topic, payload = bank_config(self.cfg, name, demo=self.demo)
        return Outgoing(topic, _json(payload), retain=True, qos=1)

    def online(self) -> list[Outgoing]:
        """On every (re)connect: each bank's discovery and retained state again."""
        out = []
        for name, bank in self.banks.items():
            if self.cfg.discovery:
                out.append(self._config(name))
            if bank.payload is not None:
                out.append(
                    Outgoing(bank_state_topic(self.cfg.topic_prefix, name), bank.payload, True)
                )
        return out

    def keys_changed(self, banks: Mapping[str, BankSpec]) -> list[Outgoing]:
        """The keys file was re-read: a bank no longer declared loses its retained topics."""
        self.tracker.set_banks(banks)
        out = []
        for name in [n for n in self.banks if n not in banks]:
            del self.banks[name]
            object_id = bank_object_id(self.cfg.topic_prefix, name)
            out.append(
                Outgoing(topics.discovery_topic(self.cfg.discovery_prefix, object_id), b"", True, 1)
            )
            out.append(Outgoing(bank_state_topic(self.cfg.topic_prefix, name), b"", True, 1))
        if self.tracker.banks and self._heard_at is not None:
            out.extend(self._take(self.tracker.tick(self.tracker.now)))
        return out
