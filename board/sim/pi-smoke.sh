#!/usr/bin/env bash
# `make pi-smoke` / `make armv7-smoke`: a Raspberry Pi build of rtpmic, run under qemu-user on
# this machine, must
#   1. be an ELF for that CPU, print --help and accept every board/*/rtpmic.env (check-config);
#   2. stream: read a 5 s two-tone through ALSA (board/sim's `simfast` PCM: the `file` plugin
#      over `null`, which needs no jackd and no ALSA plugin of the foreign architecture), encode
#      Opus, and send RTP to a native `rtpmic probe` on loopback. The probe must receive ≥ 95 %
#      of the packets and decode audio at the tone's level, and the sender must have fallen
#      back to sendmmsg + epoll (qemu-user has no io_uring: ENOSYS).
#
# The PCM is unpaced (it returns as fast as it is read), so rtpmic runs with --no-drop and the
# 5 s of audio take about a second. board/sim's paced PCMs go through the ALSA jack plugin,
# which a foreign-architecture rtpmic would need as libasound2-plugins:arm64 — that drags in
# the arm64 ffmpeg libraries, which do not co-install with the native ones here.
#
# qemu runs without -L: the binary's loader and libc are the multiarch libc6:arm64/armhf that
# libasound2:arm64/armhf pull in. With -L /usr/aarch64-linux-gnu the cross toolchain's
# ld-linux (a different glibc build) would load that libc.so.6, and the mismatch hangs the
# first pthread_create.
#
# Usage: pi-smoke.sh aarch64|armv7 RTPMIC_BINARY [NATIVE_RTPMIC [NATIVE_SIM_TONE]]
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ARCH=${1:?usage: $0 aarch64|armv7 RTPMIC_BINARY [NATIVE_RTPMIC [NATIVE_SIM_TONE]]}
BIN=${2:?usage: $0 aarch64|armv7 RTPMIC_BINARY [NATIVE_RTPMIC [NATIVE_SIM_TONE]]}
PROBE=${3:-$ROOT/target/debug/rtpmic}
TONE=${4:-$(dirname "$PROBE")/examples/sim_tone}
SECONDS_OF_AUDIO=5
PACKETS=$((SECONDS_OF_AUDIO * 50))   # 20 ms Opus frames

fail() { echo "pi-smoke ($ARCH): FAILED: $*" >&2; exit 1; }
say() { echo "pi-smoke ($ARCH): $*"; }

case "$ARCH" in
aarch64) QEMU=qemu-aarch64-static; MACHINE=AArch64 ;;
armv7) QEMU=qemu-arm-static; MACHINE=ARM ;;
*) fail "unknown architecture $ARCH (aarch64 or armv7)" ;;
esac
command -v "$QEMU" >/dev/null || fail "$QEMU not found (Debian package qemu-user-static)"
[ -x "$BIN" ] || fail "$BIN missing (make cross-$ARCH)"
[ -x "$PROBE" ] || fail "native $PROBE missing (cargo build --bin rtpmic)"
[ -x "$TONE" ] || fail "native $TONE missing (cargo build --example sim_tone)"
machine=$(readelf -h "$BIN" | sed -n 's/^ *Machine: *//p')
[ "$machine" = "$MACHINE" ] || fail "$BIN is for '$machine', not $MACHINE"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rtpmic-pi-smoke.XXXXXX")
PROBE_PID=""
cleanup() {
    if [ -n "$PROBE_PID" ]; then kill "$PROBE_PID" 2>/dev/null || true; wait "$PROBE_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# rtpmic under qemu sees only the keys given here (no RTPMIC_* of the caller).
emu() { env -i PATH="$PATH" "$@"; }

# 1. The binary runs, and its config parser accepts every board profile.
emu "$QEMU" "$BIN" --help >"$TMP/help" 2>&1 || fail "--help exited $?: $(head -3 "$TMP/help")"
grep -q RTPMIC_DEST "$TMP/help" || fail "--help does not list the keys"
profiles=0
for env_file in "$ROOT"/board/*/rtpmic.env; do
    emu "$QEMU" "$BIN" check-config --env-file "$env_file" >"$TMP/check" 2>&1 ||
        fail "check-config --env-file ${env_file#"$ROOT"/}: $(cat "$TMP/check")"
    profiles=$((profiles + 1))
done
say "--help and check-config of $profiles board profiles: ok"

# 2. Stream to a native probe on loopback.
# (The generator is endless: it ends when head stops reading; the size check is the test.)
{ "$TONE" 48000 || true; } | head -c $((48000 * 2 * SECONDS_OF_AUDIO)) >"$TMP/tone.raw"
[ "$(stat -c %s "$TMP/tone.raw")" = $((48000 * 2 * SECONDS_OF_AUDIO)) ] || fail "$TONE wrote no test signal"
PORT=$((20000 + RANDOM % 20000 * 2))   # even: RTP; the probe's RTCP is PORT + 1
"$PROBE" probe "127.0.0.1:$PORT" --timeout 60 --wav "$TMP/probe.wav" >"$TMP/probe.out" 2>"$TMP/probe.err" &
PROBE_PID=$!
# Wait (bounded) until the probe's socket is bound, so no packet goes to a closed port.
port_hex=$(printf ':%04X ' "$PORT")
for _ in $(seq 200); do
    grep -q "$port_hex" /proc/net/udp && break
    kill -0 "$PROBE_PID" 2>/dev/null || fail "probe exited: $(cat "$TMP/probe.err")"
    sleep 0.05
done
grep -q "$port_hex" /proc/net/udp || fail "probe did not bind 127.0.0.1:$PORT within 10 s"

# Normal scheduling: SCHED_RR threads of an emulated rtpmic could starve the probe.
# RTPMIC_THREADS=3: with a sender thread, auto probes io_uring (one destination alone would
# be sent with sendmmsg by the encoder without probing), so the fallback shows.
status=0
emu ALSA_CONFIG_PATH="/usr/share/alsa/alsa.conf:$HERE/asound.conf" SIM_INFILE="$TMP/tone.raw" \
    RTPMIC_DEVICE=simfast RTPMIC_DEST="127.0.0.1:$PORT" RTPMIC_RT_PRIORITY=0 RTPMIC_THREADS=3 \
    timeout -s KILL 120 "$QEMU" "$BIN" run --seconds "$SECONDS_OF_AUDIO" --no-drop \
    >"$TMP/run.log" 2>&1 || status=$?
kill -TERM "$PROBE_PID"
probe_status=0
wait "$PROBE_PID" || probe_status=$?
PROBE_PID=""
sed 's/^/    rtpmic: /' "$TMP/run.log"
sed 's/^/    /' "$TMP/probe.err"
[ "$status" = 0 ] || fail "rtpmic run exited $status"
grep -q "sender: epoll (io_uring unavailable" "$TMP/run.log" ||
    fail "the log does not show the epoll fallback sender"
grep -q "stopped: .* packets=$PACKETS .*datagrams=$PACKETS " "$TMP/run.log" ||
    fail "rtpmic did not send $PACKETS packets"
[ "$probe_status" = 0 ] || fail "probe exited $probe_status"
received=$(sed -n 's/.* received=\([0-9]*\) .*/\1/p' "$TMP/probe.err")
[ -n "$received" ] || fail "no probe summary"
[ "$received" -ge $((PACKETS * 95 / 100)) ] || fail "the probe received $received of $PACKETS packets"
# The decoded audio's RMS level: the two-tone is about −16 dBFS, silence or noise is far off.
level=$(od -An -v -t d2 -j 44 "$TMP/probe.wav" |
    awk '{ for (i = 1; i <= NF; i++) { s += $i * $i; n++ } }
         END { if (n == 0 || s == 0) print -200; else printf "%.1f\n", 10 * log(s / n / 1073741824) / log(10) }')
awk -v l="$level" 'BEGIN { exit !(l > -20 && l < -12) }' ||
    fail "decoded level $level dBFS, expected the test tone's ≈ −16 dBFS"
say "ok: $received of $PACKETS packets arrived, decoded level $level dBFS, epoll sender"
