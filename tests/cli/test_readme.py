"""The README's commands with sample output still print that output (issue 10 item 7), and
its set-up keeps exactly two commands and says what they need."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from .user import REPO, victron_bms

README = (REPO / "README.md").read_text(encoding="utf-8")


def _blocks() -> list[tuple[str, list[str]]]:
    """Fenced blocks as (info string, lines)."""
    blocks: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    info = ""
    for line in README.splitlines():
        if line.startswith("```"):
            if current is None:
                info, current = line[3:].strip(), []
            else:
                blocks.append((info, current))
                current = None
        elif current is not None:
            current.append(line.rstrip())
    return blocks


def _samples() -> list[tuple[str, list[str]]]:
    """Every plain block that starts with `$ victron-bms …`: (command, lines shown)."""
    return [
        (lines[0][2:], lines[1:])
        for info, lines in _blocks()
        if not info and lines and lines[0].startswith("$ victron-bms ")
    ]


SAMPLES = _samples()


def test_the_readme_has_decode_samples() -> None:
    assert sum(cmd.startswith("victron-bms decode") for cmd, _ in SAMPLES) >= 3


@pytest.mark.parametrize("command, shown", SAMPLES, ids=[c[:60] for c, _ in SAMPLES])
def test_readme_sample_output_matches(tmp_path: Path, command: str, shown: list[str]) -> None:
    """The lines shown appear in the real output (stdout then stderr), in order; `…` marks
    lines the README leaves out, and nothing else may be missing between two shown lines."""
    argv = shlex.split(command)[1:]
    r = victron_bms(tmp_path, *argv, cwd=REPO)
    real = [line.rstrip() for line in (r.stdout + r.stderr).splitlines()]
    i = 0
    gap_ok = True  # output may start with lines the README does not show (a warning)
    for want in shown:
        if want == "…":
            gap_ok = True
            continue
        start = i
        while i < len(real) and real[i] != want:
            i += 1
        assert i < len(real), f"README line not in the output:\n{want}\n--- output:\n" + "\n".join(
            real
        )
        if not gap_ok:
            assert i == start, f"lines missing from the README before:\n{want}"
        gap_ok = False
        i += 1


def test_setup_keeps_two_commands_and_names_python_and_a_venv() -> None:
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    assert len(re.findall(r"^```sh$", setup, flags=re.M)) == 2
    assert "Python ≥ 3.11" in setup and "virtual environment" in setup
