"""Advertisements from remote receivers over MQTT (aiomqtt), merged and checked.

`advertisements(client_or_url, topics)` is what `serve --source mqtt` iterates. Given a
connected `aiomqtt.Client`, it subscribes and reads from it (the caller owns the connection,
its reconnects and back-off, and may publish on the same client). Given a URL, it connects by
itself and reconnects with back-off, one log line per failure, until it is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiomqtt

from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.advertisement import Advertisement

from .formats import MessageError, parse_message
from .tracker import Receivers

log = logging.getLogger("victron_ble_bms.receivers")

# Theengs Gateway and OpenMQTTGateway (home/<gateway>/BTtoMQTT/<mac>) and our own raw topic.
DEFAULT_TOPICS = ("home/+/BTtoMQTT/+", "victron-ble-bms/raw/+")
PASSWORD_ENV = "VICTRON_BMS_MQTT_PASSWORD"  # noqa: S105 - the name, not a password
# Messages waiting in the client: a burst beyond this is dropped by aiomqtt (with a warning)
# rather than growing memory without limit.
MAX_QUEUED_MESSAGES = 10_000
SILENCE_CHECK_S = 5.0
_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)


class BrokerUrlError(ValueError):
    """A broker URL we cannot use."""


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int
    username: str | None
    tls: bool

    def __str__(self) -> str:  # never the password
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker_url(url: str) -> Broker:
    """`mqtt://[user@]host[:port]` or `mqtts://…`. A password in the URL is refused: it would
    show in the process list; it comes from $VICTRON_BMS_MQTT_PASSWORD."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BrokerUrlError(f"broker URL: {exc}") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise BrokerUrlError(
            f"broker URL must start with mqtt:// or mqtts://, got {plain(url)[:60]!r}"
        )
    if parts.password is not None:
        raise BrokerUrlError(f"put the broker password in ${PASSWORD_ENV}, not in the URL")
    if not parts.hostname:
        raise BrokerUrlError("broker URL has no host")
    tls = parts.scheme == "mqtts"
    username = unquote(parts.username) if parts.username else None
    return Broker(parts.hostname, port or (8883 if tls else 1883), username, tls)


def client_for(broker: Broker, **kwargs: object) -> aiomqtt.Client:
    """An aiomqtt client for `broker` (password from the environment, TLS verified)."""
    password = os.environ.get(PASSWORD_ENV) if broker.username else None
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=password,
        tls_context=ssl.create_default_context() if broker.tls else None,
        max_queued_incoming_messages=MAX_QUEUED_MESSAGES,
        **kwargs,  # type: ignore[arg-type]
    )


async def advertisements(
    client_or_url: aiomqtt.Client | str,
    topics: Sequence[str] = DEFAULT_TOPICS,
    *,
    receivers: Receivers | None = None,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[Advertisement]:
    """First copies of Victron advertisements heard by remote receivers.

    `receivers` keeps the bookkeeping (pass your own to read best receiver per device,
    silent receivers and counters); bad messages are counted there and logged in one line.
    """
    tracker = receivers if receivers is not None else Receivers()
    if isinstance(client_or_url, str):
        broker = parse_broker_url(client_or_url)
        async for adv in _reconnecting(broker, topics, tracker, clock):
            yield adv
        return
    async for adv in _read(client_or_url, topics, tracker, clock):
        yield adv


async def _read(
    client: aiomqtt.Client, topics: Sequence[str], tracker: Receivers, clock: Callable[[], float]
) -> AsyncIterator[Advertisement]:
    for topic in topics:
        await client.subscribe(topic)
    watcher = asyncio.ensure_future(_watch_silence(tracker, clock))
    try:
        async for message in client.messages:
            if not any(message.topic.matches(t) for t in topics):
                continue  # another subscription on a shared client
            adv = handle(tracker, message.topic.value, message.payload, clock())
            if adv is not None:
                yield adv
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


def handle(tracker: Receivers, topic: str, payload: object, now: float) -> Advertisement | None:
    """One message through parsing and merging; bad ones are counted, never raised."""
    if isinstance(payload, str):
        payload = payload.encode()
    if not isinstance(payload, bytes | bytearray):
        tracker.malformed(plain(topic)[:80], "empty or non-binary payload", now)
        return None
    try:
        heard = parse_message(topic, bytes(payload), now)
    except MessageError as exc:
        tracker.malformed(plain(topic)[:80], str(exc), now)
        return None
    return tracker.heard(heard, now)


async def _watch_silence(tracker: Receivers, clock: Callable[[], float]) -> None:
    while True:
        await asyncio.sleep(SILENCE_CHECK_S)
        tracker.check_silent(clock())


async def _reconnecting(
    broker: Broker, topics: Sequence[str], tracker: Receivers, clock: Callable[[], float]
) -> AsyncIterator[Advertisement]:
    failures = 0
    while True:
        try:
            async with client_for(broker) as client:
                if failures:
                    log.warning("connected to %s again", broker)
                failures = 0
                async for adv in _read(client, topics, tracker, clock):
                    yield adv
        except aiomqtt.MqttError as exc:
            delay = _BACKOFF_S[min(failures, len(_BACKOFF_S) - 1)]
            failures += 1
            log.warning("broker %s: %s; retrying in %g s", broker, plain(str(exc)), delay)
            await asyncio.sleep(delay)
