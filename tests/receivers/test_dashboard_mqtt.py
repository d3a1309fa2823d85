"""The dashboard over MQTT: a Pilot test fed by a real mosquitto. The state messages are what
`serve` publishes (mqtt/state.py) for frames from the protocol encoder, sent by an independent
client (mosquitto_pub); the screens must be the ones the same frames give from a local source."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from victron_ble_bms.tui.app import DashboardApp

from tests.mqtt.broker import Broker, publish
from tests.tui import frames
from tests.tui.harness import Clock, PushSource, make_app, screen_text, settle
from victron_ble_bms.emulator import DeviceSpec, load_scenario
from victron_ble_bms.emulator.engine import Emulator
from victron_ble_bms.mqtt.state import state_object
from victron_ble_bms.mqtt.topics import state_topic
from victron_ble_bms.receivers.remote import RemoteClock, remote_readings
from victron_ble_bms.sources.capture.jsonl import JsonlWriter
from victron_ble_bms.sources.keys import KeyStore
from victron_ble_bms.sources.readings import decode_advertisement

SIZE = (120, 60)


def state_payloads(ts: float = frames.T0) -> list[tuple[str, bytes]]:
    """What a remote serve publishes for the test fleet (decoded with the fleet's keys)."""
    out = []
    for adv in frames.fleet(ts=ts):
        reading = decode_advertisement(adv, frames.KEYS)
        obj = state_object(reading, adv.name)
        out.append((state_topic("victron-ble-bms", adv.address), json.dumps(obj).encode()))
    return out


async def wait_for_devices(pilot: Pilot[None], app: DashboardApp, n: int) -> None:
    for _ in range(400):
        if len(app.fleet.devices) >= n:
            break
        await asyncio.sleep(0.025)
    await settle(pilot)


def body(app: DashboardApp) -> str:
    """The screen without the header and status line (they name the source)."""
    return "\n".join(screen_text(app).splitlines()[2:])


async def open_device(pilot: Pilot[Any], address: str) -> None:
    from victron_ble_bms.tui.widgets.device_card import DeviceCard, card_id

    pilot.app.screen.query_one(f"#{card_id(address)}", DeviceCard).focus()
    await pilot.press("enter")
    await pilot.pause()


async def screens(app: DashboardApp, pilot: Pilot[Any], wait: Any) -> dict[str, str]:
    await wait()
    shown = {"list": body(app)}
    for address in (frames.HOUSE, frames.BOW, frames.LYNX, frames.SMART_BMS):
        await open_device(pilot, address)
        shown[address] = body(app)
        await pilot.press("escape")
        await pilot.pause()
    return shown


def test_a_remote_serve_looks_like_a_local_source(mqtt_broker: Broker) -> None:
    async def local() -> dict[str, str]:
        source = PushSource(frames.fleet())
        app = make_app(source)
        async with app.run_test(size=SIZE) as pilot:
            return await screens(app, pilot, lambda: settle(pilot, source))

    async def remote() -> tuple[dict[str, str], list[str]]:
        wall = Clock()  # the same fixed "now" as the local app
        clock = RemoteClock(wall)
        notes: list[str] = []
        source = remote_readings(mqtt_broker.url, clock=clock, on_note=notes.append)
        app = DashboardApp(source, keys=KeyStore(None), clock=clock, tick_s=None)

        async def feed() -> None:
            await asyncio.sleep(0.5)  # after the subscription
            publish(mqtt_broker, "victron-ble-bms/bridge/pi/availability", "online", retain=True)
            publish(mqtt_broker, "victron-ble-bms/c00000000009/state", b"{not json")
            for topic, payload in state_payloads():
                publish(mqtt_broker, topic, payload)

        async with app.run_test(size=SIZE) as pilot:
            feeder = asyncio.create_task(asyncio.to_thread(asyncio.run, feed()))
            shown = await screens(app, pilot, lambda: wait_for_devices(pilot, app, 5))
            await feeder
            assert app.source_error is None
            return shown, notes

    expected = asyncio.run(local())
    got, notes = asyncio.run(remote())
    for name, text in expected.items():
        assert got[name] == text, name
    # The screens are not trivially equal: they show decoded cells, codes and remedies.
    assert "W-SL12" in got["list"] and "no key" in got["list"]
    assert "Cell 8" in got[frames.BOW] and "What to do" in got[frames.BOW]
    assert "PROVISIONAL DECODING" in got[frames.SMART_BMS]
    assert any("not JSON" in n for n in notes)
    assert any("remote serve online (pi," in n for n in notes)


def test_remote_ages_are_the_readings_own(mqtt_broker: Broker) -> None:
    """A state published long ago (a retained or delayed message) shows its real age: stale."""

    async def main() -> None:
        wall = Clock(frames.T0)
        clock = RemoteClock(wall)
        source = remote_readings(mqtt_broker.url, clock=clock)
        app = DashboardApp(source, keys=KeyStore(None), clock=clock, tick_s=None)
        old = [p for p in state_payloads(ts=frames.T0 - 300) if "c00000000001" in p[0]]
        fresh = [p for p in state_payloads(ts=frames.T0 - 1) if "c00000000002" in p[0]]

        async def feed() -> None:
            await asyncio.sleep(0.5)
            for topic, payload in old + fresh:
                publish(mqtt_broker, topic, payload)

        async with app.run_test(size=SIZE) as pilot:
            feeder = asyncio.create_task(asyncio.to_thread(asyncio.run, feed()))
            await wait_for_devices(pilot, app, 2)
            await feeder
            app._tick()
            await pilot.pause()
            house = app.fleet.devices[frames.HOUSE]
            bow = app.fleet.devices[frames.BOW]
            assert house.stale(clock()) and house.age(clock()) == 300
            assert not bow.stale(clock())
            from victron_ble_bms.tui.widgets.device_card import DeviceCard, card_id

            cards = {
                a: app.screen.query_one(f"#{card_id(a)}", DeviceCard)
                for a in (frames.HOUSE, frames.BOW)
            }
            assert cards[frames.HOUSE].has_class("-stale")
            assert not cards[frames.BOW].has_class("-stale")
            assert "5 min 00 s" in screen_text(app)

    asyncio.run(main())


def test_dashboard_mqtt_bad_url_is_one_line() -> None:
    import subprocess
    import sys

    for url, message in [
        ("http://boat", "must start with mqtt://"),
        ("mqtt://me:hunter2@boat", "never on the command line"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "victron_ble_bms", "dashboard", "--mqtt", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert "hunter2" not in done.stderr + done.stdout


def test_a_dashboard_started_later_sees_the_devices_at_once(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    """serve retains each device's state: a dashboard started after serve has gone quiet (no
    live message will come for up to a heartbeat, here never) still shows every device."""
    battery = "C0:FF:EE:00:00:07"
    key = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
    # A recording, not --source emulator: a demo run removes its devices when it stops.
    emu = Emulator(
        [DeviceSpec("lithium-25.6v-200ah", battery, key)],
        load_scenario("normal-day"),
        seed=3,
        speed=None,
        start_ts=time.time(),
    )
    capture = tmp_path / "battery.jsonl"
    with JsonlWriter(capture, source="test") as writer:
        for adv in emu.run(10):
            writer.write(adv)
    keys = KeyStore(tmp_path / "keys.toml")
    keys.add(battery, key)
    keys.save()
    serve = subprocess.run(
        [
            *(sys.executable, "-m", "victron_ble_bms", "serve", "--source", "capture"),
            *(str(capture), "--keys", str(tmp_path / "keys.toml")),
            *("--mqtt", mqtt_broker.url, "--duration", "4"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, XDG_CONFIG_HOME=str(tmp_path)),
    )
    assert serve.returncode == 0 and "Traceback" not in serve.stderr, serve.stderr

    async def main() -> tuple[str, str, list[str]]:
        clock = RemoteClock()
        notes: list[str] = []
        source = remote_readings(mqtt_broker.url, clock=clock, on_note=notes.append)
        app = DashboardApp(source, keys=KeyStore(None), clock=clock, tick_s=None)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for_devices(pilot, app, 1)
            assert battery in app.fleet.devices
            listing = body(app)
            await open_device(pilot, battery)
            return listing, body(app), notes

    listing, detail, notes = asyncio.run(main())
    assert "25.6V/200Ah" in listing or "25.6 V" in listing, listing
    assert "Cell 8" in detail
    assert any("remote serve offline" in n for n in notes)  # retained too: serve has stopped


def test_hostile_retained_states_do_not_stop_the_dashboard(mqtt_broker: Broker) -> None:
    """Issue 18: one retained state whose `ts` is a JSON integer beyond float range (or an
    enum name of digits int() refuses) made every `dashboard --mqtt` that connected stop."""
    (topic, payload), *_ = state_payloads()
    good = json.loads(payload)
    big = json.dumps(good | {"ts": "@"}).replace('"@"', "1" + "0" * 400)
    hostile = {
        "victron-ble-bms/c0000000000a/state": big.encode(),
        "victron-ble-bms/c0000000000b/state": big.replace('"ts": 1', '"ts": -1').encode(),
        "victron-ble-bms/c0000000000c/state": json.dumps(
            good | {"balancer_status": "unknown_²"}
        ).encode(),
        "victron-ble-bms/c0000000000d/state": json.dumps(good | {"ts": 1e308}).encode(),
    }
    for t, p in hostile.items():
        publish(mqtt_broker, t, p, retain=True)

    async def main() -> tuple[str | None, list[str], int]:
        clock = RemoteClock(Clock())
        notes: list[str] = []
        source = remote_readings(mqtt_broker.url, clock=clock, on_note=notes.append)
        app = DashboardApp(source, keys=KeyStore(None), clock=clock, tick_s=None)

        async def feed() -> None:
            await asyncio.sleep(1.0)  # the retained ones arrive first
            publish(mqtt_broker, topic, payload)

        async with app.run_test(size=SIZE) as pilot:
            feeder = asyncio.create_task(asyncio.to_thread(asyncio.run, feed()))
            await wait_for_devices(pilot, app, 1)
            await feeder
            return app.source_error, notes, len(app.fleet.devices)

    source_error, notes, devices = asyncio.run(main())
    assert source_error is None
    assert devices == 1  # the genuine state after them
    assert any("ts: expected seconds since the epoch" in n for n in notes)
