"""Regenerating the README's screenshots gives the same pictures every run (issue 25 item 8):
the demo fleet is seeded and the clock follows the frames, never the wall clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

from .screenshots import SIZE, shoot


def test_a_screenshot_is_the_same_twice(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    asyncio.run(shoot(first, "devices", SIZE))
    asyncio.run(shoot(second, "devices", SIZE))
    a = (first / "dashboard-devices.svg").read_text()
    assert "W-SL12" in a  # the demo fleet's flat 12.8 V battery, as the README's caption says
    assert a == (second / "dashboard-devices.svg").read_text()
