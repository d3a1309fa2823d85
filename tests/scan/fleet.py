"""Emulated devices for the scanner tests: records encoded with the protocol encoder, sent
through the virtual BlueZ by `BluezAdvertiser` (the code path used on real hardware).

Values are plausible per the manuals (LFP cells 3.2–3.5 V, Lithium Battery Smart manual §5);
what the scanner tests check is the key status and the plumbing, not the decoding (tested in
tests/protocol against known answers).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from victron_ble_bms.emulator.bluez import AdvertisingError
from victron_ble_bms.protocol import COMPANY_ID, SmartLithiumRecord, encode
from victron_ble_bms.protocol.enums import BalancerStatus, BmsFlags, SmartLithiumErrorFlags
from victron_ble_bms.sources.advertisement import Advertisement

KEYED = "C0:11:00:00:00:01"
NOKEY = "C0:11:00:00:00:02"
WRONGKEY = "C0:11:00:00:00:03"

KEY_KEYED = "0123456789abcdef0123456789abcdef"
KEY_NOKEY = "fedcba9876543210fedcba9876543210"
KEY_WRONG_DEVICE = "aa112233445566778899aabbccddeeff"  # what the device uses
KEY_WRONG_STORED = "bb112233445566778899aabbccddeeff"  # what the user typed

SMART_LITHIUM_12V = 0xA0E0  # "Smart Lithium Battery 12.8V/…" product family (docs/protocol.md §3)


def battery(step: int = 0) -> SmartLithiumRecord:
    cells = (3.30, 3.31, 3.30, 3.29 + 0.01 * (step % 3))
    return SmartLithiumRecord(
        bms_flags=BmsFlags.ALLOWED_TO_CHARGE | BmsFlags.ALLOWED_TO_DISCHARGE,
        error_flags=SmartLithiumErrorFlags(0),
        cell_voltages_v=cells + (None,) * 4,
        battery_voltage_v=round(sum(cells), 2),
        balancer_status=BalancerStatus.BALANCED,
        battery_temperature_c=20,
    )


def advertisement(address: str, key: str, nonce: int, ts: float | None = None) -> Advertisement:
    data = encode(battery(nonce), key=key, nonce=nonce & 0xFFFF, model_id=SMART_LITHIUM_12V)
    return Advertisement(
        ts=time.time() if ts is None else ts, address=address, manufacturer_data={COMPANY_ID: data}
    )


@dataclass
class Fleet:
    """Devices → their keys; `run()` publishes one new frame per device every `period` s."""

    advertiser: Any  # VirtualBluezAdvertiser or BluezAdvertiser: anything with publish()
    devices: dict[str, str] = field(
        default_factory=lambda: {
            KEYED: KEY_KEYED,
            NOKEY: KEY_NOKEY,
            WRONGKEY: KEY_WRONG_DEVICE,
        }
    )
    period: float = 0.1
    nonce_step: int = 1
    nonce: int = 100
    sent: int = 0

    async def publish_all(self) -> None:
        self.nonce += self.nonce_step
        for address, key in self.devices.items():
            try:
                await self.advertiser.publish(advertisement(address, key, self.nonce))
            except AdvertisingError:
                continue  # BlueZ is down in a fault test: the next frame re-registers
            self.sent += 1

    async def run(self) -> None:
        while True:
            await self.publish_all()
            await asyncio.sleep(self.period)
