//! The `rtpmic-rtsp` thread: the I/O shell of the RTSP server (`crate::rtsp::Server`, sans
//! I/O). It accepts and reads TCP connections and gives the bytes to the server; writes the
//! server's responses and, for clients that pull over TCP, the frames the sending thread
//! queued for them ([`TcpSinks`]), whole frames only, a response only between two frames;
//! turns the server's events into peers joining and leaving the send session (a control
//! ring), hands on the RTCP clients send on their connection (a ring), tells the server
//! when a client's RTCP reports keep its session alive, disconnects a TCP client whose
//! queue stays full for `RTPMIC_RTSP_TCP_STALL_MS`, and logs each client session's start and
//! end. Not a real-time thread: it may allocate and log; the stream never waits for it.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use tracing::{info, warn};

use super::control::{Control, InDatagram, SessionView, MAX_IN_DATAGRAM};
use super::tcp_sink::TcpSinks;
use crate::ops::stats::Stats;
use crate::ring::{Producer, Pushed};
use crate::rt::now_ns;
use crate::rtp::session::PeerId;
use crate::rtsp::{ClientTransport, ConnId, EndReason, Event, Media, MulticastGroup, Server, SessionId, SessionInfo};

const LISTENER: Token = Token(usize::MAX);
const WAKE: Token = Token(usize::MAX - 1);
/// SO_SNDBUF of a client connection (the kernel doubles it): a few seconds of a voice stream.
const SEND_BUFFER: usize = 16 * 1024;
/// Longest wait between two looks at timeouts, stalls and liveness.
const TICK: Duration = Duration::from_millis(100);

/// What the stream is, for DESCRIBE, SETUP and PLAY.
pub struct StreamFacts {
    /// The SDP DESCRIBE serves (`a=control:` naming the server's track).
    pub sdp: String,
    /// The stream's RTP and RTCP ports (`server_port=`).
    pub server_ports: (u16, u16),
    pub ssrc: u32,
    pub multicast: Option<MulticastGroup>,
    pub srtp: bool,
}

/// The server's counters and client count, for the main thread's stats line and STATUS.
#[derive(Default)]
pub struct RtspCounters {
    /// Client sessions playing now.
    pub clients: AtomicUsize,
    pub sessions_started: AtomicU64,
    pub requests: AtomicU64,
    /// Requests refused as malformed, too large, too slow, unknown, or from too many
    /// connections.
    pub refused: AtomicU64,
    pub auth_failures: AtomicU64,
    /// TCP clients disconnected for not reading.
    pub stalled: AtomicU64,
}

/// Everything the RTSP thread works with.
pub struct RtspContext {
    pub server: Server,
    /// `None` only between two servers (a reload).
    pub listener: Option<std::net::TcpListener>,
    /// What the server was made with: its connection slots, and its first peer slot.
    pub max_connections: usize,
    pub peer_first: usize,
    pub facts: StreamFacts,
    /// Peers joining and leaving the send session.
    pub controls: Producer<Control>,
    /// RTCP TCP clients send on their connection, for the send session.
    pub rtcp: Producer<InDatagram>,
    /// Where RTCP that cannot be handed on (too long, the ring full) is counted.
    pub rtcp_counters: Arc<crate::net::sender::RtcpInCounters>,
    pub sinks: Arc<TcpSinks>,
    pub view: Arc<SessionView>,
    pub stats: Arc<Stats>,
    pub counters: Arc<RtspCounters>,
    pub tcp_stall_ns: u64,
    /// What the servers before this one counted (a reload starts a new server): the
    /// published counters go on from there.
    pub earlier: Tally,
}

/// The server counters the stats line shows, summed over the servers a run had.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    pub sessions_started: u64,
    pub requests: u64,
    pub refused: u64,
    pub auth_failures: u64,
}

impl Tally {
    fn of(c: &crate::rtsp::Counters) -> Tally {
        Tally {
            sessions_started: c.sessions_started,
            requests: c.requests,
            refused: c.bad_requests
                + c.not_implemented
                + c.too_large
                + c.request_timeouts
                + c.connections_refused
                + c.connections_dropped
                + c.output_overflows,
            auth_failures: c.auth_failures,
        }
    }

    fn plus(self, o: Tally) -> Tally {
        Tally {
            sessions_started: self.sessions_started + o.sessions_started,
            requests: self.requests + o.requests,
            refused: self.refused + o.refused,
            auth_failures: self.auth_failures + o.auth_failures,
        }
    }
}

impl RtspContext {
    /// A reload's new server replaces the old one; what the old one counted is kept.
    pub fn replace_server(&mut self, server: Server) {
        self.earlier = self.earlier.plus(Tally::of(self.server.counters()));
        self.server = server;
    }
}

/// [`Media`] over the facts and the sending thread's published position.
struct ShellMedia<'a> {
    facts: &'a StreamFacts,
    view: &'a SessionView,
}

impl Media for ShellMedia<'_> {
    fn sdp(&self) -> &str {
        &self.facts.sdp
    }
    fn server_ports(&self) -> (u16, u16) {
        self.facts.server_ports
    }
    fn ssrc(&self) -> u32 {
        self.facts.ssrc
    }
    fn multicast(&self) -> Option<MulticastGroup> {
        self.facts.multicast
    }
    fn srtp(&self) -> bool {
        self.facts.srtp
    }
    fn play_position(&mut self) -> (u16, u32) {
        // The next packet the stream makes: the control ring is read before it is sent, so
        // the new peer gets it or a later one.
        self.view.position()
    }
}

/// One open connection.
struct Conn {
    id: ConnId,
    stream: TcpStream,
    client: SocketAddr,
    /// Bytes of the sink frame being written that are still to go.
    frame_left: usize,
}

/// A client session that plays, for its end-of-session line.
struct Playing {
    info: SessionInfo,
    started_ns: u64,
    /// The last report heard that was passed to the server as liveness.
    touched_ns: u64,
}

/// Body of the `rtpmic-rtsp` thread: serves until `stop`, then ends every session (their
/// peers leave the send session with a BYE) and closes every connection. Gives the context
/// back, so a reload can start another server with the same rings.
pub fn run(mut ctx: RtspContext, stop: &AtomicBool) -> RtspContext {
    serve(&mut ctx, stop);
    ctx
}

fn serve(ctx: &mut RtspContext, stop: &AtomicBool) {
    let Ok(mut poll) = Poll::new() else {
        warn!(event = "rtsp", "RTSP server: cannot create epoll; no RTSP");
        return;
    };
    let Some(std_listener) = ctx.listener.as_ref().and_then(|l| l.try_clone().ok()) else {
        return;
    };
    if std_listener.set_nonblocking(true).is_err() {
        warn!(
            event = "rtsp",
            "RTSP server: cannot make the listener non-blocking; no RTSP"
        );
        return;
    }
    let mut listener = TcpListener::from_std(std_listener);
    let wake_fd = ctx.sinks.wake.raw_fd();
    let registered = poll
        .registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .and_then(|()| {
            poll.registry()
                .register(&mut mio::unix::SourceFd(&wake_fd), WAKE, Interest::READABLE)
        });
    if let Err(e) = registered {
        warn!(event = "rtsp", "RTSP server: cannot wait for connections: {e}; no RTSP");
        return;
    }
    let mut shell = Shell {
        conns: HashMap::new(),
        playing: HashMap::new(),
        buf: vec![0u8; 64 * 1024],
    };
    let mut events = Events::with_capacity(64);
    while !stop.load(Relaxed) {
        let now = now_ns();
        let timeout = ctx
            .server
            .poll_timeout()
            .map_or(TICK, |t| Duration::from_nanos(t.saturating_sub(now)).min(TICK));
        ctx.sinks.wake.prepare_wait();
        let ready = ctx.sinks.take_pending();
        let wait = if ready { Duration::ZERO } else { timeout };
        if let Err(e) = poll.poll(&mut events, Some(wait)) {
            if e.kind() != io::ErrorKind::Interrupted {
                warn!(event = "rtsp", "RTSP server: poll: {e}");
                break;
            }
        }
        ctx.sinks.wake.cancel_wait();
        ctx.sinks.wake.drain();
        for ev in events.iter() {
            match ev.token() {
                LISTENER => shell.accept(ctx, &listener, &poll),
                WAKE => {}
                Token(i) => {
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        shell.read(ctx, i);
                    }
                }
            }
        }
        let now = now_ns();
        shell.touch_from_reports(ctx, now);
        if ctx.server.poll_timeout().is_some_and(|t| now >= t) {
            let mut media = ShellMedia {
                facts: &ctx.facts,
                view: &ctx.view,
            };
            ctx.server.handle_timeout(now, &mut media);
        }
        shell.drop_stalled(ctx, now);
        shell.take_events(ctx, &poll, now);
        shell.write_all(ctx, &poll, now);
        ctx.counters.clients.store(shell.playing.len(), Relaxed);
        publish(ctx);
    }
    let now = now_ns();
    ctx.server.shutdown(now);
    shell.take_events(ctx, &poll, now);
    ctx.counters.clients.store(0, Relaxed);
    publish(ctx);
}

/// The server's counters (with those of the servers before it), for the stats line.
fn publish(ctx: &RtspContext) {
    let t = ctx.earlier.plus(Tally::of(ctx.server.counters()));
    let r = &ctx.counters;
    r.sessions_started.store(t.sessions_started, Relaxed);
    r.requests.store(t.requests, Relaxed);
    r.refused.store(t.refused, Relaxed);
    r.auth_failures.store(t.auth_failures, Relaxed);
}

struct Shell {
    /// Open connections by their slot (a `ConnId`'s index, also their mio token).
    conns: HashMap<usize, Conn>,
    playing: HashMap<SessionId, Playing>,
    buf: Vec<u8>,
}

impl Shell {
    fn accept(&mut self, ctx: &mut RtspContext, listener: &TcpListener, poll: &Poll) {
        loop {
            let (mut stream, client) = match listener.accept() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors and the like: try again at the next readiness.
                Err(_) => return,
            };
            let Some(id) = ctx.server.accept(now_ns(), client) else {
                continue; // no slot at all: dropped, which closes it
            };
            // RTSP requests and media frames are small and must not wait for more (Nagle).
            let _ = stream.set_nodelay(true);
            // A small kernel send buffer: a client that stops reading fills it (and then its
            // sink) soon, and 64 clients do not hold megabytes of kernel memory each.
            let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
            let slot = slot_of(id);
            if poll
                .registry()
                .register(&mut stream, Token(slot), Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                ctx.server.handle_close(now_ns(), id);
                continue;
            }
            ctx.sinks.attach(id.raw());
            self.conns.insert(
                slot,
                Conn {
                    id,
                    stream,
                    client,
                    frame_left: 0,
                },
            );
        }
    }

    /// Reads what connection `slot` has and gives it to the server.
    fn read(&mut self, ctx: &mut RtspContext, slot: usize) {
        let Some(c) = self.conns.get_mut(&slot) else { return };
        loop {
            match c.stream.read(&mut self.buf) {
                Ok(0) => {
                    ctx.server.handle_close(now_ns(), c.id);
                    self.forget(ctx, slot);
                    return;
                }
                Ok(n) => {
                    let mut media = ShellMedia {
                        facts: &ctx.facts,
                        view: &ctx.view,
                    };
                    ctx.server.handle_input(now_ns(), c.id, &self.buf[..n], &mut media);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    ctx.server.handle_close(now_ns(), c.id);
                    self.forget(ctx, slot);
                    return;
                }
            }
        }
    }

    /// The connection is gone: its socket closes, its sink empties.
    fn forget(&mut self, ctx: &RtspContext, slot: usize) {
        if let Some(c) = self.conns.remove(&slot) {
            ctx.sinks.detach(c.id.raw());
        }
    }

    /// Reports heard from clients keep their sessions alive (RTCP as keepalive).
    fn touch_from_reports(&mut self, ctx: &mut RtspContext, now: u64) {
        for p in self.playing.values_mut() {
            if let Some(h) = ctx.view.heard(p.info.peer) {
                if h.at_ns > p.touched_ns {
                    p.touched_ns = h.at_ns;
                    ctx.server.touch(p.info.peer, now);
                }
            }
        }
    }

    /// TCP clients whose queue stayed full too long stopped reading: disconnected.
    fn drop_stalled(&mut self, ctx: &mut RtspContext, now: u64) {
        let stalled: Vec<(usize, ConnId, SocketAddr, u64)> = self
            .conns
            .iter()
            .filter_map(|(&slot, c)| {
                let (since, dropped) = ctx.sinks.congestion(c.id.raw());
                (since != 0 && now.saturating_sub(since) > ctx.tcp_stall_ns).then_some((slot, c.id, c.client, dropped))
            })
            .collect();
        for (slot, id, client, dropped) in stalled {
            warn!(
                event = "rtsp_stalled",
                "RTSP client {client}: not reading for {} ms ({dropped} packets dropped); disconnected",
                ctx.tcp_stall_ns / 1_000_000
            );
            ctx.counters.stalled.fetch_add(1, Relaxed);
            ctx.server.handle_close(now, id);
            self.forget(ctx, slot);
        }
    }

    /// The server's events: peers to the send session, RTCP on, log lines, closes.
    fn take_events(&mut self, ctx: &mut RtspContext, poll: &Poll, now: u64) {
        while let Some(e) = ctx.server.poll_event() {
            match e {
                Event::AddPeer { peer, spec } => {
                    // A new client in this slot: its counters start from zero.
                    if let Some(c) = ctx.stats.peers.get(peer.index()) {
                        c.datagrams.store(0, Relaxed);
                        c.errors.store(0, Relaxed);
                    }
                    push_control(&mut ctx.controls, Control::SetPeer { id: peer, spec });
                }
                Event::RemovePeer { peer } => {
                    push_control(&mut ctx.controls, Control::RemovePeer { id: peer });
                }
                Event::SessionStarted(info) => {
                    info!(
                        event = "rtsp_session",
                        session = info.session.short().as_str(),
                        "RTSP client {} playing: session {}, {}, user {}",
                        info.client,
                        info.session.short(),
                        describe_transport(&info.transport),
                        info.user.as_deref().unwrap_or("-")
                    );
                    self.playing.insert(
                        info.session,
                        Playing {
                            info,
                            started_ns: now,
                            touched_ns: 0,
                        },
                    );
                }
                Event::SessionEnded { session, client, why } => {
                    if let Some(p) = self.playing.remove(&session) {
                        self.log_end(ctx, &p, why, now);
                    } else {
                        info!(
                            event = "rtsp_session_end",
                            "RTSP client {client}: session ended ({why:?})"
                        );
                    }
                }
                Event::Interleaved { conn, peer, data, .. } => {
                    let (Some(peer), Some(client)) = (peer, self.conns.get(&slot_of(conn)).map(|c| c.client)) else {
                        continue;
                    };
                    hand_rtcp(ctx, peer, client, &data);
                }
                Event::Close { conn } => {
                    let slot = slot_of(conn);
                    if self.conns.get(&slot).is_some_and(|c| c.id == conn) {
                        if let Some(mut c) = self.conns.remove(&slot) {
                            let _ = poll.registry().deregister(&mut c.stream);
                            ctx.sinks.detach(conn.raw());
                        }
                    }
                }
            }
        }
    }

    /// The end-of-session line: what the client got (packets, drops: the peer's counters)
    /// and what its last receiver report said.
    fn log_end(&self, ctx: &RtspContext, p: &Playing, why: EndReason, now: u64) {
        let counters = ctx.stats.peers.get(p.info.peer.index());
        let sent = counters.map_or(0, |c| c.datagrams.load(Relaxed));
        let drops = counters.map_or(0, |c| c.errors.load(Relaxed));
        let report = ctx
            .view
            .heard(p.info.peer)
            .map_or("no receiver report".to_string(), |h| {
                format!(
                    "last report {:.1} % loss, {:.1} ms jitter",
                    h.fraction_lost * 100.0,
                    h.jitter_ms
                )
            });
        info!(
            event = "rtsp_session_end",
            session = p.info.session.short().as_str(),
            packets = sent,
            drops,
            "RTSP client {} done: session {} ({why:?}) after {:.1} s, {sent} packets, {drops} dropped, {report}",
            p.info.client,
            p.info.session.short(),
            now.saturating_sub(p.started_ns) as f64 / 1e9
        );
    }

    /// Writes what every connection has to go: the rest of a frame, then responses, then
    /// frames, until the socket takes no more.
    fn write_all(&mut self, ctx: &mut RtspContext, poll: &Poll, now: u64) {
        let slots: Vec<usize> = self.conns.keys().copied().collect();
        for slot in slots {
            if let Err(()) = self.write_conn(ctx, slot) {
                if let Some(c) = self.conns.get(&slot) {
                    ctx.server.handle_close(now, c.id);
                }
                if let Some(mut c) = self.conns.remove(&slot) {
                    let _ = poll.registry().deregister(&mut c.stream);
                    ctx.sinks.detach(c.id.raw());
                }
            }
        }
        // Closing the ones whose last response went out.
        self.take_events(ctx, poll, now);
    }

    /// One connection's writing. `Err` when the socket failed.
    fn write_conn(&mut self, ctx: &mut RtspContext, slot: usize) -> Result<(), ()> {
        let Some(c) = self.conns.get_mut(&slot) else {
            return Ok(());
        };
        let raw = c.id.raw();
        loop {
            if c.frame_left > 0 {
                let q = ctx.sinks.queued(raw);
                let part = &q[..q.len().min(c.frame_left)];
                match write_some(&mut c.stream, part)? {
                    0 => return Ok(()),
                    n => {
                        ctx.sinks.consume(raw, n);
                        c.frame_left -= n;
                    }
                }
                continue;
            }
            // Between two frames: a response first, whole before any frame.
            let out = ctx.server.output(c.id);
            if !out.is_empty() {
                let n = write_some(&mut c.stream, out)?;
                ctx.server.consume_output(c.id, n);
                if n == 0 {
                    return Ok(());
                }
                continue;
            }
            match ctx.sinks.next_frame_len(raw) {
                Some(len) => c.frame_left = len,
                None => return Ok(()),
            }
        }
    }
}

/// Writes what the socket takes of `bytes` now; 0 when it takes nothing (it is full).
fn write_some(stream: &mut TcpStream, bytes: &[u8]) -> Result<usize, ()> {
    if bytes.is_empty() {
        return Ok(0);
    }
    loop {
        match stream.write(bytes) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(()),
        }
    }
}

/// A connection's slot: its id's index, also its mio token.
fn slot_of(id: ConnId) -> usize {
    id.index()
}

/// Peers join and leave through a ring that holds two messages per client slot: it never
/// overwrites one in practice; if it ever did, the oldest would go (counted nowhere else),
/// so say so.
fn push_control(controls: &mut Producer<Control>, c: Control) {
    if controls.push(|slot| *slot = c) != Pushed::Stored {
        warn!(
            event = "rtsp",
            "RTSP server: the peer ring was full; a peer change was lost"
        );
    }
}

/// RTCP a TCP client sent on its connection, to the send session (as if from its peer).
fn hand_rtcp(ctx: &mut RtspContext, peer: PeerId, client: SocketAddr, data: &[u8]) {
    if data.len() > MAX_IN_DATAGRAM {
        ctx.rtcp_counters.malformed.fetch_add(1, Relaxed);
        return;
    }
    let (arrival_ns, arrival_ntp) = (now_ns(), crate::rtp::rtcp::ntp_now());
    let pushed = ctx.rtcp.push(|d: &mut InDatagram| {
        d.data[..data.len()].copy_from_slice(data);
        d.len = data.len();
        d.from = client;
        d.peer = Some(peer);
        d.arrival_ns = arrival_ns;
        d.arrival_ntp = arrival_ntp;
    });
    if pushed != crate::ring::Pushed::Stored {
        ctx.rtcp_counters.dropped.fetch_add(1, Relaxed);
    }
}

fn describe_transport(t: &ClientTransport) -> String {
    match t {
        ClientTransport::Udp { rtp, .. } => format!("UDP to {rtp}"),
        ClientTransport::Tcp { rtp_channel, .. } => format!("TCP interleaved channel {rtp_channel}"),
        ClientTransport::Multicast(g) => format!("multicast {}", g.group),
    }
}
