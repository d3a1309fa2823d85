"""decode / encode: bytes ↔ typed records, driven by the layout tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .crypto import KeyCipher, KeyLike, cipher_for, hashable_key, normalize_key
from .envelope import MAX_DATA_BYTES, PRODUCT_ADVERTISEMENT, Frame, parse_frame
from .errors import DecodeError, KeyMismatch, UnsupportedRecord
from .fields import EncodeError, compile_decoder
from .records import RECORD_CLASSES, Record

# Compiled on first use per record type (tables cost ~10 ms each): payload int → record, for
# frames with every bit present.
_FAST: dict[int, tuple[int, Callable[[int, Any], Record]]] = {}


def _fast_decoder(record_type: int) -> tuple[int, Callable[[int, Any], Record]]:
    entry = _FAST.get(record_type)
    if entry is None:
        cls = RECORD_CLASSES[record_type]
        entry = _FAST[record_type] = (cls.LAYOUT.used_bits, compile_decoder(cls.LAYOUT, cls))
    return entry


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
    """The record's plaintext: at most 16 bytes (one AES block, protocol.md §8.1)."""
    data = frame.data[:MAX_DATA_BYTES]
    if frame.key_check is None:
        return data
    if key is None:
        raise DecodeError("this frame is encrypted and no key was given")
    cipher = cipher_for(normalize_key(key))
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
    cls = record_class(frame.record_type)
    plaintext = decrypt(frame, key)
    payload = int.from_bytes(plaintext, "little")
    bits, fast = _fast_decoder(frame.record_type)
    wire = frame.to_bytes()
    if len(plaintext) * 8 >= bits:
        return fast(payload, wire)
    # Short record: fields that reach past the received bytes are "not available" (§8.1).
    available = len(plaintext) * 8
    values = [f.extract(payload, available) for f in cls.LAYOUT.fields]
    return cls(*values, wire=wire, missing_fields=cls.LAYOUT.missing(available))


# The key exactly as callers pass it (bytes or text) → its cipher. Bounded: cleared when full.
_CIPHER_BY_KEY: dict[bytes | str, KeyCipher] = {}
_CIPHER_BY_KEY_LIMIT = 4096
_ZERO_TAIL = bytes(14)


def decode(data: bytes | bytearray | memoryview, key: KeyLike | None) -> Record:
    """Manufacturer data (with or without the company id) → typed record.

    Raises only `DecodeError` subclasses: `NotInstantReadout`, `TruncatedFrame`, `KeyMismatch`,
    `UnsupportedRecord`, `InvalidKey`.
    """
    try:
        if key is not None and type(key) is not bytes and type(key) is not str:
            key = hashable_key(key)  # bytearray, memoryview, str subclass: one cache form
        # Hot path: a complete encrypted frame of a known type, with a key seen before. It does
        # what parse_frame + decode_frame do, minus their checks that cannot fail here.
        if type(data) is bytes and 8 < len(data) <= 24 and data[0] == PRODUCT_ADVERTISEMENT:
            entry = _FAST.get(data[4])
            cipher = _CIPHER_BY_KEY.get(key) if key is not None else None
            if entry is not None and cipher is not None:
                if data[7] != cipher.key_check:
                    raise KeyMismatch(data[7], cipher.key_check)
                n = len(data) - 8
                if n * 8 >= entry[0]:
                    stream = cipher.encrypt_block(data[5:7] + _ZERO_TAIL)
                    payload = (int.from_bytes(data, "little") >> 64) ^ (
                        int.from_bytes(stream, "little") & ((1 << (n * 8)) - 1)
                    )
                    return entry[1](payload, data)
            elif cipher is None and key is not None and type(key) in (bytes, str):
                if len(_CIPHER_BY_KEY) >= _CIPHER_BY_KEY_LIMIT:
                    _CIPHER_BY_KEY.clear()
                _CIPHER_BY_KEY[key] = cipher_for(normalize_key(key))
        return _decode_frame(parse_frame(data), key)
    except DecodeError:
        raise
    except Exception as exc:  # a bug of ours must still not escape as a foreign exception
        raise DecodeError(f"internal decoding error ({type(exc).__name__})") from exc


def decode_plaintext(record_type: int, plaintext: bytes) -> Record:
    """Decode decrypted record bytes (as peers publish them); extra bytes are ignored."""
    cls = record_class(record_type)
    data = plaintext[: cls.LAYOUT.data_bytes]
    payload, available = int.from_bytes(data, "little"), len(data) * 8
    values = [f.extract(payload, available) for f in cls.LAYOUT.fields]
    return cls(*values, missing_fields=cls.LAYOUT.missing(available))


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
    cipher = cipher_for(normalize_key(key))
    data = cipher.apply(nonce, plaintext)
    return (
        bytes((PRODUCT_ADVERTISEMENT, byte1))
        + model_id.to_bytes(2, "little")
        + bytes((record_type,))
        + nonce.to_bytes(2, "little")
        + bytes((cipher.key_check,))
        + data
    )
