"""Shared terminal output: a rich console when rich is installed, plain text otherwise."""

from __future__ import annotations

import enum
import json
import sys
from typing import Any

from victron_ble_bms.protocol import Code, Record, Severity
from victron_ble_bms.protocol.enums import CellBound
from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.keys import redact_keys

SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.ALARM: "red", Severity.WARNING: "yellow"}


def format_value(value: Any, unit: str = "", decimals: int | None = None) -> str:
    """A field value for people: units, names for enums and flags, n/a for None."""
    if value is None:
        return "n/a"
    if isinstance(value, tuple):
        return "  ".join(format_value(v) for v in value if v is not None) or "n/a"
    if isinstance(value, CellBound):
        return f"{value.value} V"
    if isinstance(value, enum.IntFlag):
        names = [m.name for m in type(value) if m in value and m.name]
        unknown = int(value) & ~sum(int(m) for m in type(value))
        text = ", ".join(n.lower().replace("_", " ") for n in names) or "none"
        if unknown:
            text += f", unnamed bits 0x{unknown:x}"
        return f"0x{int(value):0x} ({text})"
    if isinstance(value, enum.IntEnum):
        name = value.name or str(int(value))
        return f"{name.lower().replace('_', ' ')} ({int(value)})"
    if isinstance(value, bytes):
        return value.hex(" ")
    if isinstance(value, float):
        text = f"{value:.{decimals}f}" if decimals is not None else f"{value:g}"
    else:
        text = str(value)
    return f"{text} {unit}".rstrip()


def record_rows(record: Record) -> list[tuple[str, str]]:
    rows = []
    for f in record.LAYOUT.fields:
        value = getattr(record, f.name)
        unit = f.unit if f.kind.value in ("number", "cell") else ""
        if f.count > 1:
            shown = "  ".join(format_value(v, decimals=2) for v in value if v is not None)
            shown = shown or "n/a"
            rows.append((f.name, f"{shown} {unit}".rstrip() if shown != "n/a" else shown))
        else:
            rows.append((f.name, format_value(value, unit, f.decimals)))
    return rows


# Table columns (decode, scan): wide enough for every product name of the battery family
# ("Smart Lithium Battery 25.6V/200Ah") and the emulator's device names.
NAME_W = 20
PRODUCT_W = 34


def fit(text: str, width: int) -> str:
    """`text` in a column of `width`: padded, or cut with an ellipsis — a cut name is never
    shown as if it were whole (issue 25 item 7)."""
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def print_record(record: Record) -> None:
    """A record as a table with units, then its codes with meaning and remedy."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # the core install has no rich: plain text
        _print_plain(record)
        return
    console = Console()
    frame = record.frame
    title = record.LAYOUT.title
    if record.provisional:
        title += " [bold magenta](PROVISIONAL decoding, docs/protocol.md §8.2)[/]"
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("field")
    table.add_column("value")
    if frame is not None:
        table.add_row("product", f"{record.product or 'unknown'} (0x{frame.model_id:04X})")
        table.add_row("nonce", str(frame.nonce))
    for name, value in record_rows(record):
        table.add_row(name, value)
    console.print(table)
    for note in record_notes(record):
        console.print(note, style="bold red", highlight=False, markup=False)
    codes = record.codes
    for code in codes or ():
        console.print(
            _code_text(code), style=SEVERITY_STYLE[code.severity], highlight=False, markup=False
        )
        if code.explanation:
            console.print(f"    {code.explanation}", highlight=False, markup=False)
        if code.remedy:
            console.print(f"    What to do: {code.remedy}", highlight=False, markup=False)
    if codes == () and not record.implausible:
        console.print("no active warnings, alarms or errors", style="green")


def record_notes(record: Record) -> list[str]:
    """Why a record's values or codes can't be taken at face value (partial, implausible)."""
    notes = []
    if record.codes is None:
        notes.append(f"codes unknown — frame incomplete (missing: {_missing(record)})")
    elif record.partial:
        notes.append(f"frame incomplete (missing: {_missing(record)})")
    if record.implausible:
        notes.append(
            "implausible — wrong key or corrupt frame? (" + "; ".join(record.implausible) + ")"
        )
    return notes


def _missing(record: Record) -> str:
    return ", ".join(record.missing_fields)


def codes_text(record: Record) -> str:
    """The active code ids for a table cell; says "unknown" when they are."""
    codes = record.codes
    if codes is None:
        return "codes unknown (frame incomplete)"
    return " ".join(c.id for c in codes)


def _code_text(code: Code) -> str:
    suffix = "" if code.in_manual else "  (not in manual)"
    return f"{code.id}  {code.severity.name.lower()}: {code.title}{suffix}"


def _print_plain(record: Record) -> None:
    out = sys.stdout
    out.write(
        record.LAYOUT.title + (" (PROVISIONAL decoding)" if record.provisional else "") + "\n"
    )
    if record.frame is not None:
        out.write(f"  product: {record.product} (0x{record.frame.model_id:04X})\n")
    for name, value in record_rows(record):
        out.write(f"  {name}: {value}\n")
    for note in record_notes(record):
        out.write(note + "\n")
    for code in record.codes or ():
        out.write(_code_text(code) + "\n")
        if code.remedy:
            out.write(f"    What to do: {code.remedy}\n")


def error(message: str) -> None:
    """One clear line on stderr: `plain` (messages may quote outside text) and with any run
    of hex digits longer than an address masked (a key typed in the wrong place must not be
    echoed; DEVELOPERS.md: first and last byte only)."""
    sys.stderr.write(f"victron-bms: {redact_keys(plain(message, 2000))}\n")


def text_cell(value: object, style: str = "") -> Any:
    """Outside text (a device name, an address, a capture field) for a rich table or
    `console.print`: a `rich.text.Text`, so `[@click=app.quit]…[/]` or `x[/b]y` is shown as
    written — never parsed as markup — and control characters are escaped (`plain`)."""
    from rich.text import Text

    return Text(plain(value), style=style)


def main_values(record: Record, *, cells: bool = True) -> str:
    """The few numbers that matter at a glance, for one table cell (decode, scan)."""
    parts: list[str] = []
    v = getattr(record, "battery_voltage_v", None)
    if v is not None:
        parts.append(f"{v:.2f} V")
    a = getattr(record, "battery_current_a", None)
    if a is not None:
        parts.append(f"{a:+.1f} A")
    soc = getattr(record, "soc_pct", None)
    if soc is not None:
        parts.append(f"{soc:.1f} %")
    t = getattr(record, "battery_temperature_c", getattr(record, "temperature_c", None))
    if t is not None:
        parts.append(f"{t} °C")
    shown_cells = getattr(record, "cells", None) if cells else None
    if shown_cells:
        shown = [c.value if isinstance(c, CellBound) else f"{c:.2f}" for c in shown_cells]
        parts.append("cells " + "/".join(shown))
    if record.provisional:
        parts.append("PROVISIONAL")
    if record.partial:
        parts.append("PARTIAL")
    if record.implausible:
        parts.append("IMPLAUSIBLE")
    return "  ".join(parts)
