"""`victron-bms decode`: manufacturer data (hex) or capture files → the records.

    victron-bms decode --key KEY HEX [--json]
    victron-bms decode FILE… --keys KEYS [--format table|jsonl|csv] [--device ADDR] [--follow]

Positional arguments that are existing files are read as captures (btsnoop, pcap, pcapng or
our JSON lines, recognised by content). Exit status for captures: 0 every file read completely;
2 nothing could be read (bad arguments, unreadable or unknown file); 3 partial — some records
were corrupt or a file was cut short; everything readable was still decoded and printed.
"""

from __future__ import annotations

import argparse
import binascii
import csv
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from victron_ble_bms.protocol import DecodeError, NotInstantReadout, Record, decode, normalize_key
from victron_ble_bms.sources.advertisement import AddressError, Advertisement, normalize_address
from victron_ble_bms.sources.capture import CaptureError, follow_jsonl, open_capture
from victron_ble_bms.sources.keys import KeyFileError, KeyStore
from victron_ble_bms.sources.readings import KeyStatus, Reading, decode_advertisement

from ..jsonform import frame_object
from .output import codes_text, error, main_values, print_json, print_record

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_PARTIAL = 3  # some of the capture was unreadable; what was readable was decoded

PROGRESS_MIN_BYTES = 8 << 20  # a progress bar only for files that take a while


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "decode",
        help="decode manufacturer data given as hex, or capture files",
        description="Decode Victron manufacturer data (hex, with or without the e1 02 company "
        "id; spaces and colons allowed), or capture files: btsnoop (Android HCI snoop log, "
        "btmon -w), pcap/pcapng (Wireshark, nRF Sniffer) and victron-bms recordings. "
        f"Exit status for captures: 0 complete, {EXIT_USAGE} unreadable, "
        f"{EXIT_PARTIAL} partial (corrupt records skipped).",
    )
    p.add_argument("inputs", nargs="+", metavar="HEX|FILE", help="manufacturer data, or files")
    p.add_argument("--key", required=False, help="the device's Instant Readout key (32 hex digits)")
    p.add_argument("--json", action="store_true", help="print one JSON object per frame")
    p.add_argument("--keys", metavar="KEYS", help="keys file (TOML) for capture files")
    p.add_argument(
        "--format",
        choices=("table", "jsonl", "csv"),
        default=None,
        help="output for capture files (default table; --json means jsonl)",
    )
    p.add_argument("--device", metavar="ADDR", help="only this device (any address spelling)")
    p.add_argument(
        "--follow", action="store_true", help="keep reading a growing JSON-lines capture (Ctrl-C)"
    )
    p.set_defaults(run=run)


def parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split()).replace(":", "").replace("-", "")
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    return binascii.unhexlify(cleaned)


def run(args: argparse.Namespace) -> int:
    files = [a for a in args.inputs if os.path.isfile(a)]
    if files:
        if len(files) != len(args.inputs):
            missing = next(a for a in args.inputs if a not in files)
            error(f"{missing}: no such file (give either capture files or hex, not both)")
            return EXIT_USAGE
        return run_captures(args, files)
    if args.keys or args.format or args.device or args.follow:
        error(
            f"{args.inputs[0]}: no such file (--keys/--format/--device/--follow are for captures)"
        )
        return EXIT_USAGE
    return run_hex(args)


def run_hex(args: argparse.Namespace) -> int:
    status = 0
    for text in args.inputs:
        try:
            data = parse_hex(text)
        except (binascii.Error, ValueError):
            error(f"not hex: {text[:40]!r} (give the manufacturer data as hex digits)")
            status = 2
            continue
        try:
            record = decode(data, args.key)
        except NotInstantReadout as exc:
            error(str(exc))
            status = max(status, 1)
            continue
        except DecodeError as exc:
            if args.key is None and "no key" in str(exc):
                error("this frame is encrypted: give the device's key with --key")
            else:
                error(str(exc))
            status = max(status, 1)
            continue
        if args.json:
            print_json(record.to_dict())
        else:
            print_record(record)
        if record.partial or record.implausible:
            status = max(status, EXIT_PARTIAL)  # printed what it could; the rest is unknown
    return status


# --- captures -----------------------------------------------------------------------------


@dataclass
class Summary:
    """What happened to every advertisement read; printed on stderr at the end."""

    frames: int = 0
    victron: int = 0
    status: Counter[KeyStatus] = field(default_factory=Counter)
    unsupported: int = 0
    corrupt: int = 0

    def add(self, reading: Reading) -> None:
        self.frames += 1
        if reading.advertisement.victron_data is not None:
            self.victron += 1
        if reading.status is KeyStatus.UNDECODABLE:
            # An unknown record type is "unsupported"; a frame cut short is "corrupt".
            if (reading.error or "").startswith("unsupported record"):
                self.unsupported += 1
            else:
                self.corrupt += 1
        else:
            self.status[reading.status] += 1

    def text(self) -> str:
        s = self.status
        not_ir = s[KeyStatus.NOT_VICTRON] - (self.frames - self.victron)
        return (
            f"{self.frames} frames read, {self.victron} Victron frames: "
            f"{s[KeyStatus.OK]} decoded, {s[KeyStatus.NO_KEY]} no key, "
            f"{s[KeyStatus.MISMATCH]} key mismatch, {not_ir} not Instant Readout, "
            f"{self.unsupported} unsupported, {self.corrupt} corrupt"
        )


def _time(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) + f".{int(ts % 1 * 1000):03d}"


class _Output:
    CSV_COLUMNS = (
        "ts",
        "address",
        "rssi",
        "name",
        "product",
        "record_type",
        "battery_voltage_v",
        "battery_current_a",
        "soc_pct",
        "temperature_c",
        "codes",
        "record_json",
    )

    def __init__(self, fmt: str, names: KeyStore, out: TextIO) -> None:
        self.fmt = fmt
        self.names = names
        self.out = out
        self._csv = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
        self._header_done = False

    def _header(self) -> None:
        # Written with the first row, so a file that cannot be read prints only its error.
        self._header_done = True
        if self._csv is not None:
            self._csv.writerow(self.CSV_COLUMNS)
        elif self.fmt == "table":
            self.out.write(
                f"{'time':23}  {'address':17}  {'name':16}  {'product':28}  values / codes\n"
            )

    def write(self, adv: Advertisement, record: Record) -> None:
        if not self._header_done:
            self._header()
        name = adv.name or self.names.name(adv.address) or ""
        if self.fmt == "jsonl":
            obj = frame_object(adv.ts, adv.address, adv.rssi, name, record)
            self.out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        elif self._csv is not None:
            d = record.to_dict()
            self._csv.writerow(
                (
                    f"{adv.ts:.6f}",
                    adv.address,
                    "" if adv.rssi is None else adv.rssi,
                    name,
                    record.product or "",
                    record.LAYOUT.name,
                    d.get("battery_voltage_v", ""),
                    d.get("battery_current_a", ""),
                    d.get("soc_pct", ""),
                    d.get("battery_temperature_c", d.get("temperature_c", "")),
                    codes_text(record),
                    json.dumps(d, ensure_ascii=False, separators=(",", ":")),
                )
            )
        else:
            codes = codes_text(record)
            self.out.write(
                f"{_time(adv.ts):23}  {adv.address:17}  {name[:16]:16}  "
                f"{(record.product or '?')[:28]:28}  {main_values(record)}"
                f"{'  [' + codes + ']' if codes else ''}\n"
            )


class _Progress:
    """A one-line progress bar on stderr, for big files on a terminal only."""

    def __init__(self, size: int) -> None:
        self.enabled = size >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
        self.size = max(size, 1)
        self.last = 0.0

    def update(self, position: int, frames: int, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.2:
            return
        self.last = now
        frac = min(position / self.size, 1.0)
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r[{bar:30}] {frac:6.1%}  {frames} frames")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 60 + "\r")


def _load_keys(args: argparse.Namespace) -> KeyStore | None:
    store = KeyStore()
    if args.keys:
        try:
            store = KeyStore.load(args.keys)
        except KeyFileError as exc:
            error(str(exc))
            return None
        for w in store.warnings:
            error("warning: " + w)
    if args.key:
        if not args.device:
            error("--key needs --device ADDR for capture files (or put the keys in a --keys file)")
            return None
        try:
            store.add(args.device, normalize_key(args.key))
        except (DecodeError, KeyFileError) as exc:
            error(str(exc))
            return None
    return store


def run_captures(args: argparse.Namespace, files: list[str]) -> int:
    fmt = args.format or ("jsonl" if args.json else "table")
    store = _load_keys(args)
    if store is None:
        return EXIT_USAGE
    device = None
    if args.device:
        try:
            device = normalize_address(args.device)
        except AddressError as exc:
            error(str(exc))
            return EXIT_USAGE
    # A plain dict: one lookup per frame, no address normalisation on the hot path.
    keys = {e.address: e.key for e in store.entries()}
    out = _Output(fmt, store, sys.stdout)
    summary = Summary()
    warned: set[tuple[str, KeyStatus]] = set()
    status = EXIT_OK
    try:
        for path in files:
            status = max(status, _decode_file(path, args, keys, device, out, summary, warned))
    except KeyboardInterrupt:
        pass  # --follow ends with Ctrl-C; the summary still follows
    except BrokenPipeError:  # e.g. `| head`: stop quietly
        sys.stderr.write("victron-bms: " + summary.text() + "\n")
        return status
    sys.stdout.flush()
    sys.stderr.write("victron-bms: " + summary.text() + "\n")
    return status


def _advertisements(
    path: str, args: argparse.Namespace, errors: list[CaptureError], progress_size: list[int]
) -> Iterator[tuple[Advertisement, int]]:
    """(advertisement, byte position) pairs from one file; --follow for JSON lines."""
    capture = open_capture(path, errors=errors)
    progress_size.append(capture.size)
    if args.follow:
        if capture.format != "jsonl":
            capture.close()
            raise CaptureError(
                f"--follow reads growing JSON-lines recordings; this is {capture.format}", path=path
            )
        capture.close()
        for adv in follow_jsonl(path, errors=errors):
            yield adv, 0
        return
    with capture:
        for adv in capture:
            yield adv, capture.position


def _decode_file(
    path: str,
    args: argparse.Namespace,
    keys: dict[str, bytes],
    device: str | None,
    out: _Output,
    summary: Summary,
    warned: set[tuple[str, KeyStatus]],
) -> int:
    errors: list[CaptureError] = []
    sizes: list[int] = []
    progress: _Progress | None = None
    reported = 0
    stream: Iterable[tuple[Advertisement, int]] = _advertisements(path, args, errors, sizes)
    try:
        for adv, position in stream:
            if progress is None:
                progress = _Progress(sizes[0] if sizes else 0)
            if device is not None and adv.address != device:
                continue
            reading = decode_advertisement(adv, keys)
            summary.add(reading)
            if reading.record is not None:
                out.write(adv, reading.record)
            elif reading.status in (KeyStatus.NO_KEY, KeyStatus.MISMATCH):
                if (adv.address, reading.status) not in warned:  # once per device
                    warned.add((adv.address, reading.status))
                    error(f"{adv.address}: {reading.error}")
            if summary.frames % 4096 == 0:
                progress.update(position, summary.frames)
            while reported < len(errors):
                _report(errors[reported], summary)
                reported += 1
    except CaptureError as exc:
        if progress is not None:
            progress.done()
        error(str(exc))
        summary.corrupt += 1
        return EXIT_USAGE if not summary.frames else EXIT_PARTIAL
    if progress is not None:
        progress.done()
    while reported < len(errors):
        _report(errors[reported], summary)
        reported += 1
    return EXIT_PARTIAL if errors else EXIT_OK


def _report(err: CaptureError, summary: Summary) -> None:
    summary.corrupt += 1
    error(str(err))
