"""Where the web page listens, and the token that guards it on anything but loopback.

- `--http HOST:PORT` (`[v6addr]:PORT`; a bare PORT means 127.0.0.1): 127.0.0.1, ::1 and
  localhost need no token — only this machine can connect, and the Host header is checked so
  a web site cannot reach the page through DNS rebinding. Any other address needs the token.
- The token is made once with `secrets` and kept in `http-token` beside the config (0600 file,
  0700 directory, the same rule as the keys file). A phone opens `…/?token=T` once; the server
  answers with an HttpOnly SameSite=Strict cookie and a redirect that drops the token from
  the address bar. Scripts may send `Authorization: Bearer T`. Compared in constant time.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from victron_ble_bms.sources.keys import FILE_MODE, _make_private_dirs

TOKEN_FILE = "http-token"  # noqa: S105 - the file's name, not a token
TOKEN_BYTES = 32  # 256 bits, 43 URL-safe characters
_MIN_TOKEN_CHARS = 32
_LOCAL_NAMES = frozenset({"127.0.0.1", "::1", "localhost"})
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class ListenError(ValueError):
    """A bad --http value or an unusable token file: one line for the user."""


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    @property
    def local(self) -> bool:
        """Only this machine can connect: no token needed."""
        return self.host in _LOCAL_NAMES

    def url(self, host: str | None = None, port: int | None = None) -> str:
        shown = host or self.host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port if port is None else port}/"


def parse_listen(text: str) -> Listen:
    """`HOST:PORT`, `[V6]:PORT` or `PORT` → Listen; ListenError with a one-line reason."""
    value = text.strip()
    if value.isdigit():
        host, port_text = "127.0.0.1", value
    elif value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
        if not sep:
            raise ListenError(f"--http {text!r}: write an IPv6 address as [ADDR]:PORT")
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or ":" in host:
            raise ListenError(f"--http {text!r}: give HOST:PORT, e.g. 127.0.0.1:8080")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ListenError(f"--http {text!r}: the port must be a number 0-65535")
    host = host or "127.0.0.1"
    if host != "localhost":
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            raise ListenError(
                f"--http {text!r}: the host must be an IP address (0.0.0.0 for every interface) "
                "or localhost"
            ) from None
    return Listen(host, int(port_text))


def load_or_create_token(directory: Path) -> tuple[str, bool]:
    """The token from `directory/http-token`, made (0600, dir 0700) when missing.

    Returns (token, created). ListenError when the file cannot be made or read, holds no
    usable token, or can be read by others (then the page would not be private)."""
    path = directory / TOKEN_FILE
    try:
        _make_private_dirs(directory)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            return _read_token(path), False
        with os.fdopen(fd, "w", encoding="ascii") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            f.write(token + "\n")
        return token, True
    except OSError as exc:
        reason = exc.strerror or exc
        raise ListenError(f"{path}: cannot keep the web page's token: {reason}") from None


def _read_token(path: Path) -> str:
    st = path.stat()
    if st.st_mode & 0o077:
        raise ListenError(
            f"{path}: readable by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"chmod 600 it, or delete it for a new token"
        )
    token = path.read_text(encoding="ascii", errors="replace").strip()
    if len(token) < _MIN_TOKEN_CHARS or not set(token) <= _TOKEN_CHARS:
        raise ListenError(f"{path}: holds no usable token; delete it for a new one")
    return token


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison (no early exit on the first wrong character)."""
    if not given:
        return False
    return secrets.compare_digest(given.encode("utf-8", "replace"), token.encode("ascii"))


def masked(token: str) -> str:
    """The token as serve may show it in a log: first and last character only."""
    return f"{token[0]}…{token[-1]}"
