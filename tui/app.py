"""The dashboard app. The source is built outside and injected: any async iterable of
advertisements (decoded here with the keys file) or of already decoded readings."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import traceback
from collections.abc import AsyncIterable, Sequence
from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.worker import WorkerFailed

from victron_ble_bms.protocol import LynxSmartBmsRecord, SmartBmsRecord, SmartLithiumRecord
from victron_ble_bms.protocol.codes import Severity
from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture.jsonl import JsonlWriter
from victron_ble_bms.sources.devices import DevicesState
from victron_ble_bms.sources.keys import KeyFileError, KeyStore
from victron_ble_bms.sources.readings import KeyStatus, Reading, decode_advertisement

from .format import outside
from .messages import OpenBank, OpenDevice
from .screens.alerts import AlertsScreen
from .screens.bank import BankScreen
from .screens.base import FleetScreen, ready
from .screens.battery import BatteryScreen
from .screens.detail import DetailScreen
from .screens.devices import DeviceListScreen
from .screens.help import HelpScreen
from .screens.key_dialog import KeyDialog, SecretKey
from .screens.lynx import LynxScreen
from .screens.record import RecordScreen
from .screens.smart_bms import SmartBmsScreen
from .state import MAX_DEVICES, ActiveCode, Clock, Fleet
from .widgets.status_bar import Part, StatusBar

Source = AsyncIterable[Advertisement | Reading]

DETAIL_SCREENS: dict[type, type[DetailScreen]] = {
    SmartLithiumRecord: BatteryScreen,
    LynxSmartBmsRecord: LynxScreen,
    SmartBmsRecord: SmartBmsScreen,
}

# Readings handled before the consumer yields to the event loop: large enough to keep up with
# a flood, small enough that key presses and repaints are never starved.
_BATCH = 50

# The screen takes the devices that changed at most this often: readings in between are
# coalesced per device (a device at 10 Hz costs one card update per frame, not ten). A
# reading after a quiet spell is shown at once (the frame's leading edge), one in a steady
# stream waits at most this long: its p95 to the screen stays under 100 ms (issue 26) at
# ~14 screen updates a second, each costing Textual ~3 ms with two dozen cards in view.
FRAME_S = 0.07
# A device's card is repainted at most this often (with its newest state): painting costs
# Textual milliseconds per card, so CPU must not follow a device's advertising rate.
REPAINT_S = 0.25


def crash_line(error: BaseException) -> str:
    """One line for an internal error: its type and where, never its message or locals (either
    may hold a device key)."""
    if isinstance(error, WorkerFailed):  # the source worker's own error, not the wrapper
        error = error.error
    where = ""
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        last = frames[-1]
        where = f" at {Path(last.filename).name}:{last.lineno}"
    return (
        f"victron-bms dashboard: internal error ({type(error).__name__}{where}); "
        "details withheld (they may hold a device key); please report it"
    )


class DashboardApp(App[None]):
    CSS_PATH = Path(__file__).with_name("dashboard.tcss")  # absolute: subclasses live elsewhere
    TITLE = "Victron BMS"
    # Below 80 columns the cards stack in one column, like the phone app.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (80, "-normal"), (140, "-wide")]
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("a", "alerts", "Alerts"),
        Binding("r", "record", "Record"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        source: Source,
        *,
        keys: KeyStore | None = None,
        demo: bool = False,
        source_label: str = "",
        clock: Clock = time.time,
        record_dir: Path | None = None,
        tick_s: float | None = 1.0,
        toasts: bool = True,
        skipped: Sequence[object] | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.keys = keys if keys is not None else KeyStore()
        self.demo = demo
        self.source_label = plain(source_label)
        self.fleet = Fleet(clock)
        self.judge = DevicesState(self.keys, max_devices=MAX_DEVICES, clock=clock)
        self.fleet.names.update({e.address: e.name for e in self.keys.entries() if e.name})
        # The keys file's banks (issue 20): each problem in a declaration is in its bank's
        # problems (the bank shows degraded), nothing stops.
        self.fleet.banks.set_specs(self.keys.banks)
        self.record_dir = record_dir or Path.cwd()
        self.recorder: JsonlWriter | None = None
        self.source_done = False
        self.source_error: str | None = None
        # Kept on the status line until cleared (a remote serve that went offline, issue 25)
        self.status_note: str | None = None
        # Why `r` cannot record with this source (over MQTT only decoded states arrive)
        self.cannot_record: str | None = None
        # Problems the source skipped past (e.g. corrupt capture records); the source appends.
        self.skipped: Sequence[object] = skipped if skipped is not None else ()
        self._skipped_shown = 0
        self._tick_s = tick_s
        self._toasts = toasts
        self._dirty: dict[str, None] = {}  # devices changed since the last frame (ordered set)
        self._frame_pending = False
        self._frame_handle: asyncio.Handle | None = None
        self._last_frame = 0.0  # monotonic time of the last frame
        self._started: list[ActiveCode] = []  # codes that became active since the last frame
        self.device_list: DeviceListScreen | None = None  # made once the app runs (a screen
        # made here would belong to no app: no toasts on it)
        self.max_queue = 0  # deepest the message queue got (the load test reads it)
        self.handled = 0  # device updates handed to the screen (after coalescing)
        self.frames = 0
        self.crash: str | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def get_default_screen(self) -> DeviceListScreen:
        self.device_list = DeviceListScreen()
        return self.device_list

    def on_mount(self) -> None:
        self.sub_title = self.source_label
        # exit_on_error: a bug while applying a reading ends the app through _handle_exception
        # (one line, non-zero status); the source's own failures are caught in _consume.
        self.run_worker(self._consume(), name="source", group="source", exit_on_error=True)
        if self._tick_s:
            self.set_interval(self._tick_s, self._tick)

    def on_unmount(self) -> None:
        if self._frame_handle is not None:
            self._frame_handle.cancel()
        if self.recorder is not None:
            self.recorder.close()

    def _handle_exception(self, error: Exception) -> None:
        # Textual's default prints a Rich traceback WITH every frame's locals (a key held by any
        # frame would be shown, issue 9 item 3). One line instead; the status is 1.
        self._return_code = 1
        if self._exception is None:  # Pilot re-raises it after the test's `async with`
            self._exception = error
            self._exception_event.set()
        if self.crash is None:  # a worker's failure arrives twice (the error, then WorkerFailed)
            self.crash = crash_line(error)
            # The CLI prints `crash` after the screen is restored (Textual would crop it to the
            # terminal width); panic() with nothing to show closes the app at once.
            self.panic()

    # -- the source -------------------------------------------------------------------------
    def decode(self, item: Advertisement | Reading) -> Reading:
        if isinstance(item, Advertisement):
            # The scanner's device table judges each frame against the device's established
            # nonce sequence (replayed, forged, implausible → Reading.suspect), as `scan` does.
            update = self.judge.update(item)
            if update.reading is not None:
                return update.reading
            return decode_advertisement(item, self.keys)  # a re-report, or not Victron
        if item.status in (KeyStatus.NO_KEY, KeyStatus.MISMATCH) and (
            item.advertisement.address in self.keys
        ):
            item = decode_advertisement(item.advertisement, self.keys)
        if item.suspect is None and item.record is not None and item.record.implausible:
            # A reading from a feed that did not judge it (e.g. a remote dashboard feed).
            why = "; ".join(item.record.implausible)
            item = replace(item, suspect=f"implausible values ({why}): wrong key or corrupt frame?")
        return item

    def ingest(self, item: Advertisement | Reading) -> None:
        """Apply one item to the fleet and mark its device for the next frame."""
        reading = self.decode(item)
        adv = reading.advertisement
        if self.recorder is not None:
            self.recorder.write(adv)
        started = self.fleet.update(reading)
        self._dirty[adv.address] = None
        if started:
            self._started.extend(started)
        if not self._frame_pending:
            # At once when the last frame is FRAME_S old: after the readings already handled
            # in this turn of the loop (a burst is one frame).
            self._schedule_frame(self._last_frame + FRAME_S - time.monotonic())
        self.max_queue = max(self.max_queue, self._message_queue.qsize())

    async def _consume(self) -> None:
        n = 0
        iterator = aiter(self.source)
        while True:
            try:
                item = await anext(iterator)
            except StopAsyncIteration:
                break
            except Exception as exc:  # a source failure is shown, never a traceback
                self.source_error = f"source stopped: {type(exc).__name__}: {plain(exc)}"
                self.notify(self.source_error, severity="error", timeout=30, markup=False)
                break
            self.ingest(item)
            n += 1
            if n % _BATCH == 0:
                await asyncio.sleep(0)
        self.source_done = True
        self._refresh_status()

    # -- frames -----------------------------------------------------------------------------
    def _frame(self) -> None:
        """Hand the devices that changed since the last frame to the screens, once each (a
        device shown less than REPAINT_S ago waits for a later frame)."""
        self._frame_pending = False
        dirty, self._dirty = self._dirty, {}
        mono = self._last_frame = time.monotonic()
        changed: dict[str, None] = {}
        devices = self.fleet.devices
        for address in dirty:
            dev = devices.get(address)
            if dev is None:
                continue
            if mono - dev.shown_at < REPAINT_S:
                self._dirty[address] = None
            else:
                dev.shown_at = mono
                changed[address] = None
        banks = self._take_banks(mono)
        if self._dirty or self.fleet.banks.dirty:
            self._schedule_frame(FRAME_S)
        self.frames += 1
        self.handled += len(changed)
        if not self.is_running or not self.screen_stack:  # a frame timer after the app ended
            return
        if self.device_list is not None:
            self.device_list.devices_changed(changed)
            if banks:
                self.device_list.banks_changed(banks)
        screen = self.screen
        # A page pushed by a fast Enter is current before it has composed: it is painted when
        # it shows (on_screen_resume), not by this frame (issue 18, NoMatches).
        if isinstance(screen, FleetScreen) and screen is not self.device_list and ready(screen):
            screen.devices_changed(changed)
            if banks:
                screen.banks_changed(banks)
        if self._started:
            self._codes_started()
        self._show_skipped()
        self._refresh_status()

    def _schedule_frame(self, wait: float) -> None:
        """The next frame, from the event loop's own timer: ~14 frames a second, and a Textual
        timer is a task, an event and a message each (issue 26). A frame's error ends the app
        as any other bug does (one line, `_handle_exception`)."""
        self._frame_pending = True
        loop = asyncio.get_running_loop()
        if wait > 0:
            self._frame_handle = loop.call_later(wait, self._frame_guarded)
        else:
            self._frame_handle = loop.call_soon(self._frame_guarded)

    def _frame_guarded(self) -> None:
        self._frame_handle = None
        try:
            self._frame()
        except Exception as error:  # noqa: BLE001 - handed to the app's one-line crash report
            self._handle_exception(error)

    def _take_banks(self, mono: float) -> list[str]:
        """The banks with a new member reading, each at most once per REPAINT_S (a bank's
        members together advertise several times a second)."""
        banks = self.fleet.banks
        taken = []
        for name in list(banks.dirty):
            if mono - banks.shown_at.get(name, -REPAINT_S) >= REPAINT_S:
                banks.shown_at[name] = mono
                del banks.dirty[name]
                taken.append(name)
        return taken

    def flush(self) -> None:
        """Apply pending updates now, however recent (tests call it)."""
        for address in self._dirty:
            dev = self.fleet.devices.get(address)
            if dev is not None:
                dev.shown_at = 0.0
        self.fleet.banks.shown_at.clear()
        if self._dirty or self._started or self.fleet.banks.dirty:
            self._frame()

    def _codes_started(self) -> None:
        started, self._started = self._started, []
        alarms = [a for a in started if a.code.severity >= Severity.ALARM]
        for active in started[:5] if self._toasts else ():
            alarm = active.code.severity >= Severity.ALARM
            self.notify(
                f"{plain(active.device)}: {active.code.id} {active.code.title}",
                title="New alarm" if alarm else "New warning",
                severity="error" if alarm else "warning",
                markup=False,  # the device name comes from the air
            )
        if alarms:
            self.bell()
            self._flash()

    def _show_skipped(self) -> None:
        new = list(self.skipped[self._skipped_shown :])
        self._skipped_shown = len(self.skipped)
        for problem in new[:3] if self._toasts else ():
            self.notify(f"skipped: {plain(problem)}", severity="warning", markup=False)

    # -- message handlers -------------------------------------------------------------------
    def on_open_device(self, message: OpenDevice) -> None:
        dev = self.fleet.devices.get(message.address)
        if dev is None or self.screen is not self.device_list:
            return  # Enter typed again before the first page showed: one page, not a stack
        if dev.status in (KeyStatus.NO_KEY, KeyStatus.MISMATCH):
            problem = (
                "This device's key does not fit: it probably got a new key after a PIN change."
                if dev.status is KeyStatus.MISMATCH
                else "This device's readings are encrypted; without its key only its name shows."
            )

            def stored(key: SecretKey | None, address: str = dev.address) -> None:
                if key is not None:
                    self.add_key(address, key)

            self.push_screen(KeyDialog(dev.address, dev.name, problem, dev.key_check), stored)
            return
        screen_cls = DETAIL_SCREENS.get(type(dev.record), RecordScreen) if dev.record else None
        if screen_cls is None:
            self.notify(
                f"{dev.name}: {plain(dev.error or 'no decoded reading yet')}",
                severity="warning",
                markup=False,
            )
            return
        self.push_screen(screen_cls(dev.address))

    def on_open_bank(self, message: OpenBank) -> None:
        if message.bank in self.fleet.banks.specs and self.screen is self.device_list:
            self.push_screen(BankScreen(message.bank))

    def add_key(self, address: str, key: SecretKey) -> None:
        """Store a key (through KeyStore: 0600) and decode the device's last frame with it."""
        try:
            self.keys.add(address, key.value)
            self.keys.save()
        except (KeyFileError, ValueError, OSError) as exc:  # messages name no key
            self.notify(f"could not save the key: {plain(exc)}", severity="error", markup=False)
            return
        self.notify(f"key saved to {plain(self.keys.path)}", markup=False)
        dev = self.fleet.devices.get(address)
        if dev is not None and dev.last_advertisement is not None:
            self.ingest(dev.last_advertisement)

    # -- actions ----------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_alerts(self) -> None:
        if not isinstance(self.screen, AlertsScreen):
            self.push_screen(AlertsScreen())

    def action_record(self) -> None:
        if self.cannot_record is not None:
            self.notify(self.cannot_record, severity="warning", timeout=10, markup=False)
            return
        if self.recorder is not None:
            rec, self.recorder = self.recorder, None
            rec.close()
            self.notify(
                f"recording stopped: {rec.count} advertisements in {plain(rec.path)}", markup=False
            )
        else:
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            path = self.record_dir / f"dashboard-{stamp}.jsonl"
            try:
                self.recorder = JsonlWriter(
                    path, source=self.source_label or "dashboard", **self._demo_keys_beside(path)
                )
            except OSError as exc:
                self.notify(f"cannot record: {plain(exc)}", severity="error", markup=False)
                return
            self.notify(f"recording to {plain(path)}", markup=False)
        self._refresh_status()

    def _demo_keys_beside(self, path: Path) -> dict[str, str]:
        """In the demo, the emulated devices' published test keys go beside the recording and
        its header names them, so `decode REC --keys REC.keys.toml` decodes every frame (issue
        10 item 2). Never for real devices: a user's keys are not copied next to a capture."""
        if not self.demo:
            return {}
        store = KeyStore(Path(f"{path}.keys.toml"))
        for entry in self.keys.entries():
            store.add(entry.address, entry.key, name=entry.name)
        for name in self.fleet.banks.specs:  # the demo's banks replay as banks (issue 20)
            store.add_bank(name, self.keys.bank_table(name))
        return {"keys": store.save().name}

    # -- status -----------------------------------------------------------------------------
    def status_parts(self) -> list[Part]:
        """The status line's parts with their priority (0 = kept at any width)."""
        parts: list[Part] = []
        if self.demo:
            parts.append((1, Text(" DEMO — emulated devices ", style="bold reverse")))
        elif self.source_label:
            parts.append((4, outside(self.source_label)))
        if self.source_error:
            parts.append((1, outside(self.source_error, style="red")))
        if self.status_note:
            parts.append((1, outside(self.status_note, style="bold yellow")))
        elif self.source_done:
            parts.append((3, Text("source ended", style="dim")))
        if self.skipped:
            parts.append((2, Text(f"{len(self.skipped)} corrupt records skipped", "yellow")))
        if self.recorder is not None:
            parts.append((1, Text("● REC", style="bold red")))
            parts.append((4, outside(self.recorder.path.name)))  # the name only when it fits
        counts, unknown = self.fleet.code_totals()
        if counts or unknown:
            text = Text(
                ", ".join(f"{n} {s.name.lower()}" for s, n in sorted(counts.items(), reverse=True)),
                style="bold",
            )
            if unknown:
                text.append(", " if counts else "")
                text.append(f"{unknown} codes unknown", style="bold yellow")
            text.append(" (a: alerts)")
            parts.append((0, text))
        else:
            parts.append((0, Text("no active codes", style="green")))
        parts.append((3, Text(f"{len(self.fleet.devices)} devices")))
        return parts

    def status_text(self) -> str:
        return "  ·  ".join(text.plain for _, text in self.status_parts())

    def set_status_note(self, text: str | None) -> None:
        """A condition of the source shown on the status line until cleared."""
        self.status_note = None if text is None else plain(text)
        self._refresh_status()

    def _refresh_status(self) -> None:
        screen = self.screen
        if isinstance(screen, FleetScreen):
            screen.refresh_status()

    def _flash(self) -> None:
        bars = list(self.screen.query(StatusBar))
        for bar in bars:
            bar.add_class("-flash")

        def unflash() -> None:
            for bar in bars:
                bar.remove_class("-flash")

        self.set_timer(1.5, unflash)

    def _tick(self) -> None:
        screen = self.screen
        if isinstance(screen, FleetScreen) and ready(screen):
            screen.refresh_status()
            screen.refresh_all()
