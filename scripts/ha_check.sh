#!/usr/bin/env bash
# What a real, unmodified Home Assistant Core makes of `serve`'s MQTT discovery: run by hand
# (root), NOT in CI — installing Home Assistant takes minutes.
#   bash scripts/ha_check.sh [--settle S]     (logs: $VICTRON_HA_ROOT/tmp/ha-check-*)
# Home Assistant needs Python ≥ 3.13 and Debian 12 has 3.11, so this makes a Debian 13 (trixie)
# tree with debootstrap (as scripts/test-py313.sh does, but its own: HA's venv does not belong
# in the test tree), installs Home Assistant Core from PyPI with the constraints file from its
# own wheel, copies the checkout in, and runs scripts/ha_check.py there: mosquitto, HA
# (onboarded over HTTP, MQTT integration through its config flow), two `victron-bms serve`s
# (the emulator demo and a keyed capture replay with banks), one line per check, PASS/FAIL.
# VICTRON_HA_ROOT keeps the tree (default /var/tmp/victron-ha-trixie); VICTRON_HA_VERSION picks
# Home Assistant (default below; "latest" = the newest pip installs under Python 3.13);
# VICTRON_DEBIAN_MIRROR as in scripts/trixie.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

root=${VICTRON_HA_ROOT:-/var/tmp/victron-ha-trixie}
version=${VICTRON_HA_VERSION:-2026.2.3}
. scripts/trixie.sh
# gcc and the headers: HA pins lru-dict 1.3.0, which has no wheel for 3.13 on PyPI.
ensure_tree "$root" \
  python3.13,python3.13-venv,python3.13-dev,gcc,libc6-dev,ca-certificates,mosquitto,mosquitto-clients \
  /usr/bin/python3.13 /usr/bin/gcc /usr/bin/mosquitto_sub
mount_in proc proc "$root/proc"
mount_in bind /dev "$root/dev"
mount_in tmpfs tmpfs "$root/dev/shm"
copy_checkout "$root"

$sudo tee "$root/ha-check.sh" >/dev/null <<'INSIDE'
set -euo pipefail
version=$1; shift
if [ "$version" = latest ]; then
  [ -x /ha-pip/bin/pip ] || python3.13 -m venv /ha-pip
  version=$(/ha-pip/bin/pip index versions homeassistant 2>/dev/null \
    | sed -n 's/^homeassistant (\(.*\))$/\1/p')
  [ -n "$version" ] || { echo "pip found no Home Assistant for Python 3.13" >&2; exit 2; }
fi
ha=/ha-$version
if ! "$ha/bin/python" -c 'import homeassistant' 2>/dev/null; then
  echo "installing Home Assistant Core $version into $ha (a few minutes)"
  rm -rf "$ha" && python3.13 -m venv "$ha"
  dl=$(mktemp -d)
  "$ha/bin/pip" download -q --no-deps -d "$dl" "homeassistant==$version"
  wheel=$(ls "$dl"/homeassistant-*.whl)
  # Its own pins: without them pip backtracks for a long time.
  "$ha/bin/python" -c 'import sys, zipfile
sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("homeassistant/package_constraints.txt"))' \
    "$wheel" >"$dl/constraints.txt"
  "$ha/bin/pip" install -q -c "$dl/constraints.txt" "$wheel"
  rm -rf "$dl"
fi
# The project in its own venv (serve's side), separate from Home Assistant's.
[ -x /proj/bin/python ] || python3.13 -m venv /proj
/proj/bin/pip install -q -e "/src[mqtt]"
exec "$ha/bin/python" /src/scripts/ha_check.py --hass "$ha/bin/hass" \
  --victron-bms /proj/bin/victron-bms "$@"
INSIDE
$sudo chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
  LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
  SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt UV_NATIVE_TLS=1 \
  /bin/bash /ha-check.sh "$version" "$@"
