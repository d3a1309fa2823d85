"""SVG snapshots of each screen (pytest-textual-snapshot). Deterministic: fixed frames, a fixed
clock, UTC, a fixed terminal size, no ticking clock and no toasts.
Accept intended changes with `pytest tests/tui --snapshot-update`."""

from __future__ import annotations

import time

import pytest

from . import frames
from .harness import Clock, PushSource, make_app, settle

SIZE = (110, 48)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def fleet_app():
    source = PushSource()
    for step in range(6):  # six readings each: the history sparklines have a shape
        source.push(*frames.fleet(frames.T0 + step, step))
    clock = Clock(frames.T0 + 5)
    return make_app(source, clock=clock, toasts=False), source


def open_device(address: str):
    async def run_before(pilot):
        await settle(pilot)
        from victron_ble_bms.tui.widgets.device_card import DeviceCard, card_id

        pilot.app.screen.query_one(f"#{card_id(address)}", DeviceCard).focus()
        await pilot.press("enter")
        await settle(pilot)

    return run_before


def test_device_list(snap_compare):
    app, _ = fleet_app()
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_device_list_narrow(snap_compare):
    app, _ = fleet_app()
    assert snap_compare(app, terminal_size=(50, 60), run_before=settle)


def test_battery_detail_4_cells(snap_compare):
    app, _ = fleet_app()
    assert snap_compare(app, terminal_size=SIZE, run_before=open_device(frames.HOUSE))


def test_battery_detail_8_cells_with_code(snap_compare):
    app, _ = fleet_app()
    assert snap_compare(app, terminal_size=(110, 60), run_before=open_device(frames.BOW))


def test_lynx_detail(snap_compare):
    app, _ = fleet_app()
    assert snap_compare(app, terminal_size=SIZE, run_before=open_device(frames.LYNX))


def test_smart_bms_detail(snap_compare):
    app, _ = fleet_app()
    assert snap_compare(app, terminal_size=SIZE, run_before=open_device(frames.SMART_BMS))


def test_key_dialog(snap_compare):
    app, _ = fleet_app()
    assert snap_compare(app, terminal_size=SIZE, run_before=open_device(frames.NOKEY))


def test_alerts(snap_compare):
    app, _ = fleet_app()

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def bank_app():
    """The emulator's parallel-bank (seed 0: the same frames every run), one battery silent
    after 120 s of 300: the bank's screen shows it stale beside the others' cells."""
    from victron_ble_bms.cli.emulate import emulated_banks
    from victron_ble_bms.emulator import DeviceSpec, Emulator, load_scenario
    from victron_ble_bms.sources.keys import KeyStore

    scenario = load_scenario("parallel-bank")
    specs = [DeviceSpec(d.type) for d in scenario.devices for _ in range(d.count)]
    emu = Emulator(specs, scenario, seed=0, speed=None)
    keys = KeyStore()
    for ident in emu.identities:
        keys.add(ident.address, ident.key, name=f"emulated {ident.name}")
    for name, table in emulated_banks(emu, "parallel-bank").items():
        keys.add_bank(name, table)
    advs = list(emu.run(300))
    victim = next(a.address for a in advs if (a.name or "").startswith("LI 12.8V"))
    start = advs[0].ts
    advs = [a for a in advs if a.address != victim or a.ts <= start + 120]
    app = make_app(PushSource(advs), clock=Clock(advs[-1].ts), keys=keys, toasts=False)
    return app


def test_bank_screen(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("enter")  # the bank's card has focus at start
        await settle(pilot)

    assert snap_compare(bank_app(), terminal_size=(120, 50), run_before=run_before)
