"""Live readings for programs: an async iterator over the radio, kept alive by the watchdog.

    from victron_ble_bms.sources.keys import KeyStore
    from victron_ble_bms.sources.live import readings, StatusEvent

    items = readings(KeyStore.load(path))
    async with contextlib.aclosing(items):     # stops the scanner when you break out
        async for item in items:
            if isinstance(item, StatusEvent):  # scanning started/resumed, adapter lost, hints …
                print(item.kind.value, item.message)
            else:                              # a Reading: only *new* ones (repeats dropped)
                item.status, item.record, item.advertisement.address

Every `Reading` is a new reading of a Victron device, decoded with `keys` (any
`Mapping[address, key]`, e.g. a `KeyStore`; it is read at every reading, so keys added while
scanning take effect at once). Devices without a key or with a mismatched key still yield
readings, with `status` NO_KEY / MISMATCH and the header in `frame`. A frame that looks replayed
is yielded and followed by a `StatusEvent` of kind SUSPECT. `status_events=False` yields
readings only (for consumers that take `Reading | Advertisement`, like the dashboard).

For a device table (product, key status, age, rate, RSSI) use `LiveScan` and its `devices`.
The iterator never ends on Bluetooth trouble: it reports it and resumes by itself. Close it
(`aclosing`, or `await items.aclose()`) to stop scanning: Python does not close an async
generator when a loop breaks out of it, only later when it is garbage collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Protocol

from victron_ble_bms.protocol.crypto import KeyLike

from .advertisement import Advertisement
from .ble import BleSource, ScanError, ScanOptions
from .devices import DEFAULT_MAX_DEVICES, DevicesState
from .readings import Reading
from .watchdog import EventKind, StatusEvent, Watchdog, WatchdogConfig

__all__ = [
    "EventKind",
    "LiveScan",
    "ScanError",
    "ScanOptions",
    "StatusEvent",
    "WatchdogConfig",
    "readings",
]

log = logging.getLogger(__name__)

Item = Reading | StatusEvent


class Recorder(Protocol):
    """Where `record=` writes each new Victron advertisement (`JsonlWriter`, `PcapngWriter`)."""

    def write(self, adv: Advertisement) -> None: ...


QUEUE_LIMIT = 10_000  # items waiting for a slow consumer; beyond it readings are dropped


class LiveScan:
    """Scanner + device table + watchdog. Use as `async with LiveScan(keys) as scan:` and
    iterate `scan` (or `scan.items()`); `scan.devices` is the live device table."""

    def __init__(
        self,
        keys: Mapping[str, KeyLike],
        options: ScanOptions | None = None,
        config: WatchdogConfig | None = None,
        *,
        max_devices: int = DEFAULT_MAX_DEVICES,
        record: Recorder | None = None,
        status_events: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.devices = DevicesState(keys, max_devices=max_devices, clock=clock)
        self.source = BleSource(self._on_advertisement, options, clock=clock)
        self.watchdog = Watchdog(
            self.source, self._on_event, devices=self.devices, config=config, clock=clock
        )
        self.record = record
        self.status_events = status_events
        self.dropped = 0  # items lost because the consumer fell more than QUEUE_LIMIT behind
        self.advertisements = 0  # everything bleak reported, repeats included
        self.failed = 0  # advertisements the device table could not take (a bug; logged)
        self._queue: asyncio.Queue[Item] = asyncio.Queue(QUEUE_LIMIT)
        self._task: asyncio.Task[None] | None = None

    async def preflight(self) -> None:
        """Try to start scanning once; `ScanError` says why Bluetooth is unusable.

        Optional: a CLI calls it to fail fast with one clear message; `start()` alone waits
        for Bluetooth to appear instead.
        """
        await self.watchdog.start_once()
        await self.source.stop()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.watchdog.run(), name="victron-bms watchdog")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self.watchdog.stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), 10)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        except Exception as exc:  # the watchdog should never fail; never a traceback
            log.warning("scanner stopped with an error: %s", exc)

    async def __aenter__(self) -> LiveScan:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Item]:
        return self.items()

    async def items(self) -> AsyncIterator[Item]:
        while True:
            yield await self._queue.get()

    # -- feeding ----------------------------------------------------------------------------
    def _put(self, item: Item) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    def _on_event(self, event: StatusEvent) -> None:
        log.info("%s: %s", event.kind.value, event.message)
        if self.status_events:
            self._put(event)

    def _on_advertisement(self, adv: Advertisement) -> None:
        self.advertisements += 1
        self.watchdog.saw_advertisement()
        try:
            update = self.devices.update(adv)
        except Exception as exc:  # one bad frame must never end the scan (issue 9 item 1)
            self.failed += 1
            log.warning("ignored an advertisement from %s: %s", adv.address, type(exc).__name__)
            return
        if update.reading is None:
            return  # not Victron, or a repeat
        if self.record is not None:
            try:
                self.record.write(adv)
            except OSError as exc:
                self.record = None
                text = str(exc)  # RecordingError already says "recording stopped …"
                message = text if "recording stopped" in text else f"recording stopped: {text}"
                self._on_event(StatusEvent(adv.ts, EventKind.SCAN_FAILED, message))
        self._put(update.reading)
        if update.suspicion is not None:  # suspect, or a good frame's note (devices.py)
            self._on_event(
                StatusEvent(adv.ts, EventKind.SUSPECT, update.suspicion, address=adv.address)
            )


async def readings(
    keys: Mapping[str, KeyLike],
    *,
    passive: bool = False,
    adapter: str | None = None,
    config: WatchdogConfig | None = None,
    status_events: bool = True,
    record: Recorder | None = None,
) -> AsyncIterator[Item]:
    """New readings (and status events) from the radio until the consumer stops iterating."""
    scan = LiveScan(
        keys,
        ScanOptions(passive=passive, adapter=adapter),
        config,
        record=record,
        status_events=status_events,
    )
    async with scan:
        async for item in scan:
            yield item
