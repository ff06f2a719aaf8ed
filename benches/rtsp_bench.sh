#!/usr/bin/env bash
# The pull path (RTSP), side by side with gst-rtsp-server; run by benches/run.sh (`make bench`),
# or alone:
#
#   benches/rtsp_bench.sh SECTION.md TARGETS.md
#
# writes the "Pull (RTSP)" section of docs/PERFORMANCE.md to SECTION.md and its rows of the
# targets table to TARGETS.md. Needs target/release/rtpmic (or RTPMIC_BIN).
#
#   1. Serving: rtpmic's built-in server and gst-rtsp-server (benches/gst_rtsp_server.py,
#      Python + GObject introspection around libgstrtspserver, shared media) each serve 1, 16
#      and 64 clients over UDP and over TCP (interleaved). Both read the same speech-like
#      input from the same jackd-paced ALSA PCM (board/sim's `simfile`) and encode it with the
#      same Opus settings (32 kb/s, 20 ms, complexity 10, VOIP/voice, constrained VBR, 0 %
#      expected loss). The clients are benches/rtsp_load.c, one process for all sessions
#      that reads every 20 ms, so the server's cost is what is measured. A fresh server for
#      each cell; once every session has its first packet, a settle time, then the server's
#      CPU over a fixed window (every thread's /proc/PID/task/*/schedstat: exact ns), the
#      packets the clients got in that window (snapshots of the client's counters), the
#      server's peak RSS (VmHWM) and its resident memory by mapping, and every session's
#      time from PLAY to its first packet. RTSP_REPS repetitions (default 3), each running
#      every cell, servers alternating; medians.
#   2. Churn: rtpmic pushing to benches/jitter_rx (RTPMIC_DEST) with its RTSP server on,
#      without clients, then with clients joining and leaving at RTSP_CHURN_RATE per second
#      (default 10: half over UDP, half over TCP, 4 + 4 playing at once); rtpmic's own
#      added-latency quantiles from its final stats line, RTSP_CHURN_S s each (default 60),
#      RTSP_CHURN_REPS times (default 2), alternating.
#
# BENCH_QUICK=1: one repetition, 5 s windows, 10 s churn runs. BENCH_QUIET_LOAD (default 0.8
# in a full run, empty = do not wait): wait for the 1-minute load average to fall below it
# before starting (polled every 60 s, at most BENCH_QUIET_WAIT_S, default 2700 s).
set -euo pipefail
export LC_ALL=C

[ $# = 2 ] || { echo "usage: $0 SECTION.md TARGETS.md" >&2; exit 2; }
SECTION_OUT=$1
TARGETS_OUT=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
RTPMIC=${RTPMIC_BIN:-$ROOT/target/release/rtpmic}
QUICK=${BENCH_QUICK:-}
if [ -n "$QUICK" ]; then
    REPS=${RTSP_REPS:-1}
    WINDOW_S=${RTSP_WINDOW_S:-5}
    CHURN_S=${RTSP_CHURN_S:-10}
    CHURN_REPS=${RTSP_CHURN_REPS:-1}
    QUIET_LOAD=${BENCH_QUIET_LOAD-}
else
    REPS=${RTSP_REPS:-3}
    WINDOW_S=${RTSP_WINDOW_S:-20}
    CHURN_S=${RTSP_CHURN_S:-60}
    CHURN_REPS=${RTSP_CHURN_REPS:-2}
    QUIET_LOAD=${BENCH_QUIET_LOAD-0.8}
fi
QUIET_WAIT_S=${BENCH_QUIET_WAIT_S:-2700}
LEAD_S=1.5     # server start -> clients start
WSTART_S=4     # clients start -> CPU window (at least SETTLE_S after all play)
SETTLE_S=1
CLIENT_COUNTS=(${RTSP_CLIENTS:-1 16 64})
CHURN_RATE=${RTSP_CHURN_RATE:-10}
MAX_CLIENTS=64
SERVERS=(rtpmic gst)
TRANSPORTS=(udp tcp)

die() { echo "rtsp_bench: $*" >&2; exit 1; }
log() { echo "rtsp_bench: $*" >&2; }

[ -x "$RTPMIC" ] || die "$RTPMIC missing: run 'make build' (or 'make bench')"
for tool in cc python3 jackd jack_wait ss; do
    command -v "$tool" >/dev/null || die "$tool not found (make deps installs the board's packages)"
done
/usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0"); from gi.repository import GstRtspServer' 2>/dev/null ||
    die "gst-rtsp-server's Python bindings missing (Debian: gir1.2-gst-rtsp-server-1.0 python3-gi; make deps)"

while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^RTPMIC_' || true)
unset SIM_INFILE JACK_DEFAULT_SERVER GST_DEBUG GST_TRACERS
export ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf:$ROOT/board/sim/asound.conf

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rtpmic-rtsp-bench.XXXXXX")
JACKD_PID=""
BG_PIDS=()
cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "$JACKD_PID" ]; then
        kill -TERM "$JACKD_PID" 2>/dev/null || true
        wait "$JACKD_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $(grep "$3" "$1" | tail -n 1)"; }
lat_us() { sed 's/[^0-9]//g' <<<"$1"; }

# Waits for the 1-minute load average to fall below QUIET_LOAD (the machine is shared).
QUIET_NOTE=""
wait_quiet() {
    [ -n "$QUIET_LOAD" ] || return 0
    local t0 l
    t0=$(date +%s)
    while :; do
        l=$(cut -d' ' -f1 /proc/loadavg)
        awk "BEGIN { exit !($l < $QUIET_LOAD) }" && break
        if [ $(($(date +%s) - t0)) -ge "$QUIET_WAIT_S" ]; then
            QUIET_NOTE="The load average stayed at or above ${QUIET_LOAD} for ${QUIET_WAIT_S} s (last ${l}): run anyway."
            log "$QUIET_NOTE"
            return 0
        fi
        log "load average ${l} >= ${QUIET_LOAD}: waiting (60 s)"
        sleep 60
    done
    QUIET_NOTE="Waited $(($(date +%s) - t0)) s for the 1-minute load average to fall below ${QUIET_LOAD}."
}

# --- tools and input ------------------------------------------------------------------------------
T_START=$(date +%s)
AUDIO_S=$((CHURN_S > WINDOW_S ? CHURN_S + 60 : WINDOW_S + 60))
python3 "$ROOT/benches/gen_speech.py" 48000 "$AUDIO_S" "$TMP/speech48k.raw"
python3 "$ROOT/benches/gen_speech.py" 48000 600 "$TMP/speech600.raw"
cc -O2 -Wall "$ROOT/benches/rtsp_load.c" -o "$TMP/rtsp_load" -lm
cc -O2 -Wall "$ROOT/benches/jitter_rx.c" -o "$TMP/jitter_rx" -lm
cc -O2 -Wall -static "$ROOT/benches/rusage.c" -o "$TMP/rusage" 2>/dev/null ||
    cc -O2 -Wall "$ROOT/benches/rusage.c" -o "$TMP/rusage"

JACK_DEFAULT_SERVER=rtpmic-bench-$$-rtsp
export JACK_DEFAULT_SERVER
JACKD_LOG=$TMP/jackd.log
JACK_NO_AUDIO_RESERVATION=1 jackd -n "$JACK_DEFAULT_SERVER" -R -P 70 -d dummy -r 48000 -p 240 -C 1 -P 1 \
    >"$JACKD_LOG" 2>&1 &
JACKD_PID=$!
jack_wait -s "$JACK_DEFAULT_SERVER" -w -t 10 >/dev/null 2>&1 || { cat "$JACKD_LOG" >&2; die "jackd did not come up"; }
sleep 0.5
kill -0 "$JACKD_PID" 2>/dev/null || { cat "$JACKD_LOG" >&2; die "jackd exited"; }

# --- helpers --------------------------------------------------------------------------------------
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# wait_listening PORT PID: until something listens on 127.0.0.1:PORT (PID must stay alive).
wait_listening() {
    local i
    for i in $(seq 300); do
        [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
# "tid comm policy cpu_ns" for every thread of PID (policy 1 = SCHED_FIFO, 2 = SCHED_RR).
thread_cpu() {
    local t st f
    for t in /proc/"$1"/task/*; do
        read -r st <"$t/stat" || continue
        read -r -a f <<<"${st##*) }"
        printf '%s %s %s %s\n' "${t##*/}" "$(tr ' ' '_' <"$t/comm")" "${f[38]}" "$(cut -d' ' -f1 "$t/schedstat")"
    done 2>/dev/null
}
# CPU ns between two thread_cpu snapshots (threads in both): "whole server", where server
# leaves out SCHED_FIFO threads: the ALSA jack plugin's process thread (jackd -P 70 starts it
# at FIFO 65 inside every process that opens the simulated PCM), which is the simulated
# device's, not the server's. Neither server has a FIFO thread of its own (rtpmic's stream
# thread is SCHED_RR, gst-rtsp-server's are SCHED_OTHER).
proc_ns() {
    join <(sort "$1") <(sort "$2") | awk '{ d = $7 - $4; all += d; if ($6 != 1) srv += d } END { printf "%d %d\n", all, srv }'
}
# rtpmic by thread, ms/s: "stream rtsp main helpers jack". The stream thread is the first
# rtpmic-capture (lowest TID: it reads, encodes and sends); libjack's client threads inherit
# its name (later TIDs): the FIFO one is "jack", the others go to "helpers" with rtpmic's
# helper threads (rtcp, resolve).
rtpmic_split() {
    join <(sort "$1") <(sort "$2") | sort -n | awk -v secs="$3" '
        { d = ($7 - $4) / 1e6 / secs; c = $2 }
        $6 == 1 { jk += d; next }
        c == "rtpmic-capture" && !seen++ { st += d; next }
        c == "rtpmic-encode" || c == "rtpmic-send" { st += d; next }
        c == "rtpmic-rtsp" { rt += d; next }
        c == "rtpmic" { mn += d; next }
        { ot += d }
        END { printf "%.2f %.2f %.2f %.2f %.2f\n", st, rt, mn, ot, jk }'
}
# Resident KiB of PID: "total board" where board = what only the simulated board maps: jackd's
# shared memory and the libraries the ALSA jack plugin pulls in (libjack, its libdb and
# libstdc++, the plugin module). A server on a real device (hw:/plughw:) maps none of them.
rss_split() {
    awk '
        /^[0-9a-f]+-[0-9a-f]+ / { name = $6; next }
        /^Rss:/ {
            total += $2
            if (name ~ /^\/dev\/shm\/jack/ || name ~ /\/libjack[^\/]*$/ || name ~ /\/libdb-[^\/]*$/ ||
                name ~ /\/libstdc\+\+[^\/]*$/ || name ~ /libasound_module_pcm_jack/) board += $2
        }
        END { printf "%d %d\n", total, board }' "/proc/$1/smaps"
}
hwm_of() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

OPUS_RTPMIC=(RTPMIC_CODEC=opus RTPMIC_BITRATE=32000 RTPMIC_OPUS_COMPLEXITY=10 RTPMIC_OPUS_APPLICATION=voip
    RTPMIC_OPUS_LOSS_PERCENT=0 RTPMIC_FRAME_MS=20)
OPUS_GST=(--bitrate 32000 --complexity 10 --audio-type voice --bitrate-type constrained-vbr --bandwidth auto)
RT_ENV=(RTPMIC_RT_PRIORITY=50 RTPMIC_STATS_INTERVAL_S=0 RTPMIC_LOG_LEVEL=info)

# server_cmd SERVER PORT [extra env...]: sets CMD and COMM.
server_cmd() {
    local srv=$1 port=$2
    shift 2
    case $srv in
    rtpmic)
        CMD=(env SIM_INFILE="$TMP/speech48k.raw" RTPMIC_DEVICE=simfile RTPMIC_RTSP_LISTEN="127.0.0.1:$port"
            RTPMIC_RTSP_MAX_CLIENTS=$MAX_CLIENTS "${OPUS_RTPMIC[@]}" "${RT_ENV[@]}" "$@" "$RTPMIC" run)
        COMM=rtpmic ;;
    rtpmic-nojack)
        # Unpaced (board/sim's simfast: no jack), for memory only, as section 1 measures it.
        CMD=(env SIM_INFILE="$TMP/speech600.raw" RTPMIC_DEVICE=simfast RTPMIC_RTSP_LISTEN="127.0.0.1:$port"
            RTPMIC_RTSP_MAX_CLIENTS=$MAX_CLIENTS "${OPUS_RTPMIC[@]}" "${RT_ENV[@]}" "$@" "$RTPMIC" run --no-drop)
        COMM=rtpmic ;;
    gst)
        CMD=(env SIM_INFILE="$TMP/speech48k.raw" /usr/bin/python3 "$ROOT/benches/gst_rtsp_server.py"
            --port "$port" --path /mic --alsa simfile "${OPUS_GST[@]}")
        COMM=python3 ;;
    esac
}
# start_server NAME SERVER [extra env...]: starts it under benches/rusage.c; sets SRV_BG (the
# rusage process), SRV_PID (the server) and URL.
start_server() {
    local name=$1 srv=$2 port
    shift 2
    port=$(free_port)
    server_cmd "$srv" "$port" "$@"
    "$TMP/rusage" "$TMP/$name.time" "${CMD[@]}" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    SRV_BG=$!
    BG_PIDS+=("$SRV_BG")
    wait_listening "$port" "$SRV_BG" || { tail -n 20 "$TMP/$name.err" >&2; die "$name: the server did not listen"; }
    SRV_PID=$(find_descendant "$SRV_BG" "$COMM") || die "$name: no $COMM process"
    URL=rtsp://127.0.0.1:$port/mic
}
stop_bg() { # PID: SIGTERM, wait, forget
    local p=$1 rc=0 keep=() q
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" || rc=$?
    for q in "${BG_PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
    BG_PIDS=("${keep[@]}")
    return "$rc"
}
# start_load NAME ARGS...: benches/rtsp_load.c against URL; LOAD_PID.
start_load() {
    local name=$1
    shift
    rm -f "$TMP/$name.ready"
    "$TMP/rtsp_load" "$URL" --ready "$TMP/$name.ready" --sessions "$TMP/$name.sessions" "$@" >"$TMP/$name.load" 2>"$TMP/$name.loaderr" &
    LOAD_PID=$!
    BG_PIDS+=("$LOAD_PID")
}
wait_ready() { # NAME PID
    local i
    for i in $(seq 600); do
        [ -s "$TMP/$1.ready" ] && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.05
    done
    cat "$TMP/$1.loaderr" >&2
    die "$1: the clients were not all playing within 30 s"
}
# The client's packet count at its last two snapshots: "first last".
snap_packets() { grep '^snapshot ' "$TMP/$1.load" | sed 's/.* packets=\([0-9]*\).*/\1/' | tail -n 2 | tr '\n' ' '; }
wait_snapshots() { # NAME COUNT
    local i
    for i in $(seq 100); do
        [ "$(grep -c '^snapshot ' "$TMP/$1.load" 2>/dev/null || true)" -ge "$2" ] && return 0
        sleep 0.02
    done
    die "$1: the client did not answer SIGUSR1"
}
stop_load() { # NAME: TEARDOWN, check that every session played without loss
    local name=$1 rc=0
    stop_bg "$LOAD_PID" || rc=$?
    [ "$rc" = 0 ] || { cat "$TMP/$name.loaderr" >&2; die "$name: a client session failed (status $rc)"; }
    [ "$(kv "$TMP/$name.load" failed '^sessions=')" = 0 ] || die "$name: failed sessions: $(tail -n 1 "$TMP/$name.load")"
}

# --- 1. serving 1, 16, 64 clients -----------------------------------------------------------------
declare -A C   # C[srv,tr,n,rep,field]
cell() {
    local srv=$1 tr=$2 n=$3 rep=$4 name t0 t1 t2 secs ns ns_all pk late p1 p2
    name=serve-$srv-$tr-$n-$rep
    log "repetition $rep/$REPS: $srv, $n client(s) over ${tr^^}"
    start_server "$name" "$srv"
    # rtpmic's stream runs from its start (gst-rtsp-server's from the first DESCRIBE): clients
    # come LEAD_S later, so PLAY -> first packet does not include a device being opened.
    sleep "$LEAD_S"
    t0=$(date +%s.%N)
    start_load "$name" --clients "$n" "--$tr"
    wait_ready "$name" "$LOAD_PID"
    # The window starts WSTART_S after the clients did (if they were all playing SETTLE_S
    # before that), so that it covers the same stretch of the input in every cell of a server:
    # the Opus encode's cost follows the signal.
    late=$(calc '%.3f' "$(date +%s.%N) + $SETTLE_S - $t0 - $WSTART_S")
    if awk "BEGIN { exit !($late > 0) }"; then
        log "$name: the clients took ${late} s longer than planned to play: window late"
        sleep "$SETTLE_S"
    else
        sleep "$(calc '%.3f' "$WSTART_S - ($(date +%s.%N) - $t0)")"
    fi
    kill -USR1 "$LOAD_PID"
    thread_cpu "$SRV_PID" >"$TMP/$name.cpu1"
    thread_cpu "$LOAD_PID" >"$TMP/$name.ccpu1"
    t1=$(date +%s.%N)
    sleep "$WINDOW_S"
    thread_cpu "$SRV_PID" >"$TMP/$name.cpu2"
    thread_cpu "$LOAD_PID" >"$TMP/$name.ccpu2"
    t2=$(date +%s.%N)
    kill -USR1 "$LOAD_PID"
    C[$srv,$tr,$n,$rep,hwm]=$(hwm_of "$SRV_PID")
    read -r C[$srv,$tr,$n,$rep,rss] C[$srv,$tr,$n,$rep,board] < <(rss_split "$SRV_PID")
    wait_snapshots "$name" 2
    stop_load "$name"
    stop_bg "$SRV_BG" || true
    secs=$(calc '%.6f' "$t2 - $t1")
    read -r ns_all ns <<<"$(proc_ns "$TMP/$name.cpu1" "$TMP/$name.cpu2")"
    read -r p1 p2 <<<"$(snap_packets "$name")"
    pk=$((p2 - p1))
    [ "$pk" -gt 0 ] || die "$name: no packets in the window"
    C[$srv,$tr,$n,$rep,rate]=$(calc '%.3f' "$ns / 1e6 / $secs")
    C[$srv,$tr,$n,$rep,rate_all]=$(calc '%.3f' "$ns_all / 1e6 / $secs")
    C[$srv,$tr,$n,$rep,client]=$(calc '%.3f' "$(proc_ns "$TMP/$name.ccpu1" "$TMP/$name.ccpu2" | cut -d' ' -f1) / 1e6 / $secs")
    C[$srv,$tr,$n,$rep,both]=$(calc '%.3f' "${C[$srv,$tr,$n,$rep,rate]} + ${C[$srv,$tr,$n,$rep,client]}")
    C[$srv,$tr,$n,$rep,pkts]=$pk
    C[$srv,$tr,$n,$rep,pps]=$(calc '%.1f' "$pk / $secs")
    C[$srv,$tr,$n,$rep,per_pkt]=$(calc '%.3f' "$ns / 1000 / $pk")
    C[$srv,$tr,$n,$rep,hwm_real]=$((${C[$srv,$tr,$n,$rep,hwm]} - ${C[$srv,$tr,$n,$rep,board]}))
    local f
    for f in first_us_p50 first_us_p99 first_us_max first_resp_us_p50 first_resp_us_max lost gaps late dups played \
        rtpinfo_next rtpinfo_later rtpinfo_early rtpinfo_none; do
        C[$srv,$tr,$n,$rep,$f]=$(kv "$TMP/$name.load" "$f" '^sessions=')
    done
    # Every session's PLAY -> first packet, for quantiles over all repetitions.
    awk '{ print $6 }' "$TMP/$name.sessions" >>"$TMP/first-$srv-$tr.us" 2>/dev/null || true
    if [ "$srv" = rtpmic ]; then
        C[$srv,$tr,$n,$rep,split]=$(rtpmic_split "$TMP/$name.cpu1" "$TMP/$name.cpu2" "$secs")
        C[$srv,$tr,$n,$rep,stopped]=$(grep 'INFO stopped:' "$TMP/$name.err" | tail -n 1 | sed 's/.*INFO stopped: //')
    fi
}

wait_quiet
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$REPS"); do
    for n in "${CLIENT_COUNTS[@]}"; do
        for tr in "${TRANSPORTS[@]}"; do
            # Servers alternate, and which goes first alternates by repetition.
            order=("${SERVERS[@]}")
            [ $((rep % 2)) = 0 ] && order=("${SERVERS[1]}" "${SERVERS[0]}")
            for srv in "${order[@]}"; do cell "$srv" "$tr" "$n" "$rep"; done
        done
    done
done
# rtpmic's memory on a board without jack: the same server and clients on the unpaced simfast
# PCM (section 1's way to measure RSS), VmHWM once every session plays.
declare -A M   # M[tr,n,field]
for tr in "${TRANSPORTS[@]}"; do
    for n in 1 "${CLIENT_COUNTS[-1]}"; do
        name=mem-$tr-$n
        log "memory without jack: rtpmic, $n client(s) over ${tr^^}"
        start_server "$name" rtpmic-nojack
        start_load "$name" --clients "$n" "--$tr"
        wait_ready "$name" "$LOAD_PID"
        sleep 1
        M[$tr,$n,hwm]=$(hwm_of "$SRV_PID")
        read -r M[$tr,$n,heap] M[$tr,$n,bin] M[$tr,$n,libs] < <(awk -v bin="$(readlink -f "$RTPMIC")" '
            /^[0-9a-f]+-[0-9a-f]+ / { name = $6; next }
            /^Rss:/ { if (name == "" || name ~ /^\[/) a += $2; else if (name == bin) b += $2; else l += $2 }
            END { printf "%d %d %d\n", a, b, l }' "/proc/$SRV_PID/smaps")
        # Unpaced, a TCP client cannot keep up and may be dropped as stalled: not checked here.
        stop_bg "$LOAD_PID" || true
        stop_bg "$SRV_BG" || true
    done
done
LOAD_MID=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 2. the push path while clients churn ----------------------------------------------------------
declare -A H   # H[mode,rep,field]
churn_run() {
    local mode=$1 rep=$2 name port rx_pid lu lt f line
    name=churn-$mode-$rep
    log "churn repetition $rep/$CHURN_REPS: $mode, ${CHURN_S} s"
    rm -f "$TMP/$name.port"
    "$TMP/jitter_rx" "$TMP/$name.port" --opus --frame-us 20000 --skip-ms 1000 >"$TMP/$name.rx" 2>"$TMP/$name.rxerr" &
    rx_pid=$!
    BG_PIDS+=("$rx_pid")
    for _ in $(seq 100); do [ -s "$TMP/$name.port" ] && break; sleep 0.02; done
    port=$(cat "$TMP/$name.port")
    start_server "$name" rtpmic RTPMIC_DEST="127.0.0.1:$port"
    H[$mode,$rep,sessions]=0
    if [ "$mode" = churn ]; then
        # Half the rate over each transport; 4 sessions of each play at any time.
        start_load "$name-udp" --udp --clients 4 --churn "$(calc '%g' "$CHURN_RATE / 2")"
        lu=$LOAD_PID
        start_load "$name-tcp" --tcp --clients 4 --churn "$(calc '%g' "$CHURN_RATE / 2")"
        lt=$LOAD_PID
    fi
    sleep "$CHURN_S"
    if [ "$mode" = churn ]; then
        LOAD_PID=$lu
        stop_load "$name-udp"
        LOAD_PID=$lt
        stop_load "$name-tcp"
        H[$mode,$rep,sessions]=$(($(kv "$TMP/$name-udp.load" sessions '^sessions=') + $(kv "$TMP/$name-tcp.load" sessions '^sessions=')))
        H[$mode,$rep,first_max]=$(printf '%s\n' "$(kv "$TMP/$name-udp.load" first_us_max '^sessions=')" "$(kv "$TMP/$name-tcp.load" first_us_max '^sessions=')" | sort -n | tail -n 1)
        H[$mode,$rep,client_lost]=$(($(kv "$TMP/$name-udp.load" lost '^sessions=') + $(kv "$TMP/$name-tcp.load" lost '^sessions=')))
    fi
    stop_bg "$SRV_BG" || die "$name: rtpmic failed: $(tail -n 5 "$TMP/$name.err")"
    stop_bg "$rx_pid" || die "$name: jitter_rx failed: $(cat "$TMP/$name.rxerr")"
    line=" $(grep 'INFO stopped:' "$TMP/$name.err" | tail -n 1)"
    for f in latency_p50 latency_p99 latency_p999 latency_max_us latency_max_encoded_us packets packet_drops xruns; do
        H[$mode,$rep,$f]=$(sed -n "s/.* $f=\([^ ]*\).*/\1/p" <<<"$line")
    done
    H[$mode,$rep,rtsp]=$(grep 'INFO rtsp:' "$TMP/$name.err" | tail -n 1 | sed 's/.*INFO rtsp: //')
    for f in packets seq_gaps drops dev_p99_us dev_max_us; do
        H[$mode,$rep,rx_$f]=$(kv "$TMP/$name.rx" "$f" .)
    done
    [ "${H[$mode,$rep,rx_seq_gaps]}" = 0 ] && [ "${H[$mode,$rep,rx_drops]}" = 0 ] ||
        die "$name: the push receiver lost packets: $(tail -n 1 "$TMP/$name.rx")"
}
for rep in $(seq "$CHURN_REPS"); do
    for mode in quiet churn; do churn_run "$mode" "$rep"; done
done
kill -TERM "$JACKD_PID" 2>/dev/null || true
wait "$JACKD_PID" 2>/dev/null || true
JACKD_PID=""
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
T_TOTAL=$(($(date +%s) - T_START))

# --- results ----------------------------------------------------------------------------------------
reps_of() { local r out=""; for r in $(seq "$REPS"); do out+=" ${C[$1,$r,$2]}"; done; echo "$out"; }
med() { reps_of "$1" "$2" | median; }
# Marginal CPU per client (ms/s), per repetition against the same repetition's 1-client run;
# median over repetitions.
marginal() { # SRV TR N [FIELD: rate (server), both (server + client)]
    local r out="" f=${4:-rate}
    for r in $(seq "$REPS"); do
        out+=" $(calc '%.4f' "(${C[$1,$2,$3,$r,$f]} - ${C[$1,$2,1,$r,$f]}) / ($3 - 1)")"
    done
    echo "$out" | median
}
declare -A SNAME=([rtpmic]="rtpmic" [gst]="gst-rtsp-server")
rows=""
for tr in "${TRANSPORTS[@]}"; do
    for n in "${CLIENT_COUNTS[@]}"; do
        for srv in "${SERVERS[@]}"; do
            k=$srv,$tr,$n
            mc="" mp="" mb=""
            if [ "$n" != 1 ]; then
                mc=$(calc '%.3f' "$(marginal "$srv" "$tr" "$n")")
                mp=$(calc '%.2f' "$mc * 1000 / 50")
                mb=$(calc '%.2f' "$(marginal "$srv" "$tr" "$n" both) * 1000 / 50")
            fi
            rows+="| ${tr^^} | $n | ${SNAME[$srv]} | $(calc '%.2f' "$(med "$k" rate)") | $(calc '%.2f' "$(med "$k" rate) / 10") % | $(calc '%.2f' "$(med "$k" rate_all)") | $(med "$k" pps) | $(calc '%.2f' "$(med "$k" per_pkt)") | ${mc} | ${mp} | $(calc '%.2f' "$(med "$k" client)") | ${mb} | $(mib "$(med "$k" hwm)") | $(mib "$(med "$k" hwm_real)") | $(calc '%.1f' "$(med "$k" first_us_p50) / 1000") | $(calc '%.1f' "$(med "$k" first_us_max) / 1000") | $(med "$k" lost) |
"
        done
    done
done
# Every rtpmic session's PLAY -> first packet over all cells and repetitions.
first_q() { # SRV TR Q
    sort -n "$TMP/first-$1-$2.us" | awk -v q="$3" '{ a[NR] = $1 } END { i = int(q * NR + 0.999999); if (i < 1) i = 1; printf "%.1f", a[i] / 1000 }'
}
first_n() { wc -l <"$TMP/first-$1-$2.us"; }
# Sessions of SRV over TR, all cells and repetitions, by what their first packet was.
rtpinfo_sum() { # SRV TR FIELD
    local n r t=0
    for n in "${CLIENT_COUNTS[@]}"; do
        for r in $(seq "$REPS"); do t=$((t + ${C[$1,$2,$n,$r,$3]})); done
    done
    echo "$t"
}
first_rows=""
for srv in "${SERVERS[@]}"; do
    for tr in "${TRANSPORTS[@]}"; do
        first_rows+="| ${SNAME[$srv]} | ${tr^^} | $(first_n "$srv" "$tr") | $(first_q "$srv" "$tr" 0.5) | $(first_q "$srv" "$tr" 0.9) | $(first_q "$srv" "$tr" 0.99) | $(first_q "$srv" "$tr" 1) | $(rtpinfo_sum "$srv" "$tr" rtpinfo_next) / $(rtpinfo_sum "$srv" "$tr" rtpinfo_later) / $(rtpinfo_sum "$srv" "$tr" rtpinfo_early) / $(rtpinfo_sum "$srv" "$tr" rtpinfo_none) |
"
    done
done
split_rows=""
for tr in "${TRANSPORTS[@]}"; do
    for n in "${CLIENT_COUNTS[@]}"; do
        # The repetition whose whole-process CPU is the median one.
        m=$(med "rtpmic,$tr,$n" rate)
        for r in $(seq "$REPS"); do [ "${C[rtpmic,$tr,$n,$r,rate]}" = "$m" ] && break; done
        read -r s_st s_rt s_mn s_ot s_jk <<<"${C[rtpmic,$tr,$n,$r,split]}"
        split_rows+="| ${tr^^} | $n | ${s_st} | ${s_rt} | ${s_mn} | ${s_ot} | $(calc '%.2f' "$m") | ${s_jk} | $(calc '%.2f' "${C[rtpmic,$tr,$n,$r,rate_all]}") |
"
    done
done
# rtpmic's marginal over gst-rtsp-server's, counting the clients' CPU too.
both_ratios=""
for n in "${CLIENT_COUNTS[@]}"; do
    [ "$n" = 1 ] && continue
    for tr in "${TRANSPORTS[@]}"; do
        a=$(marginal rtpmic "$tr" "$n" both)
        b=$(marginal gst "$tr" "$n" both)
        both_ratios+="${both_ratios:+, }${tr^^} $n clients $(calc '%.2f' "$a / $b") ($(calc '%.2f' "$a * 1000 / 50") vs $(calc '%.2f' "$b * 1000 / 50") µs per packet)"
    done
done
mem_rows=""
for tr in "${TRANSPORTS[@]}"; do
    for n in 1 "${CLIENT_COUNTS[-1]}"; do
        mem_rows+="| ${tr^^} | $n | $(mib "${M[$tr,$n,hwm]}") | ${M[$tr,$n,heap]} | ${M[$tr,$n,bin]} | ${M[$tr,$n,libs]} |
"
    done
done
individual=""
for srv in "${SERVERS[@]}"; do
    for tr in "${TRANSPORTS[@]}"; do
        for n in "${CLIENT_COUNTS[@]}"; do
            individual+="${individual:+; }${SNAME[$srv]} ${tr^^} $n:$(reps_of "$srv,$tr,$n" rate)"
        done
    done
done

# Targets.
T=""
trow() { T+="| $1 | $2 | $3 | $(verdict "$4") |
"; }
for n in "${CLIENT_COUNTS[@]}"; do
    [ "$n" = 1 ] && continue
    for tr in "${TRANSPORTS[@]}"; do
        a=$(marginal rtpmic "$tr" "$n")
        b=$(marginal gst "$tr" "$n")
        r=$(calc '%.3f' "$a / $b")
        trow "RTSP, ${tr^^}, $n clients: rtpmic's marginal CPU per client <= 0.25 x gst-rtsp-server's" "0.25" \
            "${r} ($(calc '%.3f' "$a") vs $(calc '%.3f' "$b") ms CPU/s per client)" "$b > 0 && $a <= 0.25 * $b"
    done
done
nmax=${CLIENT_COUNTS[-1]}
for tr in "${TRANSPORTS[@]}"; do
    h=${M[$tr,$nmax,hwm]}
    trow "RTSP, ${tr^^}, $nmax clients: rtpmic's peak RSS <= 8 MiB (no jack, as section 1)" "8 MiB" \
        "$(mib "$h") MiB (on jack, less its mappings: $(mib "$(med "rtpmic,$tr,$nmax" hwm_real)") MiB)" "$h <= 8 * 1024"
done
for tr in "${TRANSPORTS[@]}"; do
    mx=$(first_q rtpmic "$tr" 1)
    trow "RTSP, ${tr^^}: first RTP packet within one frame (20 ms) of PLAY, every session" "20 ms" \
        "max ${mx} ms, p99 $(first_q rtpmic "$tr" 0.99), p50 $(first_q rtpmic "$tr" 0.5) over $(first_n rtpmic "$tr") sessions; the packet RTP-Info named first in $(rtpinfo_sum rtpmic "$tr" rtpinfo_next)" "$mx <= 20"
done
# Churn: p99.9 is a histogram bucket; "unchanged within run-to-run noise" = no churn run's
# p99.9 bucket above the highest bucket of the runs without churn.
quiet_max=0
churn_max=0
for rep in $(seq "$CHURN_REPS"); do
    q=$(lat_us "${H[quiet,$rep,latency_p999]}")
    c=$(lat_us "${H[churn,$rep,latency_p999]}")
    [ "$q" -gt "$quiet_max" ] && quiet_max=$q
    [ "$c" -gt "$churn_max" ] && churn_max=$c
done
trow "Push path's added latency p99.9 unchanged while RTSP clients churn (${CHURN_RATE}/s)" "no churn run above the highest no-churn bucket" \
    "$(lt "<${churn_max}us") with churn, $(lt "<${quiet_max}us") without (highest of ${CHURN_REPS} runs each)" "$churn_max <= $quiet_max"
printf '%s' "$T" >"$TARGETS_OUT"

churn_rows=""
for rep in $(seq "$CHURN_REPS"); do
    for mode in quiet churn; do
        k=$mode,$rep
        label=$([ "$mode" = quiet ] && echo "no clients" || echo "${CHURN_RATE}/s join + leave")
        churn_rows+="| $rep | ${label} | ${H[$k,sessions]} | $(lt "${H[$k,latency_p50]}") | $(lt "${H[$k,latency_p99]}") | $(lt "${H[$k,latency_p999]}") | ${H[$k,latency_max_us]} | ${H[$k,latency_max_encoded_us]} | ${H[$k,packets]} / ${H[$k,rx_packets]} | ${H[$k,packet_drops]} / ${H[$k,rx_seq_gaps]} | ${H[$k,rx_dev_p99_us]} | ${H[$k,first_max]:+$(calc '%.1f' "${H[$k,first_max]} / 1000")} |
"
    done
done
gst_v=$(gst-launch-1.0 --version 2>/dev/null | sed -n 's/^GStreamer //p' | head -n 1)
gstrtsp_v=$(dpkg-query -W -f='${Version}' libgstrtspserver-1.0-0 2>/dev/null || echo "?")
py_v=$(/usr/bin/python3 --version 2>&1 | sed 's/Python //')

cat >"$SECTION_OUT" <<EOF
Generated by \`benches/rtsp_bench.sh\` (run by \`make bench\`) in ${T_TOTAL} s; load average
before / after the serving runs / after the churn runs: ${LOAD_BEFORE} / ${LOAD_MID} / ${LOAD_AFTER}.
${QUIET_NOTE}
${QUICK:+**Quick run (BENCH_QUICK): one repetition, short windows. Not for comparison.**
}
**Servers.** rtpmic (\`RTPMIC_DEVICE=simfile RTPMIC_RTSP_LISTEN=127.0.0.1:PORT
RTPMIC_RTSP_MAX_CLIENTS=${MAX_CLIENTS}\`, Opus settings as in section 1, \`RTPMIC_OPUS_LOSS_PERCENT=0\`
included, SCHED_RR 50 and \`mlockall\` as deployed, no push destination) and gst-rtsp-server
${gstrtsp_v} (GStreamer ${gst_v}) through \`benches/gst_rtsp_server.py\` (Python ${py_v} and
GObject introspection around libgstrtspserver; one shared media, so one capture and one encode
for all clients as in rtpmic; normal priority):
\`alsasrc device=simfile latency-time=20000 ! audio/x-raw,format=S16LE,rate=48000,channels=1 !
audioconvert ! audioresample ! … ! opusenc frame-size=20 bitrate=32000 complexity=10
audio-type=voice bitrate-type=constrained-vbr bandwidth=auto ! rtpopuspay\`. Both read the
same speech-like file through the same jackd-paced ALSA PCM (jackd dummy driver, 5 ms periods,
SCHED_FIFO 70, as section 3). Python only sets the server up: no Python code runs per packet
or per request, but the interpreter's ~10 MiB count in gst-rtsp-server's RSS.

**Clients.** \`benches/rtsp_load.c\`: one process opens every session (its own TCP connection
each: OPTIONS, DESCRIBE, SETUP, PLAY; UDP to an even/odd port pair, or TCP interleaved),
checks every packet's sequence number, and reads each session's sockets every 20 ms once its
first packet has come (at most 16 sessions set up at once). It sends no RTCP; sessions last
less than half the 60 s session timeout, so no keepalive is due. On loopback the kernel runs
the receiving side of each datagram (UDP) or segment (TCP) in the sender's context, so ~1-2 µs
of each delivered packet is charged to the server whichever server it is.

**Measured.** A fresh server for each cell; the clients start ${LEAD_S} s after it listens, and
the window starts ${WSTART_S} s after they did (at least ${SETTLE_S} s after every session has its first
packet), so that all cells of a server measure the same stretch of the input (the Opus encode's
cost follows the signal). In the window: the server's CPU over ${WINDOW_S} s (user + system of its
threads, from \`/proc/PID/task/*/schedstat\`), the packets the clients received in that window, VmHWM at its end, and the
server's resident memory by mapping. "Real-board RSS" is VmHWM less the simulated board's
share (jackd's shared memory, ~103 MiB, and libjack, libdb, libstdc++ and the jack plugin module,
mapped only because the PCM is jack's). ${REPS} repetitions of every cell, servers alternating
(the first of the two alternates by repetition); medians. **Marginal CPU per client** =
(CPU at N clients − CPU at 1 client) / (N − 1), per repetition, median; "per packet" divides
it by the 50 packets a second a client gets.

**Server CPU** leaves out one thread: the ALSA jack plugin's process thread, which the
simulated PCM starts inside each server (SCHED_FIFO 65, the only FIFO thread either server
has: rtpmic's stream thread is SCHED_RR, gst-rtsp-server's threads are normal). It is the
simulated device, absent on a real board, and the noisiest figure here (4-16 ms CPU/s from
one run to the next on this VM, whatever the clients), so it would drown the per-client cost;
the whole-process figure is shown next to it.

| Transport | Clients | Server | server ms CPU/s | % of a core | whole process with the jack thread, ms CPU/s | packets/s delivered | µs CPU per delivered packet | marginal ms CPU/s per client | marginal µs per packet | clients' ms CPU/s (rtsp_load) | marginal µs per packet, server + clients | peak RSS (VmHWM) MiB | real-board RSS MiB | PLAY → first packet p50 ms | max ms | lost |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
${rows}
Individual runs, server ms CPU/s: ${individual}.

**Where the kernel charges loopback work.** On loopback the receiving side of a segment or
datagram runs in whichever context the kernel processes it: mostly the sender's (rtpmic's
\`rtpmic-rtsp\` profile shows \`tcp_v4_rcv\`, \`tcp_rcv_established\`, \`sock_def_readable\`), but
for gst-rtsp-server's TCP sends much of it lands in the client process (see the clients' CPU
column). Counting the clients' CPU too, rtpmic's marginal cost per client over
gst-rtsp-server's is: ${both_ratios}.

rtpmic's memory on a board without jack (\`RTPMIC_RTSP_MAX_CLIENTS=${MAX_CLIENTS}\`, SCHED_RR 50 and
\`mlockall\` as deployed): the same server on board/sim's unpaced \`simfast\` PCM (no jack, the way
section 1 measures RSS), VmHWM 1 s after every session has its first packet, and what is
resident by mapping then (KiB):

| Transport | Clients | peak RSS (VmHWM) MiB | anonymous (heap, stacks, rings) | rtpmic binary | libraries |
|---|---|---|---|---|---|
${mem_rows}
PLAY → first RTP packet, every session of every cell (ms; from PLAY sent to the packet read by
the client, so it includes the request's trip and the server's handling; the stream's next
frame is up to 20 ms away, and then takes its encode and send, ~0.5 ms). "RTP-Info" says which
packet came first against the \`seq\` PLAY's RTP-Info named (the next packet the stream would
make): that one / a later one (frames skipped) / an earlier one / no seq given:

| Server | Transport | sessions | p50 | p90 | p99 | max | RTP-Info: named / later / earlier / none |
|---|---|---|---|---|---|---|---|
${first_rows}
rtpmic by thread (ms CPU/s, the median repetition; "stream" = \`rtpmic-capture\`, which reads,
encodes and sends to every client, UDP and TCP alike: for TCP clients it frames each packet
into the client's ring; "rtsp" = \`rtpmic-rtsp\`, which handles requests and writes the TCP
clients' rings to their sockets; "helpers" = \`rtpmic-rtcp\`, \`rtpmic-resolve\` and libjack's idle
helper threads; "jack" = the jack plugin's SCHED_FIFO process thread, left out of "server"):

| Transport | Clients | stream | rtsp | main | helpers | server | jack | whole process |
|---|---|---|---|---|---|---|---|---|
${split_rows}
**The push path while clients churn.** rtpmic with \`RTPMIC_DEST=127.0.0.1:PORT\` (benches/jitter_rx.c,
as section 3) and the RTSP server on, ${CHURN_S} s: without RTSP clients, then with clients
joining and leaving at ${CHURN_RATE} per second (two rtsp_load processes with \`--churn $(calc '%g' "$CHURN_RATE / 2")\`, one
over UDP and one over TCP, 4 sessions of each playing at any time: every 0.2 s each tears its
oldest session down and opens a new one). rtpmic's added latency (capture \`readi\` returned →
datagram accepted by the kernel, every packet; quantiles are the upper bounds of its histogram's
buckets, the maximum exact) from its final stats line; ${CHURN_REPS} runs of each, alternating:

| Run | RTSP clients | sessions | p50 | p99 | p99.9 | max µs | max: read → encoded µs | packets sent / received by the push receiver | packet drops / receiver gaps | push interval dev p99 µs | churn: PLAY → first max ms |
|---|---|---|---|---|---|---|---|---|---|---|---|
${churn_rows}
EOF
if [ -f "$ROOT/benches/rtsp_notes.md" ]; then
    { echo; cat "$ROOT/benches/rtsp_notes.md"; } >>"$SECTION_OUT"
fi
log "wrote $SECTION_OUT and $TARGETS_OUT (${T_TOTAL} s)"
