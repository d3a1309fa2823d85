"""The optional compiled helper (`_accel.c`, built by setup.py where a C compiler is found).

Two things in it, each with a pure-Python path that gives the same results (issue 12: a
compiled extension only with a tested fallback):
- `build`: fills a slotted object without running Python code (protocol/frozen.py);
- AES-128 with the CPU's AES instructions, x86 only (protocol/crypto.py, codec.py).
Set VICTRON_BMS_PURE_PYTHON=1 to refuse the helper entirely; the tests run both ways.
"""

from __future__ import annotations

import os
from types import ModuleType


def _load() -> ModuleType | None:
    if os.environ.get("VICTRON_BMS_PURE_PYTHON"):
        return None
    try:
        from . import _accel
    except ImportError:  # not built here (no compiler, another platform): pure Python
        return None
    return _accel


# The compiled helper, or None.
HELPER = _load()
# The helper when it can also do AES on this CPU, else None (cryptography does it).
AES = HELPER if HELPER is not None and HELPER.available() else None
