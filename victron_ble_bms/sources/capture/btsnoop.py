"""btsnoop v1 reader (Android "Bluetooth HCI snoop log", `btmon -w`), streaming.

File header: "btsnoop\\0", version u32 BE (1), datalink u32 BE. Record: original length,
included length, flags, cumulative drops (u32 BE each), timestamp i64 BE in microseconds since
0000-01-01 (BlueZ src/shared/btsnoop.c, Wireshark wiretap/btsnoop.c; docs/ecosystem.md §5.1).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

from ..advertisement import Advertisement
from .errors import (
    CaptureError,
    CorruptCapture,
    CorruptRecord,
    TruncatedCapture,
    UnknownFormat,
    UnsupportedLinkType,
)
from .hci import parse_hci_event
from .links import BTSNOOP_H4, BTSNOOP_LINKS, LinkDecoder

MAGIC = b"btsnoop\0"
HEADER = struct.Struct(">8sII")
RECORD = struct.Struct(">IIIIq")
# Microseconds from 0000-01-01 to 1970-01-01 (Wireshark wiretap/btsnoop.c KUnixTimeBase).
EPOCH_OFFSET_US = 0x00DCDDB30F2F8000
# No HCI packet is longer than 4 + 65535 bytes; anything much larger means a broken length.
MAX_RECORD = 1 << 17


def handle(errors: list[CaptureError] | None, err: CaptureError) -> None:
    """A recoverable error: collect it when the caller asked to, else raise it."""
    if errors is None:
        raise err
    errors.append(err)


def body_error(
    incl: int, got: int, limit: int, *, path: str, offset: int, errors: list[CaptureError] | None
) -> None:
    """Report why a record's `incl` data bytes cannot be read (`got` arrived): an impossible
    length or the file ending inside the record. Nothing after it can be read."""
    if incl > limit:
        err: CaptureError = CorruptCapture(
            f"record claims {incl} bytes; the rest of the file cannot be read",
            path=path,
            offset=offset,
        )
    else:
        err = TruncatedCapture(
            f"file ends inside a record ({got} of {incl} bytes)", path=path, offset=offset
        )
    handle(errors, err)


def decode_body(
    decoder: LinkDecoder,
    data: bytes,
    ts: float,
    flags: int,
    *,
    path: str,
    offset: int,
    errors: list[CaptureError] | None,
) -> list[Advertisement]:
    """One record's advertisements; a record its link layer cannot parse is skipped."""
    try:
        return decoder(data, ts, flags)
    except ValueError as exc:
        handle(errors, CorruptRecord(f"record skipped: {exc}", path=path, offset=offset))
        return []


def read_btsnoop(
    f: BinaryIO, *, path: str = "", errors: list[CaptureError] | None = None
) -> Iterator[Advertisement]:
    """Stream the advertisements in a btsnoop file opened in binary mode at offset 0."""
    head = f.read(HEADER.size)
    if len(head) < HEADER.size or not head.startswith(MAGIC):
        raise UnknownFormat("not a btsnoop file (no 'btsnoop' header)", path=path, offset=0)
    _, version, datalink = HEADER.unpack(head)
    if version != 1:
        raise UnknownFormat(
            f"btsnoop version {version}; only version 1 exists", path=path, offset=8
        )
    decoder = BTSNOOP_LINKS.get(datalink)
    if decoder is None:
        raise UnsupportedLinkType(
            f"btsnoop datalink {datalink} is not read (1001 HCI, 1002 H4, 2001 Linux monitor are)",
            path=path,
            offset=12,
        )
    offset = HEADER.size
    unpack = RECORD.unpack
    read = f.read
    h4_events = datalink == BTSNOOP_H4
    while True:
        rec = read(24)
        if len(rec) < 24:
            if rec:
                handle(
                    errors,
                    TruncatedCapture("file ends inside a record header", path=path, offset=offset),
                )
            return
        _orig, incl, flags, _drops, ts_us = unpack(rec)
        # The hot loop: checks inline, their messages (body_error, decode_body) on the rare path.
        data = read(incl) if incl <= MAX_RECORD else b""
        if len(data) < incl:
            body_error(incl, len(data), MAX_RECORD, path=path, offset=offset, errors=errors)
            return
        try:
            if h4_events and data[:1] == b"\x04":  # H4 event: skip the h4() layer
                advs = parse_hci_event(data, (ts_us - EPOCH_OFFSET_US) / 1e6, 1)
            else:
                advs = decoder(data, (ts_us - EPOCH_OFFSET_US) / 1e6, flags)
        except ValueError:
            advs = decode_body(decoder, data, 0.0, flags, path=path, offset=offset, errors=errors)
        offset += 24 + incl
        yield from advs
