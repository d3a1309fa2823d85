"""The web layer's rules without a browser: --http parsing, the token file, and that a viewer
costs at most one pending state per device however many readings arrive."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from victron_ble_bms.emulator.engine import Emulator, demo_fleet
from victron_ble_bms.hub import Board
from victron_ble_bms.sources.devices import DevicesState
from victron_ble_bms.sources.readings import Reading
from victron_ble_bms.web.auth import (
    ListenError,
    load_or_create_token,
    parse_listen,
    token_matches,
)
from victron_ble_bms.web.server import Viewer, WebSink


@pytest.mark.parametrize(
    ("text", "host", "port", "local"),
    [
        ("8080", "127.0.0.1", 8080, True),
        ("127.0.0.1:8080", "127.0.0.1", 8080, True),
        ("localhost:80", "localhost", 80, True),
        ("[::1]:8080", "::1", 8080, True),
        (":8080", "127.0.0.1", 8080, True),
        ("0.0.0.0:8080", "0.0.0.0", 8080, False),  # noqa: S104
        ("127.0.0.2:8080", "127.0.0.2", 8080, False),
        ("192.168.1.5:8080", "192.168.1.5", 8080, False),
        ("[::]:8080", "::", 8080, False),
    ],
)
def test_parse_listen(text: str, host: str, port: int, local: bool) -> None:
    listen = parse_listen(text)
    assert (listen.host, listen.port, listen.local) == (host, port, local)


@pytest.mark.parametrize(
    "text", ["", "boat", "host.example:80", "1.2.3.4:99999", "::1:80", "[::1]"]
)
def test_parse_listen_refuses(text: str) -> None:
    with pytest.raises(ListenError, match="--http"):
        parse_listen(text)


def test_token_file(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b"
    token, created = load_or_create_token(directory)
    assert created and len(token) >= 43
    assert stat.S_IMODE((directory / "http-token").stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert load_or_create_token(directory) == (token, False)
    assert token_matches(token, token)
    assert not token_matches(token[:-1], token)
    assert not token_matches(None, token) and not token_matches("", token)
    os.chmod(directory / "http-token", 0o640)
    with pytest.raises(ListenError, match="readable by other users"):
        load_or_create_token(directory)
    (directory / "http-token").write_text("short\n")
    os.chmod(directory / "http-token", 0o600)
    with pytest.raises(ListenError, match="no usable token") as info:
        load_or_create_token(directory)
    assert "short" not in str(info.value)


def readings(n: int) -> tuple[list[Reading], dict[str, bytes]]:
    emu = Emulator(demo_fleet(), seed=1, speed=None, start_ts=time.time())
    devices = DevicesState(emu.keys, max_devices=64)
    out: list[Reading] = []
    for adv in emu.run(n):
        update = devices.update(adv)
        if update.reading is not None:
            out.append(update.reading)
    return out, emu.keys


def test_a_slow_viewer_holds_one_state_per_device() -> None:
    items, keys = readings(300)
    board = Board(keys)
    sink = WebSink(board, parse_listen("0"), token=None, say=lambda _m: None)
    slow = Viewer()  # never takes anything
    sink.viewers.add(slow)
    for reading in items:
        board.reading(reading)
        sink.reading(reading)
        sink._flush()  # what the push task does four times a second
    assert len(items) > 5 * len(board)
    assert len(slow.pending) <= len(board)
    assert set(slow.pending) <= {e.address for e in board}
    # The pending bytes are each device's latest state, not a backlog.
    assert sum(map(len, slow.pending.values())) < 4096 * len(board)
