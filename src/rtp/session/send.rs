//! The send session: one RTP stream (one SSRC) to any number of peers, sans I/O.
//!
//! ```text
//!  push(now, frame) ──▶ packetize (RFC 3550 §5.1), SRTP protect (RFC 3711), pace ──┐
//!  set_peer / remove_peer: peers join, move, leave (generation-checked handles)    │
//!  handle_rtcp(now, from, bytes) ──▶ receivers' reports (RFC 3550 §6.4)            ├─▶ poll_transmit(now) → [Transmit]
//!  RTCP timer (§6.3): SR + SDES every interval, BYE to a peer that leaves (§6.6) ──┘   poll_timeout() · poll_event()
//! ```
//!
//! Time is an argument of every call (CLOCK_MONOTONIC nanoseconds; the wall clock for the
//! NTP field of sender reports is asked for only when a report is written), and nothing here
//! touches a socket, a thread or a clock, so the rules are tested in simulated time. Every
//! buffer is allocated in [`SendSession::new`]; after that no call allocates, locks or logs:
//! the session runs in the real-time thread that sends.
//!
//! * Peers get every packet; RTCP goes to each peer's RTCP route (RFC 3550 §11). The RTCP
//!   interval follows §6.3 with the real member count: us, the peers we send to, and the
//!   receivers heard on a multicast group.
//! * Receivers' reports are believed only from a peer's RTCP or RTP address (RFC 4961
//!   symmetric RTP), or from any member of a multicast group we send to; with SRTP only when
//!   authenticated. A receiver silent for five deterministic intervals is forgotten (§6.3.5),
//!   as is one that says BYE or whose peer leaves.
//! * With Opus FEC following receivers, the expected loss is derived from their reports
//!   ([`super::loss::LossAdapter`]) and handed out as [`Event::ExpectedLoss`].
//! * Paced (`RTPMIC_PACING`): a packet is released at its [`Pacer`] time; until then
//!   [`SendSession::poll_timeout`] says when, and the shell sleeps.

use std::collections::VecDeque;
use std::net::SocketAddr;

use rtcp_types::{Compound, Packet as RtcpPacket, ReportBlock};

use super::loss::LossAdapter;
use super::peers::{Change, PeerId, PeerSpec, Peers, Route};
use super::transmit::{Kind, Local, Transmit};
use crate::config::MAX_DATAGRAM;
use crate::net::pacer::Pacer;
use crate::rtp::capture_clock::CaptureClock;
use crate::rtp::packetizer::Packetizer;
use crate::rtp::rtcp::{receiver_interval_ns, TIMEOUT_MULTIPLIER};
use crate::rtp::rtcp::{LayoutError, RtcpPackets, RtcpScheduler, SenderInfo};
use crate::rtp::srtp::{SrtcpInbound, SrtpContext, SrtpError};

/// Packets the session holds between `push` and `poll_transmit` (one batch of the sender
/// thread, with room to spare); more are dropped oldest first and counted.
pub const QUEUE: usize = 16;
/// Most packets one `poll_transmit` hands out.
pub const MAX_BATCH: usize = 8;
/// Receivers remembered beyond one per peer: members of multicast groups who report.
pub const MULTICAST_MEMBERS: usize = 64;
/// Events held until the shell takes them; more are dropped and counted.
pub const EVENTS: usize = 256;
/// A receiver is trusted more after this many reports (§6.2.1: a new SSRC may be held
/// invalid until several packets carried it): a full table makes room for a newcomer only
/// by forgetting a receiver heard from fewer times.
const TRUSTED_AFTER: u64 = 2;
/// Initial average size of receivers' compounds (§6.3.2, UDP and IP headers included): an RR
/// with one report block and an SDES CNAME of about 20 bytes.
const INITIAL_AVG_RTCP_SIZE: f64 = 100.0;
/// Room for our largest compound (SR + SDES + BYE) plus SRTCP's index and tag.
const RTCP_BUF: usize = 512;

/// What the session needs to know about the stream, fixed at start.
pub struct SendConfig {
    pub ssrc: u32,
    pub payload_type: u8,
    /// Random initial values (RFC 3550 §5.1).
    pub first_seq: u16,
    pub ts_base: u32,
    /// RTP clock rate, and the capture rate the frames' sample indices count in.
    pub clock_rate: u32,
    pub sample_rate: u32,
    pub ticks_per_frame: u32,
    /// Frame duration (the pacer's period).
    pub frame_ns: u64,
    pub cname: String,
    /// Session bandwidth in octets per second (RFC 3550 §6.2).
    pub session_bw: f64,
    /// Send RTCP at all.
    pub rtcp: bool,
    pub srtp: Option<SrtpContext>,
    /// Decrypts receivers' SRTCP (RFC 3711 §3.4): with SRTP on, only what it authenticates
    /// is believed.
    pub srtcp_in: Option<SrtcpInbound>,
    pub pacing: bool,
    /// `Some((min, max))`: follow receivers' loss for Opus FEC within these percentages.
    pub fec_loss: Option<(u8, u8)>,
    /// Peer slots (every handle's index must be below).
    pub max_peers: usize,
}

/// One encoded frame, as the encoder hands it over.
#[derive(Clone, Copy, Debug)]
pub struct EncodedFrame<'a> {
    pub payload: &'a [u8],
    /// Index of the frame's first sample at the capture rate (the RTP timestamp follows it).
    pub sample_index: u64,
    /// Samples or frames were lost before this one: the packet carries the marker bit.
    pub discontinuity: bool,
    /// When the read that completed the frame returned, and when the encoder was done
    /// (CLOCK_MONOTONIC ns).
    pub captured_ns: u64,
    pub encoded_ns: u64,
}

/// What a packet handed out by `poll_transmit` carried, for latency accounting.
#[derive(Clone, Copy, Debug, Default)]
pub struct PacketMeta {
    pub captured_ns: u64,
    pub encoded_ns: u64,
    pub rtp_timestamp: u32,
    pub seq: u16,
}

/// One queued RTP packet.
struct Queued {
    data: [u8; MAX_DATAGRAM],
    len: usize,
    release_ns: u64,
    meta: PacketMeta,
}

/// A receiver's latest report about our stream (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReceiverInfo {
    /// The reporter's SSRC.
    pub ssrc: u32,
    pub peer: PeerId,
    pub from: SocketAddr,
    /// Fraction of packets lost since its previous report, 0..1.
    pub fraction_lost: f64,
    /// Signed 24-bit cumulative count (§6.4.1).
    pub cumulative_lost: i32,
    /// Packets it expected, counted from our first packet (modulo 2^16, A.3).
    pub expected: u32,
    pub jitter_ms: f64,
    /// Round-trip time from LSR/DLSR (§6.4.1), once it has seen a sender report.
    pub rtt_ms: Option<f64>,
    pub reports: u64,
    pub last_heard_ns: u64,
}

/// Why a receiver is no longer counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Left {
    /// It said BYE (§6.6).
    Bye,
    /// Silent for five receiver report intervals (§6.3.5).
    Timeout,
    /// The peer it reported through was removed.
    PeerRemoved,
}

/// What the session tells its owner.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    /// A receiver report about our stream was taken in.
    Report(ReceiverInfo),
    /// A receiver is gone.
    ReceiverLeft { ssrc: u32, peer: PeerId, why: Left },
    /// The loss Opus FEC should plan for (percent), from receivers' reports.
    ExpectedLoss(u8),
}

/// Counters kept by the session (plain numbers: the session is single-threaded; its shell
/// publishes them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCounters {
    /// RTP packets made.
    pub packets: u64,
    /// Packets dropped from a full queue (the shell did not poll).
    pub queue_drops: u64,
    /// Packets that could not be made (a payload beyond the buffer, an SRTP error).
    pub packet_errors: u64,
    /// RTCP compounds sent (each to every peer), BYEs included.
    pub rtcp_reports: u64,
    /// RTCP in: reports about our stream taken.
    pub reports: u64,
    /// RTCP in: datagrams that do not parse as RTCP.
    pub malformed: u64,
    /// RTCP in: from an address we do not send to.
    pub foreign: u64,
    /// RTCP in: valid, but nothing about our stream.
    pub unrelated: u64,
    /// RTCP in: with SRTP on, not authenticated (plaintext, forged, altered).
    pub unauthenticated: u64,
    /// RTCP in: with SRTP on, SRTCP seen before (RFC 3711 §3.3.2).
    pub replayed: u64,
    /// RTCP in: reports of new receivers the full table had no room for.
    pub untracked: u64,
    /// Receivers forgotten after falling silent (§6.3.5).
    pub expired: u64,
    pub events_dropped: u64,
}

/// RTCP sending state.
struct RtcpOut {
    packets: RtcpPackets,
    scheduler: RtcpScheduler,
    next_ns: u64,
    rng: u64,
    /// The compound last written (and protected), shared by every peer of a batch.
    report: [u8; RTCP_BUF],
    report_len: usize,
    /// The BYE compound, for peers that left.
    bye: [u8; RTCP_BUF],
    bye_len: usize,
}

/// The send session. See the module docs.
pub struct SendSession {
    ssrc: u32,
    session_bw: f64,
    /// Average size of receivers' compounds (§6.3.3), for their interval.
    avg_in_size: f64,
    packetizer: Packetizer,
    srtp: Option<SrtpContext>,
    srtcp_in: Option<SrtcpInbound>,
    clock_rate: u32,
    ticks_per_frame: u32,
    first_seq: u16,
    pacer: Option<Pacer>,
    clock: CaptureClock,
    peers: Peers,
    queue: Box<[Queued]>,
    /// Queue positions: `head` is the oldest packet, `len` packets from there.
    head: usize,
    len: usize,
    sent_packets: u32,
    sent_octets: u32,
    /// The RTP timestamp of the newest packet.
    last_timestamp: Option<u32>,
    rtcp: Option<RtcpOut>,
    /// Peers owed a BYE (they left after getting RTP).
    byes: Vec<(PeerId, Route, Local)>,
    receivers: Vec<ReceiverInfo>,
    loss: Option<LossAdapter>,
    last_expected_loss: Option<u8>,
    events: VecDeque<Event>,
    counters: SessionCounters,
    /// What the last `poll_transmit` handed out: queue positions and count, whether the
    /// report and how many BYEs.
    batch: BatchPlan,
}

#[derive(Clone, Copy, Default)]
struct BatchPlan {
    first: usize,
    packets: usize,
    report: bool,
    byes: usize,
}

impl SendSession {
    /// Allocates everything the session will ever use; `now` starts the RTCP timer (the
    /// first report comes within half the minimum interval, §6.3.1 "initial").
    pub fn new(c: SendConfig, now: u64) -> Result<SendSession, LayoutError> {
        let rtcp = if c.rtcp {
            let mut packets = RtcpPackets::new(c.ssrc, &c.cname)?;
            let size = packets
                .report(SenderInfo {
                    ntp: 0,
                    rtp_timestamp: 0,
                    packets: 0,
                    octets: 0,
                })
                .len();
            Some(RtcpOut {
                packets,
                scheduler: RtcpScheduler::new(c.session_bw, size),
                next_ns: now,
                rng: u64::from(c.ssrc) | 1,
                report: [0; RTCP_BUF],
                report_len: 0,
                bye: [0; RTCP_BUF],
                bye_len: 0,
            })
        } else {
            None
        };
        let mut s = SendSession {
            ssrc: c.ssrc,
            session_bw: c.session_bw,
            avg_in_size: INITIAL_AVG_RTCP_SIZE,
            packetizer: Packetizer::new(
                c.ssrc,
                c.payload_type,
                c.first_seq,
                c.ts_base,
                c.clock_rate,
                c.sample_rate,
            ),
            srtp: c.srtp,
            srtcp_in: c.srtcp_in,
            clock_rate: c.clock_rate,
            ticks_per_frame: c.ticks_per_frame,
            first_seq: c.first_seq,
            pacer: c.pacing.then(|| Pacer::new(c.frame_ns)),
            clock: CaptureClock::new(c.clock_rate),
            peers: Peers::new(c.max_peers),
            queue: (0..QUEUE)
                .map(|_| Queued {
                    data: [0; MAX_DATAGRAM],
                    len: 0,
                    release_ns: 0,
                    meta: PacketMeta::default(),
                })
                .collect(),
            head: 0,
            len: 0,
            sent_packets: 0,
            sent_octets: 0,
            last_timestamp: None,
            rtcp,
            byes: Vec::with_capacity(c.max_peers),
            receivers: Vec::with_capacity(c.max_peers + MULTICAST_MEMBERS),
            loss: c.fec_loss.map(|(min, max)| LossAdapter::new(min, max)),
            last_expected_loss: None,
            events: VecDeque::with_capacity(EVENTS),
            counters: SessionCounters::default(),
            batch: BatchPlan::default(),
        };
        if s.rtcp.is_some() {
            let first = s.interval_ns();
            if let Some(r) = s.rtcp.as_mut() {
                r.next_ns = now + first;
            }
        }
        Ok(s)
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn counters(&self) -> &SessionCounters {
        &self.counters
    }

    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// The receivers that report about the stream.
    pub fn receivers(&self) -> &[ReceiverInfo] {
        &self.receivers
    }

    /// Participants for the RTCP interval (RFC 3550 §6.3.1 "members"): us, every peer we
    /// send to, and the receivers heard on multicast groups.
    pub fn members(&self) -> usize {
        let unicast = self
            .peers
            .iter()
            .filter(|(_, p)| !p.spec.multicast && p.spec.rtp.is_some())
            .count();
        let group_members = self
            .receivers
            .iter()
            .filter(|r| self.peers.get(r.peer).is_some_and(|p| p.spec.multicast))
            .count();
        1 + unicast + group_members
    }

    /// Introduces the peer `id` or changes where its packets go. A stale handle changes
    /// nothing and returns false.
    pub fn set_peer(&mut self, id: PeerId, spec: PeerSpec) -> bool {
        match self.peers.set(id, spec, self.counters.packets) {
            Change::Stale => false,
            Change::Updated { .. } => true,
            Change::Joined { replaced } => {
                if let Some((generation, old)) = replaced {
                    // The slot's previous peer left without a word: it is owed its BYE too.
                    self.owe_bye(PeerId::new(id.index() as u32, generation), &old);
                }
                self.forget_receivers_of_slot(id.index(), Some(id));
                true
            }
        }
    }

    /// Removes the peer `id`; a BYE (§6.6) goes to it at the next `poll_transmit` if it got
    /// RTP. False for a stale or unknown handle.
    pub fn remove_peer(&mut self, id: PeerId) -> bool {
        let Some(gone) = self.peers.remove(id) else {
            return false;
        };
        self.owe_bye(id, &gone);
        self.forget_receivers_of_slot(id.index(), None);
        true
    }

    /// The stream ends: every peer gets its BYE (§6.6) at the next `poll_transmit`. The
    /// receivers' last reports stay (for the final accounting).
    pub fn close(&mut self) {
        loop {
            let Some(id) = self.peers.iter().next().map(|(id, _)| id) else {
                break;
            };
            if let Some(gone) = self.peers.remove(id) {
                self.owe_bye(id, &gone);
            }
        }
    }

    fn owe_bye(&mut self, id: PeerId, peer: &super::peers::PeerState) {
        let got_rtp = self.counters.packets > peer.joined_at_packet && peer.spec.rtp.is_some();
        if let (Some(route), true, true) = (peer.spec.rtcp, got_rtp, self.rtcp.is_some()) {
            if self.byes.len() < self.byes.capacity() {
                let local = if peer.spec.rtcp_mux { Local::Rtp } else { Local::Rtcp };
                self.byes.push((id, route, local));
            }
        }
    }

    /// Drops the receivers that reported through slot `index` (all of them, or those not of
    /// `keep`'s generation).
    fn forget_receivers_of_slot(&mut self, index: usize, keep: Option<PeerId>) {
        let mut i = 0;
        while i < self.receivers.len() {
            let r = self.receivers[i];
            if r.peer.index() == index && Some(r.peer) != keep {
                self.receivers.swap_remove(i);
                self.event(Event::ReceiverLeft {
                    ssrc: r.ssrc,
                    peer: r.peer,
                    why: Left::PeerRemoved,
                });
            } else {
                i += 1;
            }
        }
    }

    /// Takes one encoded frame: stamps the RTP header, protects it, and queues it for
    /// `poll_transmit` (at its pacing time when paced). `now` is when this thread got the
    /// frame. With the queue full the oldest packet is dropped and counted.
    pub fn push(&mut self, now: u64, f: &EncodedFrame<'_>) {
        if self.len == QUEUE {
            self.head = (self.head + 1) % QUEUE;
            self.len -= 1;
            self.counters.queue_drops += 1;
        }
        let slot_index = (self.head + self.len) % QUEUE;
        let slot = &mut self.queue[slot_index];
        let written = self
            .packetizer
            .write(f.sample_index, f.discontinuity, f.payload, &mut slot.data)
            .ok()
            .and_then(|(len, stamp)| {
                let len = match self.srtp.as_mut() {
                    None => len,
                    Some(s) => s.protect_rtp(&mut slot.data, len).ok()?,
                };
                Some((len, stamp))
            });
        let Some((len, stamp)) = written else {
            self.counters.packet_errors += 1;
            return;
        };
        self.last_timestamp = Some(stamp.timestamp);
        let estimate = self.clock.observe(stamp.timestamp, f.captured_ns);
        slot.len = len;
        slot.meta = PacketMeta {
            captured_ns: f.captured_ns,
            encoded_ns: f.encoded_ns,
            rtp_timestamp: stamp.timestamp,
            seq: stamp.seq,
        };
        slot.release_ns = match self.pacer.as_mut() {
            Some(p) => p.release_after(estimate, now),
            None => now,
        };
        self.len += 1;
        self.counters.packets += 1;
        self.sent_packets = self.sent_packets.wrapping_add(1);
        self.sent_octets = self.sent_octets.wrapping_add(f.payload.len() as u32);
    }

    /// The sequence number and RTP timestamp of the next packet a peer added now would get:
    /// the oldest one queued (paced, not yet released), else the next one made (its timestamp
    /// as it will be if no frame is lost before it: the last one's plus a frame). What an
    /// RTSP client joining now is told in RTP-Info (RFC 2326 §12.33): the first packet it
    /// gets is this one or, if it joins later, a later one.
    pub fn next_packet_position(&self) -> (u16, u32) {
        if self.len > 0 {
            let m = &self.queue[self.head].meta;
            return (m.seq, m.rtp_timestamp);
        }
        let ts = self.last_timestamp.map_or(self.packetizer.timestamp_of(0), |t| {
            t.wrapping_add(self.ticks_per_frame)
        });
        (self.packetizer.next_seq(), ts)
    }

    /// Packets waiting for `poll_transmit`.
    pub fn queued(&self) -> usize {
        self.len
    }

    /// When the oldest queued packet is released, when paced (the shell sleeps until then).
    pub fn next_release(&self) -> Option<u64> {
        (self.pacer.is_some() && self.len > 0).then(|| self.queue[self.head].release_ns)
    }

    /// When `poll_transmit` next has something to do: the next paced release, report or
    /// BYE. `None`: nothing until the next `push` or message.
    pub fn poll_timeout(&self) -> Option<u64> {
        let release = (self.len > 0).then(|| self.queue[self.head].release_ns);
        let bye = (!self.byes.is_empty()).then_some(0);
        let report = self.rtcp.as_ref().map(|r| r.next_ns);
        [release, bye, report].into_iter().flatten().min()
    }

    /// The datagrams due at `now`: the queued packets whose release time has come (at most
    /// [`MAX_BATCH`]) to every peer, then the sender report when due, then BYEs owed. The
    /// wall clock (`ntp_now`, RFC 5905 format) is read only when a report is written. The
    /// batch borrows the session until the shell has sent it.
    pub fn poll_transmit(&mut self, now: u64, ntp_now: impl FnOnce() -> u64) -> Batch<'_> {
        let mut wall = Some(ntp_now);
        let mut read = None;
        let mut ntp = move || *read.get_or_insert_with(|| wall.take().map_or(0, |f| f()));
        // What the previous batch handed out is gone now.
        self.byes.drain(..self.batch.byes);
        let mut plan = BatchPlan {
            first: self.head,
            ..BatchPlan::default()
        };
        while plan.packets < MAX_BATCH.min(self.len) && self.queue[(self.head + plan.packets) % QUEUE].release_ns <= now
        {
            plan.packets += 1;
        }
        self.head = (self.head + plan.packets) % QUEUE;
        self.len -= plan.packets;
        plan.report = self.write_report_if_due(now, &mut ntp);
        if !self.byes.is_empty() {
            plan.byes = self.write_bye(now, ntp());
        }
        self.batch = plan;
        Batch { session: self }
    }

    /// Writes the sender report into the report buffer when it is due and RTP has flowed
    /// (an SR's timestamps need a packet to extrapolate from); schedules the next and
    /// forgets silent receivers (§6.3.5).
    fn write_report_if_due(&mut self, now: u64, ntp_now: impl FnOnce() -> u64) -> bool {
        if self.rtcp.as_ref().is_none_or(|r| now < r.next_ns) {
            return false;
        }
        self.expire_receivers(now);
        let interval = self.interval_ns();
        let info = self
            .clock
            .rtp_at(now, self.ticks_per_frame)
            .map(|rtp_timestamp| SenderInfo {
                ntp: ntp_now(),
                rtp_timestamp,
                packets: self.sent_packets,
                octets: self.sent_octets,
            });
        let (Some(r), Some(info)) = (self.rtcp.as_mut(), info) else {
            if let Some(r) = self.rtcp.as_mut() {
                r.next_ns = now + interval;
            }
            return false;
        };
        r.next_ns = now + interval;
        let plain = r.packets.report(info);
        let size = plain.len();
        r.report_len = protect(self.srtp.as_mut(), plain, &mut r.report);
        r.scheduler.sent(size);
        self.counters.rtcp_reports += 1;
        r.report_len > 0 && !self.peers.is_empty()
    }

    /// Writes the BYE compound (SR + SDES + BYE, §6.6) for the peers owed one; returns how
    /// many get it.
    fn write_bye(&mut self, now: u64, ntp: u64) -> usize {
        let info = SenderInfo {
            ntp,
            rtp_timestamp: self.clock.rtp_at(now, self.ticks_per_frame).unwrap_or(0),
            packets: self.sent_packets,
            octets: self.sent_octets,
        };
        let Some(r) = self.rtcp.as_mut() else {
            self.byes.clear();
            return 0;
        };
        let plain = r.packets.bye(info);
        r.bye_len = protect(self.srtp.as_mut(), plain, &mut r.bye);
        self.counters.rtcp_reports += 1;
        if r.bye_len == 0 {
            self.byes.clear();
            return 0;
        }
        self.byes.len()
    }

    /// §6.3.1 with the current member count, randomised (the randomness is ours: xorshift64,
    /// seeded by the SSRC, no allocation).
    fn interval_ns(&mut self) -> u64 {
        let members = self.members();
        let Some(r) = self.rtcp.as_mut() else { return u64::MAX };
        r.rng ^= r.rng << 13;
        r.rng ^= r.rng >> 7;
        r.rng ^= r.rng << 17;
        let random = (r.rng >> 11) as f64 / (1u64 << 53) as f64;
        r.scheduler.next_interval_ns(members, random)
    }

    /// §6.3.5: forgets receivers silent for five times the deterministic interval of a
    /// receiver (Td with `we_sent` false, §6.3.1), with us the one sender.
    fn expire_receivers(&mut self, now: u64) {
        let td = receiver_interval_ns(self.session_bw, self.avg_in_size, self.members(), 1);
        let limit = (TIMEOUT_MULTIPLIER * td as f64) as u64;
        let mut i = 0;
        while i < self.receivers.len() {
            let rx = self.receivers[i];
            if now.saturating_sub(rx.last_heard_ns) > limit {
                self.receivers.swap_remove(i);
                self.counters.expired += 1;
                self.event(Event::ReceiverLeft {
                    ssrc: rx.ssrc,
                    peer: rx.peer,
                    why: Left::Timeout,
                });
            } else {
                i += 1;
            }
        }
    }

    /// Takes one RTCP datagram from `from`, received at `now` (the wall clock then:
    /// `arrival_ntp`, for the round-trip time). SRTCP is decrypted in place. Everything it
    /// cannot believe is counted.
    pub fn handle_rtcp(&mut self, now: u64, arrival_ntp: u64, from: SocketAddr, datagram: &mut [u8]) {
        let peer = match self.peers.by_source(from) {
            Some((id, _)) => Some(id),
            None => self
                .peers
                .iter()
                .find(|(_, p)| p.spec.multicast && p.spec.rtcp.is_some())
                .map(|(id, _)| id),
        };
        let Some(peer) = peer else {
            self.counters.foreign += 1;
            return;
        };
        self.handle_rtcp_of(now, arrival_ntp, from, peer, datagram);
    }

    /// Takes one RTCP packet that came from `peer` itself, not from an address: on its RTSP
    /// connection (TCP-interleaved, RFC 2326 §10.12); `from` is that connection's client,
    /// for the record. Counted as `handle_rtcp` counts; a stale handle is foreign.
    pub fn handle_rtcp_from_peer(
        &mut self,
        now: u64,
        arrival_ntp: u64,
        peer: PeerId,
        from: SocketAddr,
        datagram: &mut [u8],
    ) {
        if self.peers.get(peer).is_none() {
            self.counters.foreign += 1;
            return;
        }
        self.handle_rtcp_of(now, arrival_ntp, from, peer, datagram);
    }

    fn handle_rtcp_of(&mut self, now: u64, arrival_ntp: u64, from: SocketAddr, peer: PeerId, datagram: &mut [u8]) {
        // Our own reports looping back (a multicast group with loopback on): not a receiver.
        if datagram.get(4..8) == Some(&self.ssrc.to_be_bytes()[..]) {
            self.counters.unrelated += 1;
            return;
        }
        let Some(len) = self.authenticate(datagram) else {
            return;
        };
        // §6.3.3: the average compound size includes what receivers send.
        self.avg_in_size = (1.0 / 16.0) * (len + 28) as f64 + (15.0 / 16.0) * self.avg_in_size;
        self.take_compound(now, arrival_ntp, from, peer, &datagram[..len]);
    }

    /// With SRTP on, authenticates and decrypts `datagram` in place (RFC 3711 §3.4, with the
    /// stream's own key: see [`SrtcpInbound`]); returns its plain length, or `None` (counted)
    /// when it cannot be believed.
    fn authenticate(&mut self, datagram: &mut [u8]) -> Option<usize> {
        if self.srtp.is_none() {
            return Some(datagram.len());
        }
        let result = match self.srtcp_in.as_mut() {
            Some(rx) => rx.unprotect_rtcp(datagram),
            None => Err(SrtpError::Authentication),
        };
        match result {
            Ok(n) => Some(n),
            Err(SrtpError::Replayed { .. }) => {
                self.counters.replayed += 1;
                None
            }
            Err(_) => {
                self.counters.unauthenticated += 1;
                None
            }
        }
    }

    fn take_compound(&mut self, now: u64, arrival_ntp: u64, from: SocketAddr, peer: PeerId, plain: &[u8]) {
        let Ok(compound) = Compound::parse(plain) else {
            self.counters.malformed += 1;
            return;
        };
        let mut about_us = false;
        for packet in compound {
            let Ok(packet) = packet else {
                self.counters.malformed += 1;
                return;
            };
            match packet {
                RtcpPacket::Rr(rr) => {
                    for rb in rr.report_blocks() {
                        about_us |= self.take_block(now, arrival_ntp, rr.ssrc(), &rb, from, peer);
                    }
                }
                RtcpPacket::Sr(sr) => {
                    for rb in sr.report_blocks() {
                        about_us |= self.take_block(now, arrival_ntp, sr.ssrc(), &rb, from, peer);
                    }
                }
                RtcpPacket::Bye(bye) => {
                    // §6.6, and only from the receiver's own address: on a multicast group
                    // anyone could say BYE for anyone.
                    let from = super::peers::endpoint(from);
                    for ssrc in bye.ssrcs() {
                        if let Some(i) = self
                            .receivers
                            .iter()
                            .position(|r| r.ssrc == ssrc && r.peer == peer && super::peers::endpoint(r.from) == from)
                        {
                            let r = self.receivers.swap_remove(i);
                            about_us = true;
                            self.event(Event::ReceiverLeft {
                                ssrc,
                                peer: r.peer,
                                why: Left::Bye,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        if !about_us {
            self.counters.unrelated += 1;
        }
    }

    /// Records a report block if it is about our SSRC.
    fn take_block(
        &mut self,
        now: u64,
        arrival_ntp: u64,
        reporter: u32,
        rb: &ReportBlock<'_>,
        from: SocketAddr,
        peer: PeerId,
    ) -> bool {
        if rb.ssrc() != self.ssrc {
            return false;
        }
        // §6.4.1: cumulative lost is a signed 24-bit number.
        let cum = rb.cumulative_lost() & 0x00ff_ffff;
        let cumulative_lost = if cum & 0x0080_0000 != 0 {
            cum as i32 - 0x0100_0000
        } else {
            cum as i32
        };
        // §6.4.1: RTT = A − LSR − DLSR in units of 1/65536 s, A = middle 32 bits of the
        // arrival time's NTP timestamp.
        let lsr = rb.last_sender_report_timestamp();
        let dlsr = rb.delay_since_last_sender_report_timestamp();
        let a = (arrival_ntp >> 16) as u32;
        let rtt_ms = (lsr != 0)
            .then(|| f64::from(a.wrapping_sub(lsr).wrapping_sub(dlsr)) * 1000.0 / 65536.0)
            .filter(|r| *r < 60_000.0);
        let mut info = ReceiverInfo {
            ssrc: reporter,
            peer,
            from,
            fraction_lost: f64::from(rb.fraction_lost()) / 256.0,
            cumulative_lost,
            expected: ((rb.extended_sequence_number() & 0xffff).wrapping_sub(u32::from(self.first_seq)) & 0xffff) + 1,
            jitter_ms: f64::from(rb.interarrival_jitter()) * 1000.0 / f64::from(self.clock_rate.max(1)),
            rtt_ms,
            reports: 1,
            last_heard_ns: now,
        };
        self.counters.reports += 1;
        match self.receivers.iter().position(|r| r.ssrc == reporter && r.peer == peer) {
            Some(i) => {
                info.reports = self.receivers[i].reports + 1;
                self.receivers[i] = info;
            }
            None if self.receivers.len() < self.receivers.capacity() => self.receivers.push(info),
            None => {
                // Full: the newcomer takes the place of the receiver with fewer than
                // TRUSTED_AFTER reports heard from longest ago; a table of trusted
                // receivers keeps them all (a flood of invented SSRCs cannot push a real
                // receiver out).
                let doubtful = self
                    .receivers
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.reports < TRUSTED_AFTER)
                    .min_by_key(|(_, r)| r.last_heard_ns)
                    .map(|(i, _)| i);
                let Some(i) = doubtful else {
                    self.counters.untracked += 1;
                    return true;
                };
                let gone = std::mem::replace(&mut self.receivers[i], info);
                self.event(Event::ReceiverLeft {
                    ssrc: gone.ssrc,
                    peer: gone.peer,
                    why: Left::Timeout,
                });
            }
        }
        self.event(Event::Report(info));
        self.adapt_expected_loss();
        true
    }

    /// Opus FEC planning follows the worst receiver (RFC 6716 §2.1.7: the encoder is told
    /// the expected loss), smoothed by [`LossAdapter`].
    fn adapt_expected_loss(&mut self) {
        let worst = self.receivers.iter().map(|r| r.fraction_lost).fold(0.0, f64::max);
        let reports = self.counters.reports;
        let Some(percent) = self.loss.as_mut().and_then(|a| a.update(reports, worst)) else {
            return;
        };
        if self.last_expected_loss != Some(percent) {
            self.last_expected_loss = Some(percent);
            self.event(Event::ExpectedLoss(percent));
        }
    }

    fn event(&mut self, e: Event) {
        if self.events.len() == EVENTS {
            self.events.pop_front();
            self.counters.events_dropped += 1;
        }
        self.events.push_back(e);
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

/// SRTCP-protects `plain` into `out` (or copies it); returns the length, 0 when it does not
/// fit or protection failed (the report is then skipped).
fn protect(srtp: Option<&mut SrtpContext>, plain: &[u8], out: &mut [u8]) -> usize {
    let Some(scratch) = out.get_mut(..plain.len()) else {
        return 0;
    };
    scratch.copy_from_slice(plain);
    match srtp {
        None => plain.len(),
        // One SRTCP index per compound, the same bytes to every peer.
        Some(ctx) => ctx.protect_rtcp(out, plain.len()).unwrap_or(0),
    }
}

/// What one `poll_transmit` hands out; borrows the session until sent.
pub struct Batch<'a> {
    session: &'a SendSession,
}

impl<'a> Batch<'a> {
    /// The RTP packets of the batch, for latency accounting (whether or not any peer got
    /// them).
    pub fn packets(&self) -> impl Iterator<Item = &'a PacketMeta> + 'a {
        let s = self.session;
        (0..s.batch.packets).map(move |k| &s.queue[(s.batch.first + k) % QUEUE].meta)
    }

    pub fn is_empty(&self) -> bool {
        self.transmits().next().is_none()
    }

    /// Every datagram: each packet to each peer that has an RTP route (packet by packet),
    /// then the report to each peer with an RTCP route, then the BYEs.
    pub fn transmits(&self) -> impl Iterator<Item = Transmit<'a>> + 'a {
        let s = self.session;
        let rtp = (0..s.batch.packets).flat_map(move |k| {
            let q = &s.queue[(s.batch.first + k) % QUEUE];
            s.peers.iter().filter_map(move |(peer, p)| {
                p.spec.rtp.map(|route| Transmit {
                    peer,
                    route,
                    local: Local::Rtp,
                    kind: Kind::Rtp,
                    bytes: &q.data[..q.len],
                })
            })
        });
        let report = s
            .rtcp
            .as_ref()
            .filter(|_| s.batch.report)
            .into_iter()
            .flat_map(move |r| {
                s.peers.iter().filter_map(move |(peer, p)| {
                    p.spec.rtcp.filter(|_| p.spec.rtp.is_some()).map(|route| Transmit {
                        peer,
                        route,
                        local: if p.spec.rtcp_mux { Local::Rtp } else { Local::Rtcp },
                        kind: Kind::Rtcp,
                        bytes: &r.report[..r.report_len],
                    })
                })
            });
        let byes = s.rtcp.as_ref().into_iter().flat_map(move |r| {
            s.byes[..s.batch.byes]
                .iter()
                .map(move |&(peer, route, local)| Transmit {
                    peer,
                    route,
                    local,
                    kind: Kind::Rtcp,
                    bytes: &r.bye[..r.bye_len],
                })
        });
        rtp.chain(report).chain(byes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::session::peers::PeerIds;
    use rtcp_types::{ReceiverReport, RtcpPacketWriterExt};
    use rtp_types::RtpPacket;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    const SSRC: u32 = 0x5eed;
    const FIRST_SEQ: u16 = 1000;

    fn config() -> SendConfig {
        SendConfig {
            ssrc: SSRC,
            payload_type: 96,
            first_seq: FIRST_SEQ,
            ts_base: 0,
            clock_rate: 48_000,
            sample_rate: 48_000,
            ticks_per_frame: 960,
            frame_ns: 20 * MS,
            cname: "rtpmic@test".into(),
            session_bw: 4400.0,
            rtcp: true,
            srtp: None,
            srtcp_in: None,
            pacing: false,
            fec_loss: None,
            max_peers: 8,
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 2], port))
    }

    fn unicast(port: u16) -> PeerSpec {
        PeerSpec::udp(Some(addr(port)), true, false)
    }

    /// Pushes frame `k` (20 ms frames, read on time) at `now` and returns what is due.
    fn push(s: &mut SendSession, k: u64, now: u64) {
        let payload = [k as u8; 40];
        s.push(
            now,
            &EncodedFrame {
                payload: &payload,
                sample_index: k * 960,
                discontinuity: false,
                captured_ns: now,
                encoded_ns: now,
            },
        );
    }

    /// (kind, destination, bytes) of everything `poll_transmit` hands out at `now`.
    fn sent(s: &mut SendSession, now: u64) -> Vec<(Kind, SocketAddr, Vec<u8>)> {
        s.poll_transmit(now, || 0x1234_5678_0000_0000)
            .transmits()
            .map(|t| (t.kind, t.route.udp().unwrap(), t.bytes.to_vec()))
            .collect()
    }

    fn rr_from(reporter: u32, about: u32, fraction_lost: u8) -> Vec<u8> {
        let rb = ReportBlock::builder(about)
            .fraction_lost(fraction_lost)
            .extended_sequence_number(u32::from(FIRST_SEQ) + 99)
            .interarrival_jitter(480);
        let mut buf = vec![0u8; 64];
        let n = ReceiverReport::builder(reporter)
            .add_report_block(rb)
            .write_into(&mut buf)
            .unwrap();
        buf.truncate(n);
        buf
    }

    fn is_bye(bytes: &[u8]) -> bool {
        Compound::parse(bytes)
            .unwrap()
            .any(|p| matches!(p, Ok(RtcpPacket::Bye(_))))
    }

    #[test]
    fn every_packet_goes_to_every_peer_with_an_address() {
        let mut s = SendSession::new(config(), 0).unwrap();
        let mut ids = PeerIds::new(0, 8);
        let (a, b, c) = (
            ids.allocate().unwrap(),
            ids.allocate().unwrap(),
            ids.allocate().unwrap(),
        );
        s.set_peer(a, unicast(5004));
        s.set_peer(b, unicast(6004));
        // An unresolved destination: a peer with no route gets nothing.
        s.set_peer(c, PeerSpec::udp(None, true, false));
        push(&mut s, 0, 0);
        push(&mut s, 1, 20 * MS);
        let out = sent(&mut s, 20 * MS);
        assert_eq!(out.len(), 4);
        let to: Vec<u16> = out.iter().map(|(_, a, _)| a.port()).collect();
        assert_eq!(to, vec![5004, 6004, 5004, 6004], "packet by packet");
        let p = RtpPacket::parse(&out[2].2).unwrap();
        assert_eq!(
            (p.sequence_number(), p.timestamp(), p.ssrc()),
            (FIRST_SEQ + 1, 960, SSRC)
        );
        assert!(RtpPacket::parse(&out[0].2).unwrap().marker_bit(), "the first packet");
        assert!(sent(&mut s, 21 * MS).is_empty(), "handed out once");
        assert_eq!(s.counters().packets, 2);
    }

    #[test]
    fn a_peer_joining_mid_stream_gets_the_packets_from_then_on() {
        let mut s = SendSession::new(config(), 0).unwrap();
        let (a, b) = (PeerId::new(0, 1), PeerId::new(1, 1));
        s.set_peer(a, unicast(5004));
        for k in 0..10 {
            push(&mut s, k, k * 20 * MS);
            sent(&mut s, k * 20 * MS);
        }
        // What an RTSP client is told when it joins (RTP-Info): the next seq and timestamp.
        assert_eq!(s.next_packet_position(), (FIRST_SEQ + 10, 9600));
        s.set_peer(b, unicast(6004));
        push(&mut s, 10, 200 * MS);
        let out = sent(&mut s, 200 * MS);
        let at_b: Vec<_> = out.iter().filter(|(_, a, _)| a.port() == 6004).collect();
        assert_eq!(at_b.len(), 1);
        let p = RtpPacket::parse(&at_b[0].2).unwrap();
        assert_eq!((p.sequence_number(), p.timestamp()), (FIRST_SEQ + 10, 9600));
        assert_eq!(s.members(), 3);
    }

    #[test]
    fn sender_reports_follow_the_interval_and_reach_every_peer() {
        let mut s = SendSession::new(config(), 0).unwrap();
        s.set_peer(PeerId::new(0, 1), unicast(5004));
        s.set_peer(PeerId::new(1, 1), PeerSpec::udp(Some(addr(7004)), true, true));
        let mut reports = Vec::new();
        for k in 0..(600 * 50) {
            let now = k * 20 * MS;
            push(&mut s, k, now);
            for (kind, to, bytes) in sent(&mut s, now) {
                if kind == Kind::Rtcp {
                    reports.push((now, to, bytes));
                }
            }
        }
        // Each report goes to both peers: port + 1, and the RTP port itself when muxed.
        assert!(reports
            .chunks(2)
            .all(|r| r[0].1.port() == 5005 && r[1].1.port() == 7004));
        let times: Vec<u64> = reports.iter().step_by(2).map(|r| r.0).collect();
        // §6.3.1 "initial": the first within [0.5, 1.5] × 2.5 s / (e − 3/2).
        assert!((1025 * MS..=3080 * MS).contains(&times[0]), "{}", times[0]);
        // Then T_min = 5 s randomised: [2.05, 6.16] s, 4.1 s on average.
        let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| (2040 * MS..=6180 * MS).contains(g)), "{gaps:?}");
        let mean = gaps.iter().sum::<u64>() as f64 / gaps.len() as f64 / S as f64;
        assert!((3.8..4.4).contains(&mean), "mean interval {mean}");
        let Some(Ok(RtcpPacket::Sr(sr))) = Compound::parse(&reports[4].2).unwrap().next() else {
            panic!("an SR first");
        };
        assert_eq!((sr.ssrc(), sr.ntp_timestamp()), (SSRC, 0x1234_5678_0000_0000));
        // The report covers every packet pushed until then; its RTP time is the media clock
        // extrapolated to the report's instant.
        let at = reports[4].0;
        assert_eq!(u64::from(sr.packet_count()), at / (20 * MS) + 1);
        assert_eq!(u64::from(sr.rtp_timestamp()), at / (20 * MS) * 960 + 960);
    }

    #[test]
    fn the_interval_scales_with_the_members() {
        // A low-rate session (200 B/s), where the bandwidth share, not T_min, sets Td.
        let interval_with = |peers: u32| {
            let mut s = SendSession::new(
                SendConfig {
                    session_bw: 200.0,
                    ..config()
                },
                0,
            )
            .unwrap();
            for i in 0..peers {
                s.set_peer(PeerId::new(i, 1), unicast(5004 + 2 * i as u16));
            }
            let r = s.rtcp.as_ref().unwrap();
            (s.members(), r.scheduler.deterministic_interval_ns(s.members()))
        };
        // §6.3.1: with us one of two or three members, everyone shares 5 % (n = members);
        // from four members on, we are at most a quarter and senders share 1.25 % (n = 1).
        let (m1, one) = interval_with(1);
        let (m2, two) = interval_with(2);
        let (m7, seven) = interval_with(7);
        assert_eq!((m1, m2, m7), (2, 3, 8));
        assert!((two as f64 / one as f64 - 1.5).abs() < 0.01, "{one} {two}");
        assert!((seven as f64 / one as f64 - 2.0).abs() < 0.01, "{one} {seven}");
    }

    #[test]
    fn a_peer_that_leaves_gets_a_bye_and_the_others_do_not() {
        let mut s = SendSession::new(config(), 0).unwrap();
        let (a, b, late) = (PeerId::new(0, 1), PeerId::new(1, 1), PeerId::new(2, 1));
        s.set_peer(a, unicast(5004));
        s.set_peer(b, unicast(6004));
        push(&mut s, 0, 0);
        sent(&mut s, 0);
        s.set_peer(late, unicast(8004));
        assert!(s.remove_peer(a));
        assert!(!s.remove_peer(a), "only once");
        // `late` never got RTP: no BYE owed.
        assert!(s.remove_peer(late));
        let out = sent(&mut s, MS);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!((out[0].0, out[0].1.port()), (Kind::Rtcp, 5005));
        assert!(is_bye(&out[0].2));
        let Some(Ok(RtcpPacket::Sr(sr))) = Compound::parse(&out[0].2).unwrap().next() else {
            panic!("the BYE compound starts with an SR");
        };
        assert_eq!(
            sr.ntp_timestamp(),
            0x1234_5678_0000_0000,
            "with the wall clock of its time"
        );
        assert!(sent(&mut s, 2 * MS).is_empty(), "said once");
        // The end of the stream: BYE to everyone left.
        s.close();
        let out = sent(&mut s, 3 * MS);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.port(), 6005);
        assert!(is_bye(&out[0].2));
    }

    #[test]
    fn reports_are_believed_only_from_a_peer_and_followed_for_fec() {
        let mut s = SendSession::new(
            SendConfig {
                fec_loss: Some((5, 30)),
                ..config()
            },
            0,
        )
        .unwrap();
        let a = PeerId::new(0, 1);
        s.set_peer(a, unicast(5004));
        // From the peer's RTCP port: believed.
        s.handle_rtcp(S, 0, addr(5005), &mut rr_from(0x77, SSRC, 64));
        // From another port of the same host, and from elsewhere: foreign.
        s.handle_rtcp(S, 0, addr(40000), &mut rr_from(0x78, SSRC, 255));
        s.handle_rtcp(
            S,
            0,
            SocketAddr::from(([10, 9, 9, 9], 5005)),
            &mut rr_from(0x79, SSRC, 255),
        );
        // About another stream, and garbage.
        s.handle_rtcp(S, 0, addr(5005), &mut rr_from(0x77, 0x999, 0));
        s.handle_rtcp(S, 0, addr(5005), &mut b"\x80garbage".to_vec());
        let c = *s.counters();
        assert_eq!((c.reports, c.foreign, c.unrelated, c.malformed), (1, 2, 1, 1));
        assert_eq!(s.receivers().len(), 1);
        let r = s.receivers()[0];
        assert_eq!((r.ssrc, r.peer, r.expected), (0x77, a, 100));
        assert!((r.fraction_lost - 0.25).abs() < 1e-9 && (r.jitter_ms - 10.0).abs() < 1e-9);
        let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
        assert!(matches!(events[0], Event::Report(i) if i.ssrc == 0x77));
        assert_eq!(events[1], Event::ExpectedLoss(25));
        // A better report: the expected loss follows, smoothed (25 + 0.25 × (0 − 25) ≈ 19).
        s.handle_rtcp(2 * S, 0, addr(5005), &mut rr_from(0x77, SSRC, 0));
        let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
        assert_eq!(events[1], Event::ExpectedLoss(19));
    }

    #[test]
    fn anyone_on_a_multicast_group_may_report_and_counts_as_a_member() {
        let mut s = SendSession::new(config(), 0).unwrap();
        let group = SocketAddr::from(([239, 1, 2, 3], 5004));
        s.set_peer(PeerId::new(0, 1), PeerSpec::udp(Some(group), true, false));
        assert_eq!(s.members(), 1, "nobody heard yet");
        for i in 0..3u8 {
            let from = SocketAddr::from(([10, 0, 0, 10 + i], 5005));
            s.handle_rtcp(S, 0, from, &mut rr_from(0x100 + u32::from(i), SSRC, 0));
        }
        assert_eq!((s.counters().reports, s.members()), (3, 4));
    }

    #[test]
    fn silent_receivers_are_forgotten_after_five_intervals_and_bye_removes_at_once() {
        let mut s = SendSession::new(config(), 0).unwrap();
        s.set_peer(PeerId::new(0, 1), unicast(5004));
        s.set_peer(PeerId::new(1, 1), unicast(6004));
        s.handle_rtcp(0, 0, addr(5005), &mut rr_from(0x77, SSRC, 0));
        s.handle_rtcp(0, 0, addr(6005), &mut rr_from(0x88, SSRC, 0));
        // 0x88 says goodbye.
        let mut bye = vec![0u8; 64];
        let n = rtcp_types::Bye::builder()
            .add_source(0x88)
            .write_into(&mut bye)
            .unwrap();
        let mut compound = rr_from(0x88, SSRC, 0);
        compound.extend_from_slice(&bye[..n]);
        s.handle_rtcp(S, 0, addr(6005), &mut compound);
        assert_eq!(s.receivers().len(), 1);
        // 0x77 keeps quiet while the stream runs: 5 × Td = 25 s later it is gone.
        let mut left = None;
        for k in 0..(40 * 50) {
            let now = k * 20 * MS;
            push(&mut s, k, now);
            sent(&mut s, now);
            while let Some(e) = s.poll_event() {
                if let Event::ReceiverLeft { ssrc: 0x77, why, .. } = e {
                    left.get_or_insert((now, why));
                }
            }
        }
        let (at, why) = left.expect("timed out");
        assert_eq!(why, Left::Timeout);
        // Checked at report times: between 25 s and one report interval (≤ 6.2 s) later.
        assert!((25 * S..=32 * S).contains(&at), "{at}");
        assert!(s.receivers().is_empty());
    }

    #[test]
    fn paced_packets_wait_for_their_release_time() {
        let mut s = SendSession::new(
            SendConfig {
                pacing: true,
                ..config()
            },
            0,
        )
        .unwrap();
        s.set_peer(PeerId::new(0, 1), unicast(5004));
        // Read on time, encoded 300 µs later: released a little after it is ready.
        let captured = 1000 * MS;
        let payload = [1u8; 40];
        let frame = |k: u64| EncodedFrame {
            payload: &payload,
            sample_index: k * 960,
            discontinuity: false,
            captured_ns: captured + k * 20 * MS,
            encoded_ns: captured + k * 20 * MS + 300_000,
        };
        s.push(captured + 300_000, &frame(0));
        let release = s.poll_timeout().unwrap();
        assert_eq!(release, captured + 300_000 + crate::net::pacer::MARGIN_NS);
        assert!(sent(&mut s, release - 1).is_empty(), "held");
        // A peer joining while it is held gets it: RTP-Info names it, not the next one.
        let (seq, ts) = s.next_packet_position();
        assert_eq!(seq, FIRST_SEQ);
        s.set_peer(PeerId::new(1, 1), unicast(6004));
        let out = sent(&mut s, release);
        assert_eq!(out.len(), 2);
        let first = RtpPacket::parse(&out[1].2).unwrap();
        assert_eq!((first.sequence_number(), first.timestamp()), (seq, ts));
        assert_eq!(s.next_packet_position(), (FIRST_SEQ + 1, ts.wrapping_add(960)));
        // The next frame is ready sooner: it still leaves a whole frame after the first.
        s.push(captured + 20 * MS + 100_000, &frame(1));
        let next = s.poll_timeout().unwrap();
        assert!(
            next.abs_diff(release + 20 * MS) < 10_000,
            "{}",
            next as i64 - release as i64
        );
    }

    #[test]
    fn stale_handles_change_nothing_and_a_full_queue_drops_the_oldest() {
        let mut s = SendSession::new(config(), 0).unwrap();
        let mut ids = PeerIds::new(0, 1);
        let first = ids.allocate().unwrap();
        s.set_peer(first, unicast(5004));
        ids.release(first);
        let second = ids.allocate().unwrap();
        // The slot's new peer replaces the first without it being removed.
        assert!(s.set_peer(second, unicast(6004)));
        assert!(!s.remove_peer(first), "stale");
        assert!(!s.set_peer(first, unicast(7004)), "stale");
        for k in 0..(QUEUE as u64 + 3) {
            push(&mut s, k, 0);
        }
        assert_eq!(s.counters().queue_drops, 3);
        let out = sent(&mut s, 0);
        assert_eq!(out.len(), MAX_BATCH);
        let p = RtpPacket::parse(&out[0].2).unwrap();
        assert_eq!(p.sequence_number(), FIRST_SEQ + 3, "the three oldest were dropped");
        assert!(out.iter().all(|(_, a, _)| a.port() == 6004));
    }

    #[test]
    fn our_own_reports_coming_back_are_not_a_receiver() {
        let mut s = SendSession::new(config(), 0).unwrap();
        let group = SocketAddr::from(([239, 1, 2, 3], 5004));
        s.set_peer(PeerId::new(0, 1), PeerSpec::udp(Some(group), true, false));
        // An RR "from" our own SSRC about us (multicast loop): ignored.
        s.handle_rtcp(S, 0, addr(5005), &mut rr_from(SSRC, SSRC, 10));
        assert_eq!((s.counters().reports, s.counters().unrelated), (0, 1));
        assert!(s.receivers().is_empty());
    }

    #[test]
    fn a_bye_counts_only_from_the_receivers_own_address() {
        let mut s = SendSession::new(config(), 0).unwrap();
        let group = SocketAddr::from(([239, 1, 2, 3], 5004));
        s.set_peer(PeerId::new(0, 1), PeerSpec::udp(Some(group), true, false));
        let member = SocketAddr::from(([10, 0, 0, 7], 5005));
        s.handle_rtcp(S, 0, member, &mut rr_from(0x77, SSRC, 0));
        let mut bye = vec![0u8; 64];
        let n = rtcp_types::Bye::builder()
            .add_source(0x77)
            .write_into(&mut bye)
            .unwrap();
        bye.truncate(n);
        // Anyone on the group could send this one: it removes nobody.
        s.handle_rtcp(S, 0, SocketAddr::from(([10, 0, 0, 8], 5005)), &mut bye.clone());
        assert_eq!(s.receivers().len(), 1);
        s.handle_rtcp(S, 0, member, &mut bye);
        assert!(s.receivers().is_empty());
    }

    #[test]
    fn a_flood_of_invented_receivers_cannot_push_out_known_ones() {
        let mut s = SendSession::new(
            SendConfig {
                max_peers: 1,
                ..config()
            },
            0,
        )
        .unwrap();
        let group = SocketAddr::from(([239, 1, 2, 3], 5004));
        s.set_peer(PeerId::new(0, 1), PeerSpec::udp(Some(group), true, false));
        let real = SocketAddr::from(([10, 0, 0, 7], 5005));
        // A real receiver reports twice: trusted.
        s.handle_rtcp(S, 0, real, &mut rr_from(0x77, SSRC, 0));
        s.handle_rtcp(2 * S, 0, real, &mut rr_from(0x77, SSRC, 0));
        // 5000 invented SSRCs, one report each, from the group's members.
        for i in 0..5000u32 {
            let from = SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 5005));
            s.handle_rtcp(3 * S, 0, from, &mut rr_from(0x1000 + i, SSRC, 255));
        }
        let capacity = 1 + MULTICAST_MEMBERS;
        assert_eq!(s.receivers().len(), capacity, "bounded");
        assert!(s.receivers().iter().any(|r| r.ssrc == 0x77), "the real receiver stays");
        // Each newcomer replaced a one-report stranger; none went untracked.
        assert_eq!(s.counters().untracked, 0);
        // A table of trusted receivers leaves newcomers untracked.
        let mut t = SendSession::new(
            SendConfig {
                max_peers: 1,
                ..config()
            },
            0,
        )
        .unwrap();
        t.set_peer(PeerId::new(0, 1), PeerSpec::udp(Some(group), true, false));
        for i in 0..capacity as u32 {
            let from = SocketAddr::from(([10, 2, 0, i as u8], 5005));
            for _ in 0..TRUSTED_AFTER {
                t.handle_rtcp(S, 0, from, &mut rr_from(0x2000 + i, SSRC, 0));
            }
        }
        t.handle_rtcp(
            S,
            0,
            SocketAddr::from(([10, 3, 0, 1], 5005)),
            &mut rr_from(0x9999, SSRC, 0),
        );
        assert_eq!((t.receivers().len(), t.counters().untracked), (capacity, 1));
    }

    #[test]
    fn under_srtp_only_authenticated_reports_count_and_replays_do_not() {
        use crate::rtp::srtp::{MasterKey, Profile};
        let key = MasterKey::random().unwrap();
        let profile = Profile::AesCm128HmacSha1_80;
        let mut s = SendSession::new(
            SendConfig {
                srtp: Some(SrtpContext::new(profile, &key, SSRC)),
                srtcp_in: Some(crate::rtp::srtp::SrtcpInbound::new(profile, &key)),
                ..config()
            },
            0,
        )
        .unwrap();
        s.set_peer(PeerId::new(0, 1), unicast(5004));
        // A receiver protecting its reports with the stream's key (RFC 3711 §3.4).
        let mut receiver = SrtpContext::new(profile, &key, 0x77);
        let protect = |ctx: &mut SrtpContext, plain: &[u8]| {
            let mut buf = vec![0u8; plain.len() + 64];
            buf[..plain.len()].copy_from_slice(plain);
            let n = ctx.protect_rtcp(&mut buf, plain.len()).unwrap();
            buf.truncate(n);
            buf
        };
        let srtcp = protect(&mut receiver, &rr_from(0x77, SSRC, 64));
        s.handle_rtcp(S, 0, addr(5005), &mut srtcp.clone());
        assert_eq!(s.counters().reports, 1, "authenticated SRTCP is a report");
        s.handle_rtcp(S, 0, addr(5005), &mut srtcp.clone());
        assert_eq!(s.counters().replayed, 1, "the same packet again");
        s.handle_rtcp(S, 0, addr(5005), &mut rr_from(0x77, SSRC, 255));
        let mut forged = protect(
            &mut SrtpContext::new(profile, &MasterKey::random().unwrap(), 0x78),
            &rr_from(0x78, SSRC, 255),
        );
        s.handle_rtcp(S, 0, addr(5005), &mut forged);
        assert_eq!(s.counters().unauthenticated, 2, "plaintext, and another key");
        assert_eq!(s.receivers().len(), 1);
        assert!(
            (s.receivers()[0].fraction_lost - 0.25).abs() < 1e-9,
            "the plaintext changed nothing"
        );
    }
}
