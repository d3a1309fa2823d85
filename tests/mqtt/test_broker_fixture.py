"""The broker fixture itself: an independent publisher and subscriber see each other, retained
messages survive a new subscriber, the password and TLS variants refuse the wrong client."""

from __future__ import annotations

import subprocess

from tests.mqtt.broker import Broker, publish, retained, subscribe


def test_subscriber_sees_published_and_retained(mqtt_broker: Broker) -> None:
    publish(mqtt_broker, "t/retained", "kept", retain=True)
    with subscribe(mqtt_broker, "t/#") as sub:
        first = sub.wait_for(lambda m: m.topic == "t/retained")
        assert first.retain and first.payload == "kept"
        publish(mqtt_broker, "t/live", '{"a": 1}')
        live = sub.wait_for(lambda m: m.topic == "t/live")
        assert not live.retain and live.json() == {"a": 1}
    assert retained(mqtt_broker) == {"t/retained": "kept"}


def test_restart_keeps_the_port_and_drops_retained(mqtt_broker: Broker) -> None:
    publish(mqtt_broker, "t/x", "1", retain=True)
    port = mqtt_broker.port
    mqtt_broker.restart()
    assert mqtt_broker.port == port and mqtt_broker.running
    assert retained(mqtt_broker) == {}


def test_password_broker_refuses_anonymous(mqtt_broker_auth: Broker) -> None:
    publish(mqtt_broker_auth, "t/ok", "1", retain=True)
    assert retained(mqtt_broker_auth) == {"t/ok": "1"}
    anon = subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mqtt_broker_auth.port)]
        + ["-t", "t", "-m", "x"],
        capture_output=True,
        check=False,
    )
    assert anon.returncode != 0


def test_tls_broker_checks_the_name(mqtt_broker_tls: Broker) -> None:
    publish(mqtt_broker_tls, "t/tls", "1", retain=True)  # by its certificate's name: accepted
    assert retained(mqtt_broker_tls) == {"t/tls": "1"}
    wrong_name = subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            str(mqtt_broker_tls.port),
            "--cafile",
            str(mqtt_broker_tls.cafile),
            "-t",
            "t",
            "-m",
            "x",
        ],
        capture_output=True,
        check=False,
    )
    assert wrong_name.returncode != 0
