"""Where `serve` sends Signal K deltas, and with which token: the `[signalk]` table of serve's
config file (the same file as `[mqtt]`, mqtt/config.py), `--signalk URL`, and the environment.

    # ~/.config/victron-ble-bms/serve.toml  (mode 0600 when it holds a token)
    [signalk]
    url = "ws://192.168.1.20:3000/signalk/v1/stream"   # or wss://…; --signalk wins
    token = "…"                  # or VICTRON_BMS_SIGNALK_TOKEN; else a device access request
    access_file = "…/signalk-access.json"   # where an approved request's token is kept
    description = "victron-ble-bms on the nav Pi"   # what the server's admin sees in the request

The token never comes from argv (other users can read it in `ps`) and nothing here prints it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from victron_ble_bms.mqtt.config import ConfigError, config_table, default_config_path

TOKEN_ENV = "VICTRON_BMS_SIGNALK_TOKEN"  # noqa: S105 - the variable's name, not a token
STREAM_PATH = "/signalk/v1/stream"
DEFAULT_PORTS = {"ws": 80, "wss": 443}


@dataclass(frozen=True, slots=True)
class Server:
    """`ws://host[:port][/signalk/v1/stream]` (or wss://), without user, password or query."""

    host: str
    port: int
    tls: bool = False
    path: str = STREAM_PATH

    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def stream_url(self) -> str:
        """The WebSocket stream, asking for no subscriptions: we only send."""
        scheme = "wss" if self.tls else "ws"
        return urlunsplit((scheme, self._netloc(), self.path, "subscribe=none", ""))

    @property
    def http_base(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self._netloc()}"

    def __str__(self) -> str:
        return urlunsplit(("wss" if self.tls else "ws", self._netloc(), self.path, "", ""))


def parse_server_url(text: str) -> Server:
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise ConfigError(
            "Signal K URL: not ws://host[:port]/signalk/v1/stream (bad port?)"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ConfigError(
            "Signal K URL must start with ws:// or wss:// "
            f"(got {scheme + '://' if scheme else 'no scheme'}), "
            "e.g. ws://127.0.0.1:3000/signalk/v1/stream"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "Signal K URL contains a user or password: put a token in the config file or "
            f"{TOKEN_ENV}, never on the command line"
        )
    if not parts.hostname:
        raise ConfigError("Signal K URL has no host: ws://host[:port]/signalk/v1/stream")
    if parts.query or parts.fragment:
        raise ConfigError("Signal K URL takes no query (?subscribe=none is added)")
    path = parts.path.rstrip("/") or STREAM_PATH
    if path != STREAM_PATH:
        raise ConfigError(f"Signal K URL: the stream is {STREAM_PATH} (got {path})")
    return Server(
        parts.hostname,
        port if port is not None else DEFAULT_PORTS[scheme],
        tls=scheme == "wss",
        path=path,
    )


def default_access_file() -> Path:
    """Beside the default config file (or the one `--config` names): the token an approved
    access request earned (0600)."""
    return default_config_path().parent / "signalk-access.json"


@dataclass(frozen=True, slots=True)
class SignalKConfig:
    server: Server | None = None
    token: str | None = field(default=None, repr=False)
    access_file: Path = field(default_factory=default_access_file)
    description: str = field(default_factory=lambda: f"victron-ble-bms on {socket.gethostname()}")

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name != "token"
        )
        return f"SignalKConfig({shown}, token={'set' if self.token else 'unset'})"


def _from_table(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in table.items():
        if name not in ("url", "token", "access_file", "description"):
            raise ConfigError(f"{where}: unknown setting {name!r}")
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: {name} must be a non-empty string")
        if name == "url":
            out["server"] = parse_server_url(value)
        elif name == "access_file":
            out["access_file"] = Path(value).expanduser()
        elif name == "description":
            out["description"] = value.strip()[:200]
        else:
            out["token"] = value.strip()
    return out


def load_signalk_config(
    path: str | os.PathLike[str] | None = None,
) -> tuple[SignalKConfig, list[str]]:
    """The `[signalk]` table of serve's config file (default path: missing is fine)."""
    explicit = path is not None
    p, table, warnings = config_table(path, "signalk", "token", "Signal K token")
    if table is None:
        return SignalKConfig(), warnings
    values = _from_table(table, f"{p}: [signalk]")
    if explicit and "access_file" not in values:  # beside the config file it was given
        values["access_file"] = p.parent / "signalk-access.json"
    return replace(SignalKConfig(), **values), warnings


def resolve(
    cfg: SignalKConfig, *, url: str | None = None, env: Mapping[str, str] = os.environ
) -> SignalKConfig:
    """Apply --signalk and the token from the environment (env beats the file)."""
    changes: dict[str, Any] = {}
    if url is not None:
        changes["server"] = parse_server_url(url)
    token = env.get(TOKEN_ENV, "").strip()
    if token:
        changes["token"] = token
    return replace(cfg, **changes)
