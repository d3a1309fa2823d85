"""The optional compiled AES helper gives what `cryptography` gives, and the pure-Python path
(taken wherever the helper is not built or the CPU lacks AES instructions) still gives the
known output of every sample capture (issue 12: a compiled extension only with a tested
pure-Python fallback)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from victron_ble_bms.protocol import crypto, decode

needs_accel = pytest.mark.skipif(crypto.ACCEL is None, reason="compiled AES helper not in use")


def _cpu_has_aes() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(
        line.startswith("flags") and " aes" in line.split(":", 1)[1] for line in flags.splitlines()
    )


@pytest.mark.skipif(
    not (sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")),
    reason="the helper's AES instructions are x86 ones",
)
def test_helper_is_built_and_used_where_it_can_be() -> None:
    # A machine with a compiler and AES instructions must get the fast path: a build that
    # silently fell back (optional extension) would otherwise go unnoticed.
    if not (_cpu_has_aes() and shutil.which("gcc")):
        pytest.skip("no AES instructions or no compiler here")
    assert os.environ.get("VICTRON_BMS_PURE_PYTHON") is None
    assert crypto.ACCEL is not None


@needs_accel
def test_fips_197_known_answer() -> None:
    # FIPS-197 appendix C.1, AES-128.
    assert crypto.ACCEL is not None
    key = bytes(range(16))
    plain = bytes.fromhex("00112233445566778899aabbccddeeff")
    out = crypto.ACCEL.block(crypto.ACCEL.expand_key(key), plain)
    assert out.hex() == "69c4e0d86a7b0430d8cdb78070b4c55a"


@needs_accel
@settings(max_examples=300, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=16),
    header=st.binary(min_size=8, max_size=8),
    data=st.binary(min_size=1, max_size=24),
)
def test_payload_equals_cryptography_ctr(key: bytes, header: bytes, data: bytes) -> None:
    assert crypto.ACCEL is not None
    frame = header + data
    counter = frame[5:7] + bytes(14)
    stream = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(counter)  # noqa: S305
    n = min(16, len(data))
    # The data bytes decrypted; past them, zero (no decoder reads there).
    expected = bytes(a ^ b for a, b in zip(data[:n], stream, strict=False)) + bytes(16 - n)
    got = crypto.ACCEL.payload(crypto.ACCEL.expand_key(key), frame)
    assert got == int.from_bytes(expected, "little")


@needs_accel
def test_helper_refuses_wrong_arguments() -> None:
    accel = crypto.ACCEL
    assert accel is not None
    with pytest.raises(ValueError):
        accel.expand_key(b"short")
    with pytest.raises(TypeError):
        accel.payload(b"x" * 175, b"\x10" * 20)
    with pytest.raises(TypeError):
        accel.payload(accel.expand_key(bytes(16)), b"\x10" * 8)  # header only


def test_decode_is_the_same_with_and_without_the_helper() -> None:
    # The real vectors (peers' test suites), decoded here and in a process that refuses the
    # helper: the same records.
    from tests.protocol import vectors as v

    cases = [
        (v.SMARTSHUNT_ADVERT, v.SMARTSHUNT_KEY),
        (v.ORION_ADVERT, v.ORION_KEY),
        (v.MPPT_ADVERT, v.MPPT_KEY),
    ]
    here = [repr(decode(frame, key)) for frame, key in cases]
    script = textwrap.dedent(
        f"""
        from victron_ble_bms.protocol import accel, crypto, decode
        assert crypto.ACCEL is None
        for frame, key in {[(f.hex(), k) for f, k in cases]!r}:
            print(repr(decode(bytes.fromhex(frame), key)))
        """
    )
    env = {**os.environ, "VICTRON_BMS_PURE_PYTHON": "1"}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines() == here


def test_pure_python_path_gives_the_golden_output() -> None:
    # tests/captures/test_golden.py — every sample capture in every output format,
    # byte-identical to the stored known output — run again in a process that refuses the
    # helper (test_decode_is_the_same_with_and_without_the_helper shows that it does).
    golden = Path(__file__).parents[1] / "captures" / "test_golden.py"
    env = {**os.environ, "VICTRON_BMS_PURE_PYTHON": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(golden)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert " passed" in run.stdout and " failed" not in run.stdout and "skipped" not in run.stdout
