"""Known-answer tests: frames and values from outside the project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from victron_ble_bms import KeyMismatch, decode
from victron_ble_bms.protocol import decode_plaintext
from victron_ble_bms.protocol.enums import BalancerStatus, CellBound

from . import vectors as v

SHARED_VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "known-answers.json"


def test_smartshunt_full_advert() -> None:
    record = decode(v.SMARTSHUNT_ADVERT, v.SMARTSHUNT_KEY)
    d = record.to_dict()
    assert d["record_type"] == "battery_monitor"
    assert d["record_type_id"] == 0x02
    assert d["model_id"] == 0xA389
    assert d["product"] == "SmartShunt 500A/50mV"
    assert d["nonce"] == 0x40B0
    assert d["battery_voltage_v"] == 12.53
    assert d["battery_current_a"] == 0.0
    assert d["consumed_ah"] == -50.0
    assert d["soc_pct"] == 50.0
    assert d["ttg_min"] is None
    assert d["alarm_reason"] == 0
    assert d["aux_mode"] == 3


def test_smartshunt_with_company_id_prefix() -> None:
    assert decode(b"\xe1\x02" + v.SMARTSHUNT_ADVERT, v.SMARTSHUNT_KEY) == decode(
        v.SMARTSHUNT_ADVERT, v.SMARTSHUNT_KEY
    )


def test_key_mismatch_vector() -> None:
    with pytest.raises(KeyMismatch) as info:
        decode(v.SMARTSHUNT_MISMATCH_ADVERT, "ff" * 16)
    assert info.value.frame_key_byte == 0xAF
    assert info.value.given_key_byte == 0xFF
    assert "0xaf" in str(info.value) and "0xff" in str(info.value)


def test_orion_dcdc_full_advert() -> None:
    d = decode(v.ORION_ADVERT, v.ORION_KEY).to_dict()
    assert d["record_type"] == "dcdc_converter"
    assert d["device_state"] == 0
    assert d["charger_error"] == 0
    assert d["input_voltage_v"] == 13.15
    assert d["output_voltage_v"] is None
    assert d["off_reason"] == 0x80
    assert d["product"] == "Orion Smart 12V/12V-18A DC-DC Converter"


def test_mppt_full_advert() -> None:
    d = decode(v.MPPT_ADVERT, v.MPPT_KEY).to_dict()
    assert d["record_type"] == "solar_charger"
    assert d["device_state"] == 4
    assert d["battery_voltage_v"] == 13.88
    assert d["battery_current_a"] == 1.4
    assert d["yield_today_kwh"] == 0.03
    assert d["pv_power_w"] == 19
    assert d["load_current_a"] == 0.0
    assert d["product"] == "BlueSolar Charger MPPT 75/15"


@pytest.mark.parametrize(
    ("payload", "balancer", "temperature", "voltage", "cells"),
    [
        (v.SMART_LITHIUM_1, 3, 13, 13.24, [3.31, 3.31, 3.31, 3.31]),
        (v.SMART_LITHIUM_2, 1, 14, 13.24, [3.31, 3.31, 3.31, 3.31]),
        (v.SMART_LITHIUM_3, 3, 13, 13.23, [3.31, 3.31, 3.31, 3.30]),
    ],
)
def test_smart_lithium_payloads(
    payload: bytes, balancer: int, temperature: int, voltage: float, cells: list[float]
) -> None:
    r = decode_plaintext(0x05, payload)
    assert int(r.bms_flags) == 0x06000000  # allowed to charge + allowed to discharge
    assert int(r.error_flags) == 0
    assert r.cell_voltages_v == (*cells, None, None, None, None)
    assert r.battery_voltage_v == voltage
    assert int(r.balancer_status) == balancer
    assert r.battery_temperature_c == temperature
    assert r.codes == ()
    assert r.allowed_to_charge and r.allowed_to_discharge and not r.pre_alarm


def test_smart_lithium_json_shape() -> None:
    d = decode_plaintext(0x05, v.SMART_LITHIUM_1).to_dict()
    assert d["balancer_status"] == "imbalance"
    assert d["cell_voltages_v"] == [3.31, 3.31, 3.31, 3.31, None, None, None, None]
    assert d["bms_flags"] == 100663296
    assert d["provisional"] is False


def test_lynx_payload() -> None:
    r = decode_plaintext(0x0A, v.LYNX_1)
    d = r.to_dict()
    assert d["bms_error"] == 0
    assert d["ttg_min"] == 14400
    assert d["battery_voltage_v"] == 26.99
    assert d["battery_current_a"] == -0.6
    assert d["io_status"] == 5525
    assert d["warnings_alarms"] == 5205
    assert d["soc_pct"] == 99.5
    assert d["consumed_ah"] == -4.4  # spec: consumed = −raw (victron-ble drops the sign)
    assert d["temperature_c"] is None  # 0x7F: the Lynx always sends "not available"
    assert d["io"] == {
        "contactor_closed": "yes",
        "allowed_to_charge": "yes",
        "allowed_to_discharge": "yes",
        "user_relay_active": "no",
        "aux_output_enabled": "yes",
        "remote_enabled": "yes",
        "alternator_allowed_to_charge": "yes",
        "field_7": "not_available",
    }
    assert d["alarms"] == {
        "low_cell_voltage": "ok",
        "high_current": "ok",
        "high_bms_temperature": "ok",
        "bad_contactor": "ok",
        "bms_cable": "unsupported",
        "load_disconnect": "ok",
        "low_soc": "ok",
        "field_7": "unsupported",
        "high_battery_temperature": "unsupported",
    }
    assert d["codes"] == []


def test_smart_bms_sample_is_provisional() -> None:
    r = decode_plaintext(0x0E, v.SMART_BMS_12_200)
    d = r.to_dict()
    assert d["provisional"] is True
    assert d["battery_voltage_v"] == 12.56
    assert d["system_voltage_v"] == 12.55
    assert d["alternator_voltage_v"] == 12.15
    assert d["alternator_current_pct"] == 0
    assert d["unidentified_hex"] == "18251100"
    assert d["codes"] == []


def test_cell_bounds_are_bounds_not_infinities() -> None:
    # cell 1 raw 0x00 (< 2.61 V), cell 2 raw 0x7E (> 3.85 V), cell 3 raw 0x01 (2.61 V),
    # cell 4 raw 0x7D (3.85 V), cells 5-8 0x7F (n/a): bits 48.. of the payload.
    cells = (0x7F << 21 | 0x7F << 14 | 0x7F << 7 | 0x7F) << 28 | 0x7D << 21 | 0x01 << 14 | 0x7E << 7
    payload = (cells << 48 | (1 << 128) - (1 << 104)).to_bytes(16, "little")
    r = decode_plaintext(0x05, payload)
    assert r.cell_voltages_v[:4] == (CellBound.BELOW, CellBound.ABOVE, 2.61, 3.85)
    assert r.to_dict()["cell_voltages_v"][:2] == ["<2.61", ">3.85"]
    assert r.min_cell_v == 2.61 and r.max_cell_v == 3.85
    assert r.balancer_status is None  # 0xF


@pytest.mark.skipif(not SHARED_VECTORS.exists(), reason="shared/ not beside the checkout")
def test_every_shared_vector() -> None:
    """Every entry of shared/vectors/known-answers.json decodes to its expected values."""
    for entry in json.loads(SHARED_VECTORS.read_text()):
        expected = entry["expected"]
        if entry["advert_hex"]:
            advert = bytes.fromhex(entry["advert_hex"])
            if expected.get("key_check_fails"):
                with pytest.raises(KeyMismatch):
                    decode(advert, entry["key_hex"])
                continue
            d = decode(advert, entry["key_hex"]).to_dict()
        else:
            d = decode_plaintext(entry["record_type"], bytes.fromhex(entry["decrypted_hex"]))
            d = d.to_dict()
        for name, value in expected.items():
            if name == "model_name":
                assert d["product"] == value
            elif name == "balancer_status":
                assert d[name] == BalancerStatus(value).name.lower()
            else:
                assert d[name] == value, (entry["source"], name)


def test_smart_lithium_pre_alarm_is_the_under_voltage_warning_bit() -> None:
    # docs/protocol.md §4.1: the battery sets bit 12 (WARN_UNDER_VOLTAGE, the manual's W-SL12
    # "pre-alarm") and never the generic bit 27; the dashboard's "Pre-alarm" row read only 27.
    flags = (1 << 25) | (1 << 26) | (1 << 12)
    r = decode_plaintext(0x05, flags.to_bytes(4, "little") + v.SMART_LITHIUM_1[4:])
    assert r.pre_alarm is True
    assert [c.id for c in r.codes or ()] == ["W-SL12"]


def test_keystream_is_fips_197_aes() -> None:
    # FIPS-197 appendix C.1 (AES-128): the one block operation every frame costs is AES itself,
    # done by `cryptography` (issue 23: no hand-rolled AES).
    from victron_ble_bms.protocol.crypto import KeyCipher

    cipher = KeyCipher(bytes(range(16)))
    plain = bytes.fromhex("00112233445566778899aabbccddeeff")
    assert cipher.encrypt_block(plain).hex() == "69c4e0d86a7b0430d8cdb78070b4c55a"
