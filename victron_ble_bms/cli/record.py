"""`victron-bms record`: write advertisements to a capture file (our JSON lines, pcapng, pcap).

    victron-bms record -o run.jsonl --source emulator --scenario NAME [--duration S]
    victron-bms record -o run.pcapng --from btsnoop_hci.log      # convert any capture

The output format follows `--format`, else the file name's suffix: `.jsonl` (also `.json`,
`.ndjson`) → our JSON lines, `.pcapng` → pcapng, `.pcap` → pcap (both link type 201, for
Wireshark). Any other suffix is refused rather than guessed (`out.pcap` used to get JSON lines).
Exit status: 0 done, 1 the recording stopped (disk full, write error: one line, the file holds
every advertisement written before), 2 could not start, 3 partial input (some skipped).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture import (
    CaptureError,
    JsonlWriter,
    PcapngWriter,
    PcapWriter,
    RecordingError,
    open_capture,
)

from .output import error

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
        default="emulator",
        help="where advertisements come from (default emulator)",
    )
    p.add_argument("--from", dest="from_file", metavar="CAPTURE", help="convert this capture")
    p.add_argument("--scenario", default=None, help="emulator scenario (name or TOML file)")
    p.add_argument("--duration", type=float, default=600.0, help="simulated seconds (emulator)")
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


def _open_writer(args: argparse.Namespace, source: str) -> _Writer:
    fmt = output_format(args) or "jsonl"
    if fmt == "pcapng":
        return PcapngWriter(args.output)
    if fmt == "pcap":
        return PcapWriter(args.output)
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
    if output_format(args) is None:
        return EXIT_USAGE
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
    except OSError as exc:  # RecordingError included: its message is the whole story
        error(str(exc) if isinstance(exc, RecordingError) else _cannot_write(args, exc))
        return EXIT_USAGE
    status = EXIT_OK
    skipped = 0
    try:
        for adv in stream:
            try:
                writer.write(adv)
            except ValueError as exc:  # this advertisement has no form in the output format
                skipped += 1
                if skipped <= MAX_SKIP_MESSAGES:
                    error(f"skipped an advertisement from {plain(adv.address)}: {plain(exc)}")
    except RecordingError as exc:
        error(str(exc))  # one line: disk full after N advertisements, all of them intact
        return EXIT_STOPPED
    except CaptureError as exc:
        error(str(exc))
        status = EXIT_PARTIAL
    except KeyboardInterrupt:
        pass  # every advertisement written so far is in the file
    finally:
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
