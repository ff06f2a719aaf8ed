#!/usr/bin/env bash
# `make deb`: turns a `make install DESTDIR=ROOT PREFIX=/usr` tree into
# OUTDIR/rtpmic_VERSION_ARCH.deb with dpkg-deb alone (no debhelper): the control file, the
# conffile list (/etc/default/rtpmic) and the maintainer scripts of packaging/debian/.
# The binary loses its debug info (not its symbols, so panics still name functions).
#
# Usage: deb.sh ROOT ARCH VERSION OUTDIR
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${1:?usage: $0 ROOT ARCH VERSION OUTDIR}
ARCH=${2:?usage: $0 ROOT ARCH VERSION OUTDIR}
VERSION=${3:?usage: $0 ROOT ARCH VERSION OUTDIR}
OUTDIR=${4:?usage: $0 ROOT ARCH VERSION OUTDIR}
MAINTAINER=${DEB_MAINTAINER:-rtpmic maintainers <rtpmic@localhost>}

fail() { echo "deb: $*" >&2; exit 1; }
BIN="$ROOT/usr/bin/rtpmic"
[ -x "$BIN" ] || fail "$BIN missing: run make install DESTDIR=$ROOT PREFIX=/usr first"
[ -f "$ROOT/lib/systemd/system/rtpmic.service" ] || fail "the unit is missing from $ROOT"
[ -f "$ROOT/etc/default/rtpmic" ] || fail "/etc/default/rtpmic is missing from $ROOT"

# The binary must be for ARCH: packaging an x86 binary as arm64 is the classic mistake.
case "$ARCH" in
amd64) machine="Advanced Micro Devices X86-64" ;;
arm64) machine=AArch64 ;;
armhf) machine=ARM ;;
i386) machine="Intel 80386" ;;
*) machine="" ;;
esac
found=$(readelf -h "$BIN" | sed -n 's/^ *Machine: *//p')
[ -z "$machine" ] || [ "$found" = "$machine" ] || fail "usr/bin/rtpmic is for '$found', not $ARCH"

# The target's strip (it knows the foreign ELF); plain strip when there is none.
gnu_type=$(dpkg-architecture -a"$ARCH" -qDEB_HOST_GNU_TYPE 2>/dev/null || true)
strip_tool=strip
if [ -n "$gnu_type" ] && command -v "$gnu_type-strip" >/dev/null; then strip_tool="$gnu_type-strip"; fi
"$strip_tool" --strip-debug "$BIN"

# libc6: at least the newest glibc symbol version the binary uses.
glibc=$(readelf --dyn-syms -W "$BIN" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
libc_dep="libc6${glibc:+ (>= $glibc)}"

mkdir -p "$ROOT/DEBIAN"
install -m 0644 "$HERE/debian/conffiles" "$ROOT/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$HERE/debian/$s" "$ROOT/DEBIAN/$s"; done
size_kib=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat >"$ROOT/DEBIAN/control" <<EOF
Package: rtpmic
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $size_kib
Depends: $libc_dep, libasound2, libopus0, adduser | passwd
Recommends: alsa-utils
Section: sound
Priority: optional
Description: microphone to RTP streamer for IP intercom appliances
 rtpmic captures a microphone through ALSA, encodes Opus, G.711 or L16 and
 sends RTP/RTCP over UDP with low, bounded latency. It runs as a hardened
 systemd service (rtpmic.service) configured by /etc/default/rtpmic; board
 profiles for Raspberry Pi microphones are in /usr/share/rtpmic/board.
EOF

mkdir -p "$OUTDIR"
deb="$OUTDIR/rtpmic_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$deb" >/dev/null
echo "deb: $deb"
