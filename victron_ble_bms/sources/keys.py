"""The keys file (TOML) — the one file `decode`, the scanner and the dashboard read.

    [devices."AA:BB:CC:DD:EE:FF"]
    key = "0123456789abcdef0123456789abcdef"
    name = "House battery"

Keys are secrets (DEVELOPERS.md): never printed in full (`mask_key`), never logged, and the file
is written with mode 0600. A file readable by group or others still loads, with a warning.
Addresses are normalised with `normalize_address`, keys with `protocol.normalize_key`, so any
spelling VictronConnect or a forum post uses works.
"""

from __future__ import annotations

import logging
import os
import stat
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from victron_ble_bms.protocol import InvalidKey, mask_key, normalize_key

from .advertisement import AddressError, normalize_address

log = logging.getLogger(__name__)

FILE_MODE = 0o600


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
        message = (
            f"{path} holds device keys but is readable by others "
            f"(mode {stat.S_IMODE(mode):04o}); fix with: chmod 600 {path}"
        )
        log.warning(message)
        return message
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
    straight to `decode_advertisement`."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._entries: dict[str, KeyEntry] = {}
        self.warnings: list[str] = []

    # --- reading -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str], *, missing_ok: bool = False) -> KeyStore:
        """Read a keys file. Problems are `KeyFileError`s naming the device, never the key."""
        store = cls(path)
        p = Path(path)
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            if missing_ok:
                return store
            raise KeyFileError(f"{p}: no such keys file") from None
        except OSError as exc:
            raise KeyFileError(f"{p}: cannot read: {exc.strerror or exc}") from None
        warning = _check_permissions(p)
        if warning:
            store.warnings.append(warning)
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
        for address, entry in devices.items():
            where = f'{p}: [devices."{address}"]'
            if not isinstance(entry, dict):
                raise KeyFileError(f'{where} must be a table with key = "…"')
            key = entry.get("key")
            if not isinstance(key, str):
                raise KeyFileError(f'{where} has no key = "…" (32 hex digits)')
            name = entry.get("name")
            if name is not None and not isinstance(name, str):
                raise KeyFileError(f"{where}: name must be a string")
            try:
                store.add(address, key, name=name)
            except (AddressError, InvalidKey, KeyFileError) as exc:
                raise KeyFileError(f"{where}: {exc}") from None
        return store

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
        try:
            return normalize_address(address)
        except AddressError as exc:
            raise KeyFileError(str(exc)) from None

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
        return entry

    def remove(self, address: str) -> bool:
        """Forget a device; False when it was not there."""
        return self._entries.pop(self._norm(address), None) is not None

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
        """Write atomically with mode 0600 (created so, never chmod-ed after the fact)."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise KeyFileError("no path to save the keys to")
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.dumps())
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, FILE_MODE)  # O_CREAT honours the umask only for new files
            os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise KeyFileError(f"{target}: cannot write: {exc.strerror or exc}") from None
        self.path = target
        return target
