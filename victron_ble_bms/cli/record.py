"""`victron-bms record`: write advertisements to a capture file (our JSON lines, pcapng, pcap).

    victron-bms record -o run.jsonl [--scenario NAME] [--device TYPE] [--duration S]  # emulator
    victron-bms record -o run.jsonl --source ble [--duration S]   # the radio
    victron-bms record -o run.pcapng --from btsnoop_hci.log      # convert any capture

The first line (stdout) says where the advertisements come from, where they go and which keys
decode them: an emulator recording gets its keys written beside it (`FILE.keys.toml`, named in
the header), as `emulate --capture` does. An option that cannot apply to the chosen source
(`--scenario` with `--from`, …) is an error, not ignored.

The output format follows `--format`, else the file name's suffix: `.jsonl` (also `.json`,
`.ndjson`) → our JSON lines, `.pcapng` → pcapng, `.pcap` → pcap (both link type 201, for
Wireshark). Any other suffix is refused rather than guessed (`out.pcap` used to get JSON lines).
Exit status: 0 done, 1 the recording stopped (disk full, write error: one line, the file holds
every advertisement written before), 2 could not start, 3 partial input (some skipped).
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture import (
    CaptureError,
    ExportError,
    JsonlWriter,
    PcapngWriter,
    PcapWriter,
    RecordingError,
    open_capture,
)

from .output import error
from .progress import Progress

EXIT_OK = 0
EXIT_STOPPED = 1  # the output could not be written to the end (disk full …)
EXIT_USAGE = 2
EXIT_PARTIAL = 3


# Output formats by file-name suffix; anything else must be chosen with --format.
SUFFIXES = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".pcapng": "pcapng",
    ".pcap": "pcap",
}
MAX_SKIP_MESSAGES = 5


class _Writer(Protocol):
    @property
    def count(self) -> int: ...

    def write(self, adv: Advertisement) -> None: ...

    def close(self) -> None: ...


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "record",
        help="record advertisements to a capture file",
        description="Record advertisements to our JSON-lines format (.jsonl) or to pcapng / "
        "pcap (.pcapng, .pcap; link type 201, opens in Wireshark), from the emulator or from "
        "another capture file (--from). The format follows the suffix of -o, or --format.",
    )
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    p.add_argument(
        "--format",
        choices=("jsonl", "pcapng", "pcap"),
        help="output format (default: from the suffix .jsonl, .pcapng or .pcap)",
    )
    p.add_argument(
        "--source",
        choices=("emulator", "ble"),
        default=None,
        help="where advertisements come from: the built-in emulator (the default) or the "
        "Bluetooth adapter",
    )
    p.add_argument("--from", dest="from_file", metavar="CAPTURE", help="convert this capture")
    p.add_argument(
        "--scenario",
        default=None,
        help="emulator scenario (name or TOML file; see emulate --list): its devices, unless "
        "--device; default the demo fleet on a normal day",
    )
    p.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="TYPE[:ADDRESS[:KEY]]",
        help="emulated device (repeat for more), as in emulate",
    )
    p.add_argument("--seed", type=int, default=None, help="emulator random seed (default 0)")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds: simulated for the emulator (default the scenario's, 600 for the demo "
        "fleet), wall-clock for --source ble (default until Ctrl-C)",
    )
    p.set_defaults(run=run)


def output_format(args: argparse.Namespace) -> str | None:
    """--format, else the format the -o suffix names; None (with a message) when neither."""
    if args.format:
        return str(args.format)
    suffix = Path(args.output).suffix.lower()
    fmt = SUFFIXES.get(suffix)
    if fmt is None:
        error(
            f"{plain(args.output)}: cannot tell the format from "
            f"{'the suffix ' + repr(plain(suffix)) if suffix else 'a name without a suffix'}: "
            "name it .jsonl, .pcapng or .pcap, or give --format jsonl|pcapng|pcap"
        )
    return fmt


def _open_writer(args: argparse.Namespace, source: str, keys: str | None = None) -> _Writer:
    fmt = output_format(args) or "jsonl"
    if fmt == "pcapng":
        return PcapngWriter(args.output)
    if fmt == "pcap":
        return PcapWriter(args.output)
    if keys:  # relative to the recording, as `decode` reads it (issue 25 item 6)
        return JsonlWriter(args.output, source=source, keys=keys)
    return JsonlWriter(args.output, source=source)


def _misplaced(args: argparse.Namespace) -> str | None:
    """An option given that the chosen source cannot use (issue 25: an error, not ignored)."""
    emulator_only = [
        opt for opt, given in (("--scenario", args.scenario), ("--device", args.device)) if given
    ] + (["--seed"] if args.seed is not None else [])
    if args.from_file:
        given = emulator_only + (["--source"] if args.source else [])
        given += ["--duration"] if args.duration is not None else []
        if given:
            return f"{', '.join(given)} cannot apply with --from (a conversion of a capture)"
    elif args.source == "ble" and emulator_only:
        return f"{', '.join(emulator_only)}: only for --source emulator, not --source ble"
    return None


class _Emulated:
    """The emulator run `record` writes: the scenario's devices (or --device, or the demo
    fleet), simulated as fast as possible."""

    def __init__(self, args: argparse.Namespace) -> None:
        engine = importlib.import_module("victron_ble_bms.emulator.engine")
        devices = importlib.import_module("victron_ble_bms.emulator.devices")
        scenario_mod = importlib.import_module("victron_ble_bms.emulator.scenario")
        scenario = scenario_mod.load_scenario(args.scenario or "normal-day")
        specs = [devices.parse_device_spec(d) for d in args.device]
        if not specs and args.scenario:
            specs = [devices.DeviceSpec(d.type) for d in scenario.devices for _ in range(d.count)]
        what = "the emulator's demo fleet" if not specs else "the emulator"
        self.specs = specs or engine.demo_fleet()
        self.emulator = engine.Emulator(self.specs, scenario, seed=args.seed or 0, speed=None)
        default = scenario.duration_s if args.scenario else 600.0
        self.duration = float(args.duration if args.duration is not None else default)
        self.scenario = scenario.name
        self.what = (
            f"{what} ({len(self.specs)} device(s), scenario {scenario.name!r}, "
            f"{self.duration:g} simulated s, seed {args.seed or 0})"
        )

    def stream(self) -> Iterable[Advertisement]:
        stream: Iterable[Advertisement] = self.emulator.run(self.duration)
        return stream


def _announce(text: str) -> None:
    """The first line: what is read, where it goes, which keys (stdout, like emulate's)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    errors: list[CaptureError] = []
    if output_format(args) is None:
        return EXIT_USAGE
    misplaced = _misplaced(args)
    if misplaced is not None:
        error(misplaced)
        return EXIT_USAGE
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        error("--duration must be a positive number of seconds")
        return EXIT_USAGE
    fmt_text = f"{output_format(args)}"
    keys_file: str | None = None
    total: float | None = None  # for the progress line: simulated seconds of an emulator run
    start_ts = 0.0
    if args.from_file:
        try:
            capture = open_capture(args.from_file, errors=errors)
        except CaptureError as exc:
            error(str(exc))
            return EXIT_USAGE
        stream: Iterable[Advertisement] = capture
        source = f"file:{Path(args.from_file).name}"
        _announce(
            f"converting {plain(args.from_file)} to {plain(args.output)} ({fmt_text}); "
            "no keys needed: frames are copied as they are, still encrypted"
        )
    elif args.source == "ble":
        from .scan import record_ble  # the live scanner; --duration is wall-clock seconds

        _announce(
            f"recording the Bluetooth adapter's Victron advertisements to {plain(args.output)} "
            f"({fmt_text}), "
            + (f"for {args.duration:g} s" if args.duration else "until Ctrl-C")
            + "; frames stay encrypted, no keys read"
        )
        return record_ble(args, lambda: _open_writer(args, "ble"))
    else:
        try:
            emulated = _Emulated(args)
        except ImportError:
            error(
                "--source emulator is not available (the emulator is not installed); "
                "convert an existing capture with --from FILE"
            )
            return EXIT_USAGE
        except ValueError as exc:  # ScenarioError, DeviceSpecError: unknown name, bad TOML …
            error(str(exc))
            return EXIT_USAGE
        stream, source = emulated.stream(), "emulator"
        total, start_ts = emulated.duration, emulated.emulator.start_ts
        from .emulate import keys_path, write_keys_beside

        keys_file = keys_path(args.output).name  # beside the recording, whatever its format
        _announce(
            f"recording {emulated.what} to {plain(args.output)} ({fmt_text}); its test keys: "
            f"{plain(str(keys_path(args.output)))} (--from FILE converts a capture, "
            "--source ble records the radio)"
        )
    try:
        if keys_file:
            write_keys_beside(args.output, emulated.emulator)
        writer = _open_writer(args, source, keys_file if output_format(args) == "jsonl" else None)
    except OSError as exc:  # RecordingError included: its message is the whole story
        error(str(exc) if isinstance(exc, RecordingError) else _cannot_write(args, exc))
        return EXIT_USAGE
    status = EXIT_OK
    skipped = 0
    progress = Progress("recording", total, "simulated s")
    try:
        for adv in stream:
            progress.update(adv.ts - start_ts)
            try:
                writer.write(adv)
            except ExportError as exc:  # no form in this format (a macOS UUID in pcap …)
                skipped += 1
                if skipped <= MAX_SKIP_MESSAGES:
                    error(str(exc))
    except RecordingError as exc:
        error(str(exc))  # one line: disk full after N advertisements, all of them intact
        return EXIT_STOPPED
    except CaptureError as exc:
        error(str(exc))
        status = EXIT_PARTIAL
    except KeyboardInterrupt:
        pass  # every advertisement written so far is in the file
    finally:
        progress.close()
        writer.close()
    for err in errors:
        error(str(err))
        status = EXIT_PARTIAL
    if skipped:
        error(f"{skipped} advertisement(s) skipped (cannot be written as {output_format(args)})")
        status = EXIT_PARTIAL
    error(f"{writer.count} advertisements written to {plain(args.output)}")
    return status


def _cannot_write(args: argparse.Namespace, exc: OSError) -> str:
    return f"{plain(args.output)}: cannot write: {exc.strerror or exc}"
