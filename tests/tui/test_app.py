"""Behaviour of the dashboard, driven headless with Pilot and frames from the protocol encoder."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import stat
from pathlib import Path

from victron_ble_bms.tui.screens.battery import BatteryScreen
from victron_ble_bms.tui.screens.devices import DeviceListScreen
from victron_ble_bms.tui.screens.key_dialog import KeyDialog
from victron_ble_bms.tui.screens.lynx import LynxScreen
from victron_ble_bms.tui.screens.smart_bms import SmartBmsScreen
from victron_ble_bms.tui.widgets.device_card import DeviceCard, card_id
from victron_ble_bms.tui.widgets.status_bar import StatusBar

from victron_ble_bms.protocol.enums import BmsFlags
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture import read_jsonl
from victron_ble_bms.sources.keys import KeyStore
from victron_ble_bms.sources.readings import decode_advertisement

from . import frames
from .harness import Clock, PushSource, key_store, make_app, screen_text, settle


def run(coro):  # pytest-asyncio is not a dependency; each test runs its own loop
    return asyncio.run(coro)


def card(app, address: str) -> DeviceCard:
    return app.screen.query_one(f"#{card_id(address)}", DeviceCard)


async def open_card(pilot, address: str) -> None:
    card(pilot.app, address).focus()
    await pilot.press("enter")
    await pilot.pause()


def test_list_shows_every_device_with_its_main_values():
    async def main():
        source = PushSource(frames.fleet())
        app = make_app(source)
        async with app.run_test(size=(120, 50)) as pilot:
            await settle(pilot, source)
            text = screen_text(app)
            assert "House" in text and "Bow thruster" in text and "Lynx" in text
            assert "Smart Lithium Battery 12.8V/100Ah" in text  # product id 0xA0E5
            assert "13.99 V" in text  # 3.48 + 3.52 + 3.50 + 3.49
            assert "balancing" in text and "imbalance" in text
            assert "18.5 %" in text  # the Lynx SOC
            assert "no key — add key" in text
            assert "-55 dBm" in text

    run(main())


def test_navigation_list_to_battery_detail_and_back():
    async def main():
        source = PushSource(frames.fleet())
        app = make_app(source)
        async with app.run_test(size=(120, 50)) as pilot:
            await settle(pilot, source)
            await open_card(pilot, frames.HOUSE)
            assert isinstance(app.screen, BatteryScreen)
            text = screen_text(app)
            for n, v in enumerate(("3.48", "3.52", "3.50", "3.49"), 1):
                assert f"Cell {n}" in text and f"{v} V" in text
            assert "Cell 5" not in text  # a 12.8 V battery has four cells
            assert "spread 40 mV" in text
            assert "3.52 V ▲ max" in text and "3.48 V ▼ min" in text
            # The manual's description of 'balancing' (Lithium Battery Smart manual §5.2.2).
            assert "balancing its cells now" in text
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, DeviceListScreen)
            await open_card(pilot, frames.LYNX)
            assert isinstance(app.screen, LynxScreen)
            text = screen_text(app)
            assert "12 h 34 min" in text  # ttg 754 min
            assert "-325 W" in text  # 26.4 V × -12.3 A
            await pilot.press("escape")
            await open_card(pilot, frames.SMART_BMS)
            assert isinstance(app.screen, SmartBmsScreen)
            assert "PROVISIONAL DECODING" in screen_text(app)

    run(main())


def test_an_eight_cell_battery_shows_its_code_with_the_remedy():
    async def main():
        source = PushSource(frames.fleet())
        app = make_app(source)
        async with app.run_test(size=(120, 60)) as pilot:
            await settle(pilot, source)
            await open_card(pilot, frames.BOW)
            text = screen_text(app)
            assert "Cell 8" in text
            assert "3.05 V ▼ min" in text and "spread 170 mV" in text
            assert "W-SL12" in text
            assert "default 3.10 V" in text  # the manual's pre-alarm default
            assert "What to do: Recharge the battery as soon as possible" in text
            assert "Pre-alarm             active" in text

    run(main())


def test_key_dialog_writes_the_key_store(tmp_path: Path):
    path = tmp_path / "keys.toml"

    async def main():
        source = PushSource(frames.fleet())
        app = make_app(source, keys=key_store(path))
        async with app.run_test(size=(120, 50)) as pilot:
            await settle(pilot, source)
            await open_card(pilot, frames.NOKEY)
            assert isinstance(app.screen, KeyDialog)
            await pilot.press(*"12345", "enter")  # too short: refused with the reason
            await pilot.pause()
            assert isinstance(app.screen, KeyDialog)
            assert "has 5 hex digits" in screen_text(app)
            assert not path.exists()
            app.screen.query_one("Input").value = frames.NOKEY_KEY.upper()
            assert frames.NOKEY_KEY.upper() not in screen_text(app)  # a password field
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(app.screen, DeviceListScreen)
            assert "key ok" in str(card(app, frames.NOKEY).render())
            assert "13.99 V" in str(card(app, frames.NOKEY).render())

    run(main())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = KeyStore.load(path)
    assert stored[frames.NOKEY] == bytes.fromhex(frames.NOKEY_KEY)


def test_stale_devices_grey_out_with_their_age():
    async def main():
        clock = Clock()
        source = PushSource([frames.advert(frames.HOUSE, frames.house())])
        app = make_app(source, clock=clock)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, source)
            clock.now += 5
            app._tick()
            assert not card(app, frames.HOUSE).has_class("-stale")
            clock.now += 37  # 42 s without a reading
            app._tick()
            await pilot.pause()
            c = card(app, frames.HOUSE)
            assert c.has_class("-stale")
            assert "stale · last heard 42 s ago" in str(c.render())
            source.push(frames.advert(frames.HOUSE, frames.house(), ts=clock.now))
            await settle(pilot, source)
            assert not card(app, frames.HOUSE).has_class("-stale")

    run(main())


def test_a_new_alarm_rings_the_bell_and_flashes():
    async def main():
        source = PushSource([frames.advert(frames.HOUSE, frames.house())])
        app = make_app(source)
        rings = []
        app.bell = lambda: rings.append(1)  # type: ignore[method-assign]
        flashed: list[bool] = []
        flash = app._flash

        def spy() -> None:  # the flash lasts 1.5 s: look right after it starts (a loaded CI)
            flash()
            flashed.append(app.screen.query_one(StatusBar).has_class("-flash"))

        app._flash = spy  # type: ignore[method-assign]
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, source)
            assert rings == []
            # A cell below allowed-to-discharge: under-voltage alarm A-SL11 (manual §5.3).
            alarm = frames.lithium((2.75, 3.20, 3.21, 3.20), flags=BmsFlags.ALARM_UNDER_VOLTAGE)
            source.push(frames.advert(frames.HOUSE, alarm, nonce=2))
            await settle(pilot, source)
            # One frame could be forged (issue 18 item 2): the alarm is the device's state
            # once a frame with a fresh nonce confirms it.
            assert rings == []
            source.push(frames.advert(frames.HOUSE, alarm, nonce=3))
            await settle(pilot, source)
            assert rings == [1]
            assert flashed == [True]
            await pilot.press("a")
            await pilot.pause()
            text = screen_text(app)
            started = dt.datetime.fromtimestamp(frames.T0).strftime("%H:%M:%S")
            assert f"{started} (0 s ago)  A-SL11" in text
            source.push(frames.advert(frames.HOUSE, alarm, nonce=4))  # same alarm: no new bell
            await settle(pilot, source)
            assert rings == [1]

    run(main())


def test_alerts_are_newest_first():
    async def main():
        clock = Clock()
        source = PushSource([frames.advert(frames.LYNX, frames.lynx())])
        app = make_app(source, clock=clock)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, source)
            clock.now += 30
            source.push(frames.advert(frames.BOW, frames.bow()))
            await settle(pilot, source)
            await pilot.press("a")
            await pilot.pause()
            text = screen_text(app)
            assert text.index("W-SL12") < text.index("W-B07")
            assert "(30 s ago)" in text  # the Lynx warning started 30 s earlier

    run(main())


def test_record_toggle_writes_a_capture(tmp_path: Path):
    sent = frames.fleet()

    async def main():
        source = PushSource()
        app = make_app(source, record_dir=tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("r")
            source.push(*sent)
            await settle(pilot, source)
            await pilot.press("r")
            await pilot.pause()
            assert app.recorder is None

    run(main())
    [capture] = list(tmp_path.glob("*.jsonl"))
    header = json.loads(capture.read_text().splitlines()[0])
    assert header["format"] == "victron-ble-bms-capture"
    got = list(read_jsonl(capture))
    assert [(a.address, dict(a.manufacturer_data)) for a in got] == [
        (a.address, dict(a.manufacturer_data)) for a in sent
    ]


def test_narrow_terminal_stacks_cards_in_one_column():
    async def main():
        source = PushSource(frames.fleet())
        app = make_app(source)
        async with app.run_test(size=(50, 60)) as pilot:
            await settle(pilot, source)
            assert app.screen.has_class("-narrow")
            cards = list(app.screen.query(DeviceCard))
            assert len({c.region.x for c in cards}) == 1  # one column
            assert all(c.region.width >= 45 for c in cards)
        wide = make_app(PushSource(frames.fleet()))
        async with wide.run_test(size=(120, 60)) as pilot:
            await settle(pilot)
            assert len({c.region.x for c in wide.screen.query(DeviceCard)}) == 2

    run(main())


def test_help_opens_and_closes():
    async def main():
        app = make_app(PushSource())
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.press("question_mark")
            await pilot.pause()
            assert "add key" in screen_text(app)
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, DeviceListScreen)

    run(main())


def test_key_dialog_refuses_a_key_whose_first_byte_does_not_match_the_frames(tmp_path: Path):
    """Every encrypted frame carries its key's first byte in clear (docs/protocol.md §1)."""
    path = tmp_path / "keys.toml"

    async def main():
        source = PushSource(frames.fleet())
        app = make_app(source, keys=key_store(path))
        async with app.run_test(size=(120, 50)) as pilot:
            await settle(pilot, source)
            await open_card(pilot, frames.NOKEY)
            assert isinstance(app.screen, KeyDialog)
            wrong = "66" + frames.NOKEY_KEY[2:]  # valid hex, another device's first byte
            app.screen.query_one("Input").value = wrong
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, KeyDialog)
            text = screen_text(app)
            assert "starts with 66" in text and "starting with 55" in text
            assert not path.exists()
            app.screen.query_one("Input").value = frames.NOKEY_KEY
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(app.screen, DeviceListScreen)
            assert "key ok" in str(card(app, frames.NOKEY).render())

    run(main())
    assert KeyStore.load(path)[frames.NOKEY] == bytes.fromhex(frames.NOKEY_KEY)


def test_not_allowed_to_charge_says_why():
    """Lithium Battery Smart manual §4.4.1 (charging from 5 °C by default) and §6.1.3 (a cell at
    3.75 V turns the chargers off)."""
    cold = frames.lithium(
        (3.30, 3.31, 3.30, 3.31), flags=BmsFlags.ALLOWED_TO_DISCHARGE, temperature_c=2
    )
    high = frames.lithium((3.40, 3.76, 3.41, 3.40), flags=BmsFlags.ALLOWED_TO_DISCHARGE)

    async def main():
        source = PushSource([frames.advert(frames.HOUSE, cold)])
        app = make_app(source)
        async with app.run_test(size=(120, 60)) as pilot:
            await settle(pilot, source)
            await open_card(pilot, frames.HOUSE)
            text = screen_text(app)
            assert "Allowed to charge     no" in text
            assert "Not charging — likely: too cold to charge (2 °C)" in text
            assert "cell is high" not in text
            source.push(frames.advert(frames.HOUSE, high, nonce=2))
            source.push(frames.advert(frames.HOUSE, high, nonce=3))  # confirms it (issue 18)
            await settle(pilot, source)
            text = screen_text(app)
            assert "a cell is high (cell 2 3.76 V)" in text
            assert "too cold" not in text

    run(main())


def test_card_title_is_the_key_file_label_never_the_advertised_name():
    """Issue 18: anyone in range can advertise any name with a device's address."""
    keys = key_store()
    keys.add(frames.BOW, frames.KEYS[frames.BOW], name="short-circuit: test rig")

    async def main():
        source = PushSource([frames.advert(frames.BOW, frames.bow())])  # advertises "Bow thruster"
        app = make_app(source, keys=keys)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, source)
            text = screen_text(app)
            assert "short-circuit: test rig" in text and "Bow thruster" not in text

    run(main())


def test_a_frame_cut_short_says_codes_unknown_never_the_all_clear():
    """Issue 9 item 2: a frame without its flag fields has unknown codes (protocol contract:
    `Record.codes is None`), shown on the card, the detail and the status line.

    The reading comes as a feed that did not judge it gives it (a remote dashboard's): a live
    scan's device table marks a cut frame suspect and keeps the last complete values (issue 18
    item 2, tests/scan/test_forged.py)."""
    full = frames.advert(frames.HOUSE, frames.house())
    data = frames.advert(frames.HOUSE, frames.house(), nonce=2).manufacturer_data[0x02E1]
    cut = decode_advertisement(
        Advertisement(
            frames.T0, frames.HOUSE, {0x02E1: data[:10]}, rssi=-60, name="House", origin="test"
        ),
        frames.KEYS,
    )

    async def main():
        source = PushSource([full])
        app = make_app(source)
        async with app.run_test(size=(120, 50)) as pilot:
            await settle(pilot, source)
            assert "no active codes" in app.status_text()
            source.push(cut)
            await settle(pilot, source)
            text = screen_text(app)
            assert "codes unknown (frame incomplete)" in text
            assert "no active codes" not in app.status_text()
            assert "1 codes unknown" in app.status_text()
            await open_card(pilot, frames.HOUSE)
            text = screen_text(app)
            assert "Codes unknown (frame incomplete)" in text
            assert "No active codes" not in text

    run(main())


def test_a_suspect_frame_is_marked_and_does_not_replace_the_last_good_values():
    """Issue 9 item 5: a pack voltage far from the sum of its cells is implausible (wrong key
    with the right first byte, or a corrupt frame): flagged, the last good values stay."""
    bad = frames.lithium((3.30, 3.30, 3.30, 3.30))
    bad = dataclasses.replace(bad, battery_voltage_v=25.0)  # cells sum to 13.2 V

    async def main():
        source = PushSource([frames.advert(frames.HOUSE, frames.house(), nonce=1)])
        app = make_app(source)
        async with app.run_test(size=(120, 50)) as pilot:
            await settle(pilot, source)
            source.push(frames.advert(frames.HOUSE, bad, nonce=2))
            await settle(pilot, source)
            rendered = str(card(app, frames.HOUSE).render())
            assert "⚠ suspect frame ignored: implausible" in rendered
            assert "13.99 V" in rendered and "25.00 V" not in rendered
            assert card(app, frames.HOUSE).has_class("-suspect")
            await open_card(pilot, frames.HOUSE)
            text = screen_text(app)
            assert "1 suspect frame(s) ignored" in text
            assert "The values below are the last good reading." in text
            assert "13.99 V" in text and "25.00 V" not in text

    run(main())
