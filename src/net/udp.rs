//! The stream's UDP sockets and the sendmmsg backend.
//!
//! [`StreamSockets`]: one RTP and one RTCP socket per address family (IPv6 may be missing from
//! the kernel), every option applied at start. RTCP leaves from its own socket, which is
//! where receivers' reports come back (read by `crate::net::rtcp_in`).
//!
//! [`MmsgSender`] sends a batch of [`Transmit`]s with one `sendmmsg` per socket, from
//! preallocated `mmsghdr`/`iovec`/`sockaddr` arrays that point into the batch: nothing is
//! allocated or copied per datagram. Each datagram's fate is written to `results`
//! (accounting is the caller's, in one place: `Stats::account`). Error policy (never blocks
//! the pipeline): EAGAIN/ENOBUFS, ECONNREFUSED/ENETUNREACH/… fail that datagram and the rest
//! of the batch goes on.

use std::io;
use std::mem::zeroed;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use super::socket::{self, SocketError, SocketOptions};
use crate::rtp::session::{Local, Route, SendResult, Transmit};

/// Most datagrams one backend call takes (the shells hand batches over in chunks of this
/// many; `sendmmsg` itself takes at most 1024, UIO_MAXIOV).
pub const CHUNK: usize = 256;

/// Index of a socket in [`StreamSockets::all`]: family × role.
fn socket_index(ipv4: bool, local: Local) -> usize {
    match (ipv4, local) {
        (true, Local::Rtp) => 0,
        (true, Local::Rtcp) => 1,
        (false, Local::Rtp) => 2,
        (false, Local::Rtcp) => 3,
    }
}

/// The sockets a stream sends from: RTP and RTCP, IPv4 and IPv6.
pub struct StreamSockets {
    /// IPv4 RTP, IPv4 RTCP, IPv6 RTP, IPv6 RTCP (see [`socket_index`]); a missing IPv6 stack
    /// leaves its two empty, RTCP off leaves the RTCP ones empty.
    all: [Option<UdpSocket>; 4],
}

impl StreamSockets {
    /// Opens the RTP and RTCP sockets of both families on adjacent even/odd ports
    /// ([`socket::open_stream_sockets`]: `RTPMIC_BIND`'s port and the next, else a free pair);
    /// with `mux` (RFC 5761) each RTCP socket is the RTP socket; without `rtcp` there are none.
    pub fn open(opts: &SocketOptions, rtcp: bool, mux: bool) -> Result<StreamSockets, SocketError> {
        let pairs = socket::open_stream_sockets(opts, mux)?;
        let mut all: [Option<UdpSocket>; 4] = [None, None, None, None];
        for (ipv4, pair) in [(true, Some(pairs.v4)), (false, pairs.v6)] {
            let Some(pair) = pair else { continue };
            all[socket_index(ipv4, Local::Rtp)] = Some(pair.rtp);
            if rtcp {
                all[socket_index(ipv4, Local::Rtcp)] = Some(pair.rtcp);
            }
        }
        Ok(StreamSockets { all })
    }

    /// The socket `local` of the family of `to`.
    pub fn get(&self, to: SocketAddr, local: Local) -> Option<&UdpSocket> {
        self.all[socket_index(to.is_ipv4(), local)].as_ref()
    }

    /// Clones of every socket that exists: for DSCP changes, and for the RTCP reader
    /// (receivers' RTCP arrives on the RTCP sockets, and on the RTP ones from peers that mux
    /// RTCP onto the RTP port, RFC 5761).
    pub fn try_clone_all(&self) -> io::Result<Vec<UdpSocket>> {
        self.all.iter().flatten().map(UdpSocket::try_clone).collect()
    }

    /// Socket `index` of [`socket_index`]'s numbering.
    pub(crate) fn by_index(&self, index: usize) -> Option<&UdpSocket> {
        self.all.get(index)?.as_ref()
    }

    /// The local address of socket `local` of one family, when open.
    pub fn local_addr(&self, ipv4: bool, local: Local) -> Option<SocketAddr> {
        self.all[socket_index(ipv4, local)].as_ref()?.local_addr().ok()
    }
}

/// Preallocated message arrays for up to [`CHUNK`] datagrams, and where each came from in
/// the caller's batch.
pub(crate) struct Messages {
    pub(crate) msgs: Box<[libc::mmsghdr]>,
    iovs: Box<[libc::iovec]>,
    names: Box<[libc::sockaddr_storage]>,
    /// Batch index of each message.
    pub(crate) origin: Box<[usize]>,
}

// SAFETY: the raw pointers inside are rewritten before every use and point only into the
// arrays themselves and the caller's batch while a send runs.
unsafe impl Send for Messages {}

impl Messages {
    pub(crate) fn new() -> Messages {
        Messages {
            // SAFETY: all-zero mmsghdr/sockaddr_storage are valid (null pointers, lengths 0).
            msgs: (0..CHUNK).map(|_| unsafe { zeroed::<libc::mmsghdr>() }).collect(),
            iovs: (0..CHUNK)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            names: (0..CHUNK)
                .map(|_| unsafe { zeroed::<libc::sockaddr_storage>() })
                .collect(),
            origin: vec![0; CHUNK].into_boxed_slice(),
        }
    }

    /// Fills one message per UDP transmit of `batch` that leaves from socket `index`;
    /// returns how many.
    pub(crate) fn fill(&mut self, batch: &[Transmit<'_>], index: usize) -> usize {
        let mut k = 0;
        for (i, t) in batch.iter().enumerate().take(CHUNK) {
            let Route::Udp(to) = t.route else { continue };
            if socket_index(to.is_ipv4(), t.local) != index {
                continue;
            }
            let len = write_sockaddr(&to, &mut self.names[k]);
            self.iovs[k] = libc::iovec {
                iov_base: t.bytes.as_ptr() as *mut libc::c_void,
                iov_len: t.bytes.len(),
            };
            let hdr = &mut self.msgs[k].msg_hdr;
            hdr.msg_name = (&mut self.names[k] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = len;
            hdr.msg_iov = &mut self.iovs[k];
            hdr.msg_iovlen = 1;
            self.origin[k] = i;
            k += 1;
        }
        k
    }
}

/// `SocketAddr` → `sockaddr_storage`; returns the length that counts.
pub fn write_sockaddr(addr: &SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    let raw: socket2::SockAddr = (*addr).into();
    let len = (raw.len() as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: socket2 gives a sockaddr of `raw.len()` bytes; it fits the storage.
    unsafe {
        std::ptr::copy_nonoverlapping(
            raw.as_ptr().cast::<u8>(),
            (out as *mut libc::sockaddr_storage).cast::<u8>(),
            len,
        )
    };
    len as libc::socklen_t
}

/// Marks the transmits of `batch` that no socket can carry (an IPv6 destination on a kernel
/// without IPv6, a route that is not UDP) as failed, and the others as not sent yet
/// (EINPROGRESS) until the send says how each fared.
pub(crate) fn refuse_unroutable(sockets: &StreamSockets, batch: &[Transmit<'_>], results: &mut [SendResult]) {
    for (t, r) in batch.iter().zip(results.iter_mut()) {
        *r = match t.route {
            Route::Udp(to) if sockets.get(to, t.local).is_some() => Err(libc::EINPROGRESS),
            Route::Udp(_) => Err(libc::EAFNOSUPPORT),
            Route::Interleaved { .. } => Err(libc::EINVAL),
        };
    }
}

/// Sends datagrams with `sendmmsg`, one call per socket; waits with epoll (mio).
pub struct MmsgSender {
    sockets: StreamSockets,
    messages: Messages,
    poll: mio::Poll,
    events: mio::Events,
    registered: Option<RawFd>,
}

impl MmsgSender {
    pub fn new(sockets: StreamSockets) -> Result<MmsgSender, SocketError> {
        let poll = mio::Poll::new().map_err(|source| SocketError {
            key: "RTPMIC_SENDER",
            what: "epoll",
            source,
        })?;
        Ok(MmsgSender {
            sockets,
            messages: Messages::new(),
            poll,
            events: mio::Events::with_capacity(8),
            registered: None,
        })
    }
}

impl super::DatagramSender for MmsgSender {
    fn send(&mut self, batch: &[Transmit<'_>], results: &mut [SendResult]) {
        debug_assert!(batch.len() <= CHUNK && results.len() >= batch.len());
        refuse_unroutable(&self.sockets, batch, results);
        for index in 0..4 {
            let Some(sock) = self.sockets.by_index(index) else {
                continue;
            };
            let k = self.messages.fill(batch, index);
            send_all(sock.as_raw_fd(), &mut self.messages, k, results);
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

    fn sockets(&self) -> &StreamSockets {
        &self.sockets
    }

    fn name(&self) -> &'static str {
        "epoll"
    }
}

/// Calls `sendmmsg` until each of the first `k` messages was sent or failed, writing every
/// outcome to `results` at the message's batch index.
fn send_all(fd: i32, m: &mut Messages, k: usize, results: &mut [SendResult]) {
    let mut off = 0;
    while off < k {
        let rest = &mut m.msgs[off..k];
        // SAFETY: `rest` holds initialised mmsghdrs whose pointers reference live buffers.
        let r = unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as libc::c_uint, libc::MSG_DONTWAIT) };
        if r > 0 {
            let sent = r as usize;
            for j in off..off + sent {
                results[m.origin[j]] = Ok(m.msgs[j].msg_len as usize);
            }
            off += sent;
            continue;
        }
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if errno == libc::EINTR {
            continue;
        }
        // The message at `off` failed: note it and go on with the next one.
        results[m.origin[off]] = Err(errno);
        off += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::DatagramSender;
    use crate::rtp::session::{Kind, PeerId};

    pub(crate) fn transmit<'a>(to: SocketAddr, local: Local, bytes: &'a [u8]) -> Transmit<'a> {
        Transmit {
            peer: PeerId::new(0, 1),
            route: Route::Udp(to),
            local,
            kind: Kind::Rtp,
            bytes,
        }
    }

    #[test]
    fn every_datagram_leaves_from_its_socket_and_each_outcome_is_reported() {
        let rx: Vec<UdpSocket> = ["127.0.0.1:0", "[::1]:0"]
            .iter()
            .map(|a| UdpSocket::bind(a).unwrap())
            .collect();
        let (v4, v6) = (rx[0].local_addr().unwrap(), rx[1].local_addr().unwrap());
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
        let refused = closed.local_addr().unwrap();
        drop(closed);
        let opts = SocketOptions::default();
        let mut tx = MmsgSender::new(StreamSockets::open(&opts, true, false).unwrap()).unwrap();
        let batch = [
            transmit(v4, Local::Rtp, b"one"),
            transmit(v6, Local::Rtp, b"two!"),
            transmit(v4, Local::Rtcp, b"rtcp"),
            transmit(refused, Local::Rtp, b"x"),
        ];
        let mut results = [Ok(0); 4];
        tx.send(&batch, &mut results);
        assert_eq!(&results[..3], &[Ok(3), Ok(4), Ok(4)]);
        let mut buf = [0u8; 16];
        let (n, from) = rx[0].recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"one");
        assert_eq!(
            Some(from.port()),
            tx.sockets().local_addr(true, Local::Rtp).map(|a| a.port())
        );
        let (n, from) = rx[0].recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"rtcp");
        assert_eq!(
            Some(from.port()),
            tx.sockets().local_addr(true, Local::Rtcp).map(|a| a.port())
        );
        assert_eq!(rx[1].recv(&mut buf).unwrap(), 4);
        // A refused destination: the kernel reports ECONNREFUSED on this or the next send.
        tx.send(&batch[3..], &mut results[..1]);
        assert!(
            matches!(results[0], Ok(1) | Err(libc::ECONNREFUSED)),
            "{:?}",
            results[0]
        );
    }
}
