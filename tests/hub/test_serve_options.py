"""serve's sinks beside MQTT: options that cannot apply are refused, and the systemd unit
carries the sinks it was asked for."""

from __future__ import annotations

import subprocess
import sys


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "victron_ble_bms", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_nothing_to_publish_to_is_an_error() -> None:
    done = _serve("--source", "emulator", "--duration", "1")
    assert done.returncode == 2
    assert "nothing to publish to" in done.stderr and "--http" in done.stderr


def test_a_receiver_refuses_the_decoded_sinks() -> None:
    done = _serve("--source", "emulator", "--publish-raw", "--mqtt", "mqtt://127.0.0.1:1",
                  "--http", "127.0.0.1:0")  # fmt: skip
    assert done.returncode == 2 and "--publish-raw" in done.stderr and "--http" in done.stderr


def test_the_systemd_unit_carries_the_web_page() -> None:
    done = _serve("--source", "emulator", "--http", "127.0.0.1:8080", "--print-systemd-unit")
    assert done.returncode == 0
    exec_line = next(x for x in done.stdout.splitlines() if x.startswith("ExecStart="))
    assert exec_line.endswith("--http 127.0.0.1:8080")
