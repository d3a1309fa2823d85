"""`victron-bms decode`: manufacturer data (hex) or capture files → the records.

    victron-bms decode --key KEY HEX [--json]
    victron-bms decode FILE… --keys KEYS [--format table|jsonl|csv] [--device ADDR] [--follow]

Positional arguments that are existing files are read as captures (btsnoop, pcap, pcapng or
our JSON lines, recognised by content). Keys come from `--keys FILE`, else the default keys
file that `scan` and `dashboard` use (`keys.default_keys_path()`). Exit status for captures:
0 every file read completely; 1 read, but nothing decoded (the summary says why); 2 nothing
could be read (bad arguments, unreadable or unknown file); 3 partial — some records were
corrupt or a file was cut short, or a frame decoded only in part (codes unknown) or to
implausible values; everything readable was still decoded and printed. A capture with forged
frames in it exits 3 for that reason (DEVELOPERS.md: hostile input is said, with a non-zero
status, and decoding goes on); every frame is printed as decoded, but the `{"type": "bank"}`
lines judge the members' frames through the device table first (`capture_banks.py`).
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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from victron_ble_bms.protocol import DecodeError, NotInstantReadout, Record, decode, normalize_key
from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture import Capture, CaptureError, follow_jsonl, open_capture
from victron_ble_bms.sources.keys import KeyFileError, KeyStore, address_or_error
from victron_ble_bms.sources.readings import KeyStatus, Reading, decode_advertisement

from .capture_banks import CaptureBanks
from .capture_keys import keys_from_headers
from .jsonlines import _LINE, CaptureLane, JsonLines
from .keys import default_keys_path
from .output import (
    NAME_W,
    PRODUCT_W,
    codes_text,
    error,
    fit,
    main_values,
    print_json,
    print_record,
)
from .progress import wanted

EXIT_OK = 0
EXIT_NOTHING = 1  # captures read, but no frame decoded (no keys, wrong keys, --device unheard)
EXIT_USAGE = 2
EXIT_PARTIAL = 3  # some of the capture was unreadable; what was readable was decoded

PROGRESS_MIN_BYTES = 8 << 20  # a progress bar only for files that take a while
# JSON lines of packets seen before written by the reader itself (sources/capture/lane.py);
# False: every packet the slow way (the tests compare the two).
LANE = True


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "decode",
        help="decode manufacturer data given as hex, or capture files",
        description="Decode Victron manufacturer data (hex, with or without the e1 02 company "
        "id; spaces and colons allowed), or capture files: btsnoop (Android HCI snoop log, "
        "btmon -w), pcap/pcapng (Wireshark, nRF Sniffer) and victron-bms recordings. "
        f"Keys: --keys FILE, else {default_keys_path()}. Exit status for captures: 0 complete, "
        f"{EXIT_NOTHING} nothing decoded, {EXIT_USAGE} unreadable, "
        f"{EXIT_PARTIAL} partial (corrupt records skipped, or frames incomplete or implausible).",
    )
    p.add_argument("inputs", nargs="+", metavar="HEX|FILE", help="manufacturer data, or files")
    p.add_argument("--key", required=False, help="the device's Instant Readout key (32 hex digits)")
    p.add_argument("--json", action="store_true", help="print one JSON object per frame")
    p.add_argument(
        "--keys",
        metavar="FILE",
        help=f"keys file (TOML) for capture files (default {default_keys_path()})",
    )
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


_HEX_CHARS = frozenset("0123456789abcdefABCDEF")


def _hex_digits(text: str) -> str:
    cleaned = "".join(text.split()).replace(":", "").replace("-", "")
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    return cleaned


def parse_hex(text: str) -> bytes:
    return binascii.unhexlify(_hex_digits(text))


def _not_a_file(text: str) -> str | None:
    """Why an argument that is not a readable capture file cannot be one, or None when it
    reads as hex (then it is decoded as manufacturer data)."""
    if os.path.isdir(text):
        return f"{plain(text)}: is a directory; give capture files (or hex manufacturer data)"
    digits = _hex_digits(text)
    if digits and set(digits) <= _HEX_CHARS:
        return None
    if os.path.lexists(text):
        return f"{plain(text)}: not a regular file (give capture files, or hex)"
    if os.sep in text or "." in text:
        return f"{plain(text)}: no such file"
    return (
        f"not hex, and no such file: '{plain(text, 40)}' (give manufacturer data as hex "
        "digits, or capture files)"
    )


def run(args: argparse.Namespace) -> int:
    files = [a for a in args.inputs if os.path.isfile(a)]
    others = [a for a in args.inputs if a not in files]
    problems = [m for m in map(_not_a_file, others) if m is not None]
    for message in problems:
        error(message)
    if problems:
        return EXIT_USAGE
    if files:
        if others:
            error(
                f"{len(others)} argument(s) are hex, not files: give either capture files or "
                "hex manufacturer data, not both"
            )
            return EXIT_USAGE
        return run_captures(args, files)
    if args.keys or args.format or args.device or args.follow:
        error("--keys/--format/--device/--follow are for capture files; this is hex data")
        return EXIT_USAGE
    return run_hex(args)


def run_hex(args: argparse.Namespace) -> int:
    status = 0
    for text in args.inputs:
        digits = _hex_digits(text)
        if len(digits) % 2:
            # Quoting a prefix would show something that *is* valid hex; count instead.
            error(
                f"{len(digits)} hex digits is an odd number: every byte is two digits — "
                "was one lost when copying?"
            )
            status = 2
            continue
        data = parse_hex(text)
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
    repeats: int = 0  # decoded frames written the cached way (counted as decoded)
    # Decoded, but not to be trusted as complete: fields missing (codes unknown), or values no
    # device can send (wrong key with the right check byte, or a corrupt/forged frame).
    partial: int = 0
    implausible: int = 0
    # Devices by status (for the "nothing decoded" reason), and every Victron device heard.
    devices: dict[KeyStatus, set[str]] = field(
        default_factory=lambda: {s: set() for s in KeyStatus}
    )
    heard: set[str] = field(default_factory=set)  # before --device filters
    MAX_DEVICES = 10_000  # bounded: a hostile capture may hold any number of addresses

    skipped: int = 0  # frames of other devices (--device)

    def hear(self, adv: Advertisement) -> None:
        self.skipped += 1
        if adv.victron_data is not None and len(self.heard) < self.MAX_DEVICES:
            self.heard.add(adv.address)

    def add(self, reading: Reading, times: int = 1) -> None:
        """Tally `times` frames that each gave `reading` (the same but for time and RSSI)."""
        self.frames += times
        if reading.advertisement.victron_data is not None:
            self.victron += times
            seen = self.devices[reading.status]
            if len(seen) < self.MAX_DEVICES:
                seen.add(reading.advertisement.address)
        if reading.status is KeyStatus.UNDECODABLE:
            # An unknown record type is "unsupported"; a frame cut short is "corrupt".
            if (reading.error or "").startswith("unsupported record"):
                self.unsupported += times
            else:
                self.corrupt += times
        else:
            self.status[reading.status] += times
            record = reading.record
            if record is not None:
                if record.partial:
                    self.partial += times
                if record.implausible:
                    self.implausible += times

    def tally(self, effect: object, times: int) -> None:
        """A capture lane's count (cli/jsonlines.py): lines written the cached way, or frames
        that each gave the same `Reading`."""
        if effect is _LINE:
            self.frames += times
            self.victron += times
            self.repeats += times
        elif isinstance(effect, Reading):
            self.add(effect, times)

    @property
    def doubtful(self) -> int:
        return self.partial + self.implausible

    def text(self) -> str:
        s = self.status
        not_ir = s[KeyStatus.NOT_VICTRON] - (self.frames - self.victron)
        read = (
            f"{self.frames + self.skipped} frames read, {self.skipped} of other devices "
            f"skipped (--device), {self.frames} kept"
            if self.skipped
            else f"{self.frames} frames read"
        )
        return (
            f"{read}, {self.victron} Victron frames: "
            f"{s[KeyStatus.OK] + self.repeats} decoded, {s[KeyStatus.NO_KEY]} no key, "
            f"{s[KeyStatus.MISMATCH]} key mismatch, {not_ir} not Instant Readout, "
            f"{self.unsupported} unsupported, {self.corrupt} corrupt"
            + (f", {self.partial} partial (codes unknown)" if self.partial else "")
            + (f", {self.implausible} implausible" if self.implausible else "")
        )


def _time(ts: float) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) + f".{int(ts % 1 * 1000):03d}"
    except (ValueError, OverflowError, OSError, TypeError):  # NaN, ±inf, year 10^12 …
        return plain(f"(time {ts!r})", 23)


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

    def __init__(self, fmt: str, names: KeyStore, out: TextIO, keys: dict[str, bytes]) -> None:
        self.fmt = fmt
        self.names = names
        self.out = out
        self.lines = JsonLines(keys) if fmt == "jsonl" else None
        # issue 20: a {"type": "bank"} line whenever a declared bank changes, judged through
        # the device table (issue 18: no verdict from a forged frame; capture_banks.py)
        self.banks = CaptureBanks(names.banks, keys) if fmt == "jsonl" and names.banks else None
        self._csv = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
        self._header_done = False

    def _header(self) -> None:
        # Written with the first row, so a file that cannot be read prints only its error.
        self._header_done = True
        if self._csv is not None:
            self._csv.writerow(self.CSV_COLUMNS)
        elif self.fmt == "table":
            self.out.write(
                f"{'time':23}  {'address':17}  {fit('name', NAME_W)}  "
                f"{fit('product', PRODUCT_W)}  values / codes\n"
            )

    def write(self, adv: Advertisement, record: Record) -> None:
        if not self._header_done:
            self._header()
        name = adv.name or self.names.name(adv.address) or ""
        if self.lines is not None:
            self.out.write(self.lines.full(adv, name, record) + "\n")
            return
        # Text from outside (names, addresses) shown, never obeyed (safetext.plain).
        name = plain(name)
        if self._csv is not None:
            d = record.to_dict()
            self._csv.writerow(
                (
                    f"{adv.ts:.6f}",
                    plain(adv.address),
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
                f"{_time(adv.ts):23}  {plain(adv.address):17}  {fit(name, NAME_W)}  "
                f"{fit(record.product or '?', PRODUCT_W)}  {main_values(record)}"
                f"{'  [' + codes + ']' if codes else ''}\n"
            )


class _Progress:
    """A one-line progress bar on stderr, for big files on a terminal only."""

    def __init__(self, size: int) -> None:
        self.enabled = size >= PROGRESS_MIN_BYTES and wanted()  # a terminal, or forced
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
    """--keys FILE, else the default keys file (missing is fine: nothing decodes, and the
    summary says why); plus --key for --device."""
    explicit = args.keys is not None
    try:
        store = KeyStore.load(args.keys or default_keys_path(), missing_ok=not explicit)
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
        except (DecodeError, KeyFileError) as exc:  # neither quotes the key (redacted)
            error(f"--device: {exc}" if isinstance(exc, KeyFileError) else f"--key: {exc}")
            return None
    return store


def run_captures(args: argparse.Namespace, files: list[str]) -> int:
    fmt = args.format or ("jsonl" if args.json else "table")
    device = None
    if args.device:
        try:
            device = address_or_error(args.device)  # quotes the text redacted: it may be a key
        except KeyFileError as exc:
            error(f"--device: {exc}")
            return EXIT_USAGE
    if args.keys is None:  # a recording's header may name its keys (issue 25 item 6)
        args.keys, said = keys_from_headers(files)
        if said:
            error(said)
    store = _load_keys(args)
    if store is None:
        return EXIT_USAGE
    # A plain dict: one lookup per frame, no address normalisation on the hot path.
    keys = {e.address: e.key for e in store.entries()}
    out = _Output(fmt, store, sys.stdout, keys)
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
    why = _why_nothing(summary, device, args, store)
    if why is not None and status in (EXIT_OK, EXIT_PARTIAL):
        error(why)
        return EXIT_NOTHING if status == EXIT_OK else status
    return status


def _why_nothing(
    summary: Summary, device: str | None, args: argparse.Namespace, store: KeyStore
) -> str | None:
    """One line saying why nothing decoded, or None when something did (or nothing was read)."""
    if summary.status[KeyStatus.OK]:
        return None
    if device is not None and not summary.frames:
        heard = sorted(summary.heard)
        listed = ", ".join(heard[:5]) + (f" and {len(heard) - 5} more" if len(heard) > 5 else "")
        return f"no frames from {device} in the capture; " + (
            f"Victron devices heard: {listed}" if heard else "no Victron devices heard"
        )
    if not summary.victron:
        return "no Victron Instant Readout frames in the capture" if summary.frames else None
    readable = (KeyStatus.NO_KEY, KeyStatus.MISMATCH, KeyStatus.UNDECODABLE)
    n = len(set().union(*(summary.devices[k] for k in readable)))
    if not n:
        return "no Victron Instant Readout frames in the capture"
    where = (
        f"--keys {args.keys}"
        if args.keys
        else f"the keys file {default_keys_path()}"
        + ("" if len(store) or default_keys_path().exists() else " (not created yet)")
    )
    no_key = len(summary.devices[KeyStatus.NO_KEY])
    mismatch = len(summary.devices[KeyStatus.MISMATCH])
    if no_key == n:
        return (
            f"nothing decoded: no key for any of the {n} device(s) in {where}; add keys with "
            "'victron-bms keys add ADDR KEY' (or keys import), or pass --keys FILE"
        )
    parts = []
    if no_key:
        parts.append(f"{no_key} device(s) have no key")
    if mismatch:
        parts.append(f"{mismatch} device(s) have a key that does not match (see above)")
    rest = n - no_key - mismatch
    if rest:
        parts.append(f"{rest} device(s) sent frames that cannot be decoded (unsupported/corrupt)")
    return f"nothing decoded from {n} device(s) with {where}: " + "; ".join(parts)


def _advertisements(
    path: str,
    args: argparse.Namespace,
    errors: list[CaptureError],
    opened: list[Capture],
    lane: CaptureLane | None = None,
) -> Iterator[Advertisement]:
    """The advertisements of one file (the Capture goes into `opened`, for progress);
    --follow for JSON lines."""
    capture = open_capture(path, errors=errors)
    opened.append(capture)
    if lane is not None:
        capture.lane = lane.lane
    if args.follow:
        if capture.format != "jsonl":
            capture.close()
            raise CaptureError(
                f"--follow reads growing JSON-lines recordings; this is {capture.format}", path=path
            )
        capture.close()
        yield from follow_jsonl(path, errors=errors)
        return
    with capture:
        yield from capture


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
    opened: list[Capture] = []
    doubtful_before = summary.doubtful
    progress: _Progress | None = None
    reported = 0
    lines = out.lines
    write: Callable[[str], object] = out.out.write
    banks = out.banks if device is None else None  # --device: one device, not its bank
    # Packets seen before are written by the reader itself (sources/capture/lane.py); not
    # with banks, which follow every reading the slow way.
    lane = (
        CaptureLane(lines, write, summary.tally)
        if LANE and lines is not None and device is None and not args.follow and banks is None
        else None
    )
    fast = lane.lane if lane is not None else None
    if lane is not None:
        write = lane.append  # in order with the lines the reader writes
    stream: Iterable[Advertisement] = _advertisements(path, args, errors, opened, lane)
    try:
        for adv in stream:
            pending = None if fast is None else fast.pending
            if progress is None:
                progress = _Progress(opened[0].size if opened else 0)
            if reported < len(errors):  # what the reader skipped before this frame
                reported = _report_new(errors, reported, summary)
            if device is not None and adv.address != device:
                summary.hear(adv)
                continue
            if lines is not None:
                line = lines.cached(adv)
                if line is not None:  # the device's last values again (jsonlines.py)
                    summary.frames += 1
                    summary.victron += 1
                    summary.repeats += 1
                    write(line + "\n")
                    if banks is not None:  # it may confirm a member's change
                        for bank_line in banks.lines(adv):
                            write(bank_line)
                    if pending is not None:
                        lane.learn(adv, pending, None, True)  # type: ignore[union-attr]
                    if summary.frames % 4096 == 0:
                        progress.update(opened[0].position, summary.frames)
                    continue
            reading = decode_advertisement(adv, keys)
            summary.add(reading)
            if reading.record is not None:
                if lane is not None:
                    lane.flush()  # the lines before this one first
                out.write(adv, reading.record)
            elif reading.status in (KeyStatus.NO_KEY, KeyStatus.MISMATCH):
                if (adv.address, reading.status) not in warned:  # once per device …
                    _warn_device(warned, adv, reading)
            if pending is not None:
                lane.learn(adv, pending, reading, reading.record is not None)  # type: ignore[union-attr]
            if banks is not None:  # after the frame: the bank change it caused
                for bank_line in banks.lines(adv):
                    write(bank_line)
            if summary.frames % 4096 == 0:
                progress.update(opened[0].position, summary.frames)
    except CaptureError as exc:
        if lane is not None:
            lane.flush()
            lane.fold()
        if progress is not None:
            progress.done()
        reported = _report_new(errors, reported, summary)
        error(str(exc))
        summary.corrupt += 1
        return EXIT_USAGE if not summary.frames else EXIT_PARTIAL
    if lane is not None:
        lane.flush()
        lane.fold()
    if progress is not None:
        progress.done()
    _report_new(errors, reported, summary)
    # A frame decoded only in part, or to impossible values, is not a clean read either.
    return EXIT_PARTIAL if errors or summary.doubtful > doubtful_before else EXIT_OK


MAX_DEVICE_WARNINGS = 10


def _warn_device(warned: set[tuple[str, KeyStatus]], adv: Advertisement, reading: Reading) -> None:
    """… and for the first few devices only: a capture of 30 devices without keys printed 30
    lines before the one that says why (the summary counts them all; the set stays small)."""
    if len(warned) > MAX_DEVICE_WARNINGS:
        return
    warned.add((adv.address, reading.status))
    if len(warned) > MAX_DEVICE_WARNINGS:
        error("… more devices without a (matching) key: see the summary below")
        return
    text = reading.error or reading.status.value
    error(text if adv.address in text else f"{adv.address}: {text}")


def _report_new(errors: list[CaptureError], reported: int, summary: Summary) -> int:
    """Report the problems the reader skipped since the last call (in file order, between
    the frames around them); returns how many are reported now."""
    for err in errors[reported:]:
        summary.corrupt += 1
        error(str(err))
    return len(errors)
