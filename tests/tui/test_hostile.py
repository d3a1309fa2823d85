"""Text from the air and from files is shown literally and never obeyed (issue 9 item 4).

Anyone nearby can broadcast any device name, anyone can write a capture or a keys-file label:
Textual markup in them must not become an action, a style or a crash, on any screen.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from victron_ble_bms.tui.screens.alerts import AlertsScreen
from victron_ble_bms.tui.screens.battery import BatteryScreen
from victron_ble_bms.tui.screens.key_dialog import KeyDialog
from victron_ble_bms.tui.widgets.device_card import DeviceCard, card_id

from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.keys import KeyStore

from . import frames
from .harness import PushSource, make_app, screen_text, settle


def hostile_names(tmp: Path) -> dict[str, str]:
    return {
        "quit": "[@click=app.quit]Tap me[/]",
        "shot": f"[@click=app.screenshot('x.svg','{tmp}')]Shot[/]",
        "unbalanced": "x[/b]y",
        "escape": "evil\x1b[31mred",
    }


def named(address: str, record: object, name: str, *, nonce: int = 1) -> Advertisement:
    adv = frames.advert(address, record, nonce=nonce)
    return Advertisement(adv.ts, adv.address, adv.manufacturer_data, adv.rssi, name=name)


def test_hostile_names_show_literally_and_do_nothing_on_every_screen():
    with tempfile.TemporaryDirectory(prefix="h", dir="/tmp") as tmp:  # short: fits a title
        check_hostile_names(Path(tmp))


def check_hostile_names(tmp_path: Path) -> None:
    names = hostile_names(tmp_path)
    keys = KeyStore()
    keys.add(frames.HOUSE, frames.KEYS[frames.HOUSE], name="[b]label[/b] [@click=app.quit]q[/]")
    keys.add(frames.BOW, frames.KEYS[frames.BOW])
    sent = [
        named(frames.HOUSE, frames.house(), names["quit"]),
        named(frames.BOW, frames.bow(), names["shot"]),  # W-SL12: a toast and an alert
        named(frames.NOKEY, frames.house(), names["unbalanced"]),  # no key: the key dialog
        named(frames.LYNX, frames.lynx(), names["escape"]),
    ]
    source = PushSource(sent)
    app = make_app(source, keys=keys, source_label="[@click=app.quit]replay.jsonl")

    async def main() -> None:
        async with app.run_test(size=(130, 60), notifications=True) as pilot:
            await settle(pilot, source)
            await pilot.pause(0.1)
            text = screen_text(app)
            # Cards and the toast. A keys-file label wins over the advertised name (issue 18):
            # the house shows its (hostile) label alone, the others their advertised names.
            assert "[b]label[/b] [@click=app.quit]q[/]" in text
            assert "Tap me" not in text
            assert f"[@click=app.screenshot('x.svg','{tmp_path}')]Shot[/]" in text
            assert "x[/b]y" in text
            assert "evil\\x1b[31mred" in text  # a terminal escape made visible, not obeyed
            assert "[@click=app.quit]replay.jsonl" in text  # the status line
            assert "]Shot[/]:" in text  # the new-warning toast
            # Click every card's title (where a [@click] would be live): no quit, no file.
            for address in (frames.HOUSE, frames.BOW):
                card = app.screen.query_one(f"#{card_id(address)}", DeviceCard)
                await pilot.click(card, offset=(4, 0))
                await pilot.pause()
                assert app.is_running and app.return_code is None
                if isinstance(app.screen, BatteryScreen):
                    detail = screen_text(app)
                    assert (
                        "[b]label[/b] [@click=app.quit]q[/]" in detail
                        or f"[@click=app.screenshot('x.svg','{tmp_path}')]Shot[/]" in detail
                    )
                    await pilot.click("#title", offset=(2, 0))
                    await pilot.pause()
                    assert app.is_running
                    await pilot.press("escape")
                    await pilot.pause()
            await pilot.press("a")
            await pilot.pause()
            assert isinstance(app.screen, AlertsScreen)
            assert f"[@click=app.screenshot('x.svg','{tmp_path}')]Shot[/]: " in screen_text(app)
            await pilot.press("escape")
            await pilot.pause()
            card = app.screen.query_one(f"#{card_id(frames.NOKEY)}", DeviceCard)
            card.focus()
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, KeyDialog)
            assert "Key for x[/b]y" in screen_text(app)
            await pilot.press("escape")
            await pilot.pause()
            assert app.is_running

    asyncio.run(main())
    assert list(tmp_path.iterdir()) == []  # the screenshot "action" wrote nothing
