//! `rtpmic probe ADDR:PORT` or `rtpmic probe rtsp://host/path`: an installer's receiver.
//! Listens (joining the group for multicast) or pulls over RTSP ([`rtsp`]: TCP interleaved or
//! UDP), prints once a second what arrives — packets, loss, reordering, jitter, audio
//! level of the decoded stream — answers the sender with RTCP receiver reports, can write
//! the audio to a WAV file, and fails when nothing arrives in time. Also our own receiver in
//! tests. Not a real-time path: it allocates freely.

pub mod rtsp;
pub mod wav;

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use rtp_types::RtpPacket;

use crate::codec::g711;
use crate::rtp::session::recv::{Received, RecvSession};
use crate::rtp::session::source::{self, SeqVerdict};

/// How the probe decodes a dynamic payload type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DynamicCodec {
    Opus,
    L16,
}

/// What the probe receives from.
#[derive(Clone, Debug)]
pub enum Target {
    /// Listen on a local address or multicast group and the RTP port (RTCP on port + 1).
    Listen(SocketAddr),
    /// Pull from an RTSP server.
    Rtsp(rtsp::RtspTarget),
}

impl Target {
    /// `ADDR:PORT` or an `rtsp://` URL. Errors never repeat the text (a URL may hold a
    /// password).
    pub fn parse(s: &str) -> Result<Target, String> {
        if s.contains("://") {
            return rtsp::RtspTarget::parse(s).map(Target::Rtsp);
        }
        s.parse()
            .map(Target::Listen)
            .map_err(|_| "expected ADDR:PORT (e.g. 0.0.0.0:5004) or an rtsp:// URL".to_string())
    }
}

/// Command-line options of `rtpmic probe`.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    pub target: Target,
    /// RTSP: RTP over UDP instead of interleaved on the RTSP connection (TCP).
    pub udp: bool,
    /// Give up (exit status 1) when no RTP arrived this long after start (RTSP: after PLAY;
    /// also the longest wait for each RTSP answer).
    pub timeout: Duration,
    /// Stop after this long (else at SIGINT/SIGTERM).
    pub seconds: Option<u64>,
    pub wav: Option<PathBuf>,
    /// What a dynamic payload type (96..127) carries, and L16's rate (listening only: RTSP
    /// takes both from the SDP).
    pub dynamic: DynamicCodec,
    pub l16_rate: u32,
}

/// What the probe saw in all.
#[derive(Clone, Debug, Default)]
pub struct ProbeSummary {
    pub ssrc: Option<u32>,
    pub received: u64,
    pub lost: u64,
    pub reordered: u64,
    pub duplicates: u64,
    pub jitter_ms: f64,
    pub invalid: u64,
    pub other_sources: u64,
    pub rr_sent: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}: {1}")]
    Io(&'static str, io::Error),
    #[error("no RTP arrived {0} within {1} s")]
    NothingArrived(String, u64),
    #[error("rtsp: {0}")]
    Rtsp(String),
}

/// What a payload type carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
    /// Mono L16 at this rate.
    L16 {
        rate: u32,
    },
    /// Opus (RTP clock 48 kHz), decoded to mono 48 kHz.
    Opus,
}

impl Codec {
    /// The RTP clock rate, which is also the rate of the decoded audio.
    fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::L16 { rate } => rate,
            Codec::Opus => 48_000,
        }
    }
}

/// Which payload types the probe plays, and as what.
#[derive(Clone, Debug)]
pub enum Payloads {
    /// Listening: the static types (0 PCMU, 8 PCMA, 11 L16/44100) and dynamic ones as the
    /// options say.
    Options { dynamic: DynamicCodec, l16_rate: u32 },
    /// RTSP: the SDP's.
    Sdp(Vec<(u8, Codec)>),
}

impl Payloads {
    fn codec(&self, pt: u8) -> Option<Codec> {
        match self {
            Payloads::Options { dynamic, l16_rate } => match pt {
                0 => Some(Codec::Pcmu),
                8 => Some(Codec::Pcma),
                11 => Some(Codec::L16 { rate: 44_100 }),
                96..=127 => Some(match dynamic {
                    DynamicCodec::L16 => Codec::L16 { rate: *l16_rate },
                    DynamicCodec::Opus => Codec::Opus,
                }),
                _ => None,
            },
            Payloads::Sdp(formats) => formats.iter().find(|(p, _)| *p == pt).map(|(_, c)| *c),
        }
    }
}

/// The decoder of one codec.
enum Decoder {
    Pcmu,
    Pcma,
    L16,
    Opus(Box<audiopus::coder::Decoder>),
}

impl Decoder {
    fn new(c: Codec) -> Option<Decoder> {
        Some(match c {
            Codec::Pcmu => Decoder::Pcmu,
            Codec::Pcma => Decoder::Pcma,
            Codec::L16 { .. } => Decoder::L16,
            Codec::Opus => Decoder::Opus(Box::new(
                audiopus::coder::Decoder::new(audiopus::SampleRate::Hz48000, audiopus::Channels::Mono).ok()?,
            )),
        })
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        match self {
            Decoder::Pcmu => out.extend(payload.iter().map(|&b| g711::ulaw_to_linear(b))),
            Decoder::Pcma => out.extend(payload.iter().map(|&b| g711::alaw_to_linear(b))),
            Decoder::L16 => out.extend(payload.chunks_exact(2).map(|b| i16::from_be_bytes([b[0], b[1]]))),
            Decoder::Opus(d) => {
                let mut buf = [0i16; 5760];
                if let Ok(n) = d.decode(Some(payload), &mut buf[..], false) {
                    out.extend_from_slice(&buf[..n]);
                }
            }
        }
    }
}

/// RMS level of `x` in dBFS (−∞ for silence is shown as −120).
pub fn level_dbfs(x: &[i16]) -> f64 {
    if x.is_empty() {
        return -120.0;
    }
    let ms = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64;
    (10.0 * (ms / (32768.0 * 32768.0)).log10()).max(-120.0)
}

/// A UDP socket on `port` for `listen`: for a multicast group, bound to the group's port with
/// SO_REUSEADDR (other receivers on this host, rtpmic listening for the group's RTCP among
/// them, may bind it too) and joined to the group.
fn bind(listen: SocketAddr, port: u16) -> io::Result<UdpSocket> {
    use socket2::{Domain, Socket, Type};
    match listen.ip() {
        IpAddr::V4(g) if g.is_multicast() => {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
            s.set_reuse_address(true)?;
            s.bind(&SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port).into())?;
            s.join_multicast_v4(&g, &Ipv4Addr::UNSPECIFIED)?;
            Ok(s.into())
        }
        IpAddr::V6(g) if g.is_multicast() => {
            let s = Socket::new(Domain::IPV6, Type::DGRAM, None)?;
            s.set_reuse_address(true)?;
            s.set_only_v6(true)?;
            s.bind(&SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port).into())?;
            s.join_multicast_v6(&g, 0)?;
            Ok(s.into())
        }
        ip => UdpSocket::bind((ip, port)),
    }
}

/// One packet a [`Transport`] received.
pub struct Packet<'a> {
    pub from: SocketAddr,
    pub rtcp: bool,
    pub data: &'a [u8],
}

/// Where packets come from and receiver reports go: UDP sockets we listen on, or an RTSP
/// session (interleaved or UDP). The probe's loop is the same for all.
pub trait Transport {
    /// The next packet, waiting at most `wait` for one.
    fn recv(&mut self, wait: Duration) -> Result<Option<Packet<'_>>, ProbeError>;
    /// Sends a receiver report; `to` is where the receive session would send it over UDP.
    /// `true` when it left.
    fn send_rtcp(&mut self, report: &[u8], to: SocketAddr) -> bool;
    /// Periodic work (the RTSP keepalive).
    fn service(&mut self, _now: Instant) -> Result<(), ProbeError> {
        Ok(())
    }
    /// Where the probe waits for RTP, for the lines: `on 0.0.0.0:5004`, `from rtsp://…`.
    fn source(&self) -> &str;
}

/// Waits until one of `fds` is readable, at most `wait`; which ones are.
pub(crate) fn wait_readable(fds: &[std::os::fd::BorrowedFd<'_>], wait: Duration) -> io::Result<Vec<bool>> {
    use nix::poll::{PollFd, PollFlags};
    let mut polls: Vec<PollFd> = fds.iter().map(|fd| PollFd::new(*fd, PollFlags::POLLIN)).collect();
    match nix::poll::poll(&mut polls, rtsp::conn::poll_ms(wait)) {
        Ok(_) => Ok(polls
            .iter()
            .map(|p| {
                p.revents()
                    .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLERR | PollFlags::POLLHUP))
            })
            .collect()),
        Err(nix::errno::Errno::EINTR) => Ok(vec![false; fds.len()]),
        Err(e) => Err(e.into()),
    }
}

/// Listening on UDP: RTP on the port, RTCP on port + 1.
struct Listener {
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
    buf: Vec<u8>,
    source: String,
}

impl Listener {
    fn bind(listen: SocketAddr) -> Result<Listener, ProbeError> {
        let rtp = bind(listen, listen.port()).map_err(|e| ProbeError::Io("bind", e))?;
        rtp.set_nonblocking(true).map_err(|e| ProbeError::Io("socket", e))?;
        // RTCP on port + 1 (RFC 3550 §11); without it the probe still measures, it just
        // cannot hear sender reports.
        let rtcp = bind(listen, listen.port().wrapping_add(1)).ok();
        if let Some(r) = &rtcp {
            let _ = r.set_nonblocking(true);
        }
        Ok(Listener {
            rtp,
            rtcp,
            buf: vec![0u8; 65_536],
            source: format!("on {listen}"),
        })
    }
}

impl Transport for Listener {
    fn recv(&mut self, wait: Duration) -> Result<Option<Packet<'_>>, ProbeError> {
        for waited in [false, true] {
            // RTCP first: it is rare, and RTP must not starve it.
            if let Some(r) = &self.rtcp {
                if let Ok((n, from)) = r.recv_from(&mut self.buf) {
                    return Ok(Some(Packet {
                        from,
                        rtcp: true,
                        data: &self.buf[..n],
                    }));
                }
            }
            if let Ok((n, from)) = self.rtp.recv_from(&mut self.buf) {
                return Ok(Some(Packet {
                    from,
                    rtcp: false,
                    data: &self.buf[..n],
                }));
            }
            if !waited {
                let mut fds = vec![self.rtp.as_fd()];
                fds.extend(self.rtcp.as_ref().map(|r| r.as_fd()));
                wait_readable(&fds, wait).map_err(|e| ProbeError::Io("poll", e))?;
            }
        }
        Ok(None)
    }

    fn send_rtcp(&mut self, report: &[u8], to: SocketAddr) -> bool {
        self.rtcp.as_ref().is_some_and(|r| r.send_to(report, to).is_ok())
    }

    fn source(&self) -> &str {
        &self.source
    }
}

/// Runs the probe until `stop`, `--seconds`, or the timeout with nothing received; prints a
/// line a second to `out`, and for RTSP what was negotiated to `status`.
pub fn run(
    o: &ProbeOptions,
    stop: &AtomicBool,
    out: &mut impl Write,
    status: &mut impl Write,
) -> Result<ProbeSummary, ProbeError> {
    match &o.target {
        Target::Listen(listen) => {
            let payloads = Payloads::Options {
                dynamic: o.dynamic,
                l16_rate: o.l16_rate,
            };
            receive(&mut Listener::bind(*listen)?, &payloads, o, stop, out)
        }
        Target::Rtsp(target) => {
            let mut t = rtsp::RtspTransport::open(target, o.udp, o.timeout, stop)?;
            let _ = writeln!(status, "probe: {}", t.status());
            let payloads = Payloads::Sdp(t.formats.clone());
            let result = receive(&mut t, &payloads, o, stop, out);
            t.teardown();
            result
        }
    }
}

/// What the loop keeps between packets: the receive session, the decoder, the audio.
struct Receiving<'a> {
    o: &'a ProbeOptions,
    payloads: &'a Payloads,
    session: RecvSession,
    decoder: Option<Decoder>,
    /// A probation packet's payload, held until its source is valid (A.1, MIN_SEQUENTIAL =
    /// 2: a probation packet always starts its run, so it is the only one held).
    held: Vec<u8>,
    summary: ProbeSummary,
    /// Everything decoded (for --wav), and this second's.
    audio: Vec<i16>,
    second: Vec<i16>,
    wav_rate: u32,
}

const _: () = assert!(source::MIN_SEQUENTIAL == 2);

impl Receiving<'_> {
    /// The receiving session ([`RecvSession`]) decides what counts; this decodes what it
    /// takes.
    fn on_rtp(&mut self, now_ns: u64, from: SocketAddr, data: &[u8]) {
        let Ok(p) = RtpPacket::parse(data) else {
            self.summary.invalid += 1;
            return;
        };
        let codec = self.payloads.codec(p.payload_type());
        let rate = codec.map(Codec::clock_rate);
        let verdict = match self
            .session
            .handle_rtp(now_ns, from, p.ssrc(), p.sequence_number(), p.timestamp(), rate)
        {
            Received::Other => {
                self.summary.other_sources += 1;
                return;
            }
            Received::NewSource(v) => {
                if let Some(c) = codec {
                    self.wav_rate = c.clock_rate();
                    self.decoder = Decoder::new(c);
                }
                self.held.clear();
                self.summary.ssrc = Some(p.ssrc());
                v
            }
            Received::Followed(v) => v,
        };
        match verdict {
            SeqVerdict::Rejected => {}
            SeqVerdict::Probation => {
                self.held.clear();
                self.held.extend_from_slice(p.payload());
            }
            _ => {
                if let Some(d) = self.decoder.as_mut() {
                    let before = self.second.len();
                    if !self.held.is_empty() {
                        d.decode(&self.held, &mut self.second);
                        self.held.clear();
                    }
                    d.decode(p.payload(), &mut self.second);
                    if self.o.wav.is_some() {
                        self.audio.extend_from_slice(&self.second[before..]);
                    }
                }
            }
        }
    }
}

/// The probe's loop over any transport.
fn receive(
    t: &mut impl Transport,
    payloads: &Payloads,
    o: &ProbeOptions,
    stop: &AtomicBool,
    out: &mut impl Write,
) -> Result<ProbeSummary, ProbeError> {
    let start = Instant::now();
    let now_ns = || start.elapsed().as_nanos() as u64;
    let mut r = Receiving {
        o,
        payloads,
        session: RecvSession::new(),
        decoder: None,
        held: Vec::new(),
        summary: ProbeSummary::default(),
        audio: Vec::new(),
        second: Vec::new(),
        wav_rate: 8000,
    };
    let mut next_line = Duration::from_secs(1);
    let mut lines_received_before = 0u64;
    while !stop.load(Relaxed) {
        let elapsed = start.elapsed();
        if o.seconds.is_some_and(|s| elapsed >= Duration::from_secs(s)) {
            break;
        }
        if r.session.followed().is_none() && elapsed >= o.timeout {
            return Err(ProbeError::NothingArrived(t.source().to_string(), o.timeout.as_secs()));
        }
        if let Some(p) = t.recv(Duration::from_millis(50))? {
            if p.rtcp {
                r.session.handle_rtcp(now_ns(), p.from, p.data);
            } else {
                r.on_rtp(now_ns(), p.from, p.data);
            }
        }
        let elapsed = start.elapsed();
        if elapsed >= next_line {
            next_line += Duration::from_secs(1);
            if let Some(f) = r.session.followed() {
                let s = &f.stats;
                let _ = writeln!(
                    out,
                    "t={}s ssrc={:#010x} packets={} (+{}) lost={} ({:.1}%) reordered={} duplicates={} jitter={:.2}ms level={:.1}dBFS",
                    elapsed.as_secs(),
                    s.ssrc,
                    s.received,
                    s.received.saturating_sub(lines_received_before),
                    s.lost(),
                    100.0 * s.lost() as f64 / s.expected().max(1) as f64,
                    s.reordered,
                    s.duplicates,
                    f64::from(s.jitter()) * 1000.0 / f64::from(f.clock_rate),
                    level_dbfs(&r.second),
                );
                lines_received_before = s.received;
            } else {
                let _ = writeln!(out, "t={}s waiting for RTP {}", elapsed.as_secs(), t.source());
            }
            r.second.clear();
        }
        if let Some((report, to)) = r.session.poll_report(now_ns()) {
            if t.send_rtcp(&report, to) {
                r.summary.rr_sent += 1;
            }
        }
        t.service(Instant::now())?;
    }
    let mut summary = r.summary;
    if let Some(f) = r.session.followed() {
        let s = &f.stats;
        summary.received = s.received;
        summary.lost = s.lost();
        summary.reordered = s.reordered;
        summary.duplicates = s.duplicates;
        summary.jitter_ms = f64::from(s.jitter()) * 1000.0 / f64::from(f.clock_rate);
    }
    if let Some(path) = &o.wav {
        wav::write(path, r.wav_rate, &r.audio).map_err(|e| ProbeError::Io("--wav", e))?;
    }
    if summary.received == 0 {
        return Err(ProbeError::NothingArrived(t.source().to_string(), o.timeout.as_secs()));
    }
    Ok(summary)
}
