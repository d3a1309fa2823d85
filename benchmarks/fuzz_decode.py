"""Run the decode fuzzer for many frames (the test suite runs 30,000).

    python benchmarks/fuzz_decode.py [--frames 1000000] [--seed N]

Prints how many frames ran, the outcome counts and any foreign exception (there must be none).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.protocol.fuzzing import fuzz_decode  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description="decode fuzzer")
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    start = time.perf_counter()
    stats = fuzz_decode(args.frames, random.Random(args.seed))
    took = time.perf_counter() - start
    print(f"frames: {stats.frames:,} in {took:.1f} s (seed {args.seed})")
    for outcome, count in stats.outcomes.most_common():
        print(f"  {outcome:<20}{count:>10,}")
    print(f"foreign exceptions: {len(stats.foreign)}")
    for data, text in stats.foreign[:10]:
        print(f"  {data.hex()}  {text}")
    return 1 if stats.foreign else 0


if __name__ == "__main__":
    sys.exit(main())
