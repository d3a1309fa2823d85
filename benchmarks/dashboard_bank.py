"""The dashboard with banks declared (issue 20) beside the same load without (issue 26: a bank
must not make every reading re-layout the grid), headless, in real time.

    python benchmarks/dashboard_bank.py [--seconds 10] [--runs 3]

A  50 devices × 10 Hz, no bank (benchmarks/dashboard.py's scenario A).
E  the same readings with 4 banks of 5 of those devices declared: each bank judged and its card
   repainted at most every REPAINT_S. Printed: CPU per reading of each (min/median/max), and
   E/A measured in the same process. The bank cards (full width, at the top) leave fewer device
   cards on screen, so E also paints fewer device cards than A: E/A shows the banks' cost only
   if it is not below 1 by much more than that.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dashboard import run_load, spread  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    plain: list[float] = []
    banked: list[float] = []
    ratio: list[float] = []
    frames: list[float] = []
    for run in range(a.runs):
        small = asyncio.run(run_load(50, 10.0, a.seconds))
        bank = asyncio.run(run_load(50, 10.0, a.seconds, banks=4))
        plain.append(small["cpu_per_reading_us"])
        banked.append(bank["cpu_per_reading_us"])
        ratio.append(bank["cpu_per_reading_us"] / small["cpu_per_reading_us"])
        frames.append(bank["frames"])
        print(f"run {run + 1}: A {small}, E {bank}", file=sys.stderr)
    print(f"dashboard with banks, {a.runs} runs of {a.seconds:g} s (min/median/max)")
    print(f"A 50 dev × 10 Hz, no bank        CPU per reading {spread(plain, '{:.0f}')} µs")
    print(f"E the same, 4 banks of 5 members  CPU per reading {spread(banked, '{:.0f}')} µs")
    print(f"  E/A {spread(ratio, '{:.2f}')}   (frames in E {spread(frames, '{:.0f}')})")


if __name__ == "__main__":
    main()
