"""From `serve`'s options to the web sink (imports aiohttp only when --http is given)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from victron_ble_bms.hub import Board
from victron_ble_bms.mqtt.config import default_config_path

from .auth import TOKEN_FILE, load_or_create_token, parse_listen


def token_dir(args: argparse.Namespace) -> Path:
    """Beside the config file: --config's folder, else ~/.config/victron-ble-bms."""
    if getattr(args, "config", None):
        return Path(args.config).expanduser().resolve().parent
    return default_config_path().parent


def web_sink(args: argparse.Namespace, board: Board, say: Callable[[str], None]) -> Any:
    """The `WebSink` for `--http`; ValueError (one line) for a bad address, a token that
    cannot be kept, or aiohttp missing — serve then refuses to start."""
    listen = parse_listen(args.http)
    try:
        from .server import WebSink
    except ImportError:
        raise ValueError("serve --http needs aiohttp: pip install 'victron-ble-bms[web]'") from None
    if listen.local:
        return WebSink(board, listen, token=None, say=say)
    directory = token_dir(args)
    token, created = load_or_create_token(directory)
    return WebSink(
        board,
        listen,
        token=token,
        token_path=directory / TOKEN_FILE,
        # The whole token once when it is new, or on a terminal; a service's journal gets
        # only its first and last character (a secret, like the keys).
        show_token=created or sys.stderr.isatty(),
        say=say,
    )
