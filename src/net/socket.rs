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

/// Opens a non-blocking UDP socket of one address family with every option applied.
pub fn open(ipv4: bool, o: &SocketOptions) -> Result<UdpSocket, SocketError> {
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
    let bind = match o.bind {
        Some(b) if b.is_ipv4() == ipv4 => b,
        _ if ipv4 => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        _ => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
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
