"""Link-layer framing → advertisements, one function per btsnoop datalink / pcap link type.

Each takes the bytes of one captured packet and its time and returns the advertisements in it
(an empty list for packets that are not advertising reports). Malformed packets raise
`ValueError`; the file readers add the byte offset.
"""

from __future__ import annotations

from collections.abc import Callable

from ..advertisement import Advertisement
from .hci import H4_EVENT, parse_hci_event, parse_ll

LinkDecoder = Callable[[bytes, float, int], list[Advertisement]]

# btsnoop datalinks (BlueZ src/shared/btsnoop.h; Wireshark wiretap/btsnoop.c):
# 1001 un-encapsulated HCI (H1), 1002 HCI UART (H4), 2001 Linux monitor (btmon).
BTSNOOP_HCI = 1001
BTSNOOP_H4 = 1002
BTSNOOP_MONITOR = 2001

# pcap LINKTYPE_* values (libpcap pcap/dlt.h, https://www.tcpdump.org/linktypes.html).
LINKTYPE_BLUETOOTH_HCI_H4 = 187
LINKTYPE_BLUETOOTH_HCI_H4_WITH_PHDR = 201
LINKTYPE_BLUETOOTH_LE_LL = 251
LINKTYPE_BLUETOOTH_LINUX_MONITOR = 254
LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR = 256
LINKTYPE_NORDIC_BLE = 272

# Linux monitor opcode of an HCI event (BlueZ src/shared/btsnoop.h BTSNOOP_OPCODE_EVENT_PKT).
_MONITOR_EVENT = 3
# Nordic sniffer packet ids carrying an over-the-air packet (Wireshark packet-nordic_ble.c:
# 0x06 EVENT_PACKET; protocol version 3 splits it into 0x02 advertising / 0x06 data PDUs).
_NORDIC_PACKET_IDS = (0x02, 0x06)


def h4(data: bytes, ts: float, flags: int = 0) -> list[Advertisement]:
    """HCI H4: one packet-type byte (0x04 = event) before the HCI packet."""
    if not data or data[0] != H4_EVENT:
        return []
    return parse_hci_event(data, ts, 1)


def h4_with_phdr(data: bytes, ts: float, flags: int = 0) -> list[Advertisement]:
    """LINKTYPE 201: a 4-byte direction pseudo-header, then H4."""
    if len(data) < 5:
        raise ValueError(f"{len(data)} bytes is shorter than the direction header + H4 byte")
    if data[4] != H4_EVENT:
        return []
    return parse_hci_event(data, ts, 5)


def monitor_pcap(data: bytes, ts: float, flags: int = 0) -> list[Advertisement]:
    """LINKTYPE 254: adapter index u16 BE, opcode u16 BE, then the HCI packet."""
    if len(data) < 4:
        raise ValueError(f"{len(data)} bytes is shorter than the monitor header")
    if data[2] != 0 or data[3] != _MONITOR_EVENT:  # opcode u16 BE
        return []
    return parse_hci_event(data, ts, 4)


def le_ll(data: bytes, ts: float, flags: int = 0) -> list[Advertisement]:
    """LINKTYPE 251: the LL packet from the access address on (no RSSI)."""
    return parse_ll(data, ts, None)


def le_ll_with_phdr(data: bytes, ts: float, flags: int = 0) -> list[Advertisement]:
    """LINKTYPE 256: 10-byte radio header (channel, signal dBm, noise, AA offenses, reference
    AA u32 LE, flags u16 LE; flag 0x0002 = signal valid), then the LL packet."""
    if len(data) < 10:
        raise ValueError(f"{len(data)} bytes is shorter than the LE LL radio header")
    phdr_flags = data[8] | (data[9] << 8)
    rssi = None
    if phdr_flags & 0x0002:
        rssi = data[1] - 256 if data[1] > 127 else data[1]
    return parse_ll(data[10:], ts, rssi)


def nordic_ble(data: bytes, ts: float, flags: int = 0) -> list[Advertisement]:
    """LINKTYPE 272 (nRF Sniffer): board id, 6-byte UART header (protocol version at offset 3,
    packet id at offset 6), then a packet header of `header_len` bytes (flags, channel,
    RSSI as a positive number of -dBm, event counter, timestamp), then the LL packet.
    Layout from Wireshark epan/dissectors/packet-nordic_ble.c."""
    if len(data) < 8:
        raise ValueError(f"{len(data)} bytes is shorter than the nRF Sniffer header")
    if data[1] == 0xBE and data[2] == 0xEF:  # sniffer 0.9.7 legacy framing: not read
        return []
    if data[6] not in _NORDIC_PACKET_IDS:
        return []
    header_len = data[7]
    if header_len < 4 or 7 + header_len > len(data):
        raise ValueError(f"nRF Sniffer packet header length {header_len} is impossible")
    rssi = -data[10]
    return parse_ll(data[7 + header_len :], ts, rssi)


def btsnoop_hci(data: bytes, ts: float, flags: int) -> list[Advertisement]:
    """btsnoop 1001: no H4 byte; flags bit 0 = received, bit 1 = command/event → 3 = event."""
    if flags & 3 != 3:
        return []
    return parse_hci_event(data, ts)


def btsnoop_monitor(data: bytes, ts: float, flags: int) -> list[Advertisement]:
    """btsnoop 2001: flags = (adapter index << 16) | opcode; opcode 3 = event."""
    if flags & 0xFFFF != _MONITOR_EVENT:
        return []
    return parse_hci_event(data, ts)


PCAP_LINKS: dict[int, LinkDecoder] = {
    LINKTYPE_BLUETOOTH_HCI_H4: h4,
    LINKTYPE_BLUETOOTH_HCI_H4_WITH_PHDR: h4_with_phdr,
    LINKTYPE_BLUETOOTH_LE_LL: le_ll,
    LINKTYPE_BLUETOOTH_LINUX_MONITOR: monitor_pcap,
    LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR: le_ll_with_phdr,
    LINKTYPE_NORDIC_BLE: nordic_ble,
}

BTSNOOP_LINKS: dict[int, LinkDecoder] = {
    BTSNOOP_HCI: btsnoop_hci,
    BTSNOOP_H4: h4,
    BTSNOOP_MONITOR: btsnoop_monitor,
}
