//! The server: connections, requests, sessions and their timers. See the module docs of
//! [`crate::rtsp`] for the API and the rules.
//!
//! Bounded everywhere: the connection table (`max_connections` plus a few slots that only
//! answer 503), each connection's input ([`Limits::input_bytes`]) and output
//! ([`Limits::output_bytes`]), the session table (one per peer slot), the failure table
//! ([`THROTTLE_SOURCES`](super::auth::THROTTLE_SOURCES)), and the interleaved data queued as events
//! ([`DATA_EVENTS`]). Control events (peers, sessions, closes) are never dropped; their number
//! per call is bounded by the input of the call.

use std::collections::VecDeque;
use std::net::SocketAddr;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use rtsp_types::headers::{self, HeaderName};
use rtsp_types::{Message, Method, Request, Response, StatusCode, Url, Version};

use super::auth::{AuthConfig, Authenticator, NonceUse, Throttle, Verdict};
use super::framing::{self, FramingError, Item, Limits, Scan};
use super::interleaved::HEADER_LEN;
use super::transport::{self, Choice, Granted, Offer, Profile, Refusal};
use super::{ClientTransport, ConnId, Counters, EndReason, Event, Media, SessionId, SessionInfo};
use crate::rtp::session::peers::canonical;
use crate::rtp::session::{PeerId, PeerIds, PeerSpec, Route};

/// Slots beyond `max_connections` that only answer 503 to a first request, then close.
pub const REFUSING_SLOTS: usize = 4;
/// Connections served beyond the client limit: for clients that only ask (OPTIONS,
/// DESCRIBE) while every client slot plays.
pub const SPARE_CONNECTIONS: usize = 16;
/// At most this many connection slots: [`MAX_CLIENTS`], the spare ones and the refusing
/// ones (a [`ConnId`] holds up to 512).
pub const MAX_CONNECTION_SLOTS: usize = MAX_CLIENTS + SPARE_CONNECTIONS + REFUSING_SLOTS;
/// At most this many peers (clients).
pub const MAX_CLIENTS: usize = 256;
/// Interleaved frames waiting in the event queue; more are dropped and counted.
pub const DATA_EVENTS: usize = 64;
/// The longest interleaved frame handed on (a client's RTCP is far shorter).
pub const MAX_DATA: usize = 2048;
/// A connection that is closing (after 400, 413, 431, 503) waits this long for its response to
/// be written.
pub const LINGER_NS: u64 = 2_000_000_000;

const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER";

/// The server's configuration.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The stream's path (default `/mic`).
    pub path: String,
    /// The track's control name, as the SDP's `a=control:` gives it (default `trackID=0`).
    pub track: String,
    /// Announced in `Session: …;timeout=N`; a session silent this long ends (default 60).
    pub session_timeout_s: u32,
    /// Connections served at once (default 32); beyond, 503.
    pub max_connections: usize,
    /// The peer slots the server hands out: `first..first + count` of the send session's
    /// table; `count` is the most clients at once (default 16, at most 256).
    pub peer_first: usize,
    pub peer_count: usize,
    /// `None`: anyone may pull the stream.
    pub auth: Option<AuthConfig>,
    pub limits: Limits,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            path: "/mic".into(),
            track: "trackID=0".into(),
            session_timeout_s: 60,
            max_connections: 32,
            peer_first: 0,
            peer_count: 16,
            auth: None,
            limits: Limits::default(),
        }
    }
}

/// A configuration the server cannot run with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("RTSP path {0:?} must start with '/' and hold no spaces")]
    Path(String),
    #[error("RTSP track name {0:?} must be a non-empty URL path segment")]
    Track(String),
    #[error("RTSP clients {0} out of range 1..={MAX_CLIENTS}")]
    Clients(usize),
    #[error("RTSP connections {0} out of range 1..={max}", max = MAX_CONNECTION_SLOTS - REFUSING_SLOTS)]
    Connections(usize),
    #[error("RTSP session timeout must be at least 1 s")]
    Timeout,
}

/// One client connection.
struct Conn {
    id: ConnId,
    client: SocketAddr,
    /// Over the limit: answer the first request 503, then close.
    refusing: bool,
    input: Vec<u8>,
    /// What the framer learnt of the incomplete request at the front of `input`.
    scan: Scan,
    /// Bytes of an oversized interleaved frame still to drop.
    skip: usize,
    /// When the first byte of the incomplete request (or frame) in `input` came.
    partial_since: Option<u64>,
    output: Vec<u8>,
    /// `output[..ready]` may be written now; the rest waits for `hold_until`.
    ready: usize,
    /// A delayed 401 is in the output: nothing more is processed until then.
    hold_until: Option<u64>,
    /// Closing: close once the output is written, or at this time.
    closing_at: Option<u64>,
    accepted: u64,
    last_request: Option<u64>,
    /// A request on it passed access control (always, without access control). Until then
    /// it is closed [`Limits::request_timeout_ns`] after its last request, not at the session
    /// timeout: nobody without the password holds connection slots (with OPTIONS every
    /// minute) and locks out the rest.
    trusted: bool,
    /// Sessions this connection made.
    sessions: usize,
    nonce_use: Option<NonceUse>,
}

struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

impl Slot {
    /// The connection of a slot known to hold one (an index from `slot_of`).
    fn live(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("a live slot")
    }
}

struct Session {
    id: u64,
    conn: ConnId,
    client: SocketAddr,
    profile: Profile,
    transport: ClientTransport,
    /// The session's own peer (unicast); multicast sessions share the group's.
    peer: Option<PeerId>,
    playing: bool,
    last_activity: u64,
    user: Option<String>,
}

/// The multicast group's shared peer, while multicast sessions exist.
struct Group {
    peer: PeerId,
    members: usize,
    playing: usize,
}

/// A response being made.
struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, String)>,
    /// `WWW-Authenticate` values, one header line each.
    challenges: Vec<String>,
    body: Vec<u8>,
    close: bool,
    hold_until: Option<u64>,
}

impl Reply {
    fn new(status: StatusCode) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            challenges: Vec::new(),
            body: Vec::new(),
            close: false,
            hold_until: None,
        }
    }

    fn header(mut self, name: HeaderName, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// What a request URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// `*`
    Star,
    Aggregate,
    Track,
    Other,
}

/// The RTSP server. See [`crate::rtsp`].
pub struct Server {
    /// The path without a trailing '/'.
    base: String,
    track: String,
    timeout_ns: u64,
    timeout_s: u32,
    max_connections: usize,
    limits: Limits,
    auth: Option<Authenticator>,
    throttle: Throttle,
    rng: StdRng,
    slots: Box<[Slot]>,
    sessions: Box<[Option<Session>]>,
    peer_ids: PeerIds,
    group: Option<Group>,
    events: VecDeque<Event>,
    data_events: usize,
    counters: Counters,
}

impl Server {
    /// A server; `seed`: random bytes (session ids and the nonce secret come from it, so it
    /// must be secret and fresh, e.g. `rand::random()`; tests give a fixed one).
    pub fn new(c: ServerConfig, seed: [u8; 32]) -> Result<Server, ConfigError> {
        if !c.path.starts_with('/') || c.path.contains(|ch: char| ch.is_whitespace() || ch == '?' || ch == '#') {
            return Err(ConfigError::Path(c.path));
        }
        if c.track.is_empty() || c.track.contains(['/', '?', '#', ' ']) {
            return Err(ConfigError::Track(c.track));
        }
        if !(1..=MAX_CLIENTS).contains(&c.peer_count) {
            return Err(ConfigError::Clients(c.peer_count));
        }
        if !(1..=MAX_CONNECTION_SLOTS - REFUSING_SLOTS).contains(&c.max_connections) {
            return Err(ConfigError::Connections(c.max_connections));
        }
        if c.session_timeout_s == 0 {
            return Err(ConfigError::Timeout);
        }
        let mut rng = StdRng::from_seed(seed);
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut secret[..]);
        Ok(Server {
            base: c.path.trim_end_matches('/').to_string(),
            track: c.track,
            timeout_ns: u64::from(c.session_timeout_s) * 1_000_000_000,
            timeout_s: c.session_timeout_s,
            max_connections: c.max_connections,
            limits: c.limits,
            auth: c.auth.as_ref().map(|a| Authenticator::new(a, &secret)),
            throttle: Throttle::default(),
            rng,
            slots: (0..c.max_connections + REFUSING_SLOTS)
                .map(|_| Slot {
                    generation: 0,
                    conn: None,
                })
                .collect(),
            sessions: (0..c.peer_count).map(|_| None).collect(),
            peer_ids: PeerIds::new(c.peer_first, c.peer_count),
            group: None,
            events: VecDeque::with_capacity(256),
            data_events: 0,
            counters: Counters::default(),
        })
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Connections open (refusing ones included).
    pub fn connections(&self) -> usize {
        self.slots.iter().filter(|s| s.conn.is_some()).count()
    }

    /// Sessions (set up or playing).
    pub fn sessions(&self) -> usize {
        self.sessions.iter().flatten().count()
    }

    /// A TCP connection from `client` was accepted at `now`. `None`: no slot at all, close
    /// it at once. Beyond `max_connections` the connection gets a slot that answers its first
    /// request 503 and closes.
    pub fn accept(&mut self, now: u64, client: SocketAddr) -> Option<ConnId> {
        self.counters.connections += 1;
        let serving = self.slots.iter().flat_map(|s| &s.conn).filter(|c| !c.refusing).count();
        let refusing = serving >= self.max_connections;
        let Some(i) = self.slots.iter().position(|s| s.conn.is_none()) else {
            self.counters.connections_dropped += 1;
            return None;
        };
        if refusing {
            self.counters.connections_refused += 1;
        }
        let slot = &mut self.slots[i];
        // Never 0: `ConnId::raw` 0 means "no connection" to the TCP sinks.
        slot.generation = slot.generation % ConnId::MAX_GENERATION + 1;
        let id = ConnId::new(i, slot.generation);
        slot.conn = Some(Conn {
            id,
            client,
            refusing,
            input: Vec::with_capacity(self.limits.input_bytes()),
            scan: Scan::default(),
            skip: 0,
            partial_since: None,
            output: Vec::new(),
            ready: 0,
            hold_until: None,
            closing_at: None,
            accepted: now,
            last_request: None,
            trusted: self.auth.is_none(),
            sessions: 0,
            nonce_use: None,
        });
        Some(id)
    }

    fn slot_of(&self, id: ConnId) -> Option<usize> {
        let i = id.index();
        self.slots.get(i)?.conn.as_ref().filter(|c| c.id == id).map(|_| i)
    }

    fn conn(&mut self, i: usize) -> &mut Conn {
        self.slots[i].live()
    }

    /// Bytes read from `conn` at `now`.
    pub fn handle_input(&mut self, now: u64, conn: ConnId, mut bytes: &[u8], media: &mut dyn Media) {
        let Some(i) = self.slot_of(conn) else { return };
        let capacity = self.limits.input_bytes();
        while !bytes.is_empty() {
            let Some(c) = self.slots[i].conn.as_mut() else { return };
            if c.closing_at.is_some() {
                return;
            }
            let room = capacity - c.input.len();
            if room == 0 {
                // Only a held connection stops taking its input: a client that keeps sending
                // while its delayed 401 waits.
                self.counters.too_large += 1;
                self.close_now(now, i);
                return;
            }
            let n = room.min(bytes.len());
            c.input.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            self.process(now, i, media);
        }
        self.mark_partial(now, i);
    }

    /// Starts the request timer of a connection left with an incomplete request.
    fn mark_partial(&mut self, now: u64, i: usize) {
        if let Some(c) = self.slots[i].conn.as_mut() {
            if c.input.is_empty() && c.skip == 0 {
                c.partial_since = None;
            } else if c.partial_since.is_none() {
                c.partial_since = Some(now);
            }
        }
    }

    /// Takes what the connection's input holds, request by request, until it is incomplete,
    /// or the connection waits (a delayed 401) or closes.
    fn process(&mut self, now: u64, i: usize, media: &mut dyn Media) {
        let capacity = self.limits.input_bytes();
        loop {
            let limits = self.limits;
            let Some(c) = self.slots[i].conn.as_mut() else { return };
            if c.closing_at.is_some() || c.hold_until.is_some() {
                return;
            }
            if c.skip > 0 {
                let n = c.skip.min(c.input.len());
                c.input.drain(..n);
                c.skip -= n;
                if c.skip > 0 {
                    return;
                }
                c.partial_since = None;
                continue;
            }
            let item = framing::next(&c.input, &limits, capacity, &mut c.scan);
            if item != Item::Incomplete {
                c.scan = Scan::default();
            }
            match item {
                Item::Incomplete => return,
                Item::Blank(n) => {
                    c.input.drain(..n);
                }
                Item::Frame { channel, len } => {
                    let data = c.input[HEADER_LEN..HEADER_LEN + len].to_vec();
                    c.input.drain(..HEADER_LEN + len);
                    c.partial_since = None;
                    self.on_frame(now, i, channel, data);
                }
                Item::Oversized { len, .. } => {
                    c.skip = HEADER_LEN + len;
                    self.counters.interleaved_dropped += 1;
                }
                Item::Request { len } => {
                    let request: Vec<u8> = c.input.drain(..len).collect();
                    c.partial_since = None;
                    self.on_request(now, i, &request, media);
                }
                Item::Error(e) => {
                    let cseq = scrape_cseq(&c.input);
                    c.input.clear();
                    let status = match e {
                        FramingError::HeadTooLarge | FramingError::TooManyHeaders => {
                            self.counters.too_large += 1;
                            StatusCode::Extension(431)
                        }
                        FramingError::BodyTooLarge => {
                            self.counters.too_large += 1;
                            StatusCode::RequestMessageBodyTooLarge
                        }
                        FramingError::BadContentLength => {
                            self.counters.bad_requests += 1;
                            StatusCode::BadRequest
                        }
                    };
                    let mut reply = Reply::new(status);
                    reply.close = true;
                    self.respond(now, i, cseq, reply);
                    return;
                }
            }
        }
    }

    /// An interleaved frame from a client: RTCP (or RTP) for a session of this connection.
    fn on_frame(&mut self, now: u64, i: usize, channel: u8, data: Vec<u8>) {
        let conn = self.conn(i).id;
        self.counters.interleaved_frames += 1;
        let mut peer = None;
        for s in self.sessions.iter_mut().flatten() {
            if let ClientTransport::Tcp {
                rtp_channel,
                rtcp_channel,
            } = s.transport
            {
                if s.conn == conn && (channel == rtp_channel || channel == rtcp_channel) {
                    s.last_activity = now;
                    peer = s.peer;
                }
            }
        }
        if data.len() > MAX_DATA || self.data_events >= DATA_EVENTS {
            self.counters.interleaved_dropped += 1;
            return;
        }
        self.data_events += 1;
        self.events.push_back(Event::Interleaved {
            conn,
            channel,
            peer,
            data,
        });
    }

    /// The shell saw `conn` end (EOF, error): its sessions end; no `Close` event follows.
    pub fn handle_close(&mut self, now: u64, conn: ConnId) {
        if let Some(i) = self.slot_of(conn) {
            self.release_conn(now, i);
        }
    }

    /// Closes a connection now: its sessions end, the shell is told to close it.
    fn close_now(&mut self, now: u64, i: usize) {
        if let Some(id) = self.release_conn(now, i) {
            self.events.push_back(Event::Close { conn: id });
        }
    }

    fn release_conn(&mut self, now: u64, i: usize) -> Option<ConnId> {
        let id = self.slots[i].conn.as_ref()?.id;
        for k in 0..self.sessions.len() {
            if self.sessions[k].as_ref().is_some_and(|s| s.conn == id) {
                self.end_session(now, k, EndReason::ConnectionClosed);
            }
        }
        self.slots[i].conn = None;
        Some(id)
    }

    /// What may be written to `conn` now (empty when nothing is, or the connection is gone).
    pub fn output(&self, conn: ConnId) -> &[u8] {
        match self.slot_of(conn).and_then(|i| self.slots[i].conn.as_ref()) {
            Some(c) => &c.output[..c.ready],
            None => &[],
        }
    }

    /// `n` bytes of [`Server::output`] were written.
    pub fn consume_output(&mut self, conn: ConnId, n: usize) {
        let Some(i) = self.slot_of(conn) else { return };
        let c = self.conn(i);
        let n = n.min(c.ready);
        c.output.drain(..n);
        c.ready -= n;
        if c.closing_at.is_some() && c.output.is_empty() {
            // `now` does not matter: a closing connection has no session left to time.
            let now = c.closing_at.unwrap_or(0);
            self.close_now(now, i);
        }
    }

    /// A peer the server made was heard from (an RTCP report at `now`): its session lives
    /// on. For the multicast group's peer, every multicast session does. False when no
    /// session has that peer.
    pub fn touch(&mut self, peer: PeerId, now: u64) -> bool {
        let group = self.group.as_ref().is_some_and(|g| g.peer == peer);
        let mut found = false;
        for s in self.sessions.iter_mut().flatten() {
            let mine = s.peer == Some(peer) || (group && matches!(s.transport, ClientTransport::Multicast(_)));
            if mine {
                s.last_activity = s.last_activity.max(now);
                found = true;
            }
        }
        found
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front()?;
        if matches!(e, Event::Interleaved { .. }) {
            self.data_events -= 1;
        }
        Some(e)
    }

    /// When [`Server::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<u64> {
        let sessions = self
            .sessions
            .iter()
            .flatten()
            .map(|s| s.last_activity + self.timeout_ns);
        let conns = self
            .slots
            .iter()
            .flat_map(|s| &s.conn)
            .filter_map(|c| self.conn_deadline(c));
        sessions.chain(conns).min()
    }

    fn conn_deadline(&self, c: &Conn) -> Option<u64> {
        if let Some(t) = c.closing_at {
            return Some(t);
        }
        if let Some(t) = c.hold_until {
            return Some(t);
        }
        let partial = c.partial_since.map(|t| t + self.limits.request_timeout_ns);
        let idle = (c.sessions == 0).then(|| idle_deadline(c, &self.limits, self.timeout_ns));
        [partial, idle].into_iter().flatten().min()
    }

    /// Does what is due at `now`: sessions silent for their timeout end, delayed responses go
    /// out (and the requests behind them are taken), connections that are slow to send a
    /// request, idle, or done closing are closed.
    pub fn handle_timeout(&mut self, now: u64, media: &mut dyn Media) {
        for k in 0..self.sessions.len() {
            if self.sessions[k]
                .as_ref()
                .is_some_and(|s| now >= s.last_activity + self.timeout_ns)
            {
                self.counters.session_timeouts += 1;
                self.end_session(now, k, EndReason::Timeout);
            }
        }
        for i in 0..self.slots.len() {
            let Some(c) = self.slots[i].conn.as_mut() else { continue };
            if let Some(t) = c.closing_at {
                if now >= t {
                    self.close_now(now, i);
                }
                continue;
            }
            if let Some(t) = c.hold_until {
                if now < t {
                    continue;
                }
                c.hold_until = None;
                c.ready = c.output.len();
                c.partial_since = None;
                self.process(now, i, media);
                self.mark_partial(now, i);
                continue;
            }
            if c.partial_since
                .is_some_and(|t| now >= t + self.limits.request_timeout_ns)
            {
                self.counters.request_timeouts += 1;
                self.close_now(now, i);
                continue;
            }
            if c.sessions == 0 && now >= idle_deadline(c, &self.limits, self.timeout_ns) {
                self.counters.idle_closed += 1;
                self.close_now(now, i);
            }
        }
    }

    /// Ends every session and closes every connection (the stream stops).
    pub fn shutdown(&mut self, now: u64) {
        for k in 0..self.sessions.len() {
            if self.sessions[k].is_some() {
                self.end_session(now, k, EndReason::Shutdown);
            }
        }
        for i in 0..self.slots.len() {
            self.close_now(now, i);
        }
    }

    fn end_session(&mut self, _now: u64, k: usize, why: EndReason) {
        let Some(s) = self.sessions[k].take() else { return };
        match s.transport {
            ClientTransport::Multicast(_) => {
                if let Some(g) = self.group.as_mut() {
                    let peer = g.peer;
                    if s.playing {
                        g.playing -= 1;
                        if g.playing == 0 {
                            self.events.push_back(Event::RemovePeer { peer });
                        }
                    }
                    g.members -= 1;
                    if g.members == 0 {
                        self.peer_ids.release(peer);
                        self.group = None;
                    }
                }
            }
            _ => {
                if let Some(peer) = s.peer {
                    if s.playing {
                        self.events.push_back(Event::RemovePeer { peer });
                    }
                    self.peer_ids.release(peer);
                }
            }
        }
        if let Some(i) = self.slot_of(s.conn) {
            self.conn(i).sessions -= 1;
        }
        if s.playing {
            self.counters.sessions_ended += 1;
            self.events.push_back(Event::SessionEnded {
                session: SessionId(s.id),
                client: s.client,
                why,
            });
        }
    }

    /// Queues a response on connection `i`.
    fn respond(&mut self, now: u64, i: usize, cseq: Option<u32>, reply: Reply) {
        let mut b = Response::builder(Version::V1_0, reply.status).reason_phrase(reason(reply.status));
        if let Some(n) = cseq {
            b = b.header(headers::CSEQ, n.to_string());
        }
        for (name, value) in reply.headers {
            b = b.header(name, value);
        }
        let response = b.build(reply.body.as_slice());
        let mut bytes = Vec::with_capacity(256 + reply.body.len());
        if response.write(&mut bytes).is_err() {
            return;
        }
        if !reply.challenges.is_empty() {
            // One `WWW-Authenticate` line per challenge (clients read them apart), which
            // `rtsp_types::Headers` cannot hold: it is a map, and `append` joins values with
            // commas. They go in before the blank line ending the head.
            let end = bytes
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(bytes.len(), |p| p + 2);
            let lines: String = reply
                .challenges
                .iter()
                .map(|c| format!("WWW-Authenticate: {c}\r\n"))
                .collect();
            bytes.splice(end..end, lines.into_bytes());
        }
        let limit = self.limits.output_bytes;
        let c = self.conn(i);
        if !c.output.is_empty() && c.output.len() + bytes.len() > limit {
            self.counters.output_overflows += 1;
            self.close_now(now, i);
            return;
        }
        c.output.extend_from_slice(&bytes);
        match reply.hold_until {
            Some(t) => c.hold_until = Some(t),
            None if c.hold_until.is_none() => c.ready = c.output.len(),
            None => {}
        }
        if reply.close {
            c.closing_at = Some(now + LINGER_NS);
            c.input.clear();
            if c.output.is_empty() {
                self.close_now(now, i);
            }
        }
    }

    fn on_request(&mut self, now: u64, i: usize, bytes: &[u8], media: &mut dyn Media) {
        let request = match Message::<Vec<u8>>::parse(bytes) {
            Ok((Message::Request(r), n)) if n == bytes.len() => r,
            Ok((Message::Response(_), n)) if n == bytes.len() => {
                self.counters.responses_ignored += 1;
                return;
            }
            _ => {
                self.counters.bad_requests += 1;
                let mut reply = Reply::new(StatusCode::BadRequest);
                reply.close = true;
                self.respond(now, i, scrape_cseq(bytes), reply);
                return;
            }
        };
        self.counters.requests += 1;
        let c = self.conn(i);
        c.last_request = Some(now);
        let refusing = c.refusing;
        let cseq = match request.typed_header::<headers::CSeq>() {
            Ok(Some(n)) => Some(*n),
            _ => None,
        };
        if refusing {
            let mut reply = Reply::new(StatusCode::ServiceUnavailable);
            reply.close = true;
            self.respond(now, i, cseq, reply);
            return;
        }
        let reply = match cseq {
            None => {
                self.counters.bad_requests += 1;
                Reply::new(StatusCode::BadRequest)
            }
            Some(_) => self.answer(now, i, &request, media),
        };
        self.respond(now, i, cseq, reply);
    }

    fn answer(&mut self, now: u64, i: usize, r: &Request<Vec<u8>>, media: &mut dyn Media) -> Reply {
        if r.version() != Version::V1_0 {
            self.counters.version_not_supported += 1;
            return Reply::new(StatusCode::RTSPVersionNotSupported);
        }
        if let Some(req) = r.header(&headers::REQUIRE) {
            // We support no extension (RFC 2326 §12.32).
            return Reply::new(StatusCode::OptionNotSupported).header(headers::UNSUPPORTED, req.as_str());
        }
        let target = self.target(r.request_uri());
        let method = r.method().clone();
        if matches!(method, Method::Extension(_)) {
            self.counters.not_implemented += 1;
            return Reply::new(StatusCode::NotImplemented).header(headers::PUBLIC, PUBLIC);
        }
        if matches!(
            method,
            Method::Pause | Method::Announce | Method::Record | Method::Redirect | Method::PlayNotify
        ) {
            self.counters.not_allowed += 1;
            return Reply::new(StatusCode::MethodNotAllowed).header(headers::ALLOW, PUBLIC);
        }
        // The session named, if any: Ok(None) without a `Session` header, Err(()) when it
        // names none we have (for this connection).
        let session = match r.header(&headers::SESSION) {
            None => Ok(None),
            Some(v) => self.find_session(v.as_str(), i).map(Some).ok_or(()),
        };
        let user = if method == Method::Options {
            // OPTIONS needs no credentials (it tells only what the server can do). Without
            // good ones, its `Session` header is ignored: neither kept alive nor looked up.
            if !self.options_trusted(now, i, r, session.is_ok_and(|s| s.is_some())) {
                return Reply::new(StatusCode::Ok).header(headers::PUBLIC, PUBLIC);
            }
            None
        } else {
            match self.authorize(now, i, r, session) {
                Ok(user) => user,
                Err(reply) => return reply,
            }
        };
        let Ok(session) = session else {
            self.counters.not_found += 1;
            return Reply::new(StatusCode::SessionNotFound);
        };
        if let Some(k) = session {
            if let Some(s) = self.sessions[k].as_mut() {
                s.last_activity = s.last_activity.max(now);
            }
        }
        match method {
            Method::Options => match session {
                Some(k) => self.session_reply(StatusCode::Ok, k),
                None => Reply::new(StatusCode::Ok),
            }
            .header(headers::PUBLIC, PUBLIC),
            Method::Describe => self.describe(r, target, media),
            Method::Setup => self.setup(now, i, r, target, session, user, media),
            Method::Play => self.play(r, target, session, media),
            Method::Teardown => match session {
                None => {
                    self.counters.not_found += 1;
                    Reply::new(StatusCode::SessionNotFound)
                }
                Some(k) => {
                    let reply = self.session_reply(StatusCode::Ok, k);
                    self.end_session(now, k, EndReason::Teardown);
                    reply
                }
            },
            Method::GetParameter | Method::SetParameter => {
                let status = if r.body().is_empty() {
                    StatusCode::Ok
                } else {
                    StatusCode::ParameterNotUnderstood
                };
                match session {
                    Some(k) => self.session_reply(status, k),
                    None => Reply::new(status),
                }
            }
            _ => {
                self.counters.not_implemented += 1;
                Reply::new(StatusCode::NotImplemented)
            }
        }
    }

    /// Checks the request's credentials: the user, or the 401 to answer.
    fn authorize(
        &mut self,
        now: u64,
        i: usize,
        r: &Request<Vec<u8>>,
        session: Result<Option<usize>, ()>,
    ) -> Result<Option<String>, Reply> {
        let Some(auth) = self.auth.as_ref() else {
            return Ok(None);
        };
        let path = r.request_uri().map(|u| u.path().to_string());
        let method: &str = r.method().into();
        let header = r.header(&headers::AUTHORIZATION).map(|v| v.as_str());
        let c = self.slots[i].live();
        let ip = c.client.ip();
        let verdict = auth.check(now, method, path.as_deref(), header, &mut c.nonce_use);
        let stale = match verdict {
            Verdict::Granted => {
                c.trusted = true;
                self.throttle.succeeded(ip);
                return Ok(Some(auth.user().to_string()));
            }
            // RFC 7616 lets a server take a stale nonce it knows to be its own. We do for
            // requests on a live session (keepalives, TEARDOWN): clients send keepalives
            // without reading their answers (ffmpeg, rtspsrc), so a 401 there would end
            // the session at its timeout. Requests that create state get `stale=true`.
            Verdict::Stale { expired: true } if matches!(session, Ok(Some(_))) => {
                return Ok(Some(auth.user().to_string()));
            }
            Verdict::Stale { .. } => {
                self.counters.auth_stale += 1;
                true
            }
            Verdict::Missing => {
                self.counters.auth_challenges += 1;
                false
            }
            Verdict::Failed => false,
        };
        let mut reply = Reply::new(StatusCode::Unauthorized);
        reply.challenges = auth.challenges(now, stale);
        if verdict == Verdict::Failed {
            self.counters.auth_failures += 1;
            let release = self.throttle.failed(now, ip);
            if release > now {
                self.counters.auth_delayed += 1;
                reply.hold_until = Some(release);
            }
        }
        Err(reply)
    }

    /// An OPTIONS request may touch a session: there is no access control, or it carries
    /// credentials that would be granted. Checked quietly: no counter, no slowing (the answer
    /// is the same 200 either way).
    fn options_trusted(&mut self, now: u64, i: usize, r: &Request<Vec<u8>>, on_session: bool) -> bool {
        let Some(auth) = self.auth.as_ref() else {
            return true;
        };
        let Some(header) = r.header(&headers::AUTHORIZATION) else {
            return false;
        };
        let path = r.request_uri().map(|u| u.path().to_string());
        let c = self.slots[i].live();
        match auth.check(now, "OPTIONS", path.as_deref(), Some(header.as_str()), &mut c.nonce_use) {
            Verdict::Granted => {
                c.trusted = true;
                true
            }
            Verdict::Stale { expired: true } => on_session,
            _ => false,
        }
    }

    /// The session named by a `Session` header that connection `i` may use.
    fn find_session(&self, header: &str, i: usize) -> Option<usize> {
        let id = header.split(';').next()?.trim();
        if id.len() != 16 {
            return None;
        }
        let id = u64::from_str_radix(id, 16).ok()?;
        let conn = self.slots[i].conn.as_ref()?.id;
        self.sessions.iter().position(|s| {
            s.as_ref()
                .is_some_and(|s| s.id == id && (s.conn == conn || !matches!(s.transport, ClientTransport::Tcp { .. })))
        })
    }

    fn session_reply(&self, status: StatusCode, k: usize) -> Reply {
        let Some(s) = self.sessions[k].as_ref() else {
            return Reply::new(status);
        };
        Reply::new(status).header(headers::SESSION, format!("{:016x};timeout={}", s.id, self.timeout_s))
    }

    fn target(&self, url: Option<&Url>) -> Target {
        let Some(url) = url else { return Target::Star };
        let path = url.path();
        let Some(rest) = path.strip_prefix(self.base.as_str()) else {
            return Target::Other;
        };
        match rest.strip_prefix('/') {
            None if rest.is_empty() => Target::Aggregate,
            Some("") => Target::Aggregate,
            Some(t) if t == self.track => Target::Track,
            _ => Target::Other,
        }
    }

    fn not_found(&mut self) -> Reply {
        self.counters.not_found += 1;
        Reply::new(StatusCode::NotFound)
    }

    fn describe(&mut self, r: &Request<Vec<u8>>, target: Target, media: &mut dyn Media) -> Reply {
        let (Target::Aggregate, Some(url)) = (target, r.request_uri()) else {
            return self.not_found();
        };
        let mut base = public_url(url);
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let mut reply = Reply::new(StatusCode::Ok)
            .header(headers::CONTENT_TYPE, "application/sdp")
            .header(headers::CONTENT_BASE, base.as_str());
        reply.body = media.sdp().as_bytes().to_vec();
        reply
    }

    #[allow(clippy::too_many_arguments)]
    fn setup(
        &mut self,
        now: u64,
        i: usize,
        r: &Request<Vec<u8>>,
        target: Target,
        session: Option<usize>,
        user: Option<String>,
        media: &mut dyn Media,
    ) -> Reply {
        if !matches!(target, Target::Aggregate | Target::Track) {
            return self.not_found();
        }
        let Some(header) = r.header(&headers::TRANSPORT) else {
            self.counters.bad_requests += 1;
            return Reply::new(StatusCode::BadRequest);
        };
        let c = self.conn(i);
        let (conn, client) = (c.id, c.client);
        let offer = Offer {
            srtp: media.srtp(),
            client: client.ip(),
            multicast: media.multicast(),
        };
        let (choice, profile) = match transport::choose(header.as_str(), &offer) {
            Ok(c) => c,
            Err(refusal) => {
                let status = match refusal {
                    Refusal::Malformed => {
                        self.counters.bad_requests += 1;
                        return Reply::new(StatusCode::BadRequest);
                    }
                    Refusal::Unsupported => StatusCode::UnsupportedTransport,
                    Refusal::DestinationProhibited => StatusCode::DestinationProhibited,
                };
                self.counters.transports_refused += 1;
                return Reply::new(status);
            }
        };
        let granted_transport = match choice {
            Choice::Udp { rtp_port, rtcp_port } => {
                let ip = canonical(client).ip();
                ClientTransport::Udp {
                    rtp: SocketAddr::new(ip, rtp_port),
                    rtcp: SocketAddr::new(ip, rtcp_port),
                }
            }
            Choice::Tcp { channels } => {
                let (rtp_channel, rtcp_channel) = self.channels(conn, channels, session);
                ClientTransport::Tcp {
                    rtp_channel,
                    rtcp_channel,
                }
            }
            Choice::Multicast => match offer.multicast {
                Some(g) => ClientTransport::Multicast(g),
                None => {
                    self.counters.transports_refused += 1;
                    return Reply::new(StatusCode::UnsupportedTransport);
                }
            },
        };
        let k = match session {
            // A second SETUP of the session's one track: the same answer if nothing changes;
            // a session cannot change its transport (455).
            Some(k) => {
                let same = self.sessions[k]
                    .as_ref()
                    .is_some_and(|s| !s.playing && s.transport == granted_transport && s.profile == profile);
                if !same {
                    self.counters.wrong_state += 1;
                    return Reply::new(StatusCode::MethodNotValidInThisState);
                }
                k
            }
            None => match self.new_session(now, conn, client, profile, granted_transport, user) {
                Some(k) => k,
                None => {
                    self.counters.clients_full += 1;
                    return Reply::new(StatusCode::NotEnoughBandwidth);
                }
            },
        };
        let granted = match granted_transport {
            ClientTransport::Udp { rtp, rtcp } => Granted::Udp {
                client_ports: (rtp.port(), rtcp.port()),
                server_ports: media.server_ports(),
            },
            ClientTransport::Tcp {
                rtp_channel,
                rtcp_channel,
            } => Granted::Tcp {
                channels: (rtp_channel, rtcp_channel),
            },
            ClientTransport::Multicast(g) => Granted::Multicast(g),
        };
        self.session_reply(StatusCode::Ok, k)
            .header(headers::TRANSPORT, transport::reply(profile, &granted, media.ssrc()))
    }

    /// Interleaved channels for a session of `conn`: those asked for if no other session of
    /// the connection has them, else the lowest free pair.
    fn channels(&self, conn: ConnId, asked: Option<(u8, u8)>, except: Option<usize>) -> (u8, u8) {
        let used = |ch: u8| {
            self.sessions.iter().enumerate().any(|(k, s)| {
                Some(k) != except
                    && s.as_ref().is_some_and(|s| {
                        s.conn == conn
                            && matches!(s.transport, ClientTransport::Tcp { rtp_channel, rtcp_channel }
                                if rtp_channel == ch || rtcp_channel == ch)
                    })
            })
        };
        if let Some((a, b)) = asked {
            if a != b && !used(a) && !used(b) {
                return (a, b);
            }
        }
        // Sessions ≤ 256 and each uses two channels of 256: some pair below is free when
        // a connection has fewer than 128 TCP sessions, and the session table is smaller.
        (0..=127u8)
            .map(|p| (2 * p, 2 * p + 1))
            .find(|&(a, b)| !used(a) && !used(b))
            .unwrap_or((254, 255))
    }

    fn new_session(
        &mut self,
        now: u64,
        conn: ConnId,
        client: SocketAddr,
        profile: Profile,
        transport: ClientTransport,
        user: Option<String>,
    ) -> Option<usize> {
        let k = self.sessions.iter().position(Option::is_none)?;
        let peer = match transport {
            ClientTransport::Multicast(_) => {
                if self.group.is_none() {
                    let peer = self.peer_ids.allocate()?;
                    self.group = Some(Group {
                        peer,
                        members: 0,
                        playing: 0,
                    });
                }
                let g = self.group.as_mut()?;
                g.members += 1;
                None
            }
            _ => Some(self.peer_ids.allocate()?),
        };
        let id = loop {
            let id = self.rng.next_u64();
            if id != 0 && !self.sessions.iter().flatten().any(|s| s.id == id) {
                break id;
            }
        };
        self.sessions[k] = Some(Session {
            id,
            conn,
            client,
            profile,
            transport,
            peer,
            playing: false,
            last_activity: now,
            user,
        });
        if let Some(i) = self.slot_of(conn) {
            self.conn(i).sessions += 1;
        }
        self.counters.sessions_created += 1;
        Some(k)
    }

    fn play(&mut self, r: &Request<Vec<u8>>, target: Target, session: Option<usize>, media: &mut dyn Media) -> Reply {
        let Some(k) = session else {
            self.counters.wrong_state += 1;
            return Reply::new(StatusCode::MethodNotValidInThisState);
        };
        if !matches!(target, Target::Aggregate | Target::Track) {
            return self.not_found();
        }
        let (seq, rtptime) = media.play_position();
        let group = self.group.as_ref().map(|g| g.peer);
        let Some(s) = self.sessions[k].as_mut() else {
            return Reply::new(StatusCode::SessionNotFound);
        };
        if !s.playing {
            s.playing = true;
            let (peer, spec) = match s.transport {
                ClientTransport::Udp { rtp, rtcp } => (
                    s.peer,
                    PeerSpec {
                        rtp: Some(Route::Udp(rtp)),
                        rtcp: Some(Route::Udp(rtcp)),
                        rtcp_mux: rtp == rtcp,
                        multicast: false,
                    },
                ),
                ClientTransport::Tcp {
                    rtp_channel,
                    rtcp_channel,
                } => (
                    s.peer,
                    PeerSpec {
                        rtp: Some(Route::Interleaved {
                            conn: s.conn.raw(),
                            channel: rtp_channel,
                        }),
                        rtcp: Some(Route::Interleaved {
                            conn: s.conn.raw(),
                            channel: rtcp_channel,
                        }),
                        rtcp_mux: false,
                        multicast: false,
                    },
                ),
                ClientTransport::Multicast(g) => (group, PeerSpec::udp(Some(g.group), true, false)),
            };
            let info = SessionInfo {
                session: SessionId(s.id),
                conn: s.conn,
                client: s.client,
                transport: s.transport,
                profile: s.profile,
                user: s.user.clone(),
                peer: peer.unwrap_or(PeerId::new(u32::MAX, 0)),
            };
            let multicast = matches!(s.transport, ClientTransport::Multicast(_));
            let first_of_group = match self.group.as_mut() {
                Some(g) if multicast => {
                    g.playing += 1;
                    g.playing == 1
                }
                _ => false,
            };
            if let Some(peer) = peer {
                if !multicast || first_of_group {
                    self.events.push_back(Event::AddPeer { peer, spec });
                }
            }
            self.counters.sessions_started += 1;
            self.events.push_back(Event::SessionStarted(info));
        }
        let mut reply = self.session_reply(StatusCode::Ok, k).header(headers::RANGE, "npt=now-");
        if let Some(url) = r.request_uri() {
            let mut track = public_url(url);
            track.set_path(&format!("{}/{}", self.base, self.track));
            reply = reply.header(headers::RTP_INFO, format!("url={track};seq={seq};rtptime={rtptime}"));
        }
        reply
    }
}

/// When a connection without sessions is closed for saying nothing.
fn idle_deadline(c: &Conn, limits: &Limits, timeout_ns: u64) -> u64 {
    match c.last_request {
        // A new connection must speak at once; a refusing one has nothing to wait for.
        None => c.accepted + limits.request_timeout_ns,
        Some(t) if c.refusing => t + limits.request_timeout_ns,
        // Answered (a delayed 401 included), then a few seconds to come back with credentials.
        Some(t) if !c.trusted => t.max(c.hold_until.unwrap_or(0)) + limits.request_timeout_ns,
        Some(t) => t + timeout_ns,
    }
}

/// `url` without credentials, query or fragment: what may be shown back to a client.
fn public_url(url: &Url) -> Url {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u
}

/// The reason phrase we send: RFC 2326's wording.
fn reason(status: StatusCode) -> String {
    match status {
        StatusCode::Ok => "OK".into(),
        StatusCode::Extension(431) => "Request Header Fields Too Large".into(),
        StatusCode::RequestMessageBodyTooLarge => "Request Entity Too Large".into(),
        s => s.to_string(),
    }
}

/// The CSeq of a request that cannot be parsed, to answer it all the same.
fn scrape_cseq(bytes: &[u8]) -> Option<u32> {
    let head = &bytes[..bytes.len().min(8 * 1024)];
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        if !line[..colon].trim_ascii().eq_ignore_ascii_case(b"cseq") {
            return None;
        }
        std::str::from_utf8(&line[colon + 1..]).ok()?.trim().parse().ok()
    })
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("path", &self.base)
            .field("track", &self.track)
            .field("auth", &self.auth)
            .field("connections", &self.connections())
            .field("sessions", &self.sessions())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
