"""State messages of a remote serve → readings: what serve publishes comes back typed; anything
else is one StateError line, never another exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tui import frames
from victron_ble_bms.mqtt.state import state_object
from victron_ble_bms.receivers.remote import RemoteClock, StateError, reading_from_state
from victron_ble_bms.sources.readings import KeyStatus, decode_advertisement

NOW = frames.T0 + 10


def state(address: str, keys: dict[str, str] | None = None) -> dict[str, Any]:
    adv = next(a for a in frames.fleet() if a.address == address)
    reading = decode_advertisement(adv, frames.KEYS if keys is None else keys)
    obj: dict[str, Any] = json.loads(json.dumps(state_object(reading, adv.name)))
    return obj


def test_a_decoded_state_gives_the_same_record_and_product() -> None:
    adv = next(a for a in frames.fleet() if a.address == frames.BOW)
    local = decode_advertisement(adv, frames.KEYS)
    got = reading_from_state(json.dumps(state(frames.BOW)).encode(), NOW)
    assert got.status is KeyStatus.OK
    assert got.record == local.record
    assert got.frame is not None and local.frame is not None
    assert got.frame.model_id == local.frame.model_id
    assert (got.advertisement.ts, got.advertisement.rssi) == (adv.ts, adv.rssi)
    assert [c.id for c in got.record.codes or ()] == ["W-SL12"]


def test_an_undecodable_device_keeps_its_status_and_message() -> None:
    got = reading_from_state(json.dumps(state(frames.NOKEY)).encode(), NOW)
    assert got.status is KeyStatus.NO_KEY
    assert got.record is None
    assert got.error and "no key" in got.error
    assert got.frame is not None  # product still known from the clear header


def test_a_remote_clock_ahead_of_ours_is_clamped() -> None:
    obj = state(frames.BOW) | {"ts": NOW + 3600}
    assert reading_from_state(json.dumps(obj).encode(), NOW).advertisement.ts == NOW + 5


def test_the_remote_clock_reads_the_pinned_time_only_while_pinned() -> None:
    clock = RemoteClock(lambda: 99.0)
    clock.pin(5.0)
    assert clock() == 5.0
    clock.pin(None)
    assert clock() == 99.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"address": "my boat"}, "address: not a Bluetooth address"),
        ({"ts": "yesterday"}, "ts: expected seconds"),
        ({"ts": None}, "ts: expected seconds"),
        ({"key_status": "haunted"}, "key_status .haunted. without a record"),
        ({"cell_voltages_v": "all fine"}, "cell_voltages_v: expected a list"),
        ({"record_type": "warp_core"}, "unknown record_type"),
    ],
)
def test_bad_state_messages(change: dict[str, Any], message: str) -> None:
    obj = state(frames.BOW) | change
    with pytest.raises(StateError, match=message):
        reading_from_state(json.dumps(obj).encode(), NOW)


def test_bad_payloads() -> None:
    for payload, message in [
        (b"\xff\xfe", "not JSON"),
        (b"[1]", "expected a JSON object"),
        (b" " * 20_000, "larger than any reading"),
        (json.dumps({"address": frames.BOW, "ts": 1.0, "key_status": "ok"}).encode(), "without"),
    ]:
        with pytest.raises(StateError, match=message):
            reading_from_state(payload, NOW)


@settings(max_examples=200, deadline=None)
@given(
    changes=st.dictionaries(
        st.sampled_from(
            [
                "ts",
                "rssi",
                "name",
                "key_status",
                "model_id",
                "nonce",
                "codes",
                "battery_voltage_v",
                "bms_flags",
                "balancer_status",
                "suspect",
            ]
        ),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(max_size=12)
        | st.lists(st.integers(), max_size=3),
    )
)
def test_nothing_but_state_error_escapes(changes: dict[str, Any]) -> None:
    obj = state(frames.BOW) | changes
    try:
        reading_from_state(json.dumps(obj).encode(), NOW)
    except StateError:
        pass
