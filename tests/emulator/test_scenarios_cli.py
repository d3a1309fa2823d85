"""Scenario files: bundled ones load, bad ones give one clear error naming file and key; and the
`victron-bms emulate` command as a user runs it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from victron_ble_bms.cli import main
from victron_ble_bms.emulator import (
    DeviceSpec,
    Emulator,
    ScenarioError,
    bundled_names,
    demo_fleet,
    load_scenario,
)
from victron_ble_bms.protocol import DecodeError, decode
from victron_ble_bms.sources.capture.jsonl import read_jsonl
from victron_ble_bms.sources.keys import KeyStore

REQUIRED = {
    "overload",
    "system-plus",
    "lynx-contactor",
    "lynx-overcharge",
    "parallel-bank",
    "flat-battery",
    "balancer-errors",
    "defective-cell",
    "pin-change",
    "normal-day",
    "deep-discharge",
    "imbalance",
    "cold-charge",
    "overheat",
    "alternator",
    "short-circuit",
    "bms-cable",
    "settings-lost",
    "fleet",
    "system-plus-charging",
    "lynx-overload",
}


def test_bundled_scenarios_are_all_there_and_valid() -> None:
    assert REQUIRED <= set(bundled_names())
    for name in bundled_names():
        sc = load_scenario(name)
        Emulator([DeviceSpec("smart-bms-12-200")], sc, seed=1)  # validates settings too


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[initial]\nsoc = 3", "initial.soc: unknown key"),
        ("[[chargers]]\nkind = 'wind'\ncurrent_a = 3", "chargers[0].kind: 'wind' is not one of"),
        ("[[loads]]\ncurrent_a = 'lots'", "loads[0].current_a: must be a number"),
        ("[[chargers]]\nkind = 'solar'", "chargers[0].current_a: is required"),
        ("[initial]\nsoc_pct = 120", "initial.soc_pct: 120 is out of range"),
        ("duration_s = [", "not valid TOML"),
    ],
)
def test_bad_scenarios_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    assert str(path) in str(info.value) and expected in str(info.value)


def test_settings_outside_the_manual_ranges_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[settings]\natd_cell_v = 2.5\n")  # manual §4.4.1: 2.60–2.80 V
    with pytest.raises(ScenarioError, match=r"settings\.atd_cell_v: .*2\.6…2\.8"):
        Emulator([DeviceSpec("lithium-12.8v-100ah")], load_scenario(str(path)))
    path.write_text("[settings]\ncharge_limit_v = 15.5\n")  # Smart BMS §3.5.1: 13.0–15.3 V
    with pytest.raises(ScenarioError, match=r"charge_limit_v"):
        Emulator([DeviceSpec("smart-bms-cl-12-100")], load_scenario(str(path)))
    path.write_text("[settings]\nfuse = '90A'\n")
    with pytest.raises(ScenarioError, match=r"fuse table"):
        Emulator([DeviceSpec("smart-bms-cl-12-100")], load_scenario(str(path)))


def test_emulate_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulate", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("lithium-12.8v-100ah", "lithium-25.6v-200ah", "smart-bms-12-200",
                 "lynx-smart-bms-500", *REQUIRED):  # fmt: skip
        assert name in out


def test_emulate_capture_decodes_and_shows_the_sequence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "out.jsonl"
    argv = ["emulate", "--device", "lithium-12.8v-100ah", "--scenario", "deep-discharge",
            "--speed", "max", "--duration", "600", "--advertise", "none",
            "--capture", str(out_file), "--seed", "4", "--exact"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    address, key = re.search(r"([0-9A-F:]{17})  key ([0-9a-f]{32})", out).groups()  # type: ignore[union-attr]
    advs = list(read_jsonl(out_file))
    assert len(advs) == 600 and {a.address for a in advs} == {address}
    assert advs[-1].ts - advs[0].ts == pytest.approx(599, abs=1)  # simulated time
    records = [decode(a.victron_data, key) for a in advs]
    ts = [a.ts for a in advs]
    w = next(i for i, r in enumerate(records) if "W-SL12" in {c.id for c in r.codes})
    a = next(i for i, r in enumerate(records) if "A-SL11" in {c.id for c in r.codes})
    assert ts[a] - ts[w] >= 30


def test_emulate_user_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["emulate", "--device", "toaster"]) == 2
    assert "unknown device type 'toaster'" in capsys.readouterr().err
    assert main(["emulate", "--device", "lithium-12.8v-100ah", "--scenario", "nope"]) == 2
    assert "no such scenario file" in capsys.readouterr().err
    assert main(["emulate", "--device", "lithium-12.8v-100ah", "--speed", "max",
                 "--advertise", "bluez"]) == 2  # fmt: skip
    assert "--speed max only works" in capsys.readouterr().err
    assert main(["emulate", "--device", "lithium-12.8v-100ah:AA:BB:CC:DD:EE:FF:1234"]) == 2
    assert "key" in capsys.readouterr().err.lower()


def test_device_spec_with_address_and_key() -> None:
    key = "00112233445566778899aabbccddeeff"
    from victron_ble_bms.emulator import parse_device_spec

    spec = parse_device_spec(f"lithium-12.8v-100ah:aa:bb:cc:dd:ee:ff:{key}")
    emu = Emulator([spec], load_scenario("normal-day"))
    assert emu.keys == {"AA:BB:CC:DD:EE:FF": bytes.fromhex(key)}


def test_demo_fleet_balances_and_raises_a_code_in_the_first_minute() -> None:
    emu = Emulator(demo_fleet(), seed=1)
    keys = emu.keys
    records = [decode(a.victron_data, keys[a.address]) for a in emu.run(60)]
    assert any(getattr(r, "balancer_status", None) is not None and r.balancer_status.name ==
               "BALANCING" for r in records)  # fmt: skip
    assert any(c.id[:2] in ("W-", "A-") for r in records for c in r.codes)
    types = {emu.transmitter(a).identity.type_name for a in keys}
    assert {"lithium-12.8v-50ah", "lithium-25.6v-200ah", "smart-bms-12-200",
            "lynx-smart-bms-500"} <= types  # fmt: skip


# -- every scenario says what it shows; every emulated key is published (issue 13 "Also",
# issue 10 item 2) ----------------------------------------------------------------------------

CAPTURES = Path(__file__).resolve().parents[2] / "captures"

# The codes each bundled recording must show (from the manuals' code tables).
EXPECTED_CODES = {
    "balancer-errors": {"E-SL9", "E-SL10", "E-SL1"},
    "bms-cable": {"E-B32"},
    "cold-charge": {"A-SL22"},
    "deep-discharge": {"W-SL12", "A-SL11"},
    "flat-battery": {"W-SL12", "A-SL11", "E-SL24"},
    "lynx-contactor": {"W-B01", "A-B01"},
    "lynx-overcharge": {"A-SL9"},
    "lynx-overload": {"W-B02", "A-B02"},
    "overheat": {"A-SL15"},
    "overload": {"A-A12"},
    "overvoltage": {"A-SL9"},
    "settings-lost": {"E-SL119"},
    "short-circuit": {"A-A12"},
    "system-plus": {"A-SL11"},
    "system-plus-charging": {"W-SL12", "A-SL11"},
}


def test_every_bundled_scenario_names_its_devices_and_the_manual_behaviour_it_shows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["emulate", "--list"]) == 0
    listing = " ".join(capsys.readouterr().out.split())
    for name in bundled_names():
        sc = load_scenario(name)
        assert sc.devices, name
        assert "§" in sc.demonstrates or "manual" in sc.demonstrates, name
        assert " ".join(sc.demonstrates.split())[:60] in listing, name


def test_emulate_capture_writes_its_keys_beside_it_and_names_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "run.jsonl"
    argv = ["emulate", "--scenario", "bms-cable", "--speed", "max", "--duration", "120",
            "--capture", str(out_file), "--seed", "9"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    keys_file = tmp_path / "run.jsonl.keys.toml"
    assert keys_file.stat().st_mode & 0o777 == 0o600
    header = json.loads(out_file.read_text().splitlines()[0])
    assert header["keys"] == "run.jsonl.keys.toml"
    assert main(["decode", str(out_file), "--keys", str(keys_file), "--format", "jsonl"]) == 0
    summary = capsys.readouterr().err
    frames = len(out_file.read_text().splitlines()) - 1
    assert f"{frames} decoded, 0 no key, 0 key mismatch" in summary


def test_demo_fleet_keys_are_in_captures_keys_toml_whatever_the_seed() -> None:
    store = KeyStore.load(CAPTURES / "keys.toml")
    for seed in (0, 1, 42):
        emu = Emulator(demo_fleet(), seed=seed)
        assert len(emu.keys) == 7
        for address, key in emu.keys.items():
            assert store[address] == key


def test_record_from_the_emulator_decodes_with_captures_keys_toml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "x.jsonl"
    assert main(["record", "-o", str(out_file), "--source", "emulator", "--duration", "30"]) == 0
    header = json.loads(out_file.read_text().splitlines()[0])
    assert header["keys"] == "x.jsonl.keys.toml"  # relative to the recording (issue 25 item 6)
    assert KeyStore.load(tmp_path / header["keys"]).entries()
    store = KeyStore.load(CAPTURES / "keys.toml")
    advs = list(read_jsonl(out_file))
    assert len({a.address for a in advs}) == 7
    for a in advs:
        decode(a.victron_data, store[a.address])  # every frame: the bug was 336 of 784


@pytest.mark.parametrize("name", bundled_names())
def test_bundled_recording_decodes_with_keys_toml_and_shows_its_codes(name: str) -> None:
    path = CAPTURES / f"scenario-{name}.jsonl"
    header = json.loads(path.read_text().splitlines()[0])
    assert header["scenario"] == name and header["keys"] == "keys.toml"
    store = KeyStore.load(CAPTURES / header["keys"])
    seen: set[str] = set()
    types: set[str] = set()
    mismatches = 0
    for a in read_jsonl(path):
        try:
            record = decode(a.victron_data, store[a.address])
        except DecodeError:
            mismatches += 1  # only after the PIN change (checked below)
            continue
        seen |= {c.id for c in record.codes or ()}
        types.add(type(record).__name__)
    assert mismatches == 0 or name == "pin-change"
    if name == "pin-change":
        assert mismatches > 100
    assert EXPECTED_CODES.get(name, set()) <= seen, seen
    wanted = {d.type for d in load_scenario(name).devices}
    if wanted & {"smart-bms-12-200", "smart-bms-cl-12-100"}:
        assert "SmartBmsRecord" in types  # not just a 12.8 V battery, as before
    if "lynx-smart-bms-500" in wanted:
        assert "LynxSmartBmsRecord" in types


def test_demo_recording_decodes_every_frame() -> None:
    store = KeyStore.load(CAPTURES / "keys.toml")
    advs = list(read_jsonl(CAPTURES / "demo.jsonl"))
    assert len({a.address for a in advs}) == 7
    for a in advs:
        decode(a.victron_data, store[a.address])
