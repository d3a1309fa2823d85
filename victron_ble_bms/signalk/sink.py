"""`serve`'s Signal K sink: the board's batteries (`publisher.py`) over the stream (`link.py`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from victron_ble_bms.hub import Board
from victron_ble_bms.mqtt.config import ConfigError
from victron_ble_bms.sources.readings import Reading

from .config import SignalKConfig, load_signalk_config, resolve
from .link import Link
from .publisher import Publisher


class SignalKSink:
    def __init__(self, cfg: SignalKConfig, board: Board, *, say: Callable[[str], None]) -> None:
        self.publisher = Publisher(board)
        self.link = Link(cfg, self.publisher, say=say)
        self.name = f"Signal K server {cfg.server}"

    def reading(self, item: Reading, /) -> None:
        self.link.send(self.publisher.reading(item))

    def tick(self, now: float, /) -> None:
        self.link.send(self.publisher.tick())

    def keys_changed(self) -> None:
        self.link.send(self.publisher.keys_changed())

    async def run(self) -> None:
        await self.link.run()

    def stop(self) -> None:
        self.link.stop()

    def summary(self) -> str:
        return f"{self.link.sent} Signal K messages sent, {len(self.link.outbox)} not sent"


def wanted(config_path: str | None, url: str | None) -> bool:
    """`--signalk URL`, or a `[signalk]` url in the config file (a broken file counts: the
    sink's construction reports it)."""
    if url is not None:
        return True
    try:
        return load_signalk_config(config_path)[0].server is not None
    except ConfigError:
        return True


def from_options(
    config_path: str | None,
    url: str | None,
    board: Board,
    *,
    say: Callable[[str], None],
    warn: Callable[[str], None],
) -> SignalKSink | None:
    """serve's Signal K sink, or None when none is asked for; ValueError (a usage error, one
    line) for a broken `[signalk]` table or URL, or without aiohttp."""
    try:
        cfg, warnings = load_signalk_config(config_path)
        cfg = resolve(cfg, url=url)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    if cfg.server is None:
        return None
    for warning in warnings:
        warn("warning: " + warning)
    try:
        importlib.import_module("aiohttp")
    except ImportError:
        raise ValueError(
            "serve needs aiohttp for Signal K: pip install 'victron-ble-bms[signalk]'"
        ) from None
    return SignalKSink(cfg, board, say=say)
