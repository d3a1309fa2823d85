"""Declarative record layouts: one `Field` row per value, read by decoder, encoder, docs and tests.

Bits are packed LSB-first, little-endian across bytes (docs/protocol.md §1.4): payload bit k is
``(data[k >> 3] >> (k & 7)) & 1``. Treating the payload as one little-endian integer makes
every field a shift and a mask.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .enums import CellBound


class Kind(enum.Enum):
    NUMBER = "number"  # int when decimals == 0, else float; offset/negate applied
    ENUM = "enum"  # an OpenIntEnum member
    FLAGS = "flags"  # an IntFlag word; every value meaningful, no NA
    CELL = "cell"  # 7-bit cell voltage with under/over bounds (docs/protocol.md §2.1)
    BYTES = "bytes"  # raw bits kept as bytes (unidentified parts of provisional layouts)


# Cell voltage codes (docs/protocol.md §2.1): 0 = below 2.61 V, 1..125 = 2.61..3.85 V, 126 = above
# 3.85 V, 127 = not available.
_CELL_BELOW, _CELL_ABOVE = 0x00, 0x7E
_CELL_OFFSET_CV = 260  # volts = (raw + 260) / 100


class EncodeError(ValueError):
    """A value that does not fit its field."""


@dataclass(frozen=True, slots=True)
class Field:
    """One value in a record: where it sits and how raw bits become a value."""

    name: str
    start: int  # payload bit (SPEC bit − 32)
    width: int
    kind: Kind = Kind.NUMBER
    signed: bool = False
    decimals: int = 0  # value = (raw + offset) / 10**decimals
    offset: int = 0
    negate: bool = False  # value = −raw (e.g. consumed Ah)
    unit: str = ""
    has_na: bool = True  # NA derived from width: all ones, or max positive when signed
    extra_na: tuple[int, ...] = ()  # further raw values a source documents as NA
    enum: Any = None  # enum / flag class for ENUM and FLAGS
    count: int = 1  # > 1: that many consecutive fields of this width, as a tuple
    json_name: str | None = None
    json_as_name: bool = False  # enums shown by lower-case name instead of number
    # Physical bounds (low, high) of a value: outside them the frame is "implausible — wrong key
    # or corrupt frame?" (plausibility.py says why each bound is what it is).
    plausible: tuple[float, float] | None = None
    doc: str = ""

    @property
    def end(self) -> int:
        return self.start + self.width * self.count

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    @property
    def na_raw(self) -> int | None:
        """The raw value meaning "not available", derived from the width."""
        if not self.has_na:
            return None
        return (1 << (self.width - 1)) - 1 if self.signed else self.mask

    @property
    def key(self) -> str:
        return self.json_name or self.name

    # -- one element ------------------------------------------------------------------------
    def from_raw(self, raw: int) -> Any:
        """Raw field bits (unsigned) → value, `None` for not available."""
        if raw == self.na_raw or raw in self.extra_na:
            return None
        kind = self.kind
        if kind is Kind.CELL:
            if raw == _CELL_BELOW:
                return CellBound.BELOW
            if raw == _CELL_ABOVE:
                return CellBound.ABOVE
            return (raw + _CELL_OFFSET_CV) / 100
        if kind is Kind.ENUM or kind is Kind.FLAGS:
            return self.enum(raw)
        if kind is Kind.BYTES:
            return raw.to_bytes(self.width // 8, "little")
        if self.signed and raw >> (self.width - 1):
            raw -= 1 << self.width
        if self.negate:
            raw = -raw
        raw += self.offset
        return raw / 10**self.decimals if self.decimals else raw

    def to_raw(self, value: Any) -> int:
        """Value → raw field bits; the inverse of `from_raw` for every value it produces."""
        if value is None:
            if self.na_raw is None:
                raise EncodeError(f"{self.name}: has no 'not available' value")
            return self.na_raw
        kind = self.kind
        if kind is Kind.CELL:
            if value is CellBound.BELOW:
                return _CELL_BELOW
            if value is CellBound.ABOVE:
                return _CELL_ABOVE
            # A model's real cell voltage outside the range becomes the bound, as on a device.
            cv = round(float(value) * 100) - _CELL_OFFSET_CV
            return min(max(cv, _CELL_BELOW), _CELL_ABOVE)
        if kind is Kind.BYTES:
            raw = int.from_bytes(bytes(value), "little")
        elif kind is Kind.ENUM or kind is Kind.FLAGS:
            raw = int(value)
        else:
            scaled = round(float(value) * 10**self.decimals) if self.decimals else int(value)
            scaled -= self.offset
            raw = -scaled if self.negate else scaled
        return self._check_range(raw, value)

    def _check_range(self, raw: int, value: Any) -> int:
        na = self.na_raw
        if self.signed:
            low, high = -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1
            if na is not None:
                high -= 1
            if not low <= raw <= high or (raw & self.mask) in self.extra_na:
                raise EncodeError(f"{self.name}: {value!r} does not fit {self.width} signed bits")
            return raw & self.mask
        high = self.mask - (1 if na is not None else 0)
        if not 0 <= raw <= high or raw in self.extra_na:
            raise EncodeError(f"{self.name}: {value!r} does not fit {self.width} bits")
        return raw

    # -- whole field (scalar or tuple) --------------------------------------------------------
    def extract(self, payload: int, available_bits: int) -> Any:
        """The field's value from the payload integer; `None` where bits are missing (§8.1)."""
        if self.count == 1:
            if self.end > available_bits:
                return None
            return self.from_raw((payload >> self.start) & self.mask)
        out: list[Any] = []
        for i in range(self.count):
            s = self.start + i * self.width
            if s + self.width > available_bits:
                out.append(None)
            else:
                out.append(self.from_raw((payload >> s) & self.mask))
        return tuple(out)

    def insert(self, payload: int, value: Any) -> int:
        """Write the field's value into the payload integer."""
        values: Sequence[Any] = (value,) if self.count == 1 else value
        if len(values) != self.count:
            raise EncodeError(f"{self.name}: expected {self.count} values, got {len(values)}")
        for i, item in enumerate(values):
            s = self.start + i * self.width
            payload = (payload & ~(self.mask << s)) | (self.to_raw(item) << s)
        return payload

    def json_value(self, value: Any) -> Any:
        if self.count > 1 and value is not None:
            return [self._json_one(v) for v in value]
        return self._json_one(value)

    def _json_one(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, CellBound):
            return value.value
        if isinstance(value, bytes):
            return value.hex()
        if isinstance(value, enum.IntEnum | enum.IntFlag):
            return value.name.lower() if self.json_as_name and value.name else int(value)
        return value


@dataclass(frozen=True, slots=True)
class Layout:
    """A record type: its fields and facts about it."""

    record_type: int
    name: str  # snake_case, used in JSON ("smart_lithium")
    title: str  # for people ("SmartLithium (Lithium Battery Smart)")
    fields: tuple[Field, ...]
    data_bytes: int  # what devices send: ceil(used bits / 8) (docs/protocol.md §1.3)
    provisional: bool = False
    source: str = "SPEC"

    @property
    def used_bits(self) -> int:
        return max(f.end for f in self.fields)

    def missing(self, available_bits: int) -> tuple[str, ...]:
        """The fields (wholly or partly) beyond the received bits."""
        return tuple(f.name for f in self.fields if f.end > available_bits)

    def check(self) -> None:
        """Raise ValueError if fields overlap or do not fit the record."""
        taken = 0
        for f in self.fields:
            bits = ((1 << (f.width * f.count)) - 1) << f.start
            if taken & bits:
                raise ValueError(f"{self.name}: field {f.name} overlaps another field")
            taken |= bits
        if self.used_bits > self.data_bytes * 8:
            raise ValueError(
                f"{self.name}: fields need {self.used_bits} bits > {self.data_bytes} bytes"
            )


# --------------------------------------------------------------------------------------------
# Fast decoding: the table is compiled into straight-line Python once per record class AND
# received length, so a frame of any length costs a few shifts and look-ups; fields past the
# received bits are constants (None), never a per-field test. Small fields (≤ 12 bits) become a
# precomputed tuple indexed by the raw bits; larger ones an inline expression or a bounded memo.
_TABLE_MAX_WIDTH = 12  # scalar fields up to 4096 entries
_MEMO_LIMIT = 1024  # per field: a device repeats a few values; random input must stay small


class _Memo(dict[int, Any]):
    """Value cache for a wide field, bounded so that random input cannot grow it."""

    def __init__(self, convert: Callable[[int], Any], limit: int = _MEMO_LIMIT) -> None:
        super().__init__()
        self.convert = convert
        self.limit = limit

    def __missing__(self, raw: int) -> Any:
        value = self.convert(raw)
        if len(self) < self.limit:
            self[raw] = value
        return value


def _element_reader(f: Field, elements: int) -> Callable[[int], tuple[Any, ...]]:
    """raw bits of the first `elements` items → the field's tuple (None for the rest)."""
    table = tuple(f.from_raw(r) for r in range(1 << f.width))
    width, mask, tail = f.width, f.mask, (None,) * (f.count - elements)
    shifts = tuple(width * i for i in range(elements))

    def read(raw: int) -> tuple[Any, ...]:
        return tuple([table[(raw >> s) & mask] for s in shifts]) + tail

    return read


def compile_decoder(
    layout: Layout, cls: type[Any], available_bits: int | None = None
) -> Callable[[int, Any], Any]:
    """Build ``decode(payload_int, wire) -> record`` for frames with `available_bits` received
    (default: every bit of the layout). Bits of the payload past those are never read (the
    hot path leaves keystream there), so every read masks its field.

    The record is built by the record class itself (its dataclass ``__init__``).
    """
    available = layout.used_bits if available_bits is None else available_bits
    namespace: dict[str, Any] = {"_missing": layout.missing(available)}
    lines = ["def _decode(v, wire):"]
    values: dict[str, str] = {}  # field → the expression of its value, in slot-filling order
    for index, f in enumerate(layout.fields):
        if f.count > 1:
            received = min(f.count, max(0, (available - f.start) // f.width))
            if received == 0:
                namespace[f"_n{index}"] = (None,) * f.count
                values[f.name] = f"_n{index}"
                continue
            # One memo look-up for the whole tuple: cell voltages repeat frame after frame.
            namespace[f"_m{index}"] = _memo(f, received)
            bits = f.width * received
            values[f.name] = f"_m{index}[(v >> {f.start}) & {(1 << bits) - 1:#x}]"
        elif f.end > available:
            values[f.name] = "None"
        else:
            raw = f"(v >> {f.start}) & {f.mask:#x}" if f.start else f"v & {f.mask:#x}"
            if f.width <= _TABLE_MAX_WIDTH:
                namespace[f"_t{index}"] = _table(f)
                values[f.name] = f"_t{index}[{raw}]"
            else:
                lines.append(f"    r{index} = {raw}")
                values[f.name] = _inline(f, namespace, index)
    namespace["_cls"] = cls
    arguments = "".join(f"{name}={value}, " for name, value in values.items())
    lines.append(f"    return _cls({arguments}wire=wire, missing_fields=_missing)")
    source = "\n".join(lines)
    # Our own table, never input data, goes into this source text.
    name = f"<decoder {layout.name} {available} bits>"
    exec(compile(source, name, "exec"), namespace)  # noqa: S102
    decoder: Callable[[int, Any], Any] = namespace["_decode"]
    return decoder


_TABLES: dict[Field, tuple[Any, ...]] = {}
_MEMOS: dict[tuple[Field, int], _Memo] = {}


def _memo(f: Field, elements: int) -> _Memo:
    """One bounded memo per field (and received elements), shared by every length's decoder,
    so memory stays bounded whatever the input: at most a few dozen memos of _MEMO_LIMIT values."""
    memo = _MEMOS.get((f, elements))
    if memo is None:
        convert = _element_reader(f, elements) if elements else f.from_raw
        memo = _MEMOS[(f, elements)] = _Memo(convert)
    return memo


def _table(f: Field) -> tuple[Any, ...]:
    """raw → value for a narrow field; shared by the decoders of every length."""
    table = _TABLES.get(f)
    if table is None:
        table = _TABLES[f] = tuple(f.from_raw(r) for r in range(1 << f.width))
    return table


def _inline(f: Field, namespace: dict[str, Any], index: int) -> str:
    """The expression of a wide field's value from its raw bits, in ``r<index>``."""
    if f.kind is Kind.FLAGS or f.kind is Kind.ENUM or f.kind is Kind.BYTES:
        namespace[f"_m{index}"] = _memo(f, 0)
        return f"_m{index}[r{index}]"
    expr = f"r{index}"
    if f.signed:
        expr = f"(r{index} - {1 << f.width:#x} if r{index} & {1 << (f.width - 1):#x} else r{index})"
    if f.negate:
        expr = f"-{expr}"
    if f.offset:
        expr = f"({expr} + {f.offset})"
    if f.decimals:
        expr = f"{expr} / {10**f.decimals}"
    na = ([f.na_raw] if f.na_raw is not None else []) + list(f.extra_na)
    if na:
        test = " or ".join(f"r{index} == {n:#x}" for n in na)
        expr = f"(None if {test} else {expr})"
    return expr
