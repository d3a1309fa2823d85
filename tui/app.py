"""The dashboard app. The source is built outside and injected: any async iterable of
advertisements (decoded here with the keys file) or of already decoded readings."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterable
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from victron_ble_bms.protocol import LynxSmartBmsRecord, SmartBmsRecord, SmartLithiumRecord
from victron_ble_bms.protocol.codes import Severity
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture.jsonl import JsonlWriter
from victron_ble_bms.sources.keys import KeyFileError, KeyStore
from victron_ble_bms.sources.readings import KeyStatus, Reading, decode_advertisement

from .messages import CodesStarted, DeviceUpdated, OpenDevice
from .screens.alerts import AlertsScreen
from .screens.base import FleetScreen
from .screens.battery import BatteryScreen
from .screens.detail import DetailScreen
from .screens.devices import DeviceListScreen
from .screens.help import HelpScreen
from .screens.key_dialog import KeyDialog
from .screens.lynx import LynxScreen
from .screens.smart_bms import SmartBmsScreen
from .state import ActiveCode, Clock, Fleet
from .widgets.status_bar import StatusBar

Source = AsyncIterable[Advertisement | Reading]

DETAIL_SCREENS: dict[type, type[DetailScreen]] = {
    SmartLithiumRecord: BatteryScreen,
    LynxSmartBmsRecord: LynxScreen,
    SmartBmsRecord: SmartBmsScreen,
}

# Readings handled before the consumer yields to the event loop: large enough to keep up with
# a flood, small enough that key presses and repaints are never starved.
_BATCH = 50


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
    ) -> None:
        super().__init__()
        self.source = source
        self.keys = keys if keys is not None else KeyStore()
        self.demo = demo
        self.source_label = source_label
        self.fleet = Fleet(clock)
        self.fleet.names.update({e.address: e.name for e in self.keys.entries() if e.name})
        self.record_dir = record_dir or Path.cwd()
        self.recorder: JsonlWriter | None = None
        self.source_done = False
        self.source_error: str | None = None
        self._tick_s = tick_s
        self._toasts = toasts
        self._last_adv: dict[str, Advertisement] = {}
        self._queued: set[str] = set()  # devices with a DeviceUpdated still in the queue
        self._started: list[ActiveCode] = []  # codes waiting for the queued CodesStarted
        self.max_queue = 0  # deepest the message queue got (the load test reads it)
        self.handled = 0

    # -- lifecycle --------------------------------------------------------------------------
    def get_default_screen(self) -> DeviceListScreen:
        return DeviceListScreen()

    def on_mount(self) -> None:
        self.sub_title = self.source_label
        self.run_worker(self._consume(), name="source", group="source", exit_on_error=False)
        if self._tick_s:
            self.set_interval(self._tick_s, self._tick)

    def on_unmount(self) -> None:
        if self.recorder is not None:
            self.recorder.close()

    # -- the source -------------------------------------------------------------------------
    def decode(self, item: Advertisement | Reading) -> Reading:
        if isinstance(item, Advertisement):
            return decode_advertisement(item, self.keys)
        if item.status in (KeyStatus.NO_KEY, KeyStatus.MISMATCH) and (
            item.advertisement.address in self.keys
        ):
            return decode_advertisement(item.advertisement, self.keys)
        return item

    def ingest(self, item: Advertisement | Reading) -> None:
        """Apply one item to the fleet and queue (at most) one repaint per device."""
        reading = self.decode(item)
        adv = reading.advertisement
        self._last_adv[adv.address] = adv
        if self.recorder is not None:
            self.recorder.write(adv)
        started = self.fleet.update(reading)
        if adv.address not in self._queued:
            self._queued.add(adv.address)
            self.post_message(DeviceUpdated(adv.address))
        if started:
            if not self._started:
                self.post_message(CodesStarted([]))
            self._started.extend(started)
        self.max_queue = max(self.max_queue, self._message_queue.qsize())

    async def _consume(self) -> None:
        n = 0
        try:
            async for item in self.source:
                self.ingest(item)
                n += 1
                if n % _BATCH == 0:
                    await asyncio.sleep(0)
        except Exception as exc:  # a source failure is shown, never a traceback
            self.source_error = f"source stopped: {exc}"
            self.notify(self.source_error, severity="error", timeout=30)
        self.source_done = True
        self._refresh_status()

    # -- message handlers -------------------------------------------------------------------
    def on_device_updated(self, message: DeviceUpdated) -> None:
        self._queued.discard(message.address)
        self.handled += 1
        screen = self.screen
        if isinstance(screen, FleetScreen):
            screen.device_changed(message.address)

    def on_codes_started(self, message: CodesStarted) -> None:
        started, self._started = self._started, []
        alarms = [a for a in started if a.code.severity >= Severity.ALARM]
        for active in started[:5] if self._toasts else ():
            alarm = active.code.severity >= Severity.ALARM
            self.notify(
                f"{active.device}: {active.code.id} {active.code.title}",
                title="New alarm" if alarm else "New warning",
                severity="error" if alarm else "warning",
            )
        if alarms:
            self.bell()
            self._flash()
        self._refresh_status()

    def on_open_device(self, message: OpenDevice) -> None:
        dev = self.fleet.devices.get(message.address)
        if dev is None:
            return
        if dev.status in (KeyStatus.NO_KEY, KeyStatus.MISMATCH):
            problem = (
                "This device's key does not fit: it probably got a new key after a PIN change."
                if dev.status is KeyStatus.MISMATCH
                else "This device's readings are encrypted; without its key only its name shows."
            )

            def stored(key: str | None, address: str = dev.address) -> None:
                if key:
                    self.add_key(address, key)

            self.push_screen(KeyDialog(dev.address, dev.name, problem), stored)
            return
        screen_cls = DETAIL_SCREENS.get(type(dev.record)) if dev.record else None
        if screen_cls is None:
            self.notify(f"{dev.name}: {dev.error or 'no decoded reading yet'}", severity="warning")
            return
        self.push_screen(screen_cls(dev.address))

    def add_key(self, address: str, key: str) -> None:
        """Store a key (the keys file is rewritten, 0600) and decode the device's last frame."""
        try:
            self.keys.add(address, key)
            self.keys.save()
        except (KeyFileError, ValueError) as exc:  # InvalidKey is a ValueError; no key in text
            self.notify(f"could not save the key: {exc}", severity="error")
            return
        self.notify(f"key saved to {self.keys.path}")
        last = self._last_adv.get(address)
        if last is not None:
            self.ingest(last)

    # -- actions ----------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_alerts(self) -> None:
        if not isinstance(self.screen, AlertsScreen):
            self.push_screen(AlertsScreen())

    def action_record(self) -> None:
        if self.recorder is not None:
            rec, self.recorder = self.recorder, None
            rec.close()
            self.notify(f"recording stopped: {rec.count} advertisements in {rec.path}")
        else:
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            path = self.record_dir / f"dashboard-{stamp}.jsonl"
            try:
                self.recorder = JsonlWriter(path, source=self.source_label or "dashboard")
            except OSError as exc:
                self.notify(f"cannot record: {exc}", severity="error")
                return
            self.notify(f"recording to {path}")
        self._refresh_status()

    # -- status -----------------------------------------------------------------------------
    def status_text(self) -> str:
        parts = []
        if self.demo:
            parts.append("[b reverse] DEMO — emulated devices [/]")
        elif self.source_label:
            parts.append(self.source_label)
        if self.source_error:
            parts.append(f"[red]{self.source_error}[/]")
        elif self.source_done:
            parts.append("[dim]source ended[/]")
        if self.recorder is not None:
            parts.append(f"[red]● REC[/] {self.recorder.path.name}")
        counts: dict[Severity, int] = {}
        for dev in self.fleet.devices.values():
            for active in dev.codes.values():
                counts[active.code.severity] = counts.get(active.code.severity, 0) + 1
        if counts:
            text = ", ".join(
                f"{n} {s.name.lower()}" for s, n in sorted(counts.items(), reverse=True)
            )
            parts.append(f"[b]{text}[/] (a: alerts)")
        else:
            parts.append("[green]no active codes[/]")
        parts.append(f"{len(self.fleet.devices)} devices")
        return "  ·  ".join(parts)

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
        if isinstance(screen, FleetScreen):
            screen.refresh_status()
            screen.refresh_all()
