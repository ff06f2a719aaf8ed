//! What other threads hand the sending thread through preallocated rings: peers joining and
//! leaving ([`Control`]), and RTCP datagrams received for the send session ([`InDatagram`]).
//! Every slot is fixed-size, so the sending thread takes them without allocating.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

use crate::rtp::session::{PeerId, PeerSpec};

/// A change of peers for the send session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Introduce the peer, or change where its packets go (generation-checked).
    SetPeer { id: PeerId, spec: PeerSpec },
    /// The peer leaves: it gets a BYE (RFC 3550 §6.6).
    RemovePeer { id: PeerId },
}

impl Control {
    /// A ring slot's initial value (never read as a message).
    pub fn empty() -> Control {
        Control::RemovePeer {
            id: PeerId::new(u32::MAX, 0),
        }
    }
}

/// Largest RTCP datagram taken in: a receiver's compound about one stream (RR + SDES [+ BYE],
/// under 200 bytes) with room for many report blocks and items; longer ones are dropped and
/// counted as malformed.
pub const MAX_IN_DATAGRAM: usize = 512;

/// One datagram received for the send session.
pub struct InDatagram {
    pub data: [u8; MAX_IN_DATAGRAM],
    pub len: usize,
    pub from: SocketAddr,
    /// The peer it came from, when its transport says so (an RTSP client's TCP connection);
    /// `None`: match `from` against the peers' addresses.
    pub peer: Option<PeerId>,
    /// CLOCK_MONOTONIC and wall clock (NTP format) when it was read.
    pub arrival_ns: u64,
    pub arrival_ntp: u64,
}

impl InDatagram {
    pub fn empty() -> InDatagram {
        InDatagram {
            data: [0; MAX_IN_DATAGRAM],
            len: 0,
            from: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
            peer: None,
            arrival_ns: 0,
            arrival_ntp: 0,
        }
    }
}

/// What the sending thread publishes of its session for the RTSP thread, lock-free: the
/// position of the next packet (for RTP-Info at PLAY), and per peer slot when a report was
/// last heard from it and what it said (liveness, RFC 2326 §12.37 with RTCP as keepalive,
/// and the session's end-of-play log line).
pub struct SessionView {
    /// The next packet's sequence number (high 32 bits) and RTP timestamp (low 32 bits).
    position: AtomicU64,
    heard: Box<[Heard]>,
}

struct Heard {
    /// The peer's generation, and when its last report arrived (0: never).
    generation: AtomicU64,
    at_ns: AtomicU64,
    /// Its last report: fraction lost × 256, and jitter in µs.
    fraction_lost_q8: AtomicU64,
    jitter_us: AtomicU64,
}

/// What a peer's last receiver report said, as [`SessionView::heard`] gives it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HeardFrom {
    pub at_ns: u64,
    pub fraction_lost: f64,
    pub jitter_ms: f64,
}

impl SessionView {
    pub fn new(slots: usize) -> SessionView {
        SessionView {
            position: AtomicU64::new(0),
            heard: (0..slots)
                .map(|_| Heard {
                    generation: AtomicU64::new(0),
                    at_ns: AtomicU64::new(0),
                    fraction_lost_q8: AtomicU64::new(0),
                    jitter_us: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// Sending thread: the next packet's sequence number and RTP timestamp.
    pub fn set_position(&self, seq: u16, timestamp: u32) {
        self.position
            .store((u64::from(seq) << 32) | u64::from(timestamp), Relaxed);
    }

    pub fn position(&self) -> (u16, u32) {
        let p = self.position.load(Relaxed);
        ((p >> 32) as u16, p as u32)
    }

    /// Sending thread: a report from `peer` was taken at `at_ns`.
    pub fn report(&self, peer: PeerId, at_ns: u64, fraction_lost: f64, jitter_ms: f64) {
        let Some(h) = self.heard.get(peer.index()) else { return };
        h.fraction_lost_q8
            .store((fraction_lost * 256.0).clamp(0.0, 255.0) as u64, Relaxed);
        h.jitter_us.store((jitter_ms * 1000.0).max(0.0) as u64, Relaxed);
        h.generation.store(u64::from(peer.generation()), Relaxed);
        h.at_ns.store(at_ns.max(1), Release);
    }

    /// The last report heard from `peer` (of its generation), if any.
    pub fn heard(&self, peer: PeerId) -> Option<HeardFrom> {
        let h = self.heard.get(peer.index())?;
        let at_ns = h.at_ns.load(Acquire);
        if at_ns == 0 || h.generation.load(Relaxed) != u64::from(peer.generation()) {
            return None;
        }
        Some(HeardFrom {
            at_ns,
            fraction_lost: h.fraction_lost_q8.load(Relaxed) as f64 / 256.0,
            jitter_ms: h.jitter_us.load(Relaxed) as f64 / 1000.0,
        })
    }
}

/// Which sources may send the session RTCP, published by the sending thread for the RTCP
/// reader, so a flood from anywhere else is dropped before it takes a ring slot (a real
/// receiver's report is not crowded out). Advisory: the session checks every datagram
/// itself ([`crate::rtp::session::SendSession::handle_rtcp`]); this only has to let every
/// believable source through. Lock-free: one atomic key per route of each peer slot.
pub struct SourceFilter {
    /// A hash of the address (never 0) of each peer's RTCP and RTP route; 0 = none.
    keys: Box<[AtomicU64]>,
    /// A multicast peer is present: any member of the group may report, everyone passes.
    open: AtomicBool,
}

impl SourceFilter {
    pub fn new(slots: usize) -> SourceFilter {
        SourceFilter {
            keys: (0..2 * slots).map(|_| AtomicU64::new(0)).collect(),
            open: AtomicBool::new(false),
        }
    }

    /// Slot `slot` now holds `spec` (or nothing); `open`: a multicast peer is present.
    pub fn publish(&self, slot: usize, spec: Option<&PeerSpec>, open: bool) {
        let routes = spec.map_or([None, None], |s| [s.rtcp, s.rtp]);
        for (k, route) in routes.into_iter().enumerate() {
            if let Some(cell) = self.keys.get(2 * slot + k) {
                cell.store(route.and_then(|r| r.udp()).map_or(0, key), Relaxed);
            }
        }
        self.open.store(open, Relaxed);
    }

    /// Whether a datagram from `from` may be handed to the session.
    pub fn admits(&self, from: SocketAddr) -> bool {
        if self.open.load(Relaxed) {
            return true;
        }
        let k = key(from);
        self.keys.iter().any(|c| c.load(Relaxed) == k)
    }
}

/// FNV-1a over the canonical address (an IPv4-mapped IPv6 address as IPv4) and port; never 0.
fn key(a: SocketAddr) -> u64 {
    let (ip, port) = crate::rtp::session::peers::endpoint(a);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    match ip {
        std::net::IpAddr::V4(v4) => eat(&v4.octets()),
        std::net::IpAddr::V6(v6) => eat(&v6.octets()),
    }
    eat(&port.to_be_bytes());
    h.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_peers_routes_pass_unless_a_group_is_open() {
        let f = SourceFilter::new(2);
        let peer: SocketAddr = "10.0.0.2:5004".parse().unwrap();
        assert!(!f.admits("10.0.0.2:5005".parse().unwrap()), "nobody yet");
        f.publish(1, Some(&PeerSpec::udp(Some(peer), true, false)), false);
        assert!(f.admits("10.0.0.2:5005".parse().unwrap()), "its RTCP port");
        assert!(
            f.admits("[::ffff:10.0.0.2]:5004".parse().unwrap()),
            "its RTP port, v4-mapped"
        );
        assert!(!f.admits("10.0.0.2:40000".parse().unwrap()), "another port");
        f.publish(1, None, false);
        assert!(!f.admits("10.0.0.2:5005".parse().unwrap()), "gone");
        f.publish(0, None, true);
        assert!(
            f.admits("192.0.2.9:1".parse().unwrap()),
            "a multicast group is open to all"
        );
    }
}
