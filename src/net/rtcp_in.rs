//! RTCP from receivers (RFC 3550 §6.4): the `rtpmic-rtcp` thread reads the RTCP sockets, keeps
//! each receiver's latest report about our stream, and counts everything it cannot believe.
//!
//! * Sockets: one per address family, bound to the RTCP port (RTPMIC_BIND's port + 1, else
//!   any); sender reports leave from the same sockets, so receivers that answer to the source
//!   of our RTCP (symmetric RTCP, RFC 4961) reach us.
//! * Belief: only packets from a configured destination's address are taken, unless a
//!   destination is a multicast group (then anyone on the group may report).
//! * Malformed, truncated, unknown or foreign packets are counted and dropped; nothing here can
//!   panic on input. Not a real-time thread: it may lock and allocate.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use rtcp_types::{Compound, Packet, ReportBlock};

use super::socket::{self, SocketError, SocketOptions};
use crate::config::Config;

/// The RTCP sockets (IPv6 may be absent from the kernel).
pub struct RtcpSockets {
    pub v4: UdpSocket,
    pub v6: Option<UdpSocket>,
}

impl RtcpSockets {
    /// Clones of every RTCP socket (for option changes from the main thread).
    pub fn try_clone_all(&self) -> std::io::Result<Vec<UdpSocket>> {
        let mut all = vec![self.v4.try_clone()?];
        if let Some(v6) = &self.v6 {
            all.push(v6.try_clone()?);
        }
        Ok(all)
    }

    /// Binds the RTCP sockets: port RTPMIC_BIND + 1 when a bind port is set, else any.
    pub fn open(config: &Config) -> Result<RtcpSockets, SocketError> {
        let mut opts = SocketOptions::from_config(config);
        opts.bind = config.bind.map(|b| {
            // set_port keeps an IPv6 zone (scope id).
            let mut rtcp = b;
            rtcp.set_port(if b.port() == 0 { 0 } else { b.port().wrapping_add(1) });
            rtcp
        });
        let v4 = socket::open(true, &opts)?;
        let v6 = match socket::open(false, &opts) {
            Ok(s) => Some(s),
            Err(e) if e.source.raw_os_error() == Some(libc::EAFNOSUPPORT) => None,
            Err(e) => return Err(e),
        };
        Ok(RtcpSockets { v4, v6 })
    }

    /// The socket for a destination's family.
    pub fn for_addr(&self, ipv4: bool) -> Option<&UdpSocket> {
        if ipv4 {
            Some(&self.v4)
        } else {
            self.v6.as_ref()
        }
    }

    pub fn try_clone(&self) -> std::io::Result<RtcpSockets> {
        Ok(RtcpSockets {
            v4: self.v4.try_clone()?,
            v6: self.v6.as_ref().map(|s| s.try_clone()).transpose()?,
        })
    }
}

/// One receiver's latest report about our stream.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceiverState {
    pub ssrc: u32,
    pub from: SocketAddr,
    /// Fraction of packets lost since its previous report, 0..1 (§6.4.1).
    pub fraction_lost: f64,
    pub cumulative_lost: i32,
    /// Packets the receiver expected, counted from our first packet (modulo 2^16).
    pub expected: u32,
    pub jitter_ms: f64,
    /// Round-trip time from LSR/DLSR (§6.4.1), when the receiver has seen an SR.
    pub rtt_ms: Option<f64>,
    pub reports: u64,
}

/// Counters and receiver table shared with the main thread.
#[derive(Default)]
pub struct RtcpInStats {
    /// Reports about our stream taken in.
    pub reports: AtomicU64,
    /// Datagrams that do not parse as RTCP.
    pub malformed: AtomicU64,
    /// Datagrams from addresses we do not send to.
    pub foreign: AtomicU64,
    /// Valid RTCP with nothing about our SSRC.
    pub unrelated: AtomicU64,
    pub receivers: Mutex<Vec<ReceiverState>>,
}

/// Most receivers remembered (a flood of fake SSRCs cannot grow the table further).
const MAX_RECEIVERS: usize = 1024;

/// What the reader believes and about what.
pub struct Policy {
    pub our_ssrc: u32,
    /// Our first RTP sequence number: a report's highest sequence number minus it is how many
    /// packets the receiver expected (modulo 2^16, §6.4.1 / A.3).
    pub first_seq: u16,
    pub clock_rate: u32,
    /// Addresses of the destinations; `None` = believe anyone (a multicast destination).
    pub allowed: Option<Vec<IpAddr>>,
    /// Addresses host names resolved to later (the resolver thread adds them).
    pub learned: Learned,
}

/// Destination addresses learned after start, shared by the resolver and the RTCP reader.
pub type Learned = std::sync::Arc<Mutex<Vec<IpAddr>>>;

impl Policy {
    pub fn from_config(
        config: &Config,
        our_ssrc: u32,
        first_seq: u16,
        resolved: &[Option<SocketAddr>],
        learned: Learned,
    ) -> Policy {
        let multicast = resolved.iter().flatten().any(|a| a.ip().is_multicast());
        Policy {
            our_ssrc,
            first_seq,
            clock_rate: config.rtp_clock_rate(),
            allowed: (!multicast).then(|| resolved.iter().flatten().map(|a| a.ip()).collect()),
            learned,
        }
    }
}

/// Takes one datagram from `from`, received at NTP time `arrival_ntp`. Pure but for the
/// counters and table in `stats`.
pub fn handle(buf: &[u8], from: SocketAddr, arrival_ntp: u64, policy: &Policy, stats: &RtcpInStats) {
    if let Some(allowed) = &policy.allowed {
        let ip = canonical(from.ip());
        let learned = policy
            .learned
            .lock()
            .is_ok_and(|l| l.iter().any(|a| canonical(*a) == ip));
        if !learned && !allowed.iter().any(|a| canonical(*a) == ip) {
            stats.foreign.fetch_add(1, Relaxed);
            return;
        }
    }
    let Ok(compound) = Compound::parse(buf) else {
        stats.malformed.fetch_add(1, Relaxed);
        return;
    };
    let mut about_us = false;
    for packet in compound {
        let Ok(packet) = packet else {
            stats.malformed.fetch_add(1, Relaxed);
            return;
        };
        match packet {
            Packet::Rr(rr) => {
                for rb in rr.report_blocks() {
                    about_us |= take(rr.ssrc(), &rb, from, arrival_ntp, policy, stats);
                }
            }
            Packet::Sr(sr) => {
                for rb in sr.report_blocks() {
                    about_us |= take(sr.ssrc(), &rb, from, arrival_ntp, policy, stats);
                }
            }
            Packet::Bye(bye) => {
                if let Ok(mut t) = stats.receivers.lock() {
                    let gone: Vec<u32> = bye.ssrcs().collect();
                    let before = t.len();
                    t.retain(|r| !gone.contains(&r.ssrc));
                    about_us |= t.len() != before;
                }
            }
            _ => {}
        }
    }
    if !about_us {
        stats.unrelated.fetch_add(1, Relaxed);
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Records a report block if it is about our SSRC.
fn take(
    reporter: u32,
    rb: &ReportBlock<'_>,
    from: SocketAddr,
    arrival_ntp: u64,
    p: &Policy,
    stats: &RtcpInStats,
) -> bool {
    if rb.ssrc() != p.our_ssrc {
        return false;
    }
    // §6.4.1: cumulative lost is a signed 24-bit number.
    let cum = rb.cumulative_lost() & 0x00ff_ffff;
    let cumulative_lost = if cum & 0x0080_0000 != 0 {
        cum as i32 - 0x0100_0000
    } else {
        cum as i32
    };
    let lsr = rb.last_sender_report_timestamp();
    let dlsr = rb.delay_since_last_sender_report_timestamp();
    // §6.4.1: RTT = A − LSR − DLSR in units of 1/65536 s, A = middle 32 bits of arrival NTP.
    let a = (arrival_ntp >> 16) as u32;
    let rtt_ms = (lsr != 0).then(|| f64::from(a.wrapping_sub(lsr).wrapping_sub(dlsr)) * 1000.0 / 65536.0);
    let state = ReceiverState {
        ssrc: reporter,
        from,
        fraction_lost: f64::from(rb.fraction_lost()) / 256.0,
        cumulative_lost,
        expected: ((rb.extended_sequence_number() & 0xffff).wrapping_sub(u32::from(p.first_seq)) & 0xffff) + 1,
        jitter_ms: f64::from(rb.interarrival_jitter()) * 1000.0 / f64::from(p.clock_rate.max(1)),
        rtt_ms: rtt_ms.filter(|r| *r < 60_000.0),
        reports: 1,
    };
    stats.reports.fetch_add(1, Relaxed);
    if let Ok(mut t) = stats.receivers.lock() {
        match t.iter().position(|r| r.ssrc == reporter) {
            Some(i) => {
                let n = t[i].reports + 1;
                t[i] = ReceiverState { reports: n, ..state };
            }
            None if t.len() < MAX_RECEIVERS => t.push(state),
            None => {}
        }
    }
    true
}

/// Body of the `rtpmic-rtcp` thread: reads both sockets until `stop`.
pub fn run(sockets: RtcpSockets, policy: Policy, stats: &RtcpInStats, stop: &AtomicBool) {
    let socks: Vec<&UdpSocket> = std::iter::once(&sockets.v4).chain(sockets.v6.as_ref()).collect();
    let mut pfds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut buf = [0u8; 2048];
    while !stop.load(Relaxed) {
        // SAFETY: valid pollfd array of the right length.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 200) };
        if n <= 0 {
            continue;
        }
        for s in &socks {
            // Non-blocking: drain what is there.
            while let Ok((len, from)) = s.recv_from(&mut buf) {
                handle(&buf[..len], from, crate::rtp::rtcp::ntp_now(), &policy, stats);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcp_types::{ReceiverReport, RtcpPacketWriterExt};

    fn policy() -> Policy {
        Policy {
            our_ssrc: 0xabc,
            first_seq: 990,
            clock_rate: 48_000,
            allowed: Some(vec!["10.0.0.2".parse().unwrap()]),
            learned: Learned::default(),
        }
    }

    fn rr(about: u32, lsr: u32, dlsr: u32) -> Vec<u8> {
        let rb = ReportBlock::builder(about)
            .fraction_lost(64)
            .cumulative_lost(0x00ff_fffe)
            .extended_sequence_number(1000)
            .interarrival_jitter(480)
            .last_sender_report_timestamp(lsr)
            .delay_since_last_sender_report_timestamp(dlsr);
        let b = ReceiverReport::builder(0x77).add_report_block(rb);
        let mut buf = vec![0u8; 64];
        let n = b.write_into(&mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn reports_about_us_fill_the_table() {
        let s = RtcpInStats::default();
        let from: SocketAddr = "10.0.0.2:5005".parse().unwrap();
        // Arrival 1.5 s after an SR whose middle 32 bits were 0x0001_0000; DLSR 0.5 s.
        let arrival = (0x0001_8000u64) << 16;
        handle(&rr(0xabc, 0x0001_0000, 0x8000), from, arrival, &policy(), &s);
        let t = s.receivers.lock().unwrap();
        assert_eq!(t.len(), 1);
        let r = &t[0];
        assert_eq!((r.ssrc, r.cumulative_lost, r.expected), (0x77, -2, 11));
        assert!((r.fraction_lost - 0.25).abs() < 1e-9 && (r.jitter_ms - 10.0).abs() < 1e-9);
        assert!((r.rtt_ms.unwrap() - 0.0).abs() < 1e-6, "{:?}", r.rtt_ms);
        assert_eq!(s.reports.load(Relaxed), 1);
    }

    #[test]
    fn foreign_garbage_and_unrelated_are_counted_not_believed() {
        let s = RtcpInStats::default();
        handle(&rr(0xabc, 0, 0), "10.9.9.9:1".parse().unwrap(), 0, &policy(), &s);
        handle(b"\x00garbage", "10.0.0.2:1".parse().unwrap(), 0, &policy(), &s);
        handle(&[], "10.0.0.2:1".parse().unwrap(), 0, &policy(), &s);
        handle(&rr(0xabc, 0, 0)[..10], "10.0.0.2:1".parse().unwrap(), 0, &policy(), &s);
        handle(&rr(0x999, 0, 0), "10.0.0.2:1".parse().unwrap(), 0, &policy(), &s);
        assert_eq!(s.foreign.load(Relaxed), 1);
        assert_eq!(s.malformed.load(Relaxed), 3);
        assert_eq!(s.unrelated.load(Relaxed), 1);
        assert!(s.receivers.lock().unwrap().is_empty());
    }

    #[test]
    fn addresses_learned_later_are_believed() {
        let s = RtcpInStats::default();
        let p = policy();
        let from: SocketAddr = "10.9.9.9:5005".parse().unwrap();
        handle(&rr(0xabc, 0, 0), from, 0, &p, &s);
        assert_eq!(s.foreign.load(Relaxed), 1);
        p.learned.lock().unwrap().push("10.9.9.9".parse().unwrap());
        handle(&rr(0xabc, 0, 0), from, 0, &p, &s);
        assert_eq!((s.foreign.load(Relaxed), s.reports.load(Relaxed)), (1, 1));
    }

    #[test]
    fn random_bytes_never_panic() {
        let s = RtcpInStats::default();
        let p = Policy {
            allowed: None,
            ..policy()
        };
        let mut x: u64 = 0x1234_5678;
        for len in 0..2000usize {
            let buf: Vec<u8> = (0..len % 300)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            // Half of them look like RTCP v2 at first glance.
            let mut buf = buf;
            if len % 2 == 0 && !buf.is_empty() {
                buf[0] = 0x80 | (buf[0] & 0x1f);
            }
            handle(&buf, "10.0.0.2:1".parse().unwrap(), 0, &p, &s);
        }
        let counted = s.malformed.load(Relaxed) + s.unrelated.load(Relaxed) + s.reports.load(Relaxed);
        assert!(counted >= 1990, "every datagram is accounted for: {counted}");
    }
}
