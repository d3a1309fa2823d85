"""A benchmark of this checkout beside the same benchmark on an earlier commit (issue 23 point 4:
the live paths before and after the hand-written C went).

    python benchmarks/scanner.py --compare-commit e7132ff^   # the last commit with the C helpers

`earlier_tree(REV)` checks REV out into a temporary `git worktree` and builds it its own way
(`setup.py build_ext --inplace` where it has a setup.py: the compiled helpers of that time);
`run_there` copies the benchmark scripts of *this* checkout into it and runs them there, so both
sides take the same measurement, each importing its own package. The worktree is removed after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def add_options(parser: argparse.ArgumentParser) -> None:
    """`--compare-commit REV` and `--json`, for scanner.py and serve.py."""
    parser.add_argument(
        "--compare-commit",
        metavar="REV",
        help="also run this benchmark on commit REV, built its own way (benchmarks/compare.py), "
        "and print its figures beside these; e7132ff^ is the last commit with the C helpers",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")


HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@contextmanager
def earlier_tree(rev: str) -> Iterator[tuple[Path, str]]:
    """(the worktree, a line saying what it is) for the commit `rev`."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "earlier"
        git = ["git", "-C", str(ROOT)]
        # The person running the benchmark names the commit: git is given it as it is.
        add = [*git, "worktree", "add", "-q", "--detach", str(tree), rev]
        subprocess.run(add, check=True)  # noqa: S603
        try:
            log = [*git, "log", "-1", "--format=%h %s", rev]
            commit = subprocess.run(log, capture_output=True, text=True).stdout.strip()  # noqa: S603
            built = "pure Python"
            if (tree / "setup.py").exists():
                subprocess.run(
                    [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                    cwd=tree,
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                package = tree / "victron_ble_bms"
                so = package.rglob("*.so")
                modules = sorted(str(p.relative_to(tree)).split(".")[0] for p in so)
                built = "built with " + (", ".join(modules) or "no compiled module")
            yield tree, f"{commit[:70]} ({built})"
        finally:
            remove = [*git, "worktree", "remove", "--force", str(tree)]
            subprocess.run(remove, check=False)  # noqa: S603


def beside(now: dict[str, list[float]], before: dict[str, list[float]], what: str) -> None:
    """Each figure's min / median / max before and now, and the ratio of the medians."""
    print(f"\nbefore / now, min / median / max of the runs; before = {what}")
    width = max(len(name) for name in now)
    print(f"  {'':{width}}  {'before':>22}  {'now':>22}  now / before (medians)")
    for name, values in now.items():
        old = before.get(name)
        if not old:
            continue
        ratio = statistics.median(values) / statistics.median(old)
        print(f"  {name:{width}}  {_spread(old):>22}  {_spread(values):>22}  {ratio:.2f}")


def _spread(values: list[float]) -> str:
    return " / ".join(f"{v:.4g}" for v in (min(values), statistics.median(values), max(values)))


def run_there(tree: Path, script: str, args: list[str]) -> Any:
    """Run this checkout's benchmark `script` (a file name in benchmarks/) inside `tree` with
    `args` (which must make it print one JSON document last), and return that document."""
    for name in (script, Path(__file__).name):
        shutil.copy(HERE / name, tree / "benchmarks" / name)
    # The tree's package first (this checkout's is installed in editable mode).
    env = dict(os.environ, PYTHONPATH=str(tree))
    where = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", "import victron_ble_bms; print(victron_ble_bms.__file__)"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"the earlier tree's run would import {where}")
    done = subprocess.run(  # noqa: S603 - our own interpreter and scripts
        [sys.executable, str(tree / "benchmarks" / script), *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])
