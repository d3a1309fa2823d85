"""`victron-bms serve …` as a user runs it: a subprocess with a private config dir, its stderr
collected in a file. Shared by the MQTT, Signal K, bank, receiver and web page tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Secrets a test's own environment must not hand to serve unasked (a test passes them in `env`).
SECRET_ENV = ("VICTRON_BMS_MQTT_PASSWORD", "VICTRON_BMS_SIGNALK_TOKEN")


class Serve:
    """`python -m victron_ble_bms serve ARGS` with `XDG_CONFIG_HOME` under `tmp`."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.config_home = tmp / "xdg"
        self.stderr_path = tmp / f"serve-{time.monotonic_ns()}.err"
        environ = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
        environ.update({"XDG_CONFIG_HOME": str(self.config_home), **(env or {})})
        self._err = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "victron_ble_bms", "serve", *args],
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            env=environ,
        )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_stderr(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not in stderr: {self.stderr}")
            time.sleep(0.1)

    def wait(self, timeout: float = 60.0) -> int:
        """Until serve ends by itself (`--duration`, end of a capture)."""
        rc = self.proc.wait(timeout)
        self._err.close()
        return rc

    def stop(self, timeout: float = 20.0) -> int:
        """As the service manager stops it (SIGTERM), and its exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._err.close()


@pytest.fixture
def serves() -> Iterator[list[Serve]]:
    """Each serve a test appends is killed after it, whatever happened."""
    started: list[Serve] = []
    yield started
    for s in started:
        s.kill()


def clean(stderr: str, *secrets: str) -> None:
    """No traceback, no secret, and every line one of ours (one line per problem)."""
    assert "Traceback" not in stderr, stderr
    for secret in secrets:
        assert secret not in stderr
    for line in stderr.splitlines():
        assert line.startswith("victron-bms"), line
