"""Decoding speed, each figure beside victron-ble measured in the same process (issue 12).

    python benchmarks/decode.py [--frames N] [--runs 3] [--keys 10,1000,10000,100000]

1. `vbb.decode` on full frames of five record types (real payloads from peers' test suites,
   re-encrypted per nonce) against victron-ble's `parse` — target ≥ 20×.
2. The same frames cut 1 and 3 bytes short of their layout — target ≥ 12×. victron-ble is
   timed on the same cut frames where it parses them, else on the full frame (its cost does not
   depend on the length; it reads the padding as data).
3. `decode_advertisement` (what the CLI, scanner and dashboard call) against victron-ble's own
   path from an advertisement to parsed data (its Scanner's detection callback, debug line,
   get_device and parse, run unmodified; its JSON print left out) — target ≥ 15×. Sections 1-2
   time victron-ble's bare `parse` (the device object made beforehand).
4. No cliff in keys: µs per frame through `decode_advertisement` with 10 … 100,000 devices,
   each with its own key, round-robin; and the memory each key's cipher holds (RSS).
Times are CPU (process) time; each run takes the fastest of 5 passes of ours, then of theirs;
min/median/max over the runs are printed. Everything is Python; AES is `cryptography`'s.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.protocol import vectors as v  # noqa: E402
from victron_ble_bms import decode, encode  # noqa: E402
from victron_ble_bms.protocol import decode_plaintext  # noqa: E402
from victron_ble_bms.protocol.codec import _CIPHERS  # noqa: E402
from victron_ble_bms.protocol.crypto import KeyCipher  # noqa: E402
from victron_ble_bms.sources.advertisement import Advertisement  # noqa: E402
from victron_ble_bms.sources.readings import decode_advertisement  # noqa: E402

KEY = bytes.fromhex("aff4d0995b7d1e176c0c33ecb9e70dcd")
ADDRESS = "C0:FF:EE:00:00:01"
ROUNDS = 5

# (name, record type, decrypted payload from a peer's test suite, model id)
CASES = (
    ("battery monitor", 0x02, bytes.fromhex("ffffe50400000000030000f40140df"), 0xA389),
    ("solar charger", 0x01, bytes.fromhex("04006c050e000300130000fe"), 0xA042),
    ("DC/DC converter", 0x04, bytes.fromhex("00002305ff7f80000000"), 0xA3C0),
    ("SmartLithium", 0x05, v.SMART_LITHIUM_1[:16], 0xA0E5),
    ("Lynx Smart BMS", 0x0A, v.LYNX_1[:16], 0xA3E5),
)


def frames_for(record_type: int, plaintext: bytes, model_id: int, n: int) -> list[bytes]:
    base = decode_plaintext(record_type, plaintext)
    return [encode(base, key=KEY, nonce=(i * 7919) & 0xFFFF, model_id=model_id) for i in range(n)]


def seconds(fn: Callable[[Any], object], items: Sequence[Any]) -> float:
    """CPU seconds per item for one pass: process time, so that the other work on this shared
    machine does not count (the loop overhead is the same for every contender)."""
    gc.disable()
    try:
        start = time.process_time()
        for item in items:
            fn(item)
        return (time.process_time() - start) / len(items)
    finally:
        gc.enable()


def victron_ble_parse(frame: bytes) -> Callable[[bytes], object]:
    """victron-ble's parser object for this frame's device: its `parse`."""
    from victron_ble.devices import detect_device_type

    return detect_device_type(frame)(KEY.hex()).parse  # type: ignore[misc, no-any-return]


def victron_ble_scanner_path(address: str) -> Callable[[Any], object]:
    """victron-ble's own path from an advertisement to parsed data: its Scanner's detection
    callback (filter, de-duplication), the callback's debug line, get_device and parse — its
    code, run unmodified; only the JSON print at the end is left out. Takes an Advertisement.
    """
    from victron_ble.scanner import Scanner

    class ParseOnly(Scanner):  # type: ignore[misc]
        def callback(self, ble_device: Any, raw_data: bytes, advertisement: Any) -> None:
            # victron-ble's Scanner.callback up to `parsed`, without the JSON print
            log.debug(f"Received data from {ble_device.address.lower()}: {raw_data.hex()}")
            self.parsed = self.get_device(ble_device, raw_data).parse(raw_data)

    import logging

    log = logging.getLogger("victron_ble.scanner")
    scanner = ParseOnly.__new__(ParseOnly)  # no BleakScanner: nothing is scanned here
    scanner._seen_data = set()
    scanner._device_keys = {address.lower(): KEY.hex()}
    scanner._known_devices = {}

    class Device:  # what bleak hands the callback: a BLEDevice and AdvertisementData
        __slots__ = ("address", "name", "manufacturer_data", "rssi")

    def run(adv: Advertisement) -> object:
        dev = Device()
        dev.address, dev.name = adv.address, adv.name
        dev.manufacturer_data, dev.rssi = adv.manufacturer_data, adv.rssi
        # Each pass repeats the frames; their de-duplication would skip the repeats.
        scanner._seen_data.discard(adv.manufacturer_data[0x02E1])
        scanner._detection_callback(dev, dev)
        return scanner.parsed

    return run


def parses(parser: Callable[[bytes], object], frame: bytes) -> bool:
    try:
        parser(frame)
    except Exception:  # noqa: BLE001 - victron-ble raises ValueError on what it can't read
        return False
    return True


def spread(values: Sequence[float]) -> str:
    return f"{min(values):6.1f} {statistics.median(values):6.1f} {max(values):6.1f}"


def compare(
    title: str,
    target: float,
    rows: Sequence[
        tuple[str, Callable[[Any], object], Sequence[Any], Callable[[Any], object], Sequence[Any]]
    ],
    runs: int,
) -> None:
    print(f"\n{title} (target ≥ {target:g}×)")
    head = f"  {'record':<22}{'ours µs (min med max)':>22}{'victron-ble µs':>16}"
    print(head + f"{'× (min med max)':>22}")
    for name, ours, our_items, theirs, their_items in rows:
        mine, other, ratio = [], [], []
        for _ in range(runs):
            # A run: ROUNDS alternating passes, the fastest pass of each (others load the machine).
            a = min(seconds(ours, our_items) for _ in range(ROUNDS))
            b = min(seconds(theirs, their_items) for _ in range(ROUNDS))
            mine.append(a * 1e6)
            other.append(b * 1e6)
            ratio.append(b / a)
        met = "meets" if statistics.median(ratio) >= target else "MISSES"
        print(
            f"  {name:<22}{spread(mine):>22}{statistics.median(other):>16.1f}"
            f"{spread(ratio):>22}  {met}"
        )


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def key_scaling(counts: Sequence[int], runs: int) -> None:
    print("\nkeys/devices (decode_advertisement, one key per device, round-robin): no cliff")
    print(f"  {'devices':>8}{'µs/frame (min med max)':>26}{'RSS per device':>16}")
    plain = decode_plaintext(0x02, CASES[0][2])
    for count in counts:
        gc.collect()
        before = rss_bytes()
        keys: dict[str, bytes] = {}
        advs = []
        for i in range(count):
            key = bytes((0xAF,)) + i.to_bytes(15, "big")
            address = ":".join(f"{b:02X}" for b in (0xC0, 0xDE) + tuple(i.to_bytes(4, "big")))
            keys[address] = key
            data = encode(plain, key=key, nonce=i & 0xFFFF, model_id=0xA389)
            advs.append(Advertisement(0.0, address, {0x02E1: data}, -70))
        for adv in advs:  # warm: every cipher built once
            decode_advertisement(adv, keys)
        per_key = (rss_bytes() - before) / count
        sample = advs if count >= 10_000 else advs * (10_000 // count)
        step = partial(decode_advertisement, keys=keys)
        times = [min(seconds(step, sample) for _ in range(ROUNDS)) * 1e6 for _ in range(runs)]
        print(f"  {count:>8,}{spread(times):>26}{per_key:>14,.0f} B")
        del keys, advs, sample
    gc.collect()
    before = rss_bytes()
    ciphers = [KeyCipher(bytes((0xAF,)) + i.to_bytes(15, "big")) for i in range(10_000)]
    print(
        f"  (RSS per device = key, its cipher, one frame and advertisement; the cipher alone: "
        f"{(rss_bytes() - before) / len(ciphers):,.0f} B; cache bound {_CIPHERS.limit:,} keys)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keys", default="10,1000,10000,100000")
    args = ap.parse_args()
    full, short, adv_rows = [], [], []
    for name, record_type, plaintext, model in CASES:
        frames = frames_for(record_type, plaintext, model, args.frames)
        assert decode(frames[0], KEY).record_type == record_type
        few = frames[: max(1, args.frames // 10)]  # victron-ble is slow: fewer frames
        ours = partial(decode, key=KEY)
        parse = victron_ble_parse(frames[0])
        full.append((name, ours, frames, parse, few))
        for cut in (1, 3):
            cut_frames = [f[:-cut] for f in frames]
            assert decode(cut_frames[0], KEY).partial
            cut_theirs = [f[:-cut] for f in few] if parses(parse, few[0][:-cut]) else few
            label = f"{name} −{cut}B" + ("" if cut_theirs is not few else " *")
            short.append((label, ours, cut_frames, parse, cut_theirs))
        keys = {ADDRESS: KEY}
        advs = [Advertisement(0.0, ADDRESS, {0x02E1: f}, -70) for f in frames]
        theirs = victron_ble_scanner_path(ADDRESS)  # one per type: it keeps a device per address
        ours_adv = partial(decode_advertisement, keys=keys)
        adv_rows.append((name, ours_adv, advs, theirs, advs[: len(few)]))
    print(
        f"Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs; {args.runs} runs, {args.frames} frames per type"
    )
    compare("1. vbb.decode, full frames, vs victron-ble parse", 20, full, args.runs)
    compare("2. vbb.decode, frames shorter than their layout", 12, short, args.runs)
    print("  * victron-ble can't parse this cut frame: timed on the full frame")
    compare(
        "3. decode_advertisement vs victron-ble's advertisement → parsed path",
        15,
        adv_rows,
        args.runs,
    )
    key_scaling([int(c) for c in args.keys.split(",") if c], args.runs)


if __name__ == "__main__":
    main()
