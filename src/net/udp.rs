//! The sendmmsg backend: every packet of a batch × every destination in one `sendmmsg` call
//! per address family, from preallocated `mmsghdr`/`iovec`/`sockaddr` arrays.
//!
//! Error policy (never blocks the pipeline): EAGAIN/ENOBUFS → the datagram is dropped and
//! counted; ECONNREFUSED/ENETUNREACH/EHOSTUNREACH/… → counted, the rest of the batch goes on.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;

use crate::ops::stats::Stats;

/// Most packets the sender takes from the ring per batch.
pub const MAX_BATCH: usize = 8;

/// One socket and the destinations of its address family.
struct FamilyGroup {
    socket: UdpSocket,
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: Vec<libc::socklen_t>,
    msgs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
}

// SAFETY: the raw pointers inside msgs/iovs are rewritten before every use and only ever
// point into this struct or the caller's batch during `send`.
unsafe impl Send for FamilyGroup {}

/// Sends datagrams to a fixed set of destinations with `sendmmsg`.
pub struct MmsgSender {
    groups: Vec<FamilyGroup>,
}

impl MmsgSender {
    /// Opens one non-blocking socket per address family present in `dests` and preallocates
    /// everything a batch of `MAX_BATCH` packets needs.
    pub fn new(dests: &[SocketAddr]) -> io::Result<MmsgSender> {
        let mut groups = Vec::new();
        for v4 in [true, false] {
            let mine: Vec<&SocketAddr> = dests.iter().filter(|d| d.is_ipv4() == v4).collect();
            if mine.is_empty() {
                continue;
            }
            let socket = UdpSocket::bind(if v4 { "0.0.0.0:0" } else { "[::]:0" })?;
            socket.set_nonblocking(true)?;
            let (addrs, addr_lens) = mine.iter().map(|d| sockaddr(d)).unzip();
            let n = MAX_BATCH * mine.len();
            // SAFETY: all-zero mmsghdr/iovec are valid (null pointers, zero lengths).
            let msgs = (0..n).map(|_| unsafe { zeroed::<libc::mmsghdr>() }).collect();
            let iovs = (0..n)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect();
            groups.push(FamilyGroup {
                socket,
                addrs,
                addr_lens,
                msgs,
                iovs,
            });
        }
        Ok(MmsgSender { groups })
    }
}

impl super::DatagramSender for MmsgSender {
    fn send(&mut self, packets: &[&[u8]], stats: &Stats) {
        debug_assert!(packets.len() <= MAX_BATCH);
        for g in &mut self.groups {
            let mut k = 0;
            for p in packets {
                for d in 0..g.addrs.len() {
                    g.iovs[k] = libc::iovec {
                        iov_base: p.as_ptr() as *mut libc::c_void,
                        iov_len: p.len(),
                    };
                    let hdr = &mut g.msgs[k].msg_hdr;
                    hdr.msg_name = (&mut g.addrs[d] as *mut libc::sockaddr_storage).cast();
                    hdr.msg_namelen = g.addr_lens[d];
                    hdr.msg_iov = &mut g.iovs[k];
                    hdr.msg_iovlen = 1;
                    k += 1;
                }
            }
            send_all(g.socket.as_raw_fd(), &mut g.msgs[..k], stats);
        }
    }
}

/// Calls `sendmmsg` until every message was sent or skipped after an error.
fn send_all(fd: i32, msgs: &mut [libc::mmsghdr], stats: &Stats) {
    let mut off = 0;
    while off < msgs.len() {
        let rest = &mut msgs[off..];
        // SAFETY: `rest` holds initialised mmsghdrs whose pointers reference live buffers.
        let r = unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as libc::c_uint, libc::MSG_DONTWAIT) };
        if r > 0 {
            let sent = r as usize;
            let bytes: usize = rest[..sent].iter().map(|m| m.msg_len as usize).sum();
            stats.datagrams.fetch_add(sent as u64, Relaxed);
            stats.bytes.fetch_add(bytes as u64, Relaxed);
            off += sent;
            continue;
        }
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if errno == libc::EINTR {
            continue;
        }
        // The message at `off` failed: count it and go on with the next one.
        let counter = match errno {
            libc::EAGAIN | libc::ENOBUFS => &stats.send_would_block,
            libc::ECONNREFUSED | libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ENETDOWN | libc::EHOSTDOWN => {
                &stats.send_unreachable
            }
            _ => &stats.send_errors,
        };
        counter.fetch_add(1, Relaxed);
        off += 1;
    }
}

/// `SocketAddr` → `sockaddr_storage` + length, for `msg_name`.
fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: zeroed storage is valid; we write a sockaddr_in/in6 into its prefix.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::DatagramSender;

    #[test]
    fn every_packet_reaches_every_destination_of_both_families() {
        let rx: Vec<UdpSocket> = ["127.0.0.1:0", "127.0.0.1:0", "[::1]:0"]
            .iter()
            .map(|a| UdpSocket::bind(a).unwrap())
            .collect();
        let dests: Vec<SocketAddr> = rx.iter().map(|s| s.local_addr().unwrap()).collect();
        let mut tx = MmsgSender::new(&dests).unwrap();
        let stats = Stats::default();
        tx.send(&[b"one", b"two!"], &stats);
        assert_eq!(stats.datagrams.load(Relaxed), 6);
        assert_eq!(stats.bytes.load(Relaxed), 3 * 7);
        for s in &rx {
            let mut buf = [0u8; 16];
            let n = s.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"one");
            let n = s.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"two!");
        }
    }
}
