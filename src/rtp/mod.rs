//! RTP, sans I/O: the packetizer that stamps headers, and the SDP that describes the stream.

pub mod packetizer;
pub mod sdp;

pub use packetizer::Packetizer;
