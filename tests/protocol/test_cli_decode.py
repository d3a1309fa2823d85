"""`victron-bms decode --key … HEX [--json]` as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

from . import vectors as v


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "decode", *args], capture_output=True, text=True
    )


def test_json_output_matches_known_answer() -> None:
    out = run("--key", v.SMARTSHUNT_KEY, "--json", v.SMARTSHUNT_ADVERT.hex())
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["record_type"] == "battery_monitor" and d["record_type_id"] == 2
    assert d["model_id"] == 41865 and d["nonce"] == 0x40B0
    assert d["battery_voltage_v"] == 12.53 and d["consumed_ah"] == -50.0
    assert d["provisional"] is False and d["codes"] == []


def test_table_output_has_units() -> None:
    out = run("--key", v.SMARTSHUNT_KEY.upper(), "e1 02 " + v.SMARTSHUNT_ADVERT.hex(" "))
    assert out.returncode == 0, out.stderr
    assert "12.53 V" in out.stdout and "SmartShunt 500A/50mV" in out.stdout


def test_key_mismatch_is_one_clear_line() -> None:
    out = run("--key", "ff" * 16, v.SMARTSHUNT_MISMATCH_ADVERT.hex())
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "key mismatch" in lines[0] and "0xaf" in lines[0] and "PIN" in lines[0]
    assert "Traceback" not in out.stderr


def test_wrong_length_key_says_so_without_echo() -> None:
    out = run("--key", v.SMARTSHUNT_KEY[:31], v.SMARTSHUNT_ADVERT.hex())
    assert out.returncode == 1
    assert "31 hex digits" in out.stderr and v.SMARTSHUNT_KEY[:31] not in out.stderr


def test_not_hex() -> None:
    out = run("--key", v.SMARTSHUNT_KEY, "hello")
    assert out.returncode == 2 and "not hex" in out.stderr


def test_table_values_show_cell_bounds_once() -> None:
    from victron_ble_bms.cli.output import main_values
    from victron_ble_bms.protocol import decode_plaintext

    payload = bytearray(v.SMART_LITHIUM_1[:16])
    payload[6] &= 0x80  # cell 1 raw 0: below 2.61 V
    text = main_values(decode_plaintext(0x05, bytes(payload)))
    assert "cells <2.61/3.31/3.31/3.31" in text and "<<" not in text
