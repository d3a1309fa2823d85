"""The real mosquitto broker of tests/mqtt, for the bank's MQTT tests."""

from __future__ import annotations

from tests.mqtt.broker import mqtt_broker

__all__ = ["mqtt_broker"]
