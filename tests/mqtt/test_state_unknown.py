"""Issue 18 item 3: flags that were not received are published as null, never as false — a
false `allowed_to_charge` turns Home Assistant's binary sensor off (charging forbidden)."""

from __future__ import annotations

import dataclasses
import json

from tests.tui import frames
from victron_ble_bms.mqtt.state import state_object
from victron_ble_bms.sources.readings import decode_advertisement


def test_flags_not_received_are_null_not_false() -> None:
    whole = frames.advert(frames.BOW, frames.bow())
    data = whole.manufacturer_data[0x02E1]
    adv = dataclasses.replace(whole, manufacturer_data={0x02E1: data[:9]})  # 1 byte of payload
    reading = decode_advertisement(adv, frames.KEYS)
    assert reading.record is not None and reading.record.bms_flags is None  # type: ignore[attr-defined]
    obj = json.loads(json.dumps(state_object(reading, "bow")))
    assert obj["allowed_to_charge"] is None
    assert obj["allowed_to_discharge"] is None
    received = state_object(
        decode_advertisement(frames.advert(frames.BOW, frames.bow()), frames.KEYS), "bow"
    )
    assert received["allowed_to_charge"] is True and received["allowed_to_discharge"] is True
