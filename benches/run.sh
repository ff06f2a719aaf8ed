#!/usr/bin/env bash
# `make bench`: measures rtpmic side by side with GStreamer, ffmpeg and a bare C loop
# (benches/bare_opus.c) on the simulated board, and regenerates docs/PERFORMANCE.md from the
# numbers. Needs target/release/rtpmic (make build).
#
#   1. Unpaced, 600 s of speech-like audio, the same input and the same codec settings for
#      every tool: Opus 32 kb/s 20 ms (rtpmic, GStreamer, ffmpeg, bare encode, bare encode +
#      sendto), PCMU 20 ms and L16 10 ms (rtpmic, GStreamer, ffmpeg). CPU, wall time, peak
#      RSS, and the packets a receiver got (benches/jitter_rx.c). BENCH_REPS repetitions
#      (default 5), every tool once in each, in turn; medians, and each tool's ratio to
#      rtpmic from the same repetition.
#   2. Start-up: exec to the first packet on the wire, BENCH_STARTUP_RUNS times (default 7).
#   3. Paced in real time (jackd dummy server): Opus 20 ms and 2.5 ms frames, without and
#      with a CPU hog on every core: rtpmic's added-latency histogram, packet interval
#      jitter from kernel receive timestamps, CPU. rtpmic runs twice, as deployed and with
#      RTPMIC_PACING=on ("rtpmicp": paced release, src/net/pacer.rs), BENCH_PACED_S s each
#      (default 60); the bare loop, GStreamer and ffmpeg BENCH_PEER_PACED_S s (default 30) each.
#   4. Fan-out (cargo bench --bench fanout).
#   5. Pull (RTSP): benches/rtsp_bench.sh, rtpmic's RTSP server side by side with
#      gst-rtsp-server (1, 16, 64 clients over UDP and TCP; the push path while clients
#      churn). BENCH_RTSP=0 leaves it out.
#
# BENCH_BEFORE_BIN=PATH (and BENCH_BEFORE_REV=name, for the document): a second rtpmic
# binary ("rtpmicB", e.g. a release build of an earlier commit) runs every rtpmic push-path
# measurement side by side with this tree's: the unpaced Opus, PCMU and L16 runs of each
# repetition (right after this tree's), the paced runs without pacing (2 frame sizes x 2
# loads) and the start-up runs; the document gets a before/after table.
#
# BENCH_QUIET_LOAD (default 0.8 in a full run; empty: do not wait): before the unpaced
# block, the paced block and the RTSP part, wait for the 1-minute load average to fall below
# it (this machine is shared), polling every 60 s for at most BENCH_QUIET_WAIT_S (default
# 2700) s; the loads and waits are recorded in the document.
#
# BENCH_QUICK=1: a smoke run (60 s input, 1 repetition, 5 s paced runs, 2 start-ups, no
# fan-out, short RTSP runs) written to /tmp/rtpmic-bench-quick.md unless BENCH_OUT says
# where. BENCH_OUT overrides the output path. Takes about 20 minutes in full on a 2-core
# machine, plus ~6 with BENCH_BEFORE_BIN and ~25 for the RTSP part.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
cd "$ROOT"
RTPMIC=$ROOT/target/release/rtpmic
QUICK=${BENCH_QUICK:-}
if [ -n "$QUICK" ]; then
    OUT=${BENCH_OUT:-/tmp/rtpmic-bench-quick.md}
    AUDIO_S=${BENCH_AUDIO_S:-60}
    REPS=${BENCH_REPS:-1}
    PACED_S=${BENCH_PACED_S:-5}
    PEER_PACED_S=${BENCH_PEER_PACED_S:-5}
    STARTUP_RUNS=${BENCH_STARTUP_RUNS:-2}
    FANOUT=${BENCH_FANOUT:-0}
    QUIET_LOAD=${BENCH_QUIET_LOAD-}
else
    OUT=${BENCH_OUT:-$ROOT/docs/PERFORMANCE.md}
    AUDIO_S=${BENCH_AUDIO_S:-600}
    REPS=${BENCH_REPS:-5}
    PACED_S=${BENCH_PACED_S:-60}
    PEER_PACED_S=${BENCH_PEER_PACED_S:-30}
    STARTUP_RUNS=${BENCH_STARTUP_RUNS:-7}
    FANOUT=${BENCH_FANOUT:-1}
    QUIET_LOAD=${BENCH_QUIET_LOAD-0.8}
fi
QUIET_WAIT_S=${BENCH_QUIET_WAIT_S:-2700}
RTSP=${BENCH_RTSP:-1}
BEFORE=${BENCH_BEFORE_BIN:-}
BEFORE_REV=${BENCH_BEFORE_REV:-before}
# A full run above this projected total (seconds) shortens the paced runs. The last full run
# took 907 s (+ ~60 s of fan-out) before rtpmicp's 4 paced runs (~250 s more) were added.
BUDGET_S=${BENCH_BUDGET_S:-$([ -n "${BENCH_BEFORE_BIN:-}" ] && echo 1900 || echo 1500)}
EXPECT_20=$((AUDIO_S * 50))   # 20 ms packets (Opus, PCMU)
EXPECT_10=$((AUDIO_S * 100))  # 10 ms packets (L16)
REDUCED=""
HOGS=$(nproc)

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

[ -x "$RTPMIC" ] || die "$RTPMIC missing: run 'make build' (or 'make bench')"
[ -z "$BEFORE" ] || [ -x "$BEFORE" ] || die "BENCH_BEFORE_BIN=$BEFORE: not an executable"
for tool in cc pkg-config python3 jackd jack_wait timeout gst-launch-1.0 gst-inspect-1.0 ffmpeg chrt yes; do
    command -v "$tool" >/dev/null || die "$tool not found (make deps installs the board's packages)"
done
# The Debian package the bench needs beyond `make deps`: GStreamer's ALSA source, for the
# paced GStreamer pipeline.
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
install_pkg() {
    log "installing $1 (Debian package '$2')"
    $SUDO apt-get install -y -q --no-install-recommends "$2" >/dev/null ||
        { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends "$2" >/dev/null; } ||
        die "cannot install $2"
}
gst-inspect-1.0 alsasrc >/dev/null 2>&1 || install_pkg "GStreamer's alsasrc" gstreamer1.0-alsa
for el in alsasrc wavparse audioconvert opusenc rtpopuspay mulawenc rtppcmupay rtpL16pay udpsink; do
    gst-inspect-1.0 "$el" >/dev/null 2>&1 || die "GStreamer element $el missing (gstreamer1.0-plugins-base/-good/-alsa)"
done
ffmpeg -hide_banner -h encoder=libopus 2>/dev/null | grep -q 'Encoder libopus' || die "ffmpeg has no libopus encoder"

# Only the keys set below reach rtpmic.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^RTPMIC_' || true)
unset SIM_INFILE JACK_DEFAULT_SERVER GST_DEBUG GST_TRACERS
export ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf:$ROOT/board/sim/asound.conf

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rtpmic-bench.XXXXXX")
JACKD_PID=""
RX_PID=""
HOG_PIDS=()
cleanup() {
    # Only what this script started, by PID. jackd gets SIGTERM, never SIGKILL: a killed
    # jackd keeps its slot in jack's server registry.
    local p
    for p in "${HOG_PIDS[@]}" $RX_PID; do kill "$p" 2>/dev/null || true; done
    if [ -n "$JACKD_PID" ]; then
        kill -TERM "$JACKD_PID" 2>/dev/null || true
        wait "$JACKD_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits for the 1-minute load average to fall below QUIET_LOAD (other people's builds and tests
# share this machine); wait_quiet PART appends what happened to QUIET_NOTES.
QUIET_NOTES=""
wait_quiet() {
    [ -n "$QUIET_LOAD" ] || return 0
    local t0 l
    t0=$(date +%s)
    while :; do
        l=$(cut -d' ' -f1 /proc/loadavg)
        awk "BEGIN { exit !($l < $QUIET_LOAD) }" && break
        if [ $(($(date +%s) - t0)) -ge "$QUIET_WAIT_S" ]; then
            QUIET_NOTES+="${QUIET_NOTES:+ }$1: the load average stayed at or above ${QUIET_LOAD} for ${QUIET_WAIT_S} s (last ${l}), measured anyway."
            log "$1: load average still ${l} after ${QUIET_WAIT_S} s: measuring anyway"
            return 0
        fi
        log "$1: load average ${l} >= ${QUIET_LOAD}: waiting 60 s"
        sleep 60
    done
    QUIET_NOTES+="${QUIET_NOTES:+ }$1: waited $(($(date +%s) - t0)) s for the load average to fall below ${QUIET_LOAD} (then ${l})."
}

T_START=$(date +%s)
wait_quiet "Unpaced"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- inputs and tools --------------------------------------------------------------------
log "generating ${AUDIO_S} s of speech-like input (48 kHz and 8 kHz; raw for rtpmic and bare_opus, WAV for GStreamer and ffmpeg)"
for rate in 48000 8000; do
    python3 "$ROOT/benches/gen_speech.py" "$rate" "$AUDIO_S" "$TMP/speech$((rate / 1000))k.raw"
    python3 -c '
import sys, wave
with open(sys.argv[1], "rb") as f, wave.open(sys.argv[2], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(int(sys.argv[3])); w.writeframes(f.read())
' "$TMP/speech$((rate / 1000))k.raw" "$TMP/speech$((rate / 1000))k.wav" "$rate"
done
# shellcheck disable=SC2046 # pkg-config's flags are meant to split
cc -O2 -Wall "$ROOT/benches/bare_opus.c" $(pkg-config --cflags --libs opus alsa) -o "$TMP/bare_opus"
cc -O2 -Wall "$ROOT/benches/jitter_rx.c" -o "$TMP/jitter_rx" -lm
cc -O2 -Wall -static "$ROOT/benches/rusage.c" -o "$TMP/rusage" 2>/dev/null ||
    cc -O2 -Wall "$ROOT/benches/rusage.c" -o "$TMP/rusage"
# A first gst-launch may rebuild GStreamer's plugin registry: not in a measured run.
gst-launch-1.0 -q fakesrc num-buffers=1 ! fakesink >/dev/null 2>&1 || true

# --- measuring ---------------------------------------------------------------------------
# timed NAME LIMIT_S CMD...: runs CMD under benches/rusage.c (killed after LIMIT_S); leaves
# "user sys wall maxrss_kib voluntary_cs involuntary_cs" in $TMP/NAME.time, stdout/stderr in $TMP/NAME.out/.err.
timed() {
    local name=$1 limit=$2 rc=0
    shift 2
    timeout -k 10 "$limit" "$TMP/rusage" "$TMP/$name.time" "$@" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        tail -n 5 "$TMP/$name.err" >&2
        die "$name: still running after ${limit} s (hang?); killed"
    fi
    if [ "$rc" != 0 ]; then
        tail -n 20 "$TMP/$name.err" >&2
        die "$name: exit status $rc"
    fi
}
# Field N (1 user, 2 sys, 3 wall, 4 maxrss KiB, 5/6 voluntary/involuntary switches) of NAME's time.
tfield() { awk -v n="$2" '{ v = $n } END { print v }' "$TMP/$1.time"; }
cpu_of() { awk '{ u = $1; s = $2 } END { printf "%.4f", u + s }' "$TMP/$1.time"; }
# KEY from rtpmic's final "stopped:" line in NAME's stderr.
stat_of() {
    local line
    line=$(grep 'INFO stopped:' "$TMP/$1.err" | tail -n 1) || die "$1: no final stats line"
    sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $line"
}
# KEY from a key=value line in FILE.
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $(tail -n 1 "$1")"; }
m() { echo "$@" | median; }

# The receiver: start_rx NAME [jitter_rx options] binds a port pair and sets PORT;
# stop_rx drains it and leaves its key=value line in $TMP/NAME.rx.
start_rx() {
    local name=$1
    shift
    rm -f "$TMP/$name.port"
    "$TMP/jitter_rx" "$TMP/$name.port" "$@" >"$TMP/$name.rx" 2>"$TMP/$name.rxerr" &
    RX_PID=$!
    RX_NAME=$name
    for _ in $(seq 100); do [ -s "$TMP/$name.port" ] && break; sleep 0.02; done
    [ -s "$TMP/$name.port" ] || die "$name: jitter_rx did not start: $(cat "$TMP/$name.rxerr")"
    PORT=$(cat "$TMP/$name.port")
}
stop_rx() {
    kill -TERM "$RX_PID" 2>/dev/null || true
    wait "$RX_PID" || die "$RX_NAME: jitter_rx failed: $(cat "$TMP/$RX_NAME.rxerr")"
    RX_PID=""
    [ -s "$TMP/$RX_NAME.rx" ] || die "$RX_NAME: jitter_rx printed nothing"
}
# check_rx NAME MIN MAX: the receiver got MIN..MAX packets, in sequence, none dropped.
check_rx() {
    local got gaps drops
    got=$(kv "$TMP/$1.rx" packets) gaps=$(kv "$TMP/$1.rx" seq_gaps) drops=$(kv "$TMP/$1.rx" drops)
    if [ "$got" -lt "$2" ] || [ "$got" -gt "$3" ] || [ "$gaps" != 0 ] || [ "$drops" != 0 ]; then
        die "$1: receiver got $got packets (expected $2..$3), $gaps sequence gaps, $drops dropped $(grep -h 'INFO stopped:' "$TMP/$1.err" 2>/dev/null | sed 's/.*stopped:/(rtpmic:/; s/$/)/')"
    fi
}

# Command lines. Every tool gets the same settings; the document lists them.
OPUS_GST="opusenc bitrate=32000 complexity=10 audio-type=voice bitrate-type=constrained-vbr bandwidth=auto"
# rtpmic's own default expects 5 % loss (RTPMIC_OPUS_LOSS_PERCENT=auto, floor 5), which
# changes what libopus codes; every other tool tells libopus 0 %, so rtpmic does here too.
OPUS_RTPMIC=(RTPMIC_CODEC=opus RTPMIC_BITRATE=32000 RTPMIC_OPUS_COMPLEXITY=10 RTPMIC_OPUS_APPLICATION=voip
    RTPMIC_OPUS_LOSS_PERCENT=0)
OPUS_FF=(-c:a libopus -b:a 32k -compression_level 10 -application voip -vbr constrained)
FF=(ffmpeg -nostdin -hide_banner -loglevel error)
RT_ENV=(RTPMIC_RT_PRIORITY=50 RTPMIC_STATS_INTERVAL_S=0 RTPMIC_LOG_LEVEL=info)
# cmd_for TOOL CODEC PORT [paced FRAME_MS SECONDS]: sets CMD (array).
cmd_for() {
    local tool=$1 codec=$2 port=$3 paced=${4:-} frame=${5:-20} secs=${6:-0}
    local dest=127.0.0.1:$port fus bin=$RTPMIC
    fus=$(calc '%d' "$frame * 1000")
    # The other binary (BENCH_BEFORE_BIN) runs exactly as this tree's.
    if [ "$tool" = rtpmicB ]; then
        bin=$BEFORE
        tool=rtpmic
    fi
    case "$tool,$codec,$paced" in
    rtpmic,opus,)
        CMD=(env SIM_INFILE="$TMP/speech48k.raw" RTPMIC_DEVICE=simfast RTPMIC_DEST="$dest" "${OPUS_RTPMIC[@]}"
            RTPMIC_FRAME_MS=20 "${RT_ENV[@]}" "$bin" run --seconds "$AUDIO_S" --no-drop) ;;
    rtpmic,pcmu,)
        CMD=(env SIM_INFILE="$TMP/speech8k.raw" RTPMIC_DEVICE=simfast RTPMIC_DEST="$dest" RTPMIC_CODEC=pcmu
            RTPMIC_RATE=8000 RTPMIC_FRAME_MS=20 "${RT_ENV[@]}" "$bin" run --seconds "$AUDIO_S" --no-drop) ;;
    rtpmic,l16,)
        CMD=(env SIM_INFILE="$TMP/speech48k.raw" RTPMIC_DEVICE=simfast RTPMIC_DEST="$dest" RTPMIC_CODEC=l16
            RTPMIC_RATE=48000 RTPMIC_FRAME_MS=10 "${RT_ENV[@]}" "$bin" run --seconds "$AUDIO_S" --no-drop) ;;
    rtpmic,opus,paced)
        CMD=(env SIM_INFILE="$TMP/speech48k.raw" RTPMIC_DEVICE=simfile RTPMIC_DEST="$dest" "${OPUS_RTPMIC[@]}"
            RTPMIC_FRAME_MS="$frame" "${RT_ENV[@]}" "$bin" run --seconds "$secs") ;;
    rtpmicp,opus,paced)
        CMD=(env SIM_INFILE="$TMP/speech48k.raw" RTPMIC_DEVICE=simfile RTPMIC_DEST="$dest" "${OPUS_RTPMIC[@]}"
            RTPMIC_FRAME_MS="$frame" "${RT_ENV[@]}" RTPMIC_PACING=on "$bin" run --seconds "$secs") ;;
    bare,opus,) CMD=("$TMP/bare_opus" "$TMP/speech48k.raw") ;;
    send,opus,) CMD=("$TMP/bare_opus" "$TMP/speech48k.raw" --send 127.0.0.1 "$port") ;;
    send,pcmu,) CMD=("$TMP/bare_opus" "$TMP/speech8k.raw" --codec pcmu --send 127.0.0.1 "$port") ;;
    send,l16,) CMD=("$TMP/bare_opus" "$TMP/speech48k.raw" --codec l16 --frame-ms 10 --send 127.0.0.1 "$port") ;;
    sendalsa,pcmu,)
        CMD=(env SIM_INFILE="$TMP/speech8k.raw" "$TMP/bare_opus" --alsa simfast --seconds "$AUDIO_S" --codec pcmu
            --send 127.0.0.1 "$port") ;;
    sendalsa,l16,)
        CMD=(env SIM_INFILE="$TMP/speech48k.raw" "$TMP/bare_opus" --alsa simfast --seconds "$AUDIO_S" --codec l16
            --frame-ms 10 --send 127.0.0.1 "$port") ;;
    bare,opus,paced)
        CMD=(env SIM_INFILE="$TMP/speech48k.raw" chrt -r 50 "$TMP/bare_opus" --alsa simfile --seconds "$secs"
            --frame-ms "$frame" --send 127.0.0.1 "$port") ;;
    gst,opus,)
        # shellcheck disable=SC2086 # $OPUS_GST is a list of properties
        CMD=(gst-launch-1.0 -q filesrc location="$TMP/speech48k.wav" ! wavparse ! audioconvert
            ! $OPUS_GST frame-size=20 ! rtpopuspay ! udpsink host=127.0.0.1 port="$port" sync=false) ;;
    gst,pcmu,)
        CMD=(gst-launch-1.0 -q filesrc location="$TMP/speech8k.wav" ! wavparse ! audioconvert ! mulawenc
            ! rtppcmupay min-ptime=20000000 max-ptime=20000000 ! udpsink host=127.0.0.1 port="$port" sync=false) ;;
    gst,l16,)
        CMD=(gst-launch-1.0 -q filesrc location="$TMP/speech48k.wav" ! wavparse ! audioconvert
            ! rtpL16pay min-ptime=10000000 max-ptime=10000000 ! udpsink host=127.0.0.1 port="$port" sync=false) ;;
    gst,opus,paced)
        # shellcheck disable=SC2086
        CMD=(env SIM_INFILE="$TMP/speech48k.raw" gst-launch-1.0 -q alsasrc device=simfile latency-time="$fus"
            num-buffers="$(calc '%d' "$secs * 1000 / $frame")" ! audio/x-raw,format=S16LE,rate=48000,channels=1
            ! $OPUS_GST frame-size="$frame" ! rtpopuspay ! udpsink host=127.0.0.1 port="$port" sync=false) ;;
    ffmpeg,opus,)
        CMD=("${FF[@]}" -i "$TMP/speech48k.wav" "${OPUS_FF[@]}" -frame_duration 20 -f rtp "rtp://$dest") ;;
    ffmpeg,pcmu,)
        CMD=("${FF[@]}" -i "$TMP/speech8k.wav" -af asetnsamples=n=160 -c:a pcm_mulaw -f rtp "rtp://$dest") ;;
    ffmpeg,l16,)
        CMD=("${FF[@]}" -i "$TMP/speech48k.wav" -af asetnsamples=n=480 -c:a pcm_s16be -f rtp "rtp://$dest") ;;
    ffmpeg,opus,paced)
        CMD=("${FF[@]}" -re -t "$secs" -i "$TMP/speech48k.wav" "${OPUS_FF[@]}" -frame_duration "$frame"
            -f rtp "rtp://$dest") ;;
    *) die "no command for $tool $codec $paced" ;;
    esac
}

# rtpmic's own files: the binary and the libraries it is linked with (real paths, as in
# /proc/PID/smaps). Whatever else is mapped from a file came in through alsa-lib's plugins.
OWN_FILES=$(
    {
        echo "$RTPMIC"
        ldd "$RTPMIC" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
    } | xargs -r readlink -f | tr '\n' ' '
)
# Resident KiB of PID, split: "total anonymous own_files plugin_files jack_shm".
rss_breakdown() {
    awk -v own=" $OWN_FILES " '
        /^[0-9a-f]+-[0-9a-f]+ / { name = $6; next }
        /^Rss:/ {
            kb = $2; total += kb
            if (name ~ /^\/dev\/shm\/jack/) jack += kb
            else if (name == "" || name ~ /^\[/) anon += kb
            else if (index(own, " " name " ")) ownf += kb
            else plug += kb
        }
        END { printf "%d %d %d %d %d\n", total, anon, ownf, plug, jack }' "/proc/$1/smaps"
}
# "tid comm cpu_ns" for every thread of PID (CPU from schedstat: exact, unlike the tick-sampled
# user/sys split).
thread_cpu() {
    local t
    for t in /proc/"$1"/task/*; do
        printf '%s %s %s\n' "${t##*/}" "$(tr ' ' '_' <"$t/comm")" "$(cut -d' ' -f1 "$t/schedstat")"
    done 2>/dev/null
}
# Two thread_cpu snapshots SECONDS apart -> ms CPU per second for the whole process.
proc_rate() {
    join <(sort "$1") <(sort "$2") | awk -v secs="$3" '{ d += ($5 - $3) } END { printf "%.2f\n", d / 1e6 / secs }'
}
# The same for rtpmic by thread: "main capture encode send jack". rtpmic names its threads;
# libjack's client threads, started from inside snd_pcm_open on the capture thread, inherit
# its name, so the first rtpmic-capture (lowest TID) is rtpmic's and later ones (and anything
# unnamed) belong to the simulated board. An rtpmic that runs two threads (rtpmic-encode also
# sends) has no rtpmic-send: its send column is 0.00.
thread_split() {
    join <(sort "$1") <(sort "$2") | sort -n | awk -v secs="$3" '
        { d = ($5 - $3) / 1e6 / secs; c = $2 }
        c == "rtpmic-capture" && !seen++ { cap += d; next }
        c == "rtpmic-encode" { enc += d; next }
        c == "rtpmic-send" { snd += d; next }
        c == "rtpmic" { main += d; next }
        { jack += d }
        END { printf "%.2f %.2f %.2f %.2f %.2f\n", main, cap, enc, snd, jack }'
}

# --- 1. unpaced ---------------------------------------------------------------------------
declare -A R   # R[codec,tool,rep,field]: cpu user sys wall rss vcs pkts bytes
SHORT=""      # unpaced rtpmic runs that ended early on a (false) overrun
UNPACED=("opus rtpmic" "opus gst" "opus ffmpeg" "opus bare" "opus send"
    "pcmu rtpmic" "pcmu gst" "pcmu ffmpeg" "pcmu send" "pcmu sendalsa"
    "l16 rtpmic" "l16 gst" "l16 ffmpeg" "l16 send" "l16 sendalsa")
if [ -n "$BEFORE" ]; then
    # The other binary right after this tree's, for each codec.
    UNPACED=("opus rtpmic" "opus rtpmicB" "opus gst" "opus ffmpeg" "opus bare" "opus send"
        "pcmu rtpmic" "pcmu rtpmicB" "pcmu gst" "pcmu ffmpeg" "pcmu send" "pcmu sendalsa"
        "l16 rtpmic" "l16 rtpmicB" "l16 gst" "l16 ffmpeg" "l16 send" "l16 sendalsa")
fi
rep=1
while [ "$rep" -le "$REPS" ]; do
    log "unpaced repetition $rep/$REPS"
    t0=$(date +%s.%N)
    for pair in "${UNPACED[@]}"; do
        read -r codec tool <<<"$pair"
        n=$codec-$tool-$rep
        expect=$EXPECT_20
        [ "$codec" = l16 ] && expect=$EXPECT_10
        # Encoders that flush their look-ahead at the end send one more Opus packet.
        slack=0
        [ "$codec" = opus ] && slack=2
        start_rx "$n" $([ "$codec" = opus ] && echo --opus)
        cmd_for "$tool" "$codec" "$PORT"
        timed "$n" 300 "${CMD[@]}"
        stop_rx
        if [ "$tool" = bare ]; then
            grep -q "^packets=$expect " "$TMP/$n.out" || die "$n: $(cat "$TMP/$n.out")"
            R[$codec,$tool,$rep,pkts]=$expect
        else
            lo=$expect
            if [ "$tool" = rtpmic ] || [ "$tool" = rtpmicB ]; then
                # rtpmic treats a gap between two reads longer than its ALSA buffer as an
                # overrun the device did not report, and adds the samples to the timestamp
                # (and to --seconds), so a capture thread kept off the CPU that long (other
                # people's real-time processes on this machine) ends the run a few frames
                # early. Allowed (and reported) up to 1 %; rtpmic's count and the receiver's
                # must still agree.
                lo=$(stat_of "$n" packets)
                if [ "$lo" != "$expect" ]; then
                    [ "$(stat_of "$n" xruns)" -gt 0 ] && [ "$lo" -ge $((expect * 99 / 100)) ] ||
                        die "$n: rtpmic counted $lo packets, expected $expect: $(grep 'INFO stopped:' "$TMP/$n.err")"
                    SHORT+="${SHORT:+; }$codec repetition $rep: $lo packets, $(stat_of "$n" xruns) overrun(s), $(stat_of "$n" samples_lost) samples counted as lost"
                    log "$n: rtpmic reported $(stat_of "$n" xruns) overrun(s) and sent $lo packets"
                fi
                slack=0
            fi
            check_rx "$n" "$lo" $((expect + slack))
            R[$codec,$tool,$rep,pkts]=$(kv "$TMP/$n.rx" packets)
            R[$codec,$tool,$rep,bytes]=$(kv "$TMP/$n.rx" bytes)
        fi
        R[$codec,$tool,$rep,cpu]=$(cpu_of "$n")
        for f in user:1 sys:2 wall:3 rss:4 vcs:5; do R[$codec,$tool,$rep,${f%:*}]=$(tfield "$n" "${f#*:}"); done
    done
    if [ "$rep" = 1 ] && [ -z "$QUICK${BENCH_PACED_S:-}${BENCH_PEER_PACED_S:-}" ]; then
        # Projected total: what ran so far, the remaining repetitions, start-up runs, the
        # paced runs (2 frame sizes x 2 loads x (rtpmic + rtpmicp [+ rtpmicB] + 3 peers), ~3 s
        # of start/stop each) and ~60 s of fan-out (the RTSP part is not counted).
        rep_s=$(calc '%.0f' "$(date +%s.%N) - $t0")
        projected=$(($(date +%s) - T_START + (REPS - 1) * rep_s + STARTUP_RUNS * 5 * 2 + 4 * ($([ -n "$BEFORE" ] && echo 3 || echo 2) * PACED_S + 3 * PEER_PACED_S + 15) + 60))
        if [ "$projected" -gt "$BUDGET_S" ]; then
            PACED_S=30
            PEER_PACED_S=20
            REDUCED="The first repetition projected ${projected} s in all (budget ${BUDGET_S} s: the machine is slow or busy), so the paced runs were shortened to ${PACED_S} s (rtpmic, each pacing mode) and ${PEER_PACED_S} s (the others)."
            log "projected ${projected} s > ${BUDGET_S} s: paced runs ${PACED_S} s / ${PEER_PACED_S} s"
        fi
    fi
    rep=$((rep + 1))
done

# --- jackd ---------------------------------------------------------------------------------
# Own jackd, with board/sim/sim.sh's parameters (dummy driver, 48 kHz) under a server name of
# our own, so that a board someone else is using is never touched. Its period is 5 ms (240
# frames, as board/sim) for 20 ms frames and 2.5 ms (120) for 2.5 ms frames: a device period
# longer than the frame would deliver frames in bursts and make interval jitter meaningless.
# Its threads run at SCHED_FIFO 70 (its clients' jack threads inside each process at 65):
# above rtpmic's SCHED_RR 50 and anything else real-time on a shared machine, so the
# simulated device keeps time the way hardware (an interrupt) does.
JACKD_LOG=""
start_jackd() {
    export JACK_DEFAULT_SERVER=rtpmic-bench-$$-$1
    JACKD_LOG=$TMP/jackd-$1.log
    JACK_NO_AUDIO_RESERVATION=1 jackd -n "$JACK_DEFAULT_SERVER" -R -P 70 -d dummy -r 48000 -p "$1" -C 1 -P 1 \
        >"$JACKD_LOG" 2>&1 &
    JACKD_PID=$!
    jack_wait -s "$JACK_DEFAULT_SERVER" -w -t 10 >/dev/null 2>&1 || { cat "$JACKD_LOG" >&2; die "jackd did not come up"; }
    sleep 0.5
    kill -0 "$JACKD_PID" 2>/dev/null || { cat "$JACKD_LOG" >&2; die "jackd exited"; }
}
stop_jackd() {
    kill -TERM "$JACKD_PID" 2>/dev/null || true
    wait "$JACKD_PID" 2>/dev/null || true
    JACKD_PID=""
}
# Late wake-ups of jackd's dummy driver so far ("JackTimedDriver::Process XRun").
jack_late() { grep -c 'JackTimedDriver::Process XRun' "$JACKD_LOG" || true; }

# --- 2. start-up ----------------------------------------------------------------------------
start_jackd 240
declare -A S   # S[tool]: start-up µs of every run
STARTUP_TOOLS=(rtpmic rtpmic2.5 bare gst ffmpeg)
[ -z "$BEFORE" ] || STARTUP_TOOLS=(rtpmic rtpmicB rtpmic2.5 bare gst ffmpeg)
for run in $(seq "$STARTUP_RUNS"); do
    log "start-up run $run/$STARTUP_RUNS"
    for tool in "${STARTUP_TOOLS[@]}"; do
        case $tool in
        rtpmic2.5) cmd_for rtpmic opus "{PORT}" paced 2.5 3600 ;;
        *) cmd_for "$tool" opus "{PORT}" paced 20 3600 ;;
        esac
        n=startup-$tool-$run
        "$TMP/jitter_rx" "$TMP/$n.port" --first-packet "${CMD[@]}" >"$TMP/$n.rx" 2>"$TMP/$n.err" ||
            { tail -n 5 "$TMP/$n.err" >&2; die "$n: no first packet"; }
        S[$tool]="${S[$tool]:-} $(kv "$TMP/$n.rx" startup_us)"
    done
done

# --- 3. paced ---------------------------------------------------------------------------------
declare -A P   # P[tool,frame,load,field]
start_hogs() {
    local i
    for i in $(seq "$HOGS"); do
        yes >/dev/null &
        HOG_PIDS+=($!)
    done
    sleep 1
}
stop_hogs() {
    local p
    for p in "${HOG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${HOG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    HOG_PIDS=()
}
# "tid cpu_ns" of every real-time (SCHED_FIFO/SCHED_RR) thread on the machine outside process
# PID and our jackd: on a shared machine, other people's real-time processes (tests and soaks
# run rtpmic at SCHED_RR 50) compete with the one being measured, whatever the CPU hogs do.
rt_snapshot() {
    local self=$1 t st f ns
    for t in /proc/[0-9]*/task/[0-9]*; do
        case $t in /proc/"$self"/* | /proc/"${JACKD_PID:-x}"/*) continue ;; esac
        read -r st 2>/dev/null <"$t/stat" || continue
        read -r -a f <<<"${st##*) }"
        case ${f[38]:-0} in 1 | 2) ;; *) continue ;; esac
        read -r ns _ 2>/dev/null <"$t/schedstat" || continue
        echo "${t##*/} $ns"
    done
}
# ms of CPU per second that other real-time threads used between two rt_snapshots.
rt_rate() {
    awk -v secs="$3" 'NR == FNR { a[$1] = $2; next } { d += $2 - ($1 in a ? a[$1] : 0) } END { printf "%.1f\n", d / 1e6 / secs }' "$1" "$2"
}
# rtpmic as deployed, or with RTPMIC_PACING=on (rtpmicp): the same binary, the same stats line.
is_rtpmic() { [ "$1" = rtpmic ] || [ "$1" = rtpmicp ] || [ "$1" = rtpmicB ]; }
# paced_run TOOL FRAME LOAD SECONDS
paced_run() {
    local tool=$1 frame=$2 load=$3 secs=$4 n comm pid t1 t2 late0 k
    n=paced-$tool-$frame-$load
    log "paced $tool, ${frame} ms frames, ${load}, ${secs} s"
    start_rx "$n" --opus --frame-us "$(calc '%d' "$frame * 1000")" --skip-ms 1000
    cmd_for "$tool" opus "$PORT" paced "$frame" "$secs"
    late0=$(jack_late)
    timed "$n" $((secs + 30)) "${CMD[@]}" &
    local bg=$!
    case $tool in rtpmic | rtpmicp | rtpmicB) comm=rtpmic ;; bare) comm=bare_opus ;; gst) comm=gst-launch-1.0 ;; ffmpeg) comm=ffmpeg ;; esac
    # Steady state, away from start-up and shutdown: CPU between 1/4 and 3/4 of the run, and
    # the resident memory halfway through (mlockall keeps it all resident).
    sleep "$(calc '%.2f' "$secs / 4")"
    pid=$(find_descendant "$bg" "$comm") || die "$n: $comm not running a quarter in"
    rt_snapshot "$pid" >"$TMP/$n.rt1"
    t1=$(date +%s.%N)
    thread_cpu "$pid" >"$TMP/$n.cpu1"
    sleep "$(calc '%.2f' "$secs / 4")"
    # Plain rtpmic's only (20 ms, no hogs is the one reported): pacing changes no mapping.
    if [ "$tool" = rtpmic ]; then rss_breakdown "$pid" >"$TMP/$n.smaps" || die "$n: cannot read /proc/$pid/smaps"; fi
    sleep "$(calc '%.2f' "$secs / 4")"
    thread_cpu "$pid" >"$TMP/$n.cpu2"
    t2=$(date +%s.%N)
    rt_snapshot "$pid" >"$TMP/$n.rt2"
    wait "$bg" || exit 1
    stop_rx
    P[$tool,$frame,$load,late]=$(($(jack_late) - late0))
    P[$tool,$frame,$load,rt]=$(rt_rate "$TMP/$n.rt1" "$TMP/$n.rt2" "$(calc '%.3f' "$t2 - $t1")")
    P[$tool,$frame,$load,rate]=$(proc_rate "$TMP/$n.cpu1" "$TMP/$n.cpu2" "$(calc '%.3f' "$t2 - $t1")")
    P[$tool,$frame,$load,cpu]=$(cpu_of "$n")
    P[$tool,$frame,$load,wall]=$(tfield "$n" 3)
    P[$tool,$frame,$load,rss]=$(tfield "$n" 4)
    for k in packets lost intervals sd_us dev_p50_us dev_p99_us dev_p999_us dev_max_us; do
        P[$tool,$frame,$load,$k]=$(kv "$TMP/$n.rx" "$k")
    done
    [ "${P[$tool,$frame,$load,packets]}" -gt 0 ] || die "$n: no packets"
    if is_rtpmic "$tool"; then
        thread_split "$TMP/$n.cpu1" "$TMP/$n.cpu2" "$(calc '%.3f' "$t2 - $t1")" >"$TMP/$n.threads"
        for k in periods xruns samples_lost frame_drops packets packet_drops send_errors latency_p50 \
            latency_p99 latency_p999 latency_max_us; do
            P[$tool,$frame,$load,s_$k]=$(stat_of "$n" "$k")
        done
        P[$tool,$frame,$load,mlock]=$(grep -q 'mlockall refused' "$TMP/$n.err" && echo refused || echo on)
    elif [ "$tool" = bare ]; then
        for k in lat_p50_us lat_p99_us lat_p999_us lat_max_us; do P[$tool,$frame,$load,$k]=$(kv "$TMP/$n.out" "$k"); done
    fi
}

PACED_TOOLS=(rtpmic rtpmicp bare gst ffmpeg)
[ -z "$BEFORE" ] || PACED_TOOLS=(rtpmic rtpmicB rtpmicp bare gst ffmpeg)
wait_quiet "Paced"
LOAD_BEFORE_PACED=$(cut -d' ' -f1-3 /proc/loadavg)
for frame in 20 2.5; do
    if [ "$frame" = 2.5 ]; then
        stop_jackd
        start_jackd 120
    fi
    for load in idle hogs; do
        [ "$load" = hogs ] && start_hogs
        for tool in "${PACED_TOOLS[@]}"; do
            secs=$PEER_PACED_S
            is_rtpmic "$tool" && secs=$PACED_S
            paced_run "$tool" "$frame" "$load" "$secs"
        done
        [ "$load" = hogs ] && stop_hogs
    done
done
stop_jackd

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 5. pull (RTSP) ---------------------------------------------------------------------------
if [ "$RTSP" = 1 ]; then
    log "pull (RTSP): benches/rtsp_bench.sh"
    BENCH_QUIET_LOAD=$QUIET_LOAD BENCH_QUIET_WAIT_S=$QUIET_WAIT_S RTPMIC_BIN=$RTPMIC \
        "$ROOT/benches/rtsp_bench.sh" "$TMP/rtsp.md" "$TMP/rtsp_targets.md" || die "benches/rtsp_bench.sh failed"
fi
T_TOTAL=$(($(date +%s) - T_START))

# --- results ---------------------------------------------------------------------------------
pct() { calc '%+.1f %%' "($1 - 1) * 100"; }
# field over repetitions: "v1 v2 ..."
runs() { local r out=""; for r in $(seq "$REPS"); do out="$out ${R[$1,$2,$r,$3]}"; done; echo "$out"; }
med() { runs "$1" "$2" "$3" | median; }
# Median over repetitions of TOOL's CPU / rtpmic's CPU (or TOOL2's) in the same repetition.
ratio() {
    local r out="" den=${3:-rtpmic}
    for r in $(seq "$REPS"); do out="$out $(calc '%.3f' "${R[$1,$2,$r,cpu]} / ${R[$1,$den,$r,cpu]}")"; done
    echo "$out" | median
}
us_per_pkt() { calc '%.2f' "$1 * 1000000 / $2"; }

declare -A NAME=([rtpmic]="rtpmic" [rtpmicp]="rtpmic, RTPMIC_PACING=on" [gst]="GStreamer" [ffmpeg]="ffmpeg" [bare]="bare_opus, encode only"
    [send]="bare_opus, encode + RTP + sendto" [sendalsa]="bare_opus --alsa simfast, encode + RTP + sendto"
    [rtpmicB]="rtpmic ${BEFORE_REV}")

f2() { calc '%.2f' "$1"; }
f3() { calc '%.3f' "$1"; }
opus_rows=""
for tool in rtpmic gst ffmpeg send bare; do
    cpu=$(med opus "$tool" cpu)
    opus_rows+="| ${NAME[$tool]} | $(f2 "$cpu") | $(f2 "$(med opus "$tool" user)") | $(f2 "$(med opus "$tool" sys)") | $(f2 "$(med opus "$tool" wall)") | $(calc '%.2f' "$cpu * 1000 / $AUDIO_S") | $(mib "$(med opus "$tool" rss)") | $(med opus "$tool" vcs) | $(med opus "$tool" pkts) | $(ratio opus "$tool") |
"
done
small_rows() {
    local codec=$1 tool cpu pk
    for tool in rtpmic gst ffmpeg send sendalsa; do
        cpu=$(med "$codec" "$tool" cpu)
        pk=$(med "$codec" "$tool" pkts)
        echo "| ${NAME[$tool]} | $(f3 "$cpu") | $(f3 "$(med "$codec" "$tool" user)") | $(f3 "$(med "$codec" "$tool" sys)") | $(us_per_pkt "$cpu" "$pk") | $(f3 "$(med "$codec" "$tool" wall)") | $(mib "$(med "$codec" "$tool" rss)") | $(med "$codec" "$tool" vcs) | ${pk} | $(ratio "$codec" "$tool") |"
    done
}
# "rtpmic 9.12 9.20 ...; GStreamer ..." (CPU s of every repetition)
individual() {
    local codec=$1 tool r out=""
    for tool in "${@:2}"; do
        out+="${out:+; }${NAME[$tool]}"
        for r in $(seq "$REPS"); do out+=" $(f3 "${R[$codec,$tool,$r,cpu]}")"; done
    done
    echo "$out"
}

# What each tool sent (first repetition): read back from the packets themselves.
sent_row() {
    local codec=$1 tool=$2 f=$TMP/$1-$2-1.rx bw
    if [ "$codec" = opus ]; then
        bw="NB $(kv "$f" nb), MB $(kv "$f" mb), WB $(kv "$f" wb), SWB $(kv "$f" swb), FB $(kv "$f" fb)"
        echo "| ${NAME[$tool]} | Opus | $(kv "$f" pt) | $(kv "$f" packets) | $(kv "$f" opus_dur_min_us)-$(kv "$f" opus_dur_max_us) µs | $(kv "$f" payload_min)-$(kv "$f" payload_max) | $(calc '%.2f' "$(kv "$f" bytes) * 8 / $AUDIO_S / 1000") | SILK $(kv "$f" silk), hybrid $(kv "$f" hybrid), CELT $(kv "$f" celt); $bw | $(kv "$f" bytes) |"
    else
        echo "| ${NAME[$tool]} | ${codec^^} | $(kv "$f" pt) | $(kv "$f" packets) | | $(kv "$f" payload_min)-$(kv "$f" payload_max) | $(calc '%.2f' "$(kv "$f" bytes) * 8 / $AUDIO_S / 1000") | | $(kv "$f" bytes) |"
    fi
}
sent_rows=""
for pair in "opus rtpmic" "opus gst" "opus ffmpeg" "opus send" "pcmu rtpmic" "pcmu gst" "pcmu ffmpeg" "l16 rtpmic" "l16 gst" "l16 ffmpeg"; do
    sent_rows+="$(sent_row $pair)
"
done

# Targets.
r_send=$(ratio opus send)          # send / rtpmic
opus_over_send=$(calc '%.3f' "1 / $r_send")
opus_over_bare=$(calc '%.3f' "1 / $(ratio opus bare)")
paced_over_bare() { calc '%.3f' "${P[rtpmic,$1,$2,rate]} / ${P[bare,$1,$2,rate]}"; }
per_pkt_ratio() { # codec peer -> rtpmic per-packet CPU / peer per-packet CPU (medians)
    calc '%.2f' "($(med "$1" rtpmic cpu) / $(med "$1" rtpmic pkts)) / ($(med "$1" "$2" cpu) / $(med "$1" "$2" pkts))"
}
opus_rss=$(med opus rtpmic rss)
gst_rss=$(med opus gst rss)
lat_us() { # "<250us" -> 250
    sed 's/[^0-9]//g' <<<"$1"
}
startup_med() { m "${S[$1]}"; }
startup_ms() { calc '%.1f' "$(startup_med "$1") / 1000"; }
mlock_note=""
[ "${P[rtpmic,20,idle,mlock]}" = on ] || mlock_note=" (mlockall was refused)"

T=""
trow() { T+="| $1 | $2 | $3 | $(verdict "$4") |
"; }
trow "Opus CPU, unpaced: rtpmic <= 1.03 x bare encode + sendto loop" "1.03" "${opus_over_send} ($(f2 "$(med opus rtpmic cpu)") s vs $(f2 "$(med opus send cpu)") s)" "$opus_over_send <= 1.03"
for frame in 20 2.5; do
    trow "Opus CPU, paced ${frame} ms, no load: rtpmic <= 1.03 x bare loop (steady state, whole process)" "1.03" \
        "$(paced_over_bare "$frame" idle) (${P[rtpmic,$frame,idle,rate]} vs ${P[bare,$frame,idle,rate]} ms CPU/s)" "$(paced_over_bare "$frame" idle) <= 1.03"
done
for codec in pcmu l16; do
    for peer in gst ffmpeg; do
        r=$(per_pkt_ratio "$codec" "$peer")
        trow "${codec^^} CPU per packet <= 0.5 x ${NAME[$peer]}'s" "0.5" \
            "${r} ($(us_per_pkt "$(med "$codec" rtpmic cpu)" "$(med "$codec" rtpmic pkts)") vs $(us_per_pkt "$(med "$codec" "$peer" cpu)" "$(med "$codec" "$peer" pkts)") µs)" "$r <= 0.5"
    done
done
trow "Peak RSS, mlockall on (unpaced Opus, no jack)${mlock_note} <= 6 MiB" "6 MiB" "$(mib "$opus_rss") MiB" "$opus_rss <= 6 * 1024"
trow "Peak RSS <= 0.5 x GStreamer's (unpaced Opus)" "0.5" "$(calc '%.2f' "$opus_rss / $gst_rss") ($(mib "$opus_rss") vs $(mib "$gst_rss") MiB)" "$opus_rss <= 0.5 * $gst_rss"
# Latency and jitter together, for each of rtpmic's two choices: as deployed (each packet
# leaves as soon as it is encoded) and RTPMIC_PACING=on (each leaves a fixed time after its
# capture: even intervals for a little latency).
for tool in rtpmic rtpmicp; do
    mode=$([ "$tool" = rtpmic ] && echo "RTPMIC_PACING=off" || echo "RTPMIC_PACING=on")
    for frame in 20 2.5; do
        p999=${P[$tool,$frame,hogs,s_latency_p999]}
        trow "${mode}: Added latency p99.9 <= 250 µs, CPU hogs, ${frame} ms frames" "250 µs" "$(lt "$p999")" "$(lat_us "$p999") <= 250"
        trow "${mode}: Added latency max <= 1 ms, CPU hogs, ${frame} ms frames" "1000 µs" "${P[$tool,$frame,hogs,s_latency_max_us]} µs" "${P[$tool,$frame,hogs,s_latency_max_us]} <= 1000"
    done
    for frame in 20 2.5; do
        trow "${mode}: Interval deviation p99 <= 0.08 ms, no load, ${frame} ms frames" "80 µs" "${P[$tool,$frame,idle,dev_p99_us]} µs (bare loop: ${P[bare,$frame,idle,dev_p99_us]} µs)" "${P[$tool,$frame,idle,dev_p99_us]} <= 80"
        trow "${mode}: Interval deviation p99 <= 0.2 ms, CPU hogs, ${frame} ms frames" "200 µs" "${P[$tool,$frame,hogs,dev_p99_us]} µs (bare loop: ${P[bare,$frame,hogs,dev_p99_us]} µs)" "${P[$tool,$frame,hogs,dev_p99_us]} <= 200"
    done
done
trow "First packet <= 100 ms after exec (20 ms frames, median of ${STARTUP_RUNS})" "100 ms" "$(startup_ms rtpmic) ms" "$(startup_med rtpmic) <= 100000"

# Paced tables.
jit_rows=""
cpu_rows=""
for frame in 20 2.5; do
    for load in idle hogs; do
        for tool in "${PACED_TOOLS[@]}"; do
            k=$tool,$frame,$load
            secs=$PEER_PACED_S
            is_rtpmic "$tool" && secs=$PACED_S
            label=${NAME[$tool]}
            [ "$tool" = bare ] && label="bare_opus --alsa (SCHED_RR 50)"
            [ "$tool" = gst ] && label="GStreamer (alsasrc)"
            [ "$tool" = ffmpeg ] && label="ffmpeg -re (file)"
            [ "$tool" = rtpmic ] && label="rtpmic (SCHED_RR 50)"
            [ "$tool" = rtpmicp ] && label="rtpmic, RTPMIC_PACING=on (SCHED_RR 50)"
            lname=$([ "$load" = idle ] && echo "no hogs" || echo "${HOGS} hogs")
            jit_rows+="| ${frame} ms | ${lname} | ${label} | ${secs} s | ${P[$k,packets]} | ${P[$k,sd_us]} | ${P[$k,dev_p50_us]} | ${P[$k,dev_p99_us]} | ${P[$k,dev_p999_us]} | ${P[$k,dev_max_us]} | ${P[$k,late]} | ${P[$k,rt]} |
"
            cpu_rows+="| ${frame} ms | ${lname} | ${label} | ${P[$k,rate]} | $(calc '%.2f' "${P[$k,rate]} / 10") % | $(f2 "${P[$k,cpu]}") s / $(f2 "${P[$k,wall]}") s | $(mib "${P[$k,rss]}") |
"
        done
    done
done
lat_rows=""
for frame in 20 2.5; do
    for load in idle hogs; do
        b=bare,$frame,$load
        lname=$([ "$load" = idle ] && echo "no hogs" || echo "${HOGS} hogs")
        for tool in rtpmic rtpmicp; do
            k=$tool,$frame,$load
            lat_rows+="| ${frame} ms | ${lname} | ${NAME[$tool]} | $(lt "${P[$k,s_latency_p50]}") | $(lt "${P[$k,s_latency_p99]}") | $(lt "${P[$k,s_latency_p999]}") | ${P[$k,s_latency_max_us]} | ${P[$k,s_packets]} | ${P[$k,s_xruns]} / ${P[$k,s_frame_drops]} / ${P[$k,s_packet_drops]} / ${P[$k,s_send_errors]} |
"
        done
        lat_rows+="| ${frame} ms | ${lname} | bare_opus --alsa | ${P[$b,lat_p50_us]} | ${P[$b,lat_p99_us]} | ${P[$b,lat_p999_us]} | ${P[$b,lat_max_us]} | ${P[$b,packets]} | |
"
    done
done
thread_rows=""
for frame in 20 2.5; do
    for tool in rtpmic rtpmicp; do
        read -r t_main t_cap t_enc t_snd t_jack <"$TMP/paced-$tool-$frame-idle.threads"
        own=$(calc '%.2f' "$t_main + $t_cap + $t_enc + $t_snd")
        thread_rows+="| ${frame} ms | ${NAME[$tool]} | ${t_cap} | ${t_enc} ($(calc '%.0f' "$t_enc * $frame") µs) | ${t_snd} | ${t_main} | ${own} | ${t_jack} | ${P[$tool,$frame,idle,rate]} |
"
    done
done
read -r s_total s_anon s_own s_plug s_jack <"$TMP/paced-rtpmic-20-idle.smaps"
startup_rows=""
for tool in "${STARTUP_TOOLS[@]}"; do
    case $tool in
    rtpmic) label="rtpmic, 20 ms frames (SCHED_RR 50, mlockall)" ;;
    rtpmic2.5) label="rtpmic, 2.5 ms frames" ;;
    bare) label="bare_opus --alsa, 20 ms" ;;
    gst) label="GStreamer (gst-launch-1.0, alsasrc), 20 ms" ;;
    ffmpeg) label="ffmpeg -re (file, no device), 20 ms" ;;
    esac
    vals=$(for v in ${S[$tool]}; do calc '%.1f ' "$v / 1000"; done)
    startup_rows+="| ${label} | **$(startup_ms "$tool")** | $(calc '%.1f' "$(echo "${S[$tool]}" | tr ' ' '\n' | grep . | sort -g | head -n 1) / 1000") | ${vals% } |
"
done

# Before/after (BENCH_BEFORE_BIN): this tree's rtpmic and the other binary, from the same runs.
ba_rows=""
if [ -n "$BEFORE" ]; then
    # Median over repetitions of CODEC's TOOL1 CPU / TOOL2 CPU in the same repetition.
    ratio2() {
        local r out=""
        for r in $(seq "$REPS"); do out="$out $(calc '%.3f' "${R[$1,$2,$r,cpu]} / ${R[$1,$3,$r,cpu]}")"; done
        echo "$out" | median
    }
    barow() { ba_rows+="| $1 | $2 | $3 | $4 |
"; }
    pct_of() { calc '%+.1f %%' "($1 - 1) * 100"; }
    barow "Opus 20 ms, ${AUDIO_S} s unpaced: CPU s (median of ${REPS})" "$(f2 "$(med opus rtpmicB cpu)")" "$(f2 "$(med opus rtpmic cpu)")" \
        "$(pct_of "$(ratio2 opus rtpmic rtpmicB)") (median of per-repetition ratios)"
    barow "Opus unpaced: CPU / bare encode + sendto loop" "$(calc '%.3f' "1 / $(ratio opus send rtpmicB)")" "$opus_over_send" ""
    for codec in pcmu l16; do
        barow "${codec^^} unpaced: µs CPU per packet (whole process)" \
            "$(us_per_pkt "$(med "$codec" rtpmicB cpu)" "$(med "$codec" rtpmicB pkts)")" \
            "$(us_per_pkt "$(med "$codec" rtpmic cpu)" "$(med "$codec" rtpmic pkts)")" \
            "$(pct_of "$(ratio2 "$codec" rtpmic rtpmicB)") (median of per-repetition ratios)"
    done
    barow "Peak RSS, unpaced Opus, mlockall on (MiB)" "$(mib "$(med opus rtpmicB rss)")" "$(mib "$(med opus rtpmic rss)")" ""
    for frame in 20 2.5; do
        a=${P[rtpmic,$frame,idle,rate]} b=${P[rtpmicB,$frame,idle,rate]}
        barow "Opus paced ${frame} ms, no load: steady ms CPU/s (whole process; × the bare loop's ${P[bare,$frame,idle,rate]})" \
            "$b ($(calc '%.3f' "$b / ${P[bare,$frame,idle,rate]}") ×)" "$a ($(calc '%.3f' "$a / ${P[bare,$frame,idle,rate]}") ×)" "$(pct_of "$(calc '%.4f' "$a / $b")") (one run each)"
    done
    for frame in 20 2.5; do
        for load in idle hogs; do
            lname=$([ "$load" = idle ] && echo "no hogs" || echo "${HOGS} hogs")
            q() { echo "$(lt "${P[$1,$frame,$load,s_latency_p50]}") / $(lt "${P[$1,$frame,$load,s_latency_p99]}") / $(lt "${P[$1,$frame,$load,s_latency_p999]}") / ${P[$1,$frame,$load,s_latency_max_us]}"; }
            barow "Added latency, paced ${frame} ms, ${lname}: p50 / p99 / p99.9 / max µs (${PACED_S} s)" "$(q rtpmicB)" "$(q rtpmic)" ""
        done
    done
    barow "Interval deviation p99 at the receiver, paced 20 ms, no hogs / 2 hogs (µs)" \
        "${P[rtpmicB,20,idle,dev_p99_us]} / ${P[rtpmicB,20,hogs,dev_p99_us]}" "${P[rtpmic,20,idle,dev_p99_us]} / ${P[rtpmic,20,hogs,dev_p99_us]}" ""
    barow "First packet after exec, 20 ms frames: median of ${STARTUP_RUNS} (ms)" "$(startup_ms rtpmicB)" "$(startup_ms rtpmic)" \
        "$(calc '%+.1f ms' "($(startup_med rtpmic) - $(startup_med rtpmicB)) / 1000")"
fi
SEC=4   # sections after "4. Start-up" are numbered as they are written

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
[ -n "$cpu_model" ] || cpu_model=$(uname -m)
rev=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
rustc_v=$(rustc --version 2>/dev/null || echo unknown)
opus_v=$(pkg-config --modversion opus)
gst_v=$(gst-launch-1.0 --version | sed -n 's/^GStreamer //p' | head -n 1)
ff_v=$(ffmpeg -hide_banner -version | sed -n '1s/^ffmpeg version \([^ ]*\).*/\1/p')
jack_v=$(jackd --version 2>/dev/null | sed -n 's/.*version \([^ ]*\).*/\1/p' | head -n 1)

mkdir -p "$(dirname "$OUT")"
cat >"$TMP/PERFORMANCE.md" <<EOF
# Performance

Generated by \`make bench\` (\`benches/run.sh\`) on $(date -u '+%Y-%m-%d %H:%M UTC'); rerun it to
regenerate this file. Every number here is measured on the machine below; none of them is
asserted by the tests, which check behaviour, not speed. This machine is shared: other
people's builds and tests ran during the bench (see the load average), so expect a few
per cent of noise in CPU figures and occasional outliers in timing maxima.
${REDUCED:+
**Reduced run.** $REDUCED
}${QUIET_NOTES:+
**Waiting for a quiet machine** (1-minute load average below ${QUIET_LOAD}, polled every 60 s, at most ${QUIET_WAIT_S} s): ${QUIET_NOTES}
}${QUICK:+
**Quick run (BENCH_QUICK): short input, one repetition, short paced runs. Not for comparison.**
}
## Machine

| | |
|---|---|
| CPU | ${cpu_model} |
| Cores (\`nproc\`) | $(nproc) |
| Kernel (\`uname -r\`) | $(uname -r) |
| libopus (\`pkg-config --modversion opus\`) | ${opus_v} |
| GStreamer / ffmpeg / jackd | ${gst_v} / ${ff_v} / ${jack_v:-?} |
| rustc | ${rustc_v} |
| rtpmic tree (\`git describe --always --dirty\`) | ${rev} |
| Load average before / after (push path: sections 1-4) | ${LOAD_BEFORE} / ${LOAD_AFTER} (before the paced block: ${LOAD_BEFORE_PACED}) |
| Bench wall time | ${T_TOTAL} s |

## Targets

| Target | Limit | Measured | Result |
|---|---|---|---|
${T}$(cat "$TMP/rtsp_targets.md" 2>/dev/null)

The issue asks for the interval-jitter targets to be met without giving up the latency
targets. rtpmic offers two choices, and both are shown, each with its latency and its jitter
rows, measured in the same paced runs: \`RTPMIC_PACING=off\` (the default: each packet leaves
as soon as it is encoded, so the interval between packets wobbles with the encode time and
the scheduler) and \`RTPMIC_PACING=on\` (\`src/net/pacer.rs\`: each packet leaves a fixed,
self-tuned time after its frame's smoothed capture time, at most half a frame: even
intervals for a little latency).

Ratios are rtpmic's figure over the other tool's (below 1: rtpmic uses less). CPU ratios
are medians of per-repetition ratios; per-packet CPU is whole-process CPU (start-up
included) over packets sent. "Interval deviation" is |interval between consecutive packets
- frame time| at the receiver, from kernel receive timestamps.

## What is measured, and how

**Input.** A deterministic speech-like signal (\`benches/gen_speech.py\`: glottal pulses at a
pitch gliding within 90-220 Hz through three formant resonators that move from vowel to
vowel, syllable envelopes, fricative noise bursts and pauses; 60 s computed and repeated to
${AUDIO_S} s, about -22 dBFS RMS), S16_LE mono, 48 kHz (Opus, L16) and 8 kHz (PCMU). rtpmic
and \`bare_opus\` read it raw; GStreamer and ffmpeg read the same samples as WAV files.

**Receiver.** Every stream goes to 127.0.0.1, to \`benches/jitter_rx.c\`: it binds the RTP
port and the next one (RTCP, so no ICMP errors come back), reads in batches every 20 ms
with a 512 MiB receive buffer (so it costs a few wake-ups a second, and drops nothing: every
run checks it received the expected packets, in sequence, none dropped), and parses every
packet: payload type, payload sizes, and for Opus the TOC byte (frame duration, mode,
audio bandwidth). On loopback the kernel stamps a packet (\`SO_TIMESTAMPNS\`) while the
sender's \`sendmsg\` runs, so intervals between stamps are the sender's inter-departure
times, however late the receiver reads them.

**Settings.** Opus 32 kb/s, 20 ms (paced: also 2.5 ms), complexity 10, VOIP, constrained
VBR, mono 48 kHz; PCMU 8 kHz 20 ms (160-byte payloads); L16 48 kHz mono 10 ms (960-byte
payloads). As each tool applies them:

| Tool | Command (unpaced; paced below) | libopus calls it makes with these options |
|---|---|---|
| rtpmic | \`RTPMIC_DEVICE=simfast RTPMIC_CODEC=opus RTPMIC_FRAME_MS=20 RTPMIC_BITRATE=32000 RTPMIC_OPUS_COMPLEXITY=10 RTPMIC_OPUS_APPLICATION=voip RTPMIC_OPUS_LOSS_PERCENT=0 RTPMIC_RT_PRIORITY=50 rtpmic run --seconds ${AUDIO_S} --no-drop\` (PCMU: \`RTPMIC_CODEC=pcmu RTPMIC_RATE=8000\`; L16: \`RTPMIC_CODEC=l16 RTPMIC_FRAME_MS=10\`). \`RTPMIC_OPUS_LOSS_PERCENT=0\` matches the others: rtpmic's default (\`auto\`, at least 5 % until receivers report loss) makes libopus code more robustly, a different bitstream (~7 % more bytes) | \`opus_encoder_create(48000, 1, VOIP)\`, \`SET_BITRATE(32000)\`, \`SET_COMPLEXITY(10)\`, \`SET_VBR(1)\`, \`SET_VBR_CONSTRAINT(1)\`, \`SET_INBAND_FEC(0)\`, \`SET_PACKET_LOSS_PERC(0)\`, \`SET_DTX(0)\` (\`src/codec/opus.rs\`) |
| GStreamer ${gst_v} | \`gst-launch-1.0 filesrc ! wavparse ! audioconvert ! ${OPUS_GST} frame-size=20 ! rtpopuspay ! udpsink sync=false\` (PCMU: \`mulawenc ! rtppcmupay min-ptime=max-ptime=20000000\`; L16: \`rtpL16pay min-ptime=max-ptime=10000000\`) | \`opus_multistream_encoder_create(48000, 1 channel, 1 stream, VOIP)\`, \`SET_BITRATE(32000)\`, \`SET_BANDWIDTH(OPUS_AUTO)\` (opusenc's default would force fullband; \`bandwidth=auto\` leaves it to libopus as the others do), \`SET_VBR(1)\`, \`SET_VBR_CONSTRAINT(1)\`, \`SET_COMPLEXITY(10)\`, \`SET_INBAND_FEC(0)\`, \`SET_DTX(0)\`, \`SET_PACKET_LOSS_PERC(0)\` (gst-plugins-base \`ext/opus/gstopusenc.c\`) |
| ffmpeg ${ff_v} | \`ffmpeg -i in.wav ${OPUS_FF[*]} -frame_duration 20 -f rtp rtp://…\` (PCMU: \`-af asetnsamples=n=160 -c:a pcm_mulaw\`; L16: \`-af asetnsamples=n=480 -c:a pcm_s16be\`; without \`asetnsamples\` ffmpeg's RTP muxer packs up to 1460 bytes per packet) | \`opus_multistream_encoder_create(48000, 1, 1 stream, VOIP)\`, \`SET_BITRATE(32000)\`, \`SET_COMPLEXITY(10)\`, \`SET_VBR(1)\`, \`SET_VBR_CONSTRAINT(1)\`, \`SET_PACKET_LOSS_PERC(0)\`, \`SET_INBAND_FEC(0)\` (\`libavcodec/libopusenc.c\`) |
| bare_opus | \`bare_opus in.raw --send 127.0.0.1 PORT\` (\`benches/bare_opus.c\`: \`fread\` 960 samples, \`opus_encode\`, 12-byte RTP header, \`sendto\`, in one loop) | \`opus_encoder_create(48000, 1, VOIP)\`, \`SET_BITRATE(32000)\`, \`SET_COMPLEXITY(10)\`, \`SET_VBR(1)\`, \`SET_VBR_CONSTRAINT(1)\` |

What each tool actually sent (first repetition, read back from the packets by the
receiver; Opus mode and bandwidth from each packet's TOC byte). Identical payload byte
totals mean identical encoder settings on identical input; GStreamer and ffmpeg send one
more Opus packet than the input has frames (they flush the encoder's look-ahead at the end):

| Tool | Codec | PT | Packets | Opus frame | Payload bytes min-max | Payload kbit/s | Opus modes; bandwidths (packets) | Payload bytes in all |
|---|---|---|---|---|---|---|---|---|
${sent_rows}
**Unpaced.** rtpmic reads the raw file through the ALSA \`file\` PCM over the \`null\` PCM
(\`simfast\` in \`board/sim/asound.conf\`: as fast as it can be read) with \`--no-drop\`, so
every frame is encoded and sent; GStreamer reads with \`filesrc ! wavparse\` and ffmpeg with
its WAV demuxer, as fast as they can. CPU time (user + sys), wall time and peak RSS of the
whole process, start-up included, from \`wait4\` (\`benches/rusage.c\`: GNU \`time\`'s method,
printed to the microsecond). ${REPS} repetitions; each runs every tool
once, in the order of the table; medians, and each tool's ratio to rtpmic's CPU in the same
repetition (median of the ${REPS} ratios). rtpmic runs with \`RTPMIC_RT_PRIORITY=50\`
(SCHED_RR threads, \`mlockall\`), as deployed; the others at normal priority.

**Paced.** A jackd dummy server paces the ALSA PCM \`simfile\` (the same raw file, delivered
in real time). jackd's period is 5 ms for 20 ms frames and 2.5 ms for 2.5 ms frames (so a
period never holds more than one frame); it runs at SCHED_FIFO 70 and the jack threads it
starts in every client at 65, above the senders' threads, so the simulated device keeps
time as a hardware interrupt would (its dummy driver still wakes late now and then on this
virtual machine: the "jackd late" column). Without and then with ${HOGS} CPU hogs (\`yes >
/dev/null\`, one per core, normal priority) running through the whole block.

* rtpmic: \`RTPMIC_DEVICE=simfile RTPMIC_FRAME_MS=20|2.5 rtpmic run --seconds ${PACED_S}\` (Opus
  settings as unpaced, \`RTPMIC_OPUS_LOSS_PERCENT=0\` included),
  SCHED_RR 50, mlockall. Its final stats line gives the added-latency histogram (the ALSA
  read that completed a frame returning → the kernel accepting the datagram; quantiles are
  upper bounds of fixed buckets 50, 100, 250, 500, 1000, 2000, 5000, … µs; the maximum is
  exact).
* rtpmic, \`RTPMIC_PACING=on\`: the same command with \`RTPMIC_PACING=on\`, ${PACED_S} s too. Each
  packet waits until a fixed offset after its frame's smoothed capture time (a tracked
  ≈ p99.8 of recent capture → ready times plus 50 µs, at most half a frame), so its added latency
  includes that hold.
* bare_opus --alsa: the same device, blocking \`snd_pcm_readi\` of one period per frame,
  encode, \`sendto\`, in one loop, under \`chrt -r 50\` (rtpmic's priority): the floor. It
  measures its own readi → sendto latency the same way (exact quantiles).
* GStreamer: \`alsasrc device=simfile latency-time=<frame> num-buffers=<frames> !
  audio/x-raw,format=S16LE,rate=48000,channels=1 ! opusenc … frame-size=<frame> ! rtpopuspay !
  udpsink sync=false\` — a live pipeline on the same jackd-paced ALSA device (the fairest
  comparison: same device, same pacing; alsasrc's period is the frame), normal priority.
* ffmpeg: \`ffmpeg -re -t <s> -i in.wav … -frame_duration <frame> -f rtp\`: paced by its own
  clock from a file (\`-re\`), not by a device; normal priority. Its WAV demuxer hands over
  4096-byte (~43 ms) packets, and \`-re\` releases each when its time comes, so its packets
  leave in bursts whatever the frame size.

rtpmic runs ${PACED_S} s in each mode, the others ${PEER_PACED_S} s each (maxima grow with run length).
Intervals in the first second are left out. CPU "steady state" is the sum over all the
process's threads of \`/proc/PID/task/*/schedstat\` between 1/4 and 3/4 of the run (exact
nanoseconds; includes the jack client thread the ALSA jack plugin runs inside every
process that opens the simulated device); "whole run" is \`wait4\`'s figure.

## 1. Opus 32 kb/s 20 ms, ${AUDIO_S} s unpaced

Median of ${REPS}; CPU = user + sys.

| | CPU s | user s | sys s | wall s | CPU ms per s of audio | peak RSS MiB | voluntary context switches | packets | CPU vs rtpmic |
|---|---|---|---|---|---|---|---|---|---|
${opus_rows}
${SHORT:+* **Overruns:** rtpmic's silent-overrun check fired in some unpaced runs ($SHORT): the
  \`simfast\` file never overruns, but rtpmic takes a gap between two reads longer than its
  ALSA buffer (~120 ms) for one, counts the samples as lost and so stops that much audio
  early. With \`--no-drop\` the capture thread waits in \`push_waiting\` whenever the encoder
  falls behind, and other people's SCHED_RR processes on this machine can hold a CPU for a
  100 ms round-robin slice, so the wait can exceed that gap (a false overrun: see "Where the
  time goes"). CPU figures are for whole runs (at most 1 % fewer packets).
}* rtpmic / bare encode + sendto: **${opus_over_send}** ($(pct "$opus_over_send")); rtpmic / bare encode only: **${opus_over_bare}** ($(pct "$opus_over_bare")).
* Individual runs, CPU s: $(individual opus rtpmic gst ffmpeg send bare).

## 2. PCMU 20 ms and L16 10 ms, ${AUDIO_S} s unpaced

PCMU (8 kHz, ${EXPECT_20} packets of 160 bytes):

| | CPU s | user s | sys s | µs CPU per packet | wall s | peak RSS MiB | voluntary context switches | packets | CPU vs rtpmic |
|---|---|---|---|---|---|---|---|---|---|
$(small_rows pcmu)

L16 (48 kHz mono, ${EXPECT_10} packets of 960 bytes):

| | CPU s | user s | sys s | µs CPU per packet | wall s | peak RSS MiB | voluntary context switches | packets | CPU vs rtpmic |
|---|---|---|---|---|---|---|---|---|---|
$(small_rows l16)

Whole process, start-up included. The two bare_opus rows are plain C references: one loop
reading the raw file with \`fread\`, and one reading the same file through the same ALSA
\`simfast\` PCM as rtpmic, one period per \`snd_pcm_readi\` (the ALSA \`file\` plugin costs a
\`read\` and a \`write\` to /dev/null per call; rtpmic takes up to 8 frames per call when
they are there, so it can come in under that loop).
Individual runs, CPU s: PCMU $(individual pcmu rtpmic gst ffmpeg send sendalsa); L16 $(individual l16 rtpmic gst ffmpeg send sendalsa).

## 3. Paced: added latency, interval jitter, CPU

Added latency (µs; rtpmic's are bucket upper bounds, bare_opus's exact):

| Frame | Load | | p50 | p99 | p99.9 | max | packets | xruns / frame drops / packet drops / send errors |
|---|---|---|---|---|---|---|---|---|
${lat_rows}
Both include the Opus encode of the frame (at complexity 10 about 0.3-0.5 ms for 20 ms frames
on this machine, ~0.04 ms for 2.5 ms), which no sender can skip; with \`RTPMIC_PACING=on\`
rtpmic's also includes the hold until the packet's release time.

Packet interval jitter at the receiver (µs; "dev" = |interval - frame time|; "jackd late" =
wake-ups of jackd's dummy driver that came late during the run, \`JackTimedDriver::Process
XRun\` in its log: the simulated device's own jitter, which every device-paced sender inherits;
"other RT ms/s" = CPU that real-time threads of other processes on this shared machine used
during the middle half of the run, e.g. other people's tests running rtpmic at SCHED_RR 50:
unlike the CPU hogs they outrank the jack threads and compete with rtpmic's own):

| Frame | Load | Sender | run | packets | std dev of intervals | dev p50 | dev p99 | dev p99.9 | dev max | jackd late | other RT ms/s |
|---|---|---|---|---|---|---|---|---|---|---|---|
${jit_rows}
CPU (steady state: ms of CPU per second, and % of one core; whole run from \`wait4\`, start-up
included):

| Frame | Load | Sender | steady ms CPU/s | % of a core | whole run CPU / wall | peak RSS MiB |
|---|---|---|---|---|---|---|
${cpu_rows}
rtpmic by thread, no hogs (steady state, ms of CPU per second; "jack" = the jack client
threads the ALSA plugin runs inside the process, simulated board only; where rtpmic runs two
threads, rtpmic-encode also sends and "send" is 0.00):

| Frame | | capture | encode (µs per frame) | send | main | rtpmic's own | jack | whole process |
|---|---|---|---|---|---|---|---|---|
${thread_rows}
Counters from rtpmic's final stats lines: $(for tool in rtpmic rtpmicp; do for frame in 20 2.5; do for load in idle hogs; do k=$tool,$frame,$load; printf '%s%s ms %s: %s periods, %s samples lost; ' "$([ "$tool" = rtpmicp ] && echo 'RTPMIC_PACING=on ')" "$frame" "$load" "${P[$k,s_periods]}" "${P[$k,s_samples_lost]}"; done; done; done)

Resident memory of the paced rtpmic (20 ms, no hogs) halfway through (\`/proc/PID/smaps\`, MiB).
The ALSA jack plugin maps jackd's shared memory into every process that opens the simulated
device, resident whether or not the process locks its memory (the bare loop, which does not
call \`mlockall\`, peaks at $(mib "${P[bare,20,idle,rss]}") MiB, GStreamer at $(mib "${P[gst,20,idle,rss]}") MiB), so the paced peak RSS
figures mostly measure the simulated board; the unpaced (\`simfast\`, no jack) peak RSS in
the targets is the estimate for a real board (\`hw:\`/\`plughw:\`):

| Total | anonymous (heap, stacks, rings) | rtpmic + linked libraries | ALSA plugin libraries (jack, libstdc++, ...) | jackd shared memory |
|---|---|---|---|---|
| $(mib "$s_total") | $(mib "$s_anon") | $(mib "$s_own") | $(mib "$s_plug") | $(mib "$s_jack") |

## 4. Start-up: exec to the first packet

\`jitter_rx --first-packet\` reads the clock just before \`fork\` + \`execvp\` of the sender and
takes the first packet's kernel receive timestamp; the sender is then stopped. jackd's period
is 5 ms, so the device's first period is ready about 5 ms after the PCM starts, and a 20 ms
frame needs four of them: a 20 ms sender cannot send before ~20 ms after it opened the device.
${STARTUP_RUNS} runs each, interleaved (ms):

| Sender | median | min | all runs |
|---|---|---|---|
${startup_rows}
EOF
if [ -n "$BEFORE" ]; then
    SEC=$((SEC + 1))
    cat >>"$TMP/PERFORMANCE.md" <<EOF

## ${SEC}. Before/after the session-core refactor

The push path was refactored (issue 15: the sans-I/O session core, \`src/rtp/session/\`, now sits
between the encoder and the sockets; see docs/ARCHITECTURE.md). "Before" is a release build of
\`${BEFORE_REV}\` (\`BENCH_BEFORE_BIN\`: \`git worktree add /tmp/before ${BEFORE_REV}\`, then
\`cargo build --release --bin rtpmic\` there); "after" is this tree (\`${rev}\`). Both ran in this
same \`make bench\`, with the same settings, on the same inputs: in every unpaced repetition each
codec's "before" run came right after "after"'s, the paced runs without pacing (${PACED_S} s each) and
the start-up runs likewise, interleaved. Per-repetition ratios cancel most of the drift of this
shared machine; the paced figures are one run each (their run-to-run noise is ±20 %, see section 3
and "Where the time goes"), and the latency quantiles are bucket upper bounds.

| | before (${BEFORE_REV}) | after (this tree) | after vs before |
|---|---|---|---|
${ba_rows}
Individual runs, CPU s: Opus $(individual opus rtpmic rtpmicB); PCMU $(individual pcmu rtpmic rtpmicB); L16 $(individual l16 rtpmic rtpmicB).
EOF
fi
if [ "$RTSP" = 1 ]; then
    SEC=$((SEC + 1))
    { echo; echo "## ${SEC}. Pull (RTSP): rtpmic's server side by side with gst-rtsp-server"; echo; cat "$TMP/rtsp.md"; } >>"$TMP/PERFORMANCE.md"
fi
if [ -f "$ROOT/benches/where_the_time_goes.md" ]; then
    # Its first heading takes the next section number.
    SEC=$((SEC + 1))
    { echo; sed "0,/^## [0-9]*\./s//## ${SEC}./" "$ROOT/benches/where_the_time_goes.md"; } >>"$TMP/PERFORMANCE.md"
fi
if [ "$FANOUT" = 1 ]; then
    log "fan-out (cargo bench --bench fanout)"
    SEC=$((SEC + 1))
    {
        echo
        echo "## ${SEC}. Fan-out: CPU per datagram by destination count (\`benches/fanout.rs\`)"
        echo
        echo "One run of \`cargo bench --bench fanout\`: the same 172-byte packet sent to 1, 8, 64 and 512"
        echo "loopback destinations, one packet per batch as a live stream does, through the io_uring"
        echo "backend, the sendmmsg backend and a naive loop of one \`sendto\` per datagram. CPU is the"
        echo "sending thread's user + system time. On loopback the kernel also runs the receive path in"
        echo "the sender's context, about 2.5 µs per datagram that no backend can avoid, so the ratios"
        echo "understate what batching saves on a real NIC. Target: at 64 destinations the chosen backend"
        echo "≤ 1/3 of the naive loop's CPU per datagram."
        echo
        (cd "$ROOT" && cargo bench -q --bench fanout 2>/dev/null)
    } >>"$TMP/PERFORMANCE.md"
fi
mv "$TMP/PERFORMANCE.md" "$OUT"
log "wrote $OUT (${T_TOTAL} s before fan-out)"
