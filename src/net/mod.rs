//! Network side: resolving destinations, the UDP sender backend(s) and the sender thread.

pub mod dest;
pub mod resolve;
pub mod sender;
pub mod socket;
pub mod udp;

use crate::ops::stats::Stats;
use dest::DestTable;

/// A way of putting datagrams on the wire: the sender thread's only dependency on the
/// backend, so io_uring can sit beside sendmmsg. Implementations preallocate everything in
/// their constructor and must not allocate, lock or block in `send`.
pub trait DatagramSender: Send {
    /// Sends every packet of `packets` (at most [`udp::MAX_BATCH`]) to every active
    /// destination of `dests`, counting datagrams, bytes and errors into `stats`.
    fn send(&mut self, packets: &[&[u8]], dests: &mut DestTable, stats: &Stats);
}
