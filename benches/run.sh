#!/usr/bin/env bash
# `make bench`: measures rtpmic's CPU, memory and latency on the simulated board and
# regenerates docs/PERFORMANCE.md from the numbers. Needs target/release/rtpmic (make build).
#
#   1. Opus, 600 s of speech-like audio read unpaced (ALSA PCM `simfast`, --no-drop):
#      rtpmic vs benches/bare_opus.c (libopus alone; libopus + RTP header + sendto).
#   2. PCMU, the same 600 s at 8 kHz, unpaced.
#   3. Opus paced in real time (`simfile` through a jackd dummy server), 20 ms and 2.5 ms
#      frames: software latency quantiles, CPU, and peak RSS with mlockall.
#
# Unpaced measurements are the median of BENCH_REPS runs (default 5), the tools interleaved
# in every repetition; paced runs are BENCH_PACED_S seconds each (default 60). When the first
# repetition shows the whole bench would take more than ~5 minutes, both drop to 3 and 30 s
# and the document says so. BENCH_OUT overrides the output path.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
RTPMIC=$ROOT/target/release/rtpmic
OUT=${BENCH_OUT:-$ROOT/docs/PERFORMANCE.md}
REPS=${BENCH_REPS:-5}
PACED_S=${BENCH_PACED_S:-60}
BUDGET_S=300
AUDIO_S=600                   # unpaced input length; 30000 frames of 20 ms
EXPECT_PACKETS=$((AUDIO_S * 50))
REDUCED=""

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

[ -x "$RTPMIC" ] || die "$RTPMIC missing: run 'make build' (or 'make bench')"
for tool in cc pkg-config python3 jackd jack_wait timeout; do
    command -v "$tool" >/dev/null || die "$tool not found (make deps installs the board's packages)"
done
if [ ! -x /usr/bin/time ]; then
    log "installing GNU time (Debian package 'time')"
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get install -y -q --no-install-recommends time >/dev/null ||
        { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends time >/dev/null; } ||
        die "cannot install GNU time"
fi

# Only the keys set below reach rtpmic.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^RTPMIC_' || true)
unset SIM_INFILE JACK_DEFAULT_SERVER
export ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf:$ROOT/board/sim/asound.conf

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rtpmic-bench.XXXXXX")
JACKD_PID=""
SINK_PID=""
cleanup() {
    # Only what this script started, by PID. jackd gets SIGTERM, never SIGKILL: a killed
    # jackd keeps its slot in jack's server registry.
    if [ -n "$SINK_PID" ]; then kill "$SINK_PID" 2>/dev/null || true; fi
    if [ -n "$JACKD_PID" ]; then
        kill -TERM "$JACKD_PID" 2>/dev/null || true
        wait "$JACKD_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T_START=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- inputs and tools --------------------------------------------------------------------
log "generating ${AUDIO_S} s of speech-like input (48 kHz and 8 kHz)"
python3 "$ROOT/benches/gen_speech.py" 48000 "$AUDIO_S" "$TMP/speech48k.raw"
python3 "$ROOT/benches/gen_speech.py" 8000 "$AUDIO_S" "$TMP/speech8k.raw"
# shellcheck disable=SC2046 # pkg-config's flags are meant to split
cc -O2 -Wall "$ROOT/benches/bare_opus.c" $(pkg-config --cflags --libs opus) -o "$TMP/bare_opus"

# A UDP sink: the port is bound (so no ICMP port-unreachable comes back) but never read, so it
# costs no CPU; once its receive buffer is full the kernel drops there. rtpmic and bare_opus
# send to the same sink.
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
with open(sys.argv[1], "w") as f:
    f.write(str(s.getsockname()[1]))
time.sleep(1e9)
' "$TMP/sink.port" &
SINK_PID=$!
for _ in $(seq 50); do [ -s "$TMP/sink.port" ] && break; sleep 0.1; done
[ -s "$TMP/sink.port" ] || die "UDP sink did not start"
SINK_PORT=$(cat "$TMP/sink.port")

# --- measuring ---------------------------------------------------------------------------
# timed NAME LIMIT_S CMD...: runs CMD under GNU time (killed after LIMIT_S); leaves
# "user sys wall maxrss_kib voluntary_cs involuntary_cs" in $TMP/NAME.time, stdout/stderr in $TMP/NAME.out/.err.
timed() {
    local name=$1 limit=$2 rc=0
    shift 2
    timeout -k 10 "$limit" /usr/bin/time -o "$TMP/$name.time" -f '%U %S %e %M %w %c' "$@" \
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
cpu_of() { awk '{ u = $1; s = $2 } END { printf "%.2f", u + s }' "$TMP/$1.time"; }
# KEY from rtpmic's final "stopped:" line in NAME's stderr.
stat_of() {
    local line
    line=$(grep 'INFO stopped:' "$TMP/$1.err" | tail -n 1) || die "$1: no final stats line"
    sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $line"
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# rtpmic's environment for Opus (add RTPMIC_DEVICE and RTPMIC_FRAME_MS) and PCMU.
OPUS_ENV=(RTPMIC_DEST="127.0.0.1:$SINK_PORT" RTPMIC_CODEC=opus RTPMIC_BITRATE=32000
    RTPMIC_OPUS_COMPLEXITY=10 RTPMIC_OPUS_APPLICATION=voip RTPMIC_RT_PRIORITY=50
    RTPMIC_STATS_INTERVAL_S=0 RTPMIC_LOG_LEVEL=info)
PCMU_ENV=(RTPMIC_DEST="127.0.0.1:$SINK_PORT" RTPMIC_CODEC=pcmu RTPMIC_RATE=8000
    RTPMIC_FRAME_MS=20 RTPMIC_RT_PRIORITY=50 RTPMIC_STATS_INTERVAL_S=0 RTPMIC_LOG_LEVEL=info)

check_packets() {
    local got
    got=$(stat_of "$1" packets)
    [ "$got" = "$2" ] || {
        grep 'INFO stopped:' "$TMP/$1.err" >&2 || true
        die "$1: rtpmic sent $got packets, expected $2"
    }
}

# The first descendant of PID whose command name is COMM.
find_descendant() {
    local queue=("$1") p c
    while [ "${#queue[@]}" -gt 0 ]; do
        p=${queue[0]}
        queue=("${queue[@]:1}")
        for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
            if [ "$(cat /proc/"$c"/comm 2>/dev/null)" = "$2" ]; then
                echo "$c"
                return 0
            fi
            queue+=("$c")
        done
    done
    return 1
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
# Two thread_cpu snapshots SECONDS apart -> ms CPU per second: "main capture encode send jack".
# rtpmic names its threads; libjack's client threads, started from inside snd_pcm_open on the
# capture thread, inherit its name, so the first rtpmic-capture (lowest TID) is rtpmic's and
# later ones (and anything unnamed) belong to the simulated board.
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

declare -a OPUS_CPU OPUS_USER OPUS_SYS OPUS_WALL OPUS_RSS OPUS_VCS BARE_CPU BARE_WALL BARE_VCS
declare -a SEND_CPU SEND_WALL SEND_VCS PCMU_CPU PCMU_WALL PCMU_RSS PCMU_VCS
rep=1
while [ "$rep" -le "$REPS" ]; do
    log "unpaced repetition $rep/$REPS"
    t0=$(date +%s.%N)
    n=opus$rep
    timed "$n" 120 env SIM_INFILE="$TMP/speech48k.raw" "${OPUS_ENV[@]}" RTPMIC_DEVICE=simfast \
        RTPMIC_FRAME_MS=20 "$RTPMIC" run --seconds "$AUDIO_S" --no-drop
    check_packets "$n" "$EXPECT_PACKETS"
    OPUS_CPU+=("$(cpu_of "$n")") OPUS_USER+=("$(tfield "$n" 1)") OPUS_SYS+=("$(tfield "$n" 2)")
    OPUS_WALL+=("$(tfield "$n" 3)") OPUS_RSS+=("$(tfield "$n" 4)") OPUS_VCS+=("$(tfield "$n" 5)")

    n=bare$rep
    timed "$n" 120 "$TMP/bare_opus" "$TMP/speech48k.raw"
    grep -q "^packets=$EXPECT_PACKETS " "$TMP/$n.out" || die "$n: $(cat "$TMP/$n.out")"
    BARE_CPU+=("$(cpu_of "$n")") BARE_WALL+=("$(tfield "$n" 3)") BARE_VCS+=("$(tfield "$n" 5)")

    n=send$rep
    timed "$n" 120 "$TMP/bare_opus" "$TMP/speech48k.raw" --send 127.0.0.1 "$SINK_PORT"
    grep -q "^packets=$EXPECT_PACKETS " "$TMP/$n.out" || die "$n: $(cat "$TMP/$n.out")"
    SEND_CPU+=("$(cpu_of "$n")") SEND_WALL+=("$(tfield "$n" 3)") SEND_VCS+=("$(tfield "$n" 5)")

    n=pcmu$rep
    timed "$n" 120 env SIM_INFILE="$TMP/speech8k.raw" "${PCMU_ENV[@]}" RTPMIC_DEVICE=simfast \
        "$RTPMIC" run --seconds "$AUDIO_S" --no-drop
    check_packets "$n" "$EXPECT_PACKETS"
    PCMU_CPU+=("$(cpu_of "$n")") PCMU_WALL+=("$(tfield "$n" 3)") PCMU_RSS+=("$(tfield "$n" 4)")
    PCMU_VCS+=("$(tfield "$n" 5)")

    if [ "$rep" = 1 ] && [ -z "${BENCH_REPS:-}${BENCH_PACED_S:-}" ]; then
        # Projected total: what ran so far, the remaining repetitions, the two paced runs
        # plus ~5 s of start/stop each.
        rep_s=$(calc '%.0f' "$(date +%s.%N) - $t0")
        projected=$(($(date +%s) - T_START + (REPS - 1) * rep_s + 2 * (PACED_S + 5)))
        if [ "$projected" -gt "$BUDGET_S" ]; then
            REPS=3
            PACED_S=30
            REDUCED="The first repetition projected ${projected} s in all (budget ${BUDGET_S} s), so this run used 3 unpaced repetitions and ${PACED_S} s paced runs instead of 5 and 60 s."
            log "projected ${projected} s > ${BUDGET_S} s: 3 repetitions, ${PACED_S} s paced runs"
        fi
    fi
    rep=$((rep + 1))
done

# --- paced -------------------------------------------------------------------------------
# Own jackd, with board/sim/sim.sh's parameters (dummy driver, 48 kHz, 240-frame = 5 ms
# periods) under a server name of our own, so that a board someone else is using is never
# touched. (sim.sh's "already running" check relies on `jack_wait -c`'s exit status, which
# is 0 even when no server is running, so `sim.sh start` cannot be relied on to start one.)
export JACK_DEFAULT_SERVER=rtpmic-bench-$$
JACK_NO_AUDIO_RESERVATION=1 jackd -n "$JACK_DEFAULT_SERVER" -d dummy -r 48000 -p 240 -C 1 -P 1 \
    >"$TMP/jackd.log" 2>&1 &
JACKD_PID=$!
jack_wait -s "$JACK_DEFAULT_SERVER" -w -t 10 >/dev/null 2>&1 || { cat "$TMP/jackd.log" >&2; die "jackd did not come up"; }
sleep 0.5
kill -0 "$JACKD_PID" 2>/dev/null || { cat "$TMP/jackd.log" >&2; die "jackd exited"; }

for frame in 20 2.5; do
    n=paced$frame
    log "paced Opus, ${frame} ms frames, ${PACED_S} s"
    timed "$n" $((PACED_S + 30)) env SIM_INFILE="$TMP/speech48k.raw" "${OPUS_ENV[@]}" \
        RTPMIC_DEVICE=simfile RTPMIC_FRAME_MS="$frame" "$RTPMIC" run --seconds "$PACED_S" &
    bg=$!
    # Steady state, away from start-up and shutdown: per-thread CPU between 1/4 and 3/4 of
    # the run, and the resident memory halfway through (mlockall keeps it all resident).
    sleep "$(calc '%.2f' "$PACED_S / 4")"
    pid=$(find_descendant "$bg" rtpmic) || die "$n: rtpmic not running a quarter in"
    t1=$(date +%s.%N)
    thread_cpu "$pid" >"$TMP/$n.cpu1"
    sleep "$(calc '%.2f' "$PACED_S / 4")"
    rss_breakdown "$pid" >"$TMP/$n.smaps" || die "$n: cannot read /proc/$pid/smaps"
    sleep "$(calc '%.2f' "$PACED_S / 4")"
    thread_cpu "$pid" >"$TMP/$n.cpu2"
    t2=$(date +%s.%N)
    thread_split "$TMP/$n.cpu1" "$TMP/$n.cpu2" "$(calc '%.3f' "$t2 - $t1")" >"$TMP/$n.threads"
    wait "$bg" || exit 1
    [ "$(stat_of "$n" packets)" -gt 0 ] || { grep 'INFO stopped:' "$TMP/$n.err" >&2; die "$n: no packets"; }
done
kill -TERM "$JACKD_PID" 2>/dev/null || true
wait "$JACKD_PID" 2>/dev/null || true
JACKD_PID=""

T_TOTAL=$(($(date +%s) - T_START))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- results -----------------------------------------------------------------------------
m() { echo "$@" | median; }
opus_cpu=$(m "${OPUS_CPU[*]}")
opus_user=$(m "${OPUS_USER[*]}")
opus_sys=$(m "${OPUS_SYS[*]}")
opus_wall=$(m "${OPUS_WALL[*]}")
opus_rss=$(m "${OPUS_RSS[*]}")
bare_cpu=$(m "${BARE_CPU[*]}")
bare_wall=$(m "${BARE_WALL[*]}")
send_cpu=$(m "${SEND_CPU[*]}")
send_wall=$(m "${SEND_WALL[*]}")
pcmu_cpu=$(m "${PCMU_CPU[*]}")
pcmu_wall=$(m "${PCMU_WALL[*]}")
pcmu_rss=$(m "${PCMU_RSS[*]}")

mib() { calc '%.1f' "$1 / 1024"; }
per_audio_s() { calc '%.2f' "$1 * 1000 / $AUDIO_S"; }           # ms CPU per s of audio
us_per_packet() { calc '%.1f' "$1 * 1000000 / $EXPECT_PACKETS"; }
over_bare=$(calc '%.3f' "$opus_cpu / $bare_cpu")
over_send=$(calc '%.3f' "$opus_cpu / $send_cpu")
pct() { calc '%+.1f %%' "($1 - 1) * 100"; }
met() { if awk "BEGIN { exit !($1) }"; then echo "**met**"; else echo "**missed**"; fi; }
overhead_verdict=$(met "$over_bare <= 1.05")
opus_vcs=$(m "${OPUS_VCS[*]}")

declare -A P
for frame in 20 2.5; do
    n=paced$frame
    for k in periods frames xruns samples_lost frame_drops packets packet_drops datagrams \
        send_errors latency_p50 latency_p99 latency_p999 latency_max_us; do
        P[$frame,$k]=$(stat_of "$n" "$k")
    done
    P[$frame,cpu]=$(cpu_of "$n")
    P[$frame,wall]=$(tfield "$n" 3)
    P[$frame,rss]=$(tfield "$n" 4)
    P[$frame,core]=$(calc '%.2f' "${P[$frame,cpu]} * 100 / ${P[$frame,wall]}")
    P[$frame,expect]=$(calc '%.0f' "$PACED_S * 1000 / $frame")
    read -r P[$frame,s_total] P[$frame,s_anon] P[$frame,s_own] P[$frame,s_plug] P[$frame,s_jack] \
        <"$TMP/$n.smaps"
    read -r P[$frame,t_main] P[$frame,t_cap] P[$frame,t_enc] P[$frame,t_snd] P[$frame,t_jack] \
        <"$TMP/$n.threads"
    P[$frame,t_own]=$(calc '%.2f' "${P[$frame,t_main]} + ${P[$frame,t_cap]} + ${P[$frame,t_enc]} + ${P[$frame,t_snd]}")
    P[$frame,t_pct]=$(calc '%.2f' "${P[$frame,t_own]} / 10")
    P[$frame,enc_us]=$(calc '%.0f' "${P[$frame,t_enc]} * $frame")
    P[$frame,mlock]=$(grep -q 'mlockall refused' "$TMP/$n.err" && echo "refused" || echo "on")
done
lt() { echo "\`$1\`"; }   # "<250us" as a code span, not an HTML tag
rss_mib=$(mib "${P[20,rss]}")
rss_verdict=$(met "${P[20,rss]} <= 6 * 1024")
simfast_verdict=$(met "$opus_rss <= 6 * 1024")
if [ "${P[20,mlock]}" != on ]; then
    for v in rss_verdict simfast_verdict; do
        printf -v "$v" '%s (mlockall was refused: not the locked figure)' "${!v}"
    done
fi

# Opus modes and payload rate from the first encode-only run (every run encodes the same).
read -r silk hybrid celt payload_bytes < <(sed -n \
    's/.*bytes=\([0-9]*\) silk=\([0-9]*\) hybrid=\([0-9]*\) celt=\([0-9]*\).*/\2 \3 \4 \1/p' "$TMP/bare1.out") ||
    die "bare_opus printed no mode counts: $(cat "$TMP/bare1.out")"
share() { calc '%.0f %%' "$1 * 100 / $EXPECT_PACKETS"; }
mode_mix="SILK-only $(share "$silk"), hybrid $(share "$hybrid"), CELT-only $(share "$celt")"
opus_kbps=$(calc '%.1f' "$payload_bytes * 8 / $AUDIO_S / 1000")
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
[ -n "$cpu_model" ] || cpu_model=$(uname -m)
rev=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
rustc_v=$(rustc --version 2>/dev/null || echo unknown)
opus_v=$(pkg-config --modversion opus)

mkdir -p "$(dirname "$OUT")"
cat >"$TMP/PERFORMANCE.md" <<EOF
# Performance

Generated by \`make bench\` (\`benches/run.sh\`) on $(date -u '+%Y-%m-%d %H:%M UTC'); rerun it to
regenerate this file. Every number here is measured on the machine below; none of them is
asserted by the tests, which check behaviour, not speed. Expect other machines (and a loaded
one) to differ.

## What is measured, and how

All runs use the simulated board (\`board/sim/asound.conf\`), the release build, and the
same input: a deterministic speech-like signal (\`benches/gen_speech.py\`: glottal pulses at a
pitch gliding within 90-220 Hz through three formant resonators that move from vowel to
vowel, syllable envelopes, fricative noise bursts and pauses; 60 s computed and repeated to
${AUDIO_S} s, about -22 dBFS RMS), raw S16_LE mono at 48 kHz, and at 8 kHz for PCMU. libopus
treats it as speech; the modes it chose (encode-only run): ${mode_mix}; payload
${opus_kbps} kbit/s on average.
rtpmic runs with \`RTPMIC_RT_PRIORITY=50\` (SCHED_RR threads, \`mlockall\` on) and sends to a UDP
port on 127.0.0.1 that is bound but never read (no ICMP errors, no receiver CPU); the
\`--send\` floor sends to the same port.

* **Unpaced** (\`simfast\`: the file as fast as it can be read, \`rtpmic run --seconds ${AUDIO_S} --no-drop\`
  so every frame is encoded and sent): CPU time (user + sys) and peak RSS from GNU
  \`time\`, packet count from rtpmic's final stats line (must be ${EXPECT_PACKETS}). Median of
  ${REPS} repetitions; each repetition runs rtpmic Opus, the two floors and rtpmic PCMU in turn.
* **Floor** (\`benches/bare_opus.c\`): the same file read 960 samples at a time with \`fread\`
  and encoded by the same libopus with the same settings (\`OPUS_APPLICATION_VOIP\`, 32000
  bit/s, complexity 10, constrained VBR, mono 48 kHz); once encode only, once also with a
  12-byte RTP header and one \`sendto\` per packet.
* **Paced** (\`simfile\`: the file delivered in real time by a jackd dummy server with 5 ms
  periods; \`rtpmic run --seconds ${PACED_S}\`): one run each for 20 ms and 2.5 ms Opus frames.
  Latency is rtpmic's own histogram: from the ALSA read that completed a frame returning to
  the kernel accepting the packet. Quantiles are upper bounds of fixed buckets
  (50, 100, 250, 500, 1000, 2000, 5000, ... µs); the maximum is exact.
${REDUCED:+
**Reduced run.** $REDUCED
}
## Machine

| | |
|---|---|
| CPU | ${cpu_model} |
| Cores (\`nproc\`) | $(nproc) |
| Kernel (\`uname -r\`) | $(uname -r) |
| libopus (\`pkg-config --modversion opus\`) | ${opus_v} |
| rustc | ${rustc_v} |
| rtpmic tree (\`git describe --always --dirty\`) | ${rev} |
| Load average before / after | ${LOAD_BEFORE} / ${LOAD_AFTER} |
| Bench wall time | ${T_TOTAL} s |

## Targets

| Target | Measured | Result |
|---|---|---|
| Opus CPU overhead over the bare libopus encode <= 5 % | $(pct "$over_bare") (${opus_cpu} s vs ${bare_cpu} s for ${AUDIO_S} s of audio) | ${overhead_verdict} |
| Peak RSS with \`mlockall\` (paced Opus, 20 ms) <= 6 MiB | ${rss_mib} MiB | ${rss_verdict} |
| ... the same without jack: peak RSS of the unpaced Opus runs (\`simfast\`, \`mlockall\` on) | $(mib "$opus_rss") MiB | ${simfast_verdict} |

The paced board reads through alsa-lib's jack plugin, which maps jackd's shared memory into
the process and starts a jack client thread; \`mlockall\` makes every mapped page resident,
so the first row mostly measures the simulated board. A real board (\`hw:\`/\`plughw:\`)
loads no jack, so the second row (the same rtpmic, same settings, \`mlockall\` on, reading
through the jack-free \`simfast\` PCM) is the better estimate for it. Where the paced
run's resident memory was halfway through (\`/proc/PID/smaps\`, MiB; "anonymous" includes the
jack client thread's stack and buffers):

| Total | anonymous (heap, stacks, rings) | rtpmic + linked libraries (libc, libm, libasound, libopus, ...) | ALSA plugin libraries (jack, libstdc++, ...) | jackd shared memory |
|---|---|---|---|---|
| $(mib "${P[20,s_total]}") | $(mib "${P[20,s_anon]}") | $(mib "${P[20,s_own]}") | $(mib "${P[20,s_plug]}") | $(mib "${P[20,s_jack]}") |

## 1. Opus, ${AUDIO_S} s unpaced

Median of ${REPS}; CPU = user + sys.

| | CPU s | user s | sys s | wall s | CPU ms per s of audio | voluntary context switches | peak RSS MiB | packets |
|---|---|---|---|---|---|---|---|---|
| rtpmic (simfast, --no-drop) | ${opus_cpu} | ${opus_user} | ${opus_sys} | ${opus_wall} | $(per_audio_s "$opus_cpu") | ${opus_vcs} | $(mib "$opus_rss") | ${EXPECT_PACKETS} |
| bare_opus, encode only | ${bare_cpu} | | | ${bare_wall} | $(per_audio_s "$bare_cpu") | $(m "${BARE_VCS[*]}") | | ${EXPECT_PACKETS} |
| bare_opus, encode + RTP header + sendto | ${send_cpu} | | | ${send_wall} | $(per_audio_s "$send_cpu") | $(m "${SEND_VCS[*]}") | | ${EXPECT_PACKETS} |

* rtpmic / bare encode: **${over_bare}** ($(pct "$over_bare")); target <= 1.05: ${overhead_verdict}.
* rtpmic / bare encode + sendto: **${over_send}** ($(pct "$over_send")).
* rtpmic CPU per second of audio: **$(calc '%.4f' "$opus_cpu / $AUDIO_S") s** ($(calc '%.2f' "$opus_cpu * 100 / $AUDIO_S") % of one core in real time).
* Individual runs, CPU s: rtpmic ${OPUS_CPU[*]}; encode only ${BARE_CPU[*]}; encode + sendto ${SEND_CPU[*]}.

Where the difference goes: rtpmic's capture, encoder and sender threads hand every frame
on through rings and sleep on eventfds in between (\`--no-drop\` makes them wait rather than
drop), so each frame costs wake-ups (the context-switch column: $(calc '%.2f' "$opus_vcs / $EXPECT_PACKETS") per frame) and
the system time that goes with them, which \`bare_opus\`, a single loop, does not pay. Paced,
a live stream pays these wake-ups too.

## 2. PCMU, ${AUDIO_S} s unpaced (8 kHz, 20 ms)

| | CPU s | wall s | µs CPU per packet | voluntary context switches | peak RSS MiB | packets |
|---|---|---|---|---|---|---|
| rtpmic (simfast, --no-drop) | ${pcmu_cpu} | ${pcmu_wall} | $(us_per_packet "$pcmu_cpu") | $(m "${PCMU_VCS[*]}") | $(mib "$pcmu_rss") | ${EXPECT_PACKETS} |

Whole process, start-up included. Individual runs, CPU s: ${PCMU_CPU[*]}.

## 3. Paced Opus, ${PACED_S} s each

| Frame | latency p50 | p99 | p99.9 | max | CPU s, user + sys (whole run) | % of one core (whole run) | peak RSS MiB | mlockall |
|---|---|---|---|---|---|---|---|---|
| 20 ms | $(lt "${P[20,latency_p50]}") | $(lt "${P[20,latency_p99]}") | $(lt "${P[20,latency_p999]}") | ${P[20,latency_max_us]} µs | ${P[20,cpu]} | ${P[20,core]} % | $(mib "${P[20,rss]}") | ${P[20,mlock]} |
| 2.5 ms | $(lt "${P[2.5,latency_p50]}") | $(lt "${P[2.5,latency_p99]}") | $(lt "${P[2.5,latency_p999]}") | ${P[2.5,latency_max_us]} µs | ${P[2.5,cpu]} | ${P[2.5,core]} % | $(mib "${P[2.5,rss]}") | ${P[2.5,mlock]} |

"Whole run" is GNU \`time\` for the process from start to exit, over wall time: it includes
start-up (\`mlockall\` faulting in the ${rss_mib} MiB above) and the jack client threads that
the simulated board's ALSA plugin runs inside the process. Only the user + sys sum is given:
the kernel splits it between user and sys by sampling at timer ticks, which short
tick-aligned wake-ups like these skew. The steady state by thread (CPU from
\`/proc/PID/task/*/schedstat\` between 1/4 and 3/4 of the run; ms of CPU per second of
audio):

| Frame | capture | encode (µs per frame) | send | main | rtpmic in all | % of one core | jack plugin threads (simulated board only) |
|---|---|---|---|---|---|---|---|
| 20 ms | ${P[20,t_cap]} | ${P[20,t_enc]} (${P[20,enc_us]}) | ${P[20,t_snd]} | ${P[20,t_main]} | ${P[20,t_own]} | ${P[20,t_pct]} % | ${P[20,t_jack]} |
| 2.5 ms | ${P[2.5,t_cap]} | ${P[2.5,t_enc]} (${P[2.5,enc_us]}) | ${P[2.5,t_snd]} | ${P[2.5,t_main]} | ${P[2.5,t_own]} | ${P[2.5,t_pct]} % | ${P[2.5,t_jack]} |

Counters from the final stats line:

| Frame | packets (expected) | xruns | samples lost | frame drops | packet drops | send errors |
|---|---|---|---|---|---|---|
| 20 ms | ${P[20,packets]} (${P[20,expect]}) | ${P[20,xruns]} | ${P[20,samples_lost]} | ${P[20,frame_drops]} | ${P[20,packet_drops]} | ${P[20,send_errors]} |
| 2.5 ms | ${P[2.5,packets]} (${P[2.5,expect]}) | ${P[2.5,xruns]} | ${P[2.5,samples_lost]} | ${P[2.5,frame_drops]} | ${P[2.5,packet_drops]} | ${P[2.5,send_errors]} |

The simulated board delivers samples in 5 ms jackd periods, so 2.5 ms frames arrive in pairs
(the capture thread wakes 200 times a second either way); latency counts from the read that
completed each frame, so this pacing does not add to it.
EOF
{
    echo
    echo "## 4. Fan-out: CPU per datagram by destination count (\`benches/fanout.rs\`)"
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
mv "$TMP/PERFORMANCE.md" "$OUT"
log "wrote $OUT (${T_TOTAL} s)"
