//! A built-in RTSP/1.0 server (RFC 2326), sans I/O: VLC, ffmpeg, GStreamer `rtspsrc`, NVRs
//! (Frigate via go2rtc, Home Assistant) and restreamers (mediamtx, go2rtc) pull
//! `rtsp://board:8554/mic`.
//!
//! Like [`crate::rtp::session`], this is a protocol core that touches no socket, thread or
//! clock: bytes in, bytes and events out, time (CLOCK_MONOTONIC ns) an argument of every
//! call, randomness from a seed. A thin shell (mio: the TCP listener, reads and writes) drives
//! it, and hands the events that add and remove peers to the stream thread.
//!
//! ```text
//!  accept(now, client) → ConnId        handle_input(now, conn, bytes, media)      touch(peer, now)
//!  handle_close(now, conn)             handle_timeout(now, media) / poll_timeout()  shutdown(now)
//!        │                                             │
//!        ▼                                             ▼
//!  output(conn) → &[u8], consume_output(conn, n)   poll_event() → AddPeer · RemovePeer · SessionStarted ·
//!                                                  SessionEnded · Interleaved (RTCP in) · Close
//! ```
//!
//! # The shell's contract
//!
//! * After every call, write what [`Server::output`] holds for each connection and tell
//!   [`Server::consume_output`] how much the socket took; then drain [`Server::poll_event`]
//!   until `None`. Write responses only between whole interleaved frames of the stream's TCP
//!   sink (the two share the socket; packets are framed with [`interleaved::header`], which
//!   does not allocate).
//! * The send session's peer table must cover the server's range
//!   (`ServerConfig::peer_first + peer_count <= SendConfig::max_peers`), apart from the
//!   slots of `RTPMIC_DEST` peers.
//! * [`Event::Close`]: close that socket (its output has been handed out, or it waited too
//!   long). On EOF or a socket error, call [`Server::handle_close`] instead (no `Close` event
//!   follows).
//! * Sleep until [`Server::poll_timeout`] at the latest, then call [`Server::handle_timeout`].
//! * When the send session reports an RTCP packet from a peer the server made, call
//!   [`Server::touch`]: receiver reports keep a session alive, as requests do.
//! * [`Media`] gives what the stream is: the SDP, our ports, the SSRC, the multicast group,
//!   SRTP, and at PLAY the RTP position to announce.
//!
//! # URLs (the configured path, default `/mic`, matched case-sensitively; host and port, and
//! credentials in the URL, are ignored: NVRs use IPs, names, and NAT)
//!
//! * DESCRIBE `rtsp://host:port/mic` (or `…/mic/`): the SDP, with `Content-Base:` the request
//!   URL plus `/` (without credentials or query).
//! * SETUP the track, `rtsp://host:port/mic/trackID=0` (Content-Base + the SDP's
//!   `a=control:trackID=0`; the track name is configured), or the aggregate URL
//!   `rtsp://host:port/mic` (`/mic/`): the stream has one track. Any other path: 404.
//! * PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER: the aggregate or the track URL (or `*` for
//!   the parameters), the session named by its `Session:` header.
//!
//! # Sessions
//!
//! SETUP makes a session (random 64-bit id, 16 hex digits) and takes a peer handle from the
//! server's [`PeerIds`](crate::rtp::session::PeerIds) range; PLAY adds the peer to the send
//! session ([`Event::AddPeer`]); TEARDOWN, the session's timeout, or the end of the
//! connection that made it remove it ([`Event::RemovePeer`]). A session over TCP
//! (interleaved) is bound to its connection: other connections get 454 for it. A UDP or
//! multicast session may be controlled from another connection that presents its id (RFC 2326
//! lets a client close and reopen its control connection), but it still ends with the
//! connection that made it. Multicast sessions share one peer: the group, added at the first
//! multicast PLAY and removed after the last multicast session.

pub mod auth;
pub mod framing;
pub mod interleaved;
pub mod server;
pub mod transport;

use std::fmt;
use std::net::SocketAddr;

use crate::rtp::session::{PeerId, PeerSpec};

pub use auth::{AuthConfig, AuthMode, Password};
pub use framing::Limits;
pub use server::{ConfigError, Server, ServerConfig};
pub use transport::{MulticastGroup, Profile};

/// A connection, as the server names it: the slot of its table and a generation, so an id
/// outlives its connection without ever naming another (a late call about it changes
/// nothing). [`ConnId::raw`] is what [`Route::Interleaved`](crate::rtp::session::Route)
/// carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u32);

impl ConnId {
    /// Bits of the slot index: up to 512 connection slots.
    pub(crate) const INDEX_BITS: u32 = 9;
    /// The largest generation (they count 1, 2, …, this, 1, …).
    pub(crate) const MAX_GENERATION: u32 = u32::MAX >> Self::INDEX_BITS;

    pub(crate) fn new(index: usize, generation: u32) -> ConnId {
        let index = index as u32 & ((1 << Self::INDEX_BITS) - 1);
        ConnId(((generation & Self::MAX_GENERATION) << Self::INDEX_BITS) | index)
    }

    pub fn raw(self) -> u32 {
        self.0
    }

    pub fn from_raw(raw: u32) -> ConnId {
        ConnId(raw)
    }

    /// The slot: the server's connection table, the TCP sinks, the RTSP thread's token.
    pub fn index(self) -> usize {
        (self.0 & ((1 << Self::INDEX_BITS) - 1)) as usize
    }
}

/// A session's id. Not a credential, but whoever knows a UDP session's id may control it:
/// log [`SessionId::short`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub(crate) u64);

impl SessionId {
    /// The first 6 hex digits, enough to follow a session through a log.
    pub fn short(self) -> String {
        format!("{:06x}", self.0 >> 40)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", self.short())
    }
}

/// How a client gets the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientTransport {
    /// UDP to the client's address (the RTSP connection's peer).
    Udp { rtp: SocketAddr, rtcp: SocketAddr },
    /// Interleaved on the RTSP connection.
    Tcp { rtp_channel: u8, rtcp_channel: u8 },
    /// The configured group.
    Multicast(MulticastGroup),
}

/// A session that started playing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub session: SessionId,
    /// The connection that made the session.
    pub conn: ConnId,
    /// The client (the RTSP connection's peer address).
    pub client: SocketAddr,
    pub transport: ClientTransport,
    pub profile: Profile,
    /// Who authenticated (`None` without access control).
    pub user: Option<String>,
    /// The session's peer (for multicast, the group's shared peer).
    pub peer: PeerId,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    Teardown,
    /// Silent (no request, no RTCP) for its timeout.
    Timeout,
    /// The connection that made it closed.
    ConnectionClosed,
    /// [`Server::shutdown`].
    Shutdown,
}

/// What the server tells its shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Add the peer to the send session (a PLAY).
    AddPeer { peer: PeerId, spec: PeerSpec },
    /// Remove the peer from the send session.
    RemovePeer { peer: PeerId },
    /// A client started playing: one log line.
    SessionStarted(SessionInfo),
    /// A session that played ended: one log line.
    SessionEnded {
        session: SessionId,
        client: SocketAddr,
        why: EndReason,
    },
    /// An interleaved frame from a client (RTCP on its RTCP channel): give it to the send
    /// session. `peer`: the session's peer when the channel is one of a session of this
    /// connection.
    Interleaved {
        conn: ConnId,
        channel: u8,
        peer: Option<PeerId>,
        data: Vec<u8>,
    },
    /// Close this connection's socket.
    Close { conn: ConnId },
}

/// What the server has seen (plain numbers; the shell publishes them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections accepted, refused ones included.
    pub connections: u64,
    /// Answered 503: beyond `max_connections`.
    pub connections_refused: u64,
    /// Not even a slot to answer 503 from: the shell closed them at once.
    pub connections_dropped: u64,
    /// Closed for saying nothing (no request, or no session and no request for the session
    /// timeout).
    pub idle_closed: u64,
    /// Requests parsed.
    pub requests: u64,
    /// 400: unparseable requests and bad headers.
    pub bad_requests: u64,
    /// 501: unknown methods.
    pub not_implemented: u64,
    /// 405: RTSP methods we do not serve (PAUSE, RECORD, ANNOUNCE, …).
    pub not_allowed: u64,
    /// 404 and 454: no such resource or session.
    pub not_found: u64,
    /// 455: not valid in the session's state (PLAY before SETUP, …).
    pub wrong_state: u64,
    /// 413/431: head, header count or body beyond the limits (the connection is closed).
    pub too_large: u64,
    /// Requests (or frames) not complete within the request timeout: closed (slowloris).
    pub request_timeouts: u64,
    /// Connections closed because they did not read their responses.
    pub output_overflows: u64,
    /// 505.
    pub version_not_supported: u64,
    /// 401 to a request without credentials.
    pub auth_challenges: u64,
    /// 401 to wrong credentials.
    pub auth_failures: u64,
    /// Of those, answered late (the source failed recently).
    pub auth_delayed: u64,
    /// 401 with `stale=true`.
    pub auth_stale: u64,
    /// 453: no session or peer slot left.
    pub clients_full: u64,
    /// 461/463: no acceptable transport, or a destination that is not the client.
    pub transports_refused: u64,
    pub sessions_created: u64,
    /// Sessions that started playing (`SessionStarted`).
    pub sessions_started: u64,
    /// Sessions that ended after playing (`SessionEnded`), and how.
    pub sessions_ended: u64,
    pub session_timeouts: u64,
    /// Interleaved frames taken from clients.
    pub interleaved_frames: u64,
    /// Frames dropped: too long to hand on, or the event queue full.
    pub interleaved_dropped: u64,
    /// RTSP responses sent to us (clients do not send requests to a server): ignored.
    pub responses_ignored: u64,
}

/// What the stream is, as the server must tell clients. Given at each call that may need it,
/// so it can change between calls (a reload).
pub trait Media {
    /// The SDP served by DESCRIBE (the caller writes it: `m=audio 0 RTP/AVP …` or `RTP/SAVP`
    /// with SRTP, `a=control:` naming the configured track).
    fn sdp(&self) -> &str;
    /// Our RTP and RTCP ports (the stream's sockets), for `server_port=`.
    fn server_ports(&self) -> (u16, u16);
    fn ssrc(&self) -> u32;
    /// The multicast group, if one is configured.
    fn multicast(&self) -> Option<MulticastGroup>;
    /// SRTP is on: transports are `RTP/SAVP`.
    fn srtp(&self) -> bool;
    /// At PLAY: the sequence number and RTP timestamp of the first packet the new peer will
    /// get, or of one before it ([`SendSession::next_packet_position`](crate::rtp::session::SendSession::next_packet_position)
    /// as the sending thread last published it), for `RTP-Info: seq=…;rtptime=…` (clients
    /// sync on it and drop what comes before).
    fn play_position(&mut self) -> (u16, u32);
}

/// [`Media`] from values and a closure for the position.
pub struct MediaInfo<F> {
    pub sdp: String,
    pub server_ports: (u16, u16),
    pub ssrc: u32,
    pub multicast: Option<MulticastGroup>,
    pub srtp: bool,
    pub position: F,
}

impl<F: FnMut() -> (u16, u32)> Media for MediaInfo<F> {
    fn sdp(&self) -> &str {
        &self.sdp
    }
    fn server_ports(&self) -> (u16, u16) {
        self.server_ports
    }
    fn ssrc(&self) -> u32 {
        self.ssrc
    }
    fn multicast(&self) -> Option<MulticastGroup> {
        self.multicast
    }
    fn srtp(&self) -> bool {
        self.srtp
    }
    fn play_position(&mut self) -> (u16, u32) {
        (self.position)()
    }
}
