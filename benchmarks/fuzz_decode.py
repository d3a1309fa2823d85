"""Run the decode fuzzer for many frames (the test suite runs 30,000).

    python benchmarks/fuzz_decode.py [--frames 1000000] [--seed N]

Every decoded record goes through .codes, .to_dict(), json.dumps, the JSON-lines object, the
CLI table rows/plain print (rich table every 500th) and main values; keys of every accepted type
and refused spellings (tests/protocol/fuzzing.py). Prints the outcome counts, every foreign
exception or broken promise (there must be none), the slowest frame, and the peak memory (RSS).
A watchdog aborts with a stack dump if 1,000 frames take more than 10 s (a hang).
"""

from __future__ import annotations

import argparse
import faulthandler
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.protocol.fuzzing import FuzzStats, fuzz_decode  # noqa: E402

HANG_S = 10


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> int:
    ap = argparse.ArgumentParser(description="decode fuzzer")
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    start = time.perf_counter()
    rss_start = _rss_mib()

    def tick(stats: FuzzStats) -> None:
        faulthandler.dump_traceback_later(HANG_S, exit=True)  # re-armed every 1,000 frames
        if stats.frames % 100_000 == 0:
            took = time.perf_counter() - start
            print(f"  … {stats.frames:,} frames, {took:.0f} s, peak RSS {_rss_mib():.1f} MiB")

    faulthandler.dump_traceback_later(HANG_S, exit=True)
    stats = fuzz_decode(args.frames, random.Random(args.seed), on_progress=tick)
    faulthandler.cancel_dump_traceback_later()
    took = time.perf_counter() - start
    print(f"frames: {stats.frames:,} in {took:.1f} s (seed {args.seed})")
    for outcome, count in stats.outcomes.most_common():
        print(f"  {outcome:<24}{count:>10,}")
    print(
        f"decoded records: {stats.partial:,} partial, {stats.codes_unknown:,} with codes "
        f"unknown, {stats.implausible:,} implausible"
    )
    print("key types: " + ", ".join(f"{k} {n:,}" for k, n in stats.key_types.most_common()))
    print(f"slowest frame: {stats.slowest_s * 1000:.1f} ms (hang limit {HANG_S} s per 1,000)")
    print(f"peak memory (RSS): {_rss_mib():.1f} MiB (at start {rss_start:.1f} MiB)")
    print(f"tracebacks / broken promises: {len(stats.foreign)}")
    for data, text in stats.foreign[:10]:
        print(f"  {data.hex()}  {text}")
    return 1 if stats.foreign else 0


if __name__ == "__main__":
    sys.exit(main())
