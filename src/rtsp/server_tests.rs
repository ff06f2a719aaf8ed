//! The server in simulated time, driven with requests written as real clients write them
//! (captured from ffmpeg 5.1 and GStreamer 1.22 `rtspsrc` against a scripted server).

use std::net::SocketAddr;

use rtsp_types::{headers, Message, Response};

use super::*;
use crate::rtsp::auth::tests::{authorization, authorization_2069, nonce_of};
use crate::rtsp::{AuthConfig, AuthMode, MulticastGroup, Password};

const S: u64 = 1_000_000_000;
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=rtpmic\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
                   a=control:*\r\nm=audio 0 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\na=control:trackID=0\r\n";

struct TestMedia {
    multicast: Option<MulticastGroup>,
    srtp: bool,
    position: (u16, u32),
}

impl Media for TestMedia {
    fn sdp(&self) -> &str {
        SDP
    }
    fn server_ports(&self) -> (u16, u16) {
        (6970, 6971)
    }
    fn ssrc(&self) -> u32 {
        0x1234_abcd
    }
    fn multicast(&self) -> Option<MulticastGroup> {
        self.multicast
    }
    fn srtp(&self) -> bool {
        self.srtp
    }
    fn play_position(&mut self) -> (u16, u32) {
        self.position
    }
}

/// A server, its media, the simulated clock, and everything it said.
struct Harness {
    srv: Server,
    media: TestMedia,
    now: u64,
    events: Vec<Event>,
    /// Every byte of output, for the password check.
    all_output: Vec<u8>,
}

struct Reply {
    raw: String,
    msg: Response<Vec<u8>>,
}

impl Reply {
    fn status(&self) -> u16 {
        self.msg.status().into()
    }

    fn header(&self, name: &HeaderName) -> Option<&str> {
        self.msg.header(name).map(|v| v.as_str())
    }

    fn session(&self) -> String {
        let v = self.header(&headers::SESSION).expect("a Session header");
        v.split(';').next().unwrap().to_string()
    }
}

fn request(lines: &[&str]) -> String {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n\r\n");
    s
}

fn group() -> MulticastGroup {
    MulticastGroup {
        group: "239.7.7.7:5004".parse().unwrap(),
        ttl: 16,
    }
}

impl Harness {
    fn new(c: ServerConfig) -> Harness {
        Harness {
            srv: Server::new(c, [1; 32]).unwrap(),
            media: TestMedia {
                multicast: None,
                srtp: false,
                position: (4242, 987_654),
            },
            now: 1000 * S,
            events: Vec::new(),
            all_output: Vec::new(),
        }
    }

    fn default() -> Harness {
        Harness::new(ServerConfig::default())
    }

    fn with_auth(mode: AuthMode) -> Harness {
        let mut a = AuthConfig::new("user", Password::new("secret"));
        a.mode = mode;
        Harness::new(ServerConfig {
            auth: Some(a),
            ..ServerConfig::default()
        })
    }

    fn connect(&mut self, client: &str) -> ConnId {
        self.srv.accept(self.now, client.parse().unwrap()).expect("a slot")
    }

    fn collect(&mut self) {
        while let Some(e) = self.srv.poll_event() {
            self.events.push(e);
        }
    }

    /// Everything written to `conn` now.
    fn drain(&mut self, conn: ConnId) -> Vec<u8> {
        let out = self.srv.output(conn).to_vec();
        self.srv.consume_output(conn, out.len());
        self.all_output.extend_from_slice(&out);
        self.collect();
        out
    }

    fn send(&mut self, conn: ConnId, bytes: &[u8]) -> Vec<u8> {
        self.srv.handle_input(self.now, conn, bytes, &mut self.media);
        self.collect();
        self.drain(conn)
    }

    fn req(&mut self, conn: ConnId, text: &str) -> Reply {
        let out = self.send(conn, text.as_bytes());
        let replies = parse_all(&out);
        assert_eq!(
            replies.len(),
            1,
            "one reply to {text:?}, got {:?}",
            String::from_utf8_lossy(&out)
        );
        replies.into_iter().next().unwrap()
    }

    fn advance(&mut self, to: u64) {
        assert!(to >= self.now);
        self.now = to;
        self.srv.handle_timeout(self.now, &mut self.media);
        self.collect();
    }

    fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

fn parse_all(mut bytes: &[u8]) -> Vec<Reply> {
    let mut v = Vec::new();
    while !bytes.is_empty() {
        let (msg, n): (Message<Vec<u8>>, usize) = Message::parse(bytes).expect("a whole response");
        let Message::Response(msg) = msg else {
            panic!("not a response")
        };
        v.push(Reply {
            raw: String::from_utf8_lossy(&bytes[..n]).into_owned(),
            msg,
        });
        bytes = &bytes[n..];
    }
    v
}

fn started(events: &[Event]) -> Vec<&SessionInfo> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::SessionStarted(i) => Some(i),
            _ => None,
        })
        .collect()
}

#[test]
fn ffmpeg_over_udp() {
    let mut h = Harness::default();
    let c = h.connect("127.0.0.1:40000");
    let r = h.req(
        c,
        &request(&[
            "OPTIONS rtsp://127.0.0.1:8554/mic RTSP/1.0",
            "CSeq: 1",
            "User-Agent: Lavf59.27.100",
        ]),
    );
    assert_eq!(r.status(), 200);
    assert!(r.raw.starts_with("RTSP/1.0 200 OK\r\n"), "{}", r.raw);
    assert_eq!(r.header(&headers::CSEQ), Some("1"));
    assert_eq!(r.header(&headers::PUBLIC), Some(PUBLIC));

    let r = h.req(
        c,
        &request(&[
            "DESCRIBE rtsp://127.0.0.1:8554/mic RTSP/1.0",
            "Accept: application/sdp",
            "CSeq: 2",
            "User-Agent: Lavf59.27.100",
        ]),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(r.header(&headers::CONTENT_TYPE), Some("application/sdp"));
    assert_eq!(r.header(&headers::CONTENT_BASE), Some("rtsp://127.0.0.1:8554/mic/"));
    assert_eq!(r.msg.body().as_slice(), SDP.as_bytes());

    let r = h.req(
        c,
        &request(&[
            "SETUP rtsp://127.0.0.1:8554/mic/trackID=0 RTSP/1.0",
            "Transport: RTP/AVP/UDP;unicast;client_port=7102-7103",
            "CSeq: 3",
            "User-Agent: Lavf59.27.100",
        ]),
    );
    assert_eq!(r.status(), 200, "{}", r.raw);
    assert_eq!(
        r.header(&headers::TRANSPORT),
        Some("RTP/AVP;unicast;client_port=7102-7103;server_port=6970-6971;ssrc=1234ABCD")
    );
    let session = r.session();
    assert_eq!(session.len(), 16);
    assert_eq!(
        r.header(&headers::SESSION),
        Some(format!("{session};timeout=60").as_str())
    );
    assert!(h.take_events().is_empty(), "nothing is sent before PLAY");

    let r = h.req(
        c,
        &request(&[
            "PLAY rtsp://127.0.0.1:8554/mic/ RTSP/1.0",
            "Range: npt=0.000-",
            "CSeq: 4",
            "User-Agent: Lavf59.27.100",
            &format!("Session: {session}"),
        ]),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(r.header(&headers::RANGE), Some("npt=now-"));
    assert_eq!(
        r.header(&headers::RTP_INFO),
        Some("url=rtsp://127.0.0.1:8554/mic/trackID=0;seq=4242;rtptime=987654"),
        "the URL ffmpeg builds from Content-Base + control"
    );
    let events = h.take_events();
    let Event::AddPeer { peer, spec } = events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        spec,
        PeerSpec::udp(Some("127.0.0.1:7102".parse().unwrap()), true, false)
    );
    let info = started(&events)[0];
    assert_eq!(info.peer, peer);
    assert_eq!(info.client, "127.0.0.1:40000".parse::<SocketAddr>().unwrap());
    assert_eq!(info.session.to_string(), session);
    assert_eq!(info.user, None);
    assert_eq!(h.srv.counters().sessions_started, 1);

    let r = h.req(
        c,
        &request(&[
            "GET_PARAMETER rtsp://127.0.0.1:8554/mic/ RTSP/1.0",
            "CSeq: 5",
            "User-Agent: Lavf59.27.100",
            &format!("Session: {session}"),
        ]),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(r.session(), session);

    let r = h.req(
        c,
        &request(&[
            "TEARDOWN rtsp://127.0.0.1:8554/mic/ RTSP/1.0",
            "CSeq: 6",
            "User-Agent: Lavf59.27.100",
            &format!("Session: {session}"),
        ]),
    );
    assert_eq!(r.status(), 200);
    let events = h.take_events();
    assert_eq!(events[0], Event::RemovePeer { peer });
    assert!(matches!(
        events[1],
        Event::SessionEnded {
            why: EndReason::Teardown,
            ..
        }
    ));
    assert_eq!(h.srv.sessions(), 0);
}

/// GStreamer 1.22 rtspsrc falls back to TCP: its requests, then RTCP interleaved on channel 1
/// mixed with a keepalive, cut at every byte.
#[test]
fn gstreamer_over_tcp_with_interleaved_rtcp() {
    let mut h = Harness::default();
    let c = h.connect("[::ffff:10.0.0.9]:51000");
    let gst = |lines: &[&str]| {
        let mut l = lines.to_vec();
        l.push("Date: Sun, 06 Dec 2026 10:53:05 GMT");
        request(&l)
    };
    let r = h.req(
        c,
        &gst(&[
            "OPTIONS rtsp://board.local:8554/mic RTSP/1.0",
            "CSeq: 1",
            "User-Agent: GStreamer/1.22.0",
        ]),
    );
    assert_eq!(r.status(), 200);
    let r = h.req(
        c,
        &gst(&[
            "DESCRIBE rtsp://board.local:8554/mic RTSP/1.0",
            "CSeq: 2",
            "User-Agent: GStreamer/1.22.0",
            "Accept: application/sdp",
        ]),
    );
    assert_eq!(r.header(&headers::CONTENT_BASE), Some("rtsp://board.local:8554/mic/"));
    let r = h.req(
        c,
        &gst(&[
            "SETUP rtsp://board.local:8554/mic/trackID=0 RTSP/1.0",
            "CSeq: 3",
            "User-Agent: GStreamer/1.22.0",
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1",
        ]),
    );
    assert_eq!(
        r.header(&headers::TRANSPORT),
        Some("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=1234ABCD")
    );
    let session = r.session();
    let r = h.req(
        c,
        &gst(&[
            "PLAY rtsp://board.local:8554/mic/ RTSP/1.0",
            "CSeq: 4",
            "User-Agent: GStreamer/1.22.0",
            "Range: npt=0-",
            &format!("Session: {session}"),
        ]),
    );
    assert_eq!(r.status(), 200);
    let events = h.take_events();
    let Event::AddPeer { peer, spec } = events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        spec.rtp,
        Some(Route::Interleaved {
            conn: c.raw(),
            channel: 0
        })
    );
    assert_eq!(
        spec.rtcp,
        Some(Route::Interleaved {
            conn: c.raw(),
            channel: 1
        })
    );
    assert_eq!(
        started(&events)[0].transport,
        ClientTransport::Tcp {
            rtp_channel: 0,
            rtcp_channel: 1
        }
    );

    // A receiver report, a keepalive, another report, as one stream of bytes.
    let rr: &[u8] = &[
        0x81, 0xc9, 0, 7, 0xde, 0xad, 0xbe, 0xef, 0x12, 0x34, 0xab, 0xcd, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let mut stream = vec![b'$', 1, 0, rr.len() as u8];
    stream.extend_from_slice(rr);
    stream.extend_from_slice(
        gst(&[
            "GET_PARAMETER rtsp://board.local:8554/mic/ RTSP/1.0",
            "CSeq: 5",
            "User-Agent: GStreamer/1.22.0",
            &format!("Session: {session}"),
        ])
        .as_bytes(),
    );
    stream.extend_from_slice(&[b'$', 1, 0, rr.len() as u8]);
    stream.extend_from_slice(rr);
    for cut in [1, 2, 5, 23, 24, 100, stream.len() - 3] {
        let out_a = h.send(c, &stream[..cut]);
        let out_b = h.send(c, &stream[cut..]);
        let replies = parse_all(&[out_a, out_b].concat());
        assert_eq!(replies.len(), 1, "cut at {cut}");
        assert_eq!(replies[0].status(), 200);
        let data: Vec<_> = h
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Interleaved {
                    conn,
                    channel,
                    peer: p,
                    data,
                } => Some((conn, channel, p, data)),
                _ => None,
            })
            .collect();
        assert_eq!(data.len(), 2, "cut at {cut}");
        for (conn, channel, p, d) in data {
            assert_eq!((conn, channel, p, d.as_slice()), (c, 1, Some(peer), rr));
        }
    }
    // The connection ends: so does its session.
    h.srv.handle_close(h.now, c);
    h.collect();
    let events = h.take_events();
    assert_eq!(events[0], Event::RemovePeer { peer });
    assert!(matches!(
        events[1],
        Event::SessionEnded {
            why: EndReason::ConnectionClosed,
            ..
        }
    ));
    assert!(!events.iter().any(|e| matches!(e, Event::Close { .. })));
    assert_eq!(h.srv.connections(), 0);
}

/// GStreamer 1.22 rtspsrc over UDP with Digest, start to end: it answers challenges the
/// RFC 2069 way (no qop), on every request.
#[test]
fn gstreamer_over_udp_with_digest() {
    let mut h = Harness::with_auth(AuthMode::Digest);
    let c = h.connect("10.0.0.9:51000");
    let base = "rtsp://10.0.0.1:8554/mic";
    let gst = |lines: &[&str]| {
        let mut l = lines.to_vec();
        l.push("User-Agent: GStreamer/1.22.0");
        l.push("Date: Sun, 06 Dec 2026 10:53:00 GMT");
        request(&l)
    };
    assert_eq!(
        h.req(c, &gst(&[&format!("OPTIONS {base} RTSP/1.0"), "CSeq: 1"]))
            .status(),
        200
    );
    let r = h.req(
        c,
        &gst(&[
            &format!("DESCRIBE {base} RTSP/1.0"),
            "CSeq: 2",
            "Accept: application/sdp",
        ]),
    );
    assert_eq!(r.status(), 401);
    let nonce = nonce_of(r.raw.lines().find(|l| l.starts_with("WWW-Authenticate")).unwrap());
    let auth =
        |method: &str, uri: &str| format!("Authorization: {}", authorization_2069("secret", method, uri, &nonce));
    let r = h.req(
        c,
        &gst(&[
            &format!("DESCRIBE {base} RTSP/1.0"),
            "CSeq: 3",
            "Accept: application/sdp",
            &auth("DESCRIBE", base),
        ]),
    );
    assert_eq!(r.status(), 200);
    let track = format!("{base}/trackID=0");
    let r = h.req(
        c,
        &gst(&[
            &format!("SETUP {track} RTSP/1.0"),
            "CSeq: 4",
            "Transport: RTP/AVP;unicast;client_port=46694-46695",
            &auth("SETUP", &track),
        ]),
    );
    assert_eq!(r.status(), 200);
    let session = r.session();
    let aggregate = format!("{base}/");
    let on_session = |method: &str, cseq: u32, extra: &[&str]| {
        let mut l = vec![
            format!("{method} {aggregate} RTSP/1.0"),
            format!("CSeq: {cseq}"),
            format!("Session: {session}"),
            auth(method, &aggregate),
        ];
        l.extend(extra.iter().map(|s| s.to_string()));
        gst(&l.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let r = h.req(c, &on_session("PLAY", 5, &["Range: npt=0-"]));
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.header(&headers::RTP_INFO),
        Some("url=rtsp://10.0.0.1:8554/mic/trackID=0;seq=4242;rtptime=987654")
    );
    let events = h.take_events();
    let Event::AddPeer { peer, spec } = events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(spec.rtp, Some(Route::Udp("10.0.0.9:46694".parse().unwrap())));
    assert_eq!(spec.rtcp, Some(Route::Udp("10.0.0.9:46695".parse().unwrap())));
    assert_eq!(started(&events)[0].user.as_deref(), Some("user"));
    h.advance(h.now + 55 * S);
    assert_eq!(h.req(c, &on_session("GET_PARAMETER", 6, &[])).status(), 200);
    assert_eq!(h.req(c, &on_session("TEARDOWN", 7, &[])).status(), 200);
    let events = h.take_events();
    assert_eq!(events[0], Event::RemovePeer { peer });
    assert!(matches!(
        events[1],
        Event::SessionEnded {
            why: EndReason::Teardown,
            ..
        }
    ));
    let cn = h.srv.counters();
    assert_eq!((cn.auth_challenges, cn.auth_failures, cn.auth_stale), (1, 0, 0));
}

fn setup(h: &mut Harness, c: ConnId, transport: &str, cseq: u32) -> Reply {
    h.req(
        c,
        &request(&[
            "SETUP rtsp://10.0.0.1:8554/mic/trackID=0 RTSP/1.0",
            &format!("CSeq: {cseq}"),
            &format!("Transport: {transport}"),
        ]),
    )
}

fn play(h: &mut Harness, c: ConnId, session: &str, cseq: u32) -> Reply {
    h.req(
        c,
        &request(&[
            "PLAY rtsp://10.0.0.1:8554/mic/ RTSP/1.0",
            &format!("CSeq: {cseq}"),
            &format!("Session: {session}"),
        ]),
    )
}

fn teardown(h: &mut Harness, c: ConnId, session: &str, cseq: u32) -> Reply {
    h.req(
        c,
        &request(&[
            "TEARDOWN rtsp://10.0.0.1:8554/mic/ RTSP/1.0",
            &format!("CSeq: {cseq}"),
            &format!("Session: {session}"),
        ]),
    )
}

#[test]
fn multicast_clients_share_the_group_peer() {
    let mut h = Harness::default();
    let c1 = h.connect("10.0.0.2:1000");
    let r = setup(&mut h, c1, "RTP/AVP;multicast", 1);
    assert_eq!(r.status(), 461, "no group configured");
    h.media.multicast = Some(group());
    // GStreamer's alternatives, multicast first.
    let alts = "RTP/AVP;multicast,RTP/AVP;unicast;client_port=40000-40001,RTP/AVP/TCP;unicast;interleaved=0-1";
    let r1 = setup(&mut h, c1, alts, 2);
    assert_eq!(
        r1.header(&headers::TRANSPORT),
        Some("RTP/AVP;multicast;destination=239.7.7.7;port=5004-5005;ttl=16;ssrc=1234ABCD")
    );
    let c2 = h.connect("10.0.0.3:1000");
    let r2 = setup(&mut h, c2, "RTP/AVP;multicast", 1);
    assert_eq!(r2.status(), 200);
    play(&mut h, c1, &r1.session(), 3);
    play(&mut h, c2, &r2.session(), 2);
    let events = h.take_events();
    let adds: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::AddPeer { peer, spec } => Some((*peer, *spec)),
            _ => None,
        })
        .collect();
    assert_eq!(adds.len(), 1, "one group peer: {events:?}");
    let (group_peer, spec) = adds[0];
    assert_eq!(spec, PeerSpec::udp(Some(group().group), true, false));
    assert!(spec.multicast);
    assert_eq!(started(&events).len(), 2);
    assert!(started(&events).iter().all(|i| i.peer == group_peer));
    // RTCP from the group keeps both alive.
    assert!(h.srv.touch(group_peer, h.now + 50 * S));
    teardown(&mut h, c1, &r1.session(), 4);
    assert!(!h.take_events().iter().any(|e| matches!(e, Event::RemovePeer { .. })));
    let t = h.now;
    h.advance(t + 109 * S);
    // c1's connection, without a session now, was closed for silence at +60 s.
    assert_eq!(h.take_events(), vec![Event::Close { conn: c1 }]);
    assert_eq!(h.srv.sessions(), 1, "touched at +50 s: alive until +110 s");
    h.advance(t + 110 * S);
    let events = h.take_events();
    assert_eq!(events[0], Event::RemovePeer { peer: group_peer });
    assert!(matches!(
        events[1],
        Event::SessionEnded {
            why: EndReason::Timeout,
            ..
        }
    ));
}

#[test]
fn srtp_takes_savp_only() {
    let mut h = Harness::default();
    h.media.srtp = true;
    let c = h.connect("10.0.0.2:1000");
    assert_eq!(
        setup(&mut h, c, "RTP/AVP;unicast;client_port=5000-5001", 1).status(),
        461
    );
    let r = setup(&mut h, c, "RTP/SAVP;unicast;client_port=5000-5001", 2);
    assert_eq!(
        r.header(&headers::TRANSPORT),
        Some("RTP/SAVP;unicast;client_port=5000-5001;server_port=6970-6971;ssrc=1234ABCD")
    );
}

#[test]
fn a_destination_other_than_the_client_is_refused() {
    let mut h = Harness::default();
    let c = h.connect("10.0.0.2:1000");
    let r = setup(
        &mut h,
        c,
        "RTP/AVP;unicast;destination=198.51.100.7;client_port=5000-5001",
        1,
    );
    assert_eq!(r.status(), 463);
    assert_eq!(h.srv.counters().transports_refused, 1);
    assert_eq!(h.srv.sessions(), 0);
    // Naming itself is fine; RTP goes to the connection's address whatever was asked.
    let r = setup(
        &mut h,
        c,
        "RTP/AVP;unicast;destination=10.0.0.2;client_port=5000-5001",
        2,
    );
    assert_eq!(r.status(), 200);
    play(&mut h, c, &r.session(), 3);
    let events = h.take_events();
    let Event::AddPeer { spec, .. } = events[0] else {
        panic!()
    };
    assert_eq!(spec.rtp, Some(Route::Udp("10.0.0.2:5000".parse().unwrap())));
}

#[test]
fn status_codes_for_wrong_requests() {
    let mut h = Harness::default();
    let c = h.connect("10.0.0.2:1000");
    let st = |h: &mut Harness, lines: &[&str]| h.req(c, &request(lines)).status();
    assert_eq!(
        st(&mut h, &["PLAY rtsp://h/mic RTSP/1.0", "CSeq: 1"]),
        455,
        "PLAY before SETUP"
    );
    assert_eq!(
        st(
            &mut h,
            &["PLAY rtsp://h/mic RTSP/1.0", "CSeq: 2", "Session: 0123456789abcdef"]
        ),
        454
    );
    assert_eq!(st(&mut h, &["TEARDOWN rtsp://h/mic RTSP/1.0", "CSeq: 3"]), 454);
    assert_eq!(
        st(
            &mut h,
            &["GET_PARAMETER rtsp://h/mic RTSP/1.0", "CSeq: 4", "Session: nonsense"]
        ),
        454
    );
    assert_eq!(
        st(
            &mut h,
            &[
                "SETUP rtsp://h/mic/trackID=1 RTSP/1.0",
                "CSeq: 5",
                "Transport: RTP/AVP/TCP"
            ]
        ),
        404
    );
    assert_eq!(
        st(&mut h, &["DESCRIBE rtsp://h/MIC RTSP/1.0", "CSeq: 6"]),
        404,
        "case-sensitive"
    );
    assert_eq!(st(&mut h, &["DESCRIBE rtsp://h/mic2 RTSP/1.0", "CSeq: 7"]), 404);
    assert_eq!(
        st(&mut h, &["SETUP rtsp://h/mic/trackID=0 RTSP/1.0", "CSeq: 8"]),
        400,
        "no Transport"
    );
    assert_eq!(st(&mut h, &["FOO rtsp://h/mic RTSP/1.0", "CSeq: 9"]), 501);
    assert_eq!(st(&mut h, &["PAUSE rtsp://h/mic RTSP/1.0", "CSeq: 10"]), 405);
    assert_eq!(st(&mut h, &["OPTIONS rtsp://h/mic RTSP/2.0", "CSeq: 11"]), 505);
    assert_eq!(st(&mut h, &["OPTIONS rtsp://h/mic RTSP/1.0"]), 400, "no CSeq");
    assert_eq!(
        st(
            &mut h,
            &["OPTIONS rtsp://h/mic RTSP/1.0", "CSeq: 12", "Require: play.basic"]
        ),
        551
    );
    let r = h.req(
        c,
        "SET_PARAMETER rtsp://h/mic RTSP/1.0\r\nCSeq: 13\r\nContent-Length: 9\r\n\r\nvolume: 3",
    );
    assert_eq!(r.status(), 451);
    assert_eq!(st(&mut h, &["SET_PARAMETER rtsp://h/mic RTSP/1.0", "CSeq: 14"]), 200);
    // The aggregate URL sets up the one track, as does a URL with credentials in it.
    let r = h.req(
        c,
        &request(&[
            "SETUP rtsp://user:pw@h:8554/mic RTSP/1.0",
            "CSeq: 15",
            "Transport: RTP/AVP;unicast;client_port=5000-5001",
        ]),
    );
    assert_eq!(r.status(), 200);
    let session = r.session();
    // A second SETUP of the same track: the same answer; another transport: 455.
    let again = h.req(
        c,
        &request(&[
            "SETUP rtsp://h/mic/trackID=0 RTSP/1.0",
            "CSeq: 16",
            "Transport: RTP/AVP;unicast;client_port=5000-5001",
            &format!("Session: {session}"),
        ]),
    );
    assert_eq!((again.status(), again.session()), (200, session.clone()));
    let other = h.req(
        c,
        &request(&[
            "SETUP rtsp://h/mic/trackID=0 RTSP/1.0",
            "CSeq: 17",
            "Transport: RTP/AVP/TCP;unicast",
            &format!("Session: {session}"),
        ]),
    );
    assert_eq!(other.status(), 455);
    assert_eq!(h.srv.sessions(), 1);
    let cn = h.srv.counters();
    assert_eq!(
        (
            cn.not_found,
            cn.wrong_state,
            cn.not_implemented,
            cn.not_allowed,
            cn.bad_requests
        ),
        (6, 2, 1, 1, 2),
        "{cn:?}"
    );
}

#[test]
fn describe_strips_credentials_and_query_from_content_base() {
    let mut h = Harness::default();
    let c = h.connect("10.0.0.2:1000");
    let r = h.req(
        c,
        &request(&["DESCRIBE rtsp://admin:hunter2@cam:8554/mic?x=1 RTSP/1.0", "CSeq: 1"]),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(r.header(&headers::CONTENT_BASE), Some("rtsp://cam:8554/mic/"));
    let s = setup(&mut h, c, "RTP/AVP;unicast;client_port=5000-5001", 2).session();
    let r = h.req(
        c,
        &request(&[
            "PLAY rtsp://admin:hunter2@cam:8554/mic/ RTSP/1.0",
            "CSeq: 3",
            &format!("Session: {s}"),
        ]),
    );
    assert_eq!(
        r.header(&headers::RTP_INFO),
        Some("url=rtsp://cam:8554/mic/trackID=0;seq=4242;rtptime=987654")
    );
    assert!(!String::from_utf8_lossy(&h.all_output).contains("hunter2"));
}

#[test]
fn tcp_sessions_are_bound_to_their_connection_udp_ones_are_not() {
    let mut h = Harness::default();
    let a = h.connect("10.0.0.2:1000");
    let b = h.connect("10.0.0.2:1001");
    let tcp = setup(&mut h, a, "RTP/AVP/TCP;unicast;interleaved=0-1", 1).session();
    let udp = setup(&mut h, a, "RTP/AVP;unicast;client_port=5000-5001", 2).session();
    // A second TCP session on the same connection asking for the same channels gets others.
    let r = setup(&mut h, a, "RTP/AVP/TCP;unicast;interleaved=0-1", 3);
    assert_eq!(
        r.header(&headers::TRANSPORT),
        Some("RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=1234ABCD")
    );
    assert_eq!(play(&mut h, b, &tcp, 1).status(), 454);
    assert_eq!(play(&mut h, b, &udp, 2).status(), 200);
    assert_eq!(h.srv.sessions(), 3);
    // The connection that made them ends: all three end.
    h.srv.handle_close(h.now, a);
    h.collect();
    assert_eq!(h.srv.sessions(), 0);
    let events = h.take_events();
    assert_eq!(
        events.iter().filter(|e| matches!(e, Event::RemovePeer { .. })).count(),
        1
    );
    assert_eq!(teardown(&mut h, b, &udp, 3).status(), 454);
}

#[test]
fn setup_beyond_the_peer_range_is_453() {
    let mut h = Harness::new(ServerConfig {
        peer_first: 100,
        peer_count: 2,
        ..ServerConfig::default()
    });
    let c = h.connect("10.0.0.2:1000");
    let s1 = setup(&mut h, c, "RTP/AVP;unicast;client_port=5000-5001", 1).session();
    let s2 = setup(&mut h, c, "RTP/AVP;unicast;client_port=5002-5003", 2).session();
    assert_eq!(
        setup(&mut h, c, "RTP/AVP;unicast;client_port=5004-5005", 3).status(),
        453
    );
    assert_eq!(h.srv.counters().clients_full, 1);
    play(&mut h, c, &s1, 4);
    play(&mut h, c, &s2, 5);
    let peers: Vec<PeerId> = h
        .take_events()
        .iter()
        .filter_map(|e| match e {
            Event::AddPeer { peer, .. } => Some(*peer),
            _ => None,
        })
        .collect();
    assert_eq!(peers.iter().map(|p| p.index()).collect::<Vec<_>>(), vec![100, 101]);
    teardown(&mut h, c, &s1, 6);
    let s3 = setup(&mut h, c, "RTP/AVP;unicast;client_port=5004-5005", 7).session();
    play(&mut h, c, &s3, 8);
    let reused = h
        .take_events()
        .iter()
        .find_map(|e| match e {
            Event::AddPeer { peer, .. } => Some(*peer),
            _ => None,
        })
        .unwrap();
    assert_eq!(reused.index(), 100);
    assert!(reused.generation() > peers[0].generation(), "a fresh generation");
}

#[test]
fn sessions_time_out_unless_kept_alive() {
    let mut h = Harness::default();
    let c = h.connect("10.0.0.2:1000");
    let t0 = h.now;
    let s = setup(&mut h, c, "RTP/AVP;unicast;client_port=5000-5001", 1).session();
    play(&mut h, c, &s, 2);
    let peer = match h.take_events()[0] {
        Event::AddPeer { peer, .. } => peer,
        ref e => panic!("{e:?}"),
    };
    assert_eq!(h.srv.poll_timeout(), Some(t0 + 60 * S));
    // A keepalive at +50 s.
    h.advance(t0 + 50 * S);
    let r = h.req(
        c,
        &request(&[
            "GET_PARAMETER rtsp://h/mic/ RTSP/1.0",
            "CSeq: 3",
            &format!("Session: {s}"),
        ]),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(h.srv.poll_timeout(), Some(t0 + 110 * S));
    // An RTCP report at +100 s (the shell calls touch).
    h.advance(t0 + 100 * S);
    assert!(h.srv.touch(peer, h.now));
    assert!(!h
        .srv
        .touch(PeerId::new(peer.index() as u32, peer.generation() + 1), h.now));
    h.advance(t0 + 160 * S - 1);
    assert_eq!(h.srv.sessions(), 1);
    assert!(h.take_events().is_empty());
    h.advance(t0 + 160 * S);
    assert_eq!(h.srv.sessions(), 0);
    let events = h.take_events();
    assert_eq!(events[0], Event::RemovePeer { peer });
    assert!(matches!(
        events[1],
        Event::SessionEnded {
            why: EndReason::Timeout,
            ..
        }
    ));
    assert_eq!(h.srv.counters().session_timeouts, 1);
    // The connection, now without sessions and silent for 110 s, is closed with it.
    assert_eq!(events[2], Event::Close { conn: c });
    assert_eq!(events.len(), 3);
    assert_eq!(h.srv.counters().idle_closed, 1);
    assert_eq!(h.srv.poll_timeout(), None);
}

#[test]
fn a_session_set_up_but_never_played_times_out_silently() {
    let mut h = Harness::default();
    let c = h.connect("10.0.0.2:1000");
    setup(&mut h, c, "RTP/AVP;unicast;client_port=5000-5001", 1);
    h.advance(h.now + 60 * S);
    assert_eq!(h.srv.sessions(), 0);
    assert!(h
        .take_events()
        .iter()
        .all(|e| !matches!(e, Event::RemovePeer { .. } | Event::SessionEnded { .. })));
}

/// The auth exchange of one method: the 401, then the request with credentials from `make`.
fn with_credentials(h: &mut Harness, c: ConnId, lines: &[&str], make: impl Fn(&str) -> String) -> Reply {
    let r = h.req(c, &request(lines));
    assert_eq!(r.status(), 401);
    let challenges: Vec<&str> = r
        .raw
        .lines()
        .filter_map(|l| l.strip_prefix("WWW-Authenticate: "))
        .collect();
    assert!(challenges.len() >= 2, "{}", r.raw);
    assert!(challenges[0].contains("algorithm=SHA-256") && challenges[1].contains("algorithm=MD5"));
    let nonce = nonce_of(challenges[0]);
    let mut l = lines.to_vec();
    let auth = format!("Authorization: {}", make(&nonce));
    l.push(&auth);
    h.req(c, &request(&l))
}

#[test]
fn digest_md5_as_ffmpeg_and_sha256() {
    for sha in [false, true] {
        let mut h = Harness::with_auth(AuthMode::Digest);
        let c = h.connect("10.0.0.2:1000");
        // OPTIONS needs no credentials.
        assert_eq!(
            h.req(c, &request(&["OPTIONS rtsp://10.0.0.1:8554/mic RTSP/1.0", "CSeq: 1"]))
                .status(),
            200
        );
        let uri = "rtsp://10.0.0.1:8554/mic";
        let r = with_credentials(
            &mut h,
            c,
            &[
                "DESCRIBE rtsp://10.0.0.1:8554/mic RTSP/1.0",
                "Accept: application/sdp",
                "CSeq: 2",
            ],
            |nonce| authorization(sha, "secret", "DESCRIBE", uri, nonce, 1),
        );
        assert_eq!(r.status(), 200, "sha256={sha}: {}", r.raw);
        assert_eq!(h.srv.counters().auth_challenges, 1);
        assert_eq!(h.srv.counters().auth_failures, 0);
    }
}

#[test]
fn digest_rfc2069_as_gstreamer_through_play() {
    let mut h = Harness::with_auth(AuthMode::Digest);
    let c = h.connect("10.0.0.2:1000");
    let r = h.req(c, &request(&["DESCRIBE rtsp://10.0.0.1:8554/mic RTSP/1.0", "CSeq: 1"]));
    let nonce = nonce_of(r.raw.lines().find(|l| l.starts_with("WWW-Authenticate")).unwrap());
    let auth =
        |method: &str, uri: &str| format!("Authorization: {}", authorization_2069("secret", method, uri, &nonce));
    let r = h.req(
        c,
        &request(&[
            "SETUP rtsp://10.0.0.1:8554/mic/trackID=0 RTSP/1.0",
            "CSeq: 2",
            "Transport: RTP/AVP;unicast;client_port=46694-46695",
            &auth("SETUP", "rtsp://10.0.0.1:8554/mic/trackID=0"),
        ]),
    );
    assert_eq!(r.status(), 200, "{}", r.raw);
    let s = r.session();
    let r = h.req(
        c,
        &request(&[
            "PLAY rtsp://10.0.0.1:8554/mic/ RTSP/1.0",
            "CSeq: 3",
            &format!("Session: {s}"),
            &auth("PLAY", "rtsp://10.0.0.1:8554/mic/"),
        ]),
    );
    assert_eq!(r.status(), 200);
    let events = h.take_events();
    assert_eq!(started(&events)[0].user.as_deref(), Some("user"));
}

#[test]
fn a_connection_without_good_credentials_is_not_kept_for_the_session_timeout() {
    let mut h = Harness::with_auth(AuthMode::Digest);
    let uri = "rtsp://10.0.0.1:8554/mic";
    let t0 = h.now;
    // Asking (OPTIONS needs no credentials) and being challenged: closed 5 s after the last
    // answer, so nobody without the password holds connection slots for a minute at a time.
    let asking = h.connect("10.0.0.66:1000");
    assert_eq!(
        h.req(asking, &request(&["OPTIONS * RTSP/1.0", "CSeq: 1"])).status(),
        200
    );
    let r = h.req(asking, &request(&[&format!("DESCRIBE {uri} RTSP/1.0"), "CSeq: 2"]));
    assert_eq!(r.status(), 401);
    let nonce = nonce_of(r.raw.lines().find(|l| l.starts_with("WWW-Authenticate")).unwrap());
    // One with the password is kept as long as any client (the session timeout).
    let trusted = h.connect("10.0.0.2:1000");
    let a = format!(
        "Authorization: {}",
        authorization_2069("secret", "DESCRIBE", uri, &nonce)
    );
    let r = h.req(trusted, &request(&[&format!("DESCRIBE {uri} RTSP/1.0"), "CSeq: 1", &a]));
    assert_eq!(r.status(), 200);
    h.advance(t0 + 5 * S - 1);
    assert!(h.take_events().is_empty());
    h.advance(t0 + 5 * S);
    assert_eq!(h.take_events(), vec![Event::Close { conn: asking }]);
    h.advance(t0 + 60 * S - 1);
    assert!(h.take_events().is_empty());
    h.advance(t0 + 60 * S);
    assert_eq!(h.take_events(), vec![Event::Close { conn: trusted }]);
    assert_eq!(h.srv.counters().idle_closed, 2);
}

#[test]
fn wrong_passwords_are_answered_later_and_later() {
    let mut h = Harness::with_auth(AuthMode::Digest);
    let c = h.connect("10.0.0.66:1000");
    let uri = "rtsp://10.0.0.1:8554/mic";
    let lines = ["DESCRIBE rtsp://10.0.0.1:8554/mic RTSP/1.0", "CSeq: 1"];
    let r = h.req(c, &request(&lines));
    let nonce = nonce_of(r.raw.lines().find(|l| l.starts_with("WWW-Authenticate")).unwrap());
    let guess = |n: u32| {
        let mut l = lines.to_vec();
        let a = format!(
            "Authorization: {}",
            authorization(false, &format!("guess{n}"), "DESCRIBE", uri, &nonce, n)
        );
        l.push(&a);
        request(&l)
    };
    // The first failure: at once.
    assert_eq!(h.req(c, &guess(1)).status(), 401);
    // The second: held 0.5 s; a request sent meanwhile waits behind it.
    let t = h.now;
    let mut pipelined = guess(2);
    pipelined.push_str(&request(&["OPTIONS * RTSP/1.0", "CSeq: 9"]));
    assert!(h.send(c, pipelined.as_bytes()).is_empty(), "held");
    assert_eq!(h.srv.poll_timeout(), Some(t + S / 2));
    h.advance(t + S / 2 - 1);
    assert!(h.drain(c).is_empty());
    h.advance(t + S / 2);
    let replies = parse_all(&h.drain(c));
    assert_eq!(
        replies.iter().map(Reply::status).collect::<Vec<_>>(),
        vec![401, 200],
        "in order"
    );
    // A parallel connection from the same host is slowed too (after the held one).
    let c2 = h.connect("10.0.0.66:1001");
    assert!(h.send(c2, guess(3).as_bytes()).is_empty());
    assert!(h.send(c, guess(4).as_bytes()).is_empty());
    let t = h.now;
    h.advance(t + S);
    assert_eq!(parse_all(&h.drain(c2)).len(), 1, "third failure: 1 s");
    assert!(h.drain(c).is_empty(), "fourth: 2 s after the third");
    h.advance(t + 3 * S);
    assert_eq!(parse_all(&h.drain(c)).len(), 1);
    assert_eq!(h.srv.counters().auth_failures, 4);
    assert_eq!(h.srv.counters().auth_delayed, 3);
    // Another host is not slowed.
    let other = h.connect("10.0.0.7:1000");
    let mut l = lines.to_vec();
    let a = format!(
        "Authorization: {}",
        authorization(false, "nope", "DESCRIBE", uri, &nonce, 1)
    );
    l.push(&a);
    assert_eq!(h.req(other, &request(&l)).status(), 401);
    // The right password still works from the slowed host, and clears its record.
    let mut l = lines.to_vec();
    let a = format!(
        "Authorization: {}",
        authorization(false, "secret", "DESCRIBE", uri, &nonce, 9)
    );
    l.push(&a);
    assert_eq!(h.req(c, &request(&l)).status(), 200);
    assert_eq!(h.req(c2, &guess(10)).status(), 401, "answered at once again");
}

#[test]
fn stale_nonces_and_keepalives_on_expired_ones() {
    let mut h = Harness::with_auth(AuthMode::Digest);
    let c = h.connect("10.0.0.2:1000");
    let t0 = h.now;
    let r = h.req(c, &request(&["SETUP rtsp://h/mic/trackID=0 RTSP/1.0", "CSeq: 1"]));
    let nonce = nonce_of(r.raw.lines().find(|l| l.starts_with("WWW-Authenticate")).unwrap());
    let auth = |method: &str, uri: &str, nc: u32| {
        format!(
            "Authorization: {}",
            authorization(true, "secret", method, uri, &nonce, nc)
        )
    };
    let r = h.req(
        c,
        &request(&[
            "SETUP rtsp://h/mic/trackID=0 RTSP/1.0",
            "CSeq: 2",
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1",
            &auth("SETUP", "rtsp://h/mic/trackID=0", 1),
        ]),
    );
    assert_eq!(r.status(), 200);
    let s = r.session();
    // Keepalives every 30 s, the nonce expires at +300 s: still taken on the session.
    for k in 1..=12u32 {
        h.advance(t0 + u64::from(k) * 30 * S);
        let r = h.req(
            c,
            &request(&[
                "GET_PARAMETER rtsp://h/mic/ RTSP/1.0",
                &format!("CSeq: {}", 2 + k),
                &format!("Session: {s}"),
                &auth("GET_PARAMETER", "rtsp://h/mic/", 1 + k),
            ]),
        );
        assert_eq!(r.status(), 200, "keepalive {k}");
    }
    // A request that makes a session: stale.
    let r = h.req(
        c,
        &request(&[
            "DESCRIBE rtsp://h/mic RTSP/1.0",
            "CSeq: 20",
            &auth("DESCRIBE", "rtsp://h/mic", 20),
        ]),
    );
    assert_eq!(r.status(), 401);
    assert!(r.raw.contains("stale=true"), "{}", r.raw);
    assert_eq!(h.srv.counters().auth_stale, 1);
    assert_eq!(h.srv.counters().auth_failures, 0, "a stale nonce is not a failure");
    // With the fresh nonce, it passes.
    let fresh = nonce_of(r.raw.lines().find(|l| l.starts_with("WWW-Authenticate")).unwrap());
    let r = h.req(
        c,
        &request(&[
            "DESCRIBE rtsp://h/mic RTSP/1.0",
            "CSeq: 21",
            &format!(
                "Authorization: {}",
                authorization(true, "secret", "DESCRIBE", "rtsp://h/mic", &fresh, 1)
            ),
        ]),
    );
    assert_eq!(r.status(), 200);
}

#[test]
fn basic_when_chosen() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut h = Harness::with_auth(AuthMode::Basic);
    let c = h.connect("10.0.0.2:1000");
    let r = h.req(c, &request(&["DESCRIBE rtsp://h/mic RTSP/1.0", "CSeq: 1"]));
    assert!(
        r.raw.contains("WWW-Authenticate: Basic realm=\"rtpmic\"\r\n"),
        "{}",
        r.raw
    );
    let ok = format!("Authorization: Basic {}", b64("user:secret"));
    assert_eq!(
        h.req(c, &request(&["DESCRIBE rtsp://h/mic RTSP/1.0", "CSeq: 2", &ok]))
            .status(),
        200
    );
    let bad = format!("Authorization: Basic {}", b64("user:wrong"));
    assert_eq!(
        h.req(c, &request(&["DESCRIBE rtsp://h/mic RTSP/1.0", "CSeq: 3", &bad]))
            .status(),
        401
    );
    // Not in Digest mode.
    let mut h = Harness::with_auth(AuthMode::Digest);
    let c = h.connect("10.0.0.2:1000");
    assert_eq!(
        h.req(c, &request(&["DESCRIBE rtsp://h/mic RTSP/1.0", "CSeq: 2", &ok]))
            .status(),
        401
    );
}

#[test]
fn unauthenticated_requests_learn_nothing_of_sessions() {
    let mut h = Harness::with_auth(AuthMode::Digest);
    let c = h.connect("10.0.0.2:1000");
    let r = h.req(
        c,
        &request(&["TEARDOWN rtsp://h/mic RTSP/1.0", "CSeq: 1", "Session: 0123456789abcdef"]),
    );
    assert_eq!(r.status(), 401, "not 454");
    let r = h.req(
        c,
        &request(&["OPTIONS rtsp://h/mic RTSP/1.0", "CSeq: 2", "Session: 0123456789abcdef"]),
    );
    assert_eq!(r.status(), 200, "not 454");
    assert_eq!(r.header(&headers::SESSION), None);
}

#[test]
fn options_keeps_a_session_alive_only_with_credentials() {
    let mut h = Harness::with_auth(AuthMode::Digest);
    let c = h.connect("10.0.0.2:1000");
    let t0 = h.now;
    let r = h.req(c, &request(&["SETUP rtsp://h/mic/trackID=0 RTSP/1.0", "CSeq: 1"]));
    let nonce = nonce_of(r.raw.lines().find(|l| l.starts_with("WWW-Authenticate")).unwrap());
    let auth =
        |method: &str, uri: &str| format!("Authorization: {}", authorization_2069("secret", method, uri, &nonce));
    let r = h.req(
        c,
        &request(&[
            "SETUP rtsp://h/mic/trackID=0 RTSP/1.0",
            "CSeq: 2",
            "Transport: RTP/AVP;unicast;client_port=5000-5001",
            &auth("SETUP", "rtsp://h/mic/trackID=0"),
        ]),
    );
    let s = r.session();
    h.advance(t0 + 40 * S);
    // Without credentials: 200, the session is neither named nor touched.
    let r = h.req(
        c,
        &request(&["OPTIONS rtsp://h/mic RTSP/1.0", "CSeq: 3", &format!("Session: {s}")]),
    );
    assert_eq!((r.status(), r.header(&headers::SESSION)), (200, None));
    assert_eq!(h.srv.poll_timeout(), Some(t0 + 60 * S));
    // With them (as live555 keeps a session alive), it is.
    let r = h.req(
        c,
        &request(&[
            "OPTIONS rtsp://h/mic RTSP/1.0",
            "CSeq: 4",
            &format!("Session: {s}"),
            &auth("OPTIONS", "rtsp://h/mic"),
        ]),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(h.srv.poll_timeout(), Some(t0 + 100 * S));
    assert_eq!(h.srv.counters().auth_failures, 0);
}

#[test]
fn the_password_appears_nowhere() {
    let mut h = Harness::with_auth(AuthMode::Basic);
    let c = h.connect("10.0.0.2:1000");
    let uri = "rtsp://10.0.0.1:8554/mic";
    with_credentials(
        &mut h,
        c,
        &["DESCRIBE rtsp://10.0.0.1:8554/mic RTSP/1.0", "CSeq: 1"],
        |n| authorization(false, "secret", "DESCRIBE", uri, n, 1),
    );
    let s = setup(&mut h, c, "RTP/AVP;unicast;client_port=5000-5001", 3);
    assert_eq!(s.status(), 401);
    let text = format!(
        "{}{:?}{:?}{:?}",
        String::from_utf8_lossy(&h.all_output),
        h.events,
        h.srv,
        ServerConfig {
            auth: Some(AuthConfig::new("user", Password::new("secret"))),
            ..ServerConfig::default()
        }
    );
    assert!(!text.contains("secret"), "{text}");
}

#[test]
fn oversized_heads_header_floods_and_bodies_are_refused_and_closed() {
    let mut h = Harness::default();
    let c = h.connect("10.0.0.2:1000");
    let mut big = b"OPTIONS * RTSP/1.0\r\nCSeq: 7\r\nX: ".to_vec();
    big.resize(20_000, b'a');
    let out = h.send(c, &big);
    let r = parse_all(&out);
    assert_eq!(r[0].status(), 431);
    assert_eq!(r[0].header(&headers::CSEQ), Some("7"));
    assert_eq!(h.take_events(), vec![Event::Close { conn: c }]);
    assert_eq!(h.srv.connections(), 0);

    let c = h.connect("10.0.0.2:1001");
    let mut flood = String::from("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n");
    for i in 0..100 {
        flood.push_str(&format!("X-{i}: y\r\n"));
    }
    flood.push_str("\r\n");
    assert_eq!(parse_all(&h.send(c, flood.as_bytes()))[0].status(), 431);
    assert_eq!(h.take_events(), vec![Event::Close { conn: c }]);

    let c = h.connect("10.0.0.2:1002");
    let body = "SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 100000\r\n\r\n";
    assert_eq!(parse_all(&h.send(c, body.as_bytes()))[0].status(), 413);
    assert_eq!(h.take_events(), vec![Event::Close { conn: c }]);
    assert_eq!(h.srv.counters().too_large, 3);
}

#[test]
fn garbage_gets_400_and_a_close() {
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"OPTIONS\r\n\r\n",
        b"OPTIONS relative/url RTSP/1.0\r\nCSeq: 3\r\n\r\n",
        b"OPTIONS * RTSP/1.0\r\nno colon here\r\n\r\n",
    ] {
        let mut h = Harness::default();
        let c = h.connect("10.0.0.2:1000");
        let out = h.send(c, garbage);
        let r = parse_all(&out);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status(), 400, "{garbage:?}");
        assert_eq!(h.take_events(), vec![Event::Close { conn: c }]);
        assert_eq!(h.srv.counters().bad_requests, 1);
        // Anything after is ignored.
        assert!(h.send(c, b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n").is_empty());
    }
}

#[test]
fn slowloris_is_closed_after_the_request_timeout() {
    let mut h = Harness::default();
    let c = h.connect("10.0.0.2:1000");
    let t0 = h.now;
    let req = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n";
    // A byte a second.
    for (k, b) in req.iter().take(5).enumerate() {
        h.advance(t0 + k as u64 * S);
        assert!(h.send(c, &[*b]).is_empty());
        assert!(h.take_events().is_empty());
    }
    assert_eq!(h.srv.poll_timeout(), Some(t0 + 5 * S));
    h.advance(t0 + 5 * S);
    assert_eq!(h.take_events(), vec![Event::Close { conn: c }]);
    assert_eq!(h.srv.counters().request_timeouts, 1);
    // A connection that says nothing at all is closed as soon.
    let c = h.connect("10.0.0.2:1001");
    h.advance(h.now + 5 * S);
    assert_eq!(h.take_events(), vec![Event::Close { conn: c }]);
    // A complete request resets the timer.
    let c = h.connect("10.0.0.2:1002");
    let t1 = h.now;
    h.send(c, &req[..10]);
    h.advance(t1 + 4 * S);
    assert_eq!(parse_all(&h.send(c, &req[10..])).len(), 1);
    h.advance(t1 + 9 * S);
    assert!(h.take_events().is_empty(), "no request pending");
}

#[test]
fn max_connections_get_503() {
    let mut h = Harness::new(ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    });
    let _a = h.connect("10.0.0.2:1000");
    let _b = h.connect("10.0.0.2:1001");
    let refused: Vec<ConnId> = (0..REFUSING_SLOTS)
        .map(|i| h.connect(&format!("10.0.0.3:{i}")))
        .collect();
    assert_eq!(h.srv.accept(h.now, "10.0.0.4:1".parse().unwrap()), None);
    let r = h.req(refused[0], &request(&["OPTIONS * RTSP/1.0", "CSeq: 1"]));
    assert_eq!(r.status(), 503);
    assert_eq!(r.header(&headers::CSEQ), Some("1"));
    assert_eq!(h.take_events(), vec![Event::Close { conn: refused[0] }]);
    let cn = h.srv.counters();
    assert_eq!(
        (cn.connections, cn.connections_refused, cn.connections_dropped),
        (7, 4, 1)
    );
    // Stale ids change nothing.
    h.srv.handle_input(
        h.now,
        refused[0],
        b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n",
        &mut h.media,
    );
    assert!(h.srv.output(refused[0]).is_empty());
    // The freed slot serves again, under a new id.
    let d = h.connect("10.0.0.5:1");
    assert_ne!(d, refused[0]);
    assert_eq!(d.index(), refused[0].index());
}

#[test]
fn interleaved_frames_without_session_and_oversized_ones() {
    let mut h = Harness::default();
    let c = h.connect("10.0.0.2:1000");
    let mut bytes = vec![b'$', 9, 0, 3, 1, 2, 3];
    // A frame of 60000 bytes: longer than the buffer, skipped as it comes.
    bytes.extend_from_slice(&[b'$', 1, 0xea, 0x60]);
    bytes.extend(std::iter::repeat_n(0x55u8, 60_000));
    bytes.extend_from_slice(b"OPTIONS * RTSP/1.0\r\nCSeq: 5\r\n\r\n");
    let mut out = Vec::new();
    for chunk in bytes.chunks(1000) {
        out.extend(h.send(c, chunk));
    }
    let r = parse_all(&out);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].header(&headers::CSEQ), Some("5"));
    let events = h.take_events();
    assert_eq!(
        events,
        vec![Event::Interleaved {
            conn: c,
            channel: 9,
            peer: None,
            data: vec![1, 2, 3]
        }]
    );
    let cn = h.srv.counters();
    assert_eq!((cn.interleaved_frames, cn.interleaved_dropped), (1, 1));
}

#[test]
fn a_client_that_does_not_read_is_closed() {
    let mut h = Harness::default();
    let c = h.connect("10.0.0.2:1000");
    let req = request(&["DESCRIBE rtsp://h/mic RTSP/1.0", "CSeq: 1"]);
    let mut closed = false;
    for _ in 0..100 {
        h.srv.handle_input(h.now, c, req.as_bytes(), &mut h.media);
        h.collect();
        if h.take_events().contains(&Event::Close { conn: c }) {
            closed = true;
            break;
        }
        assert!(h.srv.output(c).len() <= ServerConfig::default().limits.output_bytes);
    }
    assert!(closed);
    assert_eq!(h.srv.counters().output_overflows, 1);
}

#[test]
fn shutdown_ends_everything() {
    let mut h = Harness::default();
    let c = h.connect("10.0.0.2:1000");
    let s = setup(&mut h, c, "RTP/AVP;unicast;client_port=5000-5001", 1).session();
    play(&mut h, c, &s, 2);
    h.take_events();
    h.srv.shutdown(h.now);
    h.collect();
    let events = h.take_events();
    assert!(matches!(events[0], Event::RemovePeer { .. }));
    assert!(matches!(
        events[1],
        Event::SessionEnded {
            why: EndReason::Shutdown,
            ..
        }
    ));
    assert_eq!(events[2], Event::Close { conn: c });
    assert_eq!(h.srv.poll_timeout(), None);
}

#[test]
fn config_is_checked() {
    let bad = |c: ServerConfig| Server::new(c, [0; 32]).err();
    let d = ServerConfig::default;
    assert!(matches!(
        bad(ServerConfig {
            path: "mic".into(),
            ..d()
        }),
        Some(ConfigError::Path(_))
    ));
    assert!(matches!(
        bad(ServerConfig { peer_count: 257, ..d() }),
        Some(ConfigError::Clients(_))
    ));
    assert!(matches!(
        bad(ServerConfig {
            max_connections: MAX_CONNECTION_SLOTS - REFUSING_SLOTS + 1,
            ..d()
        }),
        Some(ConfigError::Connections(_))
    ));
    // 256 clients and the spare connections fit.
    assert!(bad(ServerConfig {
        max_connections: MAX_CLIENTS + SPARE_CONNECTIONS,
        peer_count: MAX_CLIENTS,
        ..d()
    })
    .is_none());
    assert!(matches!(
        bad(ServerConfig {
            track: "a/b".into(),
            ..d()
        }),
        Some(ConfigError::Track(_))
    ));
    assert!(bad(ServerConfig {
        peer_count: 256,
        max_connections: 252,
        ..d()
    })
    .is_none());
}

#[test]
fn session_ids_are_distinct_and_follow_the_seed() {
    let ids = |seed: [u8; 32]| {
        let mut h = Harness::new(ServerConfig::default());
        h.srv = Server::new(ServerConfig::default(), seed).unwrap();
        let c = h.connect("10.0.0.2:1000");
        (0..4)
            .map(|k| setup(&mut h, c, "RTP/AVP;unicast;client_port=5000-5001", k).session())
            .collect::<Vec<_>>()
    };
    let a = ids([1; 32]);
    assert_eq!(a, ids([1; 32]), "deterministic for a seed");
    assert_ne!(a, ids([2; 32]));
    let mut sorted = a.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 4);
}
