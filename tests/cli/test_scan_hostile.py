"""`victron-bms scan` with devices whose names are rich markup or terminal escapes, as a user
runs it: a separate process on a private bus with the stand-in BlueZ, stdout a real terminal
(`script` gives it a pty, so the live rich table is drawn), and piped (line mode, --json)."""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from tests.dbus_fixture import private_bus, run
from tests.scan import fleet
from victron_ble_bms.emulator.dbus_daemon import PrivateBus
from victron_ble_bms.emulator.virtual_bluez import VirtualBluezAdvertiser
from victron_ble_bms.sources.advertisement import Advertisement

from .user import SHUNT_HEX, SHUNT_KEY, env

__all__ = ["private_bus"]

NAMES = {
    "D1:23:45:67:89:AB": "[@click=app.quit]Tap me[/]",
    "D1:23:45:67:89:AC": "x[/b]y",
    "D1:23:45:67:89:AD": "\x1b]0;pwned\x07\x1b[2Jz",
}


async def _feed(va: VirtualBluezAdvertiser, changing: bool = False) -> None:
    nonce = 100
    while True:
        nonce += 1
        for address, name in NAMES.items():
            if changing:  # a new frame every time (a repeat is not recorded again)
                adv = replace(fleet.advertisement(address, fleet.KEY_KEYED, nonce), name=name)
            else:
                data = {0x02E1: bytes.fromhex(SHUNT_HEX)}
                adv = Advertisement(ts=0.0, address=address, manufacturer_data=data, name=name)
            await va.publish(adv)
        await asyncio.sleep(0.1 if changing else 0.2)


async def _scan(
    bus: PrivateBus, home: Path, argv: list[str], tty: bool, changing: bool = False
) -> tuple[int, str, str]:
    va = VirtualBluezAdvertiser(bus_address=bus.address)
    await va.start()
    feeder = asyncio.create_task(_feed(va, changing))
    try:
        e = dict(env(home), DBUS_SYSTEM_BUS_ADDRESS=bus.address, COLUMNS="160")
        cmd = ["victron-bms", *argv]
        if tty:  # util-linux script: stdout is a pty, as in a terminal
            cmd = ["script", "-qec", shlex.join(cmd), "/dev/null"]
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            env=e,
            stdin=subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
    finally:
        feeder.cancel()
        await va.close()


def _keys(home: Path) -> Path:
    f = home / "keys.toml"
    f.write_text("".join(f'[devices."{a}"]\nkey = "{SHUNT_KEY}"\n' for a in NAMES))
    f.chmod(0o600)
    return f


def test_scan_table_on_a_terminal_shows_hostile_names_as_text(
    private_bus: PrivateBus, tmp_path: Path
) -> None:
    keys = _keys(tmp_path)
    argv = ["scan", "--duration", "3", "--keys", str(keys)]
    code, out, err = run(_scan(private_bus, tmp_path, argv, tty=True), timeout=60)
    assert code == 0, out + err
    assert "Traceback" not in out + err
    assert "[@click=app.quit]Tap me[/]" in out and "x[/b]y" in out
    assert "\\x1b]0;pwned\\x07" in out  # shown escaped …
    assert "\x1b]0;pwned" not in out  # … never sent to the terminal
    assert "12.53 V" in out


def test_scan_lines_and_json_keep_names_safe(private_bus: PrivateBus, tmp_path: Path) -> None:
    keys = _keys(tmp_path)
    argv = ["scan", "--duration", "2", "--keys", str(keys)]
    code, out, err = run(_scan(private_bus, tmp_path, argv, tty=False), timeout=60)
    assert code == 0 and "Traceback" not in err, err
    assert "\x1b" not in out + err and "x[/b]y" in out
    code, out, err = run(_scan(private_bus, tmp_path, [*argv, "--json"], tty=False), timeout=60)
    assert code == 0, err
    names = {json.loads(line)["name"] for line in out.splitlines()}
    assert "x[/b]y" in names and "[@click=app.quit]Tap me[/]" in names


def test_scan_record_on_a_full_disk_stops_with_one_line(
    private_bus: PrivateBus, tmp_path: Path
) -> None:
    """issue 9 item 7 for `scan --record`: one clear line, non-zero exit, lines intact."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs (needs root, as CI runs)")
    try:
        (mnt / "filler").write_bytes(b"\0" * (56 * 1024))  # leave room for a few lines only
        out = mnt / "scan.jsonl"
        argv = ["scan", "--json", "--duration", "30", "--keys", str(_keys(tmp_path))]
        code, stdout, err = run(
            _scan(private_bus, tmp_path, [*argv, "--record", str(out)], False, True), timeout=90
        )
        assert code != 0
        assert "Traceback" not in err
        assert err.count("disk full") == 1, err
        lines = out.read_bytes().split(b"\n")
        assert lines[-1] == b"" and len(lines) > 2
        assert all(json.loads(x) for x in lines[:-1])  # every line whole
        assert stdout.count("\n") >= 1  # readings were shown until then
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
