"""Advertisements from remote receivers over MQTT (aiomqtt), merged and checked.

`advertisements(client_or_url, topics)` is what `serve --source mqtt` iterates. Given a
connected `aiomqtt.Client`, it subscribes and reads from it (the caller owns the connection,
its reconnects and back-off, and may publish on the same client). Given a URL, it connects by
itself and reconnects with back-off, one log line per failure, until it is cancelled; given
serve's `MqttConfig` it uses its password (config file or environment) and `cafile` too. The
broker URL and password rules are `victron_ble_bms.mqtt.config`'s (one parser for both).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from victron_ble_bms.mqtt.config import ConfigError, MqttConfig, resolve
from victron_ble_bms.mqtt.link import describe
from victron_ble_bms.reconnect import Backoff
from victron_ble_bms.safetext import plain
from victron_ble_bms.sources.advertisement import Advertisement

from .formats import MessageError, parse_message
from .intake import Intake
from .tracker import Receivers

log = logging.getLogger("victron_ble_bms.receivers")
T = TypeVar("T")

# Theengs Gateway and OpenMQTTGateway (home/<gateway>/BTtoMQTT/<mac>) and our own raw topic.
# Their last wills (home/<gateway>/LWT = "offline", ours <prefix>/raw/<id>/availability) say at
# once when a gateway drops off.
DEFAULT_PREFIX = "victron-ble-bms"


def default_topics(prefix: str = DEFAULT_PREFIX) -> tuple[str, ...]:
    """The gateways' topics, and our own raw topics under `prefix` (serve's --topic-prefix)."""
    return ("home/+/BTtoMQTT/+", "home/+/LWT", f"{prefix}/raw/+", f"{prefix}/raw/+/availability")


DEFAULT_TOPICS = default_topics()
# Messages waiting in a client that is not ours (a caller's shared client, the dashboard's
# state reader): a burst beyond this is dropped by aiomqtt (with a warning) rather than growing
# memory without limit. Our own receivers' client sorts and bounds its queue itself (intake.py).
MAX_QUEUED_MESSAGES = 10_000
# The largest packet our readers accept. paho-mqtt 2.2 sets no limit of its own on what it
# reads: it takes a packet's announced length (up to 256 MB) and reads it whole into memory
# (`Client._packet_read`) before anyone sees it, so `MAX_PAYLOAD_BYTES` could only refuse a
# 10 MB message after it was in memory. MQTT 5 lets a client say the largest packet it accepts
# (CONNECT property Maximum Packet Size, MQTT 5.0 §3.1.2.11.4); the broker must then not send it
# a larger one and drops the message for this client instead (mosquitto does since 1.6). Gateway
# messages are ≤ 4 KiB and states ≤ 16 KiB (remote.py), so this is a generous bound. A broker
# that speaks only MQTT 3.1.1 refuses the version; we then connect with 3.1.1, where no such
# property exists, and the payload checks after reading are the only limit (said in one line).
MAX_PACKET_BYTES = 64 * 1024
# MQTT 5.0 reason code 0x84, "Unsupported Protocol Version"; paho gives a 3.1.1 broker's
# refusal (return code 1) as the same reason code.
_UNSUPPORTED_PROTOCOL = 0x84
SILENCE_CHECK_S = 5.0


class _OncePer(logging.Filter):
    """aiomqtt logs every message it drops from a full queue; under a flood that would be a
    line per message. Let one such line through per interval, with the count since."""

    def __init__(self, interval_s: float = 10.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.dropped = 0
        self._last: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if "queue is full" not in record.getMessage():
            return True
        self.dropped += 1
        now = time.monotonic()
        if self._last is not None and now - self._last < self.interval_s:
            return False
        self._last = now
        record.msg = f"incoming queue full: dropped {self.dropped} messages so far (a flood?)"
        record.args = ()
        return True


_client_log = logging.getLogger("victron_ble_bms.receivers.mqtt")
_client_log.addFilter(_OncePer())


def config_for(target: str | MqttConfig) -> MqttConfig:
    """A broker URL (password from $VICTRON_BMS_MQTT_PASSWORD) or serve's own config."""
    if isinstance(target, MqttConfig):
        return target
    return resolve(MqttConfig(), url=target)


def client_for(cfg: MqttConfig, *, v5: bool = False, **kwargs: Any) -> aiomqtt.Client:
    """An aiomqtt client for the configured broker (TLS verified against `cafile` or the system).

    `v5`: connect with MQTT 5 and ask the broker for packets of at most `MAX_PACKET_BYTES`."""
    broker = cfg.broker
    if broker is None:
        raise ConfigError("no broker configured")
    if v5:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.MaximumPacketSize = MAX_PACKET_BYTES
        kwargs |= {"protocol": aiomqtt.ProtocolVersion.V5, "properties": properties}
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=cfg.password if broker.username else None,
        tls_context=ssl.create_default_context(cafile=cfg.cafile) if broker.tls else None,
        max_queued_incoming_messages=MAX_QUEUED_MESSAGES,
        logger=_client_log,
        **kwargs,
    )


async def advertisements(
    client_or_url: aiomqtt.Client | str | MqttConfig,
    topics: Sequence[str] | None = DEFAULT_TOPICS,
    *,
    receivers: Receivers | None = None,
    clock: Callable[[], float] = time.time,
    first: Callable[[str], bool] | None = None,
) -> AsyncIterator[Advertisement]:
    """First copies of Victron advertisements heard by remote receivers.

    `receivers` keeps the bookkeeping (pass your own to read best receiver per device,
    silent receivers and counters); bad messages are counted there and logged in one line.
    When this function connects by itself, a flood cannot starve the devices that matter:
    gateways' status and addresses for which `first(address)` is true (serve: the keys file)
    are read first, known addresses next, new ones last and at a bounded rate (intake.py).
    """
    tracker = receivers if receivers is not None else Receivers()
    filters = tuple(topics) if topics else DEFAULT_TOPICS
    if isinstance(client_or_url, aiomqtt.Client):
        async for adv in _read(client_or_url, filters, tracker, clock):
            yield adv
        return
    cfg = config_for(client_or_url)  # ConfigError: a URL we cannot use
    say = tracker.on_event if tracker.on_event is not None else log.warning
    intake = Intake(first=first, tracker=tracker, say=say)

    async def read(client: aiomqtt.Client) -> AsyncIterator[Advertisement]:
        async for adv in _read(client, filters, tracker, clock):
            yield adv

    async for adv in reconnecting(cfg, read, queue_type=intake.queue_type()):
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
    parts = topic.split("/")
    if len(parts) == 3 and parts[2] == "LWT":  # Theengs Gateway / OpenMQTTGateway last will
        tracker.gateway_status(plain(parts[1])[:64], bytes(payload[:16]), now)
        return None
    if len(parts) >= 4 and parts[-1] == "availability" and parts[-3] == "raw":  # ours, retained
        tracker.gateway_status(plain(parts[-2])[:64], bytes(payload[:16]), now)
        return None
    try:
        heard = parse_message(topic, bytes(payload), now)
        return tracker.heard(heard, now)
    except MessageError as exc:
        tracker.malformed(plain(topic)[:80], str(exc), now)
    except Exception as exc:  # noqa: BLE001 - a parser bug: one message lost, never the stream
        tracker.malformed(plain(topic)[:80], f"unreadable ({type(exc).__name__})", now)
    return None


async def _watch_silence(tracker: Receivers, clock: Callable[[], float]) -> None:
    while True:
        await asyncio.sleep(SILENCE_CHECK_S)
        tracker.check_silent(clock())


async def reconnecting(
    cfg: MqttConfig,
    read: Callable[[aiomqtt.Client], AsyncIterator[T]],
    say: Callable[[str], None] | None = None,
    *,
    queue_type: type[asyncio.Queue[aiomqtt.Message]] | None = None,
) -> AsyncIterator[T]:
    """Items of `read(client)`, reconnecting with back-off; one line per failure (to `say`, or
    the log), never the password. `queue_type`: the client's incoming queue (intake.py).

    MQTT 5 first, with the packet size limit (`MAX_PACKET_BYTES`); MQTT 3.1.1 from the moment a
    broker refuses version 5."""
    tell = say if say is not None else log.warning
    backoff = Backoff()
    failures = 0
    v5 = True
    while True:
        try:
            options: dict[str, Any] = {} if queue_type is None else {"queue_type": queue_type}
            async with client_for(cfg, v5=v5, **options) as client:
                if failures:
                    tell(f"connected to {cfg.broker} again")
                failures = 0
                backoff.reset()
                async for item in read(client):
                    yield item
        except aiomqtt.MqttError as exc:
            if v5 and _refused_version(exc):
                v5 = False
                tell(
                    f"broker {cfg.broker} does not speak MQTT 5: connecting with 3.1.1, where "
                    f"messages larger than {MAX_PACKET_BYTES // 1024} KiB are refused only "
                    "once received"
                )
                continue
            failures += 1
            text = describe(exc, cfg.password)
            tell(f"broker {cfg.broker}: {text}; retrying in {backoff.text()}")
            await backoff.wait()


def _refused_version(exc: aiomqtt.MqttError) -> bool:
    rc = getattr(exc, "rc", None)
    return isinstance(rc, ReasonCode) and rc.value == _UNSUPPORTED_PROTOCOL
