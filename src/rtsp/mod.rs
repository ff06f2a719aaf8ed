//! A built-in RTSP/1.0 server (RFC 2326), sans I/O.
//!
//! * [`auth`]: Digest (SHA-256, MD5) and Basic access control, slowing repeated failures.
//! * [`framing`]: a client's bytes split into requests and interleaved frames, within limits.
//! * [`interleaved`]: RTP and RTCP `$`-framed on the RTSP connection (RFC 2326 §10.12).
//! * [`transport`]: the `Transport` header: what a client asks for, what we choose.

pub mod auth;
pub mod framing;
pub mod interleaved;
pub mod transport;
