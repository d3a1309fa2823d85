"""A newcomer's second hour (issue 25): `record` honours --scenario and says what it does,
writes keys a recording can find, `decode` uses the keys a recording's header names, and an
option that cannot apply is an error naming it."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from .user import CAPTURES, REPO, victron_bms

SCENARIOS = REPO / "victron_ble_bms" / "emulator" / "scenarios"


def test_record_scenario_records_the_scenarios_devices(tmp_path: Path) -> None:
    out = tmp_path / "cold.jsonl"
    r = victron_bms(
        tmp_path, "record", "-o", str(out), "--scenario", "cold-charge", "--duration", "300"
    )
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    # the first line names the source, the output and the keys
    assert "emulator" in first and "cold-charge" in first and str(out) in first
    assert f"{out}.keys.toml" in first
    listed = tomllib.loads((SCENARIOS / "cold-charge.toml").read_text())
    expected = sum(d.get("count", 1) for d in listed.get("devices", [{}]))
    lines = out.read_text().splitlines()
    addresses = {json.loads(line)["address"] for line in lines[1:]}
    assert len(addresses) == expected  # not the 7-device demo fleet
    # the keys path in the header is relative to the recording, and decodes everything
    header = json.loads(lines[0])
    assert (out.parent / header["keys"]).is_file()
    d = victron_bms(tmp_path, "decode", str(out), "--format", "jsonl")
    assert d.returncode == 0, d.stderr
    assert d.stderr.splitlines()[0].startswith(f"victron-bms: keys from {out}.keys.toml")
    codes = {c["id"] for line in d.stdout.splitlines() for c in json.loads(line)["codes"] or []}
    assert "A-SL22" in codes  # the manual's charge under-temperature alarm, 1 °C battery


def test_record_without_scenario_says_it_records_the_demo_fleet(tmp_path: Path) -> None:
    out = tmp_path / "demo.pcapng"
    r = victron_bms(tmp_path, "record", "-o", str(out), "--duration", "5")
    assert r.returncode == 0, r.stderr
    assert "demo fleet" in r.stdout.splitlines()[0]
    assert (tmp_path / "demo.pcapng.keys.toml").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "args, named",
    [
        (("--from", str(CAPTURES / "demo.jsonl"), "--scenario", "overheat"), "--scenario"),
        (("--from", str(CAPTURES / "demo.jsonl"), "--duration", "5"), "--duration"),
        (("--source", "ble", "--device", "lithium-12.8v-100ah"), "--device"),
        (("--source", "ble", "--seed", "3"), "--seed"),
    ],
)
def test_record_refuses_an_option_that_cannot_apply(
    tmp_path: Path, args: tuple[str, ...], named: str
) -> None:
    r = victron_bms(tmp_path, "record", "-o", str(tmp_path / "x.jsonl"), *args)
    assert r.returncode == 2
    assert named in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.jsonl").exists()


def test_decode_without_keys_uses_the_header_keys_and_not_beyond(tmp_path: Path) -> None:
    recording = tmp_path / "rec.jsonl"
    src = (CAPTURES / "scenario-overheat.jsonl").read_text().splitlines()
    header = json.loads(src[0])
    assert header["keys"] == "keys.toml"
    keys = tmp_path / "keys.toml"
    keys.write_text((CAPTURES / "keys.toml").read_text())
    keys.chmod(0o600)
    recording.write_text("\n".join(src[:50]) + "\n")
    r = victron_bms(tmp_path, "decode", str(recording))
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[0] == (
        f"victron-bms: keys from {keys}, named in the header of {recording} "
        "(--keys FILE to use another)"
    )
    # a header pointing outside its folder is not followed: the user's own (empty) keys are used
    header["keys"] = "../keys.toml"
    (tmp_path / "sub").mkdir()
    hostile = tmp_path / "sub" / "rec.jsonl"
    hostile.write_text("\n".join([json.dumps(header), *src[1:50]]) + "\n")
    r = victron_bms(tmp_path, "decode", str(hostile))
    assert r.returncode == 1
    assert "not found or not usable; using the default keys file" in r.stderr.splitlines()[0]
    assert "no key for any" in r.stderr


def test_pin_change_recording_is_as_documented(tmp_path: Path) -> None:
    """captures/README.md: with keys.toml the early frames mismatch, the later ones decode."""
    assert "the *early* frames show as" in (CAPTURES / "README.md").read_text()
    r = victron_bms(
        tmp_path, "decode", str(CAPTURES / "scenario-pin-change.jsonl"), "--format", "jsonl"
    )
    assert r.returncode == 0, r.stderr
    decoded = [json.loads(line)["ts"] for line in r.stdout.splitlines()]
    first_ts = json.loads((CAPTURES / "scenario-pin-change.jsonl").read_text().splitlines()[1])[
        "ts"
    ]
    assert decoded and min(decoded) - first_ts > 250  # nothing decodes before the change (300 s)
    assert "key mismatch" in r.stderr


def test_keys_list_json_masks_and_names_the_file_on_stderr(tmp_path: Path) -> None:
    key = "0123456789abcdef0123456789abcdef"
    name = "House \x1b[31mbattery"
    assert (
        victron_bms(tmp_path, "keys", "add", "aa-bb-cc-dd-ee-ff", key, "--name", name).returncode
        == 0
    )
    plain = victron_bms(tmp_path, "keys", "list")
    assert plain.stdout.splitlines()[0].startswith("1 device key in ")
    r = victron_bms(tmp_path, "keys", "list", "--json")
    assert r.returncode == 0
    (obj,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert obj["address"] == "AA:BB:CC:DD:EE:FF" and obj["name"] == name
    assert obj["key_masked"].startswith("01") and obj["key_masked"].endswith("ef")
    assert key not in r.stdout and "\x1b" not in r.stdout  # escaped, never sent raw
    assert "keys.toml" in r.stderr


def test_emulate_says_where_frames_go(tmp_path: Path) -> None:
    base = ("emulate", "--device", "lithium-12.8v-100ah", "--duration", "2", "--speed", "max")
    r = victron_bms(tmp_path, *base)
    assert r.returncode == 0
    assert "frames go nowhere" in r.stdout.splitlines()[0] and "--advertise" in r.stdout
    r = victron_bms(tmp_path, *base, "--capture", str(tmp_path / "c.jsonl"))
    assert f"frames written to {tmp_path / 'c.jsonl'}" in r.stdout.splitlines()[0]


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`victron-bms … | head -1`: no traceback when the reader goes away."""
    import subprocess

    from .user import env

    cmd = ["victron-bms", "emulate", "--device", "lithium-12.8v-100ah", "--speed", "max"]
    p = subprocess.Popen(  # noqa: S603
        [*cmd, "--duration", "600"],
        env=env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stdout.readline().startswith(b"emulating")
    p.stdout.close()  # like head -1: the rest of the output, and "done: …", hit a closed pipe
    _, err = p.communicate(timeout=120)
    assert b"Traceback" not in err and p.returncode == 141


@pytest.mark.parametrize(
    "args, named",
    [
        (("--speed", "5"), "--speed only applies to --replay"),
        (("--demo", "--speed", "5"), "--speed only applies to --replay"),
        (("--demo", "--topic-prefix", "boat"), "--topic-prefix only applies to --mqtt"),
        (("--mqtt", "mqtt://127.0.0.1:9", "--keys", "k.toml"), "--keys cannot apply to --mqtt"),
        (("--demo", "--keys", "k.toml"), "--keys cannot apply to --demo"),
    ],
)
def test_dashboard_refuses_an_option_that_cannot_apply(
    tmp_path: Path, args: tuple[str, ...], named: str
) -> None:
    r = victron_bms(tmp_path, "dashboard", *args, timeout=30)
    assert r.returncode == 2 and named in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_capture_and_record_name_the_same_option_in_scan_and_emulate(tmp_path: Path) -> None:
    for command in ("scan", "emulate"):
        shown = victron_bms(tmp_path, command, "--help").stdout
        # Python 3.13's argparse shows the metavar once: "--capture, --record FILE".
        assert re.search(r"--capture( FILE)?, --record FILE", shown), command
    out = tmp_path / "e.jsonl"
    r = victron_bms(
        tmp_path, "emulate", "--device", "lithium-12.8v-100ah", "--duration", "2",
        "--speed", "max", "--record", str(out),
    )  # fmt: skip
    assert r.returncode == 0 and len(out.read_text().splitlines()) > 1


def test_decode_table_marks_a_cut_name_with_an_ellipsis(tmp_path: Path) -> None:
    from .user import SHUNT_HEX, SHUNT_KEY, keys_file

    long_name = "Starter battery in the forward locker"  # advertised: from the air
    capture = tmp_path / "one.jsonl"
    header = {"format": "victron-ble-bms-capture", "version": 1, "source": "test"}
    adv = {
        "ts": 1700000000.0,
        "address": "D1:23:45:67:89:AB",
        "rssi": -60,
        "name": long_name,
        "manufacturer_data": {"737": SHUNT_HEX},
    }
    capture.write_text(json.dumps(header) + "\n" + json.dumps(adv) + "\n")
    keys = keys_file(tmp_path, "D1:23:45:67:89:AB", SHUNT_KEY)
    r = victron_bms(tmp_path, "decode", str(capture), "--keys", str(keys))
    assert r.returncode == 0, r.stderr
    (row,) = [line for line in r.stdout.splitlines() if "D1:23:45:67:89:AB" in line]
    assert long_name[:19] + "…" in row and long_name not in row
    assert "SmartShunt 500A/50mV " in row  # a product that fits is whole, with no ellipsis


def test_long_jobs_show_progress_on_a_terminal_only(tmp_path: Path) -> None:
    import os
    import subprocess

    from .user import env

    cmd = ["victron-bms", "record", "-o", str(tmp_path / "r.jsonl"), "--duration", "900"]
    quiet = subprocess.run(cmd, env=env(tmp_path), capture_output=True, timeout=120)  # noqa: S603
    assert b"\r" not in quiet.stderr and b"%" not in quiet.stderr  # stderr is a pipe here
    forced = dict(env(tmp_path), VICTRON_BMS_PROGRESS="1")  # as on a terminal
    shown = subprocess.run(cmd, env=forced, capture_output=True, timeout=120)  # noqa: S603
    err = shown.stderr.decode()  # bytes: text mode would turn each \r into a newline
    assert shown.returncode == 0 and "recording: [" in err and "/900 simulated s" in err
    # the line is erased at the end: the summary stands alone after it
    last = err.split("\r")[-1]
    assert last.startswith("victron-bms: ") and "advertisements written" in last
    assert os.path.exists(tmp_path / "r.jsonl")
