"""`victron-bms serve`: read one source unattended, publish to an MQTT broker with Home Assistant
discovery (the topic contract is in victron_ble_bms/mqtt/topics.py and the README).

    victron-bms serve --mqtt mqtt://[user@]host[:port] [--source ble|emulator|mqtt]
    victron-bms serve --mqtt mqtts://host --source capture FILE [--speed N|max]
    victron-bms serve --mqtt URL --publish-raw [--receiver-id ID]   (a receiver: raw frames only)
    victron-bms serve … --print-systemd-unit

Runs for weeks: bounded memory, one line per problem on stderr, reconnects with back-off, never
a traceback. The broker password comes from the config file or VICTRON_BMS_MQTT_PASSWORD only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import importlib
import importlib.util
import math
import shutil
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from victron_ble_bms.hub import Board, Sink
from victron_ble_bms.mqtt.config import default_config_path
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.keys import KeyFileError, KeyStore
from victron_ble_bms.sources.readings import Reading

from .emulate import _speed  # the same --speed N|max as emulate
from .keys import default_keys_path
from .output import error
from .stopping import stop_event

EXIT_OK = 0
EXIT_UNAVAILABLE = 1
EXIT_USAGE = 2
SOURCES = ("ble", "emulator", "capture", "mqtt")
TICK_S = 1.0
DRAIN_S = 30.0  # a replayed capture: how long its last messages may take to go out
DRAIN_ON_STOP_S = 3.0  # stopped by a signal or --duration while connected
KEYS_CHECK_S = 5.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="publish readings to an MQTT broker, with Home Assistant discovery",
        description="Headless and long-running: read one source (the radio by default), decode "
        "with the keys file and publish every device's state, availability and Home Assistant "
        "discovery to an MQTT broker. The broker password is read from the config file or "
        "VICTRON_BMS_MQTT_PASSWORD, never from the command line.",
    )
    p.add_argument(
        "--source",
        nargs="+",
        default=["ble"],
        metavar="SOURCE",
        help="ble (default) | emulator | capture FILE | mqtt (remote receivers)",
    )
    p.add_argument("--mqtt", metavar="URL", help="broker: mqtt://[user@]host[:port] or mqtts://…")
    p.add_argument(
        "--topic-prefix", metavar="PREFIX", help="topic prefix (default victron-ble-bms)"
    )
    p.add_argument(
        "--instance-id",
        metavar="ID",
        help="this serve among others on the same broker: its own bridge device, availability "
        "and clean-up (lower-case letters, digits, _ -; default: the host name)",
    )
    p.add_argument(
        "--keys", metavar="FILE", help=f"keys file (TOML; default {default_keys_path()})"
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help=f"config file (TOML, [mqtt] table; default {default_config_path()})",
    )
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument(
        "--print-systemd-unit", action="store_true", help="print a systemd unit for these options"
    )
    p.add_argument(
        "--signalk",
        metavar="URL",
        help="also (or instead) send the batteries to a Signal K server: "
        "ws://host[:port]/signalk/v1/stream (token: [signalk] in the config file or "
        "VICTRON_BMS_SIGNALK_TOKEN, else a device access request)",
    )
    g = p.add_argument_group("emulator and capture sources")
    g.add_argument("--device", action="append", default=[], metavar="TYPE[:ADDRESS[:KEY]]")
    g.add_argument("--scenario", help="bundled scenario name or TOML file (with --device)")
    g.add_argument("--seed", type=int, default=1, help="emulator random seed")
    g.add_argument("--speed", default="1", help="simulated/replayed seconds per second, or max")
    g = p.add_argument_group("ble source")
    g.add_argument("--adapter", metavar="NAME", help="Bluetooth adapter, e.g. hci1")
    g.add_argument("--passive", action="store_true", help="passive scan (BlueZ experimental)")
    g = p.add_argument_group(
        "a receiver for a remote decoder",
        "With --publish-raw serve decodes nothing and needs no keys: it forwards each Victron "
        "advertisement its source hears (once per transmission, never retained) to "
        "<prefix>/raw/<receiver-id>, for a `serve --source mqtt` elsewhere to decode. No "
        "state, no Home Assistant discovery: those come from the decoder, so two machines "
        "never publish the same device.",
    )
    g.add_argument(
        "--publish-raw",
        action="store_true",
        help="publish raw advertisements instead of decoded states (a receiver, e.g. a Pi Zero)",
    )
    g.add_argument(
        "--receiver-id",
        metavar="ID",
        help="this receiver's name in topics and states: letters, digits, . _ - "
        "(default: the host name)",
    )
    g = p.add_argument_group("web page (needs the web extra: aiohttp)")
    g.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="also serve a live, read-only web page and /api/state, e.g. 127.0.0.1:8080 (this "
        "machine only) or 0.0.0.0:8080 (the boat's Wi-Fi: needs the token serve prints)",
    )
    g = p.add_argument_group("mqtt source (remote receivers)")
    g.add_argument(
        "--receiver-topic",
        action="append",
        default=[],
        metavar="FILTER",
        help="topic filter the receivers publish to (default: the receivers' own defaults)",
    )
    p.set_defaults(run=run)


def say(message: str) -> None:
    """One line on stderr: the journal adds the time when run as a service."""
    sys.stderr.write(f"victron-bms serve: {message}\n")
    sys.stderr.flush()


# --- keys file, re-read when it changes -----------------------------------------------------


class ReloadingKeys(Mapping[str, bytes]):
    """A KeyStore that re-reads its file when the file changes (checked by `refresh()`), so a
    device removed from the keys file loses its Home Assistant entities without a restart."""

    def __init__(self, store: KeyStore, path: Path | None) -> None:
        self.store = store
        self.path = path
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def refresh(self) -> bool:
        """True when the file changed and was re-read (a broken file keeps the old keys)."""
        stamp = self._stat()
        if self.path is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self.store = KeyStore.load(self.path, missing_ok=True)
        except KeyFileError as exc:
            say(f"keys file not re-read, keeping the previous keys: {exc}")
            return False
        return True

    def __getitem__(self, address: str) -> bytes:
        return self.store[address]

    def __iter__(self) -> Iterator[str]:
        return iter(self.store)

    def __len__(self) -> int:
        return len(self.store)

    def __contains__(self, address: object) -> bool:
        return address in self.store

    def name(self, address: str) -> str | None:
        try:
            return self.store.name(address)
        except KeyFileError:
            return None


# --- sources --------------------------------------------------------------------------------


async def _decoded(
    advertisements: AsyncIterator[Advertisement], keys: Mapping[str, bytes]
) -> AsyncIterator[Reading]:
    """New readings (repeats dropped, replays flagged) from a stream of advertisements."""
    from victron_ble_bms.sources.devices import DevicesState

    devices = DevicesState(keys, max_devices=4096)
    failed = 0
    async for adv in advertisements:
        try:
            update = devices.update(adv)
        except Exception as exc:  # noqa: BLE001 - one advertisement lost, never the service
            failed += 1
            if failed == 1 or failed % 1000 == 0:
                say(f"advertisement not decoded ({failed} so far): {type(exc).__name__}")
            continue
        if update.reading is not None:
            yield update.reading


class _EmulatedKeys(dict[str, bytes]):
    """The emulator's keys, with the banks its systems form, as a keys file would declare them
    (`banks.declared_banks` reads `.banks`), so an emulated bank is published as a bank."""

    banks: Mapping[str, Any] = {}


def _emulator(args: argparse.Namespace, speed: float | None) -> tuple[Any, _EmulatedKeys]:
    from victron_ble_bms.banks import parse_banks
    from victron_ble_bms.emulator import DeviceSpec, load_scenario, parse_device_spec
    from victron_ble_bms.emulator.engine import Emulator, demo_fleet

    from .emulate import emulated_banks

    if args.device:
        scenario = load_scenario(args.scenario or "normal-day")
        specs = [parse_device_spec(d) for d in args.device]
        emu = Emulator(specs, scenario, seed=args.seed, speed=speed, start_ts=time.time())
    elif args.scenario:
        scenario = load_scenario(args.scenario)
        specs = [DeviceSpec(d.type) for d in scenario.devices for _ in range(d.count)]
        emu = Emulator(specs, scenario, seed=args.seed, speed=speed, start_ts=time.time())
    else:
        emu = Emulator(demo_fleet(), seed=args.seed, speed=speed, start_ts=time.time())
    keys = _EmulatedKeys(emu.keys)
    names = {ident.address: f"emulated {ident.name}" for ident in emu.identities}
    keys.banks, _problems = parse_banks(emulated_banks(emu, args.scenario or "demo"), names)
    return emu, keys


async def _capture(path: str, speed: float | None) -> AsyncIterator[Advertisement]:
    from victron_ble_bms.sources.capture import CaptureError, open_capture
    from victron_ble_bms.sources.capture.pace import Pacer, dated

    skipped = 0

    def skip(err: CaptureError) -> None:  # the first few in full, then only the count
        nonlocal skipped
        skipped += 1
        if skipped <= 5:
            say(f"skipped: {err}")

    # A file that cannot be opened is no capture to replay: the caller reports it (non-zero).
    capture = open_capture(path, on_error=skip)
    pacer = Pacer(speed or 1.0, on_gap=say)
    wall0 = time.monotonic()
    due = 0.0  # seconds after wall0 the next frame is due (one schedule: no drift per sleep)
    try:
        with capture:
            for adv in dated(capture, lambda line: skip(CaptureError(line, path=path))):
                if speed is not None:
                    due += pacer.delay(adv.ts)
                    delay = wall0 + due - time.monotonic()
                    await asyncio.sleep(max(0.0, delay))
                else:
                    await asyncio.sleep(0)
                yield adv
    except CaptureError as exc:
        say(f"capture stopped: {exc}")
    if skipped > 5:
        say(f"{skipped} records skipped in all")


async def _remote(args: argparse.Namespace, cfg: Any, tracker: Any) -> AsyncIterator[Advertisement]:
    """Remote receivers (imported here: they need the optional MQTT client, checked first)."""
    from victron_ble_bms import receivers

    # The whole config, not just the URL: its password (file or env) and cafile apply too.
    # Our own receivers publish under the same --topic-prefix as this serve.
    topics = args.receiver_topic or receivers.default_topics(cfg.topic_prefix)
    async for adv in receivers.advertisements(cfg, topics, receivers=tracker):
        yield adv


def _receiver_tracker(source: str) -> Any:
    """For --source mqtt: the receivers' bookkeeping (best receiver per device, silent
    receivers — each reported in one line), or None."""
    if source != "mqtt":
        return None
    from victron_ble_bms import receivers

    return receivers.Receivers(on_event=say)


def _all_receivers_gone(tracker: Any) -> Callable[[str], bool]:
    """For the publisher: is a device heard only through receivers that have all gone (a
    gateway's last will said offline, or silent past the limit)? Then it is offline now."""

    def unheard(address: str) -> bool:
        dev = tracker.device(address)
        if dev is None or not dev.receivers:
            return False
        states = [tracker.receivers.get(rid) for rid in dev.receivers]
        return all(st is not None and st.silent for st in states)

    return unheard


async def _ble(args: argparse.Namespace, keys: Mapping[str, bytes]) -> AsyncIterator[Reading]:
    from victron_ble_bms.sources.ble import close_bleak_bus
    from victron_ble_bms.sources.live import (
        EventKind,
        LiveScan,
        ScanError,
        ScanOptions,
        StatusEvent,
    )

    scan = LiveScan(keys, ScanOptions(passive=args.passive, adapter=args.adapter))
    try:
        await scan.preflight()
    except ScanError as exc:
        say(f"{exc} — waiting for Bluetooth")
    finally:
        await close_bleak_bus()
    try:
        async with scan:
            async for item in scan:
                if isinstance(item, StatusEvent):
                    if item.kind is not EventKind.SCANNING or item.recovery_s is not None:
                        say(item.message)
                    continue
                yield item
    finally:
        await close_bleak_bus()


# --- running --------------------------------------------------------------------------------


def _unit(args: argparse.Namespace, argv_mqtt: str | None) -> str:
    from victron_ble_bms.mqtt.systemd import group_exists, unit_text

    exe = shutil.which("victron-bms") or str(Path(sys.argv[0]).resolve())
    opts: list[str] = []
    if args.source != ["ble"]:
        opts += ["--source", *args.source]
    if argv_mqtt:
        opts += ["--mqtt", argv_mqtt]
    if args.topic_prefix:
        opts += ["--topic-prefix", args.topic_prefix]
    if args.instance_id:
        opts += ["--instance-id", args.instance_id]
    if not args.publish_raw:  # a receiver reads no keys
        opts += ["--keys", str(Path(args.keys or default_keys_path()).expanduser().resolve())]
    if args.config:
        opts += ["--config", str(Path(args.config).resolve())]
    if args.adapter:
        opts += ["--adapter", args.adapter]
    if args.publish_raw:
        opts += ["--publish-raw", "--receiver-id", _receiver_id(args)]
    for attr, flag in _SINK_FLAGS:
        if getattr(args, attr, None):
            opts += [flag, getattr(args, attr)]
    return unit_text(exe, opts, user=getpass.getuser(), bluetooth_group=group_exists("bluetooth"))


def _receiver_id(args: argparse.Namespace) -> str:
    from victron_ble_bms.receivers.forward import check_receiver_id, receiver_id_from_hostname

    if args.receiver_id is None:
        return receiver_id_from_hostname(socket.gethostname())
    return check_receiver_id(args.receiver_id)


# What `serve` can publish to beside MQTT; each one adds its option's test here and its sink in
# `_extra_sinks`.
_OTHER_SINKS_HINT = (
    ", or --http HOST:PORT for a web page, or --signalk ws://host[:port]/signalk/v1/stream"
)
_SINK_FLAGS = (("http", "--http"), ("signalk", "--signalk"))  # (dest, option): into the unit


def _extra_sinks_wanted(args: argparse.Namespace) -> bool:
    from victron_ble_bms.signalk.sink import wanted as signalk_wanted

    if any(getattr(args, attr, None) for attr, _flag in _SINK_FLAGS):
        return True
    return signalk_wanted(args.config, None)  # a [signalk] url in the config file


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from victron_ble_bms.mqtt.config import ConfigError, load_config, resolve
    from victron_ble_bms.mqtt.topics import demo_prefix

    source = args.source[0] if args.source else "ble"
    if source not in SOURCES:
        error(f"--source must be one of {', '.join(SOURCES)} (got {source!r})")
        return EXIT_USAGE
    if (source == "capture") != (len(args.source) == 2) or len(args.source) > 2:
        error("--source capture takes one FILE; the other sources take none")
        return EXIT_USAGE
    if args.duration is not None and not (args.duration > 0 and math.isfinite(args.duration)):
        error("--duration must be a positive number of seconds")
        return EXIT_USAGE
    try:
        speed = _speed(args.speed)
    except ValueError:
        error(f"--speed: {args.speed!r} is not a positive number or 'max'")
        return EXIT_USAGE
    if args.publish_raw and source == "mqtt":
        error("--publish-raw forwards what a radio hears; with --source mqtt it would loop")
        return EXIT_USAGE
    if args.publish_raw and any(getattr(args, attr, None) for attr, _flag in _SINK_FLAGS):
        error(
            "--publish-raw only forwards raw frames to MQTT; "
            + " and ".join(flag for attr, flag in _SINK_FLAGS if getattr(args, attr, None))
            + " show decoded readings: give them to the serve that decodes (--source mqtt)"
        )
        return EXIT_USAGE
    if args.receiver_id is not None and not args.publish_raw:
        error("--receiver-id names a receiver: it goes with --publish-raw")
        return EXIT_USAGE
    if args.publish_raw:
        from victron_ble_bms.receivers.forward import ReceiverIdError

        try:
            args.receiver_id = _receiver_id(args)
        except ReceiverIdError as exc:
            error(str(exc))
            return EXIT_USAGE
    if args.print_systemd_unit:
        sys.stdout.write(_unit(args, args.mqtt))
        return EXIT_OK
    try:
        cfg, warnings = load_config(args.config)
        cfg = resolve(
            cfg, url=args.mqtt, topic_prefix=args.topic_prefix, instance_id=args.instance_id
        )
        if source == "emulator" and not args.publish_raw and args.topic_prefix is None:
            # Made-up devices never share topics or HA devices with real ones (nor with another
            # instance's demo: the demo fleet has the same addresses everywhere).
            cfg = replace(cfg, topic_prefix=demo_prefix(cfg.topic_prefix, cfg.instance))
    except ConfigError as exc:
        error(str(exc))
        return EXIT_USAGE
    for warning in warnings:
        error("warning: " + warning)
    if cfg.broker is None and (args.publish_raw or not _extra_sinks_wanted(args)):
        error(
            "nothing to publish to: give --mqtt mqtt://[user@]host[:port] (or url = … in the "
            "config file)" + ("" if args.publish_raw else _OTHER_SINKS_HINT)
        )
        return EXIT_USAGE
    if cfg.broker is not None:
        try:
            importlib.import_module("aiomqtt")
        except ImportError:
            error("serve needs aiomqtt for MQTT: pip install 'victron-ble-bms[serve]'")
            return EXIT_USAGE
    problem = _source_problem(args, source)
    if problem is not None:  # the service cannot do its job: say so and fail, not wait forever
        error(problem)
        return EXIT_UNAVAILABLE
    keys: ReloadingKeys | None = None  # a receiver (--publish-raw) reads no keys
    if not args.publish_raw:
        keys_path = Path(args.keys) if args.keys else default_keys_path()
        try:
            store = KeyStore.load(keys_path, missing_ok=args.keys is None)
        except KeyFileError as exc:
            error(str(exc))
            return EXIT_USAGE
        for warning in store.warnings:
            error("warning: " + warning)
        keys = ReloadingKeys(store, keys_path)
    try:
        return asyncio.run(_serve(args, cfg, keys, source, speed))
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - never a traceback (it could show locals)
        error(f"serve stopped by an unexpected error: {type(exc).__name__}: {exc}")
        return EXIT_UNAVAILABLE


def _source_problem(args: argparse.Namespace, source: str) -> str | None:
    """Why the source cannot work at all (checked before anything starts), or None. A radio
    that is merely not up yet (bluetoothd starting later than serve) is waited for instead."""
    if source == "capture":
        from victron_ble_bms.sources.capture import CaptureError, open_capture

        try:
            open_capture(args.source[1]).close()
        except CaptureError as exc:
            return str(exc)
    if source == "ble":
        wanted = ["bleak"] + (["dbus_fast"] if sys.platform.startswith("linux") else [])
        missing = [name for name in wanted if importlib.util.find_spec(name) is None]
        if missing:
            return (
                f"--source ble needs {' and '.join(n.replace('_', '-') for n in missing)}, "
                "not installed here: pip install 'victron-ble-bms[serve]'"
            )
    return None


def _readings(
    args: argparse.Namespace,
    source: str,
    speed: float | None,
    keys: ReloadingKeys,
    cfg: Any,
    tracker: Any = None,
) -> tuple[AsyncIterator[Reading], Mapping[str, bytes]]:
    if source == "ble":
        return _ble(args, keys), keys
    if source == "emulator":
        emu, emu_keys = _emulator(args, speed)
        return _decoded(emu.stream(), emu_keys), emu_keys
    if source == "capture":
        return _decoded(_capture(args.source[1], speed), keys), keys
    return _decoded(_remote(args, cfg, tracker), keys), keys


def _raw_advertisements(
    args: argparse.Namespace, source: str, speed: float | None
) -> AsyncIterator[Advertisement]:
    """What the source hears, undecoded (serve --publish-raw): no keys at all."""
    if source == "emulator":
        stream: AsyncIterator[Advertisement] = _emulator(args, speed)[0].stream()
        return stream
    if source == "capture":
        return _capture(args.source[1], speed)

    async def heard() -> AsyncIterator[Advertisement]:
        async for reading in _ble(args, {}):  # no keys: nothing decrypted; repeats dropped
            yield reading.advertisement

    return heard()


def _extra_sinks(args: argparse.Namespace, board: Board) -> list[Sink[Reading]]:
    """The sinks beside MQTT that this run asked for (web page, Signal K server), each fed the
    same readings and reading the same board."""
    from victron_ble_bms.signalk.sink import from_options as signalk_sink

    sinks: list[Sink[Reading]] = []
    if getattr(args, "http", None):
        from victron_ble_bms.web import web_sink

        sinks.append(web_sink(args, board, say))
    signalk = signalk_sink(args.config, args.signalk, board, say=say, warn=error)
    if signalk is not None:  # a config or missing-package problem raises ValueError: usage
        sinks.append(signalk)
    return sinks


async def _serve(
    args: argparse.Namespace,
    cfg: Any,
    keys: ReloadingKeys | None,
    source: str,
    speed: float | None,
) -> int:
    from dataclasses import replace

    from victron_ble_bms.emulator import DeviceSpecError, ScenarioError
    from victron_ble_bms.sources.loop_errors import one_line_loop_errors

    # Weeks unattended: a socket closed under a callback (paho after a reconnect, dbus-fast
    # after bluetoothd died) is one debug line, never a traceback on the journal.
    one_line_loop_errors(asyncio.get_running_loop())

    items: Any  # readings, or advertisements for a receiver: async generators
    sinks: list[Sink[Any]] = []
    board: Board | None = None
    counted: Callable[[], str]
    try:
        if keys is None:  # --publish-raw: a receiver
            from victron_ble_bms.mqtt.sink import MqttSink
            from victron_ble_bms.receivers.forward import RawForwarder

            cfg = replace(cfg, discovery=False)  # the decoder offers the entities, not we
            forwarder = RawForwarder(cfg.topic_prefix, args.receiver_id)
            items = _raw_advertisements(args, source, speed)
            sinks.append(MqttSink(cfg, forwarder, forwarder.advertisement, say=say))
            what, where, counted = "raw advertisements", forwarder.topic, forwarder.summary
        else:
            tracker = _receiver_tracker(source)
            items, publish_keys = _readings(args, source, speed, keys, cfg, tracker)
            board = Board(publish_keys, names=keys.name, stale_after_s=cfg.stale_after_s)
            if cfg.broker is not None:
                from victron_ble_bms.mqtt.publisher import Publisher
                from victron_ble_bms.mqtt.sink import MqttSink

                publisher = Publisher(
                    cfg,
                    publish_keys,
                    hostname=socket.gethostname(),
                    names=keys.name,
                    extra_state=None if tracker is None else tracker.state_fields,
                    demo=source == "emulator",
                    unheard=None if tracker is None else _all_receivers_gone(tracker),
                )
                sinks.append(
                    MqttSink(cfg, publisher, publisher.reading, say=say, publisher=publisher)
                )
            sinks.extend(_extra_sinks(args, board))
            what, where = "readings", ""
            if cfg.broker is not None:
                where = f"{cfg.topic_prefix}/ as instance {cfg.instance}"
                if source == "emulator":
                    where += " (a demo: its devices are removed when it stops)"
            shown = board

            def counted() -> str:
                return f"{len(shown)} devices"
    except (ScenarioError, DeviceSpecError, ValueError) as exc:
        error(str(exc))
        return EXIT_USAGE
    stop = stop_event(args.duration)
    destinations = ", ".join(sink.name for sink in sinks)
    say(f"publishing {source} {what} to {destinations}" + (f" under {where}" if where else ""))
    readings = 0
    failed = 0
    # Why serve stopped: None = asked to (signal, --duration); a capture that was read to its
    # end is done; any other source that ends or fails is a fault, for systemd to restart.
    ended: str | None = None

    async def consume() -> None:
        nonlocal readings, failed, ended
        try:
            async for item in items:
                readings += 1
                try:
                    if board is not None:
                        board.reading(item)
                    for sink in sinks:
                        sink.reading(item)
                except Exception as exc:  # noqa: BLE001 - one reading lost, never the service
                    failed += 1
                    if failed == 1 or failed % 1000 == 0:
                        say(f"reading not published ({failed} so far): {type(exc).__name__}")
        except Exception as exc:  # noqa: BLE001 - a source failure is one line, never a traceback
            say(f"source stopped: {type(exc).__name__}: {exc}")
            ended = "failed"
        else:
            ended = "done" if source == "capture" else "ended"
            say("source ended" if ended == "done" else "source ended unexpectedly")
        stop.set()

    async def tick() -> None:
        last_keys = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            if keys is None:
                continue  # a receiver has no heartbeats and no keys file
            now = time.monotonic()
            if board is not None:
                board.tick()
            refreshed = False
            if board is not None and board.keys is keys and now - last_keys >= KEYS_CHECK_S:
                last_keys = now
                refreshed = keys.refresh()
                if refreshed:
                    board.keys_changed()
            for sink in sinks:
                try:
                    sink.tick(now)
                    if refreshed:
                        sink.keys_changed()
                except Exception as exc:  # noqa: BLE001 - one line, and the next tick tries again
                    say(f"{sink.name}: tick failed: {type(exc).__name__}: {exc}")

    sink_tasks = [asyncio.create_task(sink.run(), name=sink.name) for sink in sinks]
    for task in sink_tasks:  # a sink that gave up for good (credentials refused) stops serve
        task.add_done_callback(lambda _task: stop.set())
    tasks = [asyncio.create_task(consume()), asyncio.create_task(tick())]
    drained = True
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await items.aclose()
        # What is queued goes out before the sinks stop: all of a replayed capture (it may
        # end before the first connection), a moment's worth otherwise.
        for sink in sinks:
            flush = getattr(sink, "flush", None)  # sinks that queue (MQTT)
            if flush is not None:
                timeout = DRAIN_S if ended == "done" else DRAIN_ON_STOP_S
                drained = await flush(timeout, final=ended == "done") and drained
        for sink in sinks:
            sink.stop()
        for sink, task in zip(sinks, sink_tasks, strict=True):
            try:
                await asyncio.wait_for(task, 15)
            except (TimeoutError, asyncio.CancelledError):
                pass
            except Exception as exc:  # noqa: BLE001 - never a traceback on the way out
                say(f"stopping {sink.name}: {type(exc).__name__}: {exc}")
    summaries = "".join(f", {sink.summary()}" for sink in sinks)
    say(f"stopped: {readings} {what}, {counted()}{summaries}")
    gave_up = [reason for sink in sinks if (reason := getattr(sink, "failed", None))]
    if gave_up or ended in ("failed", "ended") or (ended == "done" and not drained):
        return EXIT_UNAVAILABLE  # systemd's Restart=on-failure brings a live source back
    return EXIT_OK


__all__ = ["ReloadingKeys", "register", "run"]
