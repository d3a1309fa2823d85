"""`victron-bms record`: write advertisements to a capture file (our JSON lines, or pcapng).

    victron-bms record -o run.jsonl --source emulator --scenario NAME [--duration S]
    victron-bms record -o run.pcapng --from btsnoop_hci.log      # convert any capture

The output format follows `--format`, else the file name (`.pcapng` → pcapng for Wireshark,
anything else → JSON lines). Exit status: 0 done, 2 could not start, 3 partial input.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture import (
    CaptureError,
    ExportError,
    JsonlWriter,
    PcapngWriter,
    open_capture,
)

from .output import error

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_PARTIAL = 3


class _Writer(Protocol):
    count: int

    def write(self, adv: Advertisement) -> None: ...

    def close(self) -> None: ...


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "record",
        help="record advertisements to a capture file",
        description="Record advertisements to our JSON-lines format or to pcapng (link type 201, "
        "opens in Wireshark), from the emulator or from another capture file (--from).",
    )
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    p.add_argument(
        "--format", choices=("jsonl", "pcapng"), help="output format (default: by file name)"
    )
    p.add_argument(
        "--source",
        choices=("emulator", "ble"),
        default="emulator",
        help="where advertisements come from (default emulator)",
    )
    p.add_argument("--from", dest="from_file", metavar="CAPTURE", help="convert this capture")
    p.add_argument("--scenario", default=None, help="emulator scenario (name or TOML file)")
    p.add_argument("--duration", type=float, default=600.0, help="simulated seconds (emulator)")
    p.set_defaults(run=run)


def _open_writer(args: argparse.Namespace, source: str) -> _Writer:
    fmt = args.format or ("pcapng" if Path(args.output).suffix.lower() == ".pcapng" else "jsonl")
    if fmt == "pcapng":
        return PcapngWriter(args.output)
    return JsonlWriter(args.output, source=source)


def _emulator_stream(args: argparse.Namespace) -> Iterable[Advertisement] | None:
    """The emulator's demo fleet under a scenario, simulated as fast as possible."""
    try:
        engine = importlib.import_module("victron_ble_bms.emulator.engine")
        scenario = importlib.import_module("victron_ble_bms.emulator.scenario")
    except ImportError:
        return None
    name = args.scenario or "normal-day"
    emulator = engine.Emulator(engine.demo_fleet(), scenario.load_scenario(name), speed=None)
    stream: Iterable[Advertisement] = emulator.run(args.duration)
    return stream


def run(args: argparse.Namespace) -> int:
    errors: list[CaptureError] = []
    if args.from_file:
        try:
            capture = open_capture(args.from_file, errors=errors)
        except CaptureError as exc:
            error(str(exc))
            return EXIT_USAGE
        stream: Iterable[Advertisement] = capture
        source = f"file:{Path(args.from_file).name}"
    elif args.source == "ble":
        from .scan import record_ble  # the live scanner; --duration is wall-clock seconds

        return record_ble(args, lambda: _open_writer(args, "ble"))
    else:
        try:
            emulated = _emulator_stream(args)
        except ValueError as exc:  # ScenarioError: unknown name, bad TOML …
            error(str(exc))
            return EXIT_USAGE
        if emulated is None:
            error(
                "--source emulator is not available yet (the emulator engine is not installed); "
                "convert an existing capture with --from FILE"
            )
            return EXIT_USAGE
        stream, source = emulated, "emulator"
    try:
        writer = _open_writer(args, source)
    except OSError as exc:
        error(f"{args.output}: cannot write: {exc.strerror or exc}")
        return EXIT_USAGE
    status = EXIT_OK
    try:
        for adv in stream:
            try:
                writer.write(adv)
            except ExportError as exc:  # e.g. a macOS UUID in pcapng: skip it, keep going
                error(str(exc))
                status = EXIT_PARTIAL
    except CaptureError as exc:
        error(str(exc))
        status = EXIT_PARTIAL
    except KeyboardInterrupt:
        pass  # every line written so far is flushed
    finally:
        writer.close()
    for err in errors:
        error(str(err))
        status = EXIT_PARTIAL
    error(f"{writer.count} advertisements written to {args.output}")
    return status
