"""Frames and fixture files for the capture tests, made WITHOUT our own capture code:
pcap/pcapng by scapy, btsnoop by the small writer below (it shares nothing with the readers),
checked against tshark.

Frames: the real SmartShunt advertisement from keshavdv/victron-ble's tests
(docs/protocol.md §6) and records encoded with the protocol encoder.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from victron_ble_bms.protocol import LynxSmartBmsRecord, SmartLithiumRecord, encode
from victron_ble_bms.protocol.enums import (
    BalancerStatus,
    BmsError,
    BmsFlags,
    SmartLithiumErrorFlags,
)

# Real capture, SmartShunt 500A/50mV (record 0x02), key from the same source.
SHUNT_ADDRESS = "D1:23:45:67:89:AB"
SHUNT_KEY = "aff4d0995b7d1e176c0c33ecb9e70dcd"
SHUNT_DATA = bytes.fromhex("100289a302b040af925d09a4d89aa0128bdef48c6298a9")

LITHIUM_ADDRESS = "E4:00:00:00:00:01"
LITHIUM_KEY = "11112222333344445555666677778888"
LYNX_ADDRESS = "E4:00:00:00:00:02"
LYNX_KEY = "33334444555566667777888899990000"

LITHIUM = SmartLithiumRecord(
    bms_flags=BmsFlags.ALLOWED_TO_CHARGE | BmsFlags.ALLOWED_TO_DISCHARGE,
    error_flags=SmartLithiumErrorFlags(0),
    cell_voltages_v=(3.31, 3.32, 3.30, 3.31, None, None, None, None),
    battery_voltage_v=13.24,
    balancer_status=BalancerStatus.BALANCED,
    battery_temperature_c=20,
)
LYNX = LynxSmartBmsRecord(
    bms_error=BmsError.NONE,
    ttg_min=600,
    battery_voltage_v=26.2,
    battery_current_a=-8.5,
    io_status=0b010101,
    warnings_alarms=0,
    soc_pct=77.0,
    consumed_ah=-40.0,
    temperature_c=22,
)
LITHIUM_DATA = encode(LITHIUM, key=LITHIUM_KEY, nonce=7, model_id=0xA0E5)
LYNX_DATA = encode(LYNX, key=LYNX_KEY, nonce=9, model_id=0xA3E6)

KEYS = {SHUNT_ADDRESS: SHUNT_KEY, LITHIUM_ADDRESS: LITHIUM_KEY, LYNX_ADDRESS: LYNX_KEY}

T0 = 1_700_000_000.0


@dataclass(frozen=True)
class Adv:
    """What a fixture contains, written independently of victron_ble_bms.sources."""

    address: str
    data: bytes  # Victron manufacturer data without the company id
    rssi: int
    random: bool = False
    name: str | None = None


ADVS = [
    Adv(SHUNT_ADDRESS, SHUNT_DATA, -62, random=True, name="SmartShunt"),
    Adv(LITHIUM_ADDRESS, LITHIUM_DATA, -70),
    Adv(LYNX_ADDRESS, LYNX_DATA, -81, random=True),
]


# --- scapy builders (independent of our code) ------------------------------------------


def _eir(a: Adv) -> list[object]:
    from scapy.layers.bluetooth import (
        EIR_CompleteLocalName,
        EIR_Hdr,
        EIR_Manufacturer_Specific_Data,
    )

    items: list[object] = [
        EIR_Hdr() / EIR_Manufacturer_Specific_Data(company_identifier=0x02E1) / a.data
    ]
    if a.name:
        items.append(EIR_Hdr() / EIR_CompleteLocalName(local_name=a.name.encode()))
    return items


def hci_legacy_event(advs: Sequence[Adv]) -> object:
    """One LE Advertising Report event holding several reports."""
    from scapy.layers.bluetooth import (
        HCI_Event_Hdr,
        HCI_Event_LE_Meta,
        HCI_LE_Meta_Advertising_Report,
        HCI_LE_Meta_Advertising_Reports,
    )

    reports = [
        HCI_LE_Meta_Advertising_Report(
            type=3, addr_type=int(a.random), addr=a.address.lower(), data=_eir(a), rssi=a.rssi
        )
        for a in advs
    ]
    return HCI_Event_Hdr() / HCI_Event_LE_Meta() / HCI_LE_Meta_Advertising_Reports(reports=reports)


def hci_extended_event(advs: Sequence[Adv], *, legacy: bool) -> object:
    from scapy.layers.bluetooth import (
        HCI_Event_Hdr,
        HCI_Event_LE_Meta,
        HCI_LE_Meta_Extended_Advertising_Report,
        HCI_LE_Meta_Extended_Advertising_Reports,
    )

    reports = [
        HCI_LE_Meta_Extended_Advertising_Report(
            legacy=int(legacy),
            addr_type=int(a.random),
            addr=a.address.lower(),
            primary_phy=1,
            rssi=a.rssi,
            data=_eir(a),
        )
        for a in advs
    ]
    return (
        HCI_Event_Hdr()
        / HCI_Event_LE_Meta()
        / HCI_LE_Meta_Extended_Advertising_Reports(reports=reports)
    )


def ll_packet(a: Adv, pdu: str = "ADV_NONCONN_IND") -> object:
    from scapy.layers import bluetooth4LE as le

    cls = {
        "ADV_IND": le.BTLE_ADV_IND,
        "ADV_NONCONN_IND": le.BTLE_ADV_NONCONN_IND,
        "ADV_SCAN_IND": le.BTLE_ADV_SCAN_IND,
        "SCAN_RSP": le.BTLE_SCAN_RSP,
    }[pdu]
    return le.BTLE() / le.BTLE_ADV(TxAdd=int(a.random)) / cls(AdvA=a.address.lower(), data=_eir(a))


LL_PDUS = ("ADV_IND", "ADV_NONCONN_IND", "ADV_SCAN_IND", "SCAN_RSP")


def packets_for(linktype: int, advs: Sequence[Adv]) -> list[object]:
    """scapy packets of one link type carrying `advs` (HCI types: legacy single, legacy
    multi-report, extended legacy, extended non-legacy events)."""
    from scapy.layers import bluetooth as bt
    from scapy.layers import bluetooth4LE as le

    if linktype in (187, 201, 254):
        events = [
            hci_legacy_event(advs[:1]),
            hci_legacy_event(advs[1:]),  # several reports in one event
            hci_extended_event(advs[:2], legacy=True),
            hci_extended_event(advs[2:], legacy=False),
        ]
        if linktype == 187:
            pkts = [bt.HCI_Hdr(type=4) / e for e in events]
        elif linktype == 201:
            pkts = [bt.HCI_PHDR_Hdr(direction=1) / bt.HCI_Hdr(type=4) / e for e in events]
        else:
            pkts = [bt.HCI_Mon_Pcap_Hdr(adapter_id=0, opcode=3) / e for e in events]
    elif linktype == 251:
        pkts = [ll_packet(a, LL_PDUS[i % 4]) for i, a in enumerate(advs)]
    elif linktype == 256:
        pkts = [
            le.BTLE_RF(rf_channel=37, signal=a.rssi, sig_power_valid=1)
            / ll_packet(a, LL_PDUS[i % 4])
            for i, a in enumerate(advs)
        ]
    elif linktype == 272:
        from scapy.contrib import nrf_sniffer as nrf

        pkts = []
        for i, a in enumerate(advs):
            ll = ll_packet(a, LL_PDUS[i % 4])
            event = nrf.NRF2_Packet_Event(
                header_len=10,
                phy=0,
                mic=0,
                encrypted=0,
                direction=0,
                crc_ok=1,
                rf_channel=37,
                rssi=-a.rssi,
                event_counter=0,
                delta_time=0,
            )
            body = bytes(event / ll)
            # Board id, then the UART header: payload length u16 LE, protocol version 2,
            # packet counter u16 LE, packet id 6 = EVENT_PACKET (Wireshark packet-nordic_ble.c).
            head = struct.pack("<BHBHB", 0, len(body), 2, i, 6)
            pkts.append(nrf.NRFS2_PCAP(head + body))
    else:  # pragma: no cover
        raise ValueError(linktype)
    for i, p in enumerate(pkts):
        p.time = T0 + i  # type: ignore[attr-defined]
    return pkts


def write_scapy(path: Path, linktype: int, advs: Sequence[Adv], *, ng: bool) -> Path:
    from scapy.utils import wrpcap, wrpcapng

    pkts = packets_for(linktype, advs)
    if ng:
        wrpcapng(str(path), pkts)  # link type from the packet class (conf.l2types)
    else:
        wrpcap(str(path), pkts, linktype=linktype)
    return path


# --- a btsnoop writer that shares no code with the reader --------------------------------

BTSNOOP_EPOCH_US = 0x00DCDDB30F2F8000  # Wireshark wiretap/btsnoop.c: 0000-01-01 → 1970


def write_btsnoop(path: Path, datalink: int, advs: Sequence[Adv]) -> Path:
    """HCI events carrying `advs` in a btsnoop file of the given datalink."""
    events = [
        bytes(hci_legacy_event(advs[:1])),  # type: ignore[call-overload]
        bytes(hci_legacy_event(advs[1:])),  # type: ignore[call-overload]
        bytes(hci_extended_event(advs, legacy=True)),  # type: ignore[call-overload]
    ]
    out = bytearray(b"btsnoop\x00" + struct.pack(">II", 1, datalink))
    # A command record first (HCI Reset), which must be skipped: flags 2 = command sent.
    records: list[tuple[int, bytes]] = [(2, b"\x03\x0c\x00")]
    for e in events:
        records.append((3, e))  # received event
    for i, (flags, pkt) in enumerate(records):
        if datalink == 1002:
            pkt = (b"\x01" if flags == 2 else b"\x04") + pkt
        elif datalink == 2001:
            flags = 2 if flags == 2 else 3  # (adapter 0 << 16) | opcode: 2 command, 3 event
        ts = int((T0 + i) * 1_000_000) + BTSNOOP_EPOCH_US
        out += struct.pack(">IIIIq", len(pkt), len(pkt), flags, 0, ts) + pkt
    path.write_bytes(out)
    return path


# --- tshark, the oracle ---------------------------------------------------------------------


def have_tshark() -> bool:
    return shutil.which("tshark") is not None


def tshark_adverts(path: Path) -> list[tuple[str, str, int | None]]:
    """(address, Victron payload hex, rssi) per advertisement, in order, as tshark sees them."""
    fields = [
        "bthci_evt.bd_addr",
        "btle.advertising_address",
        "btcommon.eir_ad.entry.company_id",
        "btcommon.eir_ad.entry.data",
        "bthci_evt.rssi",
        "btle_rf.signal_dbm",
        "nordic_ble.rssi",
    ]
    cmd = ["tshark", "-r", str(path), "-T", "fields", "-E", "occurrence=a", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout
    result = []
    for line in out.splitlines():
        cols = [c.split(",") if c else [] for c in line.split("|")]
        addrs = cols[0] or cols[1]
        companies, datas = cols[2], cols[3]
        rssis = cols[4] or cols[5] or cols[6]
        victron = [d for c, d in zip(companies, datas, strict=False) if int(c, 0) == 0x02E1]
        for i, addr in enumerate(addrs):
            rssi = int(rssis[i]) if i < len(rssis) else None
            result.append((addr.upper(), victron[i] if i < len(victron) else "", rssi))
    return result
