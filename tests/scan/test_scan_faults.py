"""`scan` when D-Bus or bluetoothd misbehave (issue 9 item 6): a bluetoothd that does not
answer, and the D-Bus daemon dying under a running scan. Real processes, SIGSTOP/SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

from victron_ble_bms.emulator.dbus_daemon import PrivateBus
from victron_ble_bms.emulator.virtual_bluez import VirtualBluezAdvertiser

from .conftest import run
from .fleet import Fleet
from .test_live import _start_service


def _scan(bus: PrivateBus, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address)
    return subprocess.run(  # noqa: S603 — our own command
        [sys.executable, "-m", "victron_ble_bms", "scan", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_scan_against_a_bluetoothd_that_does_not_answer_says_so(private_bus: PrivateBus) -> None:
    """bluetoothd owns org.bluez but is stopped (SIGSTOP): every start-up call times out."""
    service = _start_service(private_bus.address)
    os.kill(service.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        result = _scan(private_bus, "--duration", "5")
        took = time.monotonic() - t0
    finally:
        os.kill(service.pid, signal.SIGKILL)
        service.wait(5)
        if service.stdout is not None:
            service.stdout.close()
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert "bluetoothd does not answer" in result.stderr
    print(f"\nunanswering bluetoothd: scan --duration 5 gave up after {took:.1f} s")


def test_scan_exits_with_one_line_when_the_dbus_daemon_dies(private_bus: PrivateBus) -> None:
    async def body() -> tuple[int, str]:
        va = VirtualBluezAdvertiser(bus_address=private_bus.address)
        await va.start()
        feeder = asyncio.create_task(Fleet(va, period=0.2).run())
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=private_bus.address)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "victron_ble_bms",
            "scan",
            "--json",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        try:
            await asyncio.wait_for(proc.stdout.readline(), 20)  # scanning: a first reading
            feeder.cancel()
            pid = private_bus.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await proc.stdout.read()
            err = await asyncio.wait_for(proc.stderr.read(), 30)
            code = await asyncio.wait_for(proc.wait(), 30)
        finally:
            feeder.cancel()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await asyncio.gather(feeder, return_exceptions=True)
            try:
                await asyncio.wait_for(va.close(), 5)
            except Exception:  # noqa: S110 — the bus is gone; nothing to unregister
                pass
        return code, err.decode()

    code, err = run(body(), timeout=90)
    assert code == 1, err
    assert "Traceback" not in err and "exception" not in err.lower(), err
    assert err.count("\n") == 1, err
    assert "D-Bus" in err
