"""The ARMv8 AES of the compiled helper (protocol/_aes_arm.h), which this x86 machine cannot
run itself: built for aarch64 with a cross compiler and run under qemu's user-mode emulator
against FIPS-197 (tests/protocol/aes_arm_check.c). scripts/test.sh installs both tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CC, QEMU = "aarch64-linux-gnu-gcc", "qemu-aarch64"


@pytest.mark.skipif(
    shutil.which(CC) is None or shutil.which(QEMU) is None,
    reason=f"{CC} and {QEMU} not installed (scripts/test.sh installs them)",
)
def test_arm_aes_gives_the_fips_197_answers(tmp_path: Path) -> None:
    program = tmp_path / "aes_arm_check"
    subprocess.run(
        [CC, "-O2", "-Wall", "-Werror", "-static", "-o", program, HERE / "aes_arm_check.c"],
        check=True,
    )
    # Cortex-A76: the Raspberry Pi 5's core, which has the AES instructions.
    done = subprocess.run(
        [QEMU, "-cpu", "cortex-a76", program], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok")
