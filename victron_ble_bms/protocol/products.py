"""Products: id → name, and which record type each BMS family advertises (docs/protocol.md §3)."""

from __future__ import annotations

from dataclasses import dataclass

from .product_names import PRODUCT_NAMES as PRODUCT_NAMES

# Ids only seen in mock data or missing from the public list (docs/protocol.md §3, §7 item 4).
_EXTRA_NAMES = {0xA3E7: "Lynx Smart BMS NG"}

SMART_LITHIUM_IDS = range(0xA0E0, 0xA0F3)  # 0x05
LYNX_SMART_BMS_IDS = (0xA3E5, 0xA3E6, 0xA3E7)  # 0x0A
SMART_BMS_IDS = (0xA3E0, 0xA3E8)  # 0x0E: CL 12/100 (inferred), 12/200 (confirmed)


@dataclass(frozen=True, slots=True)
class Product:
    model_id: int
    name: str
    record_type: int | None  # the record type this product family advertises, where known


def product_name(model_id: int) -> str | None:
    return PRODUCT_NAMES.get(model_id) or _EXTRA_NAMES.get(model_id)


def expected_record_type(model_id: int) -> int | None:
    if model_id in SMART_LITHIUM_IDS:
        return 0x05
    if model_id in LYNX_SMART_BMS_IDS:
        return 0x0A
    if model_id in SMART_BMS_IDS:
        return 0x0E
    return None


def product(model_id: int) -> Product:
    name = product_name(model_id) or f"unknown product 0x{model_id:04X}"
    return Product(model_id, name, expected_record_type(model_id))


def products_for_record(record_type: int) -> list[Product]:
    """Every known product id whose family uses this record type."""
    ids = [*SMART_LITHIUM_IDS, *LYNX_SMART_BMS_IDS, *SMART_BMS_IDS]
    return [product(i) for i in ids if expected_record_type(i) == record_type]
