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
from .chunks import Chunks
from .errors import (
    CaptureError,
    CorruptCapture,
    CorruptRecord,
    TruncatedCapture,
    UnknownFormat,
    UnsupportedLinkType,
)
from .hci import parse_hci_event
from .lane import RSSI_TEXT, Lane, hci_report_shape, us_text
from .links import BTSNOOP_H4, BTSNOOP_LINKS, LinkDecoder

MAGIC = b"btsnoop\0"
HEADER = struct.Struct(">8sII")
RECORD = struct.Struct(">IIIIq")
_LENGTH_TIME = struct.Struct(">4xI8xq")  # a record header's included length and time
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
    f: BinaryIO,
    *,
    path: str = "",
    errors: list[CaptureError] | None = None,
    lane: Lane | None = None,
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
    unpack = RECORD.unpack
    h4_events = datalink == BTSNOOP_H4
    chunks = Chunks(f.read)
    read = chunks.read
    chunks.base = HEADER.size
    # The lane (lane.py): H4 events of one report are looked up before they are parsed.
    packets = lane.packets if lane is not None and h4_events else None
    if lane is not None:
        out, miss, flush_at = lane.out, lane.miss, lane.flush_at
    head_at = _LENGTH_TIME.unpack_from
    tried = False  # the lane's fast loop already looked this record up
    while True:
        if packets is not None:
            # The fast loop: records lying whole in the chunk whose packet the lane knows (or
            # its `miss` takes). Anything else — a packet to parse, a record crossing the
            # chunk's end, a length beyond MAX_RECORD — goes to the loop below.
            buf = chunks.buf
            pos = chunks.pos
            size = len(buf)
            while pos + 24 <= size:
                incl, ts_us = head_at(buf, pos)
                end = pos + 24 + incl
                if end > size or incl > MAX_RECORD or incl < 3 or buf[pos + 24] != 4:
                    break
                key = buf[pos + 25 : end - 1]
                entry = packets.get(key)
                if entry is not None:
                    entry[3] += 1
                    if entry[0] is not None:
                        ts = us_text(ts_us - EPOCH_OFFSET_US)
                        out.append(
                            f"{entry[0]}{ts}{entry[1]}{RSSI_TEXT[buf[end - 1]]}{entry[2]}{entry[5]}"
                        )
                elif not miss(key, us_text(ts_us - EPOCH_OFFSET_US), RSSI_TEXT[buf[end - 1]]):
                    tried = True
                    break
                pos = end
            chunks.pos = pos
            if len(out) >= flush_at:  # at most a chunk's worth of lines in between
                lane.flush()  # type: ignore[union-attr]
        offset = chunks.base + chunks.pos
        rec = read(24)
        if len(rec) < 24:
            if rec:
                handle(
                    errors,
                    TruncatedCapture("file ends inside a record header", path=path, offset=offset),
                )
            return
        _orig, incl, flags, _drops, ts_us = unpack(rec)
        # One record at a time: checks inline, their messages (body_error, decode_body) on
        # the rare path.
        data = read(incl) if incl <= MAX_RECORD else b""
        if len(data) < incl:
            body_error(incl, len(data), MAX_RECORD, path=path, offset=offset, errors=errors)
            return
        key = data[1:-1] if packets is not None and incl > 2 and data[0] == 4 else b""
        if key and not tried:
            entry = packets.get(key)  # type: ignore[union-attr]
            if entry is not None:
                entry[3] += 1
                if entry[0] is not None:
                    ts = us_text(ts_us - EPOCH_OFFSET_US)
                    out.append(f"{entry[0]}{ts}{entry[1]}{RSSI_TEXT[data[-1]]}{entry[2]}{entry[5]}")
                continue
            if miss(key, us_text(ts_us - EPOCH_OFFSET_US), RSSI_TEXT[data[-1]]):
                continue
        tried = False
        try:
            if h4_events and data[:1] == b"\x04":  # H4 event: skip the h4() layer
                advs = parse_hci_event(data, (ts_us - EPOCH_OFFSET_US) / 1e6, 1)
            else:
                advs = decoder(data, (ts_us - EPOCH_OFFSET_US) / 1e6, flags)
        except ValueError:
            advs = decode_body(decoder, data, 0.0, flags, path=path, offset=offset, errors=errors)
        if packets is not None:
            lane.pending = (  # type: ignore[union-attr]
                key if len(advs) == 1 and hci_report_shape(key) else None
            )
        yield from advs
