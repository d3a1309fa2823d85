"""What the capture readers share: HCI LE advertising events, LL advertising PDUs, AD structures.

Layouts (docs/ecosystem.md §5.2, BlueZ monitor/bt.h, Bluetooth Core spec Vol 4 Part E §7.7.65
and Vol 6 Part B §2.3):
* HCI event 0x3E LE Meta, subevent 0x02 LE Advertising Report: num_reports, then per report
  event_type, addr_type, addr[6] (little-endian), data_len, data, rssi (i8). Reports are laid
  out one after another, as BlueZ, Wireshark and scapy read them.
* subevent 0x0D LE Extended Advertising Report: per report event_type u16 (bit 4 = legacy PDU),
  addr_type, addr[6], primary_phy, secondary_phy, sid, tx_power, rssi (i8), interval u16,
  direct_addr_type, direct_addr[6], data_len, data.
* LL advertising channel PDU: access address 0x8E89BED6 (LE), header (PDU type in bits 0-3,
  TxAdd in bit 6), length, AdvA[6], AdvData, CRC[3].
* AD structures: length, type, data; 0x08/0x09 shortened/complete name, 0xFF manufacturer
  specific data (company id u16 LE first).

Functions raise `ValueError` with a short reason on malformed input; the readers turn that into
a `CorruptRecord` with the file offset.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..advertisement import Advertisement

# H4 packet type of an HCI event (Core spec Vol 4 Part A §2).
H4_EVENT = 0x04
HCI_EVT_LE_META = 0x3E
LE_ADVERTISING_REPORT = 0x02
LE_EXTENDED_ADVERTISING_REPORT = 0x0D

ADV_ACCESS_ADDRESS = 0x8E89BED6  # Core spec Vol 6 Part B §2.1.2

# LE Advertising Report event types (Core spec Vol 4 Part E §7.7.65.2).
_LEGACY_EVENT_NAMES = {
    0x00: "ADV_IND",
    0x01: "ADV_DIRECT_IND",
    0x02: "ADV_SCAN_IND",
    0x03: "ADV_NONCONN_IND",
    0x04: "SCAN_RSP",
}
_LEGACY_ORIGINS = {t: "hci:le_adv_report:" + name for t, name in _LEGACY_EVENT_NAMES.items()}
# LL advertising PDU types that carry AdvA + AdvData (Core spec Vol 6 Part B §2.3).
LL_PDU_NAMES = {0x0: "ADV_IND", 0x2: "ADV_NONCONN_IND", 0x4: "SCAN_RSP", 0x6: "ADV_SCAN_IND"}
_ADDRESS_TYPES = {0: "public", 1: "random", 2: "public", 3: "random"}

# (event type, address type) bytes → (address type, origin), one lookup per report.
_LEGACY_KINDS: dict[bytes, tuple[str | None, str]] = {
    bytes((event, addr)): (_ADDRESS_TYPES[addr], _LEGACY_ORIGINS[event])
    for event in _LEGACY_ORIGINS
    for addr in _ADDRESS_TYPES
}

AD_SHORT_NAME = 0x08
AD_COMPLETE_NAME = 0x09
AD_MANUFACTURER = 0xFF

_RSSI_UNAVAILABLE = 127  # Core spec: 127 = RSSI not available


_ADDRESSES: dict[bytes, str] = {}  # raw → text; a capture has few devices (bounded below)

advertisement: Callable[..., Advertisement] = Advertisement
"""`Advertisement(ts, address, manufacturer_data, rssi, name, address_type, origin)`."""


def format_address(raw: bytes) -> str:
    """Six address bytes as sent on air (little-endian) → 'AA:BB:CC:DD:EE:FF'."""
    text = _ADDRESSES.get(raw)
    if text is None:
        text = raw[::-1].hex(":").upper()
        if len(_ADDRESSES) >= 65536:
            _ADDRESSES.clear()
        _ADDRESSES[bytes(raw)] = text
    return text


def parse_ad(data: bytes) -> tuple[dict[int, bytes], str | None]:
    """AD structures → (company id → manufacturer data without the company id, name)."""
    n = len(data)
    if n > 3 and data[0] == n - 1 and data[1] == AD_MANUFACTURER:
        # The usual Victron advertisement: one manufacturer-data structure and nothing else.
        return {data[2] | (data[3] << 8): data[4:]}, None
    manufacturer: dict[int, bytes] = {}
    name: str | None = None
    short_name: str | None = None
    i = 0
    n = len(data)
    while i < n:
        length = data[i]
        if length == 0:  # padding to the end of the PDU (Core spec Vol 3 Part C §11)
            break
        end = i + 1 + length
        if end > n:
            raise ValueError(
                f"AD structure of {length} bytes runs past the data ({n - i - 1} left)"
            )
        ad_type = data[i + 1]
        if ad_type == AD_MANUFACTURER:
            if length < 3:
                raise ValueError("manufacturer data AD structure shorter than a company id")
            company = data[i + 2] | (data[i + 3] << 8)
            manufacturer[company] = bytes(data[i + 4 : end])
        elif ad_type == AD_COMPLETE_NAME:
            name = bytes(data[i + 2 : end]).decode("utf-8", "replace")
        elif ad_type == AD_SHORT_NAME:
            short_name = bytes(data[i + 2 : end]).decode("utf-8", "replace")
        i = end
    return manufacturer, name if name is not None else short_name


def _rssi(byte: int) -> int | None:
    value = byte - 256 if byte > 127 else byte
    return None if value == _RSSI_UNAVAILABLE else value


def parse_hci_event(buf: bytes, ts: float, at: int = 0) -> list[Advertisement]:
    """An HCI event starting at `buf[at]` (the event code, no H4 byte) → its advertisements.

    Events other than LE advertising reports give an empty list.
    """
    if len(buf) < at + 3 or buf[at] != HCI_EVT_LE_META:
        return []
    plen = buf[at + 1]
    if (
        plen > 11
        and at + plen + 2 <= len(buf)  # first: every index below is inside the event
        and buf[at + 2] == LE_ADVERTISING_REPORT
        and buf[at + 3] == 1
        and plen == 12 + buf[at + 12]
    ):
        # One legacy report filling the event exactly (what controllers send): no slicing of
        # the event, no loop; the usual AD data (one manufacturer structure) inline.
        end = at + plen + 1
        if plen > 15 and buf[at + 13] == plen - 13 and buf[at + 14] == AD_MANUFACTURER:
            md: dict[int, bytes] = {buf[at + 15] | (buf[at + 16] << 8): buf[at + 17 : end]}
            name = None
        else:
            md, name = parse_ad(buf[at + 13 : end])
        kind: tuple[str | None, str] | None = _LEGACY_KINDS.get(buf[at + 4 : at + 6])
        if kind is None:
            kind = (
                _ADDRESS_TYPES.get(buf[at + 5]),
                _LEGACY_ORIGINS.get(buf[at + 4]) or "hci:le_adv_report:" + str(buf[at + 4]),
            )
        r = buf[end]
        return [
            advertisement(
                ts,
                format_address(buf[at + 6 : at + 12]),
                md,
                None if r == _RSSI_UNAVAILABLE else (r - 256 if r > 127 else r),
                name,
                kind[0],
                kind[1],
            )
        ]
    if at:
        buf = buf[at:]
    if plen + 2 > len(buf):
        raise ValueError(f"HCI event says {plen} parameter bytes, only {len(buf) - 2} present")
    sub = buf[2]
    if sub == LE_ADVERTISING_REPORT:
        return _legacy_reports(buf, 3, plen + 2, ts)
    if sub == LE_EXTENDED_ADVERTISING_REPORT:
        return _extended_reports(buf, 3, plen + 2, ts)
    return []


def _legacy_reports(buf: bytes, i: int, end: int, ts: float) -> list[Advertisement]:
    if i >= end:
        raise ValueError("LE Advertising Report without a report count")
    count = buf[i]
    i += 1
    out = []
    for _ in range(count):
        if i + 9 > end:
            raise ValueError("LE Advertising Report cut short in a report header")
        event_type = buf[i]
        addr_type = buf[i + 1]
        address = format_address(buf[i + 2 : i + 8])
        dlen = buf[i + 8]
        data_end = i + 9 + dlen
        if data_end + 1 > end:
            raise ValueError(f"LE Advertising Report data ({dlen} bytes) runs past the event")
        md, name = parse_ad(buf[i + 9 : data_end])
        out.append(
            advertisement(
                ts,
                address,
                md,
                _rssi(buf[data_end]),
                name,
                _ADDRESS_TYPES.get(addr_type),
                _LEGACY_ORIGINS.get(event_type) or "hci:le_adv_report:" + str(event_type),
            )
        )
        i = data_end + 1
    return out


def _extended_reports(buf: bytes, i: int, end: int, ts: float) -> list[Advertisement]:
    if i >= end:
        raise ValueError("LE Extended Advertising Report without a report count")
    count = buf[i]
    i += 1
    out = []
    for _ in range(count):
        if i + 24 > end:
            raise ValueError("LE Extended Advertising Report cut short in a report header")
        (event_type,) = struct.unpack_from("<H", buf, i)
        addr_type = buf[i + 2]
        address = format_address(buf[i + 3 : i + 9])
        rssi = buf[i + 13]
        dlen = buf[i + 23]
        data_end = i + 24 + dlen
        if data_end > end:
            raise ValueError(f"extended report data ({dlen} bytes) runs past the event")
        md, name = parse_ad(buf[i + 24 : data_end])
        kind = "legacy" if event_type & 0x10 else "extended"
        if event_type & 0x08:
            kind += ":SCAN_RSP"
        out.append(
            advertisement(
                ts,
                address,
                md,
                _rssi(rssi),
                name,
                _ADDRESS_TYPES.get(addr_type),
                "hci:le_ext_adv_report:" + kind,
            )
        )
        i = data_end
    return out


def parse_ll(buf: bytes, ts: float, rssi: int | None) -> list[Advertisement]:
    """An LL packet starting at the access address → its advertisement (or nothing).

    Only the advertising access address and the four PDU types that carry AdvA + AdvData are
    read; data-channel and other advertising PDUs give an empty list.
    """
    if len(buf) < 6:
        raise ValueError(f"LL packet of {len(buf)} bytes is shorter than its header")
    if int.from_bytes(buf[0:4], "little") != ADV_ACCESS_ADDRESS:
        return []
    header = buf[4]
    kind = LL_PDU_NAMES.get(header & 0x0F)
    if kind is None:
        return []
    length = buf[5]
    if 6 + length > len(buf):
        raise ValueError(f"LL PDU says {length} bytes, only {len(buf) - 6} present")
    if length < 6:
        raise ValueError(f"{kind} PDU of {length} bytes has no room for AdvA")
    md, name = parse_ad(buf[12 : 6 + length])
    return [
        advertisement(
            ts,
            format_address(buf[6:12]),
            md,
            rssi,
            name,
            "random" if header & 0x40 else "public",
            "ll:" + kind,
        )
    ]
