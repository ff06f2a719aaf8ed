//! Network side: resolving destinations, the UDP sender backend(s) and the sender thread.

pub mod resolve;
pub mod sender;
pub mod udp;

use crate::ops::stats::Stats;

/// A way of putting datagrams on the wire: the sender thread's only dependency on the
/// backend, so io_uring can sit beside sendmmsg. Implementations preallocate everything in
/// their constructor and must not allocate, lock or block in `send`.
pub trait DatagramSender: Send {
    /// Sends every packet of `packets` (at most [`udp::MAX_BATCH`]) to every destination,
    /// counting datagrams, bytes and errors into `stats`.
    fn send(&mut self, packets: &[&[u8]], stats: &Stats);
}
