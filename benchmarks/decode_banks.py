"""What declaring a bank costs `victron-bms decode FILE --format jsonl` (issue 20, issue 18).

    python benchmarks/decode_banks.py [--duration 3600] [--runs 3]

An emulated parallel bank (`emulate --scenario parallel-bank --capture`, a Lynx Smart BMS and
three Lithium Battery Smart, every frame a bank member's) decoded twice per run, each in its
own process, CPU from wait4 (user+sys, interpreter start included): with the keys file the
emulator wrote (the bank declared: every member frame goes through the device table —
`cli/capture_banks.py` — and a `{"type": "bank"}` line follows each change), and with the same
keys without the `[banks]` table. The ratio is taken within one run (the machine is shared);
min/median/max over the runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def _cpu(args: list[str], env: dict[str, str]) -> float:
    proc = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "victron_ble_bms", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=int, default=3600, help="emulated seconds")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
        capture = home / "bank.jsonl"
        subprocess.run(  # noqa: S603 - our own command
            [sys.executable, "-m", "victron_ble_bms", "emulate", "--scenario", "parallel-bank"]
            + ["--capture", str(capture), "--speed", "max", "--duration", str(args.duration)],
            check=True,
            capture_output=True,
            env=env,
        )
        frames = sum(1 for _ in capture.open()) - 1
        with_banks = Path(f"{capture}.keys.toml")
        text = with_banks.read_text()
        without = home / "nobanks.toml"
        without.write_text(text[: text.index("[banks")])
        without.chmod(0o600)
        rows: dict[str, list[float]] = {"bank declared": [], "no bank": [], "ratio": []}
        for _ in range(args.runs):
            a = _cpu(["decode", str(capture), "--keys", str(with_banks), "--format", "jsonl"], env)
            b = _cpu(["decode", str(capture), "--keys", str(without), "--format", "jsonl"], env)
            rows["bank declared"].append(a)
            rows["no bank"].append(b)
            rows["ratio"].append(a / b)
    print(
        f"decode --format jsonl, {frames} frames of a parallel bank; min / median / max of "
        f"{args.runs} runs (CPU s, user+sys; a shared machine)"
    )
    for name, values in rows.items():
        print(
            f"  {name:14} {min(values):6.2f} / {statistics.median(values):6.2f} / "
            f"{max(values):6.2f}" + ("  (×)" if name == "ratio" else "")
        )


if __name__ == "__main__":
    main()
