"""What `serve` publishes where: the broker URL, topic prefixes, rates — from a TOML file, the
command line and the environment (in that order of precedence: command line wins).

    # ~/.config/victron-ble-bms/serve.toml  (mode 0600: it may hold the broker password)
    [mqtt]
    url = "mqtt://victron@192.168.1.10:1883"    # or mqtts://… for TLS
    password = "…"                              # or VICTRON_BMS_MQTT_PASSWORD
    topic_prefix = "victron-ble-bms"
    discovery_prefix = "homeassistant"          # discovery = false to publish no HA configs
    min_interval_s = 1.0       # at most one state message per device per second …
    heartbeat_s = 60.0         # … and at least one per minute, changed or not
    stale_after_s = 60.0       # silent this long → <prefix>/<addr>/availability = offline
    cafile = "/etc/ssl/certs/my-ca.pem"         # mqtts: trust this CA (default: system CAs)
    instance_id = "saloon-pi"  # this serve among others on the broker (default: the host name)

    [mqtt.deadband]            # a value is re-published only when it moved this much (0: always)
    battery_voltage_v = 0.02   # … the defaults are in DEFAULT_DEADBAND and the README

The password never comes from argv (other users can read it in `ps`), and nothing here prints
it: `MqttConfig.__repr__` leaves it out and `Broker.__str__` shows no password.
"""

from __future__ import annotations

import math
import os
import socket
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .topics import InstanceIdError, check_instance_id, instance_id_from_hostname

# Per state key: a new value replaces the published one only when it differs by at least this
# much, so ADC noise (±1 count) does not become a state change — each one a row in Home
# Assistant's recorder, on a Pi's SD card. One count of resolution passes, two always do;
# temperatures (1 °C steps) are never held.
DEFAULT_DEADBAND: tuple[tuple[str, float], ...] = (
    ("battery_voltage_v", 0.02),
    ("system_voltage_v", 0.02),
    ("alternator_voltage_v", 0.02),
    ("cell_voltages_v", 0.02),  # each cell
    ("cell_min_v", 0.02),
    ("cell_max_v", 0.02),
    ("cell_spread_mv", 20.0),
    ("battery_current_a", 0.2),
    ("power_w", 5.0),
    ("soc_pct", 0.5),
    ("consumed_ah", 0.2),
    ("ttg_min", 5.0),
    ("alternator_current_pct", 2.0),
    ("battery_temperature_c", 1.0),
    ("temperature_c", 1.0),
    ("rssi", 6.0),
)
PASSWORD_ENV = "VICTRON_BMS_MQTT_PASSWORD"  # noqa: S105 - the variable's name, not a password
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class ConfigError(Exception):
    """A config file or option that cannot be used; the message never contains a password."""


def default_config_path() -> Path:
    """`$XDG_CONFIG_HOME/victron-ble-bms/serve.toml` (beside the keys file)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "victron-ble-bms" / "serve.toml"


@dataclass(frozen=True, slots=True)
class Broker:
    """Where to connect: `mqtt://[user@]host[:port]` or `mqtts://…` (no password inside)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"


def parse_broker_url(text: str) -> Broker:
    """`mqtt://[user@]host[:port]`, `mqtts://…`; a password in the URL is refused (argv and
    shell history are readable) and not repeated in the message."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise ConfigError("broker URL: not mqtt://[user@]host[:port] (bad port?)") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ConfigError(
            "broker URL must start with mqtt:// or mqtts:// "
            f"(got {scheme + '://' if scheme else 'no scheme'})"
        )
    if parts.password is not None:
        raise ConfigError(
            "broker URL contains a password: put it in the config file or "
            f"{PASSWORD_ENV}, never on the command line"
        )
    if not parts.hostname:
        raise ConfigError("broker URL has no host: mqtt://[user@]host[:port]")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("broker URL takes no path or query: mqtt://[user@]host[:port]")
    return Broker(
        host=parts.hostname,
        port=port if port is not None else DEFAULT_PORTS[scheme],
        tls=scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
    )


def check_prefix(value: str, what: str) -> str:
    """A topic prefix: non-empty, no wildcards, no leading/trailing '/', no NUL."""
    if (
        not value
        or value.startswith("/")
        or value.endswith("/")
        or any(c in value for c in "+#\0")
        or len(value.encode()) > 200
    ):
        raise ConfigError(
            f"{what} {value!r} is not a usable MQTT topic prefix "
            "(non-empty, no '+', '#', no leading or trailing '/')"
        )
    return value


@dataclass(frozen=True, slots=True)
class MqttConfig:
    broker: Broker | None = None
    password: str | None = field(default=None, repr=False)
    topic_prefix: str = "victron-ble-bms"
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    min_interval_s: float = 1.0
    heartbeat_s: float = 60.0
    stale_after_s: float = 60.0
    max_devices: int = 2048  # device table bound: a flood of addresses cannot grow memory
    cafile: str | None = None
    client_id: str | None = None
    keepalive_s: int = 30
    # Which `serve` this is, among several on one broker (topics.py): "" = from the host name.
    instance_id: str = ""
    deadband: tuple[tuple[str, float], ...] = DEFAULT_DEADBAND

    @property
    def instance(self) -> str:
        return self.instance_id or instance_id_from_hostname(socket.gethostname())

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name != "password"
        )
        return f"MqttConfig({shown}, password={'set' if self.password else 'unset'})"


_FLOATS = ("min_interval_s", "heartbeat_s", "stale_after_s")


def _from_table(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    known = {f.name for f in fields(MqttConfig)} | {"url"}
    for name, value in table.items():
        if name not in known:
            raise ConfigError(f"{where}: unknown setting {name!r}")
        if name == "url":
            if not isinstance(value, str):
                raise ConfigError(f"{where}: url must be a string")
            out["broker"] = parse_broker_url(value)
        elif name in _FLOATS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{where}: {name} must be a number of seconds")
            out[name] = float(value)
        elif name in ("max_devices", "keepalive_s"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{where}: {name} must be a whole number")
            out[name] = value
        elif name == "deadband":
            out[name] = _deadband(value, where)
        elif name == "discovery":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: discovery must be true or false")
            out[name] = value
        else:
            if not isinstance(value, str):
                raise ConfigError(f"{where}: {name} must be a string")
            out[name] = value
    return out


def _deadband(value: Any, where: str) -> tuple[tuple[str, float], ...]:
    """`[mqtt.deadband]`: state keys → non-negative numbers, over the defaults."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: deadband must be a table of state keys and numbers")
    merged = dict(DEFAULT_DEADBAND)
    for key, band in value.items():
        if isinstance(band, bool) or not isinstance(band, int | float):
            raise ConfigError(f"{where}: deadband {key[:40]!r} must be a number")
        if not math.isfinite(band) or band < 0:
            raise ConfigError(f"{where}: deadband {key[:40]!r} must be 0 or more")
        merged[key] = float(band)
    return tuple(merged.items())


def validate(cfg: MqttConfig) -> MqttConfig:
    check_prefix(cfg.topic_prefix, "topic prefix")
    check_prefix(cfg.discovery_prefix, "discovery prefix")
    for name in _FLOATS:
        value = getattr(cfg, name)
        if not math.isfinite(value) or value < 0 or value > 7 * 86400:
            raise ConfigError(f"{name} must be between 0 and a week (got {value})")
    if cfg.heartbeat_s < cfg.min_interval_s:
        raise ConfigError("heartbeat_s must not be shorter than min_interval_s")
    if cfg.stale_after_s <= 0:
        raise ConfigError("stale_after_s must be positive")
    if not 1 <= cfg.max_devices <= 1_000_000:
        raise ConfigError("max_devices must be between 1 and 1,000,000")
    if not 5 <= cfg.keepalive_s <= 3600:
        raise ConfigError("keepalive_s must be between 5 and 3600")
    if cfg.instance_id:
        try:
            check_instance_id(cfg.instance_id)
        except InstanceIdError as exc:
            raise ConfigError(str(exc)) from None
    return cfg


def config_table(
    path: str | os.PathLike[str] | None, name: str, secret: str, what: str
) -> tuple[Path, dict[str, Any] | None, list[str]]:
    """One table of serve's config file (`[mqtt]`, `[signalk]`): the file's path, the table (an
    empty one when the table is absent, None when the default file is missing — that is fine)
    and warnings: a file holding `secret` (the MQTT password, the Signal K token) must not be
    readable by others. Every problem is one `ConfigError` line naming the file."""
    explicit = path is not None
    p = Path(path) if path is not None else default_config_path()
    warnings: list[str] = []
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{p}: no such config file") from None
        return p, None, warnings
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as exc:  # the message names a position, not values
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    table = doc.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{p}: [{name}] must be a table")
    if table.get(secret) and os.name == "posix":
        mode = p.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                f"{p} holds the {what} but is readable by others "
                f"(mode {stat.S_IMODE(mode):04o}); fix with: chmod 600 {p}"
            )
    return p, table, warnings


def load_config(path: str | os.PathLike[str] | None = None) -> tuple[MqttConfig, list[str]]:
    """The `[mqtt]` table of the config file (default path: missing is fine) and warnings."""
    p, table, warnings = config_table(path, "mqtt", "password", "MQTT password")
    if table is None:
        return MqttConfig(), warnings
    values = _from_table(table, f"{p}: [mqtt]")
    try:
        return validate(replace(MqttConfig(), **values)), warnings
    except ConfigError as exc:
        raise ConfigError(f"{p}: [mqtt]: {exc}") from None


def resolve(
    cfg: MqttConfig,
    *,
    url: str | None = None,
    topic_prefix: str | None = None,
    instance_id: str | None = None,
    env: Mapping[str, str] = os.environ,
) -> MqttConfig:
    """Apply command-line options and the password from the environment (env beats file)."""
    changes: dict[str, Any] = {}
    if url is not None:
        changes["broker"] = parse_broker_url(url)
    if topic_prefix is not None:
        changes["topic_prefix"] = topic_prefix
    if instance_id is not None:
        if not instance_id:
            raise ConfigError("--instance-id must not be empty")
        changes["instance_id"] = instance_id
    password = env.get(PASSWORD_ENV)
    if password:
        changes["password"] = password
    return validate(replace(cfg, **changes))
