"""Helpers for unmodified bleak on a private bus (fixture and runner: tests/dbus_fixture.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.dbus_fixture import private_bus, run


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a state change we cannot subscribe to (polls; never a timed assertion)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def next_item(queue: asyncio.Queue[Any], timeout: float = 10.0) -> Any:
    return await asyncio.wait_for(queue.get(), timeout)


Factory = Callable[..., Awaitable[Any]]

__all__ = ["private_bus", "run", "wait_until"]
