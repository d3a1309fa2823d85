"""`victron-bms decode FILE…` and `victron-bms record --from`, run as a user would."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest

from victron_ble_bms.cli import main
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture import JsonlWriter

from .frames import (
    ADVS,
    LITHIUM_ADDRESS,
    LITHIUM_KEY,
    LYNX_ADDRESS,
    SHUNT_ADDRESS,
    SHUNT_KEY,
    have_tshark,
    tshark_adverts,
    write_btsnoop,
    write_scapy,
)


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    f = tmp_path / "keys.toml"
    f.write_text(
        f'[devices."{SHUNT_ADDRESS}"]\nkey = "{SHUNT_KEY}"\nname = "Shunt"\n'
        f'[devices."{LITHIUM_ADDRESS}"]\nkey = "{LITHIUM_KEY}"\n'
        f'[devices."{LYNX_ADDRESS}"]\nkey = "{"ff" * 16}"\n'  # wrong on purpose
    )
    f.chmod(0o600)
    return f


def test_decode_btsnoop_jsonl(
    tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_btsnoop(tmp_path / "log", 1002, ADVS)
    assert main(["decode", str(path), "--keys", str(keys), "--format", "jsonl"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    # 2 of every 3 devices decode: the Lynx key is wrong. 6 adverts → 4 rows.
    assert [r["address"] for r in rows] == [SHUNT_ADDRESS, LITHIUM_ADDRESS] * 2
    # The SmartShunt's published values (known-answers.json, keshavdv/victron-ble tests).
    assert rows[0]["battery_voltage_v"] == 12.53 and rows[0]["soc_pct"] == 50.0
    assert rows[0]["rssi"] == -62 and rows[0]["ts"] == pytest.approx(1_700_000_001.0)
    assert rows[1]["battery_voltage_v"] == 13.24
    assert "6 frames read, 6 Victron frames: 4 decoded, 0 no key, 2 key mismatch" in err
    assert "ff" * 16 not in err


def test_decode_table_csv_and_device_filter(
    tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scapy(tmp_path / "h4.pcapng", 201, ADVS, ng=True)
    assert main(["decode", str(path), "--keys", str(keys)]) == 0
    out, _ = capsys.readouterr()
    assert "SmartShunt 500A/50mV" in out and "12.53 V" in out and "Shunt" in out
    assert (
        main(
            [
                "decode",
                str(path),
                "--keys",
                str(keys),
                "--format",
                "csv",
                "--device",
                "e4-00-00-00-00-01",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["address"] for r in rows} == {LITHIUM_ADDRESS} and len(rows) == 2
    assert rows[0]["battery_voltage_v"] == "13.24"
    assert "6 frames read, 4 of other devices skipped (--device), 2 kept" in err


def test_corrupt_file_is_partial(
    tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_btsnoop(tmp_path / "log", 1002, ADVS)
    path.write_bytes(path.read_bytes()[:-7])
    assert main(["decode", str(path), "--keys", str(keys), "--format", "jsonl"]) == 3
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2  # the two events before the cut
    assert "file ends inside a record" in err and "byte " in err
    assert "1 corrupt" in err


def test_unreadable_file_is_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "x.pcap"
    f.write_bytes(b"\x1f\x8b\x08\x00junk")
    assert main(["decode", str(f)]) == 2
    assert "gzip" in capsys.readouterr().err


def test_hex_mode_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    hexdata = "100289a302b040af925d09a4d89aa0128bdef48c6298a9"
    assert main(["decode", "--key", SHUNT_KEY, hexdata, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["battery_voltage_v"] == 12.53


def test_jsonl_round_trip_and_truncated_last_line(
    tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = tmp_path / "rec.jsonl"
    with JsonlWriter(rec, source="test") as w:
        for i, a in enumerate(ADVS):
            w.write(
                Advertisement(
                    ts=100.0 + i, address=a.address, manufacturer_data={0x02E1: a.data}, rssi=a.rssi
                )
            )
    with rec.open("a") as f:
        f.write('{"ts": 104, "address": "AA:BB')  # power lost mid-line
    assert main(["decode", str(rec), "--keys", str(keys), "--format", "jsonl"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["ts"] for r in rows] == [100.0, 101.0]


@pytest.mark.skipif(not have_tshark(), reason="tshark not installed")
def test_record_pcapng_export_is_read_by_tshark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_btsnoop(tmp_path / "log", 2001, ADVS)
    out = tmp_path / "out.pcapng"
    assert main(["record", "--from", str(src), "-o", str(out)]) == 0
    expected = [(a.address, a.data.hex(), a.rssi) for a in ADVS] * 2
    assert tshark_adverts(out) == expected
    names = subprocess.run(
        ["tshark", "-r", str(out), "-T", "fields", "-e", "btcommon.eir_ad.entry.device_name"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert names == ["SmartShunt", "SmartShunt"]
