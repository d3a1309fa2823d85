"""The optional compiled helper (`_accel.c`, built by setup.py where a C compiler is found).

Two things in it, each with a pure-Python path that gives the same results (issue 12: a
compiled extension only with a tested fallback):
- `build`: fills a slotted object without running Python code (protocol/frozen.py);
- AES-128 with the CPU's AES instructions: x86, and 64-bit ARM where the CPU has them
  (protocol/crypto.py, codec.py).
The device table's hot path has its own compiled module (sources/_accept.c), loaded the same
way. Set VICTRON_BMS_PURE_PYTHON=1 to refuse both; the tests run every way.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def load_optional(module: str) -> ModuleType | None:
    """A compiled module of this package, or None where it was not built (no compiler,
    another platform) or VICTRON_BMS_PURE_PYTHON is set: then pure Python does its work."""
    if os.environ.get("VICTRON_BMS_PURE_PYTHON"):
        return None
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


# The compiled helper, or None.
HELPER = load_optional("victron_ble_bms.protocol._accel")
# The helper when it can also do AES on this CPU, else None (cryptography does it).
AES = HELPER if HELPER is not None and HELPER.available() else None
