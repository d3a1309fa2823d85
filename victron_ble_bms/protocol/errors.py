"""One error hierarchy: everything `decode` can raise is a `DecodeError`."""

from __future__ import annotations


class DecodeError(Exception):
    """A frame could not be turned into a record."""


class NotInstantReadout(DecodeError):
    """Victron manufacturer data that is not an Instant Readout (byte 0 != 0x10).

    VE.Smart Networking and other Victron adverts share the company id; they are
    recognised and skipped, not reported as broken (docs/protocol.md §8.1).
    """

    def __init__(self, first_byte: int | None) -> None:
        self.first_byte = first_byte
        shown = "nothing" if first_byte is None else f"0x{first_byte:02x}"
        super().__init__(
            f"not an Instant Readout frame: byte 0 is {shown}, expected 0x10 "
            "(other Victron adverts, e.g. VE.Smart Networking, are skipped)"
        )


class TruncatedFrame(DecodeError):
    """The frame ends before its header (or before any encrypted data)."""

    def __init__(self, length: int, needed: int, what: str = "the header") -> None:
        self.length = length
        self.needed = needed
        super().__init__(f"truncated frame: {length} bytes, {what} needs at least {needed}")


class UnsupportedRecord(DecodeError):
    """A record type we do not know how to decode."""

    def __init__(self, record_type: int, detail: str = "") -> None:
        self.record_type = record_type
        name = f"0x{record_type:04X}" if record_type > 0xFF else f"0x{record_type:02X}"
        text = f"unsupported record type {name}"
        super().__init__(f"{text}: {detail}" if detail else text)


class KeyMismatch(DecodeError):
    """The frame's key-check byte differs from the first byte of the key we were given."""

    def __init__(self, frame_key_byte: int, given_key_byte: int) -> None:
        self.frame_key_byte = frame_key_byte
        self.given_key_byte = given_key_byte
        super().__init__(
            f"key mismatch: frame was encrypted with a key starting 0x{frame_key_byte:02x}; "
            f"the key you gave starts 0x{given_key_byte:02x} — the device may have a new key "
            "after a PIN change (VictronConnect → Product info → Instant readout details)"
        )


class InvalidKey(DecodeError, ValueError):
    """The key text is not 16 bytes of hex. Its message names the likely mistake."""
