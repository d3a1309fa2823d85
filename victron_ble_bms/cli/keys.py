"""`victron-bms keys`: the device keys file (add, list masked, remove, import).

    victron-bms keys add ADDR KEY [--name N]
    victron-bms keys list
    victron-bms keys remove ADDR
    victron-bms keys import FILE          # lines "ADDR@KEY" or "ADDR KEY" (# comments)
    victron-bms keys bank add NAME MEMBER… [--layout L] [--soc-source M] [--string M M …]
    victron-bms keys bank list
    victron-bms keys bank remove NAME

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

from victron_ble_bms.banks.spec import Layout
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

    _register_bank(ks)
    p.set_defaults(run=_usage(p))


def _register_bank(ks: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bank = ks.add_parser(
        "bank",
        help="declare banks: batteries and their BMS seen as one system",
        description="A bank names its member devices by address or by their name in the keys "
        "file, its layout and optionally the member that gives state of charge and current "
        "(a Lynx Smart BMS, SmartShunt or BMV).",
    )
    bank.add_argument("--keys", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    bs = bank.add_subparsers(dest="bank_command", metavar="ACTION")
    add = bs.add_parser("add", help="add or replace a bank")
    add.add_argument("name", metavar="NAME", help="the bank's name, e.g. house")
    add.add_argument("members", metavar="MEMBER", nargs="*", help="address or device name")
    add.add_argument("--layout", choices=[x.value for x in Layout], default=Layout.PARALLEL.value)
    add.add_argument("--soc-source", metavar="MEMBER", help="the member giving SOC and current")
    add.add_argument(
        "--string",
        metavar="MEMBER",
        nargs="+",
        action="append",
        default=[],
        help="series-parallel: one series string's members in order (repeat per string)",
    )
    add.add_argument("--keys", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    add.set_defaults(run=run_bank_add)
    lst = bs.add_parser("list", help="list banks and what is wrong with them")
    lst.add_argument("--keys", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    lst.set_defaults(run=run_bank_list)
    rm = bs.add_parser("remove", help="forget a bank (its devices' keys stay)")
    rm.add_argument("name", metavar="NAME")
    rm.add_argument("--keys", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    rm.set_defaults(run=run_bank_remove)
    bank.set_defaults(run=_usage(bank))


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


def _load(path: Path, *, bank_warnings: bool = True) -> KeyStore | None:
    try:
        store = KeyStore.load(path, missing_ok=True)
    except KeyFileError as exc:
        error(str(exc))
        return None
    for warning in store.warnings:
        if bank_warnings or warning not in store.bank_warnings:
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


# --- banks (issue 20) ------------------------------------------------------------------------


def _bank_name(text: str) -> str | None:
    name = text.strip()
    if not name or plain(name, 60) != name:
        return None
    return name


def run_bank_add(args: argparse.Namespace) -> int:
    path = keys_path(args)
    name = _bank_name(args.name)
    if name is None:
        error(
            f"bank name '{plain(args.name, 60)}': give a short printable name (at most 60 "
            "characters), e.g. house"
        )
        return EXIT_USAGE
    if args.string and args.layout != Layout.SERIES_PARALLEL.value:
        error("--string is for --layout series-parallel (each --string is one series string)")
        return EXIT_USAGE
    if args.layout == Layout.SERIES_PARALLEL.value and not args.string:
        error("--layout series-parallel needs each string: --string A B --string C D")
        return EXIT_USAGE
    if not args.members and not args.string:
        error("a bank needs members: keys bank add NAME MEMBER… (addresses or device names)")
        return EXIT_USAGE
    store = _load(path, bank_warnings=False)  # the bank's own problems are said below
    if store is None:
        return EXIT_ERROR
    table: dict[str, object] = {"layout": args.layout, "members": list(args.members)}
    if args.string:
        table["strings"] = [list(s) for s in args.string]
    if args.soc_source:
        table["soc_source"] = args.soc_source
    replaced = store.bank_table(name) is not None
    store.add_bank(name, table)
    if not _save(store, path):
        return EXIT_ERROR
    spec = store.banks[name]
    for problem in spec.problems:
        error(f"warning: bank '{name}': {problem} (the bank shows as degraded until fixed)")
    _say(
        f"{'replaced' if replaced else 'added'} bank '{name}' ({spec.layout.value}; "
        f"members: {', '.join(m.name for m in spec.members)}) in {path}"
    )
    return EXIT_OK


def run_bank_list(args: argparse.Namespace) -> int:
    path = keys_path(args)
    if not path.exists():
        _say(f"no banks yet ({path} does not exist)")
        return EXIT_OK
    try:
        store = KeyStore.load(path, missing_ok=True)
    except KeyFileError as exc:
        error(str(exc))
        return EXIT_ERROR
    banks = store.banks
    if not banks:
        _say(f"no banks in {path}; add one with: victron-bms keys bank add NAME MEMBER…")
        return EXIT_OK
    for spec in banks.values():
        members = ", ".join(
            m.name if m.address is None or m.name == m.address else f"{m.name} ({m.address})"
            for m in spec.members
        )
        soc = f"; soc from {spec.soc_source.name}" if spec.soc_source else ""
        _say(f"{spec.name}: {spec.layout.value}, {members}{soc}")
        if spec.strings:
            for i, string in enumerate(spec.strings, 1):
                _say(f"  string {i}: {' + '.join(m.name for m in string)}")
        for problem in spec.problems:
            _say(f"  problem: {problem}")
    return EXIT_OK


def run_bank_remove(args: argparse.Namespace) -> int:
    path = keys_path(args)
    store = _load(path, bank_warnings=False)
    if store is None:
        return EXIT_ERROR
    if not store.remove_bank(args.name):
        error(f"no bank '{plain(args.name, 60)}' in {path}")
        return EXIT_ERROR
    if not _save(store, path):
        return EXIT_ERROR
    _say(f"removed bank '{plain(args.name, 60)}' from {path} (its devices' keys stay)")
    return EXIT_OK
