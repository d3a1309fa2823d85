"""The keys file (TOML) — the one file `decode`, the scanner and the dashboard read.

    [devices."AA:BB:CC:DD:EE:FF"]
    key = "0123456789abcdef0123456789abcdef"
    name = "House battery"

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
from pathlib import Path

from victron_ble_bms.protocol import InvalidKey, mask_key, normalize_key
from victron_ble_bms.safetext import plain

from .advertisement import AddressError, normalize_address

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
        return (
            f"'{''.join(digits[:2])}…{''.join(digits[-2:])}' ({len(digits)} hex digits — "
            "a key? keys are never shown in full)"
        )
    return f"'{plain(text, 40)}'"


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
        self.warnings: list[str] = []

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
            where = f"{p}: [devices.{redact(address)}]"
            if not isinstance(entry, dict):
                raise KeyFileError(f'{where} must be a table with key = "…"')
            key = entry.get("key")
            if not isinstance(key, str):
                raise KeyFileError(f'{where} has no key = "…" (32 hex digits)')
            name = entry.get("name")
            if name is not None and not isinstance(name, str):
                raise KeyFileError(f"{where}: name must be a string")
            try:
                new = KeyEntry(address_or_error(address), normalize_key(key), name or None)
            except (InvalidKey, KeyFileError) as exc:
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

    # --- Mapping[address, key] -----------------------------------------------------------
    def __getitem__(self, address: str) -> bytes:
        try:
            return self._entries[self._norm(address)].key
        except KeyFileError:
            raise KeyError(address) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        try:
            return self._norm(address) in self._entries
        except KeyFileError:
            return False

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

    # --- writing -------------------------------------------------------------------------
    def dumps(self) -> str:
        lines = ["# victron-ble-bms device keys. Secrets: keep this file mode 0600.", ""]
        for e in self.entries():
            lines.append(f"[devices.{_toml_string(e.address)}]")
            lines.append(f"key = {_toml_string(e.key.hex())}")
            if e.name is not None:
                lines.append(f"name = {_toml_string(e.name)}")
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
                _write_atomically(real, fresh.dumps())
        except OSError as exc:
            raise KeyFileError(f"{target}: cannot write: {exc.strerror or exc}") from None
        self._entries = fresh._entries
        self._changes.clear()
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
            os.fchmod(f.fileno(), FILE_MODE)  # mkstemp makes 0600; a umask can only lower it
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
