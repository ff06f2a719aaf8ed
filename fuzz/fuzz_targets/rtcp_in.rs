//! The RTCP receive path of the send session, `SendSession::handle_rtcp`, on a hostile
//! datagram.
//!
//! Input: the datagram. Our SSRC is 0x00000abc (as in the seeds), our first sequence number
//! 990, the RTP clock 48 kHz. The session is deterministic, so the datagram is given three
//! times:
//! 1. from a unicast peer's RTCP address: never panics; `foreign` stays 0; the datagram is
//!    accounted for (malformed, unrelated, or at least one report taken); the table holds
//!    at most one receiver per report taken, with values in their ranges (fraction lost
//!    0..1, expected 1..=65536, jitter finite and ≥ 0, RTT 0..60000 ms).
//! 2. from the same peer's address with another port: `foreign` 1, nothing else counted.
//! 3. on a multicast group (anyone may report) whose table is full of one-report receivers:
//!    as in 1, and the table never grows past its capacity.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use rtpmic::rtp::session::send::{SessionCounters, MULTICAST_MEMBERS};
use rtpmic::rtp::session::{PeerId, PeerSpec, ReceiverInfo, SendConfig, SendSession};

const OUR_SSRC: u32 = 0xabc;

fn session() -> SendSession {
    SendSession::new(
        SendConfig {
            ssrc: OUR_SSRC,
            payload_type: 96,
            first_seq: 990,
            ts_base: 0,
            clock_rate: 48_000,
            sample_rate: 48_000,
            ticks_per_frame: 960,
            frame_ns: 20_000_000,
            cname: "c".into(),
            session_bw: 4400.0,
            rtcp: true,
            srtp: None,
            srtcp_in: None,
            pacing: false,
            fec_loss: Some((5, 30)),
            max_peers: 1,
        },
        0,
    )
    .expect("session")
}

fn check(r: &ReceiverInfo) {
    assert!(r.reports >= 1);
    assert!((0.0..1.0).contains(&r.fraction_lost), "{r:?}");
    assert!((1..=65_536).contains(&r.expected), "{r:?}");
    assert!((-0x80_0000..=0x7f_ffff).contains(&r.cumulative_lost), "{r:?}");
    assert!(r.jitter_ms.is_finite() && r.jitter_ms >= 0.0, "{r:?}");
    if let Some(rtt) = r.rtt_ms {
        assert!((0.0..60_000.0).contains(&rtt), "{r:?}");
    }
}

fn accounted(c: &SessionCounters) -> u64 {
    c.malformed + c.unrelated + c.reports + c.untracked
}

fuzz_target!(|data: &[u8]| {
    let peer: SocketAddr = "10.0.0.2:5004".parse().unwrap();
    let rtcp: SocketAddr = "10.0.0.2:5005".parse().unwrap();

    let mut s = session();
    s.set_peer(PeerId::new(0, 1), PeerSpec::udp(Some(peer), true, false));
    s.handle_rtcp(1, 0, rtcp, &mut data.to_vec());
    let c = *s.counters();
    assert_eq!(c.foreign, 0);
    assert!(accounted(&c) >= 1, "{c:?}");
    assert!(s.receivers().len() as u64 <= c.reports);
    s.receivers().iter().for_each(check);
    while s.poll_event().is_some() {}

    let mut s = session();
    s.set_peer(PeerId::new(0, 1), PeerSpec::udp(Some(peer), true, false));
    s.handle_rtcp(1, 0, "10.0.0.2:40000".parse().unwrap(), &mut data.to_vec());
    let c = *s.counters();
    assert_eq!((c.foreign, accounted(&c)), (1, 0), "{c:?}");

    let mut s = session();
    let group: SocketAddr = "239.1.2.3:5004".parse().unwrap();
    s.set_peer(PeerId::new(0, 1), PeerSpec::udp(Some(group), true, false));
    let capacity = 1 + MULTICAST_MEMBERS;
    for i in 0..capacity as u32 {
        let from = SocketAddr::from(([10, 1, 0, i as u8], 5005));
        // RR from 0x5000_0000 + i about OUR_SSRC, one report block.
        let mut rr = vec![0x81, 201, 0, 7];
        rr.extend_from_slice(&(0x5000_0000 + i).to_be_bytes());
        rr.extend_from_slice(&OUR_SSRC.to_be_bytes());
        rr.extend_from_slice(&[0; 20]);
        s.handle_rtcp(1, 0, from, &mut rr);
    }
    assert_eq!(s.receivers().len(), capacity);
    s.handle_rtcp(2, 0, "10.9.9.9:5005".parse().unwrap(), &mut data.to_vec());
    assert!(s.receivers().len() <= capacity);
    s.receivers().iter().for_each(check);
});
