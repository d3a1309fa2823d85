"""`victron-bms dashboard`: the Textual monitor, fed by the radio, the emulator or a capture.

The source is built here and injected into the app (the app never knows where data comes from).
Textual is imported only when the command runs, so the rest of the CLI works without it.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.keys import KeyFileError, KeyStore

from .capture_keys import keys_from_headers
from .output import error

EXIT_INTERNAL = 1  # a bug: one line, no traceback, no locals
EXIT_SOURCE = 1  # the source stopped (its message is printed after the screen closes)
EXIT_USAGE = 2
EXIT_PARTIAL = 3  # corrupt records were skipped (as `decode`)
# A remote serve publishes a steady device at its heartbeat (mqtt config heartbeat_s, 60 s).
REMOTE_STALE_AFTER_S = 70.0


def default_keys_path() -> Path:
    """`$XDG_CONFIG_HOME/victron-ble-bms/keys.toml` (issue 5's key store location)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "victron-ble-bms" / "keys.toml"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dashboard",
        help="live dashboard of batteries and BMSes (demo when there is no Bluetooth adapter)",
        description="A terminal dashboard: cells, balance, codes with their remedies, alerts. "
        "Uses the Bluetooth scanner when an adapter is available; otherwise (or with --demo) "
        "the built-in emulator fleet. --replay plays a capture file of any supported format.",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--demo", action="store_true", help="show the emulated demo fleet")
    group.add_argument("--replay", metavar="FILE", help="play a capture (btsnoop, pcap, jsonl …)")
    group.add_argument(
        "--mqtt",
        metavar="URL",
        help="watch the devices a remote `victron-bms serve` publishes: mqtt://[user@]host[:port] "
        "or mqtts://… (password from $VICTRON_BMS_MQTT_PASSWORD)",
    )
    p.add_argument(
        "--topic-prefix",
        default=None,
        metavar="PREFIX",
        help="with --mqtt: the remote serve's topic prefix (default victron-ble-bms)",
    )
    p.add_argument(
        "--speed", type=float, default=None, metavar="N", help="replay N times faster (default 1)"
    )
    p.add_argument(
        "--keys", metavar="FILE", help=f"keys file (TOML; default {default_keys_path()})"
    )
    p.set_defaults(run=run)


@dataclass(slots=True)
class Plan:
    """What to show: the source, and how to label it."""

    source: AsyncIterator[Any]
    keys: KeyStore
    demo: bool
    label: str
    clock: Callable[[], float] | None = None
    note: str = ""
    on_app: Callable[[Any], None] | None = None  # told the app once it exists (remote notes)
    skipped: list[Any] | None = None  # problems the source skips past (corrupt records)


def bluetooth_adapter() -> str | None:
    """A cheap check for an adapter, without starting a scan.

    Linux lists local adapters in sysfs. When there is none there (or DBUS_SYSTEM_BUS_ADDRESS
    points at another bus, e.g. the emulator's virtual BlueZ), ask BlueZ over D-Bus, briefly.
    """
    base = Path("/sys/class/bluetooth")
    try:
        names = sorted(p.name for p in base.iterdir() if p.name.startswith("hci"))
    except OSError:
        names = []
    if names and not os.environ.get("DBUS_SYSTEM_BUS_ADDRESS"):
        return names[0]
    return _bluez_adapter() or (names[0] if names else None)


NO_BLUETOOTHD = (  # as `scan` says it (sources/ble.py explain)
    "bluetoothd is not running (nobody owns org.bluez on the system bus): "
    "start it with 'sudo systemctl start bluetooth'"
)


def why_no_adapter(timeout_s: float = 1.5) -> str:
    """Why `bluetooth_adapter()` found none, named as `scan` names it (issue 25 item 2): no
    system bus, no bluetoothd, or BlueZ without an adapter."""
    try:
        from dbus_fast import BusType, Message
        from dbus_fast.aio import MessageBus
    except ImportError:
        return "no Bluetooth adapter found (dbus-fast is not installed: pip install bleak)"

    async def ask() -> bool:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        try:
            reply = await bus.call(
                Message(
                    destination="org.freedesktop.DBus",
                    path="/org/freedesktop/DBus",
                    interface="org.freedesktop.DBus",
                    member="NameHasOwner",
                    signature="s",
                    body=["org.bluez"],
                )
            )
        finally:
            bus.disconnect()
        return bool(reply is not None and reply.body and reply.body[0])

    async def bounded() -> bool:
        return await asyncio.wait_for(ask(), timeout_s)

    try:
        owned = asyncio.run(bounded())
    except Exception:  # noqa: BLE001 - no system bus at all (a container, no dbus)
        return "no D-Bus system bus (is dbus running?), so no Bluetooth"
    if not owned:
        return NO_BLUETOOTHD
    return "no Bluetooth adapter found (check 'bluetoothctl list')"


def _bluez_adapter(timeout_s: float = 1.5) -> str | None:
    """The first org.bluez.Adapter1 on the system bus, or None (no bus, no bluetoothd …)."""
    try:
        from dbus_fast import BusType, Message
        from dbus_fast.aio import MessageBus
    except ImportError:
        return None

    async def ask() -> str | None:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        try:
            reply = await bus.call(
                Message(
                    destination="org.bluez",
                    path="/",
                    interface="org.freedesktop.DBus.ObjectManager",
                    member="GetManagedObjects",
                )
            )
        finally:
            bus.disconnect()
        if reply is None or not isinstance(reply.body[0], dict):
            return None
        for path, interfaces in sorted(reply.body[0].items()):
            if "org.bluez.Adapter1" in interfaces:
                return str(path).rsplit("/", 1)[-1]
        return None

    async def bounded() -> str | None:
        return await asyncio.wait_for(ask(), timeout_s)

    try:
        return asyncio.run(bounded())
    except Exception:  # noqa: BLE001 - any failure means "no adapter we can use"
        return None


def _private_keys(name: str) -> KeyStore:
    """A keys file for this run only, where no other user can reach it: a fresh directory
    (mkdtemp: 0700, a name nobody could have prepared, never a symlink planted in the shared
    temp directory) removed at exit. A fixed name there let another user read the keys typed
    into the dashboard, or point the file at one of ours (issue 18)."""
    directory = tempfile.mkdtemp(prefix="victron-bms-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return KeyStore(Path(directory) / name)


def _demo_plan(note: str = "") -> Plan:
    from victron_ble_bms.emulator.engine import Emulator, demo_fleet
    from victron_ble_bms.tui.feeds import ReplayClock

    from .emulate import emulated_banks

    emulator = Emulator(demo_fleet(), seed=1, speed=1.0)
    # The emulator's timestamps are simulated time; ages on screen follow them.
    clock = ReplayClock(1.0)
    # Demo keys stay out of the user's keys file: a key added in the demo goes to a temp file.
    keys = _private_keys("demo-keys.toml")
    names = {ident.address: ident.name for ident in emulator.identities}
    for address, key in emulator.keys.items():
        keys.add(address, key, name=names.get(address))  # a bank names its members by these
    # Each emulated BMS and its batteries form a bank, declared as a keys file would (issue 20).
    for name, table in emulated_banks(emulator, "demo").items():
        keys.add_bank(name, table)

    async def advertisements() -> AsyncIterator[Advertisement]:
        async for adv in emulator.stream():
            clock.mark(adv.ts)
            yield adv

    return Plan(advertisements(), keys, True, "demo", clock=clock, note=note)


def _replay_plan(path: str, speed: float, keys: KeyStore) -> Plan:
    from victron_ble_bms.sources.capture import CaptureError, open_capture
    from victron_ble_bms.tui.feeds import ReplayClock, replay

    # A corrupt record is collected in `errors` and skipped, as `decode` does (issue 9 item 6);
    # only an unreadable or unknown file raises CaptureError here.
    errors: list[CaptureError] = []
    capture = open_capture(path, errors=errors)

    clock = ReplayClock(speed)

    async def advertisements() -> AsyncIterator[Advertisement]:
        with capture:
            async for adv in replay(capture, speed=speed, clock=clock):
                yield adv

    label = f"replay {Path(path).name} ×{speed:g} ({capture.format})"
    return Plan(advertisements(), keys, False, label, clock=clock, skipped=errors)


def _load_keys(path: str | None) -> KeyStore:
    explicit = path is not None
    return KeyStore.load(path or default_keys_path(), missing_ok=not explicit)


def _mqtt_plan(url: str, prefix: str) -> Plan:
    """A remote serve's state topics. Decoding happened on the remote (its keys file), so the
    dashboard uses no keys of its own. Staleness follows the readings' own time; a serve
    publishes a steady device only at its heartbeat (60 s by default), so a device counts as
    stale here after that plus a margin, not after a local radio's 10 s."""
    from victron_ble_bms.mqtt.config import MqttConfig, resolve
    from victron_ble_bms.receivers.remote import RemoteClock, remote_readings
    from victron_ble_bms.tui import state

    cfg = resolve(MqttConfig(), url=url, topic_prefix=prefix)  # ConfigError: one line
    state.STALE_AFTER_S = REMOTE_STALE_AFTER_S
    clock = RemoteClock()
    apps: list[Any] = []

    def note(text: str) -> None:
        for app in apps:
            app.notify(plain(text), severity="warning", timeout=10)
            if text.startswith("remote serve "):  # bridge availability: kept on the status line
                app.set_status_note(None if text.startswith("remote serve online") else text)

    source = remote_readings(cfg, cfg.topic_prefix, clock=clock, on_note=note)
    keys = _private_keys("remote-keys.toml")
    label = f"remote {cfg.broker} ({cfg.topic_prefix}/)"

    def attach(app: Any) -> None:
        apps.append(app)
        app.cannot_record = (
            "cannot record here: serve publishes decoded states over MQTT, not the encrypted "
            "frames a recording holds — record where the radio is: victron-bms record "
            "--source ble -o FILE"
        )

    return Plan(source, keys, False, label, clock=clock, on_app=attach)


def plan(args: argparse.Namespace) -> Plan:
    if getattr(args, "mqtt", None):
        return _mqtt_plan(args.mqtt, args.topic_prefix or "victron-ble-bms")
    keys_path, said = args.keys, None
    if args.replay and keys_path is None:
        # A recording's header may name its keys, and with them its banks (issue 25 item 6,
        # issue 20): as `decode` does, said first (the line stays after the screen closes).
        keys_path, said = keys_from_headers([args.replay])
    keys = _load_keys(keys_path)
    if args.replay:
        chosen = _replay_plan(args.replay, args.speed or 1.0, keys)
        if said:
            error(said)
            if keys_path is not None:
                chosen.label += f" · keys {Path(keys_path).name}"
        return chosen
    if args.demo:
        return _demo_plan()
    adapter = bluetooth_adapter()
    if adapter is None:
        return _demo_plan(f"{why_no_adapter()}; showing the demo")
    return _live_plan(adapter, keys)


def _live_plan(adapter: str, keys: KeyStore) -> Plan:
    """The BLE scanner (with its watchdog) on `adapter`. The scanner reads the same KeyStore
    object the key dialog writes, so a key added on screen applies to the next frame."""
    from victron_ble_bms.sources.live import readings

    source = readings(keys, adapter=adapter, status_events=False)
    return Plan(source, keys, False, f"live scan on {adapter}")


def misplaced(args: argparse.Namespace) -> str | None:
    """An option the chosen source cannot use: an error naming it, not ignored (issue 25)."""
    if args.speed is not None and not args.replay:
        return "--speed only applies to --replay"
    if args.topic_prefix is not None and not args.mqtt:
        return "--topic-prefix only applies to --mqtt"
    if args.keys is not None and args.mqtt:
        return "--keys cannot apply to --mqtt: the remote serve decodes with its own keys"
    if args.keys is not None and args.demo:
        return "--keys cannot apply to --demo: the emulated devices bring their own test keys"
    return None


def run(args: argparse.Namespace) -> int:
    wrong = misplaced(args)
    if wrong is not None:
        error(wrong)
        return EXIT_USAGE
    if args.speed is not None and args.speed <= 0:
        error("--speed must be a positive number")
        return EXIT_USAGE
    try:
        import textual  # noqa: F401
    except ImportError:
        error("the dashboard needs textual: pip install 'victron-ble-bms[full]'")
        return EXIT_USAGE
    from victron_ble_bms.mqtt.config import ConfigError
    from victron_ble_bms.sources.capture import CaptureError

    try:
        chosen = plan(args)
    except (KeyFileError, CaptureError, ConfigError) as exc:
        error(str(exc))
        return EXIT_USAGE
    if chosen.note:
        sys.stderr.write(f"victron-bms: {chosen.note}\n")
    from victron_ble_bms.tui.app import DashboardApp
    from victron_ble_bms.tui.gc_pace import fewer_collections

    kwargs: dict[str, Any] = {}
    if chosen.clock is not None:
        kwargs["clock"] = chosen.clock
    app = DashboardApp(
        chosen.source,
        keys=chosen.keys,
        demo=chosen.demo,
        source_label=chosen.note or chosen.label,
        skipped=chosen.skipped,
        **kwargs,
    )
    if chosen.on_app is not None:
        chosen.on_app(app)
    with fewer_collections():
        app.run()
    if app.return_code:  # an internal error: one line, never a traceback with locals
        sys.stderr.write((app.crash or "victron-bms dashboard: internal error") + "\n")
        return EXIT_INTERNAL
    status = 0
    for problem in chosen.skipped or ():
        error(plain(problem))
        status = EXIT_PARTIAL
    if app.source_error:
        error(app.source_error)
        status = EXIT_SOURCE
    return status
