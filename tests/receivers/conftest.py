from tests.mqtt.broker import mqtt_broker, mqtt_broker_auth

__all__ = ["mqtt_broker", "mqtt_broker_auth"]
