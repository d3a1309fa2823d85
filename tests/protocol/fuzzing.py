"""A seeded fuzzer for `decode`: constructive (valid frames of every type) plus mutations."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from victron_ble_bms import DecodeError, decode, encode
from victron_ble_bms.protocol import RECORD_CLASSES, decode_plaintext

KEY = bytes.fromhex("5a1f00c2d9e84b7761aa0c3e92b4f1d8")
OTHER_KEY = "a5" * 16


@dataclass
class FuzzStats:
    frames: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    foreign: list[tuple[bytes, str]] = field(default_factory=list)


def valid_frames(rng: random.Random, count: int) -> list[bytes]:
    """Frames of every record type with random field bits, encrypted with KEY."""
    out = []
    types = sorted(RECORD_CLASSES)
    for _ in range(count):
        record_type = rng.choice(types)
        size = RECORD_CLASSES[record_type].LAYOUT.data_bytes
        record = decode_plaintext(record_type, rng.randbytes(size))
        try:
            out.append(encode(record, key=KEY, nonce=rng.getrandbits(16), model_id=0xA0E5))
        except ValueError:  # a second NA spelling that re-encodes as the first: skip
            continue
    return out


def mutate(rng: random.Random, frame: bytes) -> bytes:
    data = bytearray(frame)
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(8)
        if choice == 0 and data:  # flip a bit
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif choice == 1:  # truncate
            del data[rng.randrange(len(data) + 1) :]
        elif choice == 2:  # extend
            data += rng.randbytes(rng.randint(1, 20))
        elif choice == 3 and len(data) > 4:  # another record type, incl. 0xFF unencrypted
            data[4] = rng.choice([rng.randrange(256), 0xFF, 0x0E, 0x05, 0x0A])
        elif choice == 4 and data:  # another first byte
            data[0] = rng.randrange(256)
        elif choice == 5:  # company id in front
            data[:0] = b"\xe1\x02"
        elif choice == 6 and len(data) > 7:  # key byte
            data[7] = rng.randrange(256)
        else:  # replace a byte
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def fuzz_decode(frames: int, rng: random.Random) -> FuzzStats:
    stats = FuzzStats()
    corpus = valid_frames(rng, 500)
    keys: list[bytes | str] = [KEY, KEY, KEY, KEY.hex(), OTHER_KEY]
    while stats.frames < frames:
        roll = rng.random()
        if roll < 0.1:
            data = rng.randbytes(rng.randint(0, 40))
        elif roll < 0.3:
            data = rng.choice(corpus)
        else:
            data = mutate(rng, rng.choice(corpus))
        key = rng.choice(keys)
        stats.frames += 1
        try:
            decode(data, key)
        except DecodeError as exc:
            if exc.__cause__ is not None:  # decode's safety net caught a bug of ours
                stats.foreign.append((data, repr(exc.__cause__)))
            stats.outcomes[type(exc).__name__] += 1
        except Exception as exc:  # noqa: BLE001 - the point is to catch anything foreign
            stats.foreign.append((data, repr(exc)))
        else:
            stats.outcomes["ok"] += 1
    return stats
