//! rtpmic: ALSA microphone → Opus / G.711 / L16 → RTP over UDP, on up to three real-time threads.
//!
//! See docs/ARCHITECTURE.md for the architecture (threads, the sans-I/O session core in
//! `rtp::session` and its shells in `net` and `pipeline`); each module documents the rules
//! it implements.

pub mod capture;
pub mod codec;
pub mod config;
pub mod net;
pub mod ops;
pub mod pipeline;
pub mod probe;
pub mod ring;
pub mod rt;
pub mod rtp;
pub mod rtsp;
