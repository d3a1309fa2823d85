"""The keys file (TOML) — the one file `decode`, the scanner and the dashboard read.

    [devices."AA:BB:CC:DD:EE:FF"]
    key = "0123456789abcdef0123456789abcdef"
    name = "House battery"

    [banks.house]                      # optional: batteries and their BMS as one bank
    layout = "parallel"                # parallel | series | series-parallel
    members = ["House battery", "AA:BB:CC:DD:EE:01", "Lynx"]
    soc_source = "Lynx"

Banks (issue 20) are read by `victron_ble_bms.banks` (`KeyStore.banks`); a problem in one is a
line in `KeyStore.warnings` and the bank shows as degraded — it never stops a program.

Keys are secrets (DEVELOPERS.md): never printed in full (`mask_key`), never logged, and the file
is written with mode 0600 in a directory we create 0700 (whatever the umask). A file readable by
group or others still loads, with a warning in `KeyStore.warnings` (callers print it once).
Addresses are normalised with `normalize_address`, keys with `protocol.normalize_key`, so any
spelling VictronConnect or a forum post uses works; two spellings of one address in a file
(`aa:…` and `AA:…`) are one device: merged with a warning when their keys agree, refused when not.

Writing (`KeyStore.save`) is safe against other writers — a second `keys add`, the dashboard's
key dialog, a crash or a full disk:
  * under an exclusive `fcntl.flock` on `.<name>.lock` beside the file;
  * the file is re-read under the lock and only *this* store's own changes (`add`/`remove`
    since it was loaded or last saved) are applied on top, so nothing another process added
    meanwhile is lost;
  * written to a temporary file in the same directory (mode 0600), fsync-ed, renamed over
    the file, and the directory fsync-ed; the temporary file is removed on every failure.
Symlinks are **followed** deliberately: a keys file that is a symlink (dotfile managers,
a shared config) keeps being one — the target is replaced and the link left in place.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from victron_ble_bms.protocol import InvalidKey, mask_key, normalize_key
from victron_ble_bms.safetext import plain

from .advertisement import AddressError, normalize_address

if TYPE_CHECKING:
    from victron_ble_bms.banks.spec import BankSpec

try:  # POSIX; elsewhere (Windows) writes are still atomic, just not serialised
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

FILE_MODE = 0o600
DIR_MODE = 0o700
_HEX_DIGIT = re.compile(r"[0-9a-fA-F]")


def redact(text: str) -> str:
    """Text the user gave where an address belongs, safe to quote in a message.

    It may be a key typed in the wrong place (or a key cut short), so anything with more hex
    digits than an address holds (12) shows only its first and last byte; the rest is quoted
    as plain text (safetext) so it cannot steer a terminal.
    """
    digits = _HEX_DIGIT.findall(text)
    if len(digits) > 12:
        return f"{_shown(text)} ({len(digits)} hex digits — a key? keys are never shown in full)"
    return _shown(text)


def _shown(text: str) -> str:
    """`text` quoted: first and last byte only when it has more hex digits than an address."""
    digits = _HEX_DIGIT.findall(text)
    if len(digits) > 12:
        return f"'{''.join(digits[:2])}…{''.join(digits[-2:])}'"
    return f"'{plain(text, 40)}'"


# A run of hex digits, single ':' or '-' allowed between them (af:f4:…, 0xaff4…); and bytes
# written with spaces (af f4 d0 …), which must be pairs, or "added D1:…" would be one run.
_HEX_RUN = re.compile(
    r"(?<![0-9A-Za-z])[0-9a-fA-F]{2}(?: [0-9a-fA-F]{2}){6,}(?![0-9A-Za-z])"
    r"|(?:0[xX])?[0-9a-fA-F](?:[0-9a-fA-F]|[:\-](?=[0-9a-fA-F]))*"
)
_UUID = re.compile(r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}")


def redact_keys(text: str) -> str:
    """Any message with every run of more than 12 hex digits (more than an address holds; a
    key or a piece of one) cut to its first and last byte. macOS device UUIDs are kept."""

    def mask(m: re.Match[str]) -> str:
        run = m.group(0)
        digits = _HEX_DIGIT.findall(run[2:] if run[:2] in ("0x", "0X") else run)
        if len(digits) <= 12 or _UUID.fullmatch(run):
            return run
        return f"{''.join(digits[:2])}…{''.join(digits[-2:])}"

    return _HEX_RUN.sub(mask, text)


def address_or_error(text: str) -> str:
    """`normalize_address`, but the `KeyFileError` message quotes only `redact(text)`."""
    try:
        return normalize_address(text)
    except AddressError:
        raise KeyFileError(
            f"{redact(text)} is not a Bluetooth address (6 bytes, e.g. AA:BB:CC:DD:EE:FF) "
            "nor a macOS device UUID"
        ) from None


class KeyFileError(Exception):
    """A keys file that cannot be read or written; the message never contains a key."""


@dataclass(frozen=True, slots=True)
class KeyEntry:
    address: str
    key: bytes
    name: str | None = None

    @property
    def masked_key(self) -> str:
        return mask_key(self.key)

    def __repr__(self) -> str:  # keys stay out of tracebacks and logs
        return f"KeyEntry(address={self.address!r}, key={self.masked_key!r}, name={self.name!r})"


def _check_permissions(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        # Returned, not logged: every command prints `store.warnings` once.
        return (
            f"{path} holds device keys but is readable by others "
            f"(mode {stat.S_IMODE(mode):04o}); fix with: chmod 600 {path}"
        )
    return None


def _toml_value(value: Any) -> str:
    """Any value tomllib reads, written back as TOML (a bank's table round-trips unchanged)."""
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # nan, inf and -inf are TOML too
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return _toml_string(str(value))


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(text: str) -> str:
    return text if _BARE_KEY.fullmatch(text) else _toml_string(text)


def _toml_string(text: str) -> str:
    """A TOML basic string (escapes per the TOML 1.0 spec)."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class KeyStore(Mapping[str, bytes]):
    """Device keys by normalised address. A `Mapping[address, key bytes]`, so it can be passed
    straight to `decode_advertisement`.

    Stable API (the CLI and the dashboard's key dialog use it): `KeyStore.load(path,
    missing_ok=)`, `add(address, key, name=)`, `remove(address)`, `save(path=None)`,
    `entry`, `entries`, `name`, `warnings`, `path`. `save` merges this store's changes into
    what is on disk at that moment (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._entries: dict[str, KeyEntry] = {}
        # Changes since load/save, replayed onto the file's current contents by `save`.
        self._changes: dict[str, KeyEntry | None] = {}
        # [banks.NAME] tables as read (kept as written; `banks` gives their meaning)
        self._banks: dict[str, Any] = {}
        self._bank_changes: dict[str, Any] = {}  # name → table, or None when removed
        self.warnings: list[str] = []
        self.bank_warnings: list[str] = []  # the banks' problems (also in `warnings`)

    # --- reading -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str], *, missing_ok: bool = False) -> KeyStore:
        """Read a keys file. Problems are `KeyFileError`s naming the device, never the key."""
        store = cls(path)
        store._read(Path(path), missing_ok=missing_ok)
        return store

    def _read(self, p: Path, *, missing_ok: bool) -> None:
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            if missing_ok:
                return
            raise KeyFileError(f"{p}: no such keys file") from None
        except IsADirectoryError:
            raise KeyFileError(f"{p}: is a directory, not a keys file") from None
        except OSError as exc:
            raise KeyFileError(f"{p}: cannot read: {exc.strerror or exc}") from None
        warning = _check_permissions(p)
        if warning:
            self.warnings.append(warning)
        try:
            doc = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise KeyFileError(f"{p}: not a UTF-8 text file") from None
        except tomllib.TOMLDecodeError as exc:
            # tomllib's message quotes no values, only the position.
            raise KeyFileError(f"{p}: not valid TOML: {exc}") from None
        devices = doc.get("devices", {})
        if not isinstance(devices, dict):
            raise KeyFileError(f'{p}: "devices" must be a table: [devices."AA:BB:CC:DD:EE:FF"]')
        spelled: dict[str, str] = {}
        for address, entry in devices.items():
            # The address slot may hold a key pasted in the wrong place: quote it redacted.
            where = f"{p}: [devices.{_shown(address)}]"
            if not isinstance(entry, dict):
                raise KeyFileError(f'{where} must be a table with key = "…"')
            key = entry.get("key")
            if not isinstance(key, str):
                raise KeyFileError(f'{where} has no key = "…" (32 hex digits)')
            name = entry.get("name")
            if name is not None and not isinstance(name, str):
                raise KeyFileError(f"{where}: name must be a string")
            try:
                normalised = normalize_address(address)
            except AddressError:
                if len(_HEX_DIGIT.findall(address)) == 32:
                    raise KeyFileError(
                        f"{where}: a key where the device address belongs; write "
                        '[devices."AA:BB:CC:DD:EE:FF"] with key = "…" on the next line'
                    ) from None
                raise KeyFileError(
                    f"{where}: not a Bluetooth address (AA:BB:CC:DD:EE:FF) nor a macOS device UUID"
                ) from None
            try:
                new = KeyEntry(normalised, normalize_key(key), name or None)
            except InvalidKey as exc:
                raise KeyFileError(f"{where}: {exc}") from None
            old = self._entries.get(new.address)
            if old is not None:
                first = plain(spelled[new.address])
                if old.key != new.key:
                    raise KeyFileError(
                        f'{p}: two different keys for {new.address} ("{first}" and '
                        f'"{plain(address)}" are the same device): remove the wrong one'
                    )
                self.warnings.append(
                    f'{p}: {new.address} is listed twice ("{first}" and "{plain(address)}"); '
                    "same key, merged (the next save writes it once)"
                )
                new = KeyEntry(new.address, new.key, new.name or old.name)
            spelled[new.address] = address
            self._entries[new.address] = new
        banks = doc.get("banks", {})
        if isinstance(banks, dict):
            self._banks = dict(banks)
            self.bank_warnings = [f"{p}: {line}" for line in self._bank_parse()[1]]
            self.warnings.extend(self.bank_warnings)
        else:
            self.warnings.append(f'{p}: "banks" must be a table: [banks.NAME] with members = […]')

    # --- Mapping[address, key] -----------------------------------------------------------
    def __getitem__(self, address: str) -> bytes:
        entry = self._find(address)
        if entry is None:
            raise KeyError(address)
        return entry.key

    def get(self, address: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        entry = self._find(address)
        return default if entry is None else entry.key

    def _find(self, address: str) -> KeyEntry | None:
        """The entry for `address` in any spelling. Looked up per frame by the scanner and the
        dashboard (issue 26: normalising every frame's address was a fifth of their intake):
        an address written as entries are (AA:BB:…, as every advertisement's is) is found as
        it is; any other goes through `normalize_address` (one match for a canonical one)."""
        entry = self._entries.get(address)
        if entry is not None:
            return entry
        try:
            return self._entries.get(self._norm(address))
        except KeyFileError:
            return None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        return self._find(address) is not None

    def __repr__(self) -> str:
        return f"KeyStore({str(self.path)!r}, {len(self)} devices)"

    @staticmethod
    def _norm(address: str) -> str:
        return address_or_error(address)

    # --- entries -------------------------------------------------------------------------
    def entry(self, address: str) -> KeyEntry | None:
        return self._entries.get(self._norm(address))

    def entries(self) -> Iterator[KeyEntry]:
        """All entries, sorted by address; `repr`/`masked_key` never show the full key."""
        return iter(sorted(self._entries.values(), key=lambda e: e.address))

    def name(self, address: str) -> str | None:
        e = self.entry(address)
        return None if e is None else e.name

    def add(self, address: str, key: bytes | str, *, name: str | None = None) -> KeyEntry:
        """Add or replace a device's key (normalised; `InvalidKey` says what is wrong)."""
        entry = KeyEntry(self._norm(address), normalize_key(key), name or None)
        self._entries[entry.address] = entry
        self._changes[entry.address] = entry
        return entry

    def remove(self, address: str) -> bool:
        """Forget a device; False when it was not there."""
        normalised = self._norm(address)
        found = self._entries.pop(normalised, None) is not None
        if found:
            self._changes[normalised] = None
        return found

    # --- banks (issue 20) ------------------------------------------------------------------
    def _bank_parse(self) -> tuple[dict[str, BankSpec], list[str]]:
        # The meaning of a bank is the banks layer's; imported here, not at the top, so that the
        # sources layer does not depend on it when no bank is asked for.
        from victron_ble_bms.banks.spec import parse_banks

        devices = {e.address: e.name for e in self._entries.values()}
        return parse_banks(self._banks, devices)

    @property
    def banks(self) -> dict[str, BankSpec]:
        """The declared banks by name, members resolved against this file's devices; each
        bank's `problems` say what is wrong with it (never raised)."""
        return self._bank_parse()[0]

    def bank_table(self, name: str) -> Any:
        return self._banks.get(name)

    def add_bank(self, name: str, table: Mapping[str, Any]) -> None:
        """Add or replace `[banks.NAME]` (written by the next `save`)."""
        self._banks[name] = dict(table)
        self._bank_changes[name] = dict(table)

    def remove_bank(self, name: str) -> bool:
        found = self._banks.pop(name, None) is not None
        if found:
            self._bank_changes[name] = None
        return found

    # --- writing -------------------------------------------------------------------------
    def dumps(self) -> str:
        lines = ["# victron-ble-bms device keys. Secrets: keep this file mode 0600.", ""]
        for e in self.entries():
            lines.append(f"[devices.{_toml_string(e.address)}]")
            lines.append(f"key = {_toml_string(e.key.hex())}")
            if e.name is not None:
                lines.append(f"name = {_toml_string(e.name)}")
            lines.append("")
        odd = {n: t for n, t in self._banks.items() if not isinstance(t, dict)}
        if odd:  # not tables (a mistake `banks` reports): kept as written, before the tables
            lines.append("[banks]")
            lines.extend(f"{_toml_key(n)} = {_toml_value(t)}" for n, t in odd.items())
            lines.append("")
        for name, table in self._banks.items():
            if isinstance(table, dict):
                lines.append(f"[banks.{_toml_key(name)}]")
                lines.extend(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in table.items())
                lines.append("")
        return "\n".join(lines)

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Merge this store's changes into the file as it is now, atomically, under a lock.

        Returns the path written. `KeyFileError` (never quoting a key) when the file on disk
        cannot be read — it is then left untouched — or cannot be written."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise KeyFileError("no path to save the keys to")
        real = Path(os.path.realpath(target))  # follow a symlinked keys file (see above)
        try:
            _make_private_dirs(real.parent)
            with _locked(real):
                fresh = KeyStore(target)
                fresh._read(real, missing_ok=True)
                # Saving elsewhere ("save as") writes every entry; else only what changed.
                same = self.path is not None and target == self.path
                changes: Mapping[str, KeyEntry | None] = (
                    self._changes if same else dict(self._entries)
                )
                for address, change in changes.items():
                    if change is None:
                        fresh._entries.pop(address, None)
                    else:
                        fresh._entries[address] = change
                bank_changes = self._bank_changes if same else dict(self._banks)
                for name, table in bank_changes.items():
                    if table is None:
                        fresh._banks.pop(name, None)
                    else:
                        fresh._banks[name] = table
                _write_atomically(real, fresh.dumps())
        except OSError as exc:
            raise KeyFileError(f"{target}: cannot write: {exc.strerror or exc}") from None
        self._entries = fresh._entries
        self._changes.clear()
        self._banks = fresh._banks
        self._bank_changes.clear()
        self.path = target
        return target


def _make_private_dirs(directory: Path) -> None:
    """Create missing directories 0700 whatever the umask (mkdir's mode is masked by it, and
    `Path.mkdir(parents=True)` ignores the mode for parents). Existing ones are left alone."""
    missing: list[Path] = []
    d = directory
    while not d.exists():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another writer made it meanwhile
            d.mkdir(mode=DIR_MODE)
            os.chmod(d, DIR_MODE)


@contextlib.contextmanager
def _locked(real: Path) -> Iterator[None]:
    """An exclusive flock on `.<name>.lock` beside the file; released when the fd closes."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    lock = real.with_name(f".{real.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_atomically(real: Path, text: str) -> None:
    """Temporary file in the same directory (0600), fsync, rename over `real`, fsync the
    directory. On any failure — a full disk included — the temporary file is removed and the
    old file is still whole."""
    fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            if hasattr(os, "fchmod"):  # POSIX; mkstemp makes 0600, a umask can only lower it
                os.fchmod(f.fileno(), FILE_MODE)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(real.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
