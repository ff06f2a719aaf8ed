//! The sendmmsg backend: every packet of a batch × every active destination in one
//! `sendmmsg` call per address family, from preallocated `mmsghdr`/`iovec` arrays that point
//! into the caller's batch and the [`DestTable`].
//!
//! Error policy (never blocks the pipeline): EAGAIN/ENOBUFS → the datagram is dropped and
//! counted; ECONNREFUSED/ENETUNREACH/EHOSTUNREACH/… → counted, the rest of the batch goes on.
//! Every datagram is also counted against its destination.

use std::io;
use std::mem::zeroed;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::dest::{DestTable, Family};
use super::socket::{self, SocketError, SocketOptions};
use crate::ops::stats::Stats;

/// Most packets the sender takes from the ring per batch.
pub const MAX_BATCH: usize = 8;

/// One socket and its message arrays (MAX_BATCH × every destination slot).
pub(crate) struct FamilySocket {
    pub(crate) socket: UdpSocket,
    pub(crate) msgs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    /// Destination index of each message, for the per-destination counters.
    pub(crate) msg_dest: Vec<usize>,
}

// SAFETY: the raw pointers inside msgs/iovs are rewritten before every use and only point
// into the caller's batch and destination table during `send`.
unsafe impl Send for FamilySocket {}

impl FamilySocket {
    pub(crate) fn new(socket: UdpSocket, slots: usize) -> FamilySocket {
        let n = MAX_BATCH * slots.max(1);
        FamilySocket {
            socket,
            // SAFETY: all-zero mmsghdr is valid (null pointers, zero lengths).
            msgs: (0..n).map(|_| unsafe { zeroed::<libc::mmsghdr>() }).collect(),
            iovs: (0..n)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            msg_dest: vec![0; n],
        }
    }

    /// Points one message per (packet, active destination of `family`) at the packet and
    /// the destination's address; returns how many messages are ready.
    pub(crate) fn fill(&mut self, packets: &[&[u8]], dests: &mut DestTable, family: Family) -> usize {
        let mut k = 0;
        for p in packets {
            for d in 0..dests.len() {
                if dests.family(d) != family {
                    continue;
                }
                let (name, namelen) = dests.name(d);
                self.iovs[k] = libc::iovec {
                    iov_base: p.as_ptr() as *mut libc::c_void,
                    iov_len: p.len(),
                };
                let hdr = &mut self.msgs[k].msg_hdr;
                hdr.msg_name = name.cast();
                hdr.msg_namelen = namelen;
                hdr.msg_iov = &mut self.iovs[k];
                hdr.msg_iovlen = 1;
                self.msg_dest[k] = d;
                k += 1;
            }
        }
        k
    }
}

/// Opens both families' sockets for `slots` destinations. IPv6 may be missing from the
/// kernel: its destinations are then counted as errors.
pub(crate) fn open_sockets(
    slots: usize,
    opts: &SocketOptions,
) -> Result<(Option<FamilySocket>, Option<FamilySocket>), SocketError> {
    let v4 = socket::open(true, opts)?;
    let v6 = match socket::open(false, opts) {
        Ok(s) => Some(s),
        Err(e) if e.source.raw_os_error() == Some(libc::EAFNOSUPPORT) => None,
        Err(e) => return Err(e),
    };
    Ok(family_sockets(v4, v6, slots))
}

/// The family sockets over sockets opened already (the RTP halves of
/// [`socket::open_stream_sockets`]).
pub(crate) fn family_sockets(
    v4: UdpSocket,
    v6: Option<UdpSocket>,
    slots: usize,
) -> (Option<FamilySocket>, Option<FamilySocket>) {
    (
        Some(FamilySocket::new(v4, slots)),
        v6.map(|s| FamilySocket::new(s, slots)),
    )
}

/// Clones of the family sockets that exist.
pub(crate) fn clone_sockets(
    v4: &Option<FamilySocket>,
    v6: &Option<FamilySocket>,
) -> io::Result<Vec<std::net::UdpSocket>> {
    [v4, v6].into_iter().flatten().map(|f| f.socket.try_clone()).collect()
}

/// Counts `n` failed datagrams for every destination of `family` (no socket for it).
pub(crate) fn count_family_missing(dests: &DestTable, family: Family, n: usize, stats: &Stats) {
    for d in (0..dests.len()).filter(|&d| dests.family(d) == family) {
        stats.count_error(d, &stats.send_errors, n as u64);
    }
}

/// Sends datagrams with `sendmmsg`, one socket per address family; waits with epoll (mio).
pub struct MmsgSender {
    v4: Option<FamilySocket>,
    v6: Option<FamilySocket>,
    poll: mio::Poll,
    events: mio::Events,
    registered: Option<RawFd>,
}

impl MmsgSender {
    /// Opens both sockets and preallocates everything for `slots` destinations.
    pub fn new(slots: usize, opts: &SocketOptions) -> Result<MmsgSender, SocketError> {
        let (v4, v6) = open_sockets(slots, opts)?;
        MmsgSender::with(v4, v6)
    }

    /// Sends from `v4` and `v6`, opened (and bound) by the caller.
    pub fn with_sockets(slots: usize, v4: UdpSocket, v6: Option<UdpSocket>) -> Result<MmsgSender, SocketError> {
        let (v4, v6) = family_sockets(v4, v6, slots);
        MmsgSender::with(v4, v6)
    }

    fn with(v4: Option<FamilySocket>, v6: Option<FamilySocket>) -> Result<MmsgSender, SocketError> {
        let poll = mio::Poll::new().map_err(|source| SocketError {
            key: "RTPMIC_SENDER",
            what: "epoll",
            source,
        })?;
        Ok(MmsgSender {
            v4,
            v6,
            poll,
            events: mio::Events::with_capacity(8),
            registered: None,
        })
    }
}

impl super::DatagramSender for MmsgSender {
    fn send(&mut self, packets: &[&[u8]], dests: &mut DestTable, stats: &Stats) {
        debug_assert!(packets.len() <= MAX_BATCH);
        for (family, fs) in [(Family::V4, &mut self.v4), (Family::V6, &mut self.v6)] {
            let Some(fs) = fs else {
                count_family_missing(dests, family, packets.len(), stats);
                continue;
            };
            let k = fs.fill(packets, dests, family);
            send_all(fs.socket.as_raw_fd(), &mut fs.msgs[..k], &fs.msg_dest[..k], stats);
        }
    }

    fn wait(&mut self, wake_fd: RawFd, timeout: Duration) -> io::Result<()> {
        if self.registered != Some(wake_fd) {
            // Edge-triggered (mio's mode): every eventfd write raises a new event, so the
            // eventfd is never read.
            self.poll.registry().register(
                &mut mio::unix::SourceFd(&wake_fd),
                mio::Token(0),
                mio::Interest::READABLE,
            )?;
            self.registered = Some(wake_fd);
        }
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => Err(e),
            _ => Ok(()),
        }
    }

    fn sockets(&self) -> io::Result<Vec<std::net::UdpSocket>> {
        clone_sockets(&self.v4, &self.v6)
    }

    fn name(&self) -> &'static str {
        "epoll"
    }
}

/// The counter an errno of a failed send belongs to.
pub(crate) fn error_counter(stats: &Stats, errno: i32) -> &std::sync::atomic::AtomicU64 {
    match errno {
        libc::EAGAIN | libc::ENOBUFS => &stats.send_would_block,
        libc::ECONNREFUSED | libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ENETDOWN | libc::EHOSTDOWN => {
            &stats.send_unreachable
        }
        _ => &stats.send_errors,
    }
}

/// Calls `sendmmsg` until every message was sent or skipped after an error.
fn send_all(fd: i32, msgs: &mut [libc::mmsghdr], msg_dest: &[usize], stats: &Stats) {
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
            for &d in &msg_dest[off..off + sent] {
                stats.count_sent(d);
            }
            off += sent;
            continue;
        }
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if errno == libc::EINTR {
            continue;
        }
        // The message at `off` failed: count it and go on with the next one.
        stats.count_error(msg_dest[off], error_counter(stats, errno), 1);
        off += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::DatagramSender;
    use std::net::SocketAddr;

    #[test]
    fn every_packet_reaches_every_destination_of_both_families() {
        let rx: Vec<UdpSocket> = ["127.0.0.1:0", "127.0.0.1:0", "[::1]:0"]
            .iter()
            .map(|a| UdpSocket::bind(a).unwrap())
            .collect();
        let mut dests: Vec<Option<SocketAddr>> = rx.iter().map(|s| s.local_addr().ok()).collect();
        dests.insert(1, None); // an unresolved destination is skipped
        let mut table = DestTable::new(&dests);
        let opts = SocketOptions::default();
        let mut tx = MmsgSender::new(dests.len(), &opts).unwrap();
        let stats = Stats::new(dests.len());
        tx.send(&[b"one", b"two!"], &mut table, &stats);
        assert_eq!(stats.datagrams.load(Relaxed), 6);
        assert_eq!(stats.dests[0].datagrams.load(Relaxed), 2);
        assert_eq!(stats.dests[1].datagrams.load(Relaxed), 0);
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
