"""The sending end of `serve --publish-raw` without a broker: each transmission once, bounded,
never retained, topic-safe receiver ids — and what it sends parses back (formats.py) to the
advertisement that was heard."""

from __future__ import annotations

import pytest

from tests.tui import frames
from victron_ble_bms.mqtt.config import MqttConfig, resolve
from victron_ble_bms.mqtt.link import Link
from victron_ble_bms.receivers import (
    RawForwarder,
    ReceiverIdError,
    check_receiver_id,
    parse_message,
    receiver_id_from_hostname,
)
from victron_ble_bms.sources.advertisement import Advertisement

FORBIDDEN = ("/", "+", "#", "\0")


def test_the_same_transmission_is_sent_once_and_a_new_one_again() -> None:
    fwd = RawForwarder("victron-ble-bms", "bow-pi")
    adv = frames.advert(frames.BOW, frames.bow(), nonce=7, ts=1000.0)
    first = fwd.advertisement(adv)
    # BlueZ re-reports the same bytes with another RSSI: a repeat, not sent.
    again = Advertisement(1000.5, adv.address, adv.manufacturer_data, rssi=-40)
    assert fwd.advertisement(again) == []
    newer = fwd.advertisement(frames.advert(frames.BOW, frames.bow(), nonce=8, ts=1001.0))
    assert len(first) == 1 and len(newer) == 1
    (m,) = first
    assert m.topic == "victron-ble-bms/raw/bow-pi" and not m.retain
    heard = parse_message(m.topic, m.payload, now=1005.0)
    assert heard.receiver == "bow-pi"
    assert heard.advertisement.manufacturer_data == adv.manufacturer_data
    assert heard.advertisement.address == adv.address and heard.advertisement.ts == 1000.0
    assert (fwd.sent, fwd.repeats) == (2, 1)


def test_other_manufacturers_are_not_forwarded() -> None:
    fwd = RawForwarder("p", "r")
    assert fwd.advertisement(Advertisement(1.0, frames.BOW, {0x004C: b"\x02\x15"})) == []
    assert fwd.not_victron == 1 and fwd.sent == 0


def test_a_flood_of_addresses_is_bounded_and_rate_limited() -> None:
    now = [0.0]
    fwd = RawForwarder("p", "r", max_devices=100, rate=50.0, burst=100.0, clock=lambda: now[0])
    data = frames.advert(frames.BOW, frames.bow(), nonce=1).manufacturer_data
    sent = 0
    for i in range(10_000):
        now[0] = i / 1000  # 10,000 forged addresses in 10 s
        address = ":".join(f"{b:02X}" for b in (0xC1, 0, 0, i >> 16, (i >> 8) & 255, i & 255))
        sent += len(fwd.advertisement(Advertisement(now[0], address, data)))
    assert len(fwd._last) <= 100
    assert sent <= 100 + 50 * 10 + 1  # the burst, then the rate
    assert fwd.throttled == 10_000 - sent and fwd.evicted == sent - 100


def test_raw_messages_of_many_devices_on_one_topic_all_wait_in_the_outbox() -> None:
    """The outbox keeps one message per topic; raw messages share a topic, so they are kept
    per device — otherwise a burst (or an outage) would forward only the last device heard."""
    fwd = RawForwarder("victron-ble-bms", "r")
    link = Link(resolve(MqttConfig(), url="mqtt://127.0.0.1:1"), fwd, say=lambda _line: None)
    for address in (frames.HOUSE, frames.BOW, frames.LYNX):
        for nonce in (1, 2):
            link.send(fwd.advertisement(frames.advert(address, frames.bow(), nonce=nonce)))
    assert len(link.outbox) == 3  # each device's latest frame
    nonces = {
        parse_message(m.topic, m.payload, frames.T0).advertisement.victron_data
        for m in link.outbox.values()
    }
    assert len(nonces) == 3


@pytest.mark.parametrize(
    "text", ["", "a/b", "+", "bow#", "a\0b", "x" * 65, "pi zero", "bow\npi", "båt", "../etc"]
)
def test_a_hostile_receiver_id_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(ReceiverIdError) as exc:
        check_receiver_id(text)
    assert "\n" not in str(exc.value) and "--receiver-id" in str(exc.value)
    with pytest.raises(ReceiverIdError):
        RawForwarder("victron-ble-bms", text)


@pytest.mark.parametrize(
    "hostname", ["raspberrypi", "pi.local", "a/b+c#d\0e", "", "-.-", "båt 1\n", "x" * 300]
)
def test_the_default_id_from_any_hostname_is_one_safe_topic_level(hostname: str) -> None:
    rid = receiver_id_from_hostname(hostname)
    assert check_receiver_id(rid) == rid  # accepted as if the user had given it
    assert not any(c in rid for c in FORBIDDEN)
    fwd = RawForwarder("victron-ble-bms", rid)
    assert fwd.topic.count("/") == 2
