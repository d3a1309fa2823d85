"""A seeded fuzzer for `decode`: constructive (valid frames of every type) plus mutations.

Every decoded record goes through what users' outputs do with it (issue 9, "Done when"): its
codes, `to_dict()`, `json.dumps`, the JSON-lines object, the CLI table rows, main values, notes
and plain-text print — and, once in a while, the rich table. Keys come in every accepted type
and in spellings that must be refused with `InvalidKey`.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from victron_ble_bms import DecodeError, decode, encode
from victron_ble_bms.cli import output
from victron_ble_bms.frame_json import frame_object
from victron_ble_bms.protocol import RECORD_CLASSES, Record, decode_plaintext
from victron_ble_bms.sources.advertisement import Advertisement
from victron_ble_bms.sources.readings import KeyStatus, decode_advertisement

KEY = bytes.fromhex("5a1f00c2d9e84b7761aa0c3e92b4f1d8")
OTHER_KEY = "a5" * 16
# A wrong key with KEY's check byte: decrypts to random bits, as 1 in 256 wrong keys do.
SAME_CHECK_KEY = bytes((KEY[0],)) + bytes(range(1, 16))
ADDRESS = "AA:BB:CC:DD:EE:FF"


def key_forms() -> list[Any]:
    """Every type a key may have, the odd spellings users paste, and things that are no key."""
    hexed = KEY.hex()
    return [
        KEY,
        bytearray(KEY),
        memoryview(KEY),
        memoryview(bytearray(KEY)),
        memoryview(KEY).cast("H"),
        memoryview(KEY + KEY)[::2],  # non-contiguous: not the key, a 16-byte other key
        hexed,
        hexed.upper(),
        " 0x" + KEY.hex(":") + "\n",
        " ".join("0x" + KEY[i : i + 1].hex() for i in range(16)),
        KEY.hex("-").upper(),
        OTHER_KEY,
        SAME_CHECK_KEY,
        # refused with InvalidKey:
        hexed[:31],
        hexed + "0",
        "zz" * 16,
        "",
        "\u0661" * 32,  # Arabic-Indic digits: isdigit() but not hex
        hexed * 300,
        KEY[:15],
        bytearray(17),
        12345,
        [1, 2],
    ]


@dataclass
class FuzzStats:
    frames: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    foreign: list[tuple[bytes, str]] = field(default_factory=list)
    key_types: Counter[str] = field(default_factory=Counter)
    partial: int = 0
    implausible: int = 0
    codes_unknown: int = 0
    slowest_s: float = 0.0  # wall clock (what a hang is)
    slowest_cpu_s: float = 0.0  # CPU time (what the frame itself cost, whatever the load)
    slowest_frame: int = 0


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
        choice = rng.randrange(9)
        if choice == 0 and data:  # flip a bit
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif choice in (1, 8):  # truncate (often: short frames are the dangerous ones)
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


def exercise(record: Record) -> list[str]:
    """Everything the outputs do with a record. Returns broken promises (not exceptions)."""
    broken = []
    codes = record.codes
    d = record.to_dict()
    json.dumps(d, ensure_ascii=False, allow_nan=False)
    json.dumps(frame_object(1.0, ADDRESS, -70, "x", record), ensure_ascii=False, allow_nan=False)
    output.record_rows(record)
    output.main_values(record)
    output.main_values(record, cells=False)
    output.record_notes(record)
    shown = output.codes_text(record)
    if codes is None:
        if not record.partial or d["codes"] is not None or "unknown" not in shown:
            broken.append("codes unknown but not said so")
    elif d["codes"] != [c.to_dict() for c in codes]:
        broken.append("to_dict codes differ from .codes")
    if record.partial != ("partial" in d) or bool(record.implausible) != ("implausible" in d):
        broken.append("partial/implausible not in JSON")
    return broken


def _print_table(record: Record, rich: bool) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        if rich:
            output.print_record(record)  # rich's table: ~1 ms, so only for a sample
        else:
            output._print_plain(record)
    return out.getvalue()


def fuzz_decode(
    frames: int,
    rng: random.Random,
    rich_every: int = 500,
    on_progress: Callable[[FuzzStats], None] | None = None,
) -> FuzzStats:
    stats = FuzzStats()
    corpus = valid_frames(rng, 500)
    keys = key_forms()
    good_keys = keys[:5]
    clock, cpu = time.perf_counter, time.process_time
    while stats.frames < frames:
        roll = rng.random()
        if roll < 0.1:
            data = rng.randbytes(rng.randint(0, 40))
        elif roll < 0.3:
            data = rng.choice(corpus)
        else:
            data = mutate(rng, rng.choice(corpus))
        key = rng.choice(good_keys) if rng.random() < 0.6 else rng.choice(keys)
        stats.key_types[type(key).__name__] += 1
        stats.frames += 1
        start, start_cpu = clock(), cpu()
        try:
            via_adv = rng.random() < 0.2
            if via_adv:  # the path the CLI, scanner and dashboard take
                adv = Advertisement(1.0, ADDRESS, {0x02E1: data}, -70, "x")
                reading = decode_advertisement(adv, {ADDRESS: key})
                record = reading.record
                if record is not None:
                    stats.outcomes["reading:OK"] += 1
                else:
                    stats.outcomes[f"reading:{reading.status.name}"] += 1
                    if reading.status is KeyStatus.UNDECODABLE and "internal" in (
                        reading.error or ""
                    ):
                        stats.foreign.append((data, reading.error or ""))
            else:
                record = decode(data, key)
            if record is not None:
                stats.outcomes["ok"] += 1
                stats.partial += record.partial
                stats.implausible += bool(record.implausible)
                stats.codes_unknown += record.codes is None
                for problem in exercise(record):
                    stats.foreign.append((data, problem))
                text = _print_table(record, rich=stats.frames % rich_every == 0)
                if record.codes is None and "no active" in text:
                    stats.foreign.append((data, "all-clear printed for unknown codes"))
        except DecodeError as exc:
            if exc.__cause__ is not None:  # decode's safety net caught a bug of ours
                stats.foreign.append((data, repr(exc.__cause__)))
            stats.outcomes[type(exc).__name__] += 1
        except Exception as exc:  # noqa: BLE001 - the point is to catch anything foreign
            stats.foreign.append((data, repr(exc)))
        took = clock() - start
        if took > stats.slowest_s:
            stats.slowest_s, stats.slowest_frame = took, stats.frames
        stats.slowest_cpu_s = max(stats.slowest_cpu_s, cpu() - start_cpu)
        if on_progress is not None and stats.frames % 1000 == 0:
            on_progress(stats)
    return stats
