"""`victron-bms scan` and `record --source ble` as a user runs them: a separate process on the
private bus, the emulated devices advertising through the virtual BlueZ."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from victron_ble_bms.emulator.dbus_daemon import PrivateBus
from victron_ble_bms.emulator.virtual_bluez import VirtualBluezAdvertiser
from victron_ble_bms.sources.capture.jsonl import read_jsonl
from victron_ble_bms.sources.keys import KeyStore

from .conftest import run
from .fleet import KEY_KEYED, KEY_WRONG_STORED, KEYED, NOKEY, WRONGKEY, Fleet
from .scripted import start_cli


def _keys_file(tmp_path: Path) -> Path:
    store = KeyStore()
    store.add(KEYED, KEY_KEYED, name="House")
    store.add(WRONGKEY, KEY_WRONG_STORED)
    return store.save(tmp_path / "keys.toml")


async def _cli(bus: PrivateBus, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run the command while the fleet advertises in this process."""
    va = VirtualBluezAdvertiser(bus_address=bus.address)
    await va.start()
    feeder = asyncio.create_task(Fleet(va, period=0.2).run())
    try:
        proc = await start_cli(bus, *argv)
        out, err = await proc.communicate()
        return subprocess.CompletedProcess(argv, proc.returncode or 0, out.decode(), err.decode())
    finally:
        feeder.cancel()
        await va.close()


def test_scan_json_prints_readings_and_a_status_line_per_unreadable_device(
    private_bus: PrivateBus, tmp_path: Path
) -> None:
    keys = _keys_file(tmp_path)
    result = run(_cli(private_bus, "scan", "--json", "--duration", "2", "--keys", str(keys)))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    ok = [o for o in objects if o["address"] == KEYED]
    assert ok and all(o["key_status"] == "ok" for o in ok)
    assert ok[0]["name"] == "House"
    assert ok[0]["record_type"] == "smart_lithium" and "battery_voltage_v" in ok[0]
    # One status object per device that cannot be decoded, not one per advertisement.
    nokey = [o for o in objects if o["address"] == NOKEY]
    wrong = [o for o in objects if o["address"] == WRONGKEY]
    assert [o["key_status"] for o in nokey] == ["no key"]
    assert [o["key_status"] for o in wrong] == ["key mismatch"]
    assert "keys add" in nokey[0]["message"]
    assert nokey[0]["product"].startswith("Smart Lithium Battery")
    assert KEY_WRONG_STORED not in result.stdout + result.stderr
    assert "3 Victron device(s)" in result.stderr


def test_record_source_ble_writes_a_capture(private_bus: PrivateBus, tmp_path: Path) -> None:
    out = tmp_path / "live.jsonl"
    result = run(_cli(private_bus, "record", "--source", "ble", "-o", str(out), "--duration", "2"))
    assert result.returncode == 0, result.stderr
    addresses = {adv.address for adv in read_jsonl(out)}
    assert addresses == {KEYED, NOKEY, WRONGKEY}


def test_scan_without_bluetoothd_says_so_in_one_line(private_bus: PrivateBus) -> None:
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=private_bus.address)
    result = subprocess.run(  # noqa: S603 — our own command
        [sys.executable, "-m", "victron_ble_bms", "scan", "--duration", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "bluetoothd is not running" in result.stderr


def test_scan_without_a_system_bus_says_so(tmp_path: Path) -> None:
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={tmp_path / 'no-socket'}")
    result = subprocess.run(  # noqa: S603 — our own command
        [sys.executable, "-m", "victron_ble_bms", "scan", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "D-Bus system bus" in result.stderr
