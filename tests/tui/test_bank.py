"""The dashboard's bank (issue 20 "Done when"), run as a user runs it: `victron-bms emulate
--scenario parallel-bank --capture bank.jsonl …`, then `dashboard --replay bank.jsonl` (its keys
and its bank found through the capture's header). The bank's card comes first, its lowest cell
named by member; a member silenced mid-run (its frames cut from the capture) turns the verdict
degraded, naming it — on a tick too, without any reading; Enter shows every member's cells.

Known answers come from outside the project: the cells are decoded by victron-ble (PyPI), the
member names read from the keys file with tomllib.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from victron_ble_bms.tui.app import DashboardApp
from victron_ble_bms.tui.feeds import ReplayClock
from victron_ble_bms.tui.screens.bank import BankScreen
from victron_ble_bms.tui.screens.devices import CardGrid
from victron_ble_bms.tui.widgets.bank_card import BankCard
from victron_ble_bms.tui.widgets.device_card import DeviceCard

from tests.cli.user import victron_bms
from victron_ble_bms.cli import build_parser
from victron_ble_bms.cli.dashboard import plan
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.keys import KeyStore

from . import frames
from .harness import Clock, PushSource, make_app, screen_text, settle

victron_ble = pytest.importorskip("victron_ble.devices")

SILENCE_AFTER_S = 120.0
SIZE = (120, 60)


@pytest.fixture(scope="module")
def bank_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("bankdash")
    capture = home / "bank.jsonl"
    done = victron_bms(
        home, "emulate", "--scenario", "parallel-bank", "--capture", str(capture),
        "--speed", "max", "--duration", "300",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return capture


def _body(capture: Path) -> tuple[str, list[dict[str, Any]]]:
    lines = capture.read_text().splitlines()
    return lines[0], [json.loads(x) for x in lines[1:]]


def _keys(capture: Path) -> dict[str, Any]:
    return tomllib.loads(Path(f"{capture}.keys.toml").read_text())


def oracle(capture: Path) -> dict[str, tuple[str, list[float]]]:
    """Each battery's name (the keys file's) and its last frame's cells, decoded by victron-ble."""
    keys = _keys(capture)["devices"]
    last: dict[str, dict[str, Any]] = {}
    for o in _body(capture)[1]:
        last[o["address"]] = o
    out = {}
    for address, o in last.items():
        data = bytes.fromhex(o["manufacturer_data"]["737"])
        cls = victron_ble.detect_device_type(data)
        if cls is not victron_ble.SmartLithium:
            continue
        cells = cls(keys[address]["key"]).parse(data).get_cell_voltages()
        out[address] = (keys[address]["name"], [v for v in cells if v is not None])
    return out


def lowest(cells: dict[str, tuple[str, list[float]]]) -> tuple[float, set[tuple[str, int]]]:
    """The plain loop: the lowest cell voltage, and every (member, cell) that has it."""
    low = min(v for _, vs in cells.values() for v in vs)
    at = {
        (name, n)
        for name, vs in cells.values()
        for n, v in enumerate(vs, 1)
        if abs(v - low) < 0.001
    }
    return low, at


def cut(capture: Path, directory: Path) -> tuple[Path, str]:
    """The capture with one battery's frames cut after SILENCE_AFTER_S (as a receiver that stops
    hearing it), and its keys file beside it; the silenced member's address."""
    header, body = _body(capture)
    start = body[0]["ts"]
    victim = next(o["address"] for o in body if o["name"].startswith("LI 12.8V"))
    kept = [o for o in body if not (o["address"] == victim and o["ts"] > start + SILENCE_AFTER_S)]
    out = directory / "silenced.jsonl"
    head = json.loads(header)
    head["keys"] = "silenced.jsonl.keys.toml"
    out.write_text("\n".join([json.dumps(head), *(json.dumps(o) for o in kept)]) + "\n")
    shutil.copy(f"{capture}.keys.toml", f"{out}.keys.toml")
    return out, victim


def replay(
    capture: Path, check: Callable[[DashboardApp, Any], Awaitable[None]], speed: str = "1000"
) -> None:
    """`victron-bms dashboard --replay CAPTURE` as `dashboard.run` builds it (the CLI's parser
    and plan), driven by Pilot. When the capture ends its last moment stays "now" (the replay
    clock would run on at the replay speed) while the test reads the screen."""
    args = build_parser("dashboard").parse_args(
        ["dashboard", "--replay", str(capture), "--speed", speed]
    )
    chosen = plan(args)
    clock = chosen.clock
    assert isinstance(clock, ReplayClock)

    async def frozen() -> AsyncIterator[Any]:
        async for item in chosen.source:
            yield item
        clock.speed = 0.0

    app = DashboardApp(
        frozen(),
        keys=chosen.keys,
        demo=chosen.demo,
        source_label=chosen.note or chosen.label,
        skipped=chosen.skipped,
        clock=clock,
        tick_s=None,
        toasts=False,
    )

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            while not app.source_done:
                await pilot.pause(0.02)
            await settle(pilot)
            await check(app, pilot)

    asyncio.run(main())


def card_line(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if label in line)


LOW = re.compile(r"Lowest cell\s+(\d\.\d\d) V\s+(.+?): cell (\d+)")


def test_replay_shows_the_bank_card_first_with_its_lowest_cell_named_by_member(
    bank_capture: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # not the user's keys: the header's
    cells = oracle(bank_capture)
    low, at = lowest(cells)
    members = set(_keys(bank_capture)["banks"]["parallel-bank"]["members"])

    async def check(app: DashboardApp, pilot: Any) -> None:
        grid = app.screen.query_one(CardGrid)
        first, *rest = grid.children
        assert isinstance(first, BankCard) and first.bank == "parallel-bank"
        # then its four members (three batteries and the Lynx), before any other device
        assert {c.address for c in rest[:4] if isinstance(c, DeviceCard)} == members
        assert app.focused is first
        text = screen_text(app)
        assert text.index("parallel-bank") < text.index("Smart Lithium Battery")
        m = LOW.search(card_line(text, "Lowest cell"))
        assert m is not None, card_line(text, "Lowest cell")
        assert float(m.group(1)) == pytest.approx(low, abs=0.0051)
        assert (m.group(2), int(m.group(3))) in at
        assert "✓ OK" in text and "4 of 4 heard" in text
        assert "SOC, current" in text and "from emulated LYNX-SMARTBMS" in text

    replay(bank_capture, check)


def test_a_member_silenced_mid_run_turns_the_card_degraded_naming_it(
    bank_capture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    capture, victim = cut(bank_capture, tmp_path)
    victim_name = _keys(bank_capture)["devices"][victim]["name"]
    heard = {a: c for a, c in oracle(capture).items() if a != victim}
    low, at = lowest(heard)

    async def check(app: DashboardApp, pilot: Any) -> None:
        text = screen_text(app)
        head = card_line(text, "DEGRADED")
        assert f"{victim_name}: stale" in head
        assert "3 of 4 heard · 1 stale" in text
        assert "✓ OK" not in text and "charge unknown · discharge unknown" in text
        m = LOW.search(card_line(text, "Lowest cell"))  # over the members heard
        assert m is not None and (m.group(2), int(m.group(3))) in at
        assert float(m.group(1)) == pytest.approx(low, abs=0.0051)
        # the bank's screen: the silent member's cells are unknown, not its old values
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, BankScreen)
        screen = screen_text(app)
        declared = _keys(bank_capture)["banks"]["parallel-bank"]["members"]
        batteries = [a for a in declared if a in heard or a == victim]
        columns = re.split(r"\s{2,}", card_line(screen, "Cell 1").strip())[1:]
        assert len(columns) == 3 and columns[batteries.index(victim)] == "?"
        assert f"{victim_name}: stale" in screen

    replay(capture, check)


def test_the_bank_screen_shows_every_members_cells_side_by_side(
    bank_capture: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    cells = oracle(bank_capture)
    declared = _keys(bank_capture)["banks"]["parallel-bank"]["members"]
    batteries = [a for a in declared if a in cells]
    assert len(batteries) == 3

    async def check(app: DashboardApp, pilot: Any) -> None:
        await pilot.press("enter")  # the bank's card has focus at start
        await settle(pilot)
        assert isinstance(app.screen, BankScreen)
        text = screen_text(app)
        lines = text.splitlines()
        header = lines[[line.strip() for line in lines].index("Cells") + 1]
        positions = [header.index(cells[a][0]) for a in batteries]
        assert positions == sorted(positions)  # side by side, in the declared order
        for n in range(1, 5):
            shown = [float(v) for v in re.findall(r"(\d\.\d\d) V", card_line(text, f"Cell {n}"))]
            want = [cells[a][1][n - 1] for a in batteries]
            assert shown == pytest.approx(want, abs=0.0051)
        assert "▼" in text and "lowest cell of the bank" in text
        assert text.count(" ok ") >= 4  # each member's status in the members table
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen.query_one(CardGrid).children[0], BankCard)

    replay(bank_capture, check)


def test_a_silent_member_turns_the_bank_degraded_on_the_tick_without_a_reading(
    bank_capture: Path,
) -> None:
    """No reading arrives after the member falls silent: only the clock says so."""
    keys = KeyStore.load(f"{bank_capture}.keys.toml")
    _, body = _body(bank_capture)
    start = body[0]["ts"]
    victim = next(o["address"] for o in body if o["name"].startswith("LI 12.8V"))
    victim_name = _keys(bank_capture)["devices"][victim]["name"]

    def adv(o: dict[str, Any]) -> Advertisement:
        data = {int(k): bytes.fromhex(v) for k, v in o["manufacturer_data"].items()}
        return Advertisement(o["ts"], o["address"], data, o.get("rssi"), name=o.get("name"))

    # every member until 60 s; then the others only, for 5 s more
    sent = [o for o in body if o["ts"] <= start + 60]
    sent += [o for o in body if start + 60 < o["ts"] <= start + 65 and o["address"] != victim]
    clock = Clock(sent[-1]["ts"])
    source = PushSource([adv(o) for o in sent])
    app = make_app(source, clock=clock, keys=keys, toasts=False)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, source)
            assert "✓ OK" in screen_text(app)
            clock.now = start + 60 + 12  # the victim silent 12 s (> 10 s), the others 7 s
            app._tick()
            await pilot.pause()
            head = card_line(screen_text(app), "DEGRADED")
            assert f"{victim_name}: stale" in head
            assert "3 of 4 heard · 1 stale" in screen_text(app)

    asyncio.run(main())


def test_bank_and_member_names_from_the_keys_file_show_literally(tmp_path: Path) -> None:
    hostile = "[@click=app.quit]Bank[/]"
    member = "[b]House[/b] [@click=app.quit]q[/]"
    keys = KeyStore(tmp_path / "keys.toml")
    keys.add(frames.HOUSE, frames.KEYS[frames.HOUSE], name=member)
    keys.add(frames.BOW, frames.KEYS[frames.BOW])
    keys.add_bank(hostile, {"members": [member, frames.BOW, "Nobody"]})
    source = PushSource([frames.advert(frames.HOUSE, frames.house())])
    app = make_app(source, keys=keys, toasts=False)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, source)
            text = screen_text(app)
            assert hostile in text and f"{member}: cell" in text
            # a member not heard and one naming no device: degraded, never OK
            assert "DEGRADED" in text and "✓ OK" not in text
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(app.screen, BankScreen)
            screen = screen_text(app)
            assert hostile in screen and member in screen and "names no device" in screen
            assert app.is_running

    asyncio.run(main())


def test_a_reading_repaints_the_bank_card_without_laying_out_the_grid(
    bank_capture: Path,
) -> None:
    """Issue 26: the bank's card has a fixed height; a new reading repaints it, never asks for a
    layout (which would measure every card of the grid)."""
    keys = KeyStore.load(f"{bank_capture}.keys.toml")
    _, body = _body(bank_capture)

    def adv(o: dict[str, Any]) -> Advertisement:
        data = {int(k): bytes.fromhex(v) for k, v in o["manufacturer_data"].items()}
        return Advertisement(o["ts"], o["address"], data, o.get("rssi"), name=o.get("name"))

    clock = Clock(body[40]["ts"])
    source = PushSource([adv(o) for o in body[:40]])
    app = make_app(source, clock=clock, keys=keys, toasts=False)
    requests: list[bool] = []

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, source)
            card = app.screen.query_one(BankCard)
            height = card.size.height
            refresh = card.refresh

            def spy(*regions: Any, layout: bool = False, **kw: Any) -> Any:
                requests.append(layout)
                return refresh(*regions, layout=layout, **kw)

            card.refresh = spy  # type: ignore[method-assign]
            for o in body[40:160]:
                clock.now = o["ts"]
                source.push(adv(o))
                await settle(pilot, source)
            assert requests and not any(requests)  # repainted, never laid out
            assert card.size.height == height

    asyncio.run(main())


def test_the_dashboards_bank_data_layer_does_not_import_textual() -> None:
    import subprocess
    import sys

    code = (
        "import sys, victron_ble_bms.tui.state, victron_ble_bms.tui.bank_state, "
        "victron_ble_bms.tui.bank_format\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
