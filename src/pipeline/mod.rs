//! Wires the real-time threads together and owns their lifetime.
//!
//! ```text
//! RTPMIC_THREADS=3: rtpmic-capture ──Frames──▶ rtpmic-encode ──EncodedPackets──▶ rtpmic-send (SendShell) ──▶ UDP
//! RTPMIC_THREADS=2: rtpmic-capture ──Frames──▶ rtpmic-encode + SendShell ──────────────────────────▶ UDP
//! RTPMIC_THREADS=1: rtpmic-capture + encoder + SendShell ──────────────────────────────────────────▶ UDP
//!                   peers (resolver, clients) ──Control──▶ SendShell ◀──RTCP── rtpmic-rtcp
//! ```
//! The rings are lock-free; how many threads is chosen by [`Config::stream_threads`] (fewer
//! handoffs cost fewer wake-ups per frame). The send session (`rtp::session`) lives in the
//! thread that sends, inside its shell (`net::sender::SendShell`). Everything the threads
//! touch is allocated here, before the first period is read. Shutdown is ordered by the
//! rings: `stop` ends the capture loop, which closes the frame ring; the encoder drains it
//! and closes the packet ring; the sender drains that, says RTCP BYE and ends. Nothing queued
//! is thrown away on the way out.

mod encode;
mod rtsp;

pub use crate::codec::Tuning;
pub use encode::EncoderTuning;
use encode::{Encoding, PacketOut};

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;

use rand::Rng;

use crate::capture::{self, CaptureControl, Frame};
use crate::codec::{EncodeError, Encoder};
use crate::config::{Config, SenderKind};
use crate::net::control::{Control, InDatagram, SessionView, SourceFilter};
use crate::net::sender::{self, EncodedPacket, RtcpInCounters, SendShell};
use crate::net::socket::{SocketError, SocketOptions};
use crate::net::udp::{MmsgSender, StreamSockets};
use crate::net::{resolve, uring, DatagramSender};
use crate::ops::stats::Stats;
use crate::ring::{ring, Consumer, Notifier};
use crate::rt;
use crate::rtp::packetizer::RtpClock;
use crate::rtp::red::RedEncoder;
use crate::rtp::session::peers::rtcp_address;
use crate::rtp::session::{Event, Local, PeerIds, PeerSpec, SendConfig, SendSession};

/// Frames the capture → encoder ring holds (at 20 ms: 160 ms of audio before dropping).
pub const FRAME_RING: usize = 8;
/// Packets the encoder → sender ring holds.
pub const PACKET_RING: usize = 16;
/// RTCP datagrams the reader thread → sending thread ring holds.
pub const RTCP_IN_RING: usize = 64;
/// Session events the sending thread → main thread ring holds (the main thread drains it
/// every second; reports come every few seconds per receiver).
pub const EVENT_RING: usize = 256;

/// How a run behaves beyond the config (command-line options of `rtpmic run`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Stop by itself after this many seconds of audio.
    pub seconds: Option<u64>,
    /// Wait instead of dropping when a ring is full: for sources faster than real time
    /// (benchmarks through the unpaced `file` PCM). Never for a live microphone.
    pub no_drop: bool,
    /// Peer slots for peers introduced from outside the pipeline through
    /// [`Pipeline::take_client_controls`] (RTSP clients), after the destinations' slots.
    pub client_slots: usize,
}

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("encoder: {0}")]
    Encoder(#[from] EncodeError),
    #[error("{0}")]
    Socket(#[from] SocketError),
    #[error("RTPMIC_SENDER=io_uring: {0}; use auto or epoll")]
    NoUring(String),
    #[error("{0}: {1}")]
    Io(&'static str, io::Error),
    #[error("RTCP layout: {0}")]
    Rtcp(#[from] crate::rtp::rtcp::LayoutError),
}

/// What start-up found worth telling the operator (the caller logs it).
#[derive(Debug, Default)]
pub struct StartReport {
    /// Each destination's address, `None` while its name does not resolve (the resolver
    /// thread keeps trying).
    pub destinations: Vec<Option<SocketAddr>>,
    pub unresolved: Vec<String>,
    pub ssrc: u32,
    pub memory_lock: Option<String>,
    /// The sender backend in use, and why not io_uring, under `RTPMIC_SENDER=auto`.
    pub sender: &'static str,
    pub sender_fallback: Option<String>,
    /// Real-time threads the stream runs in (`RTPMIC_THREADS` resolved).
    pub threads: u8,
}

/// Where the capture thread's frames go.
enum CaptureOut {
    /// To the `rtpmic-encode` thread.
    Ring(crate::ring::Producer<Frame>),
    /// Encoded and sent by the capture thread itself.
    Inline(Box<Encoding>),
}

impl capture::FrameSink for Box<Encoding> {
    fn deliver(&mut self, frame: &Frame, ctl: &CaptureControl<'_>) -> bool {
        self.process(frame, ctl.stats)
    }

    fn idle(&mut self, stats: &Stats) {
        Encoding::idle(self, stats);
    }

    fn close(&mut self, stats: &Stats) {
        self.finish(stats);
    }
}

/// Starts a helper thread (not real-time, small stack: under `mlockall` every stack byte is
/// resident).
fn spawn_helper(name: &str, body: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, StartError> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(rt::HELPER_STACK)
        .spawn(body)
        .map_err(|e| StartError::Io("spawn", e))
}

/// The stream's bandwidth in octets per second (payload + 40 bytes of IP/UDP/RTP headers per
/// packet), the "session bandwidth" RFC 3550 §6.2 scales RTCP by.
fn session_bandwidth(config: &Config) -> f64 {
    let packets_per_s = 1e6 / f64::from(config.frame_us);
    let payload = match config.codec {
        crate::config::Codec::Opus => f64::from(config.bitrate) / 8.0 / packets_per_s,
        crate::config::Codec::L16 => config.frame_samples() as f64 * 2.0,
        _ => config.frame_samples() as f64,
    };
    (payload + 40.0) * packets_per_s
}

/// An SRTP context for `ssrc` when SRTP is on.
fn srtp_context(config: &Config, ssrc: u32) -> Option<crate::rtp::srtp::SrtpContext> {
    config
        .srtp
        .as_ref()
        .map(|s| crate::rtp::srtp::SrtpContext::new(s.profile, &s.key, ssrc))
}

/// Debug builds only: `RTPMICTEST_FIRST_SEQ` fixes the first RTP sequence number, so a test
/// can cross the 2^16 wrap (SRTP rollover) in seconds. Release builds always pick at random
/// (RFC 3550 §5.1).
fn first_sequence_number() -> Option<u16> {
    if cfg!(debug_assertions) {
        std::env::var("RTPMICTEST_FIRST_SEQ").ok()?.parse().ok()
    } else {
        None
    }
}

/// The backend `RTPMIC_SENDER` asks for: io_uring when asked for by name (an error if
/// missing), sendmmsg + epoll when asked for by name. `auto` takes io_uring, when probing
/// finds it, for a pipeline with a sender thread (fan-out: its wake-ups and every datagram
/// of a batch go through one ring), and sendmmsg when the encoding thread sends itself: with
/// no wake-up to fold into the ring, one `sendmmsg` per packet measured 0.7-0.8 µs less CPU
/// than an io_uring submit-and-reap (docs/PERFORMANCE.md). Returns why io_uring is not used.
fn open_backend(
    config: &Config,
    sockets: StreamSockets,
    threads: u8,
) -> Result<(Box<dyn DatagramSender>, Option<String>), StartError> {
    let uring = match config.sender {
        SenderKind::Epoll => Err("RTPMIC_SENDER=epoll".to_string()),
        SenderKind::IoUring => Ok(uring::probe().map_err(StartError::NoUring)?),
        SenderKind::Auto if threads < 3 => Err(format!(
            "at most {} destinations, sent by the encoding thread",
            crate::config::FEW_DESTINATIONS
        )),
        SenderKind::Auto => uring::probe().map_err(|e| format!("io_uring unavailable: {e}")),
    };
    Ok(match uring {
        Ok(()) => (Box::new(uring::UringSender::new(sockets)?), None),
        Err(why) => (
            Box::new(MmsgSender::new(sockets)?),
            (config.sender == SenderKind::Auto).then_some(why),
        ),
    })
}

/// A running pipeline.
pub struct Pipeline {
    /// Capture, encoder, sender: they end by themselves when the capture stops.
    stream_threads: Vec<JoinHandle<()>>,
    /// RTCP in, SAP, resolver: they run until `stop`.
    helpers: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    exited: Arc<Notifier>,
    /// Stream threads that have ended (see [`ExitGuard`]).
    ended: Arc<AtomicUsize>,
    rt_refused: Arc<AtomicBool>,
    rtcp_counters: Arc<RtcpInCounters>,
    /// The send session's events (receiver reports, expected loss), for the main thread.
    events: Consumer<Event>,
    tuning: Arc<EncoderTuning>,
    /// Clones of every socket the stream and RTCP go out of (DSCP changes).
    live_sockets: Vec<std::net::UdpSocket>,
    new_destinations: resolve::NewDestinations,
    /// Destination slots (RTPMIC_MAX_DEST, or more when RTPMIC_DEST lists more).
    slots: usize,
    /// The ring and handles for peers introduced from outside (a test's), until taken;
    /// with RTSP on, the RTSP thread has it.
    client_controls: Option<(crate::ring::Producer<Control>, PeerIds)>,
    rtsp_counters: Arc<crate::net::rtsp::RtspCounters>,
    /// The `rtpmic-rtsp` thread, when the RTSP server runs.
    rtsp: Option<rtsp::Running>,
    /// The RTCP groups the RTCP reader joins (it looks for new ones every second).
    multicast_groups: resolve::MulticastGroups,
}

/// The RTCP group of the RTSP multicast group: its port + 1, as SETUP's Transport says.
fn rtsp_rtcp_group(config: &Config) -> Option<SocketAddr> {
    let group = config.rtsp.multicast.filter(|_| config.rtsp.enabled())?;
    Some(rtcp_address(group, false))
}

/// Counts a stream thread's end in `ended` and signals `exited`, however the thread ends
/// (panics included).
///
/// The count, not `JoinHandle::is_finished`, is what says a thread is done: the guard runs
/// inside the thread, a moment before its handle reports it finished. A waiter that woke on
/// `exited`, cleared it and looked at the handles in that moment would see the thread still
/// running and then sleep through the only signal it was going to get (a SIGTERM right after
/// start took the whole 3 s stop grace that way).
struct ExitGuard {
    ended: Arc<AtomicUsize>,
    exited: Arc<Notifier>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.ended.fetch_add(1, SeqCst);
        self.exited.force();
    }
}

impl Pipeline {
    /// Resolves destinations, opens sockets, builds the encoder and rings, and starts the
    /// stream threads (`RTPMIC_THREADS`). The capture device is opened by the capture thread
    /// itself (and reopened there after failures).
    pub fn start(config: &Config, opts: RunOptions) -> Result<(Pipeline, StartReport), StartError> {
        let mut report = StartReport::default();
        for d in &config.dest {
            match resolve::resolve(d, None) {
                Ok(a) => report.destinations.push(Some(a)),
                Err(e) => {
                    report.destinations.push(None);
                    report.unresolved.push(format!("{d}: {e}"));
                }
            }
        }
        // Every slot up to RTPMIC_MAX_DEST is allocated now, used or not.
        let slots = config.max_dest.max(config.dest.len());
        report.threads = config.stream_threads();
        let sockets = StreamSockets::open(
            &SocketOptions::from_config(config),
            config.rtcp,
            config.rtcp && config.rtcp_mux,
        )?;
        let readers = if config.rtcp {
            Some(sockets.try_clone_all().map_err(|e| StartError::Io("rtcp socket", e))?)
        } else {
            None
        };
        // The stream's ports, for RTSP's `server_port=` (IPv6 takes the same pair if it can).
        let server_ports = (
            sockets.local_addr(true, Local::Rtp).map_or(0, |a| a.port()),
            sockets.local_addr(true, Local::Rtcp).map_or(0, |a| a.port()),
        );
        let (tx, fallback) = open_backend(config, sockets, report.threads)?;
        report.sender = tx.name();
        let live_sockets = tx.sockets().try_clone_all().map_err(|e| StartError::Io("socket", e))?;
        report.sender_fallback = fallback;
        // Two messages per slot: a whole new destination list (SIGHUP) never overwrites one.
        let (controls_tx, controls_rx) =
            ring(2 * slots + 2, Control::empty).map_err(|e| StartError::Io("eventfd", e))?;
        let mut control_rings = vec![controls_rx];
        // Peers from outside: RTSP clients (RTPMIC_RTSP_MAX_CLIENTS), or a test's.
        let client_slots = if config.rtsp.enabled() {
            config.rtsp.max_clients
        } else {
            opts.client_slots
        };
        let mut client_controls = None;
        if client_slots > 0 {
            let (tx, rx) = ring(2 * client_slots + 2, Control::empty).map_err(|e| StartError::Io("eventfd", e))?;
            control_rings.push(rx);
            client_controls = Some((tx, PeerIds::new(slots, client_slots)));
        }
        let mut rtsp = if config.rtsp.enabled() {
            Some(rtsp::Prepared::new(config)?)
        } else {
            None
        };
        let (events_tx, events) =
            ring(EVENT_RING, || Event::ExpectedLoss(0)).map_err(|e| StartError::Io("eventfd", e))?;
        let encoder = Encoder::new(config)?;
        let mut rng = rand::rng();
        let ssrc = config.ssrc.unwrap_or_else(|| rng.random());
        report.ssrc = ssrc;
        let seq0: u16 = first_sequence_number().unwrap_or_else(|| rng.random());
        // With RFC 2198 redundancy every packet is a RED packet; the codec's type is inside.
        let packet_pt = if config.redundancy > 0 {
            config.red_payload_type
        } else {
            config.payload_type
        };
        let mut session = SendSession::new(
            SendConfig {
                ssrc,
                payload_type: packet_pt,
                first_seq: seq0,
                ts_base: rng.random(),
                clock_rate: config.rtp_clock_rate(),
                sample_rate: config.rate,
                ticks_per_frame: config.rtp_ticks_per_frame(),
                frame_ns: u64::from(config.frame_us) * 1000,
                cname: config.effective_cname(),
                session_bw: session_bandwidth(config),
                rtcp: config.rtcp,
                srtp: srtp_context(config, ssrc),
                srtcp_in: config
                    .srtp
                    .as_ref()
                    .map(|s| crate::rtp::srtp::SrtcpInbound::new(s.profile, &s.key)),
                pacing: config.pacing,
                fec_loss: match config.opus_loss {
                    crate::config::LossPercent::Auto { min, max } if config.opus_fec => Some((min, max)),
                    _ => None,
                },
                max_peers: slots + client_slots,
            },
            rt::now_ns(),
        )?;
        let ids = resolve::initial_ids(config.dest.len());
        let sources = Arc::new(SourceFilter::new(slots + client_slots));
        let open = report.destinations.iter().flatten().any(|a| a.ip().is_multicast());
        for (id, addr) in ids.iter().zip(&report.destinations) {
            let spec = PeerSpec::udp(*addr, config.rtcp, config.rtcp_mux);
            session.set_peer(*id, spec);
            sources.publish(id.index(), Some(&spec), open);
        }
        let rtcp_counters = Arc::new(RtcpInCounters::default());
        let mut rtcp_reader = None;
        let rtcp_in = match readers {
            Some(sockets) => {
                let (tx, rx) = ring(RTCP_IN_RING, InDatagram::empty).map_err(|e| StartError::Io("eventfd", e))?;
                rtcp_reader = Some((sockets, tx));
                Some(rx)
            }
            None => None,
        };
        if config.rt_priority > 0 {
            report.memory_lock = rt::lock_memory().err().map(|e| e.to_string());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::new(slots + client_slots));
        stats
            .destinations_resolved
            .store(report.destinations.iter().flatten().count() as u64, Relaxed);
        let tuning = Arc::new(EncoderTuning::new(Tuning {
            bitrate: config.bitrate,
            complexity: config.opus_complexity,
            loss_percent: crate::codec::opus::initial_loss_percent(config),
        }));
        let stage = encode::EncodeStage {
            encoder,
            red: (config.redundancy > 0).then(|| RedEncoder::new(config.payload_type, usize::from(config.redundancy))),
            clock: RtpClock::new(config.rtp_clock_rate(), config.rate),
            dtx: config.opus_dtx,
        };
        let exited = Arc::new(Notifier::new().map_err(|e| StartError::Io("eventfd", e))?);
        let ended = Arc::new(AtomicUsize::new(0));
        let rt_refused = Arc::new(AtomicBool::new(false));
        let limit_samples = opts.seconds.map(|s| s * u64::from(config.rate));
        let prio = config.rt_priority;

        let mut threads = Vec::new();
        let mut helpers = Vec::new();
        let spawn = |name: &str, stack: usize, body: Box<dyn FnOnce() + Send>| {
            let guard = ExitGuard {
                ended: ended.clone(),
                exited: exited.clone(),
            };
            let refused = rt_refused.clone();
            std::thread::Builder::new()
                .name(name.into())
                .stack_size(stack)
                .spawn(move || {
                    let _guard = guard;
                    if rt::set_realtime(prio).is_err() {
                        refused.store(true, Relaxed);
                    }
                    rt::prefault_stack(stack);
                    body();
                })
        };
        let view = Arc::new(SessionView::new(slots + client_slots));
        // Before the first packet, RTP-Info names the first packet's number and time.
        let (seq, ts) = session.next_packet_position();
        view.set_position(seq, ts);
        let mut rtcp_rings: Vec<_> = rtcp_in.into_iter().collect();
        if let Some(r) = rtsp.as_mut() {
            rtcp_rings.extend(r.rtcp_rx.take());
        }
        let send_stage = SendShell {
            session,
            tx,
            controls: control_rings,
            rtcp_in: rtcp_rings,
            tcp: rtsp.as_ref().map(|r| r.sinks.clone()),
            view: view.clone(),
            events: events_tx,
            rtcp_counters: rtcp_counters.clone(),
            published: Default::default(),
            sources: sources.clone(),
        };
        // The frame ring's reader, and the packet ring's, when those threads exist.
        let mut frames_rx = None;
        let mut packets_rx = None;
        let capture_out = if report.threads == 1 {
            CaptureOut::Inline(Encoding::new(stage, tuning.clone(), PacketOut::direct(send_stage)))
        } else {
            let (frames_tx, rx) = ring(FRAME_RING, Frame::empty).map_err(|e| StartError::Io("eventfd", e))?;
            let packet_out = if report.threads == 2 {
                PacketOut::direct(send_stage)
            } else {
                let (packets_tx, rx) =
                    ring(PACKET_RING, EncodedPacket::empty).map_err(|e| StartError::Io("eventfd", e))?;
                packets_rx = Some((rx, send_stage));
                PacketOut::Ring {
                    ring: packets_tx,
                    no_drop: opts.no_drop,
                }
            };
            frames_rx = Some((rx, Encoding::new(stage, tuning.clone(), packet_out)));
            CaptureOut::Ring(frames_tx)
        };
        {
            let (stats, stop, config) = (stats.clone(), stop.clone(), config.clone());
            // With everything in one thread, the capture thread runs the encoder too.
            let stack = if report.threads == 1 {
                rt::ENCODE_STACK
            } else {
                rt::IO_STACK
            };
            threads.push(
                spawn(
                    "rtpmic-capture",
                    stack,
                    Box::new(move || {
                        let ctl = CaptureControl {
                            stats: &stats,
                            stop: &stop,
                            limit_samples,
                            no_drop: opts.no_drop,
                        };
                        match capture_out {
                            CaptureOut::Ring(out) => capture::run(&config, out, ctl),
                            CaptureOut::Inline(out) => capture::run(&config, out, ctl),
                        }
                    }),
                )
                .map_err(|e| StartError::Io("spawn", e))?,
            );
        }
        if let Some((frames_rx, encoding)) = frames_rx {
            let stats = stats.clone();
            threads.push(
                spawn(
                    "rtpmic-encode",
                    rt::ENCODE_STACK,
                    Box::new(move || encode::run(frames_rx, encoding, &stats)),
                )
                .map_err(|e| StartError::Io("spawn", e))?,
            );
        }
        if let Some((packets_rx, send_stage)) = packets_rx {
            let stats = stats.clone();
            threads.push(
                spawn(
                    "rtpmic-send",
                    rt::IO_STACK,
                    Box::new(move || {
                        if let Err(e) = sender::run(packets_rx, send_stage, &stats) {
                            stats.set_device_error(&format!("sender: {e}"));
                        }
                    }),
                )
                .map_err(|e| StartError::Io("spawn", e))?,
            );
        }
        // Multicast destinations and the RTSP group: the RTCP reader joins their RTCP groups
        // for members' reports, those known now and those learnt later (SIGHUP).
        let groups: resolve::MulticastGroups = Arc::new(std::sync::Mutex::new(
            report
                .destinations
                .iter()
                .flatten()
                .filter(|a| a.ip().is_multicast())
                .map(|&a| rtcp_address(a, config.rtcp_mux))
                .chain(rtsp_rtcp_group(config))
                .collect(),
        ));
        let rtsp_counters = Arc::new(crate::net::rtsp::RtspCounters::default());
        let mut rtsp_thread = None;
        let rtsp_controls = if rtsp.is_some() { client_controls.take() } else { None };
        if let (Some(prepared), Some((controls, _))) = (rtsp, rtsp_controls) {
            let ctx = prepared.context(
                config,
                rtsp::Shared {
                    controls,
                    slots,
                    server_ports,
                    ssrc,
                    view: view.clone(),
                    stats: stats.clone(),
                    counters: rtsp_counters.clone(),
                    rtcp_counters: rtcp_counters.clone(),
                },
            )?;
            rtsp_thread = Some(rtsp::Running::spawn(ctx)?);
        }
        if let Some((sockets, out)) = rtcp_reader {
            let (stop, counters) = (stop.clone(), rtcp_counters.clone());
            let listen = crate::net::rtcp_in::Listen {
                sockets,
                groups: groups.clone(),
                multicast_if: config.multicast_if.clone(),
            };
            helpers.push(spawn_helper("rtpmic-rtcp", move || {
                crate::net::rtcp_in::run(listen, out, &sources, &counters, &stop)
            })?);
        }
        if config.sap {
            let (stop, config) = (stop.clone(), config.clone());
            helpers.push(spawn_helper("rtpmic-sap", move || {
                crate::net::sap::run(&config, &stop)
            })?);
        }
        // Always running: it re-resolves names and applies a new RTPMIC_DEST on SIGHUP.
        let new_destinations = resolve::NewDestinations::default();
        {
            let (stats, stop, dests) = (stats.clone(), stop.clone(), config.dest.clone());
            let current = report.destinations.clone();
            let interval_s = config.resolve_interval_s;
            let new_destinations = new_destinations.clone();
            let (rtcp, rtcp_mux) = (config.rtcp, config.rtcp_mux);
            let groups = groups.clone();
            helpers.push(spawn_helper("rtpmic-resolve", move || {
                let ctx = resolve::ResolverContext {
                    controls: controls_tx,
                    stats: &stats,
                    stop: &stop,
                    interval_s,
                    rtcp,
                    rtcp_mux,
                    new_destinations,
                    ids,
                    groups,
                };
                resolve::run(dests, current, ctx)
            })?);
        }
        Ok((
            Pipeline {
                stream_threads: threads,
                helpers,
                stop,
                stats,
                exited,
                ended,
                rt_refused,
                rtcp_counters,
                events,
                tuning,
                live_sockets,
                new_destinations,
                slots,
                client_controls,
                rtsp_counters,
                rtsp: rtsp_thread,
                multicast_groups: groups,
            },
            report,
        ))
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The RTCP input counters of the send session.
    pub fn rtcp_counters(&self) -> &Arc<RtcpInCounters> {
        &self.rtcp_counters
    }

    /// The send session's events since the last call (receivers' reports, receivers gone,
    /// the loss Opus FEC should plan for), oldest first.
    pub fn take_events(&mut self, mut f: impl FnMut(Event)) {
        while let Some(e) = self.events.pop(|e| *e) {
            f(e);
        }
    }

    /// New Opus settings from the next frame on, without a gap.
    pub fn tune_encoder(&self, t: Tuning) {
        self.tuning.set(t);
    }

    /// The Opus settings in force.
    pub fn encoder_tuning(&self) -> Tuning {
        self.tuning.get()
    }

    /// A new DSCP on every stream and RTCP socket, from the next datagram on.
    pub fn set_dscp(&self, dscp: u8) -> io::Result<()> {
        self.live_sockets
            .iter()
            .try_for_each(|s| crate::net::socket::set_dscp(s, dscp))
    }

    /// Hands a new destination list to the resolver thread, which resolves it and moves the
    /// sender over slot by slot. False when it does not fit the preallocated slots.
    pub fn set_destinations(&self, dests: Vec<crate::config::Destination>) -> bool {
        if dests.len() > self.slots {
            return false;
        }
        match self.new_destinations.lock() {
            Ok(mut pending) => {
                *pending = Some(dests);
                true
            }
            Err(_) => false,
        }
    }

    /// SIGHUP: the RTSP server takes `config`'s `RTPMIC_RTSP_*` settings (listen address,
    /// path, access, timeouts, multicast group) while the stream goes on: its clients are
    /// told goodbye (their peers leave with a BYE) and may come back. When the new settings
    /// cannot start (the new address is in use), the old ones serve again and the error is
    /// returned.
    pub fn reconfigure_rtsp(&mut self, config: &Config) -> Result<(), String> {
        let Some(running) = self.rtsp.take() else {
            return Err("the RTSP server is not running".into());
        };
        let (running, result) = running.restart(config);
        self.rtsp = running;
        if result.is_ok() {
            // A new RTSP group: its members' reports are heard too (the old group stays
            // joined, as for a multicast destination replaced on SIGHUP).
            if let (Some(g), Ok(mut groups)) = (rtsp_rtcp_group(config), self.multicast_groups.lock()) {
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
        result
    }

    /// The RTSP server's client count and counters (zero without it).
    pub fn rtsp_counters(&self) -> &Arc<crate::net::rtsp::RtspCounters> {
        &self.rtsp_counters
    }

    /// The ring through which peers from outside the pipeline (RTSP clients) join and leave,
    /// and the handles of their slots; `None` without client slots, or once taken.
    pub fn take_client_controls(&mut self) -> Option<(crate::ring::Producer<Control>, PeerIds)> {
        self.client_controls.take()
    }

    /// Destination slots allocated at start.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Asks the threads to stop; they drain and end in order. Returns at once.
    pub fn request_stop(&self) {
        self.stop.store(true, Relaxed);
    }

    /// An eventfd that becomes readable whenever a pipeline thread ends (for the main loop).
    pub fn exit_fd(&self) -> std::os::fd::RawFd {
        self.exited.raw_fd()
    }

    /// Clears the exit eventfd after the main loop saw it.
    pub fn clear_exit_fd(&self) {
        self.exited.drain();
    }

    /// Whether any stream thread has ended (the stream is over or broken).
    pub fn any_finished(&self) -> bool {
        // A helper (SAP with nothing to announce) may end early; that ends nothing.
        self.ended.load(SeqCst) > 0
    }

    /// Whether the kernel refused SCHED_RR (the threads run at normal priority).
    pub fn realtime_refused(&self) -> bool {
        self.rt_refused.load(Relaxed)
    }

    /// Waits up to `timeout` for the stream threads to end after [`Pipeline::request_stop`];
    /// false when one is still running (stuck in a driver call that does not return).
    pub fn wait_stopped(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.ended.load(SeqCst) >= self.stream_threads.len() {
                return true;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            self.exited.wait(Some(deadline - now));
        }
    }

    /// Waits for all threads to end (after `request_stop`, or by themselves with
    /// `RunOptions::seconds`) and releases every socket the pipeline holds, so a pipeline
    /// started next can bind the same ports (`RTPMIC_BIND`); returns the final counters.
    /// The RTSP server is stopped first, at once: its clients get their BYE while the
    /// sending thread still runs.
    /// The threads own the sockets they send and read from and close them as they end;
    /// the clones kept here for option changes are closed last.
    pub fn join(&mut self) -> Arc<Stats> {
        // RTSP clients are told goodbye first, while the sending thread can still send it.
        if let Some(r) = self.rtsp.take() {
            r.stop();
        }
        for t in self.stream_threads.drain(..) {
            let _ = t.join();
        }
        self.stop.store(true, Relaxed);
        for t in self.helpers.drain(..) {
            let _ = t.join();
        }
        self.live_sockets.clear();
        self.stats.clone()
    }
}
