"""Fixtures: one real signalk-server per module, without and with security
(tests/signalk/server.py). Each test writes batteries of its own addresses, so tests sharing
a server don't see each other."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.signalk.server import SignalKServer


@pytest.fixture(scope="module")
def signalk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignalKServer]:
    with SignalKServer(tmp_path_factory.mktemp("signalk")) as server:
        yield server


@pytest.fixture(scope="module")
def signalk_secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignalKServer]:
    with SignalKServer(tmp_path_factory.mktemp("signalk-secure"), security=True) as server:
        yield server
