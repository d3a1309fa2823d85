"""How the long-running commands (scan, record --source ble, serve) end: Ctrl-C, SIGTERM from
systemd, or --duration."""

from __future__ import annotations

import asyncio
import contextlib
import signal


def stop_event(duration: float | None) -> asyncio.Event:
    """An event set by SIGINT/SIGTERM or `duration` seconds from now, on the running loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not available on Windows' event loop, nor outside the main thread: then Ctrl-C
        # arrives as KeyboardInterrupt instead.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    return stop
