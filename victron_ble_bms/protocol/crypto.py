"""AES-128-CTR as Instant Readout uses it (docs/protocol.md §1.2), and key handling.

Counter block 0 is the nonce little-endian in bytes 0-1 and 14 zero bytes. Records are at most
16 bytes, so one block operation per frame is all the cipher ever does: we keep one ECB
encryptor per key (`cryptography`) and encrypt the counter block ourselves. A fresh CTR object
per frame costs ~25 times as much as the AES itself; where many frames of one key are read at
once (a capture), `keystreams` encrypts 256 counter blocks in one call.
"""

from __future__ import annotations

import functools
import re
import string

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .errors import InvalidKey

KEY_BYTES = 16
_ZERO_TAIL = bytes(14)
_SEPARATORS = re.compile(r"[\s:\-_.,]")
_HEX = frozenset(string.hexdigits)


KeyLike = bytes | bytearray | memoryview | str
_MAX_KEY_TEXT = 200  # longer text is no key spelling; refused before any work is done on it


def normalize_key(key: KeyLike) -> bytes:
    """Return the 16 key bytes from bytes-like or text in any common spelling.

    Text may use any case, spaces, colons or dashes and a ``0x`` prefix. The key itself is
    never put into an error message.
    """
    if isinstance(key, bytes | bytearray | memoryview):
        try:
            raw = bytes(key)
        except (TypeError, ValueError):  # e.g. a released memoryview
            raise InvalidKey("key is an unreadable buffer") from None
        if len(raw) != KEY_BYTES:
            raise InvalidKey(f"key must be {KEY_BYTES} bytes, got {len(raw)}")
        return raw
    if not isinstance(key, str):
        raise InvalidKey(f"key must be text or bytes, not {type(key).__name__}")
    if len(key) > _MAX_KEY_TEXT:
        raise InvalidKey(f"key text is {len(key)} characters; a key has 32 hex digits")
    return _normalize_key_text(str(key))


def hashable_key(key: KeyLike) -> bytes | str:
    """The key as bytes or str, fit for a cache: bytearray/memoryview are copied to bytes."""
    if type(key) is bytes or type(key) is str:
        return key
    if isinstance(key, str):
        return str(key)
    return normalize_key(key)


@functools.lru_cache(maxsize=1024)
def _normalize_key_text(text: str) -> bytes:
    cleaned = text.strip()
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    cleaned = _SEPARATORS.sub("", cleaned)
    # "0x" before every byte ("0xaf 0x12 …") is a spelling we also meet.
    if "0x" in cleaned.lower():
        cleaned = cleaned.lower().replace("0x", "")
    bad = sorted({c for c in cleaned if c not in _HEX})
    if bad:
        raise InvalidKey(
            f"key contains {len(bad)} kind(s) of character that are not hex digits "
            "(0-9, a-f); copy the key again from VictronConnect"
        )
    digits = len(cleaned)
    if digits != 2 * KEY_BYTES:
        raise InvalidKey(_length_hint(digits))
    return bytes.fromhex(cleaned)


def _length_hint(digits: int) -> str:
    base = f"key has {digits} hex digits; an Instant Readout key has 32 (16 bytes)"
    if digits == 31:
        return (
            f"{base}. One digit is missing, a common copy mistake (some app screens cut a "
            "digit): copy the key again from VictronConnect → Product info → Instant readout "
            "details → Show; adding a guessed 0 does not work"
        )
    if digits == 33:
        return f"{base}. One digit too many: was a character typed twice?"
    if digits == 12:
        return f"{base}. 12 digits looks like a MAC address, not a key"
    if digits == 6:
        return f"{base}. 6 digits looks like the Bluetooth PIN, not the advertisement key"
    if digits == 64:
        return f"{base}. 64 digits is two keys or a 32-byte secret, not an advertisement key"
    return base


class KeyCipher:
    """The block cipher for one key; `keystream(nonce)` is the one AES operation per frame."""

    __slots__ = ("key_check", "encrypt_block")

    def __init__(self, key: bytes) -> None:
        self.key_check = key[0]
        # ECB of one block == CTR block 0: CTR is just AES(counter) XOR data.
        self.encrypt_block = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update  # noqa: S305

    def keystream(self, nonce: int) -> bytes:
        """AES_K(counter block 0) for this nonce: 16 bytes of keystream."""
        return self.encrypt_block(nonce.to_bytes(2, "little") + _ZERO_TAIL)

    def keystreams(self, high: int) -> bytes:
        """The keystreams of the 256 nonces `high << 8` … `high << 8 | 255`, 16 bytes each
        (nonce n's at `(n & 0xFF) * 16`): one ECB call over 256 counter blocks."""
        return self.encrypt_block(_counter_blocks(high))

    def apply(self, nonce: int, data: bytes) -> bytes:
        """Encrypt or decrypt (the same operation) up to 16 bytes."""
        n = len(data)
        stream = self.encrypt_block(nonce.to_bytes(2, "little") + _ZERO_TAIL)
        return (int.from_bytes(data, "little") ^ int.from_bytes(stream[:n], "little")).to_bytes(
            n, "little"
        )


_LOW_BYTES = bytes(range(256))


@functools.lru_cache(maxsize=256)
def _counter_blocks(high: int) -> bytes:
    """Counter blocks 0 of the nonces `high << 8` … `high << 8 | 255`, one after another."""
    blocks = bytearray(256 * 16)
    blocks[0::16] = _LOW_BYTES
    blocks[1::16] = bytes((high,)) * 256
    return bytes(blocks)


@functools.lru_cache(maxsize=4096)
def cipher_for(key: bytes) -> KeyCipher:
    """One cached cipher per key, so a stream of frames costs one block operation each."""
    return KeyCipher(key)


def mask_key(key: KeyLike) -> str:
    """Show only the first and last byte of a key: enough to tell keys apart, not to use one."""
    raw = normalize_key(key)
    return f"{raw[0]:02x}{'·' * 28}{raw[-1]:02x}"
