"""Keys file integrity (issue 9 item 8), run as a user runs `victron-bms keys …`: concurrent
writers lose nothing, the directory is 0700 even under umask 000, the file 0600, a symlinked
file stays a symlink, `aa:…`/`AA:…` are one device, no temporary file is ever left behind."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from victron_ble_bms.sources.keys import KeyFileError, KeyStore

KEY_A = "aff4d0995b7d1e176c0c33ecb9e70dcd"
KEY_B = "0123456789abcdef0123456789abcdef"


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = str(home / "cfg")
    return env


def _keys(home: Path, *args: str, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["victron-bms", "keys", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,  # noqa: PLW1509
    )


def _default(home: Path) -> Path:
    return home / "cfg" / "victron-ble-bms" / "keys.toml"


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_fifty_races_of_two_writers_lose_nothing(tmp_path: Path) -> None:
    lost = 0
    for race in range(50):
        home = tmp_path / f"r{race}"
        a = f"C0:11:22:33:{race:02X}:01"
        b = f"C0:11:22:33:{race:02X}:02"
        procs = [
            subprocess.Popen(
                ["victron-bms", "keys", "add", addr, key],
                env=_env(home),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for addr, key in ((a, KEY_A), (b, KEY_B))
        ]
        for p in procs:
            assert p.wait(timeout=60) == 0, p.stderr.read() if p.stderr else ""
            if p.stderr:
                p.stderr.close()
        store = KeyStore.load(_default(home))
        lost += (a not in store) + (b not in store)
        assert _leftovers(_default(home).parent) == []
    assert lost == 0


def test_directory_0700_and_file_0600_even_under_umask_000(tmp_path: Path) -> None:
    r = _keys(tmp_path, "add", "C0:11:22:33:44:55", KEY_A, umask=0)
    assert r.returncode == 0, r.stderr
    path = _default(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700  # cfg/ was made by us
    assert _leftovers(path.parent) == []


def test_symlinked_keys_file_is_followed_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "keys.toml"
    real.parent.mkdir()
    real.write_text(f'[devices."C0:11:22:33:44:55"]\nkey = "{KEY_A}"\n')
    real.chmod(0o600)
    link = _default(tmp_path)
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    r = _keys(tmp_path, "add", "C0:11:22:33:44:66", KEY_B)
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and link.resolve() == real
    store = KeyStore.load(real)
    assert "C0:11:22:33:44:55" in store and "C0:11:22:33:44:66" in store
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert _leftovers(real.parent) == [] and _leftovers(link.parent) == []


def test_two_spellings_of_one_address_are_one_device(tmp_path: Path) -> None:
    path = _default(tmp_path)
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_text(
        f'[devices."c0:11:22:33:44:55"]\nkey = "{KEY_A}"\nname = "House"\n'
        f'[devices."C0:11:22:33:44:55"]\nkey = "{KEY_A.upper()}"\n'
    )
    path.chmod(0o600)
    r = _keys(tmp_path, "list")
    assert r.returncode == 0
    assert r.stdout.count("C0:11:22:33:44:55") == 1 and "House" in r.stdout
    assert "listed twice" in r.stderr
    # Different keys for the same device cannot be merged silently: refused, key not shown.
    path.write_text(
        f'[devices."c0:11:22:33:44:55"]\nkey = "{KEY_A}"\n'
        f'[devices."C0-11-22-33-44-55"]\nkey = "{KEY_B}"\n'
    )
    r = _keys(tmp_path, "list")
    assert r.returncode == 1
    assert "two different keys for C0:11:22:33:44:55" in r.stderr
    assert KEY_A not in r.stderr and KEY_B not in r.stderr
    # Adding through the CLI writes one normalised entry.
    path.write_text(f'[devices."c0:11:22:33:44:55"]\nkey = "{KEY_A}"\n')
    assert _keys(tmp_path, "add", "C0:11:22:33:44:55", KEY_B).returncode == 0
    text = path.read_text()
    assert text.count("[devices.") == 1 and '"C0:11:22:33:44:55"' in text and KEY_B in text


def test_a_store_saves_only_its_own_changes(tmp_path: Path) -> None:
    """The dashboard's key dialog holds a KeyStore loaded at start; a key the CLI added since
    must survive the dialog's save (it erased it before)."""
    path = tmp_path / "keys.toml"
    dialog = KeyStore.load(path, missing_ok=True)
    assert _keys(tmp_path, "--keys", str(path), "add", "C0:11:22:33:44:01", KEY_A).returncode == 0
    dialog.add("C0:11:22:33:44:02", KEY_B)
    dialog.save()
    on_disk = KeyStore.load(path)
    assert set(on_disk) == {"C0:11:22:33:44:01", "C0:11:22:33:44:02"}
    assert set(dialog) == set(on_disk)  # the store now sees the other writer's key too
    # A removal is a change too; the other writer's key stays.
    assert _keys(tmp_path, "--keys", str(path), "add", "C0:11:22:33:44:03", KEY_A).returncode == 0
    dialog.remove("C0:11:22:33:44:02")
    dialog.save()
    assert set(KeyStore.load(path)) == {"C0:11:22:33:44:01", "C0:11:22:33:44:03"}


def test_a_corrupt_file_on_disk_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    store = KeyStore(path)
    store.add("C0:11:22:33:44:01", KEY_A)
    path.write_text("[devices\n")  # someone's half-edited file: keep it, say so
    with pytest.raises(KeyFileError, match="not valid TOML"):
        store.save()
    assert path.read_text() == "[devices\n"
    assert _leftovers(tmp_path) == []


def test_write_failure_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    store = KeyStore(path)
    store.add("C0:11:22:33:44:01", KEY_A)
    store.save()
    before = path.read_bytes()
    store.add("C0:11:22:33:44:02", KEY_B)
    big = KeyStore(path)
    big.add("C0:11:22:33:44:03", KEY_B, name="x" * 200_000)  # larger than the tmpfs
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    try:
        small = mnt / "keys.toml"
        ok = KeyStore(small)
        ok.add("C0:11:22:33:44:01", KEY_A)
        ok.save()
        kept = small.read_bytes()
        big.path = small
        with pytest.raises(KeyFileError, match="No space left"):
            big.save()
        assert small.read_bytes() == kept
        assert _leftovers(mnt) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    assert path.read_bytes() == before
