"""`victron-bms serve --http` as a user runs it (a subprocess), seen by a real headless Chromium
(Debian's /usr/bin/chromium, driven by Playwright; its own browser download is never used)."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import serve_process
from tests.ports import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def demo_keys() -> dict[str, bytes]:
    """The demo fleet's devices and keys, as `serve --source emulator` (seed 1) makes them."""
    from victron_ble_bms.emulator.engine import Emulator, demo_fleet

    return dict(Emulator(demo_fleet(), seed=1, speed=None, start_ts=0).keys)


class Serve(serve_process.Serve):
    """`python -m victron_ble_bms serve … --http HOST:PORT` with a private config dir."""

    def __init__(
        self, tmp: Path, *args: str, host: str = "127.0.0.1", port: int | None = None
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}/"
        super().__init__(tmp, *args, "--http", f"{host}:{self.port}")

    def wait_up(self, timeout: float = 20.0) -> None:
        """Until the server answers at all (a 401 counts) and has heard something."""
        deadline = time.monotonic() + timeout
        while "web page on" not in self.stderr:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not start: {self.stderr}")
            time.sleep(0.05)
        while True:
            try:
                urllib.request.urlopen(self.url + "manifest.webmanifest", timeout=2).read()  # noqa: S310
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        # "Heard something": the first readings on the board (a token-guarded server answers
        # 401 here and is taken as up).
        while time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen(self.url + "api/state", timeout=2).read()  # noqa: S310
            except urllib.error.HTTPError:
                return
            if json.loads(body)["devices"]:
                return
            time.sleep(0.1)


# Per module: the sync Playwright API keeps an event loop running in this thread while it is
# open, which would break other tests' asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One `serve --source emulator --http 127.0.0.1:PORT` (the demo fleet) for a module."""
    s = Serve(tmp_path_factory.mktemp("demo"), "--source", "emulator")
    try:
        s.wait_up()
        yield s
    finally:
        s.kill()
