//! UDP socket set-up: QoS marking, multicast behaviour and the source address, all applied
//! once before streaming (socket2 for the options, libc where socket2 has no call).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::{Config, MulticastIf};

/// The socket options of `Config`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketOptions {
    /// DiffServ code point (RFC 2474), written as the top six bits of IP_TOS / IPV6_TCLASS.
    pub dscp: u8,
    pub so_priority: u8,
    pub multicast_ttl: u8,
    pub multicast_if: Option<MulticastIf>,
    pub multicast_loop: bool,
    pub bind: Option<SocketAddr>,
}

impl Default for SocketOptions {
    /// The documented defaults of the RTPMIC_* keys (EF, priority 6, TTL 16, no loop).
    fn default() -> SocketOptions {
        SocketOptions {
            dscp: 46,
            so_priority: 6,
            multicast_ttl: 16,
            multicast_if: None,
            multicast_loop: false,
            bind: None,
        }
    }
}

impl SocketOptions {
    pub fn from_config(c: &Config) -> SocketOptions {
        SocketOptions {
            dscp: c.dscp,
            so_priority: c.so_priority,
            multicast_ttl: c.multicast_ttl,
            multicast_if: c.multicast_if.clone(),
            multicast_loop: c.multicast_loop,
            bind: c.bind,
        }
    }
}

/// A socket option that could not be applied, named by the key that asked for it.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {what}: {source}")]
pub struct SocketError {
    pub key: &'static str,
    pub what: &'static str,
    pub source: io::Error,
}

fn ctx(key: &'static str, what: &'static str) -> impl FnOnce(io::Error) -> SocketError {
    move |source| SocketError { key, what, source }
}

/// RFC 2474 §3: the DSCP is the upper six bits of the IPv4 TOS / IPv6 traffic class octet.
fn set_dscp_on(s: &Socket, ipv4: bool, dscp: u8) -> io::Result<()> {
    let tos = u32::from(dscp) << 2;
    if ipv4 {
        s.set_tos_v4(tos)
    } else {
        s.set_tclass_v6(tos)
    }
}

/// Changes the DSCP of an open socket (either family); for SIGHUP, while the stream runs.
pub fn set_dscp(s: &UdpSocket, dscp: u8) -> io::Result<()> {
    let ipv4 = s.local_addr()?.is_ipv4();
    set_dscp_on(&socket2::SockRef::from(s), ipv4, dscp)
}

/// Opens a non-blocking UDP socket of one address family with every option applied, bound to
/// `RTPMIC_BIND` (when it is of this family) or to any address and port.
pub fn open(ipv4: bool, o: &SocketOptions) -> Result<UdpSocket, SocketError> {
    open_on(ipv4, o, bind_address(ipv4, o))
}

/// Where a socket of one family binds: `RTPMIC_BIND` when it is of this family, else any
/// address and port.
fn bind_address(ipv4: bool, o: &SocketOptions) -> SocketAddr {
    match o.bind {
        Some(b) if b.is_ipv4() == ipv4 => b,
        _ if ipv4 => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        _ => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

/// The RTP and the RTCP socket of one address family.
pub struct SocketPair {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

/// Tries at finding a free even/odd port pair before settling for two unrelated ports.
const PAIR_TRIES: usize = 32;

fn port_of(s: &UdpSocket) -> u16 {
    s.local_addr().map_or(0, |a| a.port())
}

/// Opens the RTP and RTCP sockets of one family on adjacent ports, RTP on the even one and
/// RTCP on the next (RFC 3550 §11), so that receivers that send their reports to our RTP
/// source port + 1 reach us.
///
/// * `RTPMIC_BIND` with a port P (of this family): RTP on P, RTCP on P + 1; either failing to
///   bind is an error naming the key, as the user asked for those ports.
/// * Otherwise (no bind address, port 0, or a bind address of the other family): the kernel
///   picks an ephemeral port; an even one becomes RTP with its successor for RTCP, an odd one
///   becomes RTCP with its predecessor for RTP. When the partner port is taken, both are
///   closed and the kernel asked again, at most [`PAIR_TRIES`] times; after that the two
///   sockets take any ports (rtpmic still works: receivers that answer to where our reports
///   come from, as RFC 3550 §6 receivers and `rtpmic probe` do, still reach it).
/// * `prefer`: a port pair to try first (IPv6 takes the pair IPv4 got, when free).
pub fn open_pair(ipv4: bool, o: &SocketOptions, prefer: Option<u16>) -> Result<SocketPair, SocketError> {
    let base = bind_address(ipv4, o);
    let at = |port: u16| open_on(ipv4, o, with_port(base, port));
    if base.port() != 0 {
        return Ok(SocketPair {
            rtp: at(base.port())?,
            rtcp: at(base.port().wrapping_add(1))?,
        });
    }
    if let Some(p) = prefer.filter(|p| p.is_multiple_of(2) && *p < u16::MAX) {
        if let (Ok(rtp), Ok(rtcp)) = (at(p), at(p + 1)) {
            return Ok(SocketPair { rtp, rtcp });
        }
    }
    for _ in 0..PAIR_TRIES {
        let first = at(0)?;
        let p = port_of(&first);
        if p == 0 {
            break;
        }
        // Any failure to bind the partner (taken, or outside what we may bind) means: ask
        // the kernel for another port.
        if p.is_multiple_of(2) {
            if let Some(rtcp) = p.checked_add(1).and_then(|q| at(q).ok()) {
                return Ok(SocketPair { rtp: first, rtcp });
            }
        } else if let Ok(rtp) = at(p - 1) {
            return Ok(SocketPair { rtp, rtcp: first });
        }
    }
    Ok(SocketPair {
        rtp: at(0)?,
        rtcp: at(0)?,
    })
}

/// `a` on another port; an IPv6 zone (scope id) stays.
fn with_port(mut a: SocketAddr, port: u16) -> SocketAddr {
    a.set_port(port);
    a
}

/// The RTP and RTCP sockets of both families (IPv6 may be absent from the kernel).
pub struct StreamSockets {
    pub v4: SocketPair,
    pub v6: Option<SocketPair>,
}

/// Opens [`open_pair`] for IPv4, then for IPv6 (preferring the same ports). With `mux`
/// (RFC 5761, `RTPMIC_RTCP_MUX=on`) RTCP shares the RTP port: each family's RTCP socket is
/// a clone of its RTP socket, so our reports leave from the RTP port and receivers' reports
/// sent back to it are read.
pub fn open_stream_sockets(o: &SocketOptions, mux: bool) -> Result<StreamSockets, SocketError> {
    let pair = |ipv4: bool, prefer: Option<u16>| {
        if !mux {
            return open_pair(ipv4, o, prefer);
        }
        let rtp = open(ipv4, o)?;
        let rtcp = rtp.try_clone().map_err(ctx("RTPMIC_RTCP_MUX", "dup"))?;
        Ok(SocketPair { rtp, rtcp })
    };
    let v4 = pair(true, None)?;
    let v6 = match pair(false, Some(port_of(&v4.rtp))) {
        Ok(p) => Some(p),
        Err(e) if e.source.raw_os_error() == Some(libc::EAFNOSUPPORT) => None,
        Err(e) => return Err(e),
    };
    Ok(StreamSockets { v4, v6 })
}

/// Opens a non-blocking UDP socket of one family with every option applied, bound to `bind`.
fn open_on(ipv4: bool, o: &SocketOptions, bind: SocketAddr) -> Result<UdpSocket, SocketError> {
    let domain = if ipv4 { Domain::IPV4 } else { Domain::IPV6 };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(ctx("RTPMIC_DEST", "socket"))?;
    set_dscp_on(&s, ipv4, o.dscp).map_err(ctx("RTPMIC_DSCP", if ipv4 { "IP_TOS" } else { "IPV6_TCLASS" }))?;
    if ipv4 {
        s.set_multicast_ttl_v4(u32::from(o.multicast_ttl))
            .map_err(ctx("RTPMIC_MULTICAST_TTL", "IP_MULTICAST_TTL"))?;
        s.set_multicast_loop_v4(o.multicast_loop)
            .map_err(ctx("RTPMIC_MULTICAST_LOOP", "IP_MULTICAST_LOOP"))?;
    } else {
        s.set_only_v6(true).map_err(ctx("RTPMIC_DEST", "IPV6_V6ONLY"))?;
        s.set_multicast_hops_v6(u32::from(o.multicast_ttl))
            .map_err(ctx("RTPMIC_MULTICAST_TTL", "IPV6_MULTICAST_HOPS"))?;
        s.set_multicast_loop_v6(o.multicast_loop)
            .map_err(ctx("RTPMIC_MULTICAST_LOOP", "IPV6_MULTICAST_LOOP"))?;
    }
    s.set_priority(u32::from(o.so_priority))
        .map_err(ctx("RTPMIC_SO_PRIORITY", "SO_PRIORITY"))?;
    if let Some(mif) = &o.multicast_if {
        set_multicast_if(&s, ipv4, mif)?;
    }
    s.bind(&bind.into()).map_err(ctx("RTPMIC_BIND", "bind"))?;
    s.set_nonblocking(true).map_err(ctx("RTPMIC_DEST", "O_NONBLOCK"))?;
    Ok(s.into())
}

fn set_multicast_if(s: &Socket, ipv4: bool, mif: &MulticastIf) -> Result<(), SocketError> {
    let key = "RTPMIC_MULTICAST_IF";
    match (mif, ipv4) {
        (MulticastIf::Addr(IpAddr::V4(a)), true) => s.set_multicast_if_v4(a).map_err(ctx(key, "IP_MULTICAST_IF")),
        (MulticastIf::Name(name), true) => {
            let index = if_index(name)?;
            // socket2 takes only an address for IPv4; ip_mreqn selects by interface index.
            let mreq = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr { s_addr: 0 },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: index as i32,
            };
            // SAFETY: valid ip_mreqn for IP_MULTICAST_IF on our socket.
            let rc = unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_MULTICAST_IF,
                    (&mreq as *const libc::ip_mreqn).cast(),
                    std::mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
                )
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(SocketError {
                    key,
                    what: "IP_MULTICAST_IF",
                    source: io::Error::last_os_error(),
                })
            }
        }
        (MulticastIf::Name(name), false) => s
            .set_multicast_if_v6(if_index(name)?)
            .map_err(ctx(key, "IPV6_MULTICAST_IF")),
        // An address of the other family, or an IPv6 address (IPv6 selects by interface only):
        // this socket keeps the routing table's choice.
        _ => Ok(()),
    }
}

fn if_index(name: &str) -> Result<u32, SocketError> {
    let c = std::ffi::CString::new(name).map_err(|_| SocketError {
        key: "RTPMIC_MULTICAST_IF",
        what: "interface name",
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })?;
    // SAFETY: NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(SocketError {
            key: "RTPMIC_MULTICAST_IF",
            what: "no such interface",
            source: io::Error::last_os_error(),
        });
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SocketOptions {
        SocketOptions::default()
    }

    fn getsockopt_int(s: &UdpSocket, level: i32, name: i32) -> i32 {
        let mut v: i32 = 0;
        let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
        // SAFETY: valid out pointers for an int option.
        let rc = unsafe { libc::getsockopt(s.as_raw_fd(), level, name, (&mut v as *mut i32).cast(), &mut len) };
        assert_eq!(rc, 0);
        v
    }

    #[test]
    fn options_land_on_both_families() {
        let mut o = opts();
        o.multicast_if = Some(MulticastIf::Name("lo".into()));
        let v4 = open(true, &o).unwrap();
        assert_eq!(getsockopt_int(&v4, libc::IPPROTO_IP, libc::IP_TOS), 46 << 2);
        assert_eq!(getsockopt_int(&v4, libc::SOL_SOCKET, libc::SO_PRIORITY), 6);
        assert_eq!(getsockopt_int(&v4, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL) & 0xff, 16);
        let v6 = open(false, &o).unwrap();
        assert_eq!(getsockopt_int(&v6, libc::IPPROTO_IPV6, libc::IPV6_TCLASS), 46 << 2);
        assert_eq!(getsockopt_int(&v6, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS), 16);
    }

    #[test]
    fn rtp_and_rtcp_sockets_take_an_even_odd_port_pair() {
        let o = opts();
        let all = open_stream_sockets(&o, false).unwrap();
        for pair in std::iter::once(&all.v4).chain(all.v6.as_ref()) {
            let (rtp, rtcp) = (port_of(&pair.rtp), port_of(&pair.rtcp));
            assert!(rtp.is_multiple_of(2) && rtcp == rtp + 1, "{rtp} {rtcp}");
        }
        // A taken partner port is skipped: hold the RTCP port of a pair, ask for that pair.
        let held = all.v4.rtcp;
        let taken = port_of(&all.v4.rtp);
        drop(all.v4.rtp);
        let again = open_pair(true, &o, Some(taken)).unwrap();
        assert_ne!(port_of(&again.rtp), taken);
        assert_eq!(port_of(&again.rtcp), port_of(&again.rtp) + 1);
        drop(held);
        // RTPMIC_BIND's port is RTP, its successor RTCP; the other family still pairs.
        let free = open_pair(true, &o, None).unwrap();
        let p = port_of(&free.rtp);
        drop(free);
        let mut bound = opts();
        bound.bind = Some(SocketAddr::new("127.0.0.1".parse().unwrap(), p));
        let all = open_stream_sockets(&bound, false).unwrap();
        assert_eq!((port_of(&all.v4.rtp), port_of(&all.v4.rtcp)), (p, p + 1));
        assert_eq!(
            all.v4.rtp.local_addr().unwrap().ip(),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        let v6 = all.v6.unwrap();
        assert_eq!(port_of(&v6.rtcp), port_of(&v6.rtp) + 1);
        // The bound ports are taken now: binding them again is an error naming the key.
        assert_eq!(open_pair(true, &bound, None).err().unwrap().key, "RTPMIC_BIND");
        // rtcp-mux: one port per family, RTCP on it.
        let muxed = open_stream_sockets(&o, true).unwrap();
        assert_eq!(port_of(&muxed.v4.rtp), port_of(&muxed.v4.rtcp));
    }

    #[test]
    fn a_pair_keeps_the_zone_of_a_link_local_bind_address() {
        let a: SocketAddr = "[fe80::1%7]:5000".parse().unwrap();
        assert_eq!(with_port(a, 5001).to_string(), "[fe80::1%7]:5001");
    }

    #[test]
    fn bind_and_bad_interface_are_reported_with_their_key() {
        let mut o = opts();
        o.bind = Some("127.0.0.1:0".parse().unwrap());
        let s = open(true, &o).unwrap();
        assert_eq!(s.local_addr().unwrap().ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
        o.multicast_if = Some(MulticastIf::Name("nosuchif0".into()));
        let e = open(true, &o).unwrap_err();
        assert_eq!(e.key, "RTPMIC_MULTICAST_IF");
        o.multicast_if = None;
        o.bind = Some("192.0.2.77:0".parse().unwrap());
        assert_eq!(open(true, &o).unwrap_err().key, "RTPMIC_BIND");
    }
}
