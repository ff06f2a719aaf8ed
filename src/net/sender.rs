//! The sending shell: the send session ([`SendSession`], sans I/O) with the I/O around it,
//! owned by the one thread that sends.
//!
//! It feeds the session what other threads hand over through rings (peers joining and
//! leaving, RTCP received), asks it what is due (`poll_transmit`), has the backend send that
//! in chunks, counts the outcome in one place ([`Stats::account`]), records each packet's
//! software-added latency, sleeps until a paced packet's release time, and passes the
//! session's events on to the main thread. [`run`] is the body of the `rtpmic-send` thread;
//! with fewer threads (`RTPMIC_THREADS`), the thread that encodes drives a `SendShell`
//! directly. No allocation, lock or log after start.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use super::control::{Control, InDatagram, SessionView, SourceFilter, MAX_IN_DATAGRAM};
use super::tcp_sink::TcpSinks;
use super::udp::CHUNK;
use super::DatagramSender;
use crate::config::MAX_PAYLOAD;
use crate::ops::{hot_path, stats::Stats};
use crate::ring::{Consumer, Producer};
use crate::rt::now_ns;
use crate::rtp::rtcp::ntp_now;
use crate::rtp::session::send::SessionCounters;
use crate::rtp::session::send::MAX_BATCH;
use crate::rtp::session::{EncodedFrame, Event, Route, SendResult, SendSession, Transmit};

/// Longest park between checks when nothing is due sooner.
pub const MAX_PARK: Duration = Duration::from_millis(500);

/// One encoded frame on its way from the encoding thread to the sending thread.
pub struct EncodedPacket {
    pub payload: [u8; MAX_PAYLOAD],
    pub len: usize,
    pub sample_index: u64,
    pub discontinuity: bool,
    pub captured_ns: u64,
    pub encoded_ns: u64,
}

impl EncodedPacket {
    pub fn empty() -> EncodedPacket {
        EncodedPacket {
            payload: [0; MAX_PAYLOAD],
            len: 0,
            sample_index: 0,
            discontinuity: false,
            captured_ns: 0,
            encoded_ns: 0,
        }
    }

    /// Copies `f` in.
    pub fn fill(&mut self, f: &EncodedFrame<'_>) {
        let n = f.payload.len().min(MAX_PAYLOAD);
        self.payload[..n].copy_from_slice(&f.payload[..n]);
        self.len = n;
        self.sample_index = f.sample_index;
        self.discontinuity = f.discontinuity;
        self.captured_ns = f.captured_ns;
        self.encoded_ns = f.encoded_ns;
    }

    pub fn frame(&self) -> EncodedFrame<'_> {
        EncodedFrame {
            payload: &self.payload[..self.len],
            sample_index: self.sample_index,
            discontinuity: self.discontinuity,
            captured_ns: self.captured_ns,
            encoded_ns: self.encoded_ns,
        }
    }
}

/// RTCP input counters of the send session, published for the main thread.
#[derive(Default)]
pub struct RtcpInCounters {
    pub reports: AtomicU64,
    pub malformed: AtomicU64,
    pub foreign: AtomicU64,
    pub unrelated: AtomicU64,
    pub unauthenticated: AtomicU64,
    /// Under SRTP: SRTCP packets seen before (RFC 3711 §3.3.2).
    pub replayed: AtomicU64,
    /// Reports from new receivers the full table had no room for.
    pub untracked: AtomicU64,
    /// Receivers forgotten after falling silent (RFC 3550 §6.3.5).
    pub expired: AtomicU64,
    /// Datagrams the reader thread could not hand over (the ring was full).
    pub dropped: AtomicU64,
}

/// Everything that puts packets on the wire, owned by one thread.
pub struct SendShell {
    pub session: SendSession,
    pub tx: Box<dyn DatagramSender>,
    /// Peers joining and leaving, one ring per thread that introduces peers.
    pub controls: Vec<Consumer<Control>>,
    /// RTCP for the session: from the reader thread, and from the RTSP thread (what TCP
    /// clients send on their connection).
    pub rtcp_in: Vec<Consumer<InDatagram>>,
    /// The rings of RTSP clients that pull over TCP (`None` without an RTSP server).
    pub tcp: Option<Arc<TcpSinks>>,
    /// What the RTSP thread reads of the session (the next packet's position, reports heard).
    pub view: Arc<SessionView>,
    /// The session's events, for the main thread.
    pub events: Producer<Event>,
    pub rtcp_counters: Arc<RtcpInCounters>,
    /// The session's counters as last published (to add only what changed).
    pub published: SessionCounters,
    /// Who may send RTCP, for the reader thread's pre-filter (kept up to date here).
    pub sources: Arc<SourceFilter>,
}

impl SendShell {
    /// Hands one encoded frame to the session and sends what is due (waiting for its
    /// release time when paced).
    pub fn send_frame(&mut self, frame: &EncodedFrame<'_>, stats: &Stats) {
        self.push(now_ns(), frame);
        self.flush(stats);
    }

    /// Hands one encoded frame to the session (without sending yet).
    pub fn push(&mut self, now: u64, frame: &EncodedFrame<'_>) {
        self.session.push(now, frame);
        self.publish_position();
    }

    /// Where an RTSP client that joins now starts (its RTP-Info), for the RTSP thread.
    fn publish_position(&self) {
        let (seq, ts) = self.session.next_packet_position();
        self.view.set_position(seq, ts);
    }

    /// Timed work while no frame comes: peers, RTCP in, reports, BYEs.
    pub fn poll(&mut self, stats: &Stats) {
        self.flush(stats);
    }

    /// How long the owning thread may park before [`SendShell::poll`] has work.
    pub fn park(&self, now: u64) -> Duration {
        self.session
            .poll_timeout()
            .map_or(MAX_PARK, |t| Duration::from_nanos(t.saturating_sub(now)).min(MAX_PARK))
    }

    /// The stream is over: BYE to every peer (RFC 3550 §6.6).
    pub fn finish(&mut self, stats: &Stats) {
        self.take_input();
        self.session.close();
        self.flush(stats);
    }

    /// Takes the rings' messages, sends everything due (sleeping until a paced packet's
    /// release), and passes events on.
    fn flush(&mut self, stats: &Stats) {
        self.take_input();
        loop {
            if let Some(release) = self.session.next_release() {
                sleep_until(release);
            }
            if self.send_due(stats) == 0 || self.session.queued() == 0 {
                break;
            }
        }
        self.publish_position();
        while let Some(e) = self.session.poll_event() {
            if let Event::Report(r) = &e {
                self.view.report(r.peer, r.last_heard_ns, r.fraction_lost, r.jitter_ms);
            }
            // A full ring drops the oldest event: reports come again.
            self.events.push(|slot| *slot = e);
        }
        self.publish(stats);
    }

    /// One `poll_transmit`: sends its datagrams in chunks, counts them, records latency.
    /// Returns how many RTP packets it carried.
    fn send_due(&mut self, stats: &Stats) -> usize {
        let now = now_ns();
        let batch = self.session.poll_transmit(now, ntp_now);
        let mut chunk = Chunk::new();
        for t in batch.transmits() {
            if let Route::Interleaved { conn, channel } = t.route {
                // An RTSP client over TCP: into its connection's ring, whole or not at all.
                let result = match &self.tcp {
                    Some(sinks) => sinks.push(conn, channel, t.bytes, now),
                    None => Err(libc::ENOTCONN),
                };
                stats.account_tcp(&t, result);
                continue;
            }
            if chunk.push(t) == CHUNK {
                chunk.send(self.tx.as_mut(), stats);
            }
        }
        chunk.send(self.tx.as_mut(), stats);
        if let Some(sinks) = &self.tcp {
            sinks.wake_consumer();
        }
        let done = now_ns();
        let mut packets = 0;
        for m in batch.packets() {
            packets += 1;
            stats.latency.record(
                done.saturating_sub(m.captured_ns),
                m.encoded_ns.saturating_sub(m.captured_ns),
            );
        }
        stats.packets_out.fetch_add(packets as u64, Relaxed);
        packets
    }

    /// Peers joining and leaving, and RTCP received: ring pops, no allocation.
    fn take_input(&mut self) {
        for ring in &mut self.controls {
            while let Some(c) = ring.pop(|c| *c) {
                let id = match c {
                    Control::SetPeer { id, spec } => {
                        self.session.set_peer(id, spec);
                        id
                    }
                    Control::RemovePeer { id } => {
                        self.session.remove_peer(id);
                        id
                    }
                };
                let peers = self.session.peers();
                let open = peers.iter().any(|(_, p)| p.spec.multicast);
                let now = peers.get(id).map(|p| p.spec);
                self.sources.publish(id.index(), now.as_ref(), open);
            }
        }
        let mut buf = [0u8; MAX_IN_DATAGRAM];
        for ring in &mut self.rtcp_in {
            while let Some((len, from, peer, at, ntp)) = ring.pop(|d| {
                buf[..d.len].copy_from_slice(&d.data[..d.len]);
                (d.len, d.from, d.peer, d.arrival_ns, d.arrival_ntp)
            }) {
                match peer {
                    Some(peer) => self.session.handle_rtcp_from_peer(at, ntp, peer, from, &mut buf[..len]),
                    None => self.session.handle_rtcp(at, ntp, from, &mut buf[..len]),
                }
            }
        }
    }

    /// The session's counters, for the main thread.
    fn publish(&mut self, stats: &Stats) {
        let c = *self.session.counters();
        let was = std::mem::replace(&mut self.published, c);
        stats.rtcp_reports.fetch_add(c.rtcp_reports - was.rtcp_reports, Relaxed);
        stats.packet_drops.fetch_add(c.queue_drops - was.queue_drops, Relaxed);
        stats
            .encode_errors
            .fetch_add(c.packet_errors - was.packet_errors, Relaxed);
        // The reader thread adds to some of these too (what it filters out).
        let r = &self.rtcp_counters;
        r.reports.fetch_add(c.reports - was.reports, Relaxed);
        r.malformed.fetch_add(c.malformed - was.malformed, Relaxed);
        r.foreign.fetch_add(c.foreign - was.foreign, Relaxed);
        r.unrelated.fetch_add(c.unrelated - was.unrelated, Relaxed);
        r.unauthenticated
            .fetch_add(c.unauthenticated - was.unauthenticated, Relaxed);
        r.replayed.fetch_add(c.replayed - was.replayed, Relaxed);
        r.untracked.fetch_add(c.untracked - was.untracked, Relaxed);
        r.expired.fetch_add(c.expired - was.expired, Relaxed);
    }
}

/// Up to [`CHUNK`] transmits collected for one backend call, on the stack and not
/// initialised beforehand (a real-time thread fills one per packet; zeroing 20 KB each time
/// would cost more than the send).
struct Chunk<'a> {
    transmits: [MaybeUninit<Transmit<'a>>; CHUNK],
    results: [MaybeUninit<SendResult>; CHUNK],
    len: usize,
}

impl<'a> Chunk<'a> {
    fn new() -> Chunk<'a> {
        Chunk {
            transmits: [const { MaybeUninit::uninit() }; CHUNK],
            results: [const { MaybeUninit::uninit() }; CHUNK],
            len: 0,
        }
    }

    /// Adds one transmit (the caller sends before the chunk is full); returns the count.
    fn push(&mut self, t: Transmit<'a>) -> usize {
        self.transmits[self.len].write(t);
        self.results[self.len].write(Err(libc::EINPROGRESS));
        self.len += 1;
        self.len
    }

    /// Sends what was collected, counts it, and empties the chunk.
    fn send(&mut self, tx: &mut dyn DatagramSender, stats: &Stats) {
        if self.len == 0 {
            return;
        }
        // SAFETY: the first `len` entries of both arrays were written by `push`; Transmit
        // and SendResult are Copy (nothing to drop), and the slices live no longer than
        // `self`.
        let (batch, results) = unsafe {
            (
                std::slice::from_raw_parts(self.transmits.as_ptr().cast::<Transmit<'a>>(), self.len),
                std::slice::from_raw_parts_mut(self.results.as_mut_ptr().cast::<SendResult>(), self.len),
            )
        };
        tx.send(batch, results);
        stats.account(batch, results);
        self.len = 0;
    }
}

/// Body of the `rtpmic-send` thread; returns when the encoder closed the ring and everything
/// is sent (then BYE goes out). Waits on the ring's eventfd through the backend (epoll, or a
/// read on the io_uring).
pub fn run(mut input: Consumer<EncodedPacket>, mut shell: SendShell, stats: &Stats) -> io::Result<()> {
    let fd: RawFd = input.readable_fd();
    let mut warmed_up = false;
    loop {
        // Up to a batch of frames into the session, then out with what is due (when paced,
        // each packet at its release time: `flush` waits for it).
        let mut n = 0;
        while n < MAX_BATCH {
            let now = now_ns();
            if input.pop(|p| shell.push(now, &p.frame())).is_none() {
                break;
            }
            n += 1;
        }
        if n > 0 {
            shell.flush(stats);
            if !warmed_up {
                warmed_up = true;
                hot_path::enter();
            }
            continue;
        }
        shell.poll(stats);
        if input.is_closed() {
            break;
        }
        input.arm();
        if !input.is_empty() || input.is_closed() {
            input.disarm();
            continue;
        }
        if let Err(e) = shell.tx.wait(fd, shell.park(now_ns())) {
            hot_path::leave();
            return Err(e);
        }
        input.disarm();
    }
    shell.finish(stats);
    hot_path::leave();
    Ok(())
}

/// Sleeps until CLOCK_MONOTONIC reads `at_ns` (at once when that has passed).
fn sleep_until(at_ns: u64) {
    if at_ns <= now_ns() {
        return;
    }
    let ts = libc::timespec {
        tv_sec: (at_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (at_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: valid timespec; a null remainder is allowed with TIMER_ABSTIME.
    while unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &ts, std::ptr::null_mut()) }
        == libc::EINTR
    {}
}
