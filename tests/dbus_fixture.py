"""Shared by the D-Bus test directories (tests/bluez, tests/scan): a real private dbus-daemon
per test, and a runner that drives unmodified bleak on it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

from victron_ble_bms.emulator.dbus_daemon import PrivateBus
from victron_ble_bms.sources.ble import close_bleak_bus


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
