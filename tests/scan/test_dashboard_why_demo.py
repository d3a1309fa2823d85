"""When the dashboard falls back to the demo it names the cause as `scan` does (issue 25
item 2): bluetoothd not running is not "no adapter"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from victron_ble_bms.cli import dashboard
from victron_ble_bms.emulator.dbus_daemon import PrivateBus


def test_no_bluetoothd_is_named_like_scan_names_it(private_bus: PrivateBus, tmp_path: Path) -> None:
    # a real dbus-daemon on which nobody owns org.bluez: bluetoothd is not running
    why = dashboard.why_no_adapter()
    assert why.startswith("bluetoothd is not running")
    scan = subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "scan", "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert scan.returncode != 0
    assert why in scan.stderr  # the same words as scan's


def test_no_system_bus_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path / 'none'}")
    assert dashboard.why_no_adapter().startswith("no D-Bus system bus")
