"""The help screen reflows at 60 columns: every wrapped line keeps its paragraph's indentation
(issue 25 item 8: hard breaks at 78 columns left ragged half-lines at the left margin)."""

from __future__ import annotations

import asyncio

from victron_ble_bms.tui.screens.help import HelpScreen

from .harness import PushSource, make_app, screen_text, settle

TITLES = {
    "victron-bms dashboard",
    "Keys",
    "Device list",
    "Codes",
    "Smart BMS CL 12/100 and 12/200",
    "Press Esc or ? to close.",
}


def _help_lines(width: int) -> list[str]:
    app = make_app(PushSource())

    async def go() -> str:
        async with app.run_test(size=(width, 80)) as pilot:
            await settle(pilot)
            await pilot.press("question_mark")
            await settle(pilot)
            assert isinstance(app.screen, HelpScreen)
            return screen_text(app)

    rows = asyncio.run(go()).splitlines()
    inside = [r.strip()[1:-1].rstrip() for r in rows if r.strip().startswith("█")]
    return [line for line in inside if line.strip() and "▀" not in line and "▄" not in line]


def test_help_reflows_at_sixty_columns() -> None:
    lines = _help_lines(60)
    titles = [line.strip() for line in lines if len(line) - len(line.lstrip()) == 2]
    assert set(titles) <= TITLES and "Device list" in titles, titles
    indents = {len(line) - len(line.lstrip()) for line in lines}
    assert indents == {2, 4}, lines
    assert all(len(line) <= 58 for line in lines)
