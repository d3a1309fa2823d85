"""The fast builders of frozen records give the very object the class's __init__ gives."""

from __future__ import annotations

import dataclasses

import pytest

from tests.protocol import vectors as v
from victron_ble_bms.protocol import Frame, fields, frozen, parse_frame
from victron_ble_bms.protocol.envelope import encrypted_frame
from victron_ble_bms.protocol.frozen import frozen_builder
from victron_ble_bms.protocol.records import RECORD_CLASSES


@dataclasses.dataclass(frozen=True, slots=True)
class _Point:
    x: int
    y: int = 7
    tag: str | None = None


def test_builder_matches_init_and_stays_frozen() -> None:
    build = frozen_builder(_Point, ("x",), {"tag": "t"})
    point = build(3)
    assert type(point) is _Point
    assert point == _Point(3, 7, "t")
    assert hash(point) == hash(_Point(3, 7, "t"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 4  # type: ignore[misc]


# Peers' published plaintexts (tests/protocol/vectors.py) of record types with many kinds of field.
PLAINTEXTS = (
    (0x02, bytes.fromhex("ffffe50400000000030000f40140df")),
    (0x01, bytes.fromhex("04006c050e000300130000fe")),
    (0x05, v.SMART_LITHIUM_1),
    (0x0A, v.LYNX_1),
)


def test_builder_refuses_unknown_or_missing_fields() -> None:
    with pytest.raises(TypeError):
        frozen_builder(_Point, ("z",))
    with pytest.raises(TypeError):
        frozen_builder(_Point, ("y",))  # x has no default


@dataclasses.dataclass(frozen=True, slots=True)
class _Child(_Point):
    z: int = 0


# The three ways an object is filled (protocol/frozen.py): the compiled helper, a mutable twin
# given its class, the slot descriptors. Each must give what the class's __init__ gives.
MODES = ("helper", "twin", "descriptors")


def _force(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if mode == "helper" and frozen.HELPER is None:
        pytest.skip("compiled helper not built here")
    if mode != "helper":
        monkeypatch.setattr(frozen, "slot_spec", lambda cls, names: None)
    if mode == "descriptors":
        monkeypatch.setattr(frozen, "mutable_twin", lambda cls: None)


@pytest.mark.parametrize("mode", MODES)
def test_every_filling_path_gives_the_init_object(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _force(mode, monkeypatch)
    child = frozen_builder(_Child, ("x", "z"))(1, 2)
    assert type(child) is _Child and child == _Child(1, 7, None, 2)
    assert hash(child) == hash(_Child(1, 7, None, 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        child.z = 3  # type: ignore[misc]


@pytest.mark.parametrize("mode", MODES)
def test_every_filling_path_decodes_the_same_records(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Decoders compiled anew in each mode, on the peers' plaintexts (tests/protocol/vectors)
    # at full length and cut short: the records the dataclass __init__ gives.
    _force(mode, monkeypatch)
    for record_type, plaintext in PLAINTEXTS:
        cls = RECORD_CLASSES[record_type]
        for n in range(1, cls.LAYOUT.data_bytes + 1):
            data = plaintext[:n]
            bits = min(n * 8, cls.LAYOUT.used_bits)
            payload = int.from_bytes(data, "little")
            got = fields.compile_decoder(cls.LAYOUT, cls, bits)(payload, b"w")
            # The reference: the layout's per-field reader and the dataclass __init__.
            want = cls(
                **{f.name: f.extract(payload, bits) for f in cls.LAYOUT.fields},
                wire=b"w",
                missing_fields=cls.LAYOUT.missing(bits),
            )
            assert type(got) is cls
            for f in dataclasses.fields(cls):
                assert getattr(got, f.name) == getattr(want, f.name), f.name
            assert got.wire == b"w"


@pytest.mark.skipif(frozen.HELPER is None, reason="compiled helper not built here")
def test_helper_refuses_what_it_cannot_fill() -> None:
    helper = frozen.HELPER
    assert helper is not None
    with pytest.raises(TypeError):
        helper.make_spec(_Point, (_Point.__init__,))  # not a slot
    with pytest.raises(TypeError):
        helper.make_spec(_Point, (_Child.z,))  # a slot of another (sub)class
    with pytest.raises(TypeError):
        helper.make_spec(int, ())  # variable-size objects are never filled
    spec = frozen.slot_spec(_Point, ["x", "y", "tag"])
    assert spec is not None
    with pytest.raises(TypeError):
        helper.build(spec, 1, 2)  # one value short
    with pytest.raises(TypeError):
        helper.build((_Point, b"\x10" * 24), 1, 2, 3)  # only a spec made by make_spec
    assert helper.build(spec, 1, 2, "t") == _Point(1, 2, "t")
    assert frozen.slot_spec(_Point, ["x", "y"]) is None  # a field left unset: refused


def test_encrypted_frame_equals_parse_frame() -> None:
    data = bytes.fromhex("10 00 e0 a0 e1 39 30 7a 01 02 03 04 05".replace(" ", ""))
    assert (
        encrypted_frame(data) == parse_frame(data) == Frame(0, 0xA0E0, 0xE1, 0x3039, 0x7A, data[8:])
    )
