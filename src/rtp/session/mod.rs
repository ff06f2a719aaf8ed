//! The session core, sans I/O: what an RTP session does, with no sockets, threads or clocks
//! (time is an argument of every call), in the style of str0m's `Rtc` and quinn-proto's
//! `Connection`. Thin shells around it do the I/O: the UDP backends and the stream threads
//! (`crate::net`, `crate::pipeline`). See docs/ARCHITECTURE.md.
//!
//! * [`send::SendSession`]: one outgoing stream (one SSRC) to peers that come and go.
//! * [`recv::RecvSession`]: the receiving side (one source followed, RFC 3550 A.1/A.3/A.8 in
//!   [`source`], receiver reports); `rtpmic probe` runs on it.
//! * [`peers`]: the peers, by generation-checked handle.
//! * [`transmit`]: the datagrams a session asks its shell to send.

pub mod loss;
pub mod peers;
pub mod recv;
pub mod send;
pub mod source;
pub mod transmit;

pub use peers::{PeerId, PeerIds, PeerSpec, Route};
pub use send::{Batch, EncodedFrame, Event, ReceiverInfo, SendConfig, SendSession};
pub use transmit::{Kind, Local, SendResult, Transmit};
