"""A subcommand imports only its own module (a `keys add` on a Raspberry Pi should not load the
scanner, the emulator and the dashboard first); `--help` and typos still see every command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .user import env, victron_bms

COMMANDS = ("scan", "decode", "record", "emulate", "dashboard", "keys")


def test_help_lists_every_command_and_a_typo_names_them(tmp_path: Path) -> None:
    r = victron_bms(tmp_path, "--help")
    assert r.returncode == 0 and all(f"    {c} " in r.stdout for c in COMMANDS)
    r = victron_bms(tmp_path, "-v", "keyz")
    assert r.returncode == 2 and "invalid choice: 'keyz'" in r.stderr
    # The list of choices: quoted by Python 3.11's argparse, plain since 3.12.
    assert re.search(r"choose from .*\bkeys\b", r.stderr), r.stderr


def test_keys_does_not_import_the_other_commands(tmp_path: Path) -> None:
    code = (
        "import sys; from victron_ble_bms.cli import main; status = main(['-v', 'keys', 'list']);"
        "print(sorted(m for m in sys.modules if m.startswith('victron_ble_bms.cli.'))); "
        "sys.exit(status)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], env=env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    loaded = r.stdout.splitlines()[-1]
    assert "victron_ble_bms.cli.keys" in loaded
    assert not any(f"victron_ble_bms.cli.{c}'" in loaded for c in COMMANDS if c != "keys")
