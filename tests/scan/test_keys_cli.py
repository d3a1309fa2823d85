"""`victron-bms keys`: file location and mode, masking, and messages naming the mistake."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from victron_ble_bms.cli import main
from victron_ble_bms.sources.keys import KeyStore

KEY = "0123456789abcdef0123456789abcdef"
KEY2 = "fedcba9876543210fedcba9876543210"
ADDR = "C0:11:22:33:44:55"


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    return tmp_path / "cfg" / "victron-ble-bms" / "keys.toml"


def test_add_creates_the_xdg_file_0600_and_list_masks(
    config_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "add", "c0-11-22-33-44-55", KEY.upper(), "--name", "House"]) == 0
    assert config_home.exists()
    assert stat.S_IMODE(config_home.stat().st_mode) == 0o600
    assert main(["keys", "list"]) == 0
    out = capsys.readouterr().out
    assert ADDR in out and "House" in out
    assert KEY not in out.lower()
    assert "01" in out and "ef" in out  # first and last byte only
    assert KeyStore.load(config_home)[ADDR] == bytes.fromhex(KEY)


def test_mac_without_colons_is_normalised(config_home: Path) -> None:
    assert main(["keys", "add", "c01122334455", KEY]) == 0
    assert ADDR in KeyStore.load(config_home)


def test_31_character_key_is_named(config_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "add", ADDR, KEY[:31]]) == 2
    err = capsys.readouterr().err
    assert "31" in err
    assert KEY[:31] not in err
    assert not config_home.exists()


def test_key_given_where_the_address_belongs(
    config_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "add", KEY, ADDR]) == 2
    err = capsys.readouterr().err
    assert "looks like a key" in err and "address first" in err
    assert KEY not in err


def test_address_given_as_the_key(config_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "add", ADDR, "AA:BB:CC:DD:EE:FF"]) == 2
    assert "address" in capsys.readouterr().err


def test_short_address_says_how_many_digits(
    config_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "add", "C0:11:22:33:44", KEY]) == 2
    assert "10 hex digits" in capsys.readouterr().err


def test_macos_uuid_is_accepted_with_a_note(
    config_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uuid = "5b4a4c0e-1f2d-4c3b-9a8e-7d6c5b4a3f21"
    assert main(["keys", "add", uuid, KEY]) == 0
    assert "only works on this Mac" in capsys.readouterr().err
    assert uuid.upper() in KeyStore.load(config_home)


def test_import_both_line_styles(
    config_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "keys.txt"
    src.write_text(
        f"# from another tool\n{ADDR}@{KEY}\n\nc0:11:22:33:44:66 {KEY2}  # bow\n",
        encoding="utf-8",
    )
    assert main(["keys", "import", str(src)]) == 0
    store = KeyStore.load(config_home)
    assert store[ADDR] == bytes.fromhex(KEY)
    assert store["C0:11:22:33:44:66"] == bytes.fromhex(KEY2)
    assert "imported 2" in capsys.readouterr().out


def test_import_with_a_bad_line_imports_nothing_and_hides_keys(
    config_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "keys.txt"
    src.write_text(f"{ADDR}@{KEY}\nC0:11:22:33:44:66 {KEY2[:31]}\n", encoding="utf-8")
    assert main(["keys", "import", str(src)]) == 2
    err = capsys.readouterr().err
    assert ":2:" in err and "31" in err
    assert KEY2[:31] not in err
    assert not config_home.exists()


def test_remove(config_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["keys", "add", ADDR, KEY])
    assert main(["keys", "remove", "c0:11:22:33:44:55"]) == 0
    assert ADDR not in KeyStore.load(config_home)
    assert main(["keys", "remove", ADDR]) == 1
    assert "not in" in capsys.readouterr().err


def test_keys_option_picks_another_file(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    assert main(["keys", "--keys", str(other), "add", ADDR, KEY]) == 0
    assert main(["keys", "add", ADDR, KEY2, "--keys", str(other)]) == 0
    assert KeyStore.load(other)[ADDR] == bytes.fromhex(KEY2)


def test_world_readable_file_warns(config_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["keys", "add", ADDR, KEY])
    os.chmod(config_home, 0o644)
    capsys.readouterr()
    assert main(["keys", "list"]) == 0
    err = capsys.readouterr().err
    assert "readable by others" in err and "chmod 600" in err
    # Saving again restores 0600.
    main(["keys", "add", ADDR, KEY2])
    assert stat.S_IMODE(config_home.stat().st_mode) == 0o600
