"""Seeded fuzzer: random and mutated frames raise nothing but DecodeError.

The suite runs a modest count; `python benchmarks/fuzz_decode.py --frames 1000000` runs more.
"""

from __future__ import annotations

import random

from .fuzzing import fuzz_decode


def test_fuzz_random_and_mutated_frames() -> None:
    stats = fuzz_decode(frames=30_000, rng=random.Random(20261121))
    assert stats.foreign == []
    assert stats.frames == 30_000
    # the corpus must exercise every outcome, or the fuzzer is not reaching the decoder
    assert stats.outcomes["ok"] > 1000
    for outcome in (
        "KeyMismatch",
        "TruncatedFrame",
        "NotInstantReadout",
        "UnsupportedRecord",
        "InvalidKey",
        "reading:OK",
    ):
        assert stats.outcomes[outcome] > 0, outcome
    # short frames, unknown codes and wrong-key garbage all reached the outputs
    assert stats.partial > 100 and stats.codes_unknown > 10 and stats.implausible > 100
    assert {"str", "bytes", "bytearray", "memoryview"} <= set(stats.key_types)
