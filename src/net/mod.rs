//! Network side: resolving destinations, the UDP sender backend(s) and the sender thread.

pub mod dest;
pub mod pacer;
pub mod resolve;
pub mod rtcp_in;
pub mod rtcp_out;
pub mod sap;
pub mod sender;
pub mod socket;
pub mod udp;
pub mod uring;

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use crate::ops::stats::Stats;
use dest::DestTable;

/// A way of putting datagrams on the wire: the sender thread's only dependency on the
/// backend, so io_uring can sit beside sendmmsg. Implementations preallocate everything in
/// their constructor and must not allocate, lock or block in `send`.
pub trait DatagramSender: Send {
    /// Sends every packet of `packets` (at most [`udp::MAX_BATCH`]) to every active
    /// destination of `dests`, counting datagrams, bytes and errors into `stats`.
    fn send(&mut self, packets: &[&[u8]], dests: &mut DestTable, stats: &Stats);

    /// Parks until the eventfd `wake_fd` is signalled or `timeout` passes (either may also
    /// return early). The eventfd needs no reading afterwards.
    fn wait(&mut self, wake_fd: RawFd, timeout: Duration) -> io::Result<()>;

    /// Handles on the backend's sockets (clones of the same sockets), for options the main
    /// thread changes while the stream runs (DSCP on SIGHUP).
    fn sockets(&self) -> io::Result<Vec<std::net::UdpSocket>>;

    /// The backend's name for the log ("io_uring", "epoll").
    fn name(&self) -> &'static str;
}
