"""`serve`'s MQTT sink: the publishing rules (`publisher.py`) on a connection (`link.py`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from .config import MqttConfig
from .link import Link, Session
from .publisher import Outgoing, Publisher

T = TypeVar("T")


class MqttSink(Generic[T]):
    """Hands each item to `handle` (the publisher's `reading`, or a receiver's raw forwarder)
    and queues what it returns on the link; ticks and keys-file changes go to `publisher`."""

    def __init__(
        self,
        cfg: MqttConfig,
        session: Session,
        handle: Callable[[T], list[Outgoing]],
        *,
        say: Callable[[str], None],
        publisher: Publisher | None = None,
    ) -> None:
        self.link = Link(cfg, session, say=say)
        self.handle = handle
        self.publisher = publisher
        self.name = f"MQTT broker {cfg.broker}"

    def reading(self, item: T, /) -> None:
        self.link.send(self.handle(item))

    def tick(self, now: float, /) -> None:
        if self.publisher is not None:
            self.link.send(self.publisher.tick())

    def keys_changed(self) -> None:
        if self.publisher is not None:
            self.link.send(self.publisher.forget_unkeyed())

    async def run(self) -> None:
        await self.link.run()

    @property
    def failed(self) -> str | None:
        """Why this sink cannot work at all (serve then exits non-zero), or None."""
        return self.link.fatal

    def stop(self) -> None:
        self.link.stop()

    async def flush(self, timeout: float, *, final: bool) -> bool:
        """Before `stop`: publish what is queued, within `timeout`; True when all went out.
        `final` (the source has ended: a capture replayed) also sends every change still held
        back by the publisher's minimum interval, and waits for a connection if there is none."""
        if final and self.publisher is not None:
            self.link.send(self.publisher.pending())
        if not (final or self.link.connected):
            return not self.link.outbox
        return await self.link.flush(timeout)

    def summary(self) -> str:
        return f"{self.link.published} messages published, {len(self.link.outbox)} not sent"
