"""Errors the event loop meets in callbacks nobody awaits, as one line — never a traceback.

A connection closed under us leaves work behind that fails with a closed-socket error: dbus-fast
leaves futures failed with `BrokenPipeError` when the D-Bus daemon dies, and paho (under
aiomqtt) asks the loop to watch its socket from a callback that can run after a reconnect has
closed that socket (`add_writer` → EBADF). The owner of the connection already reports the loss
in one line (the scanner's watchdog, the MQTT link), so these go to the debug log. Anything else
gets one line on the log (issue 9 item 6; issue 11 "never prints a traceback").
"""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import Any

log = logging.getLogger(__name__)

_GONE_ERRNOS = {errno.EBADF, errno.EPIPE, errno.ENOTCONN, errno.ECONNRESET, errno.ENOENT}


def connection_gone(exc: BaseException) -> bool:
    """The connection or its socket is gone (refused, reset, closed under us)."""
    if isinstance(exc, ConnectionError | FileNotFoundError | EOFError):
        return True
    return isinstance(exc, OSError) and exc.errno in _GONE_ERRNOS


def one_line_loop_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Install the handler on `loop` (the running one of scan, serve …)."""

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if exc is not None and connection_gone(exc):
            log.debug("after a connection was closed: %s", exc)
            return
        what = f": {type(exc).__name__}: {exc}" if exc is not None else ""
        log.error("%s%s", context.get("message", "event loop error"), what)

    loop.set_exception_handler(handler)
