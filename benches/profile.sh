#!/usr/bin/env bash
# benches/profile.sh: the numbers behind "Where the time goes" in docs/PERFORMANCE.md
# (benches/where_the_time_goes.md). Not part of `make bench`; takes ~3 minutes. Needs
# target/release/rtpmic and valgrind (callgrind).
#
#   1. Unpaced (simfast, --no-drop): CPU per frame of each rtpmic thread (exact, from
#      /proc/PID/task/*/schedstat sampled every 10 ms), context switches per frame (from
#      /proc/PID/task/*/status), for Opus 20 ms and PCMU 20 ms; the bare loops for reference.
#   2. User-space instructions per frame by library (valgrind --tool=callgrind), Opus 20 s:
#      rtpmic (RTPMIC_SENDER=epoll: valgrind 3.19 does not know io_uring) vs bare_opus.
#   3. Resident memory by mapping, unpaced Opus, with mlockall (RTPMIC_RT_PRIORITY=50) and
#      without (0).
#   4. Start-up, exec to first packet on the paced board, 2.5 ms frames (so the first packet
#      waits for one 5 ms device period only): rtpmic with and without mlockall, bare loop.
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RTPMIC=$ROOT/target/release/rtpmic
[ -x "$RTPMIC" ] || { echo "build first: cargo build --release --bins --examples" >&2; exit 1; }
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^RTPMIC_' || true)
unset SIM_INFILE JACK_DEFAULT_SERVER
export ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf:$ROOT/board/sim/asound.conf
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rtpmic-profile.XXXXXX")
RX_PID="" JACKD_PID=""
cleanup() {
    [ -n "$RX_PID" ] && kill "$RX_PID" 2>/dev/null
    if [ -n "$JACKD_PID" ]; then kill -TERM "$JACKD_PID" 2>/dev/null; wait "$JACKD_PID" 2>/dev/null; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

python3 "$ROOT/benches/gen_speech.py" 48000 60 "$TMP/s48.raw"
python3 "$ROOT/benches/gen_speech.py" 48000 20 "$TMP/s48_20.raw"
python3 "$ROOT/benches/gen_speech.py" 8000 3000 "$TMP/s8.raw"
# shellcheck disable=SC2046
cc -O2 "$ROOT/benches/bare_opus.c" $(pkg-config --cflags --libs opus alsa) -o "$TMP/bare_opus"
cc -O2 "$ROOT/benches/jitter_rx.c" -o "$TMP/jitter_rx" -lm
"$TMP/jitter_rx" "$TMP/port" >/dev/null &
RX_PID=$!
for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.02; done
PORT=$(cat "$TMP/port")
# Opus defaults are bare_opus's settings (32 kb/s, complexity 10, VOIP) except the expected
# loss: rtpmic's auto starts at 5 %, bare_opus tells libopus 0 %. Same bitstream needs 0 here.
RT=(RTPMIC_DEST=127.0.0.1:$PORT RTPMIC_RT_PRIORITY=50 RTPMIC_STATS_INTERVAL_S=0 RTPMIC_DEVICE=simfast
    RTPMIC_OPUS_LOSS_PERCENT=0)

# per_thread FRAMES CMD...: runs CMD, prints per thread name: CPU µs per frame, voluntary
# and involuntary switches per frame (last sample, every 10 ms, before the process exits).
per_thread() {
    local frames=$1 pid t c ns k x vol inv
    shift
    "$@" 2>/dev/null &
    pid=$!
    : >"$TMP/threads"
    # The sampler runs at SCHED_FIFO 90: rtpmic's unpaced SCHED_RR 50 threads can keep both
    # cores busy and would starve a normal-priority loop.
    (
        chrt -f -p 90 "$BASHPID" >/dev/null 2>&1 || true
        while kill -0 "$pid" 2>/dev/null; do
            for t in /proc/"$pid"/task/*; do
                { read -r c <"$t/comm" && read -r ns _ <"$t/schedstat" && while read -r k x _; do
                    case $k in voluntary_ctxt_switches:) vol=$x ;; nonvoluntary_ctxt_switches:) inv=$x ;; esac
                done <"$t/status" && echo "${t##*/} $c $ns $vol $inv"; } 2>/dev/null || true
            done >>"$TMP/threads"
            sleep 0.01
        done
    )
    wait "$pid" || true
    awk -v f="$frames" 'NF == 5 && $3 >= ns[$1] { ns[$1] = $3; c[$1] = $2; v[$1] = $4; iv[$1] = $5 }
        END {
            for (t in ns) { n = c[t]; if (n ~ /^rtpmic-capture/ && seen[n]++) n = "jack/alsa helper"; s[n] += ns[t]; sv[n] += v[t]; si[n] += iv[t] }
            for (n in s) printf "  %-18s %8.2f us/frame  %5.2f vol + %5.2f invol switches/frame\n", n, s[n] / 1000 / f, sv[n] / f, si[n] / f
        }' "$TMP/threads" | sort
}

echo "== 1. per-thread CPU per frame, unpaced"
echo "-- rtpmic Opus 20 ms, 60 s (3000 frames)"
per_thread 3000 env SIM_INFILE="$TMP/s48.raw" "${RT[@]}" RTPMIC_CODEC=opus RTPMIC_FRAME_MS=20 "$RTPMIC" run --seconds 60 --no-drop
echo "-- bare_opus encode + sendto, same file"
per_thread 3000 "$TMP/bare_opus" "$TMP/s48.raw" --send 127.0.0.1 "$PORT"
echo "-- bare_opus encode only"
per_thread 3000 "$TMP/bare_opus" "$TMP/s48.raw"
echo "-- rtpmic PCMU 20 ms, 3000 s (150000 frames)"
per_thread 150000 env SIM_INFILE="$TMP/s8.raw" "${RT[@]}" RTPMIC_CODEC=pcmu RTPMIC_RATE=8000 RTPMIC_FRAME_MS=20 "$RTPMIC" run --seconds 3000 --no-drop
echo "-- bare_opus PCMU through simfast"
per_thread 150000 env SIM_INFILE="$TMP/s8.raw" "$TMP/bare_opus" --alsa simfast --seconds 3000 --codec pcmu --send 127.0.0.1 "$PORT"
echo "-- bare_opus PCMU from the file (fread)"
per_thread 150000 "$TMP/bare_opus" "$TMP/s8.raw" --codec pcmu --send 127.0.0.1 "$PORT"

if command -v valgrind >/dev/null; then
    echo
    echo "== 2. user-space instructions per frame by object (callgrind), Opus 20 ms, 20 s"
    env SIM_INFILE="$TMP/s48_20.raw" "${RT[@]}" RTPMIC_RT_PRIORITY=0 RTPMIC_SENDER=epoll RTPMIC_CODEC=opus RTPMIC_FRAME_MS=20 \
        valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.rtpmic" "$RTPMIC" run --seconds 20 --no-drop \
        2>"$TMP/cg.rtpmic.err" || true
    frames=$(sed -n 's/.*INFO stopped: .* frames=\([0-9]*\) .*/\1/p' "$TMP/cg.rtpmic.err")
    valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.bare" "$TMP/bare_opus" "$TMP/s48_20.raw" \
        --send 127.0.0.1 "$PORT" >/dev/null 2>&1
    for f in "rtpmic $frames" "bare 1000"; do
        read -r name n <<<"$f"
        echo "-- $name ($n frames)"
        callgrind_annotate --threshold=100 --auto=no "$TMP/cg.$name" 2>/dev/null | python3 -c '
import re, sys, collections
n = int(sys.argv[1]); s = collections.Counter(); total = 0
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)$", line)
    if not m: continue
    v = int(m.group(1).replace(",", "")); rest = m.group(2)
    if "PROGRAM TOTALS" in rest: total = v; continue
    o = re.search(r"\[([^\]]*)\]\s*$", rest)
    s[o.group(1).split("/")[-1] if o else "(no object)"] += v
print(f"  {total / n:12,.0f} instructions/frame in all")
for obj, v in s.most_common(8): print(f"  {v / n:12,.0f} {obj}")
' "$n"
    done
fi

echo
echo "== 3. resident memory by mapping, unpaced Opus, 3 s in (KiB)"
for rt in 50 0; do
    env SIM_INFILE="$TMP/s48.raw" "${RT[@]}" RTPMIC_RT_PRIORITY=$rt RTPMIC_CODEC=opus RTPMIC_FRAME_MS=20 \
        "$RTPMIC" run --seconds 60 --no-drop 2>/dev/null &
    pid=$!
    sleep 0.5
    echo "-- RTPMIC_RT_PRIORITY=$rt ($([ "$rt" = 0 ] && echo "no mlockall" || echo "mlockall"))"
    awk '/^[0-9a-f]+-[0-9a-f]+ / { n = ($6 == "" ? "[anon]" : $6); sub(".*/", "", n); next }
        /^Rss:/ { r[n] += $2; t += $2 } END { for (k in r) if (r[k] >= 64) printf "  %6d %s\n", r[k], k; printf "  %6d total\n", t }' \
        "/proc/$pid/smaps" | sort -nr
    wait "$pid" || true
done

echo
echo "== 4. start-up, exec to first packet, paced board, 2.5 ms frames (ms, 8 runs each)"
export JACK_DEFAULT_SERVER=rtpmic-profile-$$
JACK_NO_AUDIO_RESERVATION=1 jackd -n "$JACK_DEFAULT_SERVER" -R -P 70 -d dummy -r 48000 -p 240 -C 1 -P 1 >"$TMP/jackd.log" 2>&1 &
JACKD_PID=$!
jack_wait -s "$JACK_DEFAULT_SERVER" -w -t 10 >/dev/null 2>&1
sleep 0.5
export SIM_INFILE=$TMP/s48.raw
for who in rtpmic-mlockall rtpmic-no-mlockall bare; do
    vals=""
    for _ in $(seq 8); do
        case $who in
        rtpmic-mlockall) cmd=(env RTPMIC_DEST=127.0.0.1:{PORT} RTPMIC_RT_PRIORITY=50 RTPMIC_DEVICE=simfile RTPMIC_FRAME_MS=2.5 "$RTPMIC" run) ;;
        rtpmic-no-mlockall) cmd=(env RTPMIC_DEST=127.0.0.1:{PORT} RTPMIC_RT_PRIORITY=0 RTPMIC_DEVICE=simfile RTPMIC_FRAME_MS=2.5 "$RTPMIC" run) ;;
        bare) cmd=("$TMP/bare_opus" --alsa simfile --seconds 100 --frame-ms 2.5 --send 127.0.0.1 {PORT}) ;;
        esac
        v=$("$TMP/jitter_rx" "$TMP/sport" --first-packet "${cmd[@]}" 2>/dev/null | sed -n 's/startup_us=//p')
        vals="$vals $((v / 1000))"
    done
    echo "  $who: $(echo "$vals" | tr ' ' '\n' | grep . | sort -n | tr '\n' ' ')"
done
