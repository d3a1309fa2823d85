"""Fixtures: a real private dbus-daemon per test, and helpers to drive unmodified bleak on it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import pytest

from victron_ble_bms.emulator.dbus_daemon import PrivateBus


@pytest.fixture
def private_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateBus]:
    """A fresh dbus-daemon; bleak (via dbus-fast) reads DBUS_SYSTEM_BUS_ADDRESS when it connects."""
    if PrivateBus.find_executable() is None:
        pytest.skip(
            "dbus-daemon not installed (Debian package 'dbus'; scripts/test.sh installs it)"
        )
    with PrivateBus() as bus:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
        yield bus


def run(coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
    """Run one test coroutine on a fresh loop with a generous overall timeout."""

    async def guarded() -> Any:
        try:
            return await asyncio.wait_for(coro, timeout)
        finally:
            await _close_bleak_bus()

    return asyncio.run(guarded())


async def _close_bleak_bus() -> None:
    """bleak keeps one D-Bus connection per event loop; close ours before the loop ends."""
    from bleak.backends.bluezdbus import manager

    instance = manager._global_instances.pop(asyncio.get_running_loop(), None)
    bus = getattr(instance, "_bus", None)
    if bus is not None and bus.connected:
        bus.disconnect()
        await bus.wait_for_disconnect()
    task = getattr(instance, "_bus_watcher_task", None)
    if task is not None:
        await asyncio.wait({task}, timeout=5)


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a state change we cannot subscribe to (polls; never a timed assertion)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def next_item(queue: asyncio.Queue[Any], timeout: float = 10.0) -> Any:
    return await asyncio.wait_for(queue.get(), timeout)


Factory = Callable[..., Awaitable[Any]]
