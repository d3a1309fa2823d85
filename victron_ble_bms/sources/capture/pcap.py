"""pcap and pcapng readers, streaming, for the Bluetooth link types in `links.PCAP_LINKS`.

pcap: https://www.tcpdump.org/manpages/pcap-savefile.5.html (magic a1b2c3d4 µs / a1b23c4d ns,
either byte order; 24-byte file header; 16-byte record header).
pcapng: draft-ietf-opsawg-pcapng (Section Header 0x0A0D0D0A with byte-order magic 0x1A2B3C4D,
Interface Description 1 with if_tsresol option 9 and if_tsoffset 14, Enhanced Packet 6,
Simple Packet 3, obsolete Packet 2; other blocks skipped).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ..advertisement import Advertisement
from .btsnoop import body_error, decode_body, handle
from .chunks import Chunks
from .errors import (
    CaptureError,
    CorruptCapture,
    CorruptRecord,
    TruncatedCapture,
    UnknownFormat,
    UnsupportedLinkType,
)
from .hci import H4_EVENT, parse_hci_event
from .lane import RSSI_TEXT, Lane, hci_report_shape, us_text
from .links import PCAP_LINKS, LinkDecoder, h4_with_phdr

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
MAX_PACKET = 1 << 18  # libpcap's own maximum snapshot length
MAX_BLOCK = 1 << 24
# An Enhanced Packet Block's head: type, total length, interface, timestamp high and low,
# captured and original length; and a block's trailing length. Per byte order.
_EPB = {e: struct.Struct(e + "IIIIIII") for e in "<>"}
_TRAILER = {e: struct.Struct(e + "I") for e in "<>"}

_SUPPORTED = ", ".join(str(t) for t in PCAP_LINKS)


def _decoder(linktype: int, path: str, offset: int) -> LinkDecoder:
    decoder = PCAP_LINKS.get(linktype & 0xFFFF)  # upper bits carry FCS info (pcap-savefile)
    if decoder is None:
        raise UnsupportedLinkType(
            f"link type {linktype} is not Bluetooth (we read {_SUPPORTED})",
            path=path,
            offset=offset,
        )
    return decoder


def read_pcap(
    f: BinaryIO, *, path: str = "", errors: list[CaptureError] | None = None
) -> Iterator[Advertisement]:
    """Stream the advertisements in a classic pcap file."""
    head = f.read(24)
    if len(head) < 24 or head[:4] not in PCAP_MAGICS:
        raise UnknownFormat("not a pcap file", path=path, offset=0)
    endian, resolution = PCAP_MAGICS[head[:4]]
    linktype = struct.unpack(endian + "I", head[20:24])[0]
    decoder = _decoder(linktype, path, 20)
    unpack = struct.Struct(endian + "IIII").unpack
    phdr_h4 = decoder is h4_with_phdr
    offset = 24
    read = f.read
    while True:
        hdr = read(16)
        if len(hdr) < 16:
            if hdr:
                handle(
                    errors,
                    TruncatedCapture("file ends inside a record header", path=path, offset=offset),
                )
            return
        sec, frac, incl, _orig = unpack(hdr)
        # As in read_btsnoop: the checks inline, their messages on the rare path.
        data = read(incl) if incl <= MAX_PACKET else b""
        if len(data) < incl:
            body_error(incl, len(data), MAX_PACKET, path=path, offset=offset, errors=errors)
            return
        try:
            if phdr_h4 and incl > 4 and data[4] == H4_EVENT:  # skip the h4_with_phdr layer
                advs = parse_hci_event(data, sec + frac * resolution, 5)
            else:
                advs = decoder(data, sec + frac * resolution, 0)
        except ValueError:
            advs = decode_body(decoder, data, 0.0, 0, path=path, offset=offset, errors=errors)
        offset += 16 + incl
        yield from advs


@dataclass(slots=True)
class _Interface:
    decoder: LinkDecoder | None  # None: not a Bluetooth interface, its packets are skipped
    linktype: int
    resolution: float = 1e-6
    ts_offset: int = 0
    problem: CorruptRecord | None = None  # a broken option, reported once


def _interface(body: bytes, endian: str, path: str, offset: int) -> _Interface:
    if len(body) < 8:
        raise CorruptCapture("interface description block too short", path=path, offset=offset)
    linktype = struct.unpack_from(endian + "H", body, 0)[0]
    iface = _Interface(PCAP_LINKS.get(linktype), linktype)
    i = 8
    while i + 4 <= len(body):
        code, length = struct.unpack_from(endian + "HH", body, i)
        if code == 0:  # opt_endofopt
            break
        if i + 4 + length > len(body):
            # Keep the interface (its link type is known) with the options read so far: its
            # packets are still readable, perhaps with the default time resolution.
            iface.problem = CorruptRecord(
                f"interface option {code} says {length} bytes, only {len(body) - i - 4} left; "
                "options after it ignored",
                path=path,
                offset=offset + 8 + i,
            )
            break
        value = body[i + 4 : i + 4 + length]
        if code == 9 and length >= 1:  # if_tsresol: 10^-n, or 2^-n when the top bit is set
            v = value[0]
            iface.resolution = 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0**-v
        elif code == 14 and length >= 8:  # if_tsoffset: seconds added to every timestamp
            iface.ts_offset = struct.unpack_from(endian + "q", value, 0)[0]
        i += 4 + length + (-length % 4)
    return iface


def read_pcapng(
    f: BinaryIO,
    *,
    path: str = "",
    errors: list[CaptureError] | None = None,
    lane: Lane | None = None,
) -> Iterator[Advertisement]:
    """Stream the advertisements in a pcapng file (all sections, all Bluetooth interfaces)."""
    endian = "<"
    interfaces: list[_Interface] = []
    chunks = Chunks(f.read)
    read = chunks.read
    first = True
    seen_bluetooth = False
    other_links: set[int] = set()
    pair = struct.Struct("<II").unpack
    epb_head = _EPB["<"].unpack_from
    trailer = _TRAILER["<"].unpack_from
    # The interface of the last Enhanced Packet read (-1: none yet in this section), cached
    # for the fast loop: only a Bluetooth interface is cached.
    cur = -1
    decoder: LinkDecoder = h4_with_phdr
    resolution = 1e-6
    ts_offset = 0
    # The lane (lane.py): H4 events of one report are looked up before they are parsed.
    packets = lane.packets if lane is not None else None
    if lane is not None:
        out, miss, flush_at = lane.out, lane.miss, lane.flush_at
    while True:
        if cur >= 0:
            # The hot path: Enhanced Packets of the cached interface lying whole in the chunk.
            # Every check of the slow path below is here, in one condition (the block length
            # ≥ 32 is implied by caplen + 32 ≤ total, ≤ MAX_BLOCK by lying whole in the
            # chunk); a block failing any of them — or of another type or interface, or
            # crossing the chunk's end — goes to the slow path for its message.
            buf = chunks.buf
            pos = chunks.pos
            size = len(buf)
            stop = size - 28
            phdr = decoder is h4_with_phdr
            looked_up = packets is not None and phdr  # H4 events go to the lane first
            in_us = resolution == 1e-6 and ts_offset == 0
            while pos <= stop:
                btype, total, if_id, ts_hi, ts_lo, caplen, _orig = epb_head(buf, pos)
                end = pos + total
                if (
                    btype != 6
                    or if_id != cur
                    or total & 3
                    or caplen + 32 > total
                    or end > size
                    or trailer(buf, end - 4)[0] != total
                ):
                    break
                units = (ts_hi << 32) | ts_lo
                if looked_up and caplen > 6 and buf[pos + 32] == H4_EVENT:
                    last = pos + 27 + caplen  # the packet's last byte: an RSSI if the key says
                    key = buf[pos + 33 : last]
                    entry = packets.get(key)  # type: ignore[union-attr]
                    if entry is not None:
                        entry[3] += 1
                        if entry[0] is not None:
                            # The time's JSON text: from whole µs where that is the float read.
                            ts = units * resolution + ts_offset
                            text = us_text(units) if in_us and units / 1e6 == ts else f"{ts!r}"
                            out.append(
                                f"{entry[0]}{text}{entry[1]}{RSSI_TEXT[buf[last]]}{entry[2]}{entry[5]}"
                            )
                        pos = end
                        continue
                    ts = units * resolution + ts_offset
                    text = us_text(units) if in_us and units / 1e6 == ts else f"{ts!r}"
                    if miss(key, text, RSSI_TEXT[buf[last]]):
                        pos = end
                        continue
                else:
                    key = b""
                ts = units * resolution + ts_offset
                try:
                    if phdr and caplen > 4 and buf[pos + 32] == H4_EVENT:
                        advs = parse_hci_event(buf[pos + 28 : pos + 28 + caplen], ts, 5)
                    else:
                        advs = decoder(buf[pos + 28 : pos + 28 + caplen], ts, 0)
                except ValueError as exc:
                    advs = []
                    handle(
                        errors,
                        CorruptRecord(
                            f"packet skipped: {exc}", path=path, offset=chunks.base + pos
                        ),
                    )
                pos = end
                if packets is not None:
                    lane.pending = (  # type: ignore[union-attr]
                        key if len(advs) == 1 and hci_report_shape(key) else None
                    )
                yield from advs
            chunks.pos = pos
            if packets is not None and len(out) >= flush_at:  # a chunk's lines at most
                lane.flush()  # type: ignore[union-attr]
        # The slow path: one block of any type, each check with its own message.
        offset = chunks.base + chunks.pos
        hdr = read(8)
        if len(hdr) < 8:
            if hdr:
                handle(
                    errors,
                    TruncatedCapture("file ends inside a block header", path=path, offset=offset),
                )
            elif other_links and not seen_bluetooth:
                links = ", ".join(str(t) for t in sorted(other_links))
                raise UnsupportedLinkType(
                    f"no Bluetooth interface (link types {links}; we read {_SUPPORTED})", path=path
                )
            return
        if hdr[:4] == PCAPNG_SHB:
            magic = read(4)
            if magic == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif magic == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                err = CorruptCapture(
                    "section header with a bad byte-order magic", path=path, offset=offset
                )
                if first:
                    raise UnknownFormat(
                        "not a pcapng file (bad byte-order magic)", path=path, offset=offset
                    )
                handle(errors, err)
                return
            pair = struct.Struct(endian + "II").unpack
            epb_head = _EPB[endian].unpack_from
            trailer = _TRAILER[endian].unpack_from
            btype, total = pair(hdr)
            rest_len = total - 12
            least = 28  # a section header holds magic, version and section length
            interfaces = []  # a new section starts a new interface list
            cur = -1
        else:
            if first:
                raise UnknownFormat("not a pcapng file (no section header)", path=path, offset=0)
            btype, total = pair(hdr)
            rest_len = total - 8
            least = 12
        first = False
        if total < least or total % 4 or total > MAX_BLOCK:
            handle(
                errors,
                CorruptCapture(
                    f"block length {total} is impossible; the rest of the file cannot be read",
                    path=path,
                    offset=offset,
                ),
            )
            return
        rest = read(rest_len)
        if len(rest) < rest_len:
            handle(
                errors,
                TruncatedCapture(
                    f"file ends inside a block ({8 + len(rest)} of {total} bytes)",
                    path=path,
                    offset=offset,
                ),
            )
            return
        if rest[rest_len - 4 :] != hdr[4:]:  # trailing length, same byte order
            handle(
                errors,
                CorruptCapture(
                    "block's trailing length does not match its header; "
                    "the rest of the file cannot be read",
                    path=path,
                    offset=offset,
                ),
            )
            return
        body = rest[:-4]
        if lane is not None:
            lane.pending = None  # the slow path: not learnt
        try:
            advs = _block(btype, body, endian, interfaces, path, offset)
        except CorruptRecord as err:
            handle(errors, err)
            continue
        if btype == 1 and interfaces:
            if interfaces[-1].decoder is None:
                other_links.add(interfaces[-1].linktype)
            else:
                seen_bluetooth = True
        elif btype == 6:
            # _block read it, so the body holds the header and the interface exists.
            if_id = trailer(body, 0)[0]  # the first field, a u32 like the trailer
            iface = interfaces[if_id]
            if iface.decoder is not None:
                cur = if_id
                decoder = iface.decoder
                resolution = iface.resolution
                ts_offset = iface.ts_offset
        yield from advs


def _block(
    btype: int, body: bytes, endian: str, interfaces: list[_Interface], path: str, offset: int
) -> list[Advertisement]:
    if btype == 1:  # Interface Description Block
        try:
            iface = _interface(body, endian, path, offset)
        except CorruptCapture as exc:
            raise CorruptRecord(exc.reason, path=path, offset=exc.offset) from exc
        interfaces.append(iface)
        if iface.problem is not None:
            raise iface.problem
        return []
    if btype == 6:  # Enhanced Packet Block
        if len(body) < 20:
            raise CorruptRecord("enhanced packet block too short", path=path, offset=offset)
        if_id, ts_hi, ts_lo, caplen, _orig = struct.unpack_from(endian + "IIIII", body, 0)
        data = body[20 : 20 + caplen]
    elif btype == 3:  # Simple Packet Block: interface 0, no timestamp
        if len(body) < 4:
            raise CorruptRecord("simple packet block too short", path=path, offset=offset)
        if_id, ts_hi, ts_lo = 0, 0, 0
        caplen = len(body) - 4
        data = body[4:]
    elif btype == 2:  # obsolete Packet Block
        if len(body) < 20:
            raise CorruptRecord("packet block too short", path=path, offset=offset)
        if_id, _drops, ts_hi, ts_lo, caplen, _orig = struct.unpack_from(endian + "HHIIII", body, 0)
        data = body[20 : 20 + caplen]
    else:
        return []
    if len(data) < caplen:
        raise CorruptRecord(
            f"packet says {caplen} bytes, block holds {len(data)}", path=path, offset=offset
        )
    if if_id >= len(interfaces):
        raise CorruptRecord(f"packet for undeclared interface {if_id}", path=path, offset=offset)
    iface = interfaces[if_id]
    if iface.decoder is None:
        return []
    ts: float = ((ts_hi << 32) | ts_lo) * iface.resolution + iface.ts_offset
    try:
        advs: list[Advertisement] = iface.decoder(data, ts, 0)
        return advs
    except ValueError as exc:
        raise CorruptRecord(f"packet skipped: {exc}", path=path, offset=offset) from exc
