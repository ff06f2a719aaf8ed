#!/usr/bin/env bash
# Checks a package `make deb` built: its control fields, its conffile, the files it ships and
# that the binary inside is for the package's architecture. Usage: check-deb.sh DEB ARCH
set -euo pipefail
export LC_ALL=C
DEB=${1:?usage: $0 DEB ARCH}
ARCH=${2:?usage: $0 DEB ARCH}
fail() { echo "check-deb: FAILED: $DEB: $*" >&2; exit 1; }

[ -f "$DEB" ] || fail "no such file"
[ "$(dpkg-deb -f "$DEB" Package)" = rtpmic ] || fail "Package is not rtpmic"
[ "$(dpkg-deb -f "$DEB" Architecture)" = "$ARCH" ] || fail "Architecture is not $ARCH"
depends=$(dpkg-deb -f "$DEB" Depends)
for d in libasound2 libopus0 libc6; do
    grep -qw "$d" <<<"$depends" || fail "Depends lacks $d: $depends"
done
dpkg-deb -I "$DEB" conffiles | grep -qx /etc/default/rtpmic || fail "/etc/default/rtpmic is not a conffile"
contents=$(dpkg-deb -c "$DEB")
for f in ./usr/bin/rtpmic ./lib/systemd/system/rtpmic.service ./etc/default/rtpmic \
    ./usr/share/rtpmic/board/generic/rtpmic.env; do
    grep -q " $f\$" <<<"$contents" || fail "does not ship $f"
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
dpkg-deb -x "$DEB" "$TMP"
case "$ARCH" in
amd64) machine="Advanced Micro Devices X86-64" ;;
arm64) machine=AArch64 ;;
armhf) machine=ARM ;;
*) fail "unknown architecture $ARCH" ;;
esac
found=$(readelf -h "$TMP/usr/bin/rtpmic" | sed -n 's/^ *Machine: *//p')
[ "$found" = "$machine" ] || fail "usr/bin/rtpmic is for '$found'"
echo "check-deb: $DEB: ok ($ARCH, $(dpkg-deb -f "$DEB" Version), Depends: $depends)"
