"""Keep a live scan running unattended: notice what kills it, restart, and say so.

bleak tells a scanner nothing when the adapter is unplugged or bluetoothd restarts
(docs/ecosystem.md §3.5 [E1]), so `BluezMonitor` watches BlueZ on its own D-Bus connection:

* `NameOwnerChanged` for `org.bluez` — bluetoothd gone / back;
* `InterfacesRemoved` / `InterfacesAdded` of `org.bluez.Adapter1` — adapter unplugged / back;
* `PropertiesChanged` of the adapter — `Powered` off/on, `Discovering` dropping while we scan.

`Watchdog` runs the scan: on any of these, or on silence (no advertisement at all for
`silence_s`), it stops the scanner, waits with exponential back-off (cut short the moment BlueZ
says the adapter is back) and starts again, reporting every step as a `StatusEvent`. Devices
updating far below their ~1 Hz get a hint naming controller duplicate filtering, and discovery
is restarted every `rediscover_every_s` while such devices exist — the workaround users found
(docs/ecosystem.md §3.3, KV#43). It never exits on these conditions and never raises them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .ble import (
    BUS_GONE,
    CALL_TIMEOUT_S,
    NO_ANSWER,
    BleSource,
    ScanError,
    ScanOptions,
    answered,
    explain,
)
from .devices import DEFAULT_SLOW_INTERVAL_S, DevicesState

log = logging.getLogger(__name__)

BLUEZ = "org.bluez"
ADAPTER_IFACE = "org.bluez.Adapter1"
DBUS = "org.freedesktop.DBus"
OBJECT_MANAGER_IFACE = "org.freedesktop.DBus.ObjectManager"
PROPERTIES_IFACE = "org.freedesktop.DBus.Properties"
BUS_SILENT = f"the D-Bus system bus does not answer (no reply within {CALL_TIMEOUT_S:g} s)"


class EventKind(enum.Enum):
    SCANNING = "scanning"  # scanning started or resumed
    SCAN_FAILED = "scan failed"  # could not start; will retry
    BLUEZ_LOST = "bluetoothd lost"
    BLUEZ_BACK = "bluetoothd back"
    ADAPTER_REMOVED = "adapter removed"
    ADAPTER_ADDED = "adapter added"
    POWERED_OFF = "adapter powered off"
    POWERED_ON = "adapter powered on"
    DISCOVERY_STOPPED = "discovery stopped"  # Discovering went false under us
    SILENCE = "silence"
    SLOW_UPDATES = "slow updates"
    REDISCOVERY = "discovery restarted"
    SUSPECT = "possible replay"
    BUS_LOST = "D-Bus lost"  # the system bus itself is gone (dbus-daemon stopped)


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """Something about the scan (not a device reading); `message` is for people."""

    ts: float
    kind: EventKind
    message: str
    address: str | None = None
    recovery_s: float | None = None  # for SCANNING after a loss: seconds without scanning

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ts": self.ts, "event": self.kind.value, "message": self.message}
        if self.address is not None:
            out["address"] = self.address
        if self.recovery_s is not None:
            out["recovery_s"] = round(self.recovery_s, 3)
        return out


@dataclass(frozen=True, slots=True)
class WatchdogConfig:
    silence_s: float = 60.0  # no advertisement at all for this long → restart the scan
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0  # keeps recovery within ~10 s of the adapter coming back
    slow_interval_s: float = DEFAULT_SLOW_INTERVAL_S
    rediscover_every_s: float = 120.0  # while devices are slow; 0 disables the workaround
    check_every_s: float = 1.0  # how often silence and slow devices are looked at


# --- BlueZ watch --------------------------------------------------------------------------


class BluezMonitor:
    """A dbus-fast connection that reports BlueZ/adapter changes through `on_change(kind, msg)`.

    Linux only; `start()` raises `ScanError` when the system bus cannot be reached.
    """

    def __init__(self, on_change: Callable[[EventKind, str, str | None], None]) -> None:
        self._on_change = on_change
        self._bus: Any = None
        self.owner: str | None = None  # unique name of the current org.bluez owner
        self.adapters: dict[str, bool] = {}  # name → powered

    @property
    def connected(self) -> bool:
        return self._bus is not None and bool(self._bus.connected)

    async def start(self) -> None:
        from dbus_fast import BusType
        from dbus_fast.aio import MessageBus

        try:
            bus = await answered(
                MessageBus(bus_type=BusType.SYSTEM).connect(), CALL_TIMEOUT_S, BUS_SILENT
            )
        except Exception as exc:
            raise explain(exc, ScanOptions()) from None
        self._bus = bus
        bus.add_message_handler(self._on_message)
        try:
            await self._subscribe(bus)
        except ScanError:
            raise
        except Exception as exc:  # the bus went away while we asked
            raise explain(exc, ScanOptions()) from None

    async def _call(self, msg: Any, silent: str) -> Any:
        if self._bus is None:
            raise ScanError(BUS_GONE, bus_gone=True)
        return await answered(self._bus.call(msg), CALL_TIMEOUT_S, silent)

    async def _subscribe(self, bus: Any) -> None:
        from dbus_fast import Message, MessageType

        rules = (
            f"type='signal',sender='{DBUS}',member='NameOwnerChanged',arg0='{BLUEZ}'",
            f"type='signal',interface='{OBJECT_MANAGER_IFACE}',member='InterfacesAdded',"
            "arg0path='/org/bluez/'",
            f"type='signal',interface='{OBJECT_MANAGER_IFACE}',member='InterfacesRemoved',"
            "arg0path='/org/bluez/'",
            f"type='signal',interface='{PROPERTIES_IFACE}',member='PropertiesChanged',"
            f"arg0='{ADAPTER_IFACE}'",
        )
        for rule in rules:
            await self._call(
                Message(
                    destination=DBUS,
                    path="/org/freedesktop/DBus",
                    interface=DBUS,
                    member="AddMatch",
                    signature="s",
                    body=[rule],
                ),
                BUS_SILENT,
            )
        reply = await self._call(
            Message(
                destination=DBUS,
                path="/org/freedesktop/DBus",
                interface=DBUS,
                member="GetNameOwner",
                signature="s",
                body=[BLUEZ],
            ),
            BUS_SILENT,
        )
        self.owner = reply.body[0] if reply.message_type == MessageType.METHOD_RETURN else None
        await self.refresh()

    async def refresh(self) -> None:
        """Re-read the adapter list (Introspect of /org/bluez, then Adapter1.Powered each) —
        cheap even with thousands of devices, unlike GetManagedObjects."""
        from dbus_fast import Message, MessageType
        from dbus_fast.introspection import Node

        self.adapters = {}
        if self._bus is None or self.owner is None:
            return
        no_answer = NO_ANSWER.format(s=CALL_TIMEOUT_S)
        reply = await self._call(
            Message(
                destination=BLUEZ,
                path="/org/bluez",
                interface="org.freedesktop.DBus.Introspectable",
                member="Introspect",
            ),
            no_answer,
        )
        if reply.message_type != MessageType.METHOD_RETURN:
            return
        names = [n.name for n in Node.parse(reply.body[0]).nodes if n.name]
        for name in sorted(names):
            props = await self._call(
                Message(
                    destination=BLUEZ,
                    path=f"/org/bluez/{name}",
                    interface=PROPERTIES_IFACE,
                    member="GetAll",
                    signature="s",
                    body=[ADAPTER_IFACE],
                ),
                no_answer,
            )
            if props.message_type == MessageType.METHOD_RETURN and props.body[0]:
                powered = props.body[0].get("Powered")
                self.adapters[name] = bool(powered.value) if powered is not None else False

    def default_adapter(self) -> str | None:
        """The first powered adapter by name (bleak's choice is from an unordered set)."""
        return next((n for n, p in sorted(self.adapters.items()) if p), None)

    def close(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            with contextlib.suppress(Exception):
                bus.disconnect()

    def _on_message(self, msg: Any) -> None:
        member = msg.member
        try:
            if member == "NameOwnerChanged":
                _name, old, new = msg.body
                if old and not new:
                    self.owner = None
                    self.adapters.clear()
                    self._on_change(EventKind.BLUEZ_LOST, "bluetoothd went away", None)
                elif new:
                    self.owner = new
                    self._on_change(EventKind.BLUEZ_BACK, "bluetoothd is back", None)
            elif member == "InterfacesAdded":
                path, interfaces = msg.body
                name = _adapter_name(path)
                if name is not None and ADAPTER_IFACE in interfaces:
                    powered = interfaces[ADAPTER_IFACE].get("Powered")
                    self.adapters[name] = bool(powered.value) if powered is not None else False
                    self._on_change(EventKind.ADAPTER_ADDED, f"adapter {name} appeared", name)
            elif member == "InterfacesRemoved":
                path, interfaces = msg.body
                name = _adapter_name(path)
                if name is not None and ADAPTER_IFACE in interfaces:
                    self.adapters.pop(name, None)
                    self._on_change(EventKind.ADAPTER_REMOVED, f"adapter {name} removed", name)
            elif member == "PropertiesChanged":
                name = _adapter_name(msg.path or "")
                _iface, changed, _invalidated = msg.body
                if name is None:
                    return
                if "Powered" in changed:
                    on = bool(changed["Powered"].value)
                    self.adapters[name] = on
                    kind = EventKind.POWERED_ON if on else EventKind.POWERED_OFF
                    self._on_change(kind, f"adapter {name} powered {'on' if on else 'off'}", name)
                if "Discovering" in changed and not changed["Discovering"].value:
                    self._on_change(
                        EventKind.DISCOVERY_STOPPED, f"adapter {name} stopped discovering", name
                    )
        except (ValueError, TypeError, AttributeError) as exc:  # a malformed signal
            log.debug("ignored BlueZ signal %s: %s", member, exc)


def _adapter_name(path: str) -> str | None:
    """'/org/bluez/hci0' → 'hci0'; device and other paths → None."""
    parts = path.split("/")
    if len(parts) == 4 and parts[:3] == ["", "org", "bluez"] and parts[3]:
        return parts[3]
    return None


# --- the supervisor -----------------------------------------------------------------------


class Watchdog:
    """Runs a `BleSource`, restarting it as described in the module docstring.

    `emit(event)` receives every `StatusEvent`; `devices` is consulted for slow updates.
    `run()` returns only when `stop()` is called (or the task is cancelled).
    """

    def __init__(
        self,
        source: BleSource,
        emit: Callable[[StatusEvent], None],
        *,
        devices: DevicesState | None = None,
        config: WatchdogConfig | None = None,
        clock: Callable[[], float] = time.time,
        watch_bluez: bool | None = None,
    ) -> None:
        self.source = source
        self.options: ScanOptions = source.options
        self.config = config or WatchdogConfig()
        self.devices = devices
        self._emit = emit
        self._clock = clock
        self._watch = sys.platform.startswith("linux") if watch_bluez is None else watch_bluez
        self._monitor: BluezMonitor | None = None
        self._trouble = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._trouble_reason: tuple[EventKind, str] | None = None
        self._last_adv = time.monotonic()
        self._slow_reported: set[str] = set()
        self._silences = 0  # consecutive silence restarts: each waits longer (up to 8x)
        self.restarts = 0
        # seconds from a loss to scanning again: the latest ones (bounded for months of uptime)
        self.recoveries: collections.deque[float] = collections.deque(maxlen=100)
        self.scanning = False
        self.adapter: str | None = None

    # called by the source's callback
    def saw_advertisement(self) -> None:
        self._last_adv = time.monotonic()
        self._silences = 0

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._trouble.set()

    def _event(self, kind: EventKind, message: str, **kw: Any) -> None:
        self._emit(StatusEvent(self._clock(), kind, message, **kw))

    def _bluez_changed(self, kind: EventKind, message: str, adapter: str | None) -> None:
        ours = adapter is None or self.adapter is None or adapter == self.adapter
        if kind in (EventKind.BLUEZ_BACK, EventKind.ADAPTER_ADDED, EventKind.POWERED_ON):
            if not self.scanning:
                self._event(kind, message)
                self._wake.set()
            return
        if kind is EventKind.DISCOVERY_STOPPED and (self.options.passive or not self.scanning):
            return  # passive scans do not use StartDiscovery
        if ours and self.scanning:
            if self._trouble_reason is None:  # the first cause wins (Powered before Discovering)
                self._trouble_reason = (kind, message)
            self._trouble.set()

    async def _ensure_monitor(self) -> None:
        if not self._watch or (self._monitor is not None and self._monitor.connected):
            return
        if self._monitor is not None:
            self._monitor.close()
        monitor = BluezMonitor(self._bluez_changed)
        try:
            await monitor.start()
        except Exception:
            monitor.close()
            raise
        self._monitor = monitor

    async def _prepare(self) -> None:
        """Check BlueZ and pick the adapter, with a specific error when it cannot work."""
        await self._ensure_monitor()
        monitor = self._monitor
        if monitor is None:
            return
        if monitor.owner is None:
            raise ScanError(
                "bluetoothd is not running (nobody owns org.bluez on the system bus): "
                "start it with 'sudo systemctl start bluetooth'",
                unavailable=True,
            )
        await monitor.refresh()
        wanted = self.options.adapter
        if wanted is not None:
            if wanted not in monitor.adapters:
                raise ScanError(
                    f"no Bluetooth adapter {wanted} (have: "
                    f"{', '.join(monitor.adapters) or 'none'}; check 'bluetoothctl list')",
                    unavailable=True,
                )
            if not monitor.adapters[wanted]:
                raise ScanError(
                    f"Bluetooth adapter {wanted} is powered off: run 'bluetoothctl power on'",
                    unavailable=True,
                )
            self.adapter = wanted
            return
        if not monitor.adapters:
            raise ScanError(
                "no Bluetooth adapter found (check 'bluetoothctl list')", unavailable=True
            )
        chosen = monitor.default_adapter()
        if chosen is None:
            raise ScanError(
                "the Bluetooth adapter is powered off: run 'bluetoothctl power on' "
                "(or 'rfkill unblock bluetooth')",
                unavailable=True,
            )
        self.adapter = chosen

    async def start_once(self) -> None:
        """One attempt to start scanning (raises `ScanError`); used by `run()` and preflight."""
        try:
            await self._prepare()
            if self.adapter is not None and self.source.options.adapter != self.adapter:
                self.source.options = _with_adapter(self.source.options, self.adapter)
            await self.source.start()
        except ScanError:
            raise
        except Exception as exc:  # e.g. the bus went away mid-call: still one clear message
            raise explain(exc, self.options) from None

    async def run(self) -> None:
        backoff = self.config.backoff_initial_s
        lost_at: float | None = None
        last_failure: str | None = None
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                self._trouble.clear()
                self._trouble_reason = None
                try:
                    await self.start_once()
                except ScanError as exc:
                    if lost_at is None:
                        lost_at = time.monotonic()
                    message = str(exc)
                    if message != last_failure:  # say it once, not at every retry
                        last_failure = message
                        if exc.bus_gone:
                            self._event(EventKind.BUS_LOST, message)
                        else:
                            self._event(EventKind.SCAN_FAILED, f"{message}; retrying")
                    await self._sleep(backoff, self._wake)
                    backoff = min(backoff * 2, self.config.backoff_max_s)
                    continue
                self.scanning = True
                last_failure = None
                backoff = self.config.backoff_initial_s
                recovery = None if lost_at is None else time.monotonic() - lost_at
                if recovery is not None:
                    self.recoveries.append(recovery)
                    self._event(
                        EventKind.SCANNING,
                        f"scanning resumed on {self.adapter or 'the adapter'} "
                        f"after {recovery:.1f} s",
                        recovery_s=recovery,
                    )
                else:
                    mode = "passive" if self.options.passive else "active"
                    self._event(
                        EventKind.SCANNING, f"scanning ({mode}) on {self.adapter or 'default'}"
                    )
                lost_at = None
                reason = await self._supervise()
                self.scanning = False
                await self.source.stop()
                if self._stopping.is_set():
                    break
                self.restarts += 1
                kind, message = reason
                if kind is EventKind.REDISCOVERY:
                    self._event(kind, message)
                    continue  # a deliberate restart: no back-off, not a loss
                lost_at = time.monotonic()
                if kind is EventKind.BUS_LOST:
                    self._monitor_stale()
                    continue  # reconnect at once: the next attempt says what is wrong
                self._event(kind, f"{message}; restarting scanning")
                if kind in (EventKind.BLUEZ_LOST, EventKind.ADAPTER_REMOVED):
                    self._monitor_stale()
                await self._sleep(backoff, self._wake)
        finally:
            self.scanning = False
            await self.source.stop()
            if self._monitor is not None:
                self._monitor.close()
                self._monitor = None

    def _monitor_stale(self) -> None:
        """The adapter list is re-read before the next attempt (`_prepare`)."""
        self.adapter = self.options.adapter

    async def _sleep(self, seconds: float, wake: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), seconds)

    async def _supervise(self) -> tuple[EventKind, str]:
        """Wait while scanning; return why scanning must restart."""
        cfg = self.config
        started = time.monotonic()
        self._last_adv = started
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._trouble.wait(), cfg.check_every_s)
            if self._stopping.is_set():
                return (EventKind.SCANNING, "stopped")
            if self._trouble.is_set():
                if self._trouble_reason is not None:
                    return self._trouble_reason
                self._trouble.clear()
            if self._monitor is not None and not self._monitor.connected:
                return (EventKind.BUS_LOST, "lost the connection to the D-Bus system bus")
            now = time.monotonic()
            silence = cfg.silence_s * min(2**self._silences, 8)
            if cfg.silence_s > 0 and now - self._last_adv >= silence:
                self._silences += 1
                return (
                    EventKind.SILENCE,
                    f"no advertisements for {now - self._last_adv:.0f} s",
                )
            slow = self._check_slow()
            if slow and cfg.rediscover_every_s > 0 and now - started >= cfg.rediscover_every_s:
                return (
                    EventKind.REDISCOVERY,
                    f"restarting discovery: {len(slow)} device(s) update slowly "
                    "(controller duplicate filtering workaround)",
                )

    def _check_slow(self) -> list[str]:
        if self.devices is None:
            return []
        slow = [d for d in self.devices.slow_devices(self.config.slow_interval_s)]
        addresses = [d.address for d in slow]
        for dev in slow:
            if dev.address in self._slow_reported:
                continue
            self._slow_reported.add(dev.address)
            interval = dev.interval_s or 0.0
            self._event(
                EventKind.SLOW_UPDATES,
                f"{dev.address} updates every {interval:.0f} s instead of about 1 s: the "
                "Bluetooth controller is probably filtering duplicate advertisements; "
                + (
                    f"discovery will be restarted every {self.config.rediscover_every_s:g} s"
                    if self.config.rediscover_every_s > 0
                    else "enable periodic discovery restarts, or try --passive"
                ),
                address=dev.address,
            )
        self._slow_reported.intersection_update(addresses)
        return addresses


def _with_adapter(options: ScanOptions, adapter: str) -> ScanOptions:
    return ScanOptions(passive=options.passive, adapter=adapter, use_bdaddr=options.use_bdaddr)
