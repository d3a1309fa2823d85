"""`record_from_dict` is the inverse of `Record.to_dict` for every record type (hypothesis over
the layout tables), and rejects malformed objects with one specific message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from victron_ble_bms.protocol import RECORD_CLASSES, Record, decode, encode
from victron_ble_bms.protocol.record_json import JsonFormError, record_from_dict

from .strategies import records

KEY = bytes(range(16))


@pytest.mark.parametrize("record_type", sorted(RECORD_CLASSES), ids=hex)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip_through_json_text(record_type: int, data: st.DataObject) -> None:
    record: Record = data.draw(records(record_type))
    text = json.dumps(record.to_dict())  # what actually travels: JSON text
    back = record_from_dict(json.loads(text))
    assert back == record
    assert type(back) is type(record)
    assert back.to_dict() == record.to_dict()
    assert back.codes == record.codes


@pytest.mark.parametrize("record_type", [0x05, 0x0A, 0x0E], ids=hex)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_decoded_frames_round_trip(record_type: int, data: st.DataObject) -> None:
    """A record that came off the wire: its JSON (with product and nonce) gives it back."""
    record = data.draw(records(record_type))
    wire = encode(record, key=KEY, nonce=data.draw(st.integers(0, 0xFFFF)), model_id=0xA3A0)
    decoded = decode(wire, KEY)
    assert record_from_dict(json.loads(json.dumps(decoded.to_dict()))) == decoded


def _lithium() -> dict[str, Any]:
    return next(iter_records(0x05)).to_dict()


def iter_records(record_type: int) -> Any:
    cls = RECORD_CLASSES[record_type]
    yield cls(
        *(f.from_raw(1) if f.count == 1 else (f.from_raw(1),) * f.count for f in cls.LAYOUT.fields)
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"record_type": "warp_core"}, "unknown record_type"),
        ({"record_type": 5}, "unknown record_type"),
        ({"record_type_id": 10}, "does not match"),
        ({"battery_voltage_v": "12.8"}, "battery_voltage_v: expected a number"),
        ({"battery_voltage_v": 1e300}, "battery_voltage_v: "),
        ({"battery_voltage_v": True}, "expected a number"),
        ({"cell_voltages_v": [3.3] * 7}, "expected a list of 8"),
        ({"cell_voltages_v": "3.3"}, "expected a list of 8"),
        ({"cell_voltages_v": [3.3] * 7 + ["<3"]}, "cell_voltages_v: expected a number"),
        ({"balancer_status": "exploding"}, "balancer_status: unknown value"),
        ({"balancer_status": "unknown_99999999"}, "does not fit"),
        ({"bms_flags": 1 << 40}, "bms_flags: 1099511627776 does not fit"),
        ({"bms_flags": -1}, "does not fit"),
        ({"bms_flags": [1]}, "bms_flags: expected a number or name"),
        ({"battery_temperature_c": 3.5}, "expected a whole number"),
    ],
)
def test_malformed_objects_name_the_field(change: dict[str, Any], message: str) -> None:
    obj = _lithium() | change
    with pytest.raises(JsonFormError, match=message):
        record_from_dict(obj)


def test_missing_field_and_non_objects() -> None:
    obj = _lithium()
    del obj["battery_voltage_v"]
    with pytest.raises(JsonFormError, match="battery_voltage_v: missing"):
        record_from_dict(obj)
    for junk in ([], "x", 3, None):
        with pytest.raises(JsonFormError, match="expected a JSON object"):
            record_from_dict(junk)  # type: ignore[arg-type]


def test_unknown_enum_values_round_trip_by_name() -> None:
    cls = RECORD_CLASSES[0x05]
    f = next(f for f in cls.LAYOUT.fields if f.name == "balancer_status")
    obj = _lithium() | {"balancer_status": "unknown_9"}
    assert int(record_from_dict(obj).balancer_status) == 9  # type: ignore[attr-defined]
    assert f.json_as_name


@pytest.mark.parametrize("record_type", [0x02, 0x05, 0x0A, 0x0E], ids=hex)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_partial_frames_round_trip(record_type: int, data: st.DataObject) -> None:
    """A frame shorter than its layout: null fields, `missing_fields`, and codes unknown when
    they depend on a missing field — all of it survives the JSON."""
    record = data.draw(records(record_type))
    wire = encode(record, key=KEY, nonce=7, model_id=0xA3A0)
    cut = data.draw(st.integers(9, len(wire) - 1))
    decoded = decode(wire[:cut], KEY)
    assert decoded.missing_fields  # type: ignore[attr-defined]
    obj = json.loads(json.dumps(decoded.to_dict()))
    back = record_from_dict(obj)
    assert back == decoded
    header = ("model_id", "product", "nonce")  # from the frame, which the JSON does not carry
    assert {k: v for k, v in back.to_dict().items() if k not in header} == {
        k: v for k, v in obj.items() if k not in header
    }
    assert back.codes == decoded.codes
    assert back.implausible == decoded.implausible  # type: ignore[attr-defined]


def test_missing_fields_must_name_layout_fields() -> None:
    obj = _lithium() | {"missing_fields": ["warp_core"]}
    with pytest.raises(JsonFormError, match="missing_fields"):
        record_from_dict(obj)
