"""Record-layout documentation generated from the layout tables.

python -m victron_ble_bms.protocol.docs > docs/records.md
"""

from __future__ import annotations

from .fields import Field, Kind
from .layouts import LAYOUTS


def _na(f: Field) -> str:
    values = ([f.na_raw] if f.na_raw is not None else []) + list(f.extra_na)
    return ", ".join(f"0x{v:X}" for v in values) or "–"


def _scale(f: Field) -> str:
    if f.kind is Kind.CELL:
        return "2.60 V + raw × 0.01 V; 0 = <2.61 V, 126 = >3.85 V"
    if f.kind in (Kind.ENUM, Kind.FLAGS):
        return f"{f.kind.value} `{f.enum.__name__}`"
    if f.kind is Kind.BYTES:
        return "raw bytes"
    parts = []
    if f.negate:
        parts.append("−raw")
    elif f.signed:
        parts.append("signed raw")
    else:
        parts.append("raw")
    if f.offset:
        parts.append(f"{f.offset:+d}")
    if f.decimals:
        parts.append(f"× {10**-f.decimals:g}")
    return " ".join(parts) + (f" {f.unit}" if f.unit else "")


def _bounds(f: Field) -> str:
    if f.plausible is None:
        return "–"
    low, high = f.plausible
    return f"{low:g} … {high:g} {f.unit}".rstrip()


def layouts_markdown() -> str:
    out = [
        "# Record layouts",
        "",
        "Generated from `victron_ble_bms/protocol/layouts.py` and `provisional.py` by "
        "`python -m victron_ble_bms.protocol.docs`; do not edit by hand. Bit offsets count "
        "from the first decrypted byte (SPEC bit − 32), LSB first (docs/protocol.md §1.4).",
        "",
    ]
    for rt, layout in sorted(LAYOUTS.items()):
        name = f"0x{rt:04X}" if rt > 0xFF else f"0x{rt:02X}"
        mark = " — **PROVISIONAL**" if layout.provisional else ""
        out += [
            f"## {name} {layout.title} (`{layout.name}`){mark}",
            "",
            f"{layout.data_bytes} data bytes, {layout.used_bits} bits used. "
            f"Source: {layout.source}.",
            "",
            "| bit | bits | field | value | NA | plausible | notes |",
            "|---:|---:|---|---|---|---|---|",
        ]
        for f in layout.fields:
            width = f"{f.width} × {f.count}" if f.count > 1 else str(f.width)
            out.append(
                f"| {f.start} | {width} | `{f.key}` | {_scale(f)} | {_na(f)} | {_bounds(f)} "
                f"| {f.doc} |"
            )
        out.append("")
    out += [
        "Outside its plausible range a value marks the record `implausible` (wrong key or "
        "corrupt frame?); the bounds and the cross-field checks (a SmartLithium pack against "
        "the sum of its cells, a midpoint against its battery) are explained in "
        "`victron_ble_bms/protocol/plausibility.py`.",
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    print(layouts_markdown())
