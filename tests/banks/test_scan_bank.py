"""`scan --json` with a bank declared: unmodified bleak on the private bus, the scanner tests'
fleet advertising through the virtual BlueZ. The bank's members are the keyed battery, one whose
stored key is wrong and one without a key: bank lines typed as a bank, degraded, naming them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.dbus_fixture import private_bus, run
from tests.scan.fleet import KEY_KEYED, KEY_WRONG_STORED, KEYED, NOKEY, WRONGKEY
from tests.scan.test_scan_cli import _cli
from victron_ble_bms.emulator.dbus_daemon import PrivateBus
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
