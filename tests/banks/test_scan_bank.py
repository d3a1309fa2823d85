"""`scan --json` with a bank declared: unmodified bleak on the private bus, the scanner tests'
fleet advertising through the virtual BlueZ. The bank's members are the keyed battery, one whose
stored key is wrong and one without a key: bank lines typed as a bank, degraded, naming them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from tests.dbus_fixture import private_bus, run
from tests.scan.fleet import KEY_KEYED, KEY_WRONG_STORED, KEYED, NOKEY, WRONGKEY, Fleet
from tests.scan.scripted import start_cli
from tests.scan.test_scan_cli import _cli
from victron_ble_bms.emulator.dbus_daemon import PrivateBus
from victron_ble_bms.emulator.virtual_bluez import VirtualBluezAdvertiser
from victron_ble_bms.sources.keys import KeyStore

__all__ = ["private_bus"]  # the fixture


def test_scan_json_writes_bank_objects_naming_unreadable_members(
    private_bus: PrivateBus, tmp_path: Path
) -> None:
    store = KeyStore()
    store.add(KEYED, KEY_KEYED, name="House")
    store.add(WRONGKEY, KEY_WRONG_STORED, name="Wrong")
    store.add_bank("house", {"members": ["House", "Wrong", NOKEY]})
    keys = store.save(tmp_path / "keys.toml")
    result = run(_cli(private_bus, "scan", "--json", "--duration", "2", "--keys", str(keys)))
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    banks = [o for o in objects if o.get("type") == "bank"]
    assert banks, result.stdout[-2000:]
    # the member without a key: one line when the keys file is read, not one per frame
    assert result.stderr.count(f"member {NOKEY} is not in the keys file") == 1
    last = banks[-1]
    assert last["name"] == "house" and last["verdict"] == "degraded"
    assert "Wrong: key mismatch" in last["reason"]
    assert f"{NOKEY}: no key" in last["reason"]
    assert last["members"] == 3 and last["members_heard"] == 1
    assert last["cell_voltage_min_at"].startswith("House: cell ")
    assert last["problem"] is None and last["worst_code"] is None
    assert KEY_WRONG_STORED not in result.stdout + result.stderr


async def _cli_then_silence(bus: PrivateBus, heard_s: float, *argv: str) -> tuple[int, str, str]:
    """The command runs while the fleet advertises for `heard_s` seconds, then falls silent."""
    va = VirtualBluezAdvertiser(bus_address=bus.address)
    await va.start()
    feeder = asyncio.create_task(Fleet(va, period=0.2).run())
    try:
        proc = await start_cli(bus, *argv)
        await asyncio.sleep(heard_s)
        feeder.cancel()
        out, err = await proc.communicate()
        return proc.returncode or 0, out.decode(), err.decode()
    finally:
        feeder.cancel()
        await va.close()


def test_scan_json_says_when_a_banks_members_fall_silent(
    private_bus: PrivateBus, tmp_path: Path
) -> None:
    """No frame arrives once the fleet stops, yet the bank's line must not stay current: a
    later line says its member is stale and the bank is no longer judged all clear."""
    store = KeyStore()
    store.add(KEYED, KEY_KEYED, name="House")
    store.add_bank("house", {"members": ["House"]})
    keys = store.save(tmp_path / "keys.toml")
    argv = ("scan", "--json", "--duration", "6", "--stale-after", "1.5", "--keys", str(keys))
    status, out, err = run(_cli_then_silence(private_bus, 3.0, *argv))
    assert status == 0, err
    banks = [o for o in map(json.loads, out.splitlines()) if o.get("type") == "bank"]
    heard = [b for b in banks if b["members_heard"] == 1]
    assert heard and heard[0]["verdict"] == "ok", banks[:3]
    last = banks[-1]
    assert last["members_heard"] == 0, last
    assert last["verdict"] != "ok" and last["member_states"][0]["status"] == "stale", last
    readings = [o for o in map(json.loads, out.splitlines()) if o.get("type") != "bank"]
    # the stale line came from the clock, after the last frame, not from a frame
    assert last["ts"] > max(r["ts"] for r in readings) + 1.5


def test_scan_refuses_a_stale_after_that_is_not_positive(tmp_path: Path) -> None:
    for bad in ("0", "-1", "nan"):
        result = subprocess.run(
            [sys.executable, "-m", "victron_ble_bms", "scan", "--stale-after", bad],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, (bad, result.stderr)
        assert result.stderr.strip().endswith("--stale-after must be a positive number of seconds")
