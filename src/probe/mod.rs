//! `rtpmic probe ADDR:PORT`: an installer's receiver. Listens (joining the group for
//! multicast), prints once a second what arrives — packets, loss, reordering, jitter, audio
//! level of the decoded stream — answers the sender with RTCP receiver reports, can write
//! the audio to a WAV file, and fails when nothing arrives in time. Also our own receiver in
//! tests. Not a real-time path: it allocates freely.

pub mod wav;

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
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

/// Command-line options of `rtpmic probe`.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    pub listen: SocketAddr,
    /// Give up (exit status 1) when no RTP arrived this long after start.
    pub timeout: Duration,
    /// Stop after this long (else at SIGINT/SIGTERM).
    pub seconds: Option<u64>,
    pub wav: Option<PathBuf>,
    /// What a dynamic payload type (96..127) carries, and L16's rate.
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
    #[error("no RTP arrived at {0} within {1} s")]
    NothingArrived(SocketAddr, u64),
}

/// The decoder and clock for one payload type.
enum Decoder {
    Pcmu,
    Pcma,
    L16,
    Opus(Box<audiopus::coder::Decoder>),
}

impl Decoder {
    fn for_pt(pt: u8, o: &ProbeOptions) -> Option<(Decoder, u32)> {
        Some(match pt {
            0 => (Decoder::Pcmu, 8000),
            8 => (Decoder::Pcma, 8000),
            11 => (Decoder::L16, 44_100),
            96..=127 => match o.dynamic {
                DynamicCodec::L16 => (Decoder::L16, o.l16_rate),
                DynamicCodec::Opus => {
                    let d =
                        audiopus::coder::Decoder::new(audiopus::SampleRate::Hz48000, audiopus::Channels::Mono).ok()?;
                    (Decoder::Opus(Box::new(d)), 48_000)
                }
            },
            _ => return None,
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

/// Runs the probe until `stop`, `--seconds`, or the timeout with nothing received; prints a
/// line a second to `out`. The receiving session ([`RecvSession`]) decides what counts; this
/// is its shell: sockets, the decoder, the lines, the WAV.
pub fn run(o: &ProbeOptions, stop: &AtomicBool, out: &mut impl Write) -> Result<ProbeSummary, ProbeError> {
    let rtp = bind(o.listen, o.listen.port()).map_err(|e| ProbeError::Io("bind", e))?;
    rtp.set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| ProbeError::Io("socket", e))?;
    // RTCP on port + 1 (RFC 3550 §11); without it the probe still measures, it just cannot
    // hear sender reports.
    let rtcp = bind(o.listen, o.listen.port().wrapping_add(1)).ok();
    if let Some(r) = &rtcp {
        let _ = r.set_nonblocking(true);
    }
    let start = Instant::now();
    let now_ns = || start.elapsed().as_nanos() as u64;
    let mut session = RecvSession::new();
    let mut decoder: Option<Decoder> = None;
    // A probation packet is held until its source is valid (A.1, MIN_SEQUENTIAL = 2: a
    // probation packet always starts its run, so it is the only one held).
    const _: () = assert!(source::MIN_SEQUENTIAL == 2);
    let mut held: Vec<u8> = Vec::new();
    let mut summary = ProbeSummary::default();
    let mut audio: Vec<i16> = Vec::new();
    let mut second: Vec<i16> = Vec::new();
    let mut wav_rate = 8000;
    let mut next_line = Duration::from_secs(1);
    let mut buf = [0u8; 2048];
    let mut lines_received_before = 0u64;
    while !stop.load(Relaxed) {
        let elapsed = start.elapsed();
        if o.seconds.is_some_and(|s| elapsed >= Duration::from_secs(s)) {
            break;
        }
        if session.followed().is_none() && elapsed >= o.timeout {
            return Err(ProbeError::NothingArrived(o.listen, o.timeout.as_secs()));
        }
        if let Ok((n, from)) = rtp.recv_from(&mut buf) {
            match RtpPacket::parse(&buf[..n]) {
                Err(_) => summary.invalid += 1,
                Ok(p) => {
                    let playable = Decoder::for_pt(p.payload_type(), o);
                    let rate = playable.as_ref().map(|(_, r)| *r);
                    let verdict =
                        match session.handle_rtp(now_ns(), from, p.ssrc(), p.sequence_number(), p.timestamp(), rate) {
                            Received::Other => {
                                summary.other_sources += 1;
                                continue;
                            }
                            Received::NewSource(v) => {
                                if let Some((d, r)) = playable {
                                    wav_rate = if matches!(d, Decoder::Opus(_)) { 48_000 } else { r };
                                    decoder = Some(d);
                                }
                                held.clear();
                                summary.ssrc = Some(p.ssrc());
                                v
                            }
                            Received::Followed(v) => v,
                        };
                    match verdict {
                        SeqVerdict::Rejected => {}
                        SeqVerdict::Probation => {
                            held.clear();
                            held.extend_from_slice(p.payload());
                        }
                        _ => {
                            if let Some(d) = decoder.as_mut() {
                                let before = second.len();
                                if !held.is_empty() {
                                    d.decode(&held, &mut second);
                                    held.clear();
                                }
                                d.decode(p.payload(), &mut second);
                                if o.wav.is_some() {
                                    audio.extend_from_slice(&second[before..]);
                                }
                            }
                        }
                    }
                }
            }
        }
        if let Some(r) = &rtcp {
            while let Ok((n, from)) = r.recv_from(&mut buf) {
                session.handle_rtcp(now_ns(), from, &buf[..n]);
            }
        }
        let elapsed = start.elapsed();
        if elapsed >= next_line {
            next_line += Duration::from_secs(1);
            if let Some(f) = session.followed() {
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
                    level_dbfs(&second),
                );
                lines_received_before = s.received;
            } else {
                let _ = writeln!(out, "t={}s waiting for RTP on {}", elapsed.as_secs(), o.listen);
            }
            second.clear();
        }
        if let (Some(r), Some((report, to))) = (&rtcp, session.poll_report(now_ns())) {
            if r.send_to(&report, to).is_ok() {
                summary.rr_sent += 1;
            }
        }
    }
    if let Some(f) = session.followed() {
        let s = &f.stats;
        summary.received = s.received;
        summary.lost = s.lost();
        summary.reordered = s.reordered;
        summary.duplicates = s.duplicates;
        summary.jitter_ms = f64::from(s.jitter()) * 1000.0 / f64::from(f.clock_rate);
    }
    if let Some(path) = &o.wav {
        wav::write(path, wav_rate, &audio).map_err(|e| ProbeError::Io("--wav", e))?;
    }
    if summary.received == 0 {
        return Err(ProbeError::NothingArrived(o.listen, o.timeout.as_secs()));
    }
    Ok(summary)
}
