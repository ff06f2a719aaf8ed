//! Network side: the shells around the send session (the sending shell, the UDP backends, the
//! RTCP reader), name resolution, SAP, socket options.

pub mod control;
pub mod pacer;
pub mod resolve;
pub mod rtcp_in;
pub mod rtsp;
pub mod sap;
pub mod sender;
pub mod socket;
pub mod tcp_sink;
pub mod udp;
pub mod uring;

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use crate::rtp::session::{SendResult, Transmit};
use udp::StreamSockets;

/// A way of putting datagrams on the wire: the shells' only dependency on the backend, so
/// io_uring can sit beside sendmmsg. Implementations preallocate everything in their
/// constructor and must not allocate, lock or block in `send`.
pub trait DatagramSender: Send {
    /// Sends every UDP datagram of `batch` (at most [`udp::CHUNK`]) and writes how each fared
    /// to `results[i]` (bytes taken, or the errno). Counting is the caller's.
    fn send(&mut self, batch: &[Transmit<'_>], results: &mut [SendResult]);

    /// Parks until the eventfd `wake_fd` is signalled or `timeout` passes (either may also
    /// return early). The eventfd needs no reading afterwards.
    fn wait(&mut self, wake_fd: RawFd, timeout: Duration) -> io::Result<()>;

    /// The sockets it sends from.
    fn sockets(&self) -> &StreamSockets;

    /// The backend's name for the log ("io_uring", "epoll").
    fn name(&self) -> &'static str;
}
