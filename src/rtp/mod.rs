//! RTP, sans I/O: the packetizer that stamps headers, RTCP sender reports and their
//! interval, and the SDP that describes the stream.

pub mod capture_clock;
pub mod packetizer;
pub mod red;
pub mod rtcp;
pub mod sap;
pub mod sdp;
pub mod session;
pub mod srtp;

pub use packetizer::Packetizer;
