"""Banks declared once, in the keys file (issue 20 item 1): `[banks.NAME]`, `keys bank
add|list|remove`, the file's 0600/atomic-merge rules kept, and `emulate` writing its bank."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from victron_ble_bms.banks import Layout
from victron_ble_bms.cli import main
from victron_ble_bms.sources.keys import KeyStore

KEY = "0123456789abcdef0123456789abcdef"
A1, A2, A3 = "C0:00:00:00:00:01", "C0:00:00:00:00:02", "C0:00:00:00:00:03"


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    path = tmp_path / "k" / "keys.toml"
    for address, name in ((A1, "House 1"), (A2, "House 2"), (A3, "Lynx")):
        assert main(["keys", "--keys", str(path), "add", address, KEY, "--name", name]) == 0
    return path


def test_bank_add_list_remove_keeps_the_file_private(
    keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    k = ["keys", "--keys", str(keys), "bank"]
    assert main([*k, "add", "house", "House 1", A2.lower(), "--soc-source", "Lynx"]) == 0
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    doc = tomllib.loads(keys.read_text())
    assert doc["banks"]["house"] == {
        "layout": "parallel",
        "members": ["House 1", A2.lower()],
        "soc_source": "Lynx",
    }
    spec = KeyStore.load(keys).banks["house"]
    assert [m.address for m in spec.members] == [A1, A2, A3]
    assert spec.soc_source is not None and spec.soc_source.name == "Lynx"
    assert spec.problems == ()
    capsys.readouterr()
    assert main([*k, "list"]) == 0
    out = capsys.readouterr().out
    assert "house: parallel, House 1 (C0:00:00:00:00:01)" in out and "soc from Lynx" in out
    assert KEY not in out
    # a device key added later keeps the bank (save merges, and writes banks back)
    assert main(["keys", "--keys", str(keys), "add", "C0:00:00:00:00:04", KEY]) == 0
    assert "house" in KeyStore.load(keys).banks
    assert main([*k, "remove", "house"]) == 0
    assert KeyStore.load(keys).banks == {}
    assert A1 in KeyStore.load(keys)  # its devices' keys stay
    assert main([*k, "remove", "house"]) == 1
    assert "no bank 'house'" in capsys.readouterr().err


def test_bad_banks_give_one_line_each_and_nothing_stops(
    keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys.write_text(
        keys.read_text()
        + """
[banks.house]
members = ["House 1", "House 9"]

[banks.van]
layout = "series"
members = ["House 1", "C0:00:00:00:00:0A"]

[banks.odd]
layout = "zigzag"
members = "House 2"
"""
    )
    store = KeyStore.load(keys)  # loads: the devices are all there
    assert len(store) == 3
    lines = store.bank_warnings
    assert any("bank 'house': member 'House 9' names no device in the keys" in x for x in lines)
    assert any("bank 'house': member House 1 is also in bank 'van'" in x for x in lines)
    assert any("bank 'van': member C0:00:00:00:00:0A is not in the keys file" in x for x in lines)
    assert any("bank 'odd': layout 'zigzag' is not one of" in x for x in lines)
    assert any("bank 'odd': members must be a list" in x for x in lines)
    assert all("\n" not in x for x in lines)
    assert store.banks["van"].layout is Layout.SERIES
    # every command still runs, and says each problem once
    capsys.readouterr()
    assert main(["keys", "--keys", str(keys), "list"]) == 0
    err = capsys.readouterr().err
    assert err.count("House 9") == 1


def test_saving_keeps_a_bank_another_writer_added(keys: Path) -> None:
    mine = KeyStore.load(keys)
    other = KeyStore.load(keys)
    other.add_bank("house", {"members": ["House 1", "House 2"]})
    other.save()
    mine.add("C0:00:00:00:00:05", KEY)
    mine.save()
    assert set(KeyStore.load(keys).banks) == {"house"}


def test_emulate_writes_its_bank_beside_the_capture(tmp_path: Path) -> None:
    capture = tmp_path / "bank.jsonl"
    assert (
        main(
            [
                "emulate",
                "--scenario",
                "parallel-bank",
                "--capture",
                str(capture),
                "--speed",
                "max",
                "--duration",
                "5",
            ]
        )
        == 0
    )
    store = KeyStore.load(f"{capture}.keys.toml")
    assert stat.S_IMODE(Path(f"{capture}.keys.toml").stat().st_mode) == 0o600
    bank = store.banks["parallel-bank"]
    assert bank.layout is Layout.PARALLEL and bank.problems == ()
    # three batteries and the Lynx Smart BMS, which gives the state of charge
    assert len(bank.members) == 4
    names = [m.name for m in bank.members]
    assert sum("LI 12.8V-100AH" in n for n in names) == 3
    assert bank.soc_source is not None and "LYNX" in bank.soc_source.name.upper()
