"""Confirmation of a device's new values (issue 18 item 2): what a forger in radio range cannot do.

Instant Readout has no MAC (docs/protocol.md §1.2): anyone can send a device's clear header with
a fresh nonce and random bytes after it, and the key check byte is public. What a forger cannot
do without the key is make two frames with *different* nonces decrypt to the same values: random
ciphertext under a fresh nonce decrypts to random plaintext. A real device holds its values for
many nonces (a battery's reading changes slowly; its ADC noise moves a value by a count or two).

So the device table (`devices.py`) takes a frame as the device's state only when its decrypted
payload **agrees** with what the device already said — the last confirmed payload, or a pending
one received under an older fresh nonce:

* every code-bearing field (`Kind.ENUM`, `Kind.FLAGS`: alarms, warnings, errors, states) equal,
  bit for bit;
* every measured value (`Kind.NUMBER`, `Kind.CELL`) within `tolerance(field)` raw counts — ADC
  noise and a slow trend pass, a random value almost never does: for a full record, the flag
  words alone match by chance about 1 time in 2^16 or less, and each number 1 time in ~40;
* `Kind.BYTES` (unidentified parts of provisional layouts) is not compared (what it holds is
  unknown, so neither is what a change of it means);
* the same record type and the same received length.

A frame that does not agree is an *unconfirmed change*: reported with `Reading.suspect` saying so
(every sink keeps the last good values for a suspect reading) and kept pending; the next frame
with a fresh nonce that agrees with it confirms it. It never moves the nonce sequence, so a
forged frame cannot make the genuine frame with its nonce look replayed.

`payload_key` is also what lets the table skip decoding: a frame whose payload key equals the
device's confirmed one carries the same values, so its record is the confirmed record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from victron_ble_bms.protocol import Kind, Layout, Record
from victron_ble_bms.protocol.codec import cipher
from victron_ble_bms.protocol.crypto import KeyLike
from victron_ble_bms.protocol.envelope import MAX_DATA_BYTES, UNENCRYPTED

_ZERO_TAIL = bytes(14)
PENDING_MAX = 4  # unconfirmed payloads kept per device: a forger's frames cannot crowd out
# one genuine change unless they outnumber it 4 to 1 between two genuine frames.


def payload_key(data: bytes, key: KeyLike) -> int | None:
    """The decrypted payload of an encrypted frame with its record type and received length,
    as one int (equal ints ⇔ same type, same length, same plaintext); None when the frame is
    not an encrypted frame this key opens (the general path says why)."""
    n = len(data) - 8
    if n <= 0 or data[4] == UNENCRYPTED:
        return None
    try:
        c = cipher(key)
    except Exception:  # an invalid key: decode_parsed says so
        return None
    if data[7] != c.key_check:
        return None
    if n > MAX_DATA_BYTES:
        n = MAX_DATA_BYTES
    stream = c.encrypt_block(data[5:7] + _ZERO_TAIL)
    plain = ((int.from_bytes(data, "little") >> 64) ^ int.from_bytes(stream, "little")) & (
        (1 << (n << 3)) - 1
    )
    return (data[4] << 168) | (len(data) << 128) | plain


def tolerance(width: int) -> int:
    """Raw counts two readings of one measured value may differ by and still agree: 3 counts
    (noise on the last digit: 30 mV on a cell, 3 °C, 0.3 A) or 1/256 of the field's range."""
    return max(3, (1 << width) >> 8)


# layout → (start bit, width, signed, tolerance (0: exact)) per element
_SPECS: dict[int, tuple[tuple[int, int, bool, int], ...]] = {}


def _spec(layout: Layout) -> tuple[tuple[int, int, bool, int], ...]:
    spec = _SPECS.get(layout.record_type)
    if spec is None:
        rows = []
        for f in layout.fields:
            if f.kind is Kind.BYTES:
                continue
            tol = tolerance(f.width) if f.kind in (Kind.NUMBER, Kind.CELL) else 0
            for i in range(f.count):
                rows.append((f.start + i * f.width, f.width, f.signed, tol))
        spec = _SPECS[layout.record_type] = tuple(rows)
    return spec


def agree(record: Record, a: int, b: int) -> bool:
    """Payload keys `a` and `b` (of `record`'s type) say the same thing (module docstring)."""
    if a >> 128 != b >> 128:  # record type, received length
        return False
    for start, width, signed, tol in _spec(record.LAYOUT):
        mask = (1 << width) - 1
        ra = (a >> start) & mask
        rb = (b >> start) & mask
        if ra == rb:
            continue
        if not tol:
            return False
        if signed:
            half = 1 << (width - 1)
            ra = ra - (1 << width) if ra >= half else ra
            rb = rb - (1 << width) if rb >= half else rb
        if abs(ra - rb) > tol:
            return False
    return True


def same_codes(record: Record, a: int, b: int) -> bool:
    """Payload keys `a` and `b` (of `record`'s type) carry the same codes and states: every
    `Kind.ENUM`/`Kind.FLAGS` field bit-equal, same type and length; measured values aside. A
    genuine device's one-frame change that its next frames do not repeat is a measured value
    (ADC noise, a time-to-go swinging at near-zero current); random ciphertext almost never
    keeps the flag words (devices.py: when an unconfirmed change is shown as suspect)."""
    if a >> 128 != b >> 128:
        return False
    for start, width, _signed, tol in _spec(record.LAYOUT):
        if not tol:
            mask = (1 << width) - 1
            if (a >> start) & mask != (b >> start) & mask:
                return False
    return True


# record class → a function copying a record with another `wire` (the frame it arrived in): the
# slots set through their descriptors, as the frozen dataclass's own __init__ does, without
# re-reading the fields from the payload (`Record.frame`, the nonce `scan --json` shows, comes
# from `wire`).
_CLONERS: dict[type[Record], Callable[[Record, bytes], Record]] = {}


def _cloner(cls: type[Record]) -> Callable[[Record, bytes], Record]:
    names = [n for k in reversed(cls.__mro__) for n in getattr(k, "__slots__", ()) if n != "wire"]
    env: dict[str, Any] = {"new": object.__new__, "cls": cls}
    lines = ["def clone(r, wire):", "    o = new(cls)"]
    for i, name in enumerate(names):
        descriptor = next(k.__dict__[name] for k in cls.__mro__ if name in k.__dict__)
        env[f"g{i}"], env[f"s{i}"] = descriptor.__get__, descriptor.__set__
        lines.append(f"    s{i}(o, g{i}(r))")
    wire = next(k.__dict__["wire"] for k in cls.__mro__ if "wire" in k.__dict__)
    env["sw"] = wire.__set__
    lines += ["    sw(o, wire)", "    return o"]
    exec("\n".join(lines), env)  # noqa: S102 — names from the record's own slots
    fn: Callable[[Record, bytes], Record] = env["clone"]
    _CLONERS[cls] = fn
    return fn


def with_wire(record: Record, wire: bytes) -> Record:
    """`record` as received in the frame `wire` (same values; `wire` not in equality)."""
    cls = type(record)
    return (_CLONERS.get(cls) or _cloner(cls))(record, wire)
