"""The web sink: an aiohttp server in `serve`'s event loop, reading the board.

Pushing updates (Server-Sent Events on `/events`): `reading` only notes which device changed
(O(1), decoding never waits for a viewer). About four times a second `_flush` encodes each
changed device once and offers the same bytes to every viewer. A viewer keeps at most one
pending event per device (a newer state replaces the older one), so a slow phone costs at most
one state per device, never a growing queue; a viewer whose socket takes longer than
WRITE_TIMEOUT_S to accept a write is dropped (its browser reconnects and starts from a fresh
snapshot). At most MAX_VIEWERS streams at once; more get 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from victron_ble_bms.hub import Board
from victron_ble_bms.sources.readings import Reading

from .auth import Listen, masked, token_matches
from .state import device_object, encode, snapshot

PUSH_S = 0.25  # how often changed devices go out: coalesces a burst of readings
HEARTBEAT_S = 15.0  # an SSE comment this often: the page notices a dead server within ~35 s
WRITE_TIMEOUT_S = 10.0  # a viewer that cannot take a write for this long is dropped
MAX_VIEWERS = 32
MAX_DIRTY = 4096  # more changed addresses than this between flushes (a flood): resend all
RETRY_MS = 2000  # EventSource reconnect delay after the server went away
BIND_RETRY_S = 10.0
COOKIE = "vbms_token"
COOKIE_MAX_AGE_S = 400 * 24 * 3600  # the longest browsers keep a cookie

# Every page, answer and error: no inline script or style, nothing from elsewhere, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

# name → content type; all in victron_ble_bms/web/static, served from memory.
STATIC = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "manifest.webmanifest": "application/manifest+json",
    "icon.svg": "image/svg+xml",
    "icon-192.png": "image/png",
    "icon-512.png": "image/png",
}
# Public, the same for everyone, no data: served without the token (a browser fetches the
# manifest and its icons without cookies).
PUBLIC = frozenset(f"/{name}" for name in STATIC if name != "index.html")
PAGES = frozenset({"/", "/api/state", "/events"})
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})

UNAUTHORIZED = (
    "This page needs its token. Open the address serve printed (…/?token=…) once on this "
    "device; the token is in the http-token file beside serve's config.\n"
)


def _static_files() -> dict[str, bytes]:
    root = resources.files("victron_ble_bms.web") / "static"
    return {name: (root / name).read_bytes() for name in STATIC}


def sse(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


class Viewer:
    """One open /events stream: the latest pending event per key, and a wake-up."""

    __slots__ = ("closed", "pending", "wake")

    def __init__(self) -> None:
        self.pending: dict[str, bytes] = {}
        self.wake = asyncio.Event()
        self.closed = False

    def offer(self, key: str, data: bytes) -> None:
        self.pending.pop(key, None)  # the newest goes last, after what it replaces
        self.pending[key] = data
        self.wake.set()

    def take(self) -> bytes:
        data = b"".join(self.pending.values())
        self.pending.clear()
        self.wake.clear()
        return data


class WebSink:
    """`serve --http`: see the module docstring."""

    def __init__(
        self,
        board: Board,
        listen: Listen,
        *,
        token: str | None,
        token_path: Path | None = None,
        show_token: bool = False,
        say: Callable[[str], None],
    ) -> None:
        self.board = board
        self.listen = listen
        self.token = token
        self.token_path = token_path
        self.show_token = show_token
        self.say = say
        self.name = f"web page {listen.url()}"
        self.files = _static_files()
        self.viewers: set[Viewer] = set()
        self.dirty: set[str] = set()
        self.banks_seen = board.banks_version  # the board judges the banks (ticked by serve)
        self.resync = False
        self.known: set[str] = set()
        self.stale: dict[str, bool] = {}
        self.served = 0
        self.dropped = 0
        self._stop = asyncio.Event()

    # --- Sink --------------------------------------------------------------------------------

    def reading(self, item: Reading, /) -> None:
        if self.resync:
            return
        self.dirty.add(item.advertisement.address)
        if len(self.dirty) > MAX_DIRTY:
            self.dirty.clear()
            self.resync = True

    def tick(self, now: float, /) -> None:
        """Devices that went stale (or came back) since the last tick get sent again."""
        stale = {e.address: self.board.stale(e) for e in self.board}
        for address, is_stale in stale.items():
            if self.stale.get(address, is_stale) != is_stale:
                self.dirty.add(address)
        self.stale = stale

    def keys_changed(self) -> None:
        self.resync = True

    def stop(self) -> None:
        self._stop.set()

    def summary(self) -> str:
        return f"{self.served} web requests, {self.dropped} slow viewers dropped"

    async def run(self) -> None:
        app = self.app()
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        try:
            while not await self._bind(runner):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), BIND_RETRY_S)
                if self._stop.is_set():
                    return
            pusher = asyncio.create_task(self._push())
            try:
                await self._stop.wait()
            finally:
                pusher.cancel()
                for viewer in self.viewers:
                    viewer.closed = True
                    viewer.wake.set()
        finally:
            await runner.cleanup()

    async def _bind(self, runner: web.AppRunner) -> bool:
        site = web.TCPSite(runner, self.listen.host, self.listen.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            self.say(
                f"web page: cannot listen on {self.listen.url()}: {exc.strerror or exc} — "
                f"retrying every {BIND_RETRY_S:.0f} s"
            )
            return False
        port = self.listen.port
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or ()
        for sock in sockets:  # port 0: the one the system chose
            port = sock.getsockname()[1]
            break
        self._announce(port)
        return True

    def _announce(self, port: int) -> None:
        url = self.listen.url(_shown_host(self.listen.host), port)
        if self.token is None:
            self.say(f"web page on {url} (this machine only)")
            return
        where = f" (kept in {self.token_path})" if self.token_path else ""
        if self.show_token:
            self.say(f"web page on {url} — open {url}?token={self.token} once on each phone{where}")
            _print_qr(f"{url}?token={self.token}")
        else:
            self.say(
                f"web page on {url} — needs its token {masked(self.token)}{where}: open "
                f"{url}?token=<token> once on each phone"
            )

    # --- pushing ------------------------------------------------------------------------------

    async def _push(self) -> None:
        while True:
            await asyncio.sleep(PUSH_S)
            try:
                self._flush()
            except Exception as exc:  # noqa: BLE001 - one line; the next flush tries again
                self.say(f"web page: update failed: {type(exc).__name__}: {exc}")

    def _flush(self) -> None:
        banks_changed = self.board.banks_version != self.banks_seen
        if not (self.dirty or self.resync or banks_changed):
            return
        self.banks_seen = self.board.banks_version
        board = self.board
        now = board.clock()
        if self.resync or not self.viewers:
            self.resync = False
            self.dirty.clear()
            self.known = {e.address for e in board}
            if self.viewers:
                data = sse("snapshot", encode(snapshot(board, now)))
                for viewer in self.viewers:
                    viewer.pending.clear()
                    viewer.offer("*", data)
            return
        present = {e.address for e in board}
        events: list[tuple[str, bytes]] = [
            (address, sse("gone", encode(address))) for address in self.known - present
        ]
        self.known = present
        for address in self.dirty:
            entry = board.get(address)
            if entry is not None:
                events.append((address, sse("device", encode(device_object(board, entry, now)))))
        self.dirty.clear()
        if banks_changed:
            events.append(("banks", sse("banks", encode(board.bank_objects()))))
        for viewer in self.viewers:
            for key, data in events:
                viewer.offer(key, data)

    # --- HTTP ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=1024)
        app.on_response_prepare.append(_security_headers)
        app.router.add_get("/", self._file("index.html"))
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/events", self._events)
        for name in STATIC:
            if name != "index.html":
                app.router.add_get(f"/{name}", self._file(name))
        return app

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.served += 1
        if self.listen.local:
            # Only this machine can connect; a page elsewhere that rebinds its own name to
            # 127.0.0.1 still sends its own Host: refuse it (DNS rebinding).
            if _hostname(request.host) not in _LOCAL_HOSTS:
                return web.Response(status=421, text="wrong host for this page\n")
            return await handler(request)
        if request.path in PUBLIC or self.token is None:
            return await handler(request)
        given = request.query.get("token")
        if given is not None:
            if not token_matches(given, self.token):
                return web.Response(status=401, text=UNAUTHORIZED)
            # Once: the cookie from now on, and the token out of the address bar and history.
            target = request.path if request.path in PAGES else "/"
            response = web.HTTPSeeOther(target)
            response.set_cookie(
                COOKIE,
                self.token,
                httponly=True,
                samesite="Strict",
                path="/",
                max_age=COOKIE_MAX_AGE_S,
            )
            return response
        bearer = request.headers.get("Authorization", "")
        if token_matches(request.cookies.get(COOKIE), self.token) or (
            bearer.startswith("Bearer ") and token_matches(bearer[7:].strip(), self.token)
        ):
            return await handler(request)
        return web.Response(status=401, text=UNAUTHORIZED)

    def _file(self, name: str) -> Callable[[web.Request], Any]:
        body, content_type = self.files[name], STATIC[name]

        async def handler(request: web.Request) -> web.Response:
            return web.Response(
                body=body,
                headers={"Content-Type": content_type, "Cache-Control": "no-cache"},
            )

        return handler

    async def _state(self, request: web.Request) -> web.Response:
        board = self.board
        return web.Response(
            text=encode(snapshot(board, board.clock())),
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Cache-Control": "no-store",
            },
        )

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if len(self.viewers) >= MAX_VIEWERS:
            return web.Response(status=503, text="too many open pages; close one\n")
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        viewer = Viewer()
        board = self.board
        first = f"retry: {RETRY_MS}\n".encode() + sse(
            "snapshot", encode(snapshot(board, board.clock()))
        )
        self.viewers.add(viewer)
        try:
            await asyncio.wait_for(response.write(first), WRITE_TIMEOUT_S)
            while not viewer.closed:
                try:
                    await asyncio.wait_for(viewer.wake.wait(), HEARTBEAT_S)
                    data = viewer.take()
                except TimeoutError:
                    data = b"event: ping\ndata: 0\n\n"
                if data:
                    await asyncio.wait_for(response.write(data), WRITE_TIMEOUT_S)
        except TimeoutError:
            self.dropped += 1  # too slow: its browser reconnects and gets a fresh snapshot
        except (ConnectionError, RuntimeError):
            pass  # the page went away
        finally:
            self.viewers.discard(viewer)
        return response


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def _hostname(host: str) -> str:
    """`Host` without its port: `127.0.0.1:8080` → `127.0.0.1`, `[::1]:80` → `[::1]`."""
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _shown_host(host: str) -> str:
    """The address a phone should open: for 0.0.0.0/:: this machine's LAN address."""
    if host not in ("0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
        return host
    import socket

    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: picks the outgoing interface, sends nothing
        return str(s.getsockname()[0])
    return socket.gethostname()


def _print_qr(text: str) -> None:
    """A QR code of the URL in the terminal (only on a terminal, and only when the optional
    pure-Python `segno` is installed): point the phone's camera at it."""
    if not sys.stderr.isatty():
        return
    try:
        import segno  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return
    with contextlib.suppress(Exception):
        segno.make(text, error="l").terminal(out=sys.stderr, compact=True)
