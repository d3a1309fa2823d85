"""scripts/test.sh says what it is about to do, with the elapsed time, before each install and
check (issue 25 item 9): no command that installs or runs for minutes starts unannounced."""

from __future__ import annotations

import re
from pathlib import Path

SCRIPT = (Path(__file__).resolve().parent.parent / "scripts" / "test.sh").read_text()
LONG = re.compile(
    r"apt-get (update|install)|pip install|-m ruff|-m mypy|-m pytest|npm (ci|install)"
)


def test_every_long_step_is_announced_first() -> None:
    lines = [line.strip() for line in SCRIPT.splitlines()]
    assert "step()" in SCRIPT and "SECONDS" in SCRIPT  # the elapsed time is in each line
    last_step = -1
    unannounced = []
    for i, line in enumerate(lines):
        if line.startswith("step "):
            last_step = i
        elif LONG.search(line) and not line.startswith("#"):
            block = "\n".join(lines[last_step:i])
            if last_step < 0 or block.count("\n") > 12:  # the announcement is near, above it
                unannounced.append(line)
    assert not unannounced, unannounced
