//! RTCP from receivers (RFC 3550 §6.4): the `rtpmic-rtcp` thread reads the RTCP sockets, keeps
//! each receiver's latest report about our stream, and counts everything it cannot believe.
//! Not a real-time thread: it may lock, allocate and log.
//!
//! * **Sockets.** One per address family, on the port after the RTP port (RFC 3550 §11,
//!   `RTPMIC_BIND`'s port + 1, else the partner of an even ephemeral port, see
//!   [`crate::net::socket::open_pair`]; with rtcp-mux, clones of the RTP sockets, RFC 5761);
//!   sender reports leave from the same sockets. For each multicast destination (at start, or
//!   set later by SIGHUP), one more socket bound to the group's RTCP port and joined to the
//!   group, since receivers of a multicast session send their reports to the group (§6).
//! * **Whom to believe.** For unicast destinations, only datagrams from a destination's RTCP
//!   address (its RTP port + 1, or the RTP port itself with rtcp-mux) or from its RTP address
//!   (receivers that send everything from one socket, RFC 4961 symmetric RTP / RFC 5761);
//!   any other port, even of a destination's IP address, is `foreign`. With a multicast
//!   destination anyone on the group may report (§6): the table's bound and expiry below are
//!   then all that limits a forger.
//! * **SRTP.** With `RTPMIC_SRTP`, only SRTCP authenticated with the stream's key is taken
//!   (RFC 3711 §3.4, [`SrtcpInbound`]): plaintext, forged or altered datagrams are
//!   `unauthenticated`, replays `replayed`, and both dropped.
//! * **The receiver table** ([`MAX_RECEIVERS`] entries): a receiver is added at its first
//!   report and removed on BYE from its address (§6.6) or when silent for
//!   [`TIMEOUT_MULTIPLIER`] × Td (§6.3.5, [`receiver_interval_ns`]). When the table is full,
//!   a new receiver takes the place of the receiver with a single report heard longest ago
//!   (a receiver is trusted more after its second report, as §6.2.1 suggests for new SSRCs);
//!   when every entry has reported twice, the newcomer is `untracked`.
//! * Malformed, truncated, unknown or unrelated packets are counted and dropped; nothing here
//!   can panic on input. Our own SSRC coming back (multicast loop) is ignored.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use rtcp_types::{Compound, Packet, ReportBlock};
use tracing::{info, warn};

use super::rtcp_out::rtcp_addr;
use super::socket::{self, SocketError, SocketOptions};
use crate::config::{Config, MulticastIf};
use crate::rtp::rtcp::{receiver_interval_ns, TIMEOUT_MULTIPLIER};
use crate::rtp::srtp::{SrtcpInbound, SrtpError};

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

    /// Binds RTCP sockets on their own: port RTPMIC_BIND + 1 when a bind port is set, else
    /// any (the pipeline opens them paired with the RTP sockets instead).
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
    /// When its latest report arrived (monotonic time, ns).
    pub heard_ns: u64,
}

/// Counters and receiver table shared with the main thread.
#[derive(Default)]
pub struct RtcpInStats {
    /// Report blocks about our stream taken in.
    pub reports: AtomicU64,
    /// Datagrams that do not parse as (S)RTCP.
    pub malformed: AtomicU64,
    /// Datagrams from addresses we do not send to (or not from their RTCP or RTP port).
    pub foreign: AtomicU64,
    /// Valid RTCP with nothing about our SSRC (our own looped-back reports included).
    pub unrelated: AtomicU64,
    /// Under SRTP: datagrams not authenticated by the stream's key (plaintext, forged,
    /// altered).
    pub unauthenticated: AtomicU64,
    /// Under SRTP: SRTCP packets seen before (RFC 3711 §3.3.2).
    pub replayed: AtomicU64,
    /// Reports from new receivers the full table had no room for.
    pub untracked: AtomicU64,
    /// Receivers removed after falling silent (§6.3.5).
    pub expired: AtomicU64,
    pub receivers: Mutex<Vec<ReceiverState>>,
}

/// Most receivers remembered: a flood of invented SSRCs cannot grow the table further.
pub const MAX_RECEIVERS: usize = 256;

/// Reports a receiver sends before the table prefers it to a newcomer (§6.2.1: a new SSRC
/// may be held invalid until several packets carried it).
const TRUSTED_AFTER: u64 = 2;

/// Initial average compound size (§6.3.2, UDP and IP headers included): an RR with one
/// report block and an SDES CNAME of about 20 bytes.
const INITIAL_AVG_RTCP_SIZE: f64 = 100.0;

/// What the reader believes and about what.
pub struct Policy {
    pub our_ssrc: u32,
    /// Our first RTP sequence number: a report's highest sequence number minus it is how many
    /// packets the receiver expected (modulo 2^16, §6.4.1 / A.3).
    pub first_seq: u16,
    pub clock_rate: u32,
    /// The destinations' RTP addresses, whose RTCP and RTP ports reports are believed from;
    /// `None` = believe anyone (a multicast destination).
    pub allowed: Option<Vec<SocketAddr>>,
    /// RTP addresses host names resolved to later (the resolver thread adds them).
    pub learned: Learned,
    /// RTCP on the RTP port (RFC 5761): a destination's RTCP address is its RTP address.
    pub mux: bool,
    /// The session bandwidth in octets/s (RFC 3550 §6.2), for the receivers' interval.
    pub session_bw: f64,
    /// Destinations configured: the members we count besides ourselves before RTCP arrives.
    pub destinations: usize,
}

/// Destination RTP addresses learned after start, shared by the resolver and the RTCP reader.
pub type Learned = std::sync::Arc<Mutex<Vec<SocketAddr>>>;

impl Policy {
    pub fn from_config(
        config: &Config,
        our_ssrc: u32,
        first_seq: u16,
        resolved: &[Option<SocketAddr>],
        learned: Learned,
        session_bw: f64,
    ) -> Policy {
        let multicast = resolved.iter().flatten().any(|a| a.ip().is_multicast());
        Policy {
            our_ssrc,
            first_seq,
            clock_rate: config.rtp_clock_rate(),
            allowed: (!multicast).then(|| resolved.iter().flatten().copied().collect()),
            learned,
            mux: config.rtcp_mux,
            session_bw,
            destinations: config.dest.len(),
        }
    }

    /// Whether a datagram from `from` may be a destination's report: it comes from a
    /// destination's RTCP address or RTP address (IPv4-mapped IPv6 taken as IPv4).
    pub fn believes(&self, from: SocketAddr) -> bool {
        let Some(allowed) = &self.allowed else {
            return true;
        };
        let matches = |rtp: &SocketAddr| same_endpoint(from, *rtp) || same_endpoint(from, rtcp_addr(*rtp, self.mux));
        allowed.iter().any(matches) || self.learned.lock().is_ok_and(|l| l.iter().any(matches))
    }
}

/// Whether `a` and `b` are the same address and port: IPv4-mapped IPv6 taken as IPv4, an
/// IPv6 flow label or zone (scope id) not compared (a datagram's source carries no zone the
/// way a configured `fe80::1%eth0` does).
fn same_endpoint(a: SocketAddr, b: SocketAddr) -> bool {
    let (a, b) = (canonical(a), canonical(b));
    a.ip() == b.ip() && a.port() == b.port()
}

fn canonical(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(a, |v4| SocketAddr::new(IpAddr::V4(v4), a.port())),
        IpAddr::V4(_) => a,
    }
}

/// The receive side of RTCP: belief, SRTCP, parsing and the receiver table. Pure but for the
/// counters and table in the [`RtcpInStats`] it is handed; time is an argument.
pub struct Reader {
    policy: Policy,
    srtcp: Option<SrtcpInbound>,
    /// §6.3.3: the average size of the compound packets taken in, headers included.
    avg_rtcp_size: f64,
    scratch: Vec<u8>,
}

/// UDP and IPv4 header octets added to a compound's size (§6.3.3).
const UDP_IP_HEADERS: f64 = 28.0;

impl Reader {
    /// `srtcp`: the stream's SRTCP context when SRTP is on; then only SRTCP is taken.
    pub fn new(policy: Policy, srtcp: Option<SrtcpInbound>) -> Reader {
        Reader {
            policy,
            srtcp,
            avg_rtcp_size: INITIAL_AVG_RTCP_SIZE,
            scratch: Vec::with_capacity(2048),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Takes one datagram from `from`, received at NTP time `arrival_ntp` (for the round
    /// trip, §6.4.1) and monotonic time `now_ns`.
    pub fn handle(&mut self, buf: &[u8], from: SocketAddr, arrival_ntp: u64, now_ns: u64, stats: &RtcpInStats) {
        if !self.policy.believes(from) {
            stats.foreign.fetch_add(1, Relaxed);
            return;
        }
        // RFC 5761 §4: with RTP and RTCP on one port, packet types 192..=223 are RTCP; the
        // rest is RTP (ours, when a multicast group loops it back).
        if self.policy.mux && buf.get(1).is_some_and(|pt| !(192..=223).contains(pt)) {
            stats.unrelated.fetch_add(1, Relaxed);
            return;
        }
        // Our own reports (the group loops them back): not a receiver's, and under SRTP not
        // to be checked against the replay state of another source.
        if buf.get(4..8).is_some_and(|s| s == self.policy.our_ssrc.to_be_bytes()) {
            stats.unrelated.fetch_add(1, Relaxed);
            return;
        }
        let plain = match self.srtcp.as_mut() {
            None => buf,
            Some(ctx) => {
                self.scratch.clear();
                self.scratch.extend_from_slice(buf);
                match ctx.unprotect_rtcp(&mut self.scratch) {
                    Ok(n) => &self.scratch[..n],
                    Err(SrtpError::Authentication) => {
                        stats.unauthenticated.fetch_add(1, Relaxed);
                        return;
                    }
                    Err(SrtpError::Replayed { .. }) => {
                        stats.replayed.fetch_add(1, Relaxed);
                        return;
                    }
                    Err(_) => {
                        stats.malformed.fetch_add(1, Relaxed);
                        return;
                    }
                }
            }
        };
        let Ok(compound) = Compound::parse(plain) else {
            stats.malformed.fetch_add(1, Relaxed);
            return;
        };
        // Check it all before taking anything: a compound with a bad packet is malformed.
        let mut packets = Vec::new();
        for packet in compound {
            match packet {
                Ok(p) => packets.push(p),
                Err(_) => {
                    stats.malformed.fetch_add(1, Relaxed);
                    return;
                }
            }
        }
        // §6.3.3: every RTCP packet received updates the average size.
        self.avg_rtcp_size += (plain.len() as f64 + UDP_IP_HEADERS - self.avg_rtcp_size) / 16.0;
        let mut about_us = false;
        let Ok(mut table) = stats.receivers.lock() else {
            return;
        };
        for packet in packets {
            match packet {
                Packet::Rr(rr) if rr.ssrc() != self.policy.our_ssrc => {
                    for rb in rr.report_blocks() {
                        about_us |= self.take(rr.ssrc(), &rb, from, arrival_ntp, now_ns, &mut table, stats);
                    }
                }
                Packet::Sr(sr) if sr.ssrc() != self.policy.our_ssrc => {
                    for rb in sr.report_blocks() {
                        about_us |= self.take(sr.ssrc(), &rb, from, arrival_ntp, now_ns, &mut table, stats);
                    }
                }
                Packet::Bye(bye) => {
                    // §6.6: a receiver leaves; only its own address can say so.
                    let gone: Vec<u32> = bye.ssrcs().collect();
                    let before = table.len();
                    table.retain(|r| !(gone.contains(&r.ssrc) && same_endpoint(r.from, from)));
                    about_us |= table.len() != before;
                }
                _ => {}
            }
        }
        if !about_us {
            stats.unrelated.fetch_add(1, Relaxed);
        }
    }

    /// Records a report block if it is about our SSRC.
    #[allow(clippy::too_many_arguments)]
    fn take(
        &self,
        reporter: u32,
        rb: &ReportBlock<'_>,
        from: SocketAddr,
        arrival_ntp: u64,
        now_ns: u64,
        table: &mut Vec<ReceiverState>,
        stats: &RtcpInStats,
    ) -> bool {
        let p = &self.policy;
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
            heard_ns: now_ns,
        };
        stats.reports.fetch_add(1, Relaxed);
        if !track(table, state) {
            stats.untracked.fetch_add(1, Relaxed);
        }
        true
    }

    /// §6.3.5: how long a receiver may stay silent, M × Td, with Td a receiver's
    /// deterministic interval for `members` (us included) and the average report size seen.
    pub fn timeout_ns(&self, members: usize) -> u64 {
        let td = receiver_interval_ns(self.policy.session_bw, self.avg_rtcp_size, members, 1);
        (td as f64 * TIMEOUT_MULTIPLIER) as u64
    }

    /// Removes the receivers silent for longer than [`Reader::timeout_ns`] at `now_ns`.
    /// Members are us plus the destinations or the receivers that reported more than once,
    /// whichever are more: a flood of one-report SSRCs does not stretch the timeout, and
    /// nothing can stretch it past [`MAX_RECEIVERS`]' worth.
    pub fn expire(&self, now_ns: u64, stats: &RtcpInStats) {
        let Ok(mut table) = stats.receivers.lock() else {
            return;
        };
        let trusted = table.iter().filter(|r| r.reports >= TRUSTED_AFTER).count();
        let timeout = self.timeout_ns(1 + self.policy.destinations.max(trusted));
        let before = table.len();
        table.retain(|r| now_ns.saturating_sub(r.heard_ns) <= timeout);
        stats.expired.fetch_add((before - table.len()) as u64, Relaxed);
    }
}

/// Puts `state` into the table (see the module docs); false when there was no room.
fn track(table: &mut Vec<ReceiverState>, state: ReceiverState) -> bool {
    if let Some(known) = table.iter_mut().find(|r| r.ssrc == state.ssrc) {
        let reports = known.reports.saturating_add(1);
        *known = ReceiverState { reports, ..state };
        return true;
    }
    if table.len() >= MAX_RECEIVERS {
        let stalest_doubtful = table
            .iter()
            .enumerate()
            .filter(|(_, r)| r.reports < TRUSTED_AFTER)
            .min_by_key(|(_, r)| r.heard_ns)
            .map(|(i, _)| i);
        match stalest_doubtful {
            Some(i) => {
                table.swap_remove(i);
            }
            None => return false,
        }
    }
    table.push(state);
    true
}

/// A socket on a multicast group's RTCP port, joined to the group: receivers of a multicast
/// session send their reports to the group (RFC 3550 §6). Bound to the group address (only
/// its datagrams) with SO_REUSEADDR, so receivers on this host can bind the port too; joined
/// on `RTPMIC_MULTICAST_IF` or the routing table's choice.
pub fn open_group(group: SocketAddr, mif: Option<&MulticastIf>) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
    let index = |name: &str| -> std::io::Result<u32> {
        let c = std::ffi::CString::new(name).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: NUL-terminated name.
        match unsafe { libc::if_nametoindex(c.as_ptr()) } {
            0 => Err(std::io::Error::last_os_error()),
            i => Ok(i),
        }
    };
    let s = match group.ip() {
        IpAddr::V4(g) => {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            s.set_reuse_address(true)?;
            s.bind(&group.into())?;
            let on = match mif {
                Some(MulticastIf::Name(n)) => InterfaceIndexOrAddress::Index(index(n)?),
                Some(MulticastIf::Addr(IpAddr::V4(a))) => InterfaceIndexOrAddress::Address(*a),
                _ => InterfaceIndexOrAddress::Address(Ipv4Addr::UNSPECIFIED),
            };
            s.join_multicast_v4_n(&g, &on)?;
            s
        }
        IpAddr::V6(g) => {
            let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
            s.set_reuse_address(true)?;
            s.set_only_v6(true)?;
            // The group's own zone (`[ff02::1%eth0]`), else RTPMIC_MULTICAST_IF's interface.
            let zone = match group {
                SocketAddr::V6(g) => g.scope_id(),
                SocketAddr::V4(_) => 0,
            };
            let ifindex = match mif {
                _ if zone != 0 => zone,
                Some(MulticastIf::Name(n)) => index(n)?,
                _ => 0,
            };
            s.bind(&SocketAddr::V6(std::net::SocketAddrV6::new(g, group.port(), 0, ifindex)).into())?;
            s.join_multicast_v6(&g, ifindex)?;
            s
        }
    };
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// The RTCP addresses of the multicast destinations among `resolved` (each once).
pub fn multicast_rtcp_groups(resolved: &[Option<SocketAddr>], mux: bool) -> Vec<SocketAddr> {
    let mut seen = HashSet::new();
    resolved
        .iter()
        .flatten()
        .filter(|a| a.ip().is_multicast())
        .map(|a| rtcp_addr(*a, mux))
        .filter(|a| seen.insert(*a))
        .collect()
}

/// How often the reader expires silent receivers and looks for new multicast groups.
const TICK_NS: u64 = 1_000_000_000;

/// What the `rtpmic-rtcp` thread listens on besides the RTCP sockets.
pub struct Groups {
    /// The multicast destinations' RTCP addresses.
    pub addrs: Vec<SocketAddr>,
    pub multicast_if: Option<MulticastIf>,
}

/// Body of the `rtpmic-rtcp` thread: joins the multicast groups, then reads every socket
/// until `stop`. Once a second it expires silent receivers and joins the group of a
/// multicast destination the resolver learned since (a new `RTPMIC_DEST` on SIGHUP).
pub fn run(sockets: RtcpSockets, groups: Groups, mut reader: Reader, stats: &RtcpInStats, stop: &AtomicBool) {
    let mut socks: Vec<UdpSocket> = std::iter::once(sockets.v4).chain(sockets.v6).collect();
    // Every group tried, joined or not: a group that cannot be joined is reported once.
    let mut tried = HashSet::new();
    let join = |g: SocketAddr, socks: &mut Vec<UdpSocket>, tried: &mut HashSet<SocketAddr>| {
        if !tried.insert(g) {
            return;
        }
        match open_group(g, groups.multicast_if.as_ref()) {
            Ok(s) => {
                info!(event = "rtcp_group", "listening for receivers' reports on {g}");
                socks.push(s);
            }
            Err(e) => warn!(
                event = "rtcp_group",
                "cannot listen for receivers' reports on {g}: {e}; reports sent to the group are not heard"
            ),
        }
    };
    for g in &groups.addrs {
        join(*g, &mut socks, &mut tried);
    }
    let pollfds = |socks: &[UdpSocket]| -> Vec<libc::pollfd> {
        socks
            .iter()
            .map(|s| libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect()
    };
    let mut pfds = pollfds(&socks);
    let mut buf = [0u8; 2048];
    let mut next_tick = crate::rt::now_ns() + TICK_NS;
    while !stop.load(Relaxed) {
        // SAFETY: valid pollfd array of the right length.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 200) };
        if n > 0 {
            for s in &socks {
                // Non-blocking: drain what is there.
                while let Ok((len, from)) = s.recv_from(&mut buf) {
                    let now = crate::rt::now_ns();
                    reader.handle(&buf[..len], from, crate::rtp::rtcp::ntp_now(), now, stats);
                }
            }
        }
        let now = crate::rt::now_ns();
        if now >= next_tick {
            next_tick = now + TICK_NS;
            reader.expire(now, stats);
            let learned: Vec<SocketAddr> = reader
                .policy()
                .learned
                .lock()
                .map(|l| l.iter().filter(|a| a.ip().is_multicast()).copied().collect())
                .unwrap_or_default();
            let before = socks.len();
            for a in learned {
                join(rtcp_addr(a, reader.policy().mux), &mut socks, &mut tried);
            }
            if socks.len() != before {
                pfds = pollfds(&socks);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcp_types::{Bye, ReceiverReport, RtcpPacketWriterExt};

    const S: u64 = 1_000_000_000;

    fn policy() -> Policy {
        Policy {
            our_ssrc: 0xabc,
            first_seq: 990,
            clock_rate: 48_000,
            allowed: Some(vec!["10.0.0.2:5004".parse().unwrap()]),
            learned: Learned::default(),
            mux: false,
            session_bw: 6000.0,
            destinations: 1,
        }
    }

    fn reader() -> Reader {
        Reader::new(policy(), None)
    }

    fn open_reader() -> Reader {
        Reader::new(
            Policy {
                allowed: None,
                ..policy()
            },
            None,
        )
    }

    fn rr_from(reporter: u32, about: u32, lost: u8, lsr: u32, dlsr: u32) -> Vec<u8> {
        let rb = ReportBlock::builder(about)
            .fraction_lost(lost)
            .cumulative_lost(0x00ff_fffe)
            .extended_sequence_number(1000)
            .interarrival_jitter(480)
            .last_sender_report_timestamp(lsr)
            .delay_since_last_sender_report_timestamp(dlsr);
        let b = ReceiverReport::builder(reporter).add_report_block(rb);
        let mut buf = vec![0u8; 64];
        let n = b.write_into(&mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    fn rr(about: u32, lsr: u32, dlsr: u32) -> Vec<u8> {
        rr_from(0x77, about, 64, lsr, dlsr)
    }

    fn counts(s: &RtcpInStats) -> [u64; 4] {
        [&s.reports, &s.malformed, &s.foreign, &s.unrelated].map(|c| c.load(Relaxed))
    }

    const RTCP: &str = "10.0.0.2:5005";

    #[test]
    fn reports_about_us_fill_the_table() {
        let s = RtcpInStats::default();
        let from: SocketAddr = RTCP.parse().unwrap();
        // Arrival 1.5 s after an SR whose middle 32 bits were 0x0001_0000; DLSR 0.5 s.
        let arrival = (0x0001_8000u64) << 16;
        reader().handle(&rr(0xabc, 0x0001_0000, 0x8000), from, arrival, 7, &s);
        let t = s.receivers.lock().unwrap();
        assert_eq!(t.len(), 1);
        let r = &t[0];
        assert_eq!((r.ssrc, r.cumulative_lost, r.expected, r.heard_ns), (0x77, -2, 11, 7));
        assert!((r.fraction_lost - 0.25).abs() < 1e-9 && (r.jitter_ms - 10.0).abs() < 1e-9);
        assert!((r.rtt_ms.unwrap() - 0.0).abs() < 1e-6, "{:?}", r.rtt_ms);
        assert_eq!(s.reports.load(Relaxed), 1);
    }

    #[test]
    fn only_a_destinations_rtcp_or_rtp_port_is_believed() {
        let s = RtcpInStats::default();
        let mut r = reader();
        for from in ["10.0.0.2:5005", "10.0.0.2:5004", "[::ffff:10.0.0.2]:5005"] {
            r.handle(&rr(0xabc, 0, 0), from.parse().unwrap(), 0, 0, &s);
        }
        assert_eq!(counts(&s), [3, 0, 0, 0]);
        for from in ["10.0.0.2:5006", "10.0.0.2:40000", "10.0.0.9:5005", "[::1]:5005"] {
            r.handle(&rr(0xabc, 0, 0), from.parse().unwrap(), 0, 0, &s);
        }
        assert_eq!(counts(&s), [3, 0, 4, 0]);
        // A link-local destination with a zone; the datagram's source has its own scope id
        // and a flow label.
        let s = RtcpInStats::default();
        let mut zoned = Reader::new(
            Policy {
                allowed: Some(vec!["[fe80::1%2]:5004".parse().unwrap()]),
                ..policy()
            },
            None,
        );
        let from = std::net::SocketAddrV6::new("fe80::1".parse().unwrap(), 5005, 0x1234, 0);
        zoned.handle(&rr(0xabc, 0, 0), from.into(), 0, 0, &s);
        assert_eq!(counts(&s), [1, 0, 0, 0]);
        // With rtcp-mux the RTCP address is the RTP address.
        let mut mux = Reader::new(Policy { mux: true, ..policy() }, None);
        let s = RtcpInStats::default();
        mux.handle(&rr(0xabc, 0, 0), "10.0.0.2:5004".parse().unwrap(), 0, 0, &s);
        mux.handle(&rr(0xabc, 0, 0), "10.0.0.2:5005".parse().unwrap(), 0, 0, &s);
        assert_eq!(counts(&s), [1, 0, 1, 0]);
    }

    #[test]
    fn foreign_garbage_and_unrelated_are_counted_not_believed() {
        let s = RtcpInStats::default();
        let mut r = reader();
        r.handle(&rr(0xabc, 0, 0), "10.9.9.9:5005".parse().unwrap(), 0, 0, &s);
        r.handle(b"\x00garbage", RTCP.parse().unwrap(), 0, 0, &s);
        r.handle(&[], RTCP.parse().unwrap(), 0, 0, &s);
        r.handle(&rr(0xabc, 0, 0)[..10], RTCP.parse().unwrap(), 0, 0, &s);
        r.handle(&rr(0x999, 0, 0), RTCP.parse().unwrap(), 0, 0, &s);
        assert_eq!(counts(&s), [0, 3, 1, 1]);
        assert!(s.receivers.lock().unwrap().is_empty());
    }

    #[test]
    fn our_own_reports_coming_back_are_ignored() {
        let s = RtcpInStats::default();
        let mut r = open_reader();
        // An RR claiming to be from our SSRC, about our SSRC: our own, looped back.
        r.handle(&rr_from(0xabc, 0xabc, 0, 0, 0), RTCP.parse().unwrap(), 0, 0, &s);
        assert_eq!(counts(&s), [0, 0, 0, 1]);
        assert!(s.receivers.lock().unwrap().is_empty());
        // With rtcp-mux, our RTP looped back is not RTCP (RFC 5761 §4).
        let mut mux = Reader::new(
            Policy {
                mux: true,
                allowed: None,
                ..policy()
            },
            None,
        );
        mux.handle(
            &[0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0x0a, 0xbc],
            RTCP.parse().unwrap(),
            0,
            0,
            &s,
        );
        assert_eq!(counts(&s), [0, 0, 0, 2]);
    }

    #[test]
    fn addresses_learned_later_are_believed() {
        let s = RtcpInStats::default();
        let mut r = reader();
        let from: SocketAddr = "10.9.9.9:6001".parse().unwrap();
        r.handle(&rr(0xabc, 0, 0), from, 0, 0, &s);
        assert_eq!(s.foreign.load(Relaxed), 1);
        r.policy()
            .learned
            .lock()
            .unwrap()
            .push("10.9.9.9:6000".parse().unwrap());
        r.handle(&rr(0xabc, 0, 0), from, 0, 0, &s);
        assert_eq!((s.foreign.load(Relaxed), s.reports.load(Relaxed)), (1, 1));
    }

    #[test]
    fn bye_removes_a_receiver_only_from_its_own_address() {
        let s = RtcpInStats::default();
        let mut r = open_reader();
        r.handle(&rr(0xabc, 0, 0), RTCP.parse().unwrap(), 0, 0, &s);
        let mut bye = vec![0u8; 32];
        let n = Bye::builder().add_source(0x77).write_into(&mut bye).unwrap();
        bye.truncate(n);
        r.handle(&bye, "10.0.0.66:5005".parse().unwrap(), 0, 0, &s);
        assert_eq!(s.receivers.lock().unwrap().len(), 1, "a BYE from elsewhere");
        r.handle(&bye, RTCP.parse().unwrap(), 0, 0, &s);
        assert!(s.receivers.lock().unwrap().is_empty());
    }

    #[test]
    fn silent_receivers_expire_after_five_intervals() {
        let s = RtcpInStats::default();
        let mut r = open_reader();
        // 32 kb/s Opus: Td is the 5 s minimum, so the timeout is 25 s.
        assert_eq!(r.timeout_ns(2), 25 * S);
        r.handle(&rr_from(1, 0xabc, 0, 0, 0), RTCP.parse().unwrap(), 0, 0, &s);
        r.handle(&rr_from(2, 0xabc, 0, 0, 0), RTCP.parse().unwrap(), 0, 10 * S, &s);
        r.expire(25 * S, &s);
        assert_eq!(s.receivers.lock().unwrap().len(), 2);
        r.expire(25 * S + 1, &s);
        assert_eq!(s.receivers.lock().unwrap()[0].ssrc, 2);
        // A report keeps a receiver alive.
        r.handle(&rr_from(2, 0xabc, 0, 0, 0), RTCP.parse().unwrap(), 0, 30 * S, &s);
        r.expire(50 * S, &s);
        assert_eq!(s.receivers.lock().unwrap().len(), 1);
        r.expire(55 * S + 1, &s);
        assert!(s.receivers.lock().unwrap().is_empty());
        assert_eq!(s.expired.load(Relaxed), 2);
        // A big session reports less often, and times out later (§6.3.1).
        assert!(r.timeout_ns(200) > 25 * S);
    }

    #[test]
    fn a_flood_of_invented_receivers_cannot_push_out_known_ones() {
        let s = RtcpInStats::default();
        let mut r = open_reader();
        let real: SocketAddr = RTCP.parse().unwrap();
        // The real receiver has reported twice.
        for t in [0, 5 * S] {
            r.handle(&rr_from(0x7777, 0xabc, 0, 0, 0), real, 0, t, &s);
        }
        // 5000 forged receivers, one report each, from anywhere on the group.
        for i in 0..5000u32 {
            let from = SocketAddr::new("10.1.0.1".parse().unwrap(), 1024 + (i % 60000) as u16);
            r.handle(
                &rr_from(0x1000_0000 + i, 0xabc, 255, 0, 0),
                from,
                0,
                6 * S + u64::from(i),
                &s,
            );
        }
        {
            let t = s.receivers.lock().unwrap();
            assert_eq!(t.len(), MAX_RECEIVERS);
            assert!(t.iter().any(|x| x.ssrc == 0x7777), "the known receiver stays");
            // The newest forgers are the ones kept (each took the place of an older one).
            assert!(t.iter().any(|x| x.ssrc == 0x1000_0000 + 4999));
        }
        assert_eq!(s.untracked.load(Relaxed), 0);
        // The real receiver's next report still updates its entry; a receiver new after the
        // flood still finds room among the doubtful entries.
        r.handle(&rr_from(0x7777, 0xabc, 0, 0, 0), real, 0, 7 * S, &s);
        r.handle(&rr_from(0x8888, 0xabc, 0, 0, 0), real, 0, 7 * S, &s);
        let t = s.receivers.lock().unwrap();
        assert_eq!(t.iter().find(|x| x.ssrc == 0x7777).unwrap().reports, 3);
        assert!(t.iter().any(|x| x.ssrc == 0x8888));
        drop(t);
        // Once the forgers fall silent they expire; the real receiver, reporting, stays.
        r.handle(&rr_from(0x7777, 0xabc, 0, 0, 0), real, 0, 30 * S, &s);
        r.expire(34 * S, &s);
        let t = s.receivers.lock().unwrap();
        assert_eq!(t.iter().map(|x| x.ssrc).collect::<Vec<_>>(), [0x7777]);
    }

    #[test]
    fn a_table_of_trusted_receivers_leaves_newcomers_untracked() {
        let s = RtcpInStats::default();
        let mut r = open_reader();
        for round in 0..2 {
            for i in 0..MAX_RECEIVERS as u32 {
                r.handle(&rr_from(i + 1, 0xabc, 0, 0, 0), RTCP.parse().unwrap(), 0, round, &s);
            }
        }
        r.handle(&rr_from(0xffff, 0xabc, 0, 0, 0), RTCP.parse().unwrap(), 0, 2, &s);
        assert_eq!(s.untracked.load(Relaxed), 1);
        assert_eq!(s.reports.load(Relaxed), 2 * MAX_RECEIVERS as u64 + 1);
        assert!(!s.receivers.lock().unwrap().iter().any(|x| x.ssrc == 0xffff));
    }

    #[test]
    fn under_srtp_only_authenticated_reports_count() {
        use crate::rtp::srtp::{MasterKey, Profile, SrtpContext};
        let key = MasterKey::random().unwrap();
        let s = RtcpInStats::default();
        let mut r = Reader::new(policy(), Some(SrtcpInbound::new(Profile::AesCm128HmacSha1_80, &key)));
        let from: SocketAddr = RTCP.parse().unwrap();
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, 0x77);
        let plain = rr(0xabc, 0, 0);
        let mut buf = plain.clone();
        buf.resize(plain.len() + 14, 0);
        let n = ctx.protect_rtcp(&mut buf, plain.len()).unwrap();
        r.handle(&buf[..n], from, 0, 0, &s);
        r.handle(&buf[..n], from, 0, 0, &s);
        r.handle(&plain, from, 0, 0, &s);
        r.handle(b"\x80", from, 0, 0, &s);
        assert_eq!(counts(&s), [1, 1, 0, 0]);
        assert_eq!((s.unauthenticated.load(Relaxed), s.replayed.load(Relaxed)), (1, 1));
        assert_eq!(s.receivers.lock().unwrap()[0].ssrc, 0x77);
    }

    #[test]
    fn multicast_groups_are_listed_once_with_their_rtcp_port() {
        let resolved = [
            Some("239.1.2.3:5004".parse().unwrap()),
            Some("10.0.0.1:5004".parse().unwrap()),
            None,
            Some("239.1.2.3:5004".parse().unwrap()),
            Some("[ff15::7]:6000".parse().unwrap()),
        ];
        let g = multicast_rtcp_groups(&resolved, false);
        assert_eq!(
            g,
            [
                "239.1.2.3:5005".parse().unwrap(),
                "[ff15::7]:6001".parse::<SocketAddr>().unwrap()
            ]
        );
        assert_eq!(multicast_rtcp_groups(&resolved, true)[0].port(), 5004);
    }

    #[test]
    fn random_bytes_never_panic() {
        let s = RtcpInStats::default();
        let mut p = open_reader();
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
            p.handle(&buf, RTCP.parse().unwrap(), 0, len as u64, &s);
        }
        let counted = s.malformed.load(Relaxed) + s.unrelated.load(Relaxed) + s.reports.load(Relaxed);
        assert!(counted >= 1990, "every datagram is accounted for: {counted}");
    }
}
