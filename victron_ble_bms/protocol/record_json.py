"""The inverse of `Record.to_dict`: a typed record again from its JSON object.

A remote `serve` publishes each reading as `Record.to_dict()` JSON (the MQTT state topic); the
dashboard watching over the network needs the typed record back to draw the same cards, codes
and detail pages. The inverse is driven by the same layout table as decoding and encoding, one
field at a time, so it cannot drift from `Field.json_value`. Derived keys (`codes`, `product`,
`aux`, `io`, `alarms` …) are not read: they follow from the fields, exactly as on the sender.

Input comes from the network, so every value is checked against its field (type, range, enum)
before it becomes part of a record: a malformed object raises `JsonFormError` with one line
naming the field, never anything else.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from typing import Any

from .enums import CellBound
from .fields import Field, Kind
from .records import RECORD_CLASSES, Record

_BY_NAME: dict[str, type[Record]] = {cls.LAYOUT.name: cls for cls in RECORD_CLASSES.values()}
_CELL_BOUNDS = {b.value: b for b in CellBound}


class JsonFormError(ValueError):
    """A JSON object that is not a record's `to_dict()` form."""


def record_class_for(obj: Mapping[str, Any]) -> type[Record]:
    """The record class named by `record_type` (its layout name), cross-checked by id."""
    name = obj.get("record_type")
    cls = _BY_NAME.get(name) if isinstance(name, str) else None
    if cls is None:
        raise JsonFormError(f"unknown record_type {str(name)[:40]!r}")
    type_id = obj.get("record_type_id")
    if type_id is not None and type_id != cls.LAYOUT.record_type:
        raise JsonFormError(f"record_type_id {str(type_id)[:20]!r} does not match {name!r}")
    return cls


def record_from_dict(obj: Mapping[str, Any]) -> Record:
    """`Record.to_dict()` JSON → the record (with `wire=None`: the frame is not sent)."""
    if not isinstance(obj, Mapping):
        raise JsonFormError(f"expected a JSON object, got {type(obj).__name__}")
    cls = record_class_for(obj)
    values: dict[str, Any] = {}
    for f in cls.LAYOUT.fields:
        if f.key not in obj:
            raise JsonFormError(f"{f.key}: missing")
        values[f.name] = field_from_json(f, obj[f.key])
    missing = _missing_fields(cls, obj)
    if missing:
        values["missing_fields"] = missing
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # a record type that checks its own values
        raise JsonFormError(f"{cls.LAYOUT.name}: {exc}") from None


def _missing_fields(cls: type[Record], obj: Mapping[str, Any]) -> tuple[str, ...]:
    """`missing_fields` of a partial frame (fields not received: their values are null)."""
    listed = obj.get("missing_fields")
    if listed is None:
        return ()
    names = {f.name for f in cls.LAYOUT.fields}
    if not isinstance(listed, list) or not all(isinstance(n, str) and n in names for n in listed):
        raise JsonFormError("missing_fields: expected a list of the layout's field names")
    if "missing_fields" not in {f.name for f in dataclasses.fields(cls)}:
        raise JsonFormError("missing_fields: this version has no partial records")
    return tuple(listed)


def field_from_json(f: Field, value: Any) -> Any:
    """The inverse of `Field.json_value` for one field (a list for repeated fields)."""
    if f.count == 1:
        return _one(f, value)
    if not isinstance(value, list) or len(value) != f.count:
        raise JsonFormError(f"{f.key}: expected a list of {f.count} values")
    return tuple(_one(f, v) for v in value)


def _one(f: Field, value: Any) -> Any:
    if value is None:
        return None
    kind = f.kind
    if kind is Kind.CELL:
        if isinstance(value, str) and value in _CELL_BOUNDS:
            return _CELL_BOUNDS[value]
        return _checked_number(f, value)
    if kind is Kind.BYTES:
        return _bytes(f, value)
    if kind is Kind.ENUM or kind is Kind.FLAGS:
        return _enum(f, value)
    return _checked_number(f, value)


def _checked_number(f: Field, value: Any) -> int | float:
    """A number the field can carry: the right type, and one `to_raw` accepts."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JsonFormError(f"{f.key}: expected a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise JsonFormError(f"{f.key}: {value!r} is not a finite number")
    if f.decimals == 0 and f.kind is Kind.NUMBER and not isinstance(value, int):
        if not float(value).is_integer():
            raise JsonFormError(f"{f.key}: expected a whole number, got {value!r}")
        value = int(value)
    try:
        raw = f.to_raw(value)
    except (ValueError, OverflowError):
        raise JsonFormError(f"{f.key}: {str(value)[:30]} is out of range") from None
    # The value as the decoder would have produced it (e.g. 3.0 → 3 for whole-number fields).
    result: int | float = f.from_raw(raw)
    return result


def _bytes(f: Field, value: Any) -> bytes:
    size = f.width // 8
    if not isinstance(value, str) or len(value) != 2 * size:
        raise JsonFormError(f"{f.key}: expected {size} bytes as hex")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise JsonFormError(f"{f.key}: not hex") from None


def _enum(f: Field, value: Any) -> Any:
    cls = f.enum
    if isinstance(value, str):
        member = _enum_by_name(cls, value)
        if isinstance(member, int) and not isinstance(member, enum.Enum):
            value = member  # "unknown_<n>": checked as a number below
        elif member is None:
            raise JsonFormError(f"{f.key}: unknown value {value[:30]!r}")
        else:
            return member
    if isinstance(value, bool) or not isinstance(value, int):
        raise JsonFormError(f"{f.key}: expected a number or name, got {type(value).__name__}")
    # Range first: an open enum caches every value it is given, so only field-sized ones.
    if not 0 <= value <= f.mask or (f.na_raw is not None and value == f.na_raw):
        raise JsonFormError(f"{f.key}: {value} does not fit {f.width} bits")
    return f.from_raw(value)


def _enum_by_name(cls: type[enum.Enum], text: str) -> Any:
    upper = text.upper()
    member = cls.__members__.get(upper)
    if member is not None:
        return member
    # Values the enum has no name for are written as "unknown_<n>" (OpenIntEnum).
    # ASCII digits only: "²" is a digit to str.isdigit() but not to int().
    digits = upper[8:]
    if upper.startswith("UNKNOWN_") and digits.isascii() and digits.isdigit() and len(upper) < 20:
        return int(digits)
    return None
