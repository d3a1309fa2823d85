"""Regenerate the sample captures with independent tools: scapy builds the HCI events and
writes the pcap; editcap (Wireshark) converts it to btsnoop (datalink 1002, as Android writes).

    python captures/make_samples.py

Frames: the real SmartShunt advertisement (keshavdv/victron-ble tests) and records encoded
with the protocol encoder under the demo keys in captures/keys.toml.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from scapy.layers.bluetooth import HCI_Hdr, HCI_PHDR_Hdr  # noqa: E402
from scapy.utils import wrpcap  # noqa: E402

from tests.captures.frames import ADVS, T0, hci_extended_event, hci_legacy_event  # noqa: E402


def main() -> None:
    pkts = []
    for i in range(60):  # one minute of adverts, 1 s apart, each device in turn
        a = ADVS[i % len(ADVS)]
        event = hci_legacy_event([a]) if i % 4 else hci_extended_event([a], legacy=True)
        # 201: H4 with the direction pseudo-header; editcap needs the direction for btsnoop.
        p = HCI_PHDR_Hdr(direction=1) / HCI_Hdr(type=4) / event
        p.time = T0 + i
        pkts.append(p)
    pcap = HERE / "sample-hci.pcap"
    wrpcap(str(pcap), pkts, linktype=201)
    subprocess.run(  # noqa: S603 - fixed argv, editcap from PATH by design
        ["editcap", "-F", "btsnoop", str(pcap), str(HERE / "sample-android.btsnoop")],  # noqa: S607
        check=True,
    )
    print(f"wrote {pcap.name} and sample-android.btsnoop ({len(pkts)} adverts)")


if __name__ == "__main__":
    main()
