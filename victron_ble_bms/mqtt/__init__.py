"""MQTT publishing (presentation layer beside the CLI and the dashboard): `victron-bms serve`.

    config.py     MqttConfig: broker URL, prefixes, rates (TOML file, argv, environment)
    topics.py     the topic contract (README "Home Assistant and MQTT")
    state.py      the JSON of `<prefix>/<addr>/state`
    discovery.py  Home Assistant device-based discovery documents
    publisher.py  what to publish when: rate limits, heartbeats, staleness (no I/O)
    link.py       the aiomqtt connection: last will, reconnect with back-off, outbox
    systemd.py    the systemd unit (`serve --print-systemd-unit`, contrib/victron-bms.service)

The decoder never imports this package; this package imports aiomqtt only in `link.py`, when a
connection is made (optional extra `victron-ble-bms[mqtt]`).
"""

from .config import Broker, ConfigError, MqttConfig, load_config, parse_broker_url, resolve
from .publisher import Outgoing, Publisher

__all__ = [
    "Broker",
    "ConfigError",
    "MqttConfig",
    "Outgoing",
    "Publisher",
    "load_config",
    "parse_broker_url",
    "resolve",
]
