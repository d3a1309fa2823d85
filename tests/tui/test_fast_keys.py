"""Keys typed fast on a hostile replay never end the dashboard (issue 18: an intermittent
NoMatches). A page opened by Enter was updated by the next frame before its compose had
finished, a history line before its own children were mounted, and a key dialog closed by
Escape while it mounted still ran its on_mount: each `query_one` then raised NoMatches, and the
dashboard stopped with "internal error". The windows are hit deterministically first, then by
a few seconds of random keys on a replay of many devices with hostile names and frames.
"""

from __future__ import annotations

import asyncio
import random

from victron_ble_bms.tui.app import DashboardApp
from victron_ble_bms.tui.messages import OpenDevice
from victron_ble_bms.tui.screens.battery import BatteryScreen
from victron_ble_bms.tui.screens.key_dialog import KeyDialog

from victron_ble_bms.sources.advertisement import Advertisement

from . import frames
from .harness import PushSource, make_app, settle

NAMES = [
    "[@click=app.quit]q[/]",
    "x[/b]y",
    "evil\x1b[31mred",
    "[b",
    "\x00\x07nul",
    "\u202eright-to-left",
    "[link=http://x]l[/]",
    "",
]
RECORDS = {
    frames.HOUSE: frames.house,
    frames.BOW: frames.bow,
    frames.LYNX: frames.lynx,
    frames.SMART_BMS: frames.smart_bms,
}


def hostile(rng: random.Random, i: int, ts: float) -> Advertisement:
    """Genuine, cut, extended and random frames under keyed and unknown addresses."""
    if rng.random() < 0.4:
        address = rng.choice(list(RECORDS))
        data = frames.advert(address, RECORDS[address](), nonce=rng.randrange(1, 60_000))
        payload = data.manufacturer_data[0x02E1]
        if rng.random() < 0.3:
            payload = payload[: rng.randrange(3, len(payload))] + rng.randbytes(rng.randrange(20))
        if rng.random() < 0.5:
            address = f"D0:00:00:00:{i >> 8 & 0xFF:02X}:{i & 0xFF:02X}"
    else:
        address = f"D0:00:00:00:{i >> 8 & 0xFF:02X}:{i & 0xFF:02X}"
        record_type = rng.choice([0x05, 0x0E, 0x0A, 0x01, 0xFF])
        payload = b"\x10\x00" + rng.randbytes(2) + bytes([record_type])
        payload += rng.randbytes(rng.randrange(24))
    name = rng.choice(NAMES) + str(i % 7)
    return Advertisement(ts, address, {0x02E1: payload}, rng.randrange(-100, -30), name=name)


def test_a_page_updated_before_its_compose_has_finished() -> None:
    source = PushSource([frames.advert(frames.BOW, frames.bow())])
    app = make_app(source)

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, source)
            app.on_open_device(OpenDevice(frames.BOW))  # Enter: the page is pushed …
            assert isinstance(app.screen, BatteryScreen)
            source.push(frames.advert(frames.BOW, frames.bow(1), nonce=2))
            await asyncio.sleep(0)  # … a reading arrives before the page is composed
            app.flush()  # and the frame updates the page at once
            await settle(pilot, source)
            assert app.is_running and app.crash is None
            assert isinstance(app.screen, BatteryScreen)

    asyncio.run(main())
    assert app.return_code in (0, None) and app.crash is None


def test_a_key_dialog_closed_while_it_mounts() -> None:
    source = PushSource([frames.advert(frames.NOKEY, frames.house())])
    app = make_app(source)

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, source)
            for _ in range(5):
                app.push_screen(KeyDialog(frames.NOKEY, "x", "no key"))
                app.pop_screen()  # Escape before it has mounted
                await pilot.pause()
            assert app.is_running and app.crash is None
            app.on_open_device(OpenDevice(frames.NOKEY))
            await pilot.pause()
            assert isinstance(app.screen, KeyDialog)
            assert app.screen.focused is not None and app.screen.focused.id == "key"

    asyncio.run(main())
    assert app.crash is None


KEYS = ["down", "down", "right", "enter", "escape", "up", "enter", "backspace", "left", "enter"]
KEYS += ["escape", "question_mark", "escape", "a", "escape", "tab", "enter"]


async def type_fast(seed: int, keys: int) -> tuple[DashboardApp, int]:
    """`keys` random keys, not waiting for each to be handled, while a hostile replay streams
    in. A count, not a time window: on a loaded machine a window held too few keys to test."""
    rng = random.Random(seed)
    source = PushSource()
    app = make_app(source)
    presses = 0
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        while presses < keys and app.is_running:
            for _ in range(rng.randrange(1, 4)):
                source.push(hostile(rng, rng.randrange(400), frames.T0))
            app.simulate_key(rng.choice(KEYS))
            presses += 1
            await asyncio.sleep(rng.choice([0, 0.001, 0.005, 0.02]))
        # Let every typed key be handled before the app closes (a key still on its way when the
        # screens are gone is Textual's ScreenStackError at teardown, not what is tested here).
        quiet = 0
        for _ in range(400):
            await pilot.pause(0.02)
            pumps = [app, *app.screen_stack, *([app.focused] if app.focused else [])]
            quiet = 0 if any(p._message_queue.qsize() for p in pumps) else quiet + 1
            if quiet == 5:
                break
        assert app.is_running, app.crash
    return app, presses


def test_fast_keys_on_a_hostile_replay_leave_the_dashboard_running() -> None:
    for seed in range(3):
        app, presses = asyncio.run(type_fast(seed, 150))
        assert presses == 150, f"seed {seed}: the dashboard stopped after {presses} keys"
        assert app.crash is None, f"seed {seed}: {app.crash}"
