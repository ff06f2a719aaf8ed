//! The `rtpmic-rtcp` thread: reads what receivers send back (RTCP receiver reports, RFC 3550
//! §6.4) and hands each datagram, with when it arrived, to the sending thread through a ring.
//! What to believe of it is the send session's decision (`crate::rtp::session::send`:
//! reports only from a peer's RTCP or RTP address, or from members of a multicast group we
//! send to; under SRTP only authenticated SRTCP). This thread only reads, and drops early
//! what no peer could have sent ([`SourceFilter`]), so a flood does not crowd real reports
//! out of the ring. Not a real-time thread: it may allocate and log.
//!
//! * **Sockets.** The stream's RTCP sockets (on the port after the RTP port, RFC 3550 §11;
//!   receivers that answer to the source of our reports reach them, RFC 4961) and its RTP
//!   sockets (with rtcp-mux, RFC 5761, RTCP comes back to the RTP port). For each multicast
//!   destination, at start or set later by SIGHUP, one more socket bound to the group's
//!   RTCP port and joined to the group: receivers of a multicast session send their reports
//!   to the group (§6).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use tracing::{info, warn};

use super::control::{InDatagram, SourceFilter, MAX_IN_DATAGRAM};
use super::resolve::MulticastGroups;
use super::sender::RtcpInCounters;
use crate::config::MulticastIf;
use crate::ring::{Producer, Pushed};

/// What the reader listens on.
pub struct Listen {
    /// Clones of the stream's sockets.
    pub sockets: Vec<UdpSocket>,
    /// The RTCP addresses of the multicast groups to join (others add those they learn).
    pub groups: MulticastGroups,
    pub multicast_if: Option<MulticastIf>,
}

/// How often the reader looks for new multicast groups.
const TICK_NS: u64 = 1_000_000_000;

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

/// Body of the `rtpmic-rtcp` thread: joins the multicast groups, then reads every socket
/// until `stop`, pushing every datagram `sources` admits into `out` (a full ring drops the
/// oldest, counted in `counters.dropped`); the others are counted as foreign, datagrams too
/// long for the ring's slots as malformed. Once a second it joins the groups the resolver
/// learned since (a new `RTPMIC_DEST` on SIGHUP).
pub fn run(
    listen: Listen,
    mut out: Producer<InDatagram>,
    sources: &SourceFilter,
    counters: &RtcpInCounters,
    stop: &AtomicBool,
) {
    let Listen {
        mut sockets,
        groups,
        multicast_if,
    } = listen;
    // Every group tried, joined or not: a group that cannot be joined is reported once.
    let mut tried = HashSet::new();
    let mut join_new = |sockets: &mut Vec<UdpSocket>| {
        let known: Vec<SocketAddr> = groups.lock().map(|g| g.clone()).unwrap_or_default();
        for g in known {
            if !tried.insert(g) {
                continue;
            }
            match open_group(g, multicast_if.as_ref()) {
                Ok(s) => {
                    info!(event = "rtcp_group", "listening for receivers' reports on {g}");
                    sockets.push(s);
                }
                Err(e) => warn!(
                    event = "rtcp_group",
                    "cannot listen for receivers' reports on {g}: {e}; reports sent to the group are not heard"
                ),
            }
        }
    };
    join_new(&mut sockets);
    let pollfds = |sockets: &[UdpSocket]| -> Vec<libc::pollfd> {
        sockets
            .iter()
            .map(|s| libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect()
    };
    let mut pfds = pollfds(&sockets);
    let mut buf = [0u8; 2048];
    let mut next_tick = crate::rt::now_ns() + TICK_NS;
    while !stop.load(Relaxed) {
        // SAFETY: valid pollfd array of the right length.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 200) };
        if n > 0 {
            for s in &sockets {
                // Non-blocking: drain what is there.
                while let Ok((len, from)) = s.recv_from(&mut buf) {
                    take(&buf[..len], from, &mut out, sources, counters);
                }
            }
        }
        let now = crate::rt::now_ns();
        if now >= next_tick {
            next_tick = now + TICK_NS;
            let before = sockets.len();
            join_new(&mut sockets);
            if sockets.len() != before {
                pfds = pollfds(&sockets);
            }
        }
    }
}

/// One datagram: counted and dropped, or handed to the sending thread.
fn take(
    datagram: &[u8],
    from: SocketAddr,
    out: &mut Producer<InDatagram>,
    sources: &SourceFilter,
    counters: &RtcpInCounters,
) {
    if !sources.admits(from) {
        counters.foreign.fetch_add(1, Relaxed);
        return;
    }
    if datagram.len() > MAX_IN_DATAGRAM {
        counters.malformed.fetch_add(1, Relaxed);
        return;
    }
    let (arrival_ns, arrival_ntp) = (crate::rt::now_ns(), crate::rtp::rtcp::ntp_now());
    let pushed = out.push(|d: &mut InDatagram| {
        d.data[..datagram.len()].copy_from_slice(datagram);
        d.len = datagram.len();
        d.from = from;
        d.arrival_ns = arrival_ns;
        d.arrival_ntp = arrival_ntp;
    });
    if pushed != Pushed::Stored {
        counters.dropped.fetch_add(1, Relaxed);
    }
}
