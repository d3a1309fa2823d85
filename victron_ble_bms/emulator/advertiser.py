"""One interface for everything that sends emulated frames somewhere."""

from __future__ import annotations

from typing import Protocol

from victron_ble_bms.sources.advertisement import Advertisement


class Advertiser(Protocol):
    """Receives each new frame of each emulated device.

    Implementations: BlueZ on a real adapter, the virtual BlueZ, a capture file, or nothing.
    `publish` is called once per new reading (the nonce changed); the first call for an
    address registers that device, later calls update it.
    """

    async def start(self) -> None: ...

    async def publish(self, advertisement: Advertisement) -> None: ...

    async def remove(self, address: str) -> None: ...

    async def close(self) -> None: ...
