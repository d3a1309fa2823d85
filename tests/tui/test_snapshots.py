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
    """A parallel bank of three 12.8 V batteries and a Lynx Smart BMS, from fixed frames: House 2
    cold (5 °C is the manual's charge minimum) and not allowed to charge, its voltage 0.2 V above
    House 1 (past the imbalance threshold), House 3 silent for a minute; the Lynx's low-SOC
    warning. The bank's screen shows every part of it."""
    import dataclasses

    from victron_ble_bms.protocol import encode
    from victron_ble_bms.protocol.enums import BmsFlags
    from victron_ble_bms.sources.advertisement import Advertisement
    from victron_ble_bms.sources.keys import KeyStore

    members = {
        "C1:00:00:00:00:01": ("House 1", 0xA0E5, frames.lithium((3.32, 3.33, 3.31, 3.32))),
        "C1:00:00:00:00:02": (
            "House 2",
            0xA0E5,
            frames.lithium(
                (3.37, 3.38, 3.37, 3.38), flags=BmsFlags.ALLOWED_TO_DISCHARGE, temperature_c=2
            ),
        ),
        "C1:00:00:00:00:03": ("House 3", 0xA0E5, frames.lithium((3.30, 3.31, 3.31, 3.30))),
        "C1:00:00:00:00:04": (
            "Lynx",
            0xA3E6,
            dataclasses.replace(frames.lynx(), battery_voltage_v=13.36, battery_current_a=-8.4),
        ),
    }
    keys = KeyStore()
    advs = []
    for i, (address, (name, model, record)) in enumerate(members.items(), 1):
        key = f"{i:02x}" * 16
        keys.add(address, key, name=name)
        data = encode(record, key=key, nonce=1, model_id=model)
        ts = frames.T0 - 60 if name == "House 3" else frames.T0 + 4
        advs.append(Advertisement(ts, address, {0x02E1: data}, rssi=-60, name=name, origin="test"))
    keys.add_bank("house", {"members": [m[0] for m in members.values()], "soc_source": "Lynx"})
    return make_app(PushSource(advs), clock=Clock(frames.T0 + 5), keys=keys, toasts=False)


def test_bank_screen(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("enter")  # the bank's card has focus at start
        await settle(pilot)

    assert snap_compare(bank_app(), terminal_size=(120, 50), run_before=run_before)
