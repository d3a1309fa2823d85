#!/usr/bin/env bash
# The tests under CPython 3.13 as well (issue 19): Debian 12 has only 3.11, so this makes a
# Debian 13 (trixie) tree with debootstrap from Debian's own packages — python3.13, dbus and
# mosquitto — copies the checkout into it and runs pytest there in a fresh venv.
#   bash scripts/test-py313.sh [PYTEST ARGS]      (root; scripts/test.sh calls it)
# VICTRON_PY313_ROOT keeps the tree between runs (default /var/tmp/victron-bms-trixie);
# VICTRON_DEBIAN_MIRROR names the mirror (default: the first Debian mirror this machine's own apt
# sources use, so the tree comes from where apt-get already gets its packages).
set -euo pipefail
cd "$(dirname "$0")/.."

root=${VICTRON_PY313_ROOT:-/var/tmp/victron-bms-trixie}
apt_mirror() {  # (sources.list may not exist: cat's status must not end the script)
  { cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } \
    | sed -n -e 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
      -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' \
    | { grep -v -e security -e updates || true; } | head -n 1
}
mirror=${VICTRON_DEBIAN_MIRROR:-$(apt_mirror)}
[ -n "$mirror" ] || { echo "no Debian mirror in /etc/apt: set VICTRON_DEBIAN_MIRROR" >&2; exit 2; }
packages=python3.13,python3.13-venv,ca-certificates,dbus,mosquitto,mosquitto-clients
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

if [ ! -x "$root/usr/bin/python3.13" ] || [ ! -x "$root/usr/sbin/mosquitto" ]; then
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || {
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq debootstrap >/dev/null
  }
  echo "making a Debian trixie tree with python3.13 in $root (about a minute or three)"
  $sudo rm -rf --one-file-system "$root"
  $sudo /usr/sbin/debootstrap --variant=minbase --include="$packages" trixie "$root" "$mirror" \
    >/dev/null
fi

mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do $sudo umount -l "${mounted[i]}" || true; done
}
trap cleanup EXIT
mount_in() { # TYPE-OR-BIND SOURCE TARGET
  $sudo mkdir -p "$3"
  if [ "$1" = bind ]; then $sudo mount --bind "$2" "$3"; else $sudo mount -t "$1" "$2" "$3"; fi
  mounted+=("$3")
}
mount_in proc proc "$root/proc"
mount_in bind /dev "$root/dev"
mount_in bind /dev/pts "$root/dev/pts"  # `script` (the dashboard's terminal tests) needs a pty
mount_in tmpfs tmpfs "$root/dev/shm"
mount_in tmpfs tmpfs "$root/tmp"

# The checkout, without git's objects; the host's resolver and CA bundle (a proxy's CA, if any).
$sudo rm -rf --one-file-system "$root/src"
$sudo mkdir -p "$root/src"
tar --exclude=./.git --exclude='*.egg-info' --exclude=./build --exclude='*.so' \
  --exclude='__pycache__' -cf - . | $sudo tar -xf - -C "$root/src"
$sudo cp /etc/resolv.conf "$root/etc/resolv.conf"
$sudo cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"

# Inside: a venv with the project and the test tools. theengsgateway is left out: its decoder
# has no wheel for 3.13 on PyPI (it would need cmake and a compiler), and the one test that
# runs it skips without it.
$sudo tee "$root/run-tests.sh" >/dev/null <<'INSIDE'
set -euo pipefail
cd /src
[ -x /venv313/bin/python ] || python3.13 -m venv /venv313
mapfile -t tools < <(/venv313/bin/python -c '
import tomllib
test = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["test"]
print("\n".join(r for r in test if not r.startswith(("theengsgateway", "victron-ble-bms["))))')
/venv313/bin/python -m pip install -q -e ".[full]" "${tools[@]}"
echo "under $(/venv313/bin/python -c 'import sys; print("CPython", sys.version.split()[0])')"
exec /venv313/bin/python -m pytest -p no:cacheprovider "$@"
INSIDE
# PATH starts with the venv, as an activated venv's does: tests run `victron-bms` by name.
$sudo chroot "$root" /usr/bin/env -i HOME=/root \
  PATH=/venv313/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin VIRTUAL_ENV=/venv313 \
  LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
  /bin/bash /run-tests.sh "$@"
