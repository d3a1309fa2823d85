"""The connection to a Signal K server: deltas over its WebSocket stream, kept up for weeks.

- Connects to `ws://host:port/signalk/v1/stream?subscribe=none` (we only send) with aiohttp's
  client, the token (if any) in an `Authorization: Bearer` header — never in the URL, which
  servers log.
- Before connecting asks the server whether it needs a login (`/skServer/loginStatus`, the
  endpoint signalk-server's own admin UI uses): with security on and no token that can write,
  it makes a device access request (`access.py`) and waits for the admin's approval. Without
  this a server with security on silently drops every delta from a reader-only connection.
- On every (re)connect first reads which of our notifications the server holds raised (an
  earlier run's: `leftover.py`), then sends the whole picture (`Publisher.connected`), then
  what queued up meanwhile. While disconnected, messages wait in an outbox keyed like the MQTT
  link's: a newer message for the same battery, path or notification replaces the older one,
  so memory is bounded by the number of paths and the latest state survives an outage of any
  length.
- Failures are one line each (`say`), never a traceback and never the token; the next attempt
  waits 1, 2, 4 … 60 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from victron_ble_bms.reconnect import Backoff

from .access import AccessStore
from .config import SignalKConfig
from .mapping import NOTIFICATIONS
from .publisher import Delta, Outgoing, Publisher

POLL_S = 2.0  # how often a pending access request is asked about
HTTP_TIMEOUT_S = 10.0
OUTBOX_LIMIT = 100_000  # messages; beyond it the oldest is dropped
BATCH = 256
FLUSH_S = 5.0  # on stop, how long queued messages may still take to go out


class AccessProblem(Exception):
    """Security on and no way to write (yet): the message says what the user can do."""


class _Stopped(Exception):
    """stop() while waiting for an approval."""


def describe(exc: BaseException, secret: str | None = None) -> str:
    """One line for a connection problem, without the token."""
    import aiohttp

    if isinstance(exc, aiohttp.WSServerHandshakeError):
        text = f"the server refused the WebSocket ({exc.status} {exc.message})"
    elif isinstance(exc, aiohttp.ClientConnectorCertificateError):
        text = f"TLS certificate not accepted: {exc.certificate_error}"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        inner = exc.os_error
        if isinstance(inner, ConnectionRefusedError):
            text = "connection refused (is signalk-server running on that port?)"
        else:
            text = inner.strerror or str(inner) or type(inner).__name__
    elif isinstance(exc, asyncio.TimeoutError | TimeoutError):
        text = "no answer (timed out)"
    elif isinstance(exc, aiohttp.ClientResponseError):
        text = f"HTTP {exc.status} {exc.message}"
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    if secret:
        text = text.replace(secret, "***")
    return text[:300]


class Link:
    def __init__(
        self,
        cfg: SignalKConfig,
        publisher: Publisher,
        *,
        say: Callable[[str], None],
        store: AccessStore | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        if cfg.server is None:
            raise ValueError("no Signal K server configured")
        self.cfg = cfg
        self.server = cfg.server
        self.publisher = publisher
        self.say = say
        self.store = store or AccessStore(cfg.access_file)
        self.poll_s = poll_s
        self.outbox: OrderedDict[tuple[str, str], Delta] = OrderedDict()
        self.connected = False
        self.sent = 0
        self.dropped = 0
        self.connects = 0
        self._token: str | None = None
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()

    # --- feeding ---------------------------------------------------------------------------
    def send(self, messages: Iterable[Outgoing]) -> None:
        for key, message in messages:
            self.outbox.pop(key, None)  # the newer message replaces it, and goes last
            self.outbox[key] = message
        while len(self.outbox) > OUTBOX_LIMIT:
            self.outbox.popitem(last=False)
            self.dropped += 1
        if self.outbox:
            self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    # --- running ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Authorize, connect, send, reconnect — until `stop()`. Never raises for server trouble."""
        import aiohttp

        backoff = Backoff()
        timeout = aiohttp.ClientTimeout(total=None, connect=HTTP_TIMEOUT_S, sock_read=None)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while not self._stop.is_set():
                was_connected = False
                try:
                    token = await self._authorize(http)
                    if self._stop.is_set() and not self.outbox:
                        return
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    async with http.ws_connect(
                        self.server.stream_url, headers=headers, heartbeat=30.0, autoping=True
                    ) as ws:
                        self.connected = was_connected = True
                        self.connects += 1
                        backoff.reset()
                        self.say(f"connected to Signal K server {self.server}")
                        await self._left_raised(http, token)
                        await self._session(ws)
                        if self._stop.is_set():
                            return
                        raise ConnectionError("the server closed the stream")
                except _Stopped:
                    return
                except AccessProblem as exc:
                    self.say(f"Signal K server {self.server}: {exc}; retrying in {backoff.text()}")
                except aiohttp.WSServerHandshakeError as exc:
                    if exc.status == 401 and token and not self.cfg.token:
                        self.store.update(self.server.http_base, token=None)
                        self.say(
                            f"Signal K server {self.server} no longer accepts the token it "
                            "gave; asking for access again"
                        )
                        continue
                    self.say(
                        f"cannot connect to Signal K server {self.server}: "
                        f"{describe(exc, token)}; retrying in {backoff.text()}"
                    )
                except (aiohttp.ClientError, OSError, TimeoutError, ConnectionError) as exc:
                    what = "lost the connection to" if was_connected else "cannot connect to"
                    self.say(
                        f"{what} Signal K server {self.server}: {describe(exc, self._token)}; "
                        f"retrying in {backoff.text()}"
                    )
                except Exception as exc:  # noqa: BLE001 - weeks unattended: report, retry, go on
                    self.say(
                        f"Signal K connection failed unexpectedly ({type(exc).__name__}: "
                        f"{describe(exc, self._token)}); retrying in {backoff.text()}"
                    )
                finally:
                    self.connected = False
                await backoff.wait(self._stop)

    async def _left_raised(self, http: Any, token: str | None) -> None:
        """Tell the publisher which of our notifications the server holds raised (an earlier
        run's, `leftover.py`), before the picture is sent. Best effort: a server that does not
        answer keeps them as before, and the session goes on."""
        path = "/signalk/v1/api/vessels/self/" + NOTIFICATIONS.replace(".", "/")
        try:
            status, tree = await asyncio.wait_for(self._get_json(http, path, token), HTTP_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - best effort: any failure leaves things as they were
            return
        if status == 200:
            self.publisher.found_raised(tree)

    async def _session(self, ws: Any) -> None:
        import aiohttp

        first = self.publisher.connected()
        queued = list(self.outbox.items())
        self.outbox.clear()
        self.send(first)
        self.send(queued)
        reader = asyncio.create_task(self._read(ws))
        loop = asyncio.get_running_loop()
        flush_until: float | None = None
        try:
            while not reader.done():
                if self._stop.is_set():
                    # Stopping: what is queued (a replayed capture's last states) still goes,
                    # for a few seconds at most.
                    flush_until = flush_until or loop.time() + FLUSH_S
                    if not self.outbox or loop.time() > flush_until:
                        break
                elif not self.outbox:
                    self._wake.clear()
                    waiter = asyncio.create_task(self._wake.wait())
                    await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    continue
                batch = list(self.outbox.items())[:BATCH]
                for key, message in batch:
                    await ws.send_str(json.dumps(message, separators=(",", ":")))
                    if self.outbox.get(key) is message:  # unless a newer one came meanwhile
                        del self.outbox[key]
                    self.sent += 1
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            if self._stop.is_set():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY), 5)

    async def _read(self, ws: Any) -> None:
        """Until the stream closes: the hello and anything else the server says are ignored
        (with subscribe=none it sends nothing more); a close ends the session."""
        import aiohttp

        async for msg in ws:
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR):
                break

    # --- security ----------------------------------------------------------------------------
    async def _get_json(self, http: Any, path: str, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with http.get(self.server.http_base + path, headers=headers) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
            return response.status, body

    async def _authorize(self, http: Any) -> str | None:
        """The token to connect with (None: the server needs none); waits for an approval."""
        origin = self.server.http_base
        token = self.cfg.token or self.store.token(origin)
        self._token = token
        status, login = await self._get_json(http, "/skServer/loginStatus", token)
        if status != 200 or not isinstance(login, dict):
            return token  # not signalk-server (or too old): try with what we have
        if not login.get("authenticationRequired"):
            return token
        if login.get("status") == "loggedIn":
            if login.get("userLevel") in ("readwrite", "admin"):
                return token
            raise AccessProblem(
                "the token only allows reading; give this device read/write permission in the "
                "server's Security → Devices"
            )
        if self.cfg.token:
            raise AccessProblem(
                "the server refused the token from the config file or environment (expired, or "
                "from another server?)"
            )
        if token:
            self.store.update(origin, token=None)
            self.say(f"Signal K server {self.server} no longer accepts its token; asking again")
        if login.get("allowDeviceAccessRequests") is False:
            raise AccessProblem(
                "security is on and device access requests are off: allow them in the server's "
                "Security settings, or give a token ([signalk] token or VICTRON_BMS_SIGNALK_TOKEN)"
            )
        self._token = token = await self._request_access(http)
        return token

    async def _request_access(self, http: Any) -> str:
        origin = self.server.http_base
        href = self.store.pending(origin)
        if href is None:
            body = {
                "clientId": self.store.client_id(),
                "description": self.cfg.description,
                "permissions": "readwrite",
            }
            url = origin + "/signalk/v1/access/requests"
            async with http.post(url, json=body) as response:
                try:
                    reply = await response.json(content_type=None)
                except ValueError:
                    reply = None
            if not isinstance(reply, dict) or not isinstance(reply.get("href"), str):
                message = reply.get("message") if isinstance(reply, dict) else None
                if response.status == 400 and message and "already requested" in str(message):
                    # Pending from an earlier run whose href was lost: ask under a new clientId
                    # next time (the admin can deny the orphan).
                    self.store.forget_client_id()
                    raise AccessProblem(
                        "an earlier access request from this device is still pending; asking "
                        "again as a new device (deny the older one in Security → Access Requests)"
                    )
                raise AccessProblem(
                    f"the access request was refused (HTTP {response.status}"
                    + (f": {str(message)[:200]}" if message else "")
                    + ")"
                )
            href = str(reply["href"])
            if not href.startswith("/"):
                raise AccessProblem("the server's answer to the access request has no usable href")
            self.store.update(origin, href=href)
            self.say(
                f"asked Signal K server {self.server} for access as "
                f'"{self.cfg.description}": approve it in the server\'s admin UI under '
                "Security → Access Requests"
            )
        return await self._wait_for_approval(http, href)

    async def _wait_for_approval(self, http: Any, href: str) -> str:
        origin = self.server.http_base
        while not self._stop.is_set():
            status, reply = await self._get_json(http, href)
            if status == 404:  # the server restarted and forgot the request: ask again
                self.store.update(origin, href=None)
                return await self._request_access(http)
            if isinstance(reply, dict) and reply.get("state") == "COMPLETED":
                self.store.update(origin, href=None)
                access = reply.get("accessRequest")
                access = access if isinstance(access, dict) else {}
                permission = access.get("permission")
                token = access.get("token")
                if permission == "APPROVED" and isinstance(token, str) and token:
                    self.store.update(origin, token=token)
                    self.say(f"Signal K server {self.server} approved the access request")
                    return token
                if permission == "DENIED":
                    raise AccessProblem("the server's admin denied the access request")
                raise AccessProblem(
                    f"the access request ended without a token (status {reply.get('statusCode')})"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.poll_s)
        raise _Stopped
