"""Fixtures: a real private dbus-daemon with the virtual BlueZ, driving unmodified bleak."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import hypothesis  # noqa: F401 — see below
import pytest

from victron_ble_bms.emulator.dbus_daemon import PrivateBus

# Imported early on purpose: when only this directory runs, hypothesis's pytest plugin imports
# hypothesis lazily in the terminal summary, deep in pluggy's stack, and CPython 3.11.7's AST
# validator then fails with "AST constructor recursion depth mismatch" (CPython gh-106905, fixed
# in 3.11.8). The whole suite imports hypothesis early anyway (tests/protocol).


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
            await close_bleak_bus()

    return asyncio.run(guarded())


async def close_bleak_bus() -> None:
    """bleak keeps one D-Bus connection per event loop; close ours before the loop ends."""
    import logging

    from bleak.backends.bluezdbus import manager

    instance = manager._global_instances.pop(asyncio.get_running_loop(), None)
    bus = getattr(instance, "_bus", None)
    log = logging.getLogger(manager.__name__)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        if bus is not None and bus.connected:
            bus.disconnect()
            with contextlib.suppress(Exception):
                await bus.wait_for_disconnect()
        task = getattr(instance, "_bus_watcher_task", None)
        if task is not None:
            await asyncio.wait({task}, timeout=5)
    finally:
        log.setLevel(level)


async def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait for a state change we cannot subscribe to (polls; never a timed assertion)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
