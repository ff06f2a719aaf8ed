#!/bin/sh
# The simulated board (DESIGN §5): a jackd dummy server that paces the ALSA PCMs of
# board/sim/asound.conf in real time. Usage: sim.sh start|stop|status|env
set -eu
SERVER=${JACK_DEFAULT_SERVER:-rtpmic-sim}
STATE=${XDG_RUNTIME_DIR:-/tmp}
PIDFILE="$STATE/$SERVER.pid"
HERE=$(cd "$(dirname "$0")" && pwd)

case "${1:-}" in
start)
    # jack_wait -c exits 0 either way; its output says "running" or "not running".
    if [ "$(jack_wait -s "$SERVER" -c 2>/dev/null)" = running ]; then
        echo "sim: jackd $SERVER already running"
        exit 0
    fi
    # 5 ms jackd periods: no longer than rtpmic's shortest useful period.
    JACK_NO_AUDIO_RESERVATION=1 nohup jackd -n "$SERVER" -d dummy -r 48000 -p 240 -C 1 -P 1 \
        >"$STATE/$SERVER.log" 2>&1 &
    echo $! >"$PIDFILE"
    jack_wait -s "$SERVER" -w -t 10 >/dev/null 2>&1 || { echo "sim: jackd did not start, see $STATE/$SERVER.log" >&2; exit 1; }
    echo "sim: jackd $SERVER started (pid $(cat "$PIDFILE"))"
    ;;
stop)
    if [ -f "$PIDFILE" ]; then
        # SIGTERM, never SIGKILL: a killed jackd keeps its slot in jack's server registry.
        kill -TERM "$(cat "$PIDFILE")" 2>/dev/null || true
        rm -f "$PIDFILE"
        echo "sim: jackd $SERVER stopped"
    fi
    ;;
status)
    [ "$(jack_wait -s "$SERVER" -c 2>/dev/null)" = running ] && echo running || { echo "not running"; exit 1; }
    ;;
env)
    # eval "$(board/sim/sim.sh env)" points ALSA clients at the simulated board.
    echo "export JACK_DEFAULT_SERVER=$SERVER"
    echo "export ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf:$HERE/asound.conf"
    ;;
*)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
