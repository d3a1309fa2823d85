"""The TOML keys file: normalisation, 0600 on write, warning on 0644, keys never shown."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from victron_ble_bms.sources.keys import KeyFileError, KeyStore

KEY = "aff4d0995b7d1e176c0c33ecb9e70dcd"


def test_load_normalises_addresses_and_keys(tmp_path: Path) -> None:
    f = tmp_path / "keys.toml"
    f.write_text(
        '[devices."d1-23-45-67-89-ab"]\nkey = "AF F4 D0 99 5B 7D 1E 17 6C 0C 33 EC B9 E7 0D CD"\n'
        'name = "Shunt"\n'
    )
    f.chmod(0o600)
    store = KeyStore.load(f)
    assert store.warnings == []
    assert store["D1:23:45:67:89:AB"] == bytes.fromhex(KEY)
    assert store.get("d1:23:45:67:89:ab") == bytes.fromhex(KEY)
    assert store.name("D123456789AB") == "Shunt"
    assert store.get("not an address") is None
    assert list(store) == ["D1:23:45:67:89:AB"]


def test_save_is_0600_and_round_trips(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "sub" / "keys.toml")
    store.add("aa:bb:cc:dd:ee:ff", KEY.upper(), name='Bank "A" \\ 1')
    store.add("11:22:33:44:55:66", "0x" + "00" * 16)
    path = store.save()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = KeyStore.load(path)
    assert again["AA:BB:CC:DD:EE:FF"] == bytes.fromhex(KEY)
    assert again.name("AA:BB:CC:DD:EE:FF") == 'Bank "A" \\ 1'
    assert again.remove("aa-bb-cc-dd-ee-ff") is True
    assert again.remove("aa-bb-cc-dd-ee-ff") is False
    again.save()
    assert list(KeyStore.load(path)) == ["11:22:33:44:55:66"]


def test_world_readable_file_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "keys.toml"
    f.write_text(f'[devices."AA:BB:CC:DD:EE:FF"]\nkey = "{KEY}"\n')
    f.chmod(0o644)
    with caplog.at_level(logging.DEBUG):
        store = KeyStore.load(f)
    assert len(store.warnings) == 1 and "0644" in store.warnings[0]
    assert "chmod 600" in store.warnings[0]
    # Returned, not also logged: the CLI printed it twice (issue 10 item 4).
    assert caplog.text == ""


def test_keys_are_masked(tmp_path: Path) -> None:
    store = KeyStore()
    entry = store.add("AA:BB:CC:DD:EE:FF", KEY)
    shown = repr(entry) + repr(list(store.entries())) + repr(store) + entry.masked_key
    assert KEY not in shown.lower()
    assert "af" in entry.masked_key.lower() and "cd" in entry.masked_key.lower()


@pytest.mark.parametrize(
    "body, message",
    [
        ('[devices."AA:BB:CC:DD:EE:FF"]\nkey = "aff4"\n', "AA:BB:CC:DD:EE:FF"),
        ('[devices."AA:BB:CC:DD:EE:FF"]\nkey = "' + "a" * 34 + '"\n', "AA:BB:CC:DD:EE:FF"),
        ('[devices."not-mac"]\nkey = "' + KEY + '"\n', "not-mac"),
        ('[devices."AA:BB:CC:DD:EE:FF"]\nname = "x"\n', "no key"),
        ("devices = 3\n", "must be a table"),
        ("[devices\n", "not valid TOML"),
    ],
)
def test_bad_files(tmp_path: Path, body: str, message: str) -> None:
    f = tmp_path / "keys.toml"
    f.write_text(body)
    f.chmod(0o600)
    with pytest.raises(KeyFileError, match=message) as info:
        KeyStore.load(f)
    assert "a" * 20 not in str(info.value)
    assert KEY not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no such keys file"):
        KeyStore.load(tmp_path / "nope.toml")
    assert len(KeyStore.load(tmp_path / "nope.toml", missing_ok=True)) == 0
