"""The protocol core imports with bleak, textual and rich unavailable."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
for name in ("bleak", "textual", "rich", "dbus_fast"):
    sys.modules[name] = None  # makes any import of it fail
import victron_ble_bms
import victron_ble_bms.protocol
r = victron_ble_bms.decode(bytes.fromhex(
    "100289a302b040af925d09a4d89aa0128bdef48c6298a9"), "aff4d0995b7d1e176c0c33ecb9e70dcd")
assert r.battery_voltage_v == 12.53
loaded = [m for m in ("bleak", "textual", "rich", "dbus_fast") if sys.modules.get(m)]
print("ok", loaded)
"""


def test_protocol_needs_no_bleak_or_textual() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok []"
