"""No output path shows more of a key than its first and last byte (issue 9 item 3)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .user import CAPTURES, SHUNT_HEX, SHUNT_KEY, default_keys, victron_bms

SAMPLE = str(CAPTURES / "sample-hci.pcap")


def _leaks(text: str, key: str = SHUNT_KEY) -> list[str]:
    """Every run of 3+ key bytes (6 hex digits) of `key` found in `text`, any case."""
    low = re.sub(r"[\s:\-]", "", text.lower())
    return [key[i : i + 6] for i in range(0, len(key) - 5, 2) if key[i : i + 6] in low]


@pytest.mark.parametrize(
    "args",
    [
        ("decode", "--key", SHUNT_KEY, "--device", SHUNT_KEY, SAMPLE),
        ("decode", "--key", SHUNT_KEY, "--device", SHUNT_KEY[:31], SAMPLE),
        ("decode", "--keys", "KEYFILE", SAMPLE),
        ("keys", "add", SHUNT_KEY[:31], "D1:23:45:67:89:AB"),
        ("keys", "add", SHUNT_KEY[:30] + "zz", "D1:23:45:67:89:AB"),
        ("keys", "add", "D1:23:45:67:89:AB", SHUNT_KEY[:31]),
        ("keys", "remove", SHUNT_KEY[:31]),
        ("keys", "--keys", "KEYFILE", "list"),
        ("keys", "--keys", "KEYFILE", "add", "D1:23:45:67:89:AB", SHUNT_KEY),
        ("keys", "import", "IMPORT"),
        ("decode", "--key", SHUNT_KEY, SHUNT_KEY),
        ("decode", "--key", SHUNT_KEY, SHUNT_HEX, "--device", SHUNT_KEY),
    ],
)
def test_no_key_in_any_output(tmp_path: Path, args: tuple[str, ...]) -> None:
    keyfile = tmp_path / "k.toml"  # a key pasted into the address slot
    keyfile.write_text(f'[devices."{SHUNT_KEY}"]\nkey = "{SHUNT_KEY}"\n')
    keyfile.chmod(0o600)
    imp = tmp_path / "import.txt"
    imp.write_text(f"{SHUNT_KEY[:31]}@{SHUNT_KEY}\nD1:23:45:67:89:AB {SHUNT_KEY}x\n")
    argv = [str(keyfile) if a == "KEYFILE" else str(imp) if a == "IMPORT" else a for a in args]
    r = victron_bms(tmp_path, *argv)
    assert r.returncode != 0
    assert r.stderr.strip(), "a failure says why"
    assert _leaks(r.stdout + r.stderr) == [], r.stderr
    assert not default_keys(tmp_path).exists()
