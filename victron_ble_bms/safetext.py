"""Text that comes from outside (device names, addresses, capture fields, key-file labels) made
safe to show: anyone nearby can broadcast any name, and anyone can write a capture file.

`plain()` turns any value into one line of printable text: control characters (C0, DEL, C1,
which carry terminal escape sequences), bidirectional overrides and other invisible format
characters become visible `\\xNN` / `\\uNNNN` escapes, and very long text is cut with an
ellipsis. Presentation layers still render the result as *plain text* (Textual: `Text`/
`markup=False`; never as markup), this only keeps a terminal from being steered by it.
"""

from __future__ import annotations

import unicodedata

MAX_CHARS = 200  # a BLE name is at most 248 bytes; captures can hold anything


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _unsafe(ch: str) -> bool:
    # Cc: C0/DEL/C1 controls; Cf: format chars (bidi overrides, zero-width); Cs: lone
    # surrogates (invalid UTF-8 decoded with surrogateescape); Zl/Zp: line/paragraph separators.
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")


def plain(value: object, max_chars: int = MAX_CHARS) -> str:
    """Any value → one line of printable text, safe for a terminal, a table cell or a toast."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():  # the common case: nothing to do
        out = text
    else:
        out = "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)
    if len(out) > max_chars:
        out = out[: max_chars - 1] + "…"
    return out
