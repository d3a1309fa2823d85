#!/usr/bin/env bash
# Install everything the tests need (system tools + Python packages), then run them.
# Used by the README and by CI (.ci/run), so CI proves the README.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dbus-daemon >/dev/null 2>&1 || need+=(dbus)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
# A real MQTT broker and an independent client for tests/mqtt (serve, HA discovery).
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
# A C compiler and Python's headers build the optional compiled helpers (protocol/_accel.c,
# sources/_accept.c), so the tests run their paths as well as the pure-Python ones
# (tests/protocol/test_accel.py, test_frozen.py, tests/scan/test_compiled_step.py).
command -v gcc >/dev/null 2>&1 || need+=(gcc)
python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || need+=(python3-dev)
# The helper's ARM AES (protocol/_aes_arm.h) is built for aarch64 and run under qemu against
# FIPS-197 (tests/protocol/test_aes_arm.py): a cross compiler and user-mode qemu, nothing more.
cross=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || cross+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || cross+=(qemu-user)
if [ $((${#need[@]} + ${#cross[@]})) -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing system packages: ${need[*]} ${cross[*]}"
  $sudo apt-get update -qq
  if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ ${#cross[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${cross[@]}" >/dev/null
  fi
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
python3 -m ruff check victron_ble_bms tui tests benchmarks setup.py
python3 -m ruff format --check victron_ble_bms tui tests benchmarks setup.py
python3 -m mypy
python3 -m pytest "$@"
# The same tests under CPython 3.13 (issue 19), in a Debian trixie tree: scripts/test-py313.sh.
if [ "${VICTRON_SKIP_PY313:-0}" != 1 ]; then
  bash scripts/test-py313.sh "$@"
fi
