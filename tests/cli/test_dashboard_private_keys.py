"""Issue 18: the demo and remote dashboards kept the keys typed on screen in a file with a fixed
name in the shared temp directory: another user could read it, or plant a symlink there that
the dashboard then wrote through."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from victron_ble_bms.cli import dashboard


@pytest.mark.parametrize("kind", ["demo", "remote"])
def test_dashboard_keys_are_private_and_follow_no_planted_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    shared = tmp_path / "tmp"
    shared.mkdir(mode=0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    victim = tmp_path / "victims-file"
    victim.write_text("precious\n")
    for old_name in ("victron-bms-demo-keys.toml", "victron-bms-remote-keys.toml"):
        (shared / old_name).symlink_to(victim)  # what another user could plant
    if kind == "demo":
        plan = dashboard._demo_plan()
    else:
        from victron_ble_bms.tui import state

        monkeypatch.setattr(state, "STALE_AFTER_S", state.STALE_AFTER_S)  # the plan sets it
        plan = dashboard._mqtt_plan("mqtt://127.0.0.1:1", "victron-ble-bms")
    keys = plan.keys
    assert keys.path is not None
    keys.add("C0:FF:EE:00:00:42", "00112233445566778899aabbccddeeff")
    keys.save()
    assert victim.read_text() == "precious\n"
    directory = keys.path.parent
    assert directory.parent == shared and not directory.is_symlink()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(keys.path.stat().st_mode) == 0o600
    assert directory.stat().st_uid == os.getuid()
