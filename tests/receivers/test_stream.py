"""advertisements() against a real mosquitto, fed by an independent client (mosquitto_pub)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from tests.mqtt.broker import Broker, publish
from victron_ble_bms.mqtt.config import ConfigError
from victron_ble_bms.protocol import COMPANY_ID
from victron_ble_bms.receivers import Receivers, advertisements, encode_raw, raw_topic
from victron_ble_bms.sources.advertisement import Advertisement

from .test_formats import OMG, THEENGS, VICTRON_HEX


async def take(
    source: AsyncIterator[Advertisement], n: int, timeout: float = 10
) -> list[Advertisement]:
    out: list[Advertisement] = []

    async def collect() -> None:
        async for adv in source:
            out.append(adv)
            if len(out) == n:
                return

    await asyncio.wait_for(collect(), timeout)
    return out


async def _publish_soon(broker: Broker, messages: list[tuple[str, bytes]]) -> None:
    await asyncio.sleep(0.5)  # after the subscription
    for topic, payload in messages:
        await asyncio.to_thread(publish, broker, topic, payload)


def test_first_copies_from_two_gateways_and_bad_messages_in_between(
    mqtt_broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    sent_at = time.time()  # a receiver's clock: within minutes of ours, or refused
    raw_adv = Advertisement(
        sent_at, "C0:FF:EE:00:00:02", {COMPANY_ID: bytes.fromhex(VICTRON_HEX[4:]) + b"\x01"}, -60
    )
    messages = [
        THEENGS,
        ("home/gw/BTtoMQTT/C0FFEE000001", b"{not json"),
        OMG,  # the same transmission from a second gateway: merged
        ("home/gw/BTtoMQTT/C0FFEE000001", b'{"id":"C0:FF:EE:00:00:01","manufacturerdata":"zz"}'),
        # Over our 4 KiB, under the 64 KiB the broker is asked for (a larger one is never sent:
        # test_packet_limit.py)
        ("home/gw/BTtoMQTT/C0FFEE000001", b"x" * 10_000),
        (raw_topic("victron-ble-bms", "pi-zero"), encode_raw(raw_adv)),
    ]
    tracker = Receivers()

    async def main() -> list[Advertisement]:
        feeder = asyncio.create_task(_publish_soon(mqtt_broker, messages))
        got = await take(advertisements(mqtt_broker.url, receivers=tracker), 2)
        await feeder
        return got

    with caplog.at_level(logging.WARNING, logger="victron_ble_bms.receivers"):
        got = asyncio.run(main())
    assert [a.address for a in got] == ["C0:FF:EE:00:00:01", "C0:FF:EE:00:00:02"]
    assert got[0].victron_data == bytes.fromhex(VICTRON_HEX)[2:]
    assert got[1].ts == sent_at and got[1].origin == "mqtt:raw"
    assert tracker.counters.malformed == 3
    assert tracker.counters.duplicates == 1
    assert tracker.state_fields("C0:FF:EE:00:00:01")["receiver"] == "TheengsGateway"  # -67 > -81
    assert set(tracker.receivers) == {"TheengsGateway", "OMG_ESP32_BLE", "pi-zero"}
    assert "Traceback" not in caplog.text
    assert "not JSON" in caplog.text and "payload of 10000 bytes" in caplog.text


def test_a_shared_client_ignores_its_other_subscriptions(mqtt_broker: Broker) -> None:
    async def main() -> list[Advertisement]:
        async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as client:
            await client.subscribe("elsewhere/#")
            feeder = asyncio.create_task(
                _publish_soon(mqtt_broker, [("elsewhere/x", b"{}"), THEENGS])
            )
            tracker = Receivers()
            got = await take(advertisements(client, receivers=tracker), 1)
            await feeder
            assert tracker.counters.malformed == 0
            return got

    assert asyncio.run(main())[0].rssi == -67


def test_password_comes_from_the_environment(
    mqtt_broker_auth: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert mqtt_broker_auth.password is not None
    monkeypatch.setenv("VICTRON_BMS_MQTT_PASSWORD", mqtt_broker_auth.password)

    async def main() -> list[Advertisement]:
        feeder = asyncio.create_task(_publish_soon(mqtt_broker_auth, [THEENGS]))
        got = await take(advertisements(mqtt_broker_auth.url_with_user), 1)
        await feeder
        return got

    assert len(asyncio.run(main())) == 1


def test_broker_down_is_retried_with_one_line_each(
    mqtt_broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    mqtt_broker.stop()

    async def main() -> list[Advertisement]:
        async def later() -> None:
            await asyncio.sleep(1.5)
            await asyncio.to_thread(mqtt_broker.start)
            while True:  # until the client is back (its back-off, then its subscription)
                await asyncio.to_thread(publish, mqtt_broker, *THEENGS)
                await asyncio.sleep(0.5)

        task = asyncio.create_task(later())
        try:
            return await take(advertisements(mqtt_broker.url), 1, timeout=15)
        finally:
            task.cancel()

    with caplog.at_level(logging.WARNING, logger="victron_ble_bms.receivers"):
        assert len(asyncio.run(main())) == 1
    assert "retrying in 1 s" in caplog.text
    assert "connected to mqtt://127.0.0.1" in caplog.text
    assert "Traceback" not in caplog.text


def test_a_bad_url_is_one_config_error_without_the_password() -> None:
    async def main() -> None:
        async for _ in advertisements("mqtt://u:secret@host"):
            pass

    with pytest.raises(ConfigError, match="VICTRON_BMS_MQTT_PASSWORD") as caught:
        asyncio.run(main())
    assert "secret" not in str(caught.value)
