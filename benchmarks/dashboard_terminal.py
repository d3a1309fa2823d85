"""The dashboard in a real terminal (tmux) with a 500-device replay: the process's own CPU.

    python benchmarks/dashboard_terminal.py [--seconds 12] [--runs 3] [--devices 500]

Headless runs (benchmarks/dashboard.py) skip what a terminal costs: turning each screen update
into escape sequences and writing them. Here `victron-bms dashboard --replay` runs in a
detached tmux session (160×50, its own tmux server), fed a capture of `--devices` devices × 1 Hz,
each on its own phase. Its CPU time is read from /proc/PID/stat (user + system), so the
figures are the dashboard's alone, whatever else the machine runs:
  quiet     CPU share of one core with only the readings flowing;
  per key   (CPU during the keys − the mean of the equal quiet stretches before and after) /
            keys, for moves among the cards in view (→ ↓ ← ↑ every 0.25 s), ↓ down the list
            (every 0.25 s), ↓ held (20 a second: the list scrolls through most of its rows) and
            PageDown ×4, End, PageUp, Home (every 0.25 s);
  key→screen  `tmux send-keys` → the focused card's frame (the only double-line border) seen
            at its new place by `tmux capture-pane` (polled: tmux's own work is included, so
            this is an upper bound).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dashboard import fleet_of, key_targets, spread  # noqa: E402

from victron_ble_bms.sources.advertisement import Advertisement  # noqa: E402
from victron_ble_bms.sources.capture.jsonl import JsonlWriter  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
SIZE = (160, 50)
# name: (keys sent in turn, seconds from one key to the next). "held ↓" is a key held down (a
# terminal's auto-repeat, ~20 a second; a key waits for the previous move to show): the list
# scrolls through most of its 167 rows of three cards in one stretch.
PATTERNS = {
    "in view": (["Right", "Down", "Left", "Up"], 0.25),
    "down the list": (["Down"], 0.25),
    "held ↓": (["Down"], 0.05),
    "PgDn/End/Home": (["PageDown"] * 4 + ["End", "PageUp", "Home"], 0.25),
}


def write_replay(folder: Path, devices: int, seconds: int) -> tuple[Path, Path]:
    keys, payloads = fleet_of(devices, seconds)
    keys_path = keys.save(folder / "keys.toml")
    capture = folder / "fleet.jsonl"
    t0 = time.time()
    with JsonlWriter(capture, source="benchmark") as out:
        for second in range(seconds):
            for i, (address, variants) in enumerate(payloads):
                ts = t0 + second + i / devices  # each device on its own phase
                out.write(Advertisement(ts, address, {0x02E1: variants[second]}, rssi=-60))
    return capture, keys_path


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket  # a tmux server of our own: other sessions are never touched
        tmux = shutil.which("tmux")
        if tmux is None:
            raise SystemExit("tmux is needed (apt-get install tmux)")
        self.tmux = tmux

    def __call__(self, *args: str) -> str:
        return subprocess.run(  # noqa: S603 - tmux with our own arguments
            [self.tmux, "-L", self.socket, *args], check=True, capture_output=True, text=True
        ).stdout

    def screen(self) -> list[str]:
        return self("capture-pane", "-p", "-t", "bench").splitlines()


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def dashboard_pid(pane_pid: int) -> int:
    """The dashboard process: the pane's own, or its child if a shell runs it."""
    for _ in range(100):
        for pid in [pane_pid, *_children(pane_pid)]:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"dashboard" in cmdline:
                return pid
        time.sleep(0.05)
    raise RuntimeError("dashboard process not found")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.extend(int(c) for c in text)
    return out + [g for c in out for g in _children(c)]


def focus_corner(lines: list[str]) -> tuple[int, int, str] | None:
    """Where the focused card's frame starts (its double-line corner) and its title line (a
    page key can leave the next focused card where the last one was), or None."""
    for y, line in enumerate(lines):
        x = line.find("╔")
        if x >= 0:
            return (x, y, line)
    return None


def run(devices: int, stretch: float) -> dict[str, float]:
    seconds = int(8 + (len(PATTERNS) * 3 + 1) * stretch + 10)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        capture, keys_path = write_replay(folder, devices, seconds)
        tmux = Tmux(f"dashbench-{os.getpid()}")
        command = [
            sys.executable, "-m", "victron_ble_bms", "dashboard",
            "--replay", str(capture), "--keys", str(keys_path),
        ]  # fmt: skip
        tmux(
            "new-session", "-d", "-s", "bench", "-x", str(SIZE[0]), "-y", str(SIZE[1]),
            "env", "TERM=xterm-256color", *command,
        )  # fmt: skip
        try:
            pid = dashboard_pid(int(tmux("list-panes", "-t", "bench", "-F", "#{pane_pid}")))
            started = time.perf_counter()
            while not any(f"{devices} devices" in line for line in tmux.screen()):
                if time.perf_counter() - started > 60:
                    raise RuntimeError("the dashboard did not show every device in 60 s")
                time.sleep(0.1)
            time.sleep(3.0)  # cards mounted and painted; readings in their steady state
            out: dict[str, float] = {}

            def quiet() -> float:
                cpu0 = cpu_s(pid)
                time.sleep(stretch)
                return cpu_s(pid) - cpu0

            quiets = []
            for name, (cycle, every) in PATTERNS.items():
                before = quiet()
                lat: list[float] = []
                sent, cpu0 = 0, cpu_s(pid)
                t_end = time.perf_counter() + stretch
                while time.perf_counter() < t_end:
                    corner = focus_corner(tmux.screen())
                    t0 = time.perf_counter()
                    tmux("send-keys", "-t", "bench", cycle[sent % len(cycle)])
                    sent += 1
                    while time.perf_counter() - t0 < 1.0:
                        now = focus_corner(tmux.screen())
                        if now is not None and now != corner:
                            lat.append(time.perf_counter() - t0)
                            break
                    time.sleep(max(0.0, t0 + every - time.perf_counter()))
                burst = cpu_s(pid) - cpu0
                after = quiet()
                quiets += [before, after]
                lat.sort()
                out[f"{name} ms/key"] = 1000 * (burst - (before + after) / 2) / sent
                out[f"{name} p95 ms"] = (
                    1000 * lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else float("nan")
                )
                out[f"{name} median ms"] = 1000 * statistics.median(lat) if lat else float("nan")
                out[f"{name} moved"] = len(lat) / sent
            out["quiet %"] = 100 * statistics.mean(quiets) / stretch
            return out
        finally:
            tmux("kill-server")


def runs_of(runs: int, one: Callable[[], dict[str, float]]) -> dict[str, list[float]]:
    """`one()` `runs` times (each run's figures to stderr as it ends): every figure's values."""
    results: dict[str, list[float]] = {}
    for i in range(runs):
        figures = one()
        print(f"run {i + 1}: {figures}", file=sys.stderr)
        for name, value in figures.items():
            results.setdefault(name, []).append(value)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--seconds",
        type=float,
        default=12.0,
        help="each quiet or key stretch (12: ~10 min for 3 runs)",
    )
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--devices", type=int, default=500)
    a = ap.parse_args()
    load = os.getloadavg()
    r = runs_of(a.runs, lambda: run(a.devices, a.seconds))
    print(
        f"dashboard in tmux {SIZE[0]}×{SIZE[1]}, {a.devices} devices × 1 Hz replay, {a.runs} runs "
        f"(min/median/max); load average before {load[0]:.1f}, after {os.getloadavg()[0]:.1f}"
    )
    print(f"  quiet: CPU share of one core {spread(r['quiet %'])} %   target ≤ 10 %")
    for name in PATTERNS:
        keys, cpu_target, p95_target = key_targets(name)
        print(
            f"  {keys} {name + ':':<15} CPU per key {spread(r[f'{name} ms/key'])} ms"
            f"{cpu_target}p95 key→screen {spread(r[f'{name} p95 ms'])} ms"
            f"{p95_target}(median {spread(r[f'{name} median ms'])} ms)"
        )


if __name__ == "__main__":
    main()
