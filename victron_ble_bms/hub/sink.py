"""The interface between `serve` and what it publishes to."""

from __future__ import annotations

from typing import Protocol, TypeVar

T_contra = TypeVar("T_contra", contravariant=True)


class Sink(Protocol[T_contra]):
    """One destination of `serve`: an MQTT broker, a Signal K server, a web server.

    `reading` takes each new item from the source (a decoded `Reading`; a raw `Advertisement`
    for a receiver) and must not block: a sink queues what it sends and bounds that queue.
    `run` connects (and reconnects) or serves until `stop` is called, and never raises for a
    peer's trouble: it reports one line through the `say` it was given and retries.
    """

    name: str  # "MQTT broker mqtt://…", "web page http://…": for serve's messages

    def reading(self, item: T_contra, /) -> None: ...

    def tick(self, now: float, /) -> None: ...

    def keys_changed(self) -> None:
        """The keys file was re-read: forget what belonged to a device that lost its key."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...

    def summary(self) -> str:
        """One phrase for serve's last line, e.g. "412 messages published, 0 not sent"."""
        ...
