"""The layout tables: complete, consistent with the records, and at SPEC positions."""

from __future__ import annotations

import dataclasses

import pytest

from victron_ble_bms.protocol import LAYOUTS, RECORD_CLASSES, Kind

EXPECTED_TYPES = {*range(0x00, 0x10), 0xFF00}


def test_every_record_type_has_a_layout_and_a_class() -> None:
    assert set(LAYOUTS) == EXPECTED_TYPES
    assert set(RECORD_CLASSES) == EXPECTED_TYPES


@pytest.mark.parametrize("record_type", sorted(EXPECTED_TYPES))
def test_dataclass_fields_follow_the_layout(record_type: int) -> None:
    cls = RECORD_CLASSES[record_type]
    names = [f.name for f in dataclasses.fields(cls) if not f.kw_only]
    assert names == [f.name for f in cls.LAYOUT.fields]
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert hasattr(cls, "__slots__")


def _field(record_type: int, name: str) -> tuple[int, int, bool, int | None]:
    f = next(f for f in LAYOUTS[record_type].fields if f.name == name)
    return f.start, f.width, f.signed, f.na_raw


def test_smart_lithium_positions_match_spec() -> None:
    # SPEC bit − 32 (docs/protocol.md §2.1)
    assert _field(0x05, "bms_flags")[:2] == (0, 32)
    assert _field(0x05, "error_flags")[:2] == (32, 16)
    cells = next(f for f in LAYOUTS[0x05].fields if f.name == "cell_voltages_v")
    assert (cells.start, cells.width, cells.count, cells.na_raw) == (48, 7, 8, 0x7F)
    assert _field(0x05, "battery_voltage_v") == (104, 12, False, 0x0FFF)
    assert _field(0x05, "balancer_status") == (116, 4, False, 0x0F)
    assert _field(0x05, "battery_temperature_c") == (120, 7, False, 0x7F)


def test_lynx_positions_match_spec() -> None:
    assert _field(0x0A, "ttg_min") == (8, 16, False, 0xFFFF)
    assert _field(0x0A, "battery_voltage_v") == (24, 16, True, 0x7FFF)
    assert _field(0x0A, "battery_current_a") == (40, 16, True, 0x7FFF)
    assert _field(0x0A, "io_status")[:2] == (56, 16)
    assert _field(0x0A, "warnings_alarms")[:2] == (72, 18)
    assert _field(0x0A, "soc_pct") == (90, 10, False, 0x3FF)  # not 0x3FFF (peer bug)
    assert _field(0x0A, "consumed_ah") == (100, 20, False, 0xFFFFF)
    assert _field(0x0A, "temperature_c") == (120, 7, False, 0x7F)


def test_smart_bms_is_the_only_provisional_layout() -> None:
    assert [t for t, layout in LAYOUTS.items() if layout.provisional] == [0x0E]


def test_na_derives_from_width() -> None:
    for layout in LAYOUTS.values():
        for f in layout.fields:
            if f.na_raw is None or f.kind is Kind.CELL:
                continue
            expected = (1 << (f.width - 1)) - 1 if f.signed else (1 << f.width) - 1
            assert f.na_raw == expected, (layout.name, f.name)


def test_generated_docs_are_current() -> None:
    from pathlib import Path

    from victron_ble_bms.protocol.docs import layouts_markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "records.md"
    assert doc.read_text() == layouts_markdown() + "\n", (
        "run: python -m victron_ble_bms.protocol.docs > docs/records.md"
    )
