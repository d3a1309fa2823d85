"""Hypothesis strategies built from the layout tables: the same description the codec reads."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from victron_ble_bms.protocol import RECORD_CLASSES, Field, Record


def raw_values(f: Field) -> st.SearchStrategy[int]:
    """Every raw value the field can carry, NA included."""
    values = st.integers(0, f.mask)
    return values.filter(lambda r: r not in f.extra_na) if f.extra_na else values


def field_values(f: Field) -> st.SearchStrategy[Any]:
    one = raw_values(f).map(f.from_raw)
    if f.count == 1:
        return one
    return st.tuples(*([one] * f.count))


def records(record_type: int) -> st.SearchStrategy[Record]:
    cls = RECORD_CLASSES[record_type]
    return st.builds(cls, *(field_values(f) for f in cls.LAYOUT.fields))
