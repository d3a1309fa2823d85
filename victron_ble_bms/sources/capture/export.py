"""Write advertisements as pcapng (link type 201, HCI H4 with direction header) for Wireshark.

Each advertisement becomes one HCI LE Meta event, as a controller would have reported it:
an LE Advertising Report (subevent 0x02) when its AD data fits the 31-byte legacy limit,
otherwise an LE Extended Advertising Report (0x0D) — Core spec Vol 4 Part E §7.7.65.2/.13.
Blocks per draft-ietf-opsawg-pcapng: SHB, one IDB (if_tsresol 6 = µs), one EPB per event.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from ..advertisement import Advertisement
from .hci import AD_COMPLETE_NAME, AD_MANUFACTURER
from .sink import RecordSink

LINKTYPE_BLUETOOTH_HCI_H4_WITH_PHDR = 201
_DIRECTION_RECEIVED = 1  # pseudo-header: 0 = sent by the host, 1 = received
_EVENT_TYPES = {"ADV_IND": 0x00, "ADV_SCAN_IND": 0x02, "ADV_NONCONN_IND": 0x03, "SCAN_RSP": 0x04}
_LEGACY_MAX = 31


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def ad_structures(adv: Advertisement) -> bytes:
    """The AD data an advertiser would send: the name, then manufacturer data per company."""
    out = bytearray()
    if adv.name:
        name = adv.name.encode("utf-8")[:29]
        out += bytes((len(name) + 1, AD_COMPLETE_NAME)) + name
    for company, data in adv.manufacturer_data.items():
        out += bytes((len(data) + 3, AD_MANUFACTURER)) + company.to_bytes(2, "little") + data
    return bytes(out)


def hci_event(adv: Advertisement) -> bytes:
    """One advertisement as an H4 HCI event (type byte 0x04 first)."""
    address = bytes.fromhex(adv.address.replace(":", ""))[::-1]
    addr_type = 1 if adv.address_type == "random" else 0
    rssi = 127 if adv.rssi is None else max(-127, min(126, adv.rssi))
    data = ad_structures(adv)
    kind = adv.origin.rsplit(":", 1)[-1]
    if len(data) <= _LEGACY_MAX:
        params = (
            bytes((0x02, 1, _EVENT_TYPES.get(kind, 0x00), addr_type))
            + address
            + bytes((len(data),))
            + data
            + struct.pack("b", rssi)
        )
    else:
        # Extended report, complete data, non-legacy, scannable=0 connectable=0; primary PHY
        # LE 1M, no secondary PHY, SID 0xFF (none), TX power 127 (n/a), interval 0.
        params = (
            bytes((0x0D, 1))
            + struct.pack("<HB", 0x0000, addr_type)
            + address
            + struct.pack("<BBBbbHB", 1, 0, 0xFF, 127, rssi, 0, 0)
            + b"\0" * 6
            + bytes((len(data),))
            + data
        )
    if len(params) > 255:
        raise ValueError(f"advertisement from {adv.address} too large for one HCI event")
    return bytes((0x04, 0x3E, len(params))) + params


class PcapngWriter:
    """Stream advertisements into a pcapng file Wireshark and tshark open (whole blocks only:
    `RecordSink`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._sink = RecordSink(self.path)
        shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        # if_tsresol (option 9) = 6: microseconds; then opt_endofopt.
        idb = struct.pack("<HHI", LINKTYPE_BLUETOOTH_HCI_H4_WITH_PHDR, 0, 0)
        idb += struct.pack("<HHB3x", 9, 1, 6) + struct.pack("<HH", 0, 0)
        self._sink.write(_block(0x0A0D0D0A, shb) + _block(1, idb), record=False)

    @property
    def count(self) -> int:
        return self._sink.count

    def write(self, adv: Advertisement) -> None:
        packet = struct.pack(">I", _DIRECTION_RECEIVED) + hci_event(adv)
        ts = max(0, round(adv.ts * 1e6))
        epb = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(packet), len(packet))
        self._sink.write(_block(6, epb + packet))

    def close(self) -> None:
        self._sink.close()

    def __enter__(self) -> PcapngWriter:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class PcapWriter:
    """Classic pcap (libpcap 2.4, µs timestamps), link type 201 like `PcapngWriter` — for
    tools that read only pcap. Whole records only (`RecordSink`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._sink = RecordSink(self.path)
        # magic, version 2.4, thiszone 0, sigfigs 0, snaplen, network (pcap-savefile(5))
        head = struct.pack(
            "<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 0xFFFF, LINKTYPE_BLUETOOTH_HCI_H4_WITH_PHDR
        )
        self._sink.write(head, record=False)

    @property
    def count(self) -> int:
        return self._sink.count

    def write(self, adv: Advertisement) -> None:
        packet = struct.pack(">I", _DIRECTION_RECEIVED) + hci_event(adv)
        ts = round(adv.ts * 1e6)
        seconds, micros = divmod(ts, 1_000_000)
        if not 0 <= seconds <= 0xFFFFFFFF:
            raise ValueError(f"timestamp {adv.ts!r} does not fit a pcap record (1970–2106)")
        self._sink.write(struct.pack("<IIII", seconds, micros, len(packet), len(packet)) + packet)

    def close(self) -> None:
        self._sink.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def export_pcapng(advertisements: Iterable[Advertisement], path: str | os.PathLike[str]) -> int:
    """Write all advertisements to `path` as pcapng; returns how many were written."""
    with PcapngWriter(path) as writer:
        for adv in advertisements:
            writer.write(adv)
        return writer.count
