"""The one value every source yields: a received advertisement."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from victron_ble_bms.protocol import COMPANY_ID

_HEX12 = re.compile(r"^[0-9A-Fa-f]{12}$")
# An address as this function writes it (and BlueZ reports it): returned as it is, without the
# general path's strip, substitute and join (every advertisement's address passes here).
_CANONICAL = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2}){5}")
_UUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


class AddressError(ValueError):
    """Text that is neither a Bluetooth address nor a CoreBluetooth UUID."""


def normalize_address(text: str) -> str:
    """'aa-bb-cc-dd-ee-ff', 'aabbccddeeff', 'AA:BB:…' → 'AA:BB:CC:DD:EE:FF'.

    macOS CoreBluetooth UUIDs (8-4-4-4-12) are device ids too and are returned upper-case.
    """
    if _CANONICAL.fullmatch(text):
        return text
    cleaned = text.strip()
    if _UUID.match(cleaned):
        return cleaned.upper()
    digits = re.sub(r"[:\-_.\s]", "", cleaned)
    if not _HEX12.match(digits):
        raise AddressError(
            f"{text!r} is not a Bluetooth address (6 bytes, e.g. AA:BB:CC:DD:EE:FF) "
            "nor a macOS device UUID"
        )
    digits = digits.upper()
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


# Times from outside (gateways, remote states, capture files) are checked before any arithmetic:
# a JSON integer beyond float range, inf or NaN, or a finite 1e308 (twice it is inf) would fail
# far from where it came in, in code that trusts its own sources. 0 (1970) to 2^33 s (the year
# 2242) holds every clock that is set, and an unset one (1970).
LATEST_TS = float(2**33)


def epoch_seconds(value: object) -> float | None:
    """`value` as seconds since the epoch when it is a number between 0 and `LATEST_TS`,
    else None. Never raises (Python compares an int of any size with a float exactly)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 <= value <= LATEST_TS:  # also False for NaN
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class Advertisement:
    """One advertisement as received (or as an emulated device sent it).

    `manufacturer_data` maps company id → data *without* the company id, as bleak gives it.
    """

    ts: float  # seconds since the epoch (simulated time for the emulator)
    address: str  # normalised 'AA:BB:CC:DD:EE:FF' or a CoreBluetooth UUID
    manufacturer_data: Mapping[int, bytes] = field(default_factory=dict)
    rssi: int | None = None
    name: str | None = None
    address_type: str | None = None  # 'public' / 'random' where the source knows
    origin: str = ""  # e.g. 'hci:le_adv_report', 'll:ADV_IND', 'bluez', 'emulator', 'jsonl'

    @property
    def victron_data(self) -> bytes | None:
        """Victron's manufacturer data (company 0x02E1), if present."""
        return self.manufacturer_data.get(COMPANY_ID)
