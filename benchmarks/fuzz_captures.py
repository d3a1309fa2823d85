"""Run the capture mutation fuzzer on many files (the test suite runs 400).

    python benchmarks/fuzz_captures.py [--files 10000] [--seed N]

Every mutant is read, exported to pcapng and read back, and every 4th is decoded to a
table, CSV or JSON lines (tests/captures/fuzzing.py). Prints the counts, tracebacks (there
must be none), hangs over 10 s (none), the slowest file and the largest memory seen.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.captures.fuzzing import fuzz_captures  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description="capture mutation fuzzer")
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="write failing mutants into this folder")
    args = ap.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        stats = fuzz_captures(args.files, random.Random(args.seed), Path(d), keep=args.keep)
    took = time.perf_counter() - start
    print(f"files: {stats.files:,} in {took:.0f} s (seed {args.seed})")
    print(f"  read completely or with skipped records {stats.read_ok:>8,}")
    print(f"  refused with CaptureError               {stats.capture_errors:>8,}")
    print(f"  advertisements read                     {stats.advertisements:>8,}")
    print(f"  exported to pcapng and read back equal  {stats.exported:>8,}")
    print(f"  refused by the export (ExportError)     {stats.export_refused:>8,}")
    print(f"  decode runs (table/csv/jsonl)           {stats.decode_runs:>8,}")
    print(f"tracebacks (foreign exceptions): {len(stats.foreign)}")
    for text, n in Counter(t for _, t in stats.foreign).most_common(10):
        print(f"  {n:>5}  {text}")
    print(f"hangs > 10 s: {len(stats.hangs)}  {Counter(stats.hangs).most_common(5)}")
    print(f"slowest file: {stats.slowest_s * 1000:.0f} ms CPU ({stats.slowest_file})")
    print(
        f"largest memory: max RSS {stats.max_rss_mib():.1f} MiB; largest traced peak of one "
        f"file (every 50th) {stats.peak_traced / 2**20:.2f} MiB"
    )
    return 1 if stats.foreign or stats.hangs else 0


if __name__ == "__main__":
    sys.exit(main())
