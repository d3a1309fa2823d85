"""The broker connection: one aiomqtt client (paho-mqtt 2.x underneath), kept up for weeks.

- Connects with the bridge's last will (`<prefix>/bridge/<instance>/availability` = offline,
  retained).
- On every (re)connect re-sends the bridge, discovery, availability and latest states
  (`Publisher.bridge_online`), then whatever queued up meanwhile.
- While disconnected, messages wait in an *outbox keyed by topic* (or `Outgoing.key`): a newer
  message replaces an older one on the same topic, so memory is bounded by the number of topics
  and every device's latest state survives an outage of any length.
- Failures are one line each (`say`), never a traceback and never the password, and the next
  attempt waits 1, 2, 4 … 60 s.
- Listens to `<discovery_prefix>/status`: when Home Assistant comes online it gets the configs
  again (HA's recommendation), and to the retained discovery documents once after connecting, to
  clear those this instance published for devices removed from the keys file while `serve` was
  not running (`Publisher.stale_configs`: another instance's are left alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import re
import socket
import ssl
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from victron_ble_bms.reconnect import Backoff

from .config import MqttConfig
from .publisher import Outgoing

# paho/aiomqtt log socket errors themselves; serve says each problem once, in its own words.
# Their log is shown with `victron-bms -vv` (debug) only.
_CLIENT_LOG = logging.getLogger("victron_ble_bms.mqtt.client")

CLEANUP_WINDOW_S = 2.0  # how long to collect retained discovery documents after connecting
BATCH = 256  # messages published concurrently
OUTBOX_LIMIT = 100_000  # topics; beyond it the oldest non-retained message is dropped
REFUSED = "the broker refused the user name or password"


def describe(exc: BaseException, password: str | None = None) -> str:
    """One line for a connection problem, without a password."""
    inner: BaseException = exc
    seen = 0
    while inner.__cause__ is not None and seen < 5:  # aiomqtt wraps OSError/SSLError
        inner, seen = inner.__cause__, seen + 1
    if isinstance(inner, ssl.SSLCertVerificationError):
        text = f"TLS certificate not accepted: {inner.verify_message or inner.reason}"
    elif isinstance(inner, ssl.SSLError):
        text = f"TLS error: {inner.reason or inner}"
    elif isinstance(inner, ConnectionRefusedError):
        text = "connection refused (is the broker running on that port?)"
    elif isinstance(inner, OSError) and inner.strerror:
        text = inner.strerror
    else:
        # aiomqtt re-raises socket and TLS errors as MqttError(str(original)) without a cause.
        text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)) or type(exc).__name__
        lowered = text.lower()
        if "not authori" in lowered or "bad user name or password" in lowered:
            text = REFUSED
        elif "connection refused" in lowered:
            text = "connection refused (is the broker running on that port?)"
        elif "certificate verify failed" in lowered:
            detail = text.split("certificate verify failed:", 1)[-1].strip(" )(")
            text = f"TLS certificate not accepted: {detail}"
    text = " ".join(text.split())
    if password:
        text = text.replace(password, "***")
    return text[:300]


class Session(Protocol):
    """What the link asks of what it publishes for: `Publisher` (decoded states) or
    `receivers.forward.RawForwarder` (`serve --publish-raw`)."""

    def bridge_online(self) -> list[Outgoing]: ...
    def bridge_offline(self) -> list[Outgoing]: ...
    def rediscover(self) -> list[Outgoing]: ...
    def will(self) -> Outgoing: ...
    def stale_configs(self, found: Mapping[str, str | None]) -> list[Outgoing]: ...


class Link:
    def __init__(
        self,
        cfg: MqttConfig,
        publisher: Session,
        *,
        say: Callable[[str], None],
        client_id: str | None = None,
    ) -> None:
        if cfg.broker is None:
            raise ValueError("no broker configured")
        self.cfg = cfg
        self.broker = cfg.broker
        self.publisher = publisher
        self.say = say
        self.client_id = client_id or cfg.client_id or f"victron-bms-{uuid.uuid4().hex[:10]}"
        self.outbox: OrderedDict[str, Outgoing] = OrderedDict()
        self.connected = False
        self.published = 0
        self.dropped = 0
        self.connects = 0
        debug = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
        _CLIENT_LOG.setLevel(logging.DEBUG if debug else logging.CRITICAL)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._cleaned = False
        self.fatal: str | None = None  # why run() gave up for good (credentials refused at start)

    # --- feeding ---------------------------------------------------------------------------
    def send(self, messages: Iterable[Outgoing]) -> None:
        for m in messages:
            key = m.key or m.topic
            if key in self.outbox:
                del self.outbox[key]  # the newer message replaces it, and goes last
            self.outbox[key] = m
        while len(self.outbox) > OUTBOX_LIMIT:
            self._drop_one()
        if self.outbox:
            self._wake.set()

    def _drop_one(self) -> None:
        for key, m in self.outbox.items():
            if not m.retain:
                del self.outbox[key]
                self.dropped += 1
                return
        self.outbox.popitem(last=False)
        self.dropped += 1

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def flush(self, timeout: float) -> bool:
        """Wait until every queued message was published, at most `timeout` seconds; True when
        the outbox is empty. A message leaves the outbox only once its publish completed, so
        an empty outbox means nothing is in flight either (a capture's last states, issue 18)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.outbox:
            if loop.time() >= deadline or self._stop.is_set() or self.fatal is not None:
                return False
            await asyncio.sleep(0.05)
        return True

    # --- connection ------------------------------------------------------------------------
    def _tls(self) -> ssl.SSLContext | None:
        if not self.broker.tls:
            return None
        context = ssl.create_default_context(cafile=self.cfg.cafile)
        return context

    def _client(self) -> Any:
        import aiomqtt

        will = self.publisher.will()
        client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            username=self.broker.username,
            password=self.cfg.password,
            identifier=self.client_id,
            will=aiomqtt.Will(will.topic, will.payload, qos=will.qos, retain=True),
            keepalive=self.cfg.keepalive_s,
            tls_context=self._tls(),
            timeout=10,
            logger=_CLIENT_LOG,
            # paho leaves Nagle on: a small state message would wait for the previous one's
            # ACK (benchmarks/serve.py measured the latency with and without).
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        client.pending_calls_threshold = 4 * BATCH  # batches are deliberate, not a backlog
        return client

    async def run(self) -> None:
        """Connect, publish, reconnect — until `stop()`. Never raises for broker trouble."""
        import aiomqtt

        backoff = Backoff()
        while not self._stop.is_set():
            try:
                client = self._client()
                async with client:
                    self.connected = True
                    self.connects += 1
                    backoff.reset()
                    self.say(f"connected to {self.broker}")
                    await self._session(client)
                    return  # stopped cleanly
            except (aiomqtt.MqttError, OSError, ssl.SSLError) as exc:
                was_connected, self.connected = self.connected, False
                what = "lost the connection to" if was_connected else "cannot connect to"
                text = describe(exc, self.cfg.password)
                if self.connects == 0 and text == REFUSED:
                    # Refused at start: retrying cannot help, and a service that exits 0 here
                    # looks healthy. Once it has worked, a refusal is retried (a broker
                    # being reconfigured).
                    self.fatal = f"{what} {self.broker}: {text}"
                    self.say(self.fatal + "; check the user in the URL and the password")
                    return
                self.say(f"{what} {self.broker}: {text}; retrying in {backoff.text()}")
            except Exception as exc:  # noqa: BLE001 - weeks unattended: report, retry, go on
                self.say(
                    f"MQTT connection failed unexpectedly ({type(exc).__name__}: "
                    f"{describe(exc, self.cfg.password)}); retrying in {backoff.text()}"
                )
            finally:
                self.connected = False
            await backoff.wait(self._stop)

    async def _session(self, client: Any) -> None:
        # Configs, availability, states of everything known, ahead of what queued meanwhile.
        first = self.publisher.bridge_online()
        queued = list(self.outbox.values())
        self.outbox.clear()
        self.send(first)
        self.send(queued)
        disc = self.cfg.discovery_prefix
        self._cleaned = not self.cfg.discovery
        if self.cfg.discovery:
            await client.subscribe(f"{disc}/status", qos=1)
            await client.subscribe(f"{disc}/device/+/config", qos=1)
        self._demo = bool(getattr(self.publisher, "demo", False))
        self._leftovers = set()
        if self._demo:  # its prefix is its own: whatever an earlier (killed) run left there
            await client.subscribe(f"{self.cfg.topic_prefix}/#", qos=1)
        receiver = asyncio.create_task(self._receive(client))
        try:
            if self.cfg.discovery:
                asyncio.get_running_loop().call_later(CLEANUP_WINDOW_S, self._wake.set)
            await self._drain(client)
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiver
        # Stopping cleanly: say so (the last will only fires on an unclean loss). Stopped within
        # the clean-up window: what it found is still looked at (a demo removes all it owns).
        last = [] if self._cleaned else self.publisher.stale_configs(self._found)
        last += self.publisher.bridge_offline()
        if self._demo:  # a demo leaves nothing under its prefix
            done = {m.topic for m in last}
            last += [Outgoing(t, b"", True, 1) for t in sorted(self._leftovers - done)]
        for m in last:
            await client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain, timeout=5)

    async def _drain(self, client: Any) -> None:
        loop = asyncio.get_running_loop()
        cleanup_at = loop.time() + CLEANUP_WINDOW_S if self.cfg.discovery else None
        while not self._stop.is_set():
            if cleanup_at is not None and loop.time() >= cleanup_at:
                cleanup_at = None
                self._cleaned = True
                with contextlib.suppress(Exception):
                    await client.unsubscribe(f"{self.cfg.discovery_prefix}/device/+/config")
                    if self._demo:
                        await client.unsubscribe(f"{self.cfg.topic_prefix}/#")
                self.send(self.publisher.stale_configs(self._found))
            if not self.outbox:
                self._wake.clear()
                await self._wake.wait()
                continue
            # A batch in flight at once: awaiting each publish alone costs a loop turn apiece.
            batch = list(itertools.islice(self.outbox.items(), BATCH))
            await asyncio.gather(
                *(
                    client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain, timeout=10)
                    for _, m in batch
                )
            )  # on failure every message stays in the outbox for the next connection
            for key, m in batch:
                # Sent: drop it unless a newer message for the topic arrived meanwhile.
                if self.outbox.get(key) is m:
                    del self.outbox[key]
            self.published += len(batch)

    _found: dict[str, str | None] = {}  # replaced per connection
    _demo = False
    _leftovers: set[str] = set()  # noqa: RUF012 - retained topics under a demo's prefix

    async def _receive(self, client: Any) -> None:
        from .discovery import owner

        self._found = {}
        status = f"{self.cfg.discovery_prefix}/status"
        async for message in client.messages:
            topic = str(message.topic)
            if topic == status:
                if bytes(message.payload or b"").strip().lower() == b"online":
                    # Spread the load when many bridges answer the same birth message.
                    await asyncio.sleep(random.uniform(0.2, 2.0))  # noqa: S311
                    self.send(self.publisher.rediscover())
            elif (
                self._demo
                and message.retain
                and message.payload
                and topic.startswith(f"{self.cfg.topic_prefix}/")
            ):
                if len(self._leftovers) < 100_000:
                    self._leftovers.add(topic)
            elif message.retain and message.payload and topic.endswith("/config"):
                parts = topic.split("/")
                if len(parts) >= 3 and len(self._found) < 100_000:
                    # Only who published it is kept (its `via_device`): the cleanup removes
                    # nothing another instance published.
                    data = message.payload
                    raw = data.encode() if isinstance(data, str) else data
                    self._found[parts[-2]] = owner(bytes(raw)) if isinstance(raw, bytes) else None
