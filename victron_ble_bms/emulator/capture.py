"""Advertisers that need no radio: a capture file, or nothing at all."""

from __future__ import annotations

import os
from typing import Any

from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.capture.jsonl import JsonlWriter


class CaptureAdvertiser:
    """Writes every published frame to a JSON-lines capture (timestamps are simulated time)."""

    def __init__(self, path: str | os.PathLike[str], **header: Any) -> None:
        self.path = path
        self.header = header
        self._writer: JsonlWriter | None = None

    @property
    def count(self) -> int:
        return 0 if self._writer is None else self._writer.count

    async def start(self) -> None:
        if self._writer is None:
            self._writer = JsonlWriter(self.path, source="emulator", **self.header)

    async def publish(self, advertisement: Advertisement) -> None:
        if self._writer is None:
            await self.start()
        assert self._writer is not None  # noqa: S101 - set by start()
        self._writer.write(advertisement)

    async def repeat(self, advertisement: Advertisement) -> None:
        """A repeated reception of the same reading: a capture records it like any frame."""
        await self.publish(advertisement)

    async def remove(self, address: str) -> None:
        """A capture has no registrations: a silent device simply has no lines."""

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class NullAdvertiser:
    """`--advertise none`: frames go nowhere (useful with `--capture`, or to time the models)."""

    async def start(self) -> None:
        pass

    async def publish(self, advertisement: Advertisement) -> None:
        pass

    async def remove(self, address: str) -> None:
        pass

    async def close(self) -> None:
        pass


class FanOut:
    """Publish to several advertisers at once (e.g. BlueZ and a capture)."""

    def __init__(self, *targets: Any) -> None:
        self.targets = targets

    async def start(self) -> None:
        for t in self.targets:
            await t.start()

    async def publish(self, advertisement: Advertisement) -> None:
        for t in self.targets:
            await t.publish(advertisement)

    async def repeat(self, advertisement: Advertisement) -> None:
        """Only to targets that record repeats (a capture); radios repeat by themselves."""
        for t in self.targets:
            repeat = getattr(t, "repeat", None)
            if repeat is not None:
                await repeat(advertisement)

    async def remove(self, address: str) -> None:
        for t in self.targets:
            await t.remove(address)

    async def close(self) -> None:
        for t in self.targets:
            await t.close()
