#!/bin/sh
# `make run` without a sound card: start the simulated board, feed it a test signal through a
# FIFO, and stream it with rtpmic to 127.0.0.1:5004 until Ctrl-C.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RTPMIC=${RTPMIC:-$ROOT/target/release/rtpmic}
TONE=${TONE:-$ROOT/target/release/examples/sim_tone}
ENV_FILE=${ENV_FILE:-$HERE/rtpmic.env}

"$HERE/sim.sh" start
eval "$("$HERE/sim.sh" env)"
WORK=$(mktemp -d)
export SIM_INFILE="$WORK/signal.fifo"
mkfifo "$SIM_INFILE"
"$TONE" "$("$RTPMIC" check-config --env-file "$ENV_FILE" | sed -n 's/^RTPMIC_RATE=//p')" >"$SIM_INFILE" &
TONE_PID=$!
cleanup() {
    kill "$TONE_PID" 2>/dev/null || true
    rm -rf "$WORK"
    "$HERE/sim.sh" stop
}
trap cleanup EXIT INT TERM

SDP=${TMPDIR:-/tmp}/rtpmic.sdp
"$RTPMIC" sdp --env-file "$ENV_FILE" >"$SDP"
RTSP=$("$RTPMIC" check-config --env-file "$ENV_FILE" | sed -n 's/^RTPMIC_RTSP_LISTEN=//p')
RTSP_PATH=$("$RTPMIC" check-config --env-file "$ENV_FILE" | sed -n 's/^RTPMIC_RTSP_PATH=//p')
cat <<MSG
rtpmic streams board/sim's test signal (1 s two-tone, 0.5 s pause) to 127.0.0.1:5004.
Listen in another terminal with:
    ffplay -nodisp -protocol_whitelist file,udp,rtp -i $SDP
MSG
if [ -n "$RTSP" ]; then
    # A wildcard listen address: players on this machine use 127.0.0.1.
    URL="rtsp://$(echo "$RTSP" | sed 's/^0\.0\.0\.0:/127.0.0.1:/; s/^\[::\]:/127.0.0.1:/')$RTSP_PATH"
    cat <<MSG
Or pull it over RTSP, as a player or an NVR would:
    ffplay -nodisp $URL        (or VLC: vlc $URL)
    target/release/rtpmic probe $URL
MSG
fi
echo "Stop with Ctrl-C."
"$RTPMIC" run --env-file "$ENV_FILE"
