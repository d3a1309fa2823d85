"""The systemd unit (contrib/victron-bms.service and `serve --print-systemd-unit`): what
`systemd-analyze verify` (Debian's systemd, when installed) says about it, and the options a
long-running service with BlueZ access needs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from victron_ble_bms.mqtt.systemd import unit_text

ROOT = Path(__file__).resolve().parents[2]
CONTRIB = ROOT / "contrib" / "victron-bms.service"


def contrib_default() -> str:
    return unit_text(
        "/usr/local/bin/victron-bms",
        ["--mqtt", "mqtt://127.0.0.1:1883", "--keys",
         "/home/victron/.config/victron-ble-bms/keys.toml"],
    )  # fmt: skip


def test_contrib_unit_is_the_generated_one() -> None:
    assert CONTRIB.read_text() == contrib_default()


def options(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_restarts_on_failure_and_keeps_dbus_reachable() -> None:
    opts = options(contrib_default())
    assert opts["Restart"] == ["on-failure"]
    families = opts["RestrictAddressFamilies"][0].split()
    assert "AF_UNIX" in families  # the system D-Bus, hence BlueZ
    assert "AF_BLUETOOTH" not in families  # BlueZ does the radio; we need no raw HCI
    assert opts["ProtectSystem"] == ["strict"] and opts["NoNewPrivileges"] == ["yes"]
    assert "PrivateNetwork" not in opts  # the broker is on the network
    assert not any("PASSWORD" in v for v in opts["ExecStart"])
    assert opts["SupplementaryGroups"] == ["bluetooth"]  # BlueZ's D-Bus policy group
    # Where that group does not exist, naming it would keep the unit from starting.
    assert "SupplementaryGroups" not in unit_text("/x", [], bluetooth_group=False)


def _verify(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed (Debian package 'systemd')")
    unit = tmp_path / "victron-bms.service"
    unit.write_text(text)
    return subprocess.run(
        [tool, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )


def test_systemd_analyze_verify_accepts_the_printed_unit(tmp_path: Path) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "serve", "--print-systemd-unit",
         "--mqtt", "mqtt://victron@127.0.0.1:1883", "--keys", str(tmp_path / "keys.toml")],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "ExecStart=" in printed and "--keys" in printed
    # The printed unit names the running user; verify needs that user to exist here.
    result = _verify(printed, tmp_path)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    # The checker is not a rubber stamp: a typo'd option and a bad value are reported.
    broken = printed.replace("Restart=on-failure", "Restart=sometimes")
    broken = broken.replace("ProtectHome=", "ProtectHom=")
    bad = _verify(broken, tmp_path)
    assert "sometimes" in bad.stderr and "ProtectHom" in bad.stderr
