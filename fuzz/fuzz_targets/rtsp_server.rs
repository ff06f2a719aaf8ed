//! The RTSP server, `rtpmic::rtsp::Server`, on a hostile client.
//!
//! Input: a configuration byte, then what the client sends. Configuration bits: 0 access
//! control (user `user`, password `fuzzsecret`), 1 Basic mode, 2 a multicast group, 3 SRTP,
//! 4 tiny limits (512-byte head, 64-byte body, 4 headers, 2 KiB output), 5 a second
//! connection from another address, 6 two peer slots only. The bytes are cut into chunks of
//! pseudo-random length (seeded by the configuration byte and the input's length); between
//! chunks the clock moves on (by the chunk's length × 37 ms, modulo 7 s), timeouts are
//! handled, and every few chunks the shell "hears" RTCP from a peer the server made
//! (`touch`). Output is written only every other chunk (a client slow to read). Session ids
//! are random: `@@` in a chunk stands for the last one the server answered with, so the
//! fuzzer reaches PLAY, keepalives and TEARDOWN.
//!
//! Checks: nothing panics; a connection's pending output stays within the output limit plus
//! one response; the server never holds more sessions than peer slots nor more connections
//! than slots; peers are added once and removed only once added, and at the end
//! (`shutdown`) every peer added has been removed and nothing is left; no `Close` for a
//! connection twice; the password appears in no output, event or `Debug`.
#![no_main]

use std::collections::HashSet;
use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use rtpmic::rtsp::server::{MAX_CONNECTION_SLOTS, REFUSING_SLOTS};
use rtpmic::rtsp::{
    AuthConfig, AuthMode, ConnId, Event, Limits, MediaInfo, MulticastGroup, Password, Server, ServerConfig,
};

const PASSWORD: &str = "fuzzsecret";
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=rtpmic\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
                   m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=control:trackID=0\r\n";
/// Room for one response beyond the output limit (the largest is DESCRIBE's, with the SDP).
const ONE_RESPONSE: usize = 1024 + SDP.len();

fuzz_target!(|data: &[u8]| {
    let Some((&flags, stream)) = data.split_first() else {
        return;
    };
    let mut limits = Limits::default();
    if flags & 16 != 0 {
        limits = Limits {
            head_bytes: 512,
            headers: 4,
            body_bytes: 64,
            request_timeout_ns: 1_000_000_000,
            output_bytes: 2048,
        };
    }
    let auth = (flags & 1 != 0).then(|| {
        let mut a = AuthConfig::new("user", Password::new(PASSWORD));
        if flags & 2 != 0 {
            a.mode = AuthMode::Basic;
        }
        a
    });
    let config = ServerConfig {
        auth,
        limits,
        max_connections: 2,
        peer_first: 3,
        peer_count: if flags & 64 != 0 { 2 } else { 16 },
        ..ServerConfig::default()
    };
    let peer_count = config.peer_count;
    let mut srv = Server::new(config, [0; 32]).expect("a valid configuration");
    let mut media = MediaInfo {
        sdp: SDP.to_string(),
        server_ports: (6970, 6971),
        ssrc: 0x1234_5678,
        multicast: (flags & 4 != 0).then(|| MulticastGroup {
            group: "239.7.7.7:5004".parse().unwrap(),
            ttl: 4,
        }),
        srtp: flags & 8 != 0,
        position: || (1000, 160_000),
    };

    let mut now: u64 = 1_000_000_000_000;
    let a: SocketAddr = "192.0.2.10:40000".parse().unwrap();
    let b: SocketAddr = "[2001:db8::7]:40001".parse().unwrap();
    let mut conns: Vec<ConnId> = vec![srv.accept(now, a).expect("a slot")];
    if flags & 32 != 0 {
        conns.push(srv.accept(now, b).expect("a slot"));
    }
    let mut state = State::default();
    let mut rng = u64::from(flags) << 32 | stream.len() as u64 | 1;
    let mut rest = stream;
    let mut round = 0u32;
    while !rest.is_empty() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let n = ((rng >> 20) as usize % 257 + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        round += 1;
        let conn = conns[(rng >> 40) as usize % conns.len()];
        let chunk = with_session(chunk, &state.session);
        srv.handle_input(now, conn, &chunk, &mut media);
        state.events(&mut srv);
        for &c in &conns {
            state.learn_session(srv.output(c));
            assert!(
                srv.output(c).len() <= limits.output_bytes + ONE_RESPONSE,
                "{} bytes pending",
                srv.output(c).len()
            );
        }
        if round % 2 == 0 {
            for &c in &conns {
                let out = srv.output(c).to_vec();
                state.check_text(&out);
                srv.consume_output(c, out.len());
            }
            state.events(&mut srv);
        }
        if round % 3 == 0 {
            if let Some(&peer) = state.added.iter().next() {
                srv.touch(peer, now);
            }
        }
        now += (n as u64 * 37_000_000) % 7_000_000_000;
        if let Some(t) = srv.poll_timeout() {
            assert!(t < u64::MAX / 2, "a timeout far away: {t}");
        }
        srv.handle_timeout(now, &mut media);
        state.events(&mut srv);
        assert!(srv.sessions() <= peer_count);
        assert!(srv.connections() <= MAX_CONNECTION_SLOTS.min(2 + REFUSING_SLOTS));
    }
    let debug = format!("{srv:?}");
    assert!(!debug.contains(PASSWORD));
    srv.shutdown(now);
    state.events(&mut srv);
    assert!(state.added.is_empty(), "peers left after shutdown: {:?}", state.added);
    assert_eq!((srv.sessions(), srv.connections()), (0, 0));
    assert_eq!(srv.poll_timeout(), None);
});

/// `chunk` with `@@` replaced by `session`.
fn with_session(chunk: &[u8], session: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len() + 16);
    let mut i = 0;
    while i < chunk.len() {
        if chunk[i..].starts_with(b"@@") {
            out.extend_from_slice(session);
            i += 2;
        } else {
            out.push(chunk[i]);
            i += 1;
        }
    }
    out
}

#[derive(Default)]
struct State {
    added: HashSet<rtpmic::rtp::session::PeerId>,
    closed: HashSet<ConnId>,
    /// The last session id answered.
    session: Vec<u8>,
}

impl State {
    fn learn_session(&mut self, out: &[u8]) {
        const TAG: &[u8] = b"Session: ";
        if let Some(p) = out.windows(TAG.len()).rposition(|w| w == TAG) {
            let id = &out[p + TAG.len()..];
            self.session = id[..id.len().min(16)].to_vec();
        }
    }

    fn events(&mut self, srv: &mut Server) {
        while let Some(e) = srv.poll_event() {
            let text = format!("{e:?}");
            assert!(!text.contains(PASSWORD), "{text}");
            match e {
                Event::AddPeer { peer, .. } => assert!(self.added.insert(peer), "{peer:?} added twice"),
                Event::RemovePeer { peer } => assert!(self.added.remove(&peer), "{peer:?} removed, never added"),
                Event::Close { conn } => assert!(self.closed.insert(conn), "{conn:?} closed twice"),
                Event::Interleaved { data, .. } => assert!(data.len() <= rtpmic::rtsp::server::MAX_DATA),
                Event::SessionStarted(_) | Event::SessionEnded { .. } => {}
            }
        }
    }

    fn check_text(&self, out: &[u8]) {
        assert!(
            !out.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()),
            "the password in the output"
        );
    }
}
