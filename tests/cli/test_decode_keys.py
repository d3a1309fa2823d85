"""`decode FILE` uses the default keys file like `scan` and `dashboard`, and says why when
nothing decodes (issue 10 item 1); messages that misled (issue 10 item 4)."""

from __future__ import annotations

from pathlib import Path

from .user import CAPTURES, SHUNT_HEX, SHUNT_KEY, default_keys, victron_bms

FLEET = str(CAPTURES / "scenario-fleet.jsonl")
SAMPLE = str(CAPTURES / "sample-hci.pcap")


def test_decode_uses_the_default_keys_file_after_keys_import(tmp_path: Path) -> None:
    # Before: "0 decoded, N no key", exit 0, no hint.
    before = victron_bms(tmp_path, "decode", SAMPLE)
    assert before.returncode == 1
    assert "no key for any of the 3 device(s)" in before.stderr
    assert "victron-bms keys add" in before.stderr and "--keys" in before.stderr
    assert str(default_keys(tmp_path)) in before.stderr and "not created yet" in before.stderr
    # The SmartShunt's key from the public vectors, imported the way the README says.
    lines = tmp_path / "keys.txt"
    lines.write_text(f"D1:23:45:67:89:AB@{SHUNT_KEY}\n")
    assert victron_bms(tmp_path, "keys", "import", str(lines)).returncode == 0
    after = victron_bms(tmp_path, "decode", SAMPLE, "--format", "jsonl")
    assert after.returncode == 0, after.stderr
    assert '"battery_voltage_v": 12.53' in after.stdout  # the vector's published value
    assert ": 20 decoded, 40 no key" in after.stderr


def test_wrong_keys_say_so_and_exit_non_zero(tmp_path: Path) -> None:
    keys = tmp_path / "k.toml"
    keys.write_text(f'[devices."D1:23:45:67:89:AB"]\nkey = "{"ff" * 16}"\n')
    keys.chmod(0o600)
    r = victron_bms(tmp_path, "decode", SAMPLE, "--keys", str(keys))
    assert r.returncode == 1
    assert "nothing decoded from 3 device(s) with --keys" in r.stderr
    assert (
        "2 device(s) have no key" in r.stderr and "1 device(s) have a key that does not" in r.stderr
    )


def test_unknown_device_is_not_a_silent_success(tmp_path: Path) -> None:
    r = victron_bms(
        tmp_path,
        "decode",
        SAMPLE,
        "--keys",
        str(CAPTURES / "keys.toml"),
        "--device",
        "aa-bb-cc-dd-ee-ff",
    )
    assert r.returncode == 1 and r.stdout == ""
    assert "60 frames read, 60 of other devices skipped (--device), 0 kept" in r.stderr
    assert "no frames from AA:BB:CC:DD:EE:FF" in r.stderr
    assert "D1:23:45:67:89:AB, E4:00:00:00:00:01, E4:00:00:00:00:02" in r.stderr


def test_missing_file_directory_and_odd_hex_messages(tmp_path: Path) -> None:
    r = victron_bms(tmp_path, "decode", "nosuchfile.pcap")
    assert r.returncode == 2
    assert r.stderr.strip() == "victron-bms: nosuchfile.pcap: no such file"
    r = victron_bms(tmp_path, "decode", str(tmp_path))
    assert r.returncode == 2 and "is a directory" in r.stderr and "no such file" not in r.stderr
    r = victron_bms(tmp_path, "decode", "--key", SHUNT_KEY, SHUNT_HEX[:-1])
    assert r.returncode == 2
    assert "45 hex digits is an odd number" in r.stderr
    assert SHUNT_HEX[:40] not in r.stderr  # a valid prefix, quoted as if it were the problem


def test_keys_add_names_the_bad_character(tmp_path: Path) -> None:
    r = victron_bms(tmp_path, "keys", "add", "AA:BB:CC:DD:EE:GG", SHUNT_KEY)
    assert r.returncode == 2
    assert "'G' is not a hex digit" in r.stderr and "10 hex digits" not in r.stderr
    assert not default_keys(tmp_path).exists()


def test_permission_warning_prints_once(tmp_path: Path) -> None:
    keys = default_keys(tmp_path)
    keys.parent.mkdir(parents=True)
    keys.write_text(f'[devices."D1:23:45:67:89:AB"]\nkey = "{SHUNT_KEY}"\n')
    keys.chmod(0o644)
    for args in (("keys", "list"), ("decode", SAMPLE)):
        r = victron_bms(tmp_path, *args)
        assert r.stderr.count("readable by others") == 1, r.stderr
