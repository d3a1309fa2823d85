"""`victron-bms scan`: live readings from the radio, as a table or JSON lines.

    victron-bms scan [--duration S] [--json] [--passive] [--adapter NAME] [--keys FILE]
                     [--record FILE] [--stale-after S]

`--json` prints one object per new reading — the objects of `decode --format jsonl` plus
`"key_status": "ok"` — and, for every device that cannot be decoded, one status object when it
is first heard and whenever its status changes: `{"address", "key_status": "no key" | "key
mismatch" | "undecodable", "product", "record_type", "message", …}`. Scanner events (adapter
lost, resumed, slow updates) go to stderr. Without Bluetooth at all the command says why in one
line and exits 1; once scanning, it never gives up (see `sources/watchdog.py`).

With banks declared in the keys file, `--json` also writes a bank object whenever a bank
changes, including when its members fall silent: checked every second; a member silent longer
than `--stale-after` (60 s, as `serve`) is stale.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from victron_ble_bms.banks.tracker import DEFAULT_STALE_S, BankTracker
from victron_ble_bms.sources.ble import close_bleak_bus, quiet_lost_bus
from victron_ble_bms.sources.capture.jsonl import JsonlWriter
from victron_ble_bms.sources.devices import DEFAULT_MAX_DEVICES, BoundedDict, DeviceState
from victron_ble_bms.sources.keys import KeyFileError, KeyStore
from victron_ble_bms.sources.readings import KeyStatus, Reading, shown_suspect

from ..frame_json import frame_object
from ..safetext import plain
from .keys import default_keys_path
from .output import NAME_W, PRODUCT_W, codes_text, error, fit, main_values, text_cell
from .stopping import stop_event

EXIT_OK = 0
EXIT_UNAVAILABLE = 1
EXIT_USAGE = 2

REFRESH_S = 0.5  # table repaint interval
BANK_TICK_S = 1.0  # how often bank lines look for members that fell silent

_HINT = {
    KeyStatus.NO_KEY: "no key for this device: add it with "
    "'victron-bms keys add {address} KEY' (VictronConnect → Product info → "
    "Instant readout details)",
    KeyStatus.MISMATCH: "{error} — fix with 'victron-bms keys add {address} KEY'",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "scan",
        help="scan for Victron batteries/BMSes and show their readings live",
        description="Scan with the Bluetooth adapter (BlueZ on Linux, CoreBluetooth on macOS) "
        "and decode Instant Readout advertisements with the keys file. Devices without a key "
        "are listed with what they are and why they cannot be read.",
    )
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    p.add_argument(
        "--passive",
        action="store_true",
        help="passive scan (Linux, BlueZ >= 5.56 with --experimental): no scan requests",
    )
    p.add_argument("--adapter", metavar="NAME", help="Bluetooth adapter, e.g. hci1")
    p.add_argument(
        "--keys", metavar="FILE", help=f"keys file (TOML; default {default_keys_path()})"
    )
    p.add_argument(  # one name for one thing across commands: --capture (--record still works)
        "--capture",
        "--record",
        dest="record",
        metavar="FILE",
        help="also write a JSON-lines capture",
    )
    p.add_argument(
        "--stale-after",
        type=float,
        default=DEFAULT_STALE_S,
        metavar="S",
        help="with --json and banks: a member silent S seconds is stale (default %(default)s)",
    )
    p.add_argument(
        "--rediscover",
        type=float,
        default=120.0,
        metavar="S",
        help="while devices update slowly, restart discovery every S seconds (0: never)",
    )
    p.set_defaults(run=run)


# --- output -----------------------------------------------------------------------------------


def reading_object(reading: Reading, name: str | None) -> dict[str, Any]:
    """The JSON object of one reading: `decode --format jsonl` plus key status. A frame line
    says what the frame is: `suspect` when its values are not the device's (a pending change
    included, with `"pending": true`, so a reader can tell a change waiting for its confirming
    frame from a forged or replayed one), or, on a good frame, a change the device sent earlier
    and never confirmed (`Reading.note`) — the one rule of every output, `shown_suspect`."""
    adv = reading.advertisement
    suspect = shown_suspect(reading, last_good=False)
    obj = frame_object(adv.ts, adv.address, adv.rssi, name, reading.record, suspect)
    if reading.pending:
        obj["pending"] = True
    obj["key_status"] = reading.status.value
    return obj


def status_object(reading: Reading, dev: DeviceState | None, name: str | None) -> dict[str, Any]:
    """One device that cannot be decoded: what it is and why."""
    adv = reading.advertisement
    obj = frame_object(adv.ts, adv.address, adv.rssi, name, None, reading.suspect)
    frame = reading.frame
    obj["key_status"] = reading.status.value
    obj["product"] = dev.product if dev is not None else None
    obj["model_id"] = None if frame is None else frame.model_id
    obj["record_type"] = dev.record_name if dev is not None else None
    obj["record_type_id"] = None if frame is None else frame.record_type
    obj["nonce"] = None if frame is None else frame.nonce
    obj["message"] = _message(reading)
    return obj


def _message(reading: Reading) -> str:
    template = _HINT.get(reading.status)
    address = reading.advertisement.address
    if template is None:
        return reading.error or reading.status.value
    return template.format(address=address, error=reading.error or "key mismatch")


class _Printer:
    """JSON lines, or plain lines when there is no terminal for a live table."""

    def __init__(
        self,
        out: TextIO,
        json_mode: bool,
        names: Mapping[str, str],
        banks: BankTracker | None = None,
    ) -> None:
        self.out = out
        self.json = json_mode
        self.names = names
        self.banks = banks if json_mode and banks else None  # issue 20: bank objects too
        # Last status printed per address, bounded like the device table (issue 9 item 10).
        self.status: BoundedDict[str, KeyStatus] = BoundedDict(DEFAULT_MAX_DEVICES)

    def reading(self, reading: Reading, dev: DeviceState | None) -> None:
        address = reading.advertisement.address
        name = reading.advertisement.name or self.names.get(address)
        previous = self.status.get(address)
        self.status[address] = reading.status
        if reading.record is not None:
            if self.json:
                self.out.write(json.dumps(reading_object(reading, name), ensure_ascii=False))
            else:
                if reading.pending:  # a change, taken once the device's next frame agrees
                    shown = "pending: a change, taken once a frame with a fresh nonce agrees"
                elif reading.suspect:  # its values are not the device's: never shown as such
                    shown = f"SUSPECT, values ignored: {plain(reading.suspect)}"
                else:
                    codes = codes_text(reading.record)
                    shown = main_values(reading.record, cells=False)
                    shown += f"  [{codes}]" if codes else ""
                    if reading.note:  # an earlier change never confirmed (devices.py)
                        shown += f"  — {plain(reading.note)}"
                self.out.write(
                    f"{time.strftime('%H:%M:%S', time.localtime(reading.advertisement.ts))}  "
                    f"{plain(address):17}  {fit(plain(name or ''), NAME_W)}  "
                    f"{fit(reading.record.product or '?', PRODUCT_W)}  {shown}"
                )
            self.out.write("\n")
        elif previous is not reading.status:  # once per device and status change
            if self.json:
                self.out.write(json.dumps(status_object(reading, dev, name), ensure_ascii=False))
            else:
                product = dev.product if dev is not None else None
                self.out.write(
                    f"{plain(address)}  {product or 'unknown product'}: {reading.status.value} — "
                    f"{plain(_message(reading))}"
                )
            self.out.write("\n")
        if self.banks is not None:
            self.out.writelines(self.banks.lines(reading))
        self.out.flush()

    def tick(self, now: float) -> None:
        """Bank lines for banks changed by the clock alone: members that fell silent. Without
        this a bank whose every member went quiet would keep its last line as if current."""
        if self.banks is None:
            return
        lines = self.banks.tick_lines(now)
        if lines:
            self.out.writelines(lines)
            self.out.flush()


def _table(devices: list[DeviceState], names: Mapping[str, str], now: float) -> Any:
    from rich.table import Table

    table = Table(title="Victron devices", header_style="bold", expand=False)
    for col in ("device", "product", "key", "values", "codes", "age", "rate", "RSSI"):
        table.add_column(col)
    style = {
        KeyStatus.OK: "green",
        KeyStatus.NO_KEY: "yellow",
        KeyStatus.MISMATCH: "red",
        KeyStatus.UNDECODABLE: "magenta",
    }
    for dev in sorted(devices, key=lambda d: d.address):
        name = names.get(dev.address) or dev.name
        # Only good values: a suspect frame never shows as current (issue 9 item 5).
        record = dev.last_decoded.record if dev.last_decoded is not None else None
        values = text_cell(main_values(record, cells=False) if record is not None else "")
        last = dev.last_reading
        shown = None if last is None else shown_suspect(last, record is not None)
        if shown:  # a change pending confirmation is quiet (sources/devices.py)
            values.append(f"\nlast frame ignored: {plain(shown)}", style="bold red")
        codes = codes_text(record) if record is not None else ""
        age = dev.age(now)
        rate = dev.rate_hz
        slow = " (slow)" if dev.slow() else ""
        # Names and addresses come from the air: Text cells, never markup (issue 9 item 4).
        device = text_cell(dev.address) if not name else text_cell(name)
        if name:
            device.append("\n" + plain(dev.address))
        table.add_row(
            device,
            text_cell(dev.product or "?"),
            text_cell(dev.key_status.value, style.get(dev.key_status, "white")),
            values,
            text_cell(codes),
            "" if age is None else f"{age:.0f} s",
            ("" if rate is None else f"{rate:.2f}/s") + slow,
            "" if dev.rssi is None else str(dev.rssi),
        )
    return table


# --- running ----------------------------------------------------------------------------------


def _load_keys(args: argparse.Namespace) -> KeyStore | None:
    explicit = args.keys is not None
    path = args.keys or default_keys_path()
    try:
        store = KeyStore.load(path, missing_ok=not explicit)
    except KeyFileError as exc:
        error(str(exc))
        return None
    for warning in store.warnings:
        error("warning: " + warning)
    return store


def run(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        error("--duration must be a positive number of seconds")
        return EXIT_USAGE
    if not args.stale_after > 0:  # also refuses nan
        error("--stale-after must be a positive number of seconds")
        return EXIT_USAGE
    store = _load_keys(args)
    if store is None:
        return EXIT_USAGE
    recorder: JsonlWriter | None = None
    if args.record:
        try:
            recorder = JsonlWriter(args.record, source="scan")
        except OSError as exc:
            error(f"{args.record}: cannot write: {exc.strerror or exc}")
            return EXIT_USAGE
    try:
        return asyncio.run(_scan(args, store, recorder))
    finally:
        if recorder is not None:
            recorder.close()


async def _scan(args: argparse.Namespace, store: KeyStore, recorder: JsonlWriter | None) -> int:
    from victron_ble_bms.sources.live import (
        EventKind,
        LiveScan,
        ScanError,
        ScanOptions,
        StatusEvent,
        WatchdogConfig,
    )

    quiet_lost_bus(asyncio.get_running_loop())
    names = {e.address: e.name for e in store.entries() if e.name}
    scan = LiveScan(
        store,
        ScanOptions(passive=args.passive, adapter=args.adapter),
        WatchdogConfig(rediscover_every_s=max(0.0, args.rediscover)),
        record=recorder,
    )
    try:
        await scan.preflight()
    except ScanError as exc:
        error(str(exc))
        return EXIT_UNAVAILABLE
    finally:
        await close_bleak_bus()

    stop = stop_event(args.duration)

    live = None
    if not args.json and sys.stdout.isatty():
        with contextlib.suppress(ImportError):
            from rich.console import Console
            from rich.live import Live

            console = Console()
            live = Live(console=console, refresh_per_second=1 / REFRESH_S, transient=False)
    printer = _Printer(
        sys.stdout, args.json, names, BankTracker(store.banks, stale_after_s=args.stale_after)
    )
    failure: list[str] = []  # why the scan must end early (one line), if it must

    async def consume() -> None:
        async for item in scan:
            if isinstance(item, StatusEvent):
                if item.kind is EventKind.SCANNING and item.recovery_s is None:
                    continue  # the first start is not news
                if item.kind is EventKind.BUS_LOST:  # nothing to wait for: say so and stop
                    failure.append(
                        "the D-Bus system bus went away (dbus-daemon stopped?): stopping the scan"
                    )
                    stop.set()
                    continue
                if live is not None:
                    live.console.print(text_cell(f"{item.kind.value}: {item.message}", "dim"))
                else:
                    error(item.message)
                if recorder is not None and scan.record is None:
                    stop.set()  # --record failed (disk full …): said above; exit non-zero
                continue
            if live is None:
                try:
                    printer.reading(item, scan.devices.get(item.advertisement.address))
                except Exception as exc:  # one bad frame must not end the session (issue 9)
                    _frame_failed(item, exc)

    async def bank_ticks() -> None:
        while True:
            await asyncio.sleep(BANK_TICK_S)
            try:
                printer.tick(time.time())
            except Exception as exc:  # as for a frame: say so once a tick, keep scanning
                error(f"could not write the bank lines: {type(exc).__name__}; continuing")

    async def repaint() -> None:
        assert live is not None  # noqa: S101 — only started with a live display
        while True:
            try:
                live.update(_table(list(scan.devices), names, time.time()))
            except Exception as exc:  # never stop repainting over one device's values
                error(f"could not draw the table: {type(exc).__name__}")
            await asyncio.sleep(REFRESH_S)

    async with scan:
        tasks = [asyncio.create_task(consume())]
        if printer.banks is not None:
            tasks.append(asyncio.create_task(bank_ticks()))
        if live is not None:
            live.start()
            tasks.append(asyncio.create_task(repaint()))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if live is not None:
                live.update(_table(list(scan.devices), names, time.time()))
                live.stop()
    await close_bleak_bus()
    if failure:
        error(failure[0])
        return EXIT_UNAVAILABLE
    _summary(scan.devices, scan.advertisements, scan.watchdog.restarts)
    if recorder is not None and scan.record is None:
        return EXIT_UNAVAILABLE  # the recording stopped early (its line is above)
    return EXIT_OK


def _frame_failed(reading: Reading, exc: Exception) -> None:
    """One line for a reading we could not show; the scan goes on with the next one."""
    frame = reading.frame
    nonce = "" if frame is None else f" (nonce {frame.nonce})"
    error(
        f"{plain(reading.advertisement.address)}: could not show a frame{nonce}: "
        f"{type(exc).__name__}; continuing"
    )


def _summary(devices: Any, advertisements: int, restarts: int) -> None:
    counts: dict[KeyStatus, int] = {}
    for dev in devices:
        counts[dev.key_status] = counts.get(dev.key_status, 0) + 1
    parts = [f"{n} {status.value}" for status, n in counts.items()]
    sys.stderr.write(
        f"victron-bms: {len(devices)} Victron device(s) ({', '.join(parts) or 'none heard'}); "
        f"{advertisements} advertisements; {restarts} scan restart(s)\n"
    )


# --- `victron-bms record --source ble` ----------------------------------------------------------


def record_ble(args: argparse.Namespace, open_writer: Callable[[], Any]) -> int:
    """Record new Victron advertisements from the radio for `args.duration` seconds (Ctrl-C
    stops earlier). Returns 0, or 2 when scanning cannot start (one clear line)."""
    return asyncio.run(_record_ble(args, open_writer))


async def _record_ble(args: argparse.Namespace, open_writer: Callable[[], Any]) -> int:
    from victron_ble_bms.sources.live import EventKind, LiveScan, ScanError, StatusEvent

    quiet_lost_bus(asyncio.get_running_loop())
    scan = LiveScan({}, record=None)
    try:
        await scan.preflight()
    except ScanError as exc:
        error(str(exc))
        return EXIT_USAGE
    finally:
        await close_bleak_bus()
    try:
        writer = open_writer()
    except OSError as exc:
        error(f"{args.output}: cannot write: {exc.strerror or exc}")
        return EXIT_USAGE
    scan.record = writer
    stop = stop_event(args.duration or None)

    async def report() -> None:
        async for item in scan:
            if isinstance(item, StatusEvent) and (
                item.kind is not EventKind.SCANNING or item.recovery_s is not None
            ):
                error(item.message)
            if scan.record is None:
                stop.set()  # the writer failed (disk full …); its line is above

    try:
        async with scan:
            task = asyncio.create_task(report())
            await stop.wait()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        writer.close()
        await close_bleak_bus()
    if scan.record is None:
        return 1  # the recording stopped early: one line said why, the file is intact
    sys.stderr.write(f"victron-bms: recorded {writer.count} advertisements to {args.output}\n")
    return EXIT_OK
