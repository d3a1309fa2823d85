"""Drive the dashboard in tests: a source the test pushes into, a settable clock, a key store."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from textual.pilot import Pilot
from victron_ble_bms.tui.app import DashboardApp

from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.keys import KeyStore

from . import frames


class PushSource:
    """An async iterable the test feeds one advertisement at a time."""

    def __init__(self, items: Iterable[Advertisement] = ()) -> None:
        self.queue: asyncio.Queue[Advertisement | None] = asyncio.Queue()
        for item in items:
            self.queue.put_nowait(item)

    def push(self, *items: Advertisement) -> None:
        for item in items:
            self.queue.put_nowait(item)

    def end(self) -> None:
        self.queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[Advertisement]:
        while (item := await self.queue.get()) is not None:
            yield item


class Clock:
    def __init__(self, now: float = frames.T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def key_store(path: Path | None = None, *, with_keys: bool = True) -> KeyStore:
    store = KeyStore(path)
    if with_keys:
        for address, key in frames.KEYS.items():
            store.add(address, key, name=frames.NAMES[address])
    return store


def make_app(
    source: PushSource, *, clock: Clock | None = None, keys: KeyStore | None = None, **kw: object
) -> DashboardApp:
    return DashboardApp(
        source,
        keys=keys if keys is not None else key_store(),
        clock=clock or Clock(),
        tick_s=None,
        **kw,  # type: ignore[arg-type]
    )


async def settle(pilot: Pilot[None], source: PushSource | None = None) -> None:
    """Let the consumer take everything queued and the screen handle the updates."""
    for _ in range(50):
        await pilot.pause()
        if (source is None or source.queue.empty()) and not pilot.app._message_queue.qsize():
            break
    flush = getattr(pilot.app, "flush", None)  # updates wait for the next frame: take it now
    if callable(flush):
        flush()
    await pilot.pause()


def screen_text(app: DashboardApp) -> str:
    """What the terminal shows, as plain text rows (read back from the SVG screenshot)."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in _SVG_TEXT.finditer(app.export_screenshot()):
        x, y = float(m.group(1)), float(m.group(2))
        rows.setdefault(y, []).append((x, html.unescape(m.group(3)).replace("\xa0", " ")))
    lines = []
    for y in sorted(rows):
        line = ""
        for x, text in sorted(rows[y]):
            line = line.ljust(round(x / 12.2)) + text
        lines.append(line.rstrip())
    return "\n".join(lines)


_SVG_TEXT = re.compile(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>')
