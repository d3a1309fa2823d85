#!/usr/bin/env bash
# Install everything the tests need (system tools + Python packages), then run them.
# Used by the README and by CI (.ci/run), so CI proves the README.
set -euo pipefail
cd "$(dirname "$0")/.."

# Say what happens before it happens, one line per step with the time since the start
# (a clean machine spends minutes installing before pytest starts: issue 25 item 9).
started=$SECONDS
step() { printf 'scripts/test.sh [%4ss] %s\n' "$((SECONDS - started))" "$*"; }
trap 'status=$?; step "finished (exit status $status)"' EXIT
step "checking system tools (apt-get installs only what is missing), then pip installs the" \
  "Python packages, then ruff, mypy and pytest run"

need=()
command -v dbus-daemon >/dev/null 2>&1 || need+=(dbus)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
# A real MQTT broker and an independent client for tests/mqtt (serve, HA discovery).
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
# Node and npm run a real signalk-server for tests/signalk (serve --signalk).
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# A real browser for tests/web (serve --http), driven by Playwright (its own browser download,
# `playwright install`, is never run: it uses /usr/bin/chromium).
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  step "installing system packages with apt-get (about 1-3 min on a clean machine):" \
    "${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# signalk-server from npm, outside the git tree and reused when present (~1 min to install).
# Pinned to 2.23.x: its engines field asks Node >= 20 (this machine's nodejs is 20; Debian 12's
# own package is 18, too old: tests/signalk then skip, saying so); later releases need Node 22
# (2.32.0: engines node >= 22).
signalk_dir="${VICTRON_BMS_SIGNALK_DIR:-$HOME/.cache/victron-ble-bms/signalk}"
if [ ! -x "$signalk_dir/node_modules/signalk-server/bin/signalk-server" ]; then
  step "npm: signalk-server 2.23.x into $signalk_dir for tests/signalk (about 1 min, once)"
  mkdir -p "$signalk_dir"
  npm install --prefix "$signalk_dir" --no-audit --no-fund --loglevel=error \
    signalk-server@~2.23.0 >/dev/null
fi

step "pip: this project with its [test] extra (bleak, textual, aiomqtt, pytest, hypothesis," \
  "victron-ble …; about 1 min the first time, seconds after)"
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
step "ruff check, ruff format --check"
python3 -m ruff check victron_ble_bms tui tests benchmarks
python3 -m ruff format --check victron_ble_bms tui tests benchmarks
step "mypy --strict"
python3 -m mypy
step "pytest (about 6-9 min on 2 cores)"
python3 -m pytest "$@"
# The same tests under CPython 3.13 (issue 19), in a Debian trixie tree: scripts/test-py313.sh.
if [ "${VICTRON_SKIP_PY313:-0}" != 1 ]; then
  step "pytest under CPython 3.13 (Debian trixie tree; about 6 min on 2 cores, a few more the first time)"
  bash scripts/test-py313.sh "$@"
fi
