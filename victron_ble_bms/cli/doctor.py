"""`victron-bms doctor`: is this machine ready to run `serve`? One line per thing it needs —
the Python packages, the system D-Bus, BlueZ (bluetoothd), the adapter, a scan, the keys file,
the MQTT broker (with the config's credentials), and a Signal K server when one is named — each
"ok" with what was found, or what is wrong and the fix. Exits 1 when something needed is
missing, so a script (or an installer) can stop there.

    victron-bms doctor [--mqtt URL] [--config FILE] [--keys FILE] [--adapter hci1]
                       [--signalk http://host:3000] [--source ble|mqtt|…]

Read-only: it writes nothing, and prints no key and no password.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import stat
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from victron_ble_bms.mqtt.config import default_config_path
from victron_ble_bms.safetext import plain

from .keys import default_keys_path

EXIT_OK = 0
EXIT_MISSING = 1
EXIT_USAGE = 2
TIMEOUT_S = 5.0
SERVE_EXTRA = "pip install 'victron-ble-bms[serve]'"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    needed: bool = True  # a failing check that is not needed is a warning, not a failure

    def line(self) -> str:
        mark = "ok  " if self.ok else ("FAIL" if self.needed else "warn")
        text = f"{mark} {self.name}: {self.detail}"
        return text + (f" — fix: {self.fix}" if not self.ok and self.fix else "")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "doctor",
        help="check that this machine can run `serve`: Bluetooth, keys, broker",
        description="Check, in one line each, what `victron-bms serve` needs here: bleak and "
        "dbus-fast, the system D-Bus, BlueZ, the adapter (and a short scan), the keys file, "
        "the MQTT broker (with the config file's credentials) and, when given, a Signal K "
        "server. Each problem comes with its fix; exits 1 when something needed is missing.",
    )
    p.add_argument("--source", default="ble", help="the source serve will use (default: ble)")
    p.add_argument("--mqtt", metavar="URL", help="broker: mqtt://[user@]host[:port]")
    p.add_argument(
        "--config", metavar="FILE", help=f"config file (default {default_config_path()})"
    )
    p.add_argument("--keys", metavar="FILE", help=f"keys file (default {default_keys_path()})")
    p.add_argument("--adapter", metavar="NAME", help="Bluetooth adapter, e.g. hci1")
    p.add_argument("--signalk", metavar="URL", help="also check this Signal K server")
    p.set_defaults(run=run)


# --- the checks -----------------------------------------------------------------------------


def check_packages(source: str) -> list[Check]:
    wanted = ["aiomqtt"]
    if source == "ble":
        wanted += ["bleak"] + (["dbus_fast"] if sys.platform.startswith("linux") else [])
    missing = [n.replace("_", "-") for n in wanted if importlib.util.find_spec(n) is None]
    if missing:
        return [Check("packages", False, f"not installed: {', '.join(missing)}", SERVE_EXTRA)]
    return [Check("packages", True, ", ".join(n.replace("_", "-") for n in wanted))]


async def _bluez_objects() -> dict[str, Any]:
    from dbus_fast import BusType, Message, MessageType
    from dbus_fast.aio import MessageBus

    bus = await asyncio.wait_for(MessageBus(bus_type=BusType.SYSTEM).connect(), TIMEOUT_S)
    try:
        reply = await asyncio.wait_for(
            bus.call(
                Message(
                    destination="org.bluez",
                    path="/",
                    interface="org.freedesktop.DBus.ObjectManager",
                    member="GetManagedObjects",
                )
            ),
            TIMEOUT_S,
        )
    finally:
        bus.disconnect()
    if reply is None or reply.message_type is MessageType.ERROR:
        name = reply.error_name if reply is not None else "no reply"
        raise LookupError(str(name))
    objects: dict[str, Any] = reply.body[0]
    return objects


def _value(v: Any) -> Any:
    return getattr(v, "value", v)


async def check_bluetooth(adapter: str | None) -> list[Check]:
    """D-Bus, BlueZ and the adapter, then one short scan through bleak as serve does."""
    if importlib.util.find_spec("dbus_fast") is None:
        return [Check("BlueZ", False, "not checked: dbus-fast is not installed", SERVE_EXTRA)]
    try:
        objects = await _bluez_objects()
    except LookupError as exc:
        if "ServiceUnknown" in str(exc) or "NameHasNoOwner" in str(exc):
            return [
                Check("D-Bus", True, "system bus reachable"),
                Check(
                    "BlueZ",
                    False,
                    "bluetoothd is not running (nobody owns org.bluez on the system bus)",
                    "sudo apt install bluez && sudo systemctl enable --now bluetooth",
                ),
            ]
        if "AccessDenied" in str(exc):
            return [
                Check("D-Bus", True, "system bus reachable"),
                Check("BlueZ", False, "access denied", "sudo usermod -aG bluetooth $USER"),
            ]
        return [Check("BlueZ", False, f"did not answer: {plain(str(exc), 120)}")]
    except (OSError, TimeoutError, EOFError) as exc:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return [
            Check(
                "D-Bus",
                False,
                f"system bus not reachable ({plain(why, 120)})",
                "sudo apt install dbus && sudo systemctl start dbus",
            )
        ]
    checks = [Check("D-Bus", True, "system bus reachable"), Check("BlueZ", True, "running")]
    adapters = {
        path.rsplit("/", 1)[-1]: props["org.bluez.Adapter1"]
        for path, props in objects.items()
        if "org.bluez.Adapter1" in props
    }
    if not adapters:
        return [
            *checks,
            Check(
                "adapter",
                False,
                "no Bluetooth adapter",
                "plug in a USB adapter or check 'rfkill list' and 'bluetoothctl list'",
            ),
        ]
    name = adapter or sorted(adapters)[0]
    if name not in adapters:
        return [
            *checks,
            Check(
                "adapter",
                False,
                f"{plain(name, 20)} not present (there is {', '.join(sorted(adapters))})",
                "give --adapter one of those",
            ),
        ]
    props = adapters[name]
    address = plain(str(_value(props.get("Address", "?"))), 20)
    if not _value(props.get("Powered", False)):
        return [
            *checks,
            Check(
                "adapter",
                False,
                f"{name} ({address}) is powered off",
                "bluetoothctl power on (or rfkill unblock bluetooth)",
            ),
        ]
    checks.append(Check("adapter", True, f"{name} ({address}), powered"))
    checks.append(await _check_scan(name))
    return checks


async def _check_scan(adapter: str) -> Check:
    if importlib.util.find_spec("bleak") is None:
        return Check("scan", False, "not tried: bleak is not installed", SERVE_EXTRA)
    from victron_ble_bms.sources.ble import ScanError, close_bleak_bus
    from victron_ble_bms.sources.live import LiveScan, ScanOptions

    scan = LiveScan({}, ScanOptions(adapter=adapter))
    try:
        await asyncio.wait_for(scan.preflight(), 20)
    except ScanError as exc:
        return Check("scan", False, str(exc))
    except TimeoutError:
        return Check("scan", False, "BlueZ did not start a scan within 20 s")
    finally:
        await close_bleak_bus()
    return Check("scan", True, "BlueZ starts and stops a scan")


def check_keys(path: Path) -> Check:
    from victron_ble_bms.sources.keys import KeyFileError, KeyStore

    fix_add = "victron-bms keys add AA:BB:CC:DD:EE:FF KEY --name … (the key: VictronConnect)"
    if not path.exists():
        return Check("keys", False, f"{path}: no such file", fix_add)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        store = KeyStore.load(path)
    except KeyFileError as exc:
        return Check("keys", False, plain(str(exc), 200), f"edit or re-create {path}")
    except OSError as exc:
        return Check("keys", False, f"{path}: {exc.strerror or exc}", f"check {path}'s owner")
    if mode & 0o077:
        return Check(
            "keys",
            False,
            f"{path} is readable by others (mode {mode:04o}); {len(store)} keys",
            f"chmod 600 {path}",
        )
    if len(store) == 0:
        return Check("keys", False, f"{path} holds no keys", fix_add)
    return Check("keys", True, f"{path}: mode {mode:04o}, {len(store)} keys")


async def check_broker(args: argparse.Namespace) -> Check:
    from victron_ble_bms.mqtt.config import ConfigError, load_config, resolve

    try:
        cfg, _warnings = load_config(args.config)
        cfg = resolve(cfg, url=args.mqtt)
    except ConfigError as exc:
        return Check("broker", False, plain(str(exc), 200), "fix the config file or --mqtt")
    if cfg.broker is None:
        return Check(
            "broker",
            False,
            "none configured",
            f"give --mqtt mqtt://[user@]host[:port] or url = … under [mqtt] in "
            f"{default_config_path()}",
        )
    if importlib.util.find_spec("aiomqtt") is None:
        return Check("broker", False, "not checked: aiomqtt is not installed", SERVE_EXTRA)
    import aiomqtt

    from victron_ble_bms.mqtt.link import REFUSED, describe

    tls = None
    if cfg.broker.tls:
        import ssl

        tls = ssl.create_default_context(cafile=cfg.cafile)
    client = aiomqtt.Client(
        cfg.broker.host,
        cfg.broker.port,
        username=cfg.broker.username,
        password=cfg.password,
        tls_context=tls,
        timeout=TIMEOUT_S,
        identifier=f"victron-bms-doctor-{os.getpid()}",
    )
    try:
        async with asyncio.timeout(TIMEOUT_S + 2):
            async with client:
                pass
    except Exception as exc:  # noqa: BLE001 - any failure is one line
        text = describe(exc, cfg.password)
        fix = {
            REFUSED: "check the user in the URL and VICTRON_BMS_MQTT_PASSWORD or password = … "
            "in the config file",
        }.get(text, "check the host, the port and that the broker runs (mosquitto -v)")
        if text.startswith("TLS"):
            fix = "connect by the name in the broker's certificate, or set cafile = …"
        return Check("broker", False, f"{cfg.broker}: {text}", fix)
    return Check(
        "broker", True, f"{cfg.broker}: connected" + (" (password)" if cfg.password else "")
    )


def check_signalk(url: str) -> Check:
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        return Check(
            "Signal K", False, f"{plain(url, 80)} is not an http(s) URL", "http://host:3000"
        )
    try:
        with urllib.request.urlopen(f"{base}/signalk", timeout=TIMEOUT_S) as response:  # noqa: S310
            doc = json.loads(response.read(65536))
        endpoints = doc["endpoints"]
        version = next(iter(endpoints.values()))["version"]
    except urllib.error.URLError as exc:
        reason = getattr(exc, "reason", exc)
        return Check(
            "Signal K",
            False,
            f"{plain(base, 80)}: {plain(str(reason), 120)}",
            "start signalk-server (sudo systemctl start signalk) and check the URL",
        )
    except (ValueError, KeyError, TypeError, StopIteration, OSError) as exc:
        return Check(
            "Signal K",
            False,
            f"{plain(base, 80)}/signalk is not a Signal K discovery document "
            f"({type(exc).__name__})",
            "give the server's own URL, e.g. http://host:3000",
        )
    return Check("Signal K", True, f"{plain(base, 80)}: server version {plain(str(version), 20)}")


# --- running --------------------------------------------------------------------------------


async def _checks(args: argparse.Namespace, say: Callable[[Check], None]) -> list[Check]:
    found: list[Check] = []

    def add(*checks: Check) -> None:
        for c in checks:
            found.append(c)
            say(c)

    add(*check_packages(args.source))
    if args.source == "ble":
        add(*await check_bluetooth(args.adapter))
    keys_path = Path(args.keys) if args.keys else default_keys_path()
    add(check_keys(keys_path.expanduser()))
    add(await check_broker(args))
    if args.signalk:
        add(await asyncio.to_thread(check_signalk, args.signalk))
    return found


def run(args: argparse.Namespace) -> int:
    if args.source not in ("ble", "emulator", "capture", "mqtt"):
        sys.stderr.write("victron-bms: --source must be ble, emulator, capture or mqtt\n")
        return EXIT_USAGE

    def say(check: Check) -> None:
        sys.stdout.write(check.line() + "\n")
        sys.stdout.flush()

    checks = asyncio.run(_checks(args, say))
    bad = [c for c in checks if not c.ok and c.needed]
    sys.stdout.write(
        "ready for `victron-bms serve`\n"
        if not bad
        else f"not ready: {len(bad)} problem{'s' if len(bad) > 1 else ''} above\n"
    )
    return EXIT_MISSING if bad else EXIT_OK


__all__ = ["Check", "register", "run"]
