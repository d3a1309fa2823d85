"""`victron-bms emulate`: run emulated batteries/BMSes and advertise their frames.

The advertisers for `--advertise bluez|virtual` are looked up lazily so that this command works
(with `none` and `--capture`) where dbus-fast is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import math
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from victron_ble_bms.emulator import (
    CaptureAdvertiser,
    DeviceSpec,
    DeviceSpecError,
    Emulator,
    NullAdvertiser,
    ScenarioError,
    bundled_names,
    device_types,
    load_scenario,
    parse_device_spec,
)
from victron_ble_bms.emulator.capture import FanOut
from victron_ble_bms.protocol.crypto import mask_key
from victron_ble_bms.sources.capture.jsonl import CaptureError
from victron_ble_bms.sources.keys import KeyStore

from .output import error
from .progress import ProgressTarget, wanted

_ADVERTISERS = {
    "bluez": ("victron_ble_bms.emulator.bluez", "BluezAdvertiser"),
    "virtual": ("victron_ble_bms.emulator.virtual_bluez", "VirtualBluezAdvertiser"),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "emulate",
        help="emulate batteries and BMSes that advertise Instant Readout frames",
        description="Run device models that behave like their manuals and advertise their "
        "frames over BlueZ, a virtual BlueZ, or into a capture file.",
    )
    p.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="TYPE[:ADDRESS[:KEY]]",
        help="a device to emulate (repeat for more); see --list",
    )
    p.add_argument("--scenario", default="normal-day", help="bundled scenario name or TOML file")
    p.add_argument("--speed", default="1", help="simulated seconds per second, or 'max'")
    p.add_argument(
        "--duration", type=float, default=None, help="simulated seconds (default: the scenario's)"
    )
    p.add_argument("--advertise", choices=("bluez", "virtual", "none"), default="none")
    p.add_argument(
        "--capture",
        "--record",
        metavar="FILE",
        help="also write the frames to a JSON-lines capture",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (addresses, keys, variation)")
    p.add_argument(
        "--exact",
        action="store_true",
        help="no measurement noise, no timing jitter, no repeated adverts (fixed values for "
        "tests); by default readings carry seeded ADC noise and arrive like a radio's",
    )
    p.add_argument("--list", action="store_true", help="list device types and scenarios")
    p.set_defaults(run=run)


def _speed(text: str) -> float | None:
    if text.strip().lower() == "max":
        return None
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError
    return value


def _print_list() -> None:
    out = sys.stdout
    out.write("Device types:\n")
    for name, product in device_types().items():
        out.write(f"  {name:<24} {product}\n")
    out.write("Scenarios (bundled; or give a TOML file) and the manual behaviour each shows:\n")
    for name in bundled_names():
        sc = load_scenario(name)
        devices = ", ".join(d.type if d.count == 1 else f"{d.count}× {d.type}" for d in sc.devices)
        lines = textwrap.wrap(devices, 70) + textwrap.wrap(sc.demonstrates or sc.description, 70)
        out.write(f"  {name:<24} {lines[0]}\n")
        for line in lines[1:]:
            out.write(f"  {'':<24} {line}\n")


def _advertiser(kind: str) -> Any:
    module_name, class_name = _ADVERTISERS[kind]
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise RuntimeError(f"--advertise {kind} is not available here ({exc})") from exc
    return cls()


class _Announcing:
    """Starts the advertiser, then tells the user how to reach it (the virtual BlueZ's
    `export DBUS_SYSTEM_BUS_ADDRESS=…` line) before the first frame goes out."""

    def __init__(self, inner: Any, targets: list[Any]) -> None:
        self.inner, self.targets = inner, targets

    async def start(self) -> None:
        await self.inner.start()
        for target in self.targets:
            line = getattr(target, "export_line", None)
            if line:
                sys.stdout.write(
                    "virtual BlueZ is up; in another shell, point any bleak program at it:\n"
                    f"  {line}\n"
                )
                sys.stdout.flush()

    async def publish(self, advertisement: Any) -> None:
        await self.inner.publish(advertisement)

    async def repeat(self, advertisement: Any) -> None:
        repeat = getattr(self.inner, "repeat", None)
        if repeat is not None:
            await repeat(advertisement)

    async def remove(self, address: str) -> None:
        await self.inner.remove(address)

    async def close(self) -> None:
        await self.inner.close()


async def _play(emu: Emulator, advertiser: Any, duration: float, targets: list[Any]) -> int:
    """Run until the duration ends or SIGINT/SIGTERM; either way the advertiser is closed
    (BlueZ advertisements unregistered, the private bus stopped, the capture flushed)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None  # noqa: S101 - always inside asyncio.run
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await emu.play(_Announcing(advertiser, targets), duration)
    except asyncio.CancelledError:
        sys.stdout.write("stopped; advertisements unregistered\n")
        return -1


def _destination(args: argparse.Namespace) -> str:
    """Where the frames go, for the first line (issue 25: `--advertise none` said nothing)."""
    where = {"bluez": "advertised on the Bluetooth adapter", "virtual": "on a virtual BlueZ"}
    parts = [where[args.advertise]] if args.advertise in where else []
    parts += [f"written to {args.capture}"] if args.capture else []
    if not parts:
        return "frames go nowhere (give --advertise virtual|bluez or --capture FILE)"
    return "frames " + " and ".join(parts)


def keys_path(capture: str) -> Path:
    return Path(f"{capture}.keys.toml")


def emulated_banks(emu: Emulator, scenario_name: str) -> dict[str, dict[str, Any]]:
    """Each emulated BMS with its batteries as a `[banks.NAME]` table (issue 20): members by
    address (a name changes with a PIN change), the layout of the scenario's `[bank]`, and the
    Lynx Smart BMS as the source of state of charge (a Smart BMS CL sends none)."""
    systems = [s for s in emu.systems if getattr(s, "bank", None) is not None]
    banks: dict[str, dict[str, Any]] = {}
    for n, system in enumerate(systems, 1):
        bms = system.identity.address  # type: ignore[attr-defined]
        strings = [[b.identity.address for b in s] for s in system.bank.strings]  # type: ignore[attr-defined]
        batteries = [a for s in strings for a in s]
        table: dict[str, Any] = {"members": [*batteries, bms]}
        if len(strings) > 1 and len(strings[0]) > 1:
            table = {"layout": "series-parallel", **table, "strings": strings}
        else:
            table = {"layout": "series" if len(strings[0]) > 1 else "parallel", **table}
        if type(system).__name__ == "LynxSmartBms":
            table["soc_source"] = bms
        banks[scenario_name if len(systems) == 1 else f"{scenario_name}-{n}"] = table
    return banks


def write_keys_beside(capture: str, emu: Emulator, scenario_name: str = "emulated") -> Path:
    """The run's test keys next to the capture (mode 0600), named in its header ("keys"), so
    that `decode CAPTURE --keys CAPTURE.keys.toml` decodes every frame (issue 10 item 2); and
    each emulated BMS's bank, so that a recorded bank replays as a bank (issue 20)."""
    store = KeyStore(keys_path(capture))
    for ident in emu.identities:
        store.add(ident.address, ident.key, name=f"emulated {ident.name}")
    for at_s, address, key in emu.key_changes():
        # one key per address: after a PIN change the new key is the one that decodes
        store.add(address, key, name=f"emulated, new key from {at_s:g} s")
    for name, table in emulated_banks(emu, scenario_name).items():
        store.add_bank(name, table)
    return store.save()


def run(args: argparse.Namespace) -> int:
    if args.list:
        _print_list()
        return 0
    try:
        speed = _speed(args.speed)
    except ValueError:
        error(f"--speed: {args.speed!r} is not a positive number or 'max'")
        return 2
    if speed is None and args.advertise != "none":
        error("--speed max only works with --advertise none (radios run in real time)")
        return 2
    try:
        scenario = load_scenario(args.scenario)
        specs = [parse_device_spec(d) for d in args.device]
        if not specs:
            specs = [DeviceSpec(d.type) for d in scenario.devices for _ in range(d.count)]
        if not specs:
            error(f"no --device given and scenario {scenario.name!r} lists no devices")
            return 2
        emu = Emulator(
            specs,
            scenario,
            seed=args.seed,
            speed=speed,
            start_ts=float(int(time.time())),
            exact=args.exact,
        )
    except (ScenarioError, DeviceSpecError) as exc:
        error(str(exc))
        return 2
    duration = args.duration if args.duration is not None else scenario.duration_s
    if duration <= 0:
        error("--duration must be positive (simulated seconds)")
        return 2
    targets: list[Any] = []
    try:
        if args.advertise != "none":
            targets.append(_advertiser(args.advertise))
        if args.capture:
            keys_file = write_keys_beside(args.capture, emu, scenario.name)
            targets.append(
                CaptureAdvertiser(
                    args.capture,
                    scenario=scenario.name,
                    seed=args.seed,
                    exact=args.exact,
                    keys=keys_file.name,
                )
            )
    except RuntimeError as exc:
        error(str(exc))
        return 2
    if wanted() and (speed is None or speed > 1):  # a long run says how far it is (stderr)
        targets.append(ProgressTarget("emulating", emu.start_ts, duration))
    advertiser = FanOut(*targets) if targets else NullAdvertiser()
    out = sys.stdout
    out.write(
        f"emulating {len(emu.identities)} device(s), scenario {scenario.name!r}, "
        f"{duration:g} simulated s at speed {args.speed}, seed {args.seed}; {_destination(args)}\n"
        "Made-up TEST keys are shown in full (the one place the project prints keys); a key "
        "you gave is yours, shown by its first and last byte.\n"
    )
    given = {spec.key for spec in specs if spec.key is not None}
    for ident in emu.identities:
        shown = mask_key(ident.key) if ident.key in given else ident.key.hex()
        out.write(f"  {ident.address}  key {shown}  0x{ident.model_id:04X} {ident.name}\n")
    for at_s, address, key in emu.key_changes():
        out.write(f"  {address}  key {key.hex()}  from {at_s:g} s (PIN changed: new key)\n")
    if args.capture:
        out.write(f"  keys for the capture: {keys_path(args.capture)}\n")
    out.flush()
    started = time.monotonic()
    try:
        count = asyncio.run(_play(emu, advertiser, duration, targets))
    except (OSError, CaptureError) as exc:
        error(str(exc))
        return 1
    except RuntimeError as exc:  # e.g. the virtual BlueZ could not start
        error(str(exc))
        return 1
    if count < 0:  # stopped by a signal; already said so
        return 0
    out.write(
        f"done: {count} frames in {emu.time_s:g} simulated s "
        f"({time.monotonic() - started:.1f} s wall)"
        + (f", capture {args.capture}" if args.capture else "")
        + "\n"
    )
    return 0
