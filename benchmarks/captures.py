"""Capture reading + decoding speed and memory: frames/s for a large btsnoop and pcapng file
decoded to records, and peak memory (which must not grow with the file size).

    python benchmarks/captures.py [FRAMES]      # default 1,000,000

Frames are encoded with the protocol encoder, every one with a new nonce (no caching helps).
"""

from __future__ import annotations

import resource
import struct
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from victron_ble_bms.protocol import SmartLithiumRecord, encode
from victron_ble_bms.protocol.enums import BalancerStatus, BmsFlags, SmartLithiumErrorFlags
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture import PcapngWriter, open_capture
from victron_ble_bms.sources.capture.export import hci_event
from victron_ble_bms.sources.readings import KeyStatus, decode_advertisement

KEY = "11112222333344445555666677778888"
ADDRESS = "E4:00:00:00:00:01"
RECORD = SmartLithiumRecord(
    bms_flags=BmsFlags.ALLOWED_TO_CHARGE | BmsFlags.ALLOWED_TO_DISCHARGE,
    error_flags=SmartLithiumErrorFlags(0),
    cell_voltages_v=(3.31, 3.32, 3.30, 3.31, None, None, None, None),
    battery_voltage_v=13.24,
    balancer_status=BalancerStatus.BALANCED,
    battery_temperature_c=20,
)


def _adverts(n: int) -> list[Advertisement]:
    # 4096 distinct frames (nonces), repeated: the file is big, the build is quick.
    return [
        Advertisement(
            ts=1_700_000_000.0 + i,
            address=ADDRESS,
            manufacturer_data={0x02E1: encode(RECORD, key=KEY, nonce=i, model_id=0xA0E5)},
            rssi=-60,
        )
        for i in range(min(n, 4096))
    ]


def write_btsnoop(path: Path, n: int) -> None:
    events = [hci_event(a) for a in _adverts(n)]
    with path.open("wb") as f:
        f.write(b"btsnoop\0" + struct.pack(">II", 1, 1002))
        for i in range(n):
            e = events[i % len(events)]
            f.write(struct.pack(">IIIIq", len(e), len(e), 3, 0, 0x00E03AB44A676000 + i) + e)


def write_pcapng(path: Path, n: int) -> None:
    adverts = _adverts(n)
    with PcapngWriter(path) as w:
        for i in range(n):
            w.write(adverts[i % len(adverts)])


def _run(path: Path, decode: bool) -> int:
    keys = {ADDRESS: bytes.fromhex(KEY)}
    frames = 0
    for adv in open_capture(path):
        frames += 1
        if decode:
            assert decode_advertisement(adv, keys).status is KeyStatus.OK
    return frames


def measure(path: Path) -> tuple[int, float, float, int]:
    """(frames, read-only frames/s, read+decode frames/s, peak traced bytes)."""
    start = time.perf_counter()
    frames = _run(path, decode=False)
    read_rate = frames / (time.perf_counter() - start)
    start = time.perf_counter()
    _run(path, decode=True)
    decode_rate = frames / (time.perf_counter() - start)
    tracemalloc.start()  # a separate pass: tracemalloc slows Python down several times
    _run(path, decode=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return frames, read_rate, decode_rate, peak


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as d:
        for name, writer in (("btsnoop", write_btsnoop), ("pcapng", write_pcapng)):
            for count in (n // 10, n):
                path = Path(d) / f"bench.{name}"
                writer(path, count)
                size = path.stat().st_size
                frames, read_rate, decode_rate, peak = measure(path)
                print(
                    f"{name:8} {frames:>9,} frames {size / 1e6:6.1f} MB  "
                    f"read {read_rate:>9,.0f}/s  read+decode {decode_rate:>8,.0f}/s  "
                    f"peak traced {peak / 1024:6.1f} KiB"
                )
                path.unlink()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"max RSS of the whole run: {rss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
