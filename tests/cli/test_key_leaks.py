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
        # argparse quotes what it did not understand; --key abbreviates scan's --keys
        ("scan", "--key", SHUNT_KEY),
        ("keys", SHUNT_KEY),
        ("keys", "list", "--keys", SHUNT_KEY.upper()),
        ("decode", "--format", ":".join(SHUNT_KEY[i : i + 2] for i in range(0, 32, 2)), "x"),
        ("record", "-o", SHUNT_KEY, "--from", SAMPLE),
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
    if args[:2] != ("keys", "list"):  # listing a keys file that does not exist is no error
        assert r.returncode != 0
        assert r.stderr.strip(), "a failure says why"
    assert _leaks(r.stdout + r.stderr) == [], r.stderr
    assert not default_keys(tmp_path).exists()


def test_a_key_typed_with_spaces_is_not_echoed(tmp_path: Path) -> None:
    spaced = [SHUNT_KEY[i : i + 2] for i in range(0, 32, 2)]
    r = victron_bms(tmp_path, "keys", "add", "D1:23:45:67:89:AB", *spaced)  # unquoted
    assert r.returncode == 2
    assert " ".join(spaced[1:]) not in r.stderr and "f4 d0 99" not in r.stderr


@pytest.mark.parametrize("spec", [f"D1:23:45:67:89:AB:{SHUNT_KEY}", f"D123456789AB:{SHUNT_KEY}"])
def test_emulate_does_not_print_a_key_the_user_gave(tmp_path: Path, spec: str) -> None:
    """Issue 18: `emulate --device TYPE:ADDR:KEY` printed the user's key in full."""
    r = victron_bms(
        tmp_path,
        *("emulate", "--device", f"lithium-12.8v-100ah:{spec}", "--advertise", "none"),
        *("--duration", "2", "--speed", "max"),
    )
    assert r.returncode == 0, r.stderr
    assert _leaks(r.stdout + r.stderr) == [], r.stdout
    assert f"{SHUNT_KEY[:2]}" in r.stdout and "D1:23:45:67:89:AB" in r.stdout
