#!/usr/bin/env bash
# The tests under CPython 3.13 as well (issue 19): Debian 12 has only 3.11, so this makes a
# Debian 13 (trixie) tree with debootstrap from Debian's own packages — python3.13, dbus and
# mosquitto — copies the checkout into it and runs pytest there in a fresh venv.
#   bash scripts/test-py313.sh [PYTEST ARGS]      (root; scripts/test.sh calls it)
# VICTRON_PY313_ROOT keeps the tree between runs (default /var/tmp/victron-bms-trixie);
# VICTRON_DEBIAN_MIRROR names the mirror (scripts/trixie.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

root=${VICTRON_PY313_ROOT:-/var/tmp/victron-bms-trixie}
. scripts/trixie.sh
ensure_tree "$root" python3.13,python3.13-venv,ca-certificates,dbus,mosquitto,mosquitto-clients \
  /usr/bin/python3.13 /usr/sbin/mosquitto
mount_in proc proc "$root/proc"
mount_in bind /dev "$root/dev"
mount_in bind /dev/pts "$root/dev/pts"  # `script` (the dashboard's terminal tests) needs a pty
mount_in tmpfs tmpfs "$root/dev/shm"
mount_in tmpfs tmpfs "$root/tmp"
copy_checkout "$root"

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
