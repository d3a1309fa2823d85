"""The fast builders of frozen records give the very object the class's __init__ gives."""

from __future__ import annotations

import dataclasses

import pytest

from victron_ble_bms.protocol import Frame, frozen, parse_frame
from victron_ble_bms.protocol.envelope import encrypted_frame
from victron_ble_bms.protocol.frozen import frozen_builder


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


def test_builder_refuses_unknown_or_missing_fields() -> None:
    with pytest.raises(TypeError):
        frozen_builder(_Point, ("z",))
    with pytest.raises(TypeError):
        frozen_builder(_Point, ("y",))  # x has no default


def test_builder_of_a_subclass_takes_the_twin_path() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Child(_Point):
        z: int = 0

    assert frozen.mutable_twin(Child) is not None
    child = frozen_builder(Child, ("x", "z"))(1, 2)
    assert type(child) is Child and child == Child(1, 7, None, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        child.z = 3  # type: ignore[misc]


def test_builder_falls_back_where_class_assignment_is_impossible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Where the interpreter refuses `__class__` assignment, the slot descriptors fill it.
    monkeypatch.setattr(frozen, "mutable_twin", lambda cls: None)

    @dataclasses.dataclass(frozen=True, slots=True)
    class Child(_Point):
        z: int = 0

    child = frozen_builder(Child, ("x", "z"))(1, 2)
    assert type(child) is Child and child == Child(1, 7, None, 2)


def test_encrypted_frame_equals_parse_frame() -> None:
    data = bytes.fromhex("10 00 e0 a0 e1 39 30 7a 01 02 03 04 05".replace(" ", ""))
    assert (
        encrypted_frame(data) == parse_frame(data) == Frame(0, 0xA0E0, 0xE1, 0x3039, 0x7A, data[8:])
    )
