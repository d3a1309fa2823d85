"""The manufacturer-data envelope around every record (docs/protocol.md §1.1, §8.1)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from .errors import NotInstantReadout, TruncatedFrame

COMPANY_ID = 0x02E1  # Victron Energy BV
_COMPANY_ID_LE = COMPANY_ID.to_bytes(2, "little")
PRODUCT_ADVERTISEMENT = 0x10  # byte 0: the only manufacturer-data type that carries Instant Readout
UNENCRYPTED = 0xFF  # record type byte: a second type byte follows in byte 7, data in clear
HEADER_BYTES = 8
MAX_DATA_BYTES = 16  # one AES block; the counter scheme past block 0 is unknown (§1.2)


@dataclass(frozen=True, slots=True)
class Frame:
    """The clear header of an Instant Readout frame and its (still encrypted) data.

    `record_type` is the byte at offset 4, or 0xFF00 | byte 7 for unencrypted records.
    """

    byte1: int  # meaning unknown (§1.1, §8.1): kept, never validated
    model_id: int
    record_type: int
    nonce: int
    key_check: int | None  # first key byte; None for unencrypted records
    data: bytes

    @property
    def encrypted(self) -> bool:
        return self.key_check is not None

    @property
    def data_truncated_to_block(self) -> bool:
        """True when more than 16 data bytes arrived; only the first 16 are decoded."""
        return len(self.data) > MAX_DATA_BYTES

    def to_bytes(self) -> bytes:
        """The manufacturer data again (without the company id)."""
        if self.key_check is None:
            type_byte, byte7 = UNENCRYPTED, self.record_type & 0xFF
        else:
            type_byte, byte7 = self.record_type, self.key_check
        return (
            bytes((PRODUCT_ADVERTISEMENT, self.byte1))
            + self.model_id.to_bytes(2, "little")
            + bytes((type_byte,))
            + self.nonce.to_bytes(2, "little")
            + bytes((byte7,))
            + self.data
        )


make_frame: Callable[[int, int, int, int, int | None, bytes], Frame] = Frame


# Bytes 1-7 of an encrypted frame: byte 1, model id, record type, nonce, key check (§1.1).
_unpack_header = struct.Struct("<xBHBHB").unpack_from


def encrypted_frame(data: bytes) -> Frame:
    """The header of an encrypted frame already known to be one (byte 0 0x10, ≥ 9 bytes, byte 4
    not 0xFF): `parse_frame` without its checks."""
    byte1, model_id, record_type, nonce, key_check = _unpack_header(data)
    return make_frame(byte1, model_id, record_type, nonce, key_check, data[8:])


def strip_company_id(data: bytes) -> bytes:
    """Accept manufacturer data with or without the leading company id ``e1 02``."""
    if data[:2] == _COMPANY_ID_LE and len(data) > 2 and data[2] == PRODUCT_ADVERTISEMENT:
        return data[2:]
    return data


def parse_frame(data: bytes | bytearray | memoryview) -> Frame:
    """Read the clear header. No key needed; raises `NotInstantReadout` or `TruncatedFrame`."""
    data = strip_company_id(bytes(data))
    if not data or data[0] != PRODUCT_ADVERTISEMENT:
        raise NotInstantReadout(data[0] if data else None)
    if len(data) < HEADER_BYTES:
        raise TruncatedFrame(len(data), HEADER_BYTES)
    if len(data) == HEADER_BYTES:
        raise TruncatedFrame(len(data), HEADER_BYTES + 1, "a record with data")
    type_byte = data[4]
    nonce = data[5] | (data[6] << 8)
    if type_byte == UNENCRYPTED:
        return Frame(data[1], data[2] | (data[3] << 8), 0xFF00 | data[7], nonce, None, data[8:])
    return Frame(data[1], data[2] | (data[3] << 8), type_byte, nonce, data[7], data[8:])
