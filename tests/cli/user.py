"""Run `victron-bms` as a user runs it: a subprocess, with HOME and XDG_CONFIG_HOME in a temp
directory (so the default keys file is the test's own)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CAPTURES = REPO / "captures"
# The public SmartShunt test vector (keshavdv/victron-ble tests, docs/protocol.md §6).
SHUNT_KEY = "aff4d0995b7d1e176c0c33ecb9e70dcd"
SHUNT_HEX = "100289a302b040af925d09a4d89aa0128bdef48c6298a9"


def env(home: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["HOME"] = str(home)
    e["XDG_CONFIG_HOME"] = str(home / ".config")
    e.pop("COLUMNS", None)
    return e


def victron_bms(
    home: Path, *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["victron-bms", *args],
        env=env(home),
        cwd=cwd or home,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def default_keys(home: Path) -> Path:
    return home / ".config" / "victron-ble-bms" / "keys.toml"


def keys_file(
    directory: Path, address: str, key: str = SHUNT_KEY, *, name: str | None = None
) -> Path:
    """A keys file written by hand (not by our KeyStore), mode 0600 as `keys add` leaves it."""
    path = directory / "keys.toml"
    text = f'[devices."{address}"]\nkey = "{key}"\n'
    if name is not None:
        text += f'name = "{name}"\n'
    path.write_text(text)
    path.chmod(0o600)
    return path
