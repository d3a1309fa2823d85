"""Gateway messages → advertisements: the documented formats, and hostile ones refused with one
line each (never an exception other than MessageError)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from victron_ble_bms.protocol import COMPANY_ID
from victron_ble_bms.receivers import MessageError, encode_raw, parse_message, raw_topic
from victron_ble_bms.sources.advertisement import Advertisement

# A Victron frame (company id first, as gateways write it): SmartLithium, model 0xA3A0.
VICTRON_HEX = "e1021000a0a305341274aabbccddeeff00112233445566778899"

# Captured from unmodified Theengs Gateway 1.8.0 (--publish_advdata 1 --discovery 0) scanning our
# emulator through the virtual BlueZ: its decoder calls the frame model VICTRON_ENCR and keeps
# manufacturerdata (company id first) only because of --publish_advdata.
THEENGS_CAPTURED = (
    "home/TheengsGateway/BTtoMQTT/F5B16522B791",
    b'{"manufacturerdata": "e1021000eaa005653cdf6a74c9b68b979f9c2e1d8f0e1583d386", '
    b'"name": "LI 25.6V-200AH B791", "id": "F5:B1:65:22:B7:91", "rssi": -50, '
    b'"brand": "Victron Energy", "model": "Victron encrypted", "model_id": "VICTRON_ENCR", '
    b'"type": "ENRG", "encr": 3, "ctr": "653c", "mic": "df"}',
)
# The same shape for the constant frame the other tests use.
THEENGS = (
    "home/TheengsGateway/BTtoMQTT/C0FFEE000001",
    json.dumps(
        {
            "manufacturerdata": VICTRON_HEX,
            "name": "SmartLithium",
            "id": "C0:FF:EE:00:00:01",
            "rssi": -67,
            "brand": "Victron Energy",
            "model": "Victron encrypted",
            "model_id": "VICTRON_ENCR",
            "type": "ENRG",
            "encr": 3,
            "ctr": "7412",
            "mic": "34",
        }
    ).encode(),
)
# OpenMQTTGateway BTtoMQTT (docs/use/ble.md shape: id, mac_type, rssi; pubadvdata adds data).
OMG = (
    "home/OMG_ESP32_BLE/BTtoMQTT/C0FFEE000001",
    b'{"id":"C0:FF:EE:00:00:01","mac_type":0,"rssi":-81,"manufacturerdata":"'
    + VICTRON_HEX.encode()
    + b'"}',
)


def test_theengs_gateway_message() -> None:
    heard = parse_message(*THEENGS, now=100.0)
    adv = heard.advertisement
    assert heard.receiver == "TheengsGateway"
    assert adv.address == "C0:FF:EE:00:00:01"
    assert adv.rssi == -67
    assert adv.name == "SmartLithium"
    assert adv.ts == 100.0
    assert adv.manufacturer_data == {COMPANY_ID: bytes.fromhex(VICTRON_HEX)[2:]}


def test_captured_theengs_gateway_message() -> None:
    adv = parse_message(*THEENGS_CAPTURED, now=1.0).advertisement
    assert adv.address == "F5:B1:65:22:B7:91"
    assert adv.name == "LI 25.6V-200AH B791"
    data = adv.victron_data
    assert data is not None and data[:2] == b"\x10\x00"  # Instant Readout, byte 0 = 0x10
    assert data[4] == 0x05  # SmartLithium record
    assert int.from_bytes(data[5:7], "little") == 0x3C65  # the nonce Theengs printed as "ctr"


def test_openmqttgateway_message() -> None:
    heard = parse_message(*OMG, now=5.0)
    assert heard.receiver == "OMG_ESP32_BLE"
    assert heard.advertisement.rssi == -81
    assert heard.advertisement.victron_data == bytes.fromhex(VICTRON_HEX)[2:]


def test_message_without_manufacturer_data_is_an_advertisement_without_victron_data() -> None:
    heard = parse_message(
        "home/gw/BTtoMQTT/AABBCCDDEEFF", b'{"id":"aa:bb:cc:dd:ee:ff","rssi":-50}', 1
    )
    assert heard.advertisement.victron_data is None


@settings(max_examples=100, deadline=None)
@given(
    address=st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02X}" for x in b)),
    data=st.dictionaries(st.integers(0, 0xFFFF), st.binary(max_size=29), max_size=3),
    rssi=st.none() | st.integers(-127, 20),
    name=st.none() | st.text(min_size=1, max_size=30),
    ts=st.floats(0, 4e9),
)
def test_raw_format_round_trips(
    address: str, data: dict[int, bytes], rssi: int | None, name: str | None, ts: float
) -> None:
    adv = Advertisement(ts, address, data, rssi, name, origin="bluez")
    heard = parse_message(raw_topic("victron-ble-bms", "pi-aft"), encode_raw(adv), now=ts)
    assert heard.receiver == "pi-aft"
    got = heard.advertisement
    assert (got.ts, got.address, dict(got.manufacturer_data), got.rssi, got.name) == (
        ts,
        address,
        data,
        rssi,
        name,
    )


GOOD_RAW = {
    "v": 1,
    "ts": 1.0,
    "address": "C0:FF:EE:00:00:01",
    "rssi": -60,
    "manufacturer_data": {"737": VICTRON_HEX[4:]},
}


def _raw_with_ts(text: str) -> bytes:
    """GOOD_RAW with `ts` written as `text`, JSON that json.dumps would not write."""
    return json.dumps(GOOD_RAW | {"ts": "@"}).replace('"@"', text).encode()


@pytest.mark.parametrize(
    ("topic", "payload", "message"),
    [
        ("home/gw/BTtoMQTT/X", b"not json", "not JSON"),
        ("home/gw/BTtoMQTT/X", b"\xff\xfe\x00", "not JSON"),
        ("home/gw/BTtoMQTT/X", b"[1, 2]", "expected a JSON object, got list"),
        ("home/gw/BTtoMQTT/X", b"[" * 5000, "larger than"),
        ("home/gw/BTtoMQTT/X", b"[" * 4000, "not JSON"),
        ("home/gw/BTtoMQTT/X", b'{"id": 7}', "address: expected text"),
        ("home/gw/BTtoMQTT/X", b'{"id": "my toaster"}', "is not a Bluetooth address"),
        (
            "home/gw/BTtoMQTT/X",
            b'{"id": "aa:bb:cc:dd:ee:ff", "manufacturerdata": "e10zz"}',
            "not hex",
        ),
        (
            "home/gw/BTtoMQTT/X",
            b'{"id": "aa:bb:cc:dd:ee:ff", "manufacturerdata": 12}',
            "expected hex text",
        ),
        (
            "home/gw/BTtoMQTT/X",
            b'{"id": "aa:bb:cc:dd:ee:ff", "manufacturerdata": "e1"}',
            "shorter than",
        ),
        (
            "home/gw/BTtoMQTT/X",
            b'{"id": "aa:bb:cc:dd:ee:ff", "rssi": "loud"}',
            "rssi: expected a number",
        ),
        (
            "home/gw/BTtoMQTT/X",
            b'{"id": "aa:bb:cc:dd:ee:ff", "rssi": 1e999}',
            "not a signal strength",
        ),
        (
            "home/gw/BTtoMQTT/X",
            b'{"id": "aa:bb:cc:dd:ee:ff", "name": ["x"]}',
            "name: expected text",
        ),
        (
            "home/gw/BTtoMQTT/X",
            b'{"id":"aa:bb:cc:dd:ee:ff","manufacturerdata":"' + b"ab" * 600 + b'"}',
            "longer than",
        ),
        ("home/gw/zigbee2mqtt/X", b"{}", "unknown gateway topic"),
        ("victron-ble-bms/raw/pi", json.dumps(GOOD_RAW | {"v": 2}).encode(), "raw format version"),
        ("victron-ble-bms/raw/pi", json.dumps(GOOD_RAW | {"ts": "now"}).encode(), "ts: expected"),
        (
            "victron-ble-bms/raw/pi",
            json.dumps(GOOD_RAW | {"manufacturer_data": []}).encode(),
            "manufacturer_data: expected",
        ),
        (
            "victron-ble-bms/raw/pi",
            json.dumps(GOOD_RAW | {"manufacturer_data": {"x": "00"}}).encode(),
            "is not a company id",
        ),
        (
            "victron-ble-bms/raw/pi",
            json.dumps(GOOD_RAW | {"manufacturer_data": {"99999": "00"}}).encode(),
            "is not a company id",
        ),
        ("victron-ble-bms/raw/" + "p" * 65, json.dumps(GOOD_RAW).encode(), "receiver id must be"),
        # Issue 18: numbers that are JSON but no time, and digits that int() refuses.
        *(
            ("victron-ble-bms/raw/pi", _raw_with_ts(ts), "ts: expected seconds since the epoch")
            for ts in ("1" + "0" * 400, "-1" + "0" * 400, "NaN", "Infinity", "1e308", "-1")
        ),
        ("victron-ble-bms/raw/pi", _raw_with_ts("1000"), "s from this machine's clock"),
        (
            "victron-ble-bms/raw/pi",
            json.dumps(GOOD_RAW | {"manufacturer_data": {"²": "00"}}).encode(),
            "is not a company id",
        ),
        (
            "victron-ble-bms/raw/pi",
            json.dumps(GOOD_RAW | {"manufacturer_data": {"٣": "00"}}).encode(),
            "is not a company id",
        ),
    ],
)
def test_malformed_messages_say_what_is_wrong(topic: str, payload: bytes, message: str) -> None:
    with pytest.raises(MessageError, match=message) as caught:
        parse_message(topic, payload, now=0.0)
    assert "\n" not in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(
    topic=st.sampled_from(["home/gw/BTtoMQTT/x", "victron-ble-bms/raw/pi", "a/b"]),
    payload=st.binary(max_size=300)
    | st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.integers(-(10**400), 10**400)
        | st.floats()
        | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.text(max_size=10), inner, max_size=4)
            | st.fixed_dictionaries(  # a raw message with one field hostile
                {"v": st.just(1), "address": st.just("C0:FF:EE:00:00:01"), "ts": inner},
                optional={
                    "manufacturer_data": st.dictionaries(
                        st.sampled_from(["737", "²", "٣", "𝟗", "0737", " 1"]), inner, max_size=2
                    ),
                    "rssi": inner,
                    "name": inner,
                },
            )
        ),
        max_leaves=20,
    ).map(lambda v: json.dumps(v).encode()),
)
def test_nothing_but_message_error_escapes(topic: str, payload: bytes) -> None:
    try:
        parse_message(topic, payload, now=0.0)
    except MessageError:
        pass
