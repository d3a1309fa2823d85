"""`victron-bms keys`: the device keys file (add, list masked, remove, import).

    victron-bms keys add ADDR KEY [--name N]
    victron-bms keys list
    victron-bms keys remove ADDR
    victron-bms keys import FILE          # lines "ADDR@KEY" or "ADDR KEY" (# comments)

Default file `$XDG_CONFIG_HOME/victron-ble-bms/keys.toml` (`~/.config/…`); `--keys FILE` picks
another. Keys are never printed in full (first and last byte only) and the file is written 0600.
Messages name the usual mistakes (docs/ecosystem.md §2): a 31-character key copied short, a key
where the address belongs, a macOS UUID (fine, but only on that Mac).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

from victron_ble_bms.protocol import InvalidKey, normalize_key
from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.advertisement import AddressError, normalize_address
from victron_ble_bms.sources.keys import KeyFileError, KeyStore, redact, redact_keys

from .output import error

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

_HEX32 = re.compile(r"^(0x)?[0-9a-fA-F]{32}$")
_UUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


def default_keys_path() -> Path:
    """`$XDG_CONFIG_HOME/victron-ble-bms/keys.toml`, else `~/.config/victron-ble-bms/keys.toml`."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "victron-ble-bms" / "keys.toml"


def keys_path(args: argparse.Namespace) -> Path:
    given = getattr(args, "keys", None)
    return Path(given) if given else default_keys_path()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "keys",
        help="manage device keys (add, list, remove, import)",
        description="Manage the Instant Readout keys of your devices. The key is in "
        "VictronConnect → device → ⚙ → Product info → Instant readout details → Show. "
        f"Default file: {default_keys_path()} (mode 0600).",
    )
    p.add_argument("--keys", metavar="FILE", help="keys file to use instead of the default")
    ks = p.add_subparsers(dest="keys_command", metavar="ACTION")

    add = ks.add_parser("add", help="add or replace a device's key")
    add.add_argument("address", metavar="ADDR", help="device address (AA:BB:CC:DD:EE:FF)")
    add.add_argument("key", metavar="KEY", help="the 32 hex digit Instant Readout key")
    add.add_argument("--name", help="a name to show instead of the address")
    add.add_argument("--keys", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    add.set_defaults(run=run_add)

    lst = ks.add_parser("list", help="list devices with masked keys")
    lst.add_argument("--keys", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    lst.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per device (address, key_masked, name); the file's path on stderr",
    )
    lst.set_defaults(run=run_list)

    rm = ks.add_parser("remove", help="forget a device's key")
    rm.add_argument("address", metavar="ADDR")
    rm.add_argument("--keys", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    rm.set_defaults(run=run_remove)

    imp = ks.add_parser("import", help="import lines of ADDR@KEY or ADDR KEY")
    imp.add_argument("file", metavar="FILE", help="text file ('-' for standard input)")
    imp.add_argument("--keys", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    imp.set_defaults(run=run_import)

    p.set_defaults(run=_usage(p))


def _usage(parser: argparse.ArgumentParser) -> object:
    def run(args: argparse.Namespace) -> int:
        parser.print_help()
        return EXIT_USAGE

    return run


def _say(text: str) -> None:
    """A result line on stdout; paths are the user's text (a key given as --keys FILE?)."""
    print(redact_keys(plain(text, 2000)))


# --- checking what the user typed -------------------------------------------------------------


def check_address(text: str) -> str:
    """A normalised address, or `ValueError` naming the likely mistake. The text is quoted
    only through `redact` — it may be a key pasted in the wrong place."""
    stripped = text.strip()
    if _HEX32.match(stripped.replace(" ", "").replace(":", "")):
        raise ValueError(
            "this looks like a key (32 hex digits), not a device address: "
            "give the address first, then the key (keys add AA:BB:CC:DD:EE:FF KEY)"
        )
    try:
        return normalize_address(stripped)
    except AddressError:
        pass
    body = re.sub(r"[:\-_.\s]", "", stripped)
    not_hex = sorted({c for c in body if c not in "0123456789abcdefABCDEF"})
    digits = len(body) - sum(body.count(c) for c in not_hex)
    if not_hex and len(body) == 12 and digits >= 8:
        shown = ", ".join(repr(plain(c)) for c in not_hex[:3])
        verb = "is not a hex digit" if len(not_hex) == 1 else "are not hex digits"
        hint = f" ({shown} {verb}: 0-9, A-F)"
    elif not not_hex:
        hint = f" ({digits} hex digits; an address has 12)"
    else:
        hint = ""
    raise ValueError(
        f"{redact(stripped)} is not a Bluetooth address{hint}: write it as "
        "AA:BB:CC:DD:EE:FF (colons optional) or, on macOS, the device UUID"
    )


def check_key(text: str) -> bytes:
    try:
        return normalize_key(text)
    except InvalidKey as exc:
        raise ValueError(str(exc)) from None


def _macos_note(address: str) -> str | None:
    if _UUID.match(address):
        return (
            "note: this is a macOS (CoreBluetooth) device id — it only works on this Mac; "
            "other machines need the device's MAC address"
        )
    return None


def _load(path: Path) -> KeyStore | None:
    try:
        store = KeyStore.load(path, missing_ok=True)
    except KeyFileError as exc:
        error(str(exc))
        return None
    for warning in store.warnings:
        error("warning: " + warning)
    store.path = path
    return store


def _save(store: KeyStore, path: Path) -> bool:
    try:
        store.save(path)
    except KeyFileError as exc:
        error(str(exc))
        return False
    return True


# --- actions ----------------------------------------------------------------------------------


def run_add(args: argparse.Namespace) -> int:
    path = keys_path(args)
    try:
        address = check_address(args.address)
    except ValueError as exc:
        # A key in the address slot and the address in the key slot: say so directly.
        error(str(exc))
        return EXIT_USAGE
    try:
        key = check_key(args.key)
    except ValueError as exc:
        try:
            normalize_address(args.key)
        except AddressError:
            error(f"key for {address}: {exc}")
        else:
            error(f"the second argument is a device address, not a key: {exc}")
        return EXIT_USAGE
    store = _load(path)
    if store is None:
        return EXIT_ERROR
    replaced = address in store
    # A new key keeps the device's name unless --name gives another.
    name = args.name if args.name is not None else store.name(address)
    entry = store.add(address, key, name=name)
    if not _save(store, path):
        return EXIT_ERROR
    _say(
        f"{'replaced' if replaced else 'added'} {entry.address}"
        f"{' (' + entry.name + ')' if entry.name else ''} key {entry.masked_key} in {path}"
    )
    note = _macos_note(address)
    if note:
        error(note)
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    path = keys_path(args)
    if not path.exists():
        _say(f"no keys yet ({path} does not exist); add one with: victron-bms keys add ADDR KEY")
        return EXIT_OK
    store = _load(path)
    if store is None:
        return EXIT_ERROR
    if not len(store):
        _say(f"no keys in {path}")
        return EXIT_OK
    n = len(store)
    head = f"{n} device key{'s' if n != 1 else ''} in {path} (masked: first and last byte only)"
    if getattr(args, "json", False):
        error(head)  # stdout stays JSON
        for entry in store.entries():
            obj = {"address": entry.address, "key_masked": entry.masked_key, "name": entry.name}
            print(json.dumps(obj))  # names from files: every control character escaped
        return EXIT_OK
    _say(head)
    for entry in store.entries():
        _say(f"{entry.address:36}  {entry.masked_key}  {entry.name or ''}".rstrip())
    return EXIT_OK


def run_remove(args: argparse.Namespace) -> int:
    path = keys_path(args)
    try:
        address = check_address(args.address)
    except ValueError as exc:
        error(str(exc))
        return EXIT_USAGE
    store = _load(path)
    if store is None:
        return EXIT_ERROR
    if not store.remove(address):
        error(f"{address} is not in {path}")
        return EXIT_ERROR
    if not _save(store, path):
        return EXIT_ERROR
    _say(f"removed {address} from {path}")
    return EXIT_OK


def parse_import_line(line: str) -> tuple[str, bytes] | None:
    """'ADDR@KEY' or 'ADDR KEY' (also tab or comma) → (address, key); None for blank/comment."""
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    if "@" in text:
        address, _, key = text.partition("@")
    else:
        parts = re.split(r"[\s,;=]+", text, maxsplit=1)
        if len(parts) != 2:
            raise ValueError("expected ADDR@KEY or ADDR KEY")
        address, key = parts
    return check_address(address), check_key(key.strip())


def run_import(args: argparse.Namespace) -> int:
    path = keys_path(args)
    try:
        if args.file == "-":
            import sys

            text = sys.stdin.read()
        else:
            text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        error(f"{args.file}: cannot read: {getattr(exc, 'strerror', None) or exc}")
        return EXIT_USAGE
    parsed: list[tuple[str, bytes]] = []
    bad = 0
    for number, line in enumerate(text.splitlines(), 1):
        try:
            item = parse_import_line(line)
        except ValueError as exc:
            # The line itself may hold a key: only its number is shown.
            error(f"{args.file}:{number}: {exc}")
            bad += 1
            continue
        if item is not None:
            parsed.append(item)
    if bad:
        error(f"nothing imported: fix the {bad} line(s) above and run again")
        return EXIT_USAGE
    store = _load(path)
    if store is None:
        return EXIT_ERROR
    for address, key in parsed:
        store.add(address, key, name=store.name(address))
    if not _save(store, path):
        return EXIT_ERROR
    _say(f"imported {len(parsed)} key(s) into {path}")
    return EXIT_OK
