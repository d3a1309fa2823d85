"""Helpers for unmodified bleak on a private bus (fixture and runner: tests/dbus_fixture.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import hypothesis  # noqa: F401 — see below

from tests.dbus_fixture import private_bus, run

# Imported early on purpose: when only this directory runs, hypothesis's pytest plugin imports
# hypothesis lazily in the terminal summary, deep in pluggy's stack, and CPython 3.11.7's AST
# validator then fails with "AST constructor recursion depth mismatch" (CPython gh-106905, fixed
# in 3.11.8). The whole suite imports hypothesis early anyway (tests/protocol).


async def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait for a state change we cannot subscribe to (polls; never a timed assertion)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


__all__ = ["private_bus", "run", "wait_until"]
