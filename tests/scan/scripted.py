"""`victron-bms scan` as a separate process while this process plays a script of frames through
the virtual BlueZ (real dbus-daemon, unmodified bleak in the scanner): the script starts only
once the scanner has printed its first reading, so every scripted frame is judged."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from victron_ble_bms.emulator.dbus_daemon import PrivateBus
from victron_ble_bms.emulator.virtual_bluez import VirtualBluezAdvertiser
from victron_ble_bms.protocol import COMPANY_ID, decode_plaintext
from victron_ble_bms.protocol.crypto import cipher_for, normalize_key
from victron_ble_bms.sources.advertisement import Advertisement

from .fleet import KEY_KEYED, KEYED, advertisement

GAP_S = 0.12  # between scripted frames: each becomes its own PropertiesChanged


def genuine(nonce: int) -> Advertisement:
    return advertisement(KEYED, KEY_KEYED, nonce)


def forged(nonce: int, seed: int) -> Advertisement:
    """Random ciphertext behind the device's clear header with the right key-check byte —
    what anyone nearby can send (docs/protocol.md §1.1).

    Random ciphertext decrypts to random plaintext, and about 6 % of random Lithium plaintexts
    happen to hold values a battery could have — no check can tell those from a genuine frame.
    So that the frame is the same implausible one at whatever nonce the scan reached (the
    keystream differs per nonce), the plaintext is drawn from `seed` until it is one no
    battery can hold, then encrypted at `nonce`."""
    header = genuine(nonce).manufacturer_data[COMPANY_ID][:8]
    rng = random.Random(seed)
    plaintext = rng.randbytes(16)
    while not decode_plaintext(0x05, plaintext).implausible:
        plaintext = rng.randbytes(16)
    ciphertext = cipher_for(normalize_key(KEY_KEYED)).apply(nonce & 0xFFFF, plaintext)
    return Advertisement(0.0, KEYED, {COMPANY_ID: header + ciphertext})


def cut(adv: Advertisement, length: int) -> Advertisement:
    return Advertisement(0.0, adv.address, {COMPANY_ID: adv.manufacturer_data[COMPANY_ID][:length]})


async def start_cli(bus: PrivateBus, *argv: str) -> asyncio.subprocess.Process:
    """`victron-bms ARGV` as a user runs it, on the private bus, stdout/stderr piped."""
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "victron_ble_bms",
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@dataclass
class Session:
    returncode: int
    lines: list[str]
    stderr: str
    start: int  # the nonce the script was given (the device's last frame before it)
    objects: list[dict[str, Any]] = field(default_factory=list)

    def by_nonce(self, nonce: int) -> list[dict[str, Any]]:
        return [o for o in self.objects if o.get("nonce") == nonce % 65_536]


async def scripted_scan(
    bus: PrivateBus,
    argv: Sequence[str],
    script: Any,  # (first nonce seen) -> list of advertisements to play in order
    *,
    settle_s: float = 1.0,
) -> Session:
    va = VirtualBluezAdvertiser(bus_address=bus.address)
    await va.start()
    proc = await start_cli(bus, *argv)
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    first = asyncio.Event()
    stderr_task = asyncio.create_task(proc.stderr.read())

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode()
            lines.append(line)
            if KEYED in line:
                first.set()

    reader = asyncio.create_task(read())
    nonce = 1000
    try:
        while not first.is_set():  # the device advertises until the scanner shows it
            nonce += 1
            await va.publish(genuine(nonce))
            with_timeout = asyncio.wait_for(first.wait(), 0.15)
            try:
                await with_timeout
            except TimeoutError:
                if proc.returncode is not None or reader.done():
                    break
        for adv in script(nonce):
            await va.publish(adv)
            await asyncio.sleep(GAP_S)
        await asyncio.sleep(settle_s)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
        await reader
        err = (await stderr_task).decode()
        await va.close()
    session = Session(proc.returncode or 0, lines, err, nonce)
    for line in lines:
        if line.startswith("{"):
            session.objects.append(json.loads(line))
    return session
