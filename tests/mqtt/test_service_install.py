"""The README's service install, done as a Pi owner does it: a fresh venv, the one `pip install
'victron-ble-bms[…]'` line of the README's "Home Assistant and MQTT" section (from this
checkout instead of PyPI), then the radio: the new venv imports bleak and dbus-fast, `scan`
decodes the emulated battery on the virtual BlueZ, and `doctor` passes the Bluetooth checks.

Cost: ~30–60 s (a venv, a wheel of this project, the dependencies from pip's cache or PyPI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.mqtt.virtual_radio import virtual_radio
from victron_ble_bms.sources.keys import KeyStore

ROOT = Path(__file__).resolve().parents[2]


def readme_install_line() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Home Assistant and MQTT", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"pip install '(victron-ble-bms\[[a-z,]+\])'", section)
    assert len(found) == 1, found  # exactly one install line for the service
    return found[0]


def test_the_readme_service_install_can_scan(tmp_path: Path) -> None:
    requirement = readme_install_line()
    # A copy of the project (not the checkout itself: pip builds in the source tree).
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", "tests", "benchmarks", "build", "*.egg-info", "__pycache__", "*.so", ".*cache"
        ),
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    extra = requirement[len("victron-ble-bms") :]
    done = subprocess.run(
        [*pip, "install", f"{src}{extra}"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    python = str(venv / "bin" / "python")
    imported = subprocess.run(
        [python, "-c", "import bleak, dbus_fast, aiomqtt; print('ok')"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert imported.stdout.strip() == "ok", imported.stderr
    exe = str(venv / "bin" / "victron-bms")
    with virtual_radio() as radio:
        store = KeyStore(tmp_path / "keys.toml")
        store.add(radio.address, radio.key)
        store.save()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "DBUS_SYSTEM_BUS_ADDRESS": radio.bus,
        }
        scan = subprocess.run(
            [exe, "scan", "--duration", "6", "--json", "--keys", str(store.path)],
            capture_output=True, text=True, timeout=90, env=env, cwd=tmp_path,
        )  # fmt: skip
        doctor = subprocess.run(
            [exe, "doctor", "--keys", str(store.path)],
            capture_output=True, text=True, timeout=90, env=env, cwd=tmp_path,
        )  # fmt: skip
    assert scan.returncode == 0, scan.stderr
    readings = [json.loads(line) for line in scan.stdout.splitlines() if line.startswith("{")]
    mine = [r for r in readings if r.get("address") == radio.address]
    assert mine and mine[-1].get("key_status", "ok") == "ok", scan.stdout[-2000:]
    assert isinstance(mine[-1].get("cell_voltages_v"), list)
    for name in ("packages", "D-Bus", "BlueZ", "adapter", "scan", "keys"):
        assert f"ok   {name}:" in doctor.stdout, doctor.stdout
    assert "FAIL broker: none configured" in doctor.stdout and doctor.returncode == 1
