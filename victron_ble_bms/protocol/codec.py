"""decode / encode: bytes ↔ typed records, driven by the layout tables."""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import Any

from .crypto import KeyCipher, KeyLike, hashable_key, normalize_key
from .envelope import MAX_DATA_BYTES, PRODUCT_ADVERTISEMENT, Frame, parse_frame
from .errors import DecodeError, KeyMismatch, UnsupportedRecord
from .fields import EncodeError, compile_decoder
from .records import RECORD_CLASSES, Record

# Decoders compiled on first use per record type and received data length (0..16 bytes):
# payload int → record. Every length has its own straight-line decoder (issue 12).
_DECODERS: dict[int, list[Callable[[int, Any], Record] | None]] = {
    t: [None] * (MAX_DATA_BYTES + 1) for t in RECORD_CLASSES
}


def _decoder(record_type: int, n: int) -> Callable[[int, Any], Record]:
    """The decoder for `n` received data bytes (n ≤ 16) of a known record type."""
    slots = _DECODERS[record_type]
    fn = slots[n]
    if fn is None:
        cls = RECORD_CLASSES[record_type]
        layout = cls.LAYOUT
        full = slots[layout.data_bytes] if n >= layout.data_bytes else None
        fn = full or compile_decoder(layout, cls, min(n * 8, layout.used_bits))
        slots[n] = fn
    return fn


def record_class(record_type: int) -> type[Record]:
    try:
        return RECORD_CLASSES[record_type]
    except KeyError:
        if record_type > 0xFF:
            raise UnsupportedRecord(
                record_type, f"unencrypted record 0x{record_type:04X}, not supported"
            ) from None
        raise UnsupportedRecord(record_type, "no layout is known for it") from None


def decrypt(frame: Frame, key: KeyLike | None) -> bytes:
    """The record's plaintext: at most 16 bytes (one AES block, docs/protocol.md §8.1)."""
    data = frame.data[:MAX_DATA_BYTES]
    if frame.key_check is None:
        return data
    if key is None:
        raise DecodeError("this frame is encrypted and no key was given")
    cipher = _CIPHERS.get(key) if isinstance(key, bytes | str) else None
    cipher = cipher or _CIPHERS.add(hashable_key(key))
    if frame.key_check != cipher.key_check:
        raise KeyMismatch(frame.key_check, cipher.key_check)
    return cipher.apply(frame.nonce, data)


def decode_frame(frame: Frame, key: KeyLike | None) -> Record:
    """Decode an already parsed frame. Raises only `DecodeError` (as `decode`)."""
    try:
        return _decode_frame(frame, key)
    except DecodeError:
        raise
    except Exception as exc:  # a bug of ours must still not escape as a foreign exception
        raise DecodeError(f"internal decoding error ({type(exc).__name__})") from exc


def _decode_frame(frame: Frame, key: KeyLike | None) -> Record:
    record_class(frame.record_type)  # UnsupportedRecord for unknown types
    plaintext = decrypt(frame, key)
    n = len(plaintext)
    return _decoder(frame.record_type, n)(int.from_bytes(plaintext, "little"), frame.to_bytes())


class _CipherCache(dict[bytes | str, KeyCipher]):
    """The key exactly as callers pass it (bytes or text) → its cipher.

    Bounded, oldest first out: no cliff below the limit (a hit is one dict look-up, nothing
    reordered); when full, the oldest eighth goes in one pass (amortised O(1)). Each key holds
    ~1.1 KB of OpenSSL context (benchmarks/decode.py measures it).
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def add(self, key: bytes | str) -> KeyCipher:
        raw = normalize_key(key)
        cipher = self.get(raw)
        if cipher is None:
            cipher = KeyCipher(raw)
            self._put(raw, cipher)
        if key is not raw:
            self._put(key, cipher)
        return cipher

    def _put(self, key: bytes | str, cipher: KeyCipher) -> None:
        if len(self) >= self.limit:
            for old in list(islice(self, max(1, self.limit // 8))):
                del self[old]
        self[key] = cipher


# 131,072 keys (spellings): a marina's worth of devices and more, ~150 MB if ever all used.
_CIPHERS = _CipherCache(1 << 17)
_cipher_get = _CIPHERS.get
_ZERO_TAIL = bytes(14)


def cipher(key: KeyLike) -> KeyCipher:
    """The cached cipher of `key` (any spelling `decode` takes), as `decode` uses it."""
    if type(key) is not bytes and type(key) is not str:
        key = hashable_key(key)
    return _cipher_get(key) or _CIPHERS.add(key)


def decoder(record_type: int, n: int) -> Callable[[int, Any], Record] | None:
    """`decode`'s decoder for `n` received data bytes of `record_type` (None for a type no
    layout is known for): payload int (bits past the `n` bytes are ignored), wire → record."""
    decoders = _DECODERS.get(record_type)
    if decoders is None:
        return None
    n = min(n, MAX_DATA_BYTES)
    return decoders[n] or _decoder(record_type, n)


def decode(data: bytes | bytearray | memoryview, key: KeyLike | None) -> Record:
    """Manufacturer data (with or without the company id) → typed record.

    Raises only `DecodeError` subclasses: `NotInstantReadout`, `TruncatedFrame`, `KeyMismatch`,
    `UnsupportedRecord`, `InvalidKey`.
    """
    try:
        if key is not None and type(key) is not bytes and type(key) is not str:
            key = hashable_key(key)  # bytearray, memoryview, str subclass: one cache form
        # Hot path: an encrypted frame of a known type: what parse_frame + decode_frame do,
        # minus their checks that cannot fail here, and a decoder compiled for its length.
        if type(data) is bytes and len(data) > 8 and data[0] == PRODUCT_ADVERTISEMENT:
            decoders = _DECODERS.get(data[4])
            if decoders is not None and key is not None:
                cipher = _cipher_get(key) or _CIPHERS.add(key)
                if data[7] != cipher.key_check:
                    raise KeyMismatch(data[7], cipher.key_check)
                n = len(data) - 8
                if n > MAX_DATA_BYTES:
                    n = MAX_DATA_BYTES
                fn = decoders[n] or _decoder(data[4], n)
                # Bits past the received bytes are keystream, not data: every compiled decoder
                # masks each field it reads and reads none past its length.
                stream = cipher.encrypt_block(data[5:7] + _ZERO_TAIL)
                payload = (int.from_bytes(data, "little") >> 64) ^ int.from_bytes(stream, "little")
                return fn(payload, data)
        return _decode_frame(parse_frame(data), key)
    except DecodeError:
        raise
    except Exception as exc:  # a bug of ours must still not escape as a foreign exception
        raise DecodeError(f"internal decoding error ({type(exc).__name__})") from exc


def decode_plaintext(record_type: int, plaintext: bytes) -> Record:
    """Decode decrypted record bytes (as peers publish them); extra bytes are ignored."""
    cls = record_class(record_type)
    data = bytes(plaintext[: cls.LAYOUT.data_bytes])
    return _decoder(record_type, len(data))(int.from_bytes(data, "little"), None)


def encode_plaintext(record: Record) -> bytes:
    """The record's bytes before encryption; unused bits are set, as SPEC asks."""
    layout = record.LAYOUT
    size = layout.data_bytes
    payload = (1 << (size * 8)) - 1
    for f in layout.fields:
        payload = f.insert(payload, getattr(record, f.name))
    return payload.to_bytes(size, "little")


def encode(
    record: Record, *, key: KeyLike | None, nonce: int, model_id: int, byte1: int = 0
) -> bytes:
    """Record → manufacturer data (without company id). `decode(encode(r, …), key) == r`."""
    if not 0 <= nonce <= 0xFFFF:
        raise EncodeError(f"nonce {nonce} is not a 16-bit value")
    if not 0 <= model_id <= 0xFFFF:
        raise EncodeError(f"model id {model_id} is not a 16-bit value")
    plaintext = encode_plaintext(record)
    record_type = record.LAYOUT.record_type
    if record_type > 0xFF:  # unencrypted: 0xFF in byte 4, second type byte in byte 7
        return Frame(byte1, model_id, record_type, nonce, None, plaintext).to_bytes()
    if key is None:
        raise EncodeError("a key is needed to encode an encrypted record")
    cipher = _CIPHERS.add(hashable_key(key))
    data = cipher.apply(nonce, plaintext)
    return (
        bytes((PRODUCT_ADVERTISEMENT, byte1))
        + model_id.to_bytes(2, "little")
        + bytes((record_type,))
        + nonce.to_bytes(2, "little")
        + bytes((cipher.key_check,))
        + data
    )
