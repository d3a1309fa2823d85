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
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing system packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
python3 -m ruff check victron_ble_bms tui tests benchmarks
python3 -m ruff format --check victron_ble_bms tui tests benchmarks
python3 -m mypy
python3 -m pytest "$@"
