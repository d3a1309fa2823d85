# A Debian 13 (trixie) tree for what needs a newer Python than Debian 12's 3.11, made with
# debootstrap from Debian's own packages; sourced by scripts/test-py313.sh (the tests under
# CPython 3.13) and scripts/ha_check.sh (a real Home Assistant), each with its own tree.
# VICTRON_DEBIAN_MIRROR names the mirror (default: the first Debian mirror this machine's own apt
# sources use, so the tree comes from where apt-get already gets its packages).
# Defines: $sudo, ensure_tree ROOT PACKAGES FILE…, mount_in TYPE-OR-BIND SOURCE TARGET (undone
# on exit), copy_checkout ROOT.

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

apt_mirror() {  # (sources.list may not exist: cat's status must not end the script)
  { cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } \
    | sed -n -e 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
      -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' \
    | { grep -v -e security -e updates || true; } | head -n 1
}

# The tree at ROOT with PACKAGES (comma-separated), made afresh unless every FILE (a path in the
# tree) is already there and executable.
ensure_tree() {
  local root=$1 packages=$2 file
  shift 2
  for file in "$@"; do
    [ -x "$root$file" ] || break
  done
  [ -x "$root$file" ] && return 0
  local mirror=${VICTRON_DEBIAN_MIRROR:-$(apt_mirror)}
  [ -n "$mirror" ] || { echo "no Debian mirror in /etc/apt: set VICTRON_DEBIAN_MIRROR" >&2; exit 2; }
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || {
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq debootstrap >/dev/null
  }
  echo "making a Debian trixie tree with python3.13 in $root (about a minute or three)"
  $sudo rm -rf --one-file-system "$root"
  $sudo /usr/sbin/debootstrap --variant=minbase --include="$packages" trixie "$root" "$mirror" \
    >/dev/null
}

mounted=()
unmount_all() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do $sudo umount -l "${mounted[i]}" || true; done
}
trap unmount_all EXIT
mount_in() { # TYPE-OR-BIND SOURCE TARGET
  $sudo mkdir -p "$3"
  if [ "$1" = bind ]; then $sudo mount --bind "$2" "$3"; else $sudo mount -t "$1" "$2" "$3"; fi
  mounted+=("$3")
}

# The checkout at ROOT/src, without git's objects or build products; the host's resolver and CA
# bundle (a proxy's CA, if any).
copy_checkout() {
  local root=$1
  $sudo rm -rf --one-file-system "$root/src"
  $sudo mkdir -p "$root/src"
  tar --exclude=./.git --exclude='*.egg-info' --exclude=./build --exclude='*.so' \
    --exclude='__pycache__' -cf - . | $sudo tar -xf - -C "$root/src"
  $sudo cp /etc/resolv.conf "$root/etc/resolv.conf"
  $sudo cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
}
