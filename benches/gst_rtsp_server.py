#!/usr/bin/python3
"""A reference RTSP server: gst-rtsp-server (GStreamer 1.22, Debian bookworm) serving one audio
stream, to test `rtpmic probe rtsp://…` against (tests/probe_rtsp.rs) and to compare rtpmic's
own server with (benchmarks).

Run with the system Python (Debian packages gir1.2-gst-rtsp-server-1.0, python3-gi,
gstreamer1.0-plugins-base and -good):

    /usr/bin/python3 benches/gst_rtsp_server.py --port 8554 --path /test --codec opus
    rtpmic probe rtsp://127.0.0.1:8554/test

The stream is a sine (audiotestsrc: --freq Hz at --volume, peak amplitude as a fraction of
full scale, so its level is 20·log10(volume) − 3.01 dBFS), a raw file (--input FILE: S16LE
mono at --rate Hz, played once in real time, then the stream ends) or an ALSA capture device
(--alsa DEVICE: alsasrc, a live source with 20 ms periods, e.g. board/sim's `simfile`, so the
server gets the same paced input as rtpmic in benches/rtsp_bench.sh). Opus at 48 kHz, PCMU
at 8 kHz, both in 20 ms packets. The media is shared: every client gets the same stream.

* Opus settings: --bitrate (default 64000); --complexity, --audio-type, --bitrate-type and
  --bandwidth set opusenc's properties of those names only when given (opusenc's defaults
  otherwise: 10, generic, cbr, fullband). benches/rtsp_bench.sh runs it as rtpmic is
  benchmarked: --bitrate 32000 --complexity 10 --audio-type voice --bitrate-type
  constrained-vbr --bandwidth auto.

* --user/--password require credentials: Digest (gst-rtsp-server 1.22 offers MD5 without
  qop, RFC 2069), or Basic with --auth basic.
* --srtp offers RTP/SAVP only (keys by MIKEY in the SDP's a=key-mgmt, no a=crypto).
* --protocols limits the transports offered (a SETUP asking for another gets 461).
* --session-timeout sets the `Session: …;timeout=` announced; UDP sessions silent that long
  (and a few seconds more) are expired, the pool being cleaned every second. (TCP sessions
  live as long as their connection, whatever the timeout.)
* --log-requests prints one line per request handled ("request GET_PARAMETER").

Prints "listening on PORT" once the server is attached; SIGTERM or SIGINT stop it.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def launch_line(a):
    """The factory's pipeline: a source, mono S16 at the codec's rate, encoder, payloader pay0."""
    rate = 48000 if a.codec == "opus" else 8000
    if a.alsa:
        # alsasrc's period is the frame (latency-time, µs): one buffer per 20 ms frame.
        # The caps right after it: the device is opened S16LE mono at --rate (board/sim's file
        # PCM reads its raw file in whatever format the client opens it with).
        src = (
            f'alsasrc device="{a.alsa}" latency-time=20000 '
            f"! audio/x-raw,format=S16LE,rate={a.rate},channels=1"
        )
    elif a.input:
        src = (
            f'filesrc location="{a.input}" ! rawaudioparse use-sink-caps=false format=pcm '
            f"pcm-format=s16le sample-rate={a.rate} num-channels=1 ! clocksync"
        )
    else:
        # 20 ms buffers at the source's rate; is-live paces it by the clock.
        src = (
            f"audiotestsrc is-live=true wave=sine freq={a.freq} volume={a.volume} "
            f"samplesperbuffer={a.rate // 50}"
        )
    caps = f"audio/x-raw,format=S16LE,rate={rate},channels=1"
    if a.codec == "opus":
        props = f"frame-size=20 bitrate={a.bitrate}"
        for name in ["complexity", "audio_type", "bitrate_type", "bandwidth"]:
            value = getattr(a, name)
            if value is not None:
                props += f" {name.replace('_', '-')}={value}"
        enc = f"opusenc {props} ! rtpopuspay name=pay0 pt=96"
    else:
        twenty_ms = 20_000_000
        enc = f"mulawenc ! rtppcmupay name=pay0 pt=0 min-ptime={twenty_ms} max-ptime={twenty_ms}"
    return f"( {src} ! audioconvert ! audioresample ! {caps} ! {enc} )"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--address", default="127.0.0.1", help="where to listen (0.0.0.0: everywhere)")
    p.add_argument("--port", type=int, default=8554, help="0: one the kernel picks (printed)")
    p.add_argument("--path", default="/test")
    p.add_argument("--codec", choices=["opus", "pcmu"], default="opus")
    p.add_argument("--input", help="raw S16LE mono file instead of the tone")
    p.add_argument("--alsa", metavar="DEVICE", help="capture from this ALSA device instead of the tone")
    p.add_argument("--rate", type=int, default=48000, help="rate of the tone's source, of --input or of --alsa")
    p.add_argument("--bitrate", type=int, default=64000, help="Opus bit rate")
    p.add_argument("--complexity", type=int, choices=range(11), metavar="0..10")
    p.add_argument("--audio-type", choices=["generic", "voice", "restricted-lowdelay"])
    p.add_argument("--bitrate-type", choices=["cbr", "vbr", "constrained-vbr"])
    p.add_argument("--bandwidth", choices=["auto", "narrowband", "mediumband", "wideband", "superwideband", "fullband"])
    p.add_argument("--freq", type=float, default=440.0)
    p.add_argument("--volume", type=float, default=0.25)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--auth", choices=["digest", "basic"], default="digest")
    p.add_argument("--protocols", choices=["all", "tcp", "udp"], default="all")
    p.add_argument("--srtp", action="store_true", help="offer RTP/SAVP only (keys by MIKEY in the SDP)")
    p.add_argument("--session-timeout", type=int, help="seconds (gst-rtsp-server's default: 60)")
    p.add_argument("--log-requests", action="store_true")
    a = p.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(a.address)
    server.set_service(str(a.port))

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(a))
    factory.set_shared(True)
    if a.srtp:
        factory.set_profiles(GstRtsp.RTSPProfile.SAVP)
    if a.protocols != "all":
        lower = GstRtsp.RTSPLowerTrans.TCP if a.protocols == "tcp" else GstRtsp.RTSPLowerTrans.UDP
        factory.set_protocols(lower)

    if a.user is not None:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        if a.auth == "digest":
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            auth.add_digest(a.user, a.password or "", token)
        else:
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password or ""), token)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_permission_for_role("user", "media.factory.access", True)
        perms.add_permission_for_role("user", "media.factory.construct", True)
        factory.set_permissions(perms)

    server.get_mount_points().add_factory(a.path, factory)

    def on_client(_server, client):
        if a.session_timeout:
            client.connect("new-session", lambda _c, session: session.set_timeout(a.session_timeout))
        if a.log_requests:
            for method in ["options", "describe", "setup", "play", "get-parameter", "teardown"]:
                name = method.upper().replace("-", "_")
                client.connect(f"{method}-request", lambda _c, _ctx, n=name: print(f"request {n}", flush=True))

    server.connect("client-connected", on_client)
    if a.session_timeout:
        GLib.timeout_add_seconds(1, lambda: server.get_session_pool().cleanup() >= 0)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on port {a.port}")
    print(f"listening on {server.get_bound_port()}", flush=True)

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    loop.run()


if __name__ == "__main__":
    main()
