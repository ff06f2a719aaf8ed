//! What a session asks its shell to put on the wire, and what the shell says happened.

use super::peers::{PeerId, Route};

/// Which of the stream's local sockets a datagram leaves from: RTP from the RTP socket,
/// RTCP from the RTCP socket (its port + 1, RFC 3550 §11) — or from the RTP socket when the
/// peer muxes them (RFC 5761), so a receiver sees one 5-tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Local {
    Rtp,
    Rtcp,
}

/// What a datagram carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Rtp,
    Rtcp,
}

/// One datagram to send: `bytes` to `route`, from the `local` socket, for `peer` (whose
/// counters it counts against).
#[derive(Clone, Copy, Debug)]
pub struct Transmit<'a> {
    pub peer: PeerId,
    pub route: Route,
    pub local: Local,
    pub kind: Kind,
    pub bytes: &'a [u8],
}

/// How one datagram fared: the bytes the kernel took, or the errno it refused with.
pub type SendResult = Result<usize, i32>;
