"""Fixtures for the MQTT tests: a real mosquitto broker (see tests/mqtt/broker.py)."""

from __future__ import annotations

from tests.mqtt.broker import mqtt_broker, mqtt_broker_auth, mqtt_broker_tls

__all__ = ["mqtt_broker", "mqtt_broker_auth", "mqtt_broker_tls"]
