"""`victron-bms emulate --advertise virtual` as a user runs it: a private dbus-daemon with the
stand-in BlueZ advertising one emulated battery, for tests that scan it with unmodified bleak."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class VirtualRadio:
    bus: str  # DBUS_SYSTEM_BUS_ADDRESS
    address: str
    key: str


@contextmanager
def virtual_radio(
    device: str = "lithium-12.8v-100ah", seconds: int = 120
) -> Iterator[VirtualRadio]:
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon not installed (Debian package 'dbus'; scripts/test.sh has it)")
    emulate = subprocess.Popen(
        [sys.executable, "-m", "victron_ble_bms", "emulate", "--device", device,
         "--advertise", "virtual", "--duration", str(seconds), "--seed", "4"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        address = key = bus = None
        assert emulate.stdout is not None
        deadline = time.monotonic() + 30
        while bus is None and time.monotonic() < deadline:
            line = emulate.stdout.readline()
            if found := re.search(r"([0-9A-F:]{17})\s+key ([0-9a-f]{32})", line):
                address, key = found.groups()
            if found := re.search(r"DBUS_SYSTEM_BUS_ADDRESS=(\S+)", line):
                bus = found.group(1)
        assert address and key and bus, "emulate --advertise virtual printed no bus"
        yield VirtualRadio(bus, address, key)
    finally:
        emulate.terminate()
        emulate.wait(15)
        if emulate.stdout:
            emulate.stdout.close()
