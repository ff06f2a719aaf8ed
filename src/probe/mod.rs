//! `rtpmic probe ADDR:PORT`: an installer's receiver. Listens (joining the group for
//! multicast), prints once a second what arrives — packets, loss, reordering, jitter, audio
//! level of the decoded stream — answers the sender with RTCP receiver reports, can write
//! the audio to a WAV file, and fails when nothing arrives in time. Also our own receiver in
//! tests. Not a real-time path: it allocates freely.

pub mod stats;
pub mod wav;

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use rtcp_types::{Compound, Packet, ReceiverReport, ReportBlock, RtcpPacketWriterExt};
use rtp_types::RtpPacket;

use crate::codec::g711;
use stats::{SeqVerdict, SourceStats};

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

/// The source the probe follows: its statistics, decoder, clock rate, where its RTP comes
/// from, and the packets held while it is on probation (RFC 3550 A.1).
struct Source {
    stats: SourceStats,
    decoder: Decoder,
    rate: u32,
    from: SocketAddr,
    held: Vec<Vec<u8>>,
    /// Where this SSRC's sender reports come from: the sender's RTCP address, where our
    /// receiver reports go (rtpmic sends RTP and RTCP from different sockets).
    rtcp_from: Option<SocketAddr>,
}

impl Source {
    /// Where receiver reports go: where the sender's reports come from; until one was heard,
    /// the RTP source port + 1 (RFC 3550 §11).
    fn report_to(&self) -> SocketAddr {
        self.rtcp_from
            .unwrap_or_else(|| SocketAddr::new(self.from.ip(), self.from.port().wrapping_add(1)))
    }
}

/// Runs the probe until `stop`, `--seconds`, or the timeout with nothing received; prints a
/// line a second to `out`.
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
    let mut src: Option<Source> = None;
    let mut summary = ProbeSummary::default();
    let mut audio: Vec<i16> = Vec::new();
    let mut second: Vec<i16> = Vec::new();
    let mut wav_rate = 8000;
    let (mut next_line, mut next_rr) = (Duration::from_secs(1), Duration::from_secs(2));
    let mut last_sr: Option<(u32, Instant)> = None;
    let mut buf = [0u8; 2048];
    let mut lines_received_before = 0u64;
    while !stop.load(Relaxed) {
        let elapsed = start.elapsed();
        if o.seconds.is_some_and(|s| elapsed >= Duration::from_secs(s)) {
            break;
        }
        if src.is_none() && elapsed >= o.timeout {
            return Err(ProbeError::NothingArrived(o.listen, o.timeout.as_secs()));
        }
        if let Ok((n, from)) = rtp.recv_from(&mut buf) {
            match RtpPacket::parse(&buf[..n]) {
                Err(_) => summary.invalid += 1,
                Ok(p) => {
                    // Follow the first source; while it is still on probation, a packet of
                    // another SSRC replaces it (a stray packet must not capture the probe).
                    let follow = src
                        .as_ref()
                        .is_none_or(|s| s.stats.ssrc != p.ssrc() && !s.stats.is_valid());
                    if follow {
                        if let Some((decoder, rate)) = Decoder::for_pt(p.payload_type(), o) {
                            wav_rate = if matches!(decoder, Decoder::Opus(_)) {
                                48_000
                            } else {
                                rate
                            };
                            src = Some(Source {
                                stats: SourceStats::new(p.ssrc()),
                                decoder,
                                rate,
                                from,
                                held: Vec::new(),
                                rtcp_from: None,
                            });
                            summary.ssrc = Some(p.ssrc());
                        }
                    }
                    match &mut src {
                        Some(s) if s.stats.ssrc == p.ssrc() => {
                            let ticks = (start.elapsed().as_nanos() * u128::from(s.rate) / 1_000_000_000) as i64;
                            let verdict = s.stats.on_packet(p.sequence_number(), p.timestamp(), ticks);
                            match verdict {
                                SeqVerdict::Rejected => {}
                                SeqVerdict::Probation => {
                                    // Held until the source is valid. With MIN_SEQUENTIAL = 2
                                    // a probation packet always starts its run: hold just it.
                                    const _: () = assert!(stats::MIN_SEQUENTIAL == 2);
                                    s.held.clear();
                                    s.held.push(p.payload().to_vec());
                                    s.from = from;
                                }
                                _ => {
                                    let before = second.len();
                                    for held in std::mem::take(&mut s.held) {
                                        s.decoder.decode(&held, &mut second);
                                    }
                                    s.decoder.decode(p.payload(), &mut second);
                                    if o.wav.is_some() {
                                        audio.extend_from_slice(&second[before..]);
                                    }
                                    s.from = from;
                                }
                            }
                        }
                        _ => summary.other_sources += 1,
                    }
                }
            }
        }
        if let Some(r) = &rtcp {
            while let Ok((n, from)) = r.recv_from(&mut buf) {
                let Some((ssrc, ntp)) = sender_report(&buf[..n]) else {
                    continue;
                };
                if let Some(s) = src.as_mut().filter(|s| s.stats.ssrc == ssrc) {
                    last_sr = Some(((ntp >> 16) as u32, Instant::now()));
                    s.rtcp_from = Some(from);
                }
            }
        }
        let elapsed = start.elapsed();
        if elapsed >= next_line {
            next_line += Duration::from_secs(1);
            if let Some(Source { stats: s, rate, .. }) = &src {
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
                    f64::from(s.jitter()) * 1000.0 / f64::from(*rate),
                    level_dbfs(&second),
                );
                lines_received_before = s.received;
            } else {
                let _ = writeln!(out, "t={}s waiting for RTP on {}", elapsed.as_secs(), o.listen);
            }
            second.clear();
        }
        if elapsed >= next_rr {
            next_rr += Duration::from_secs(5);
            if let (Some(r), Some(s)) = (&rtcp, src.as_mut().filter(|s| s.stats.is_valid())) {
                let report = receiver_report(&mut s.stats, last_sr);
                if r.send_to(&report, s.report_to()).is_ok() {
                    summary.rr_sent += 1;
                }
            }
        }
    }
    if let Some(Source { stats: s, rate, .. }) = &src {
        summary.received = s.received;
        summary.lost = s.lost();
        summary.reordered = s.reordered;
        summary.duplicates = s.duplicates;
        summary.jitter_ms = f64::from(s.jitter()) * 1000.0 / f64::from(*rate);
    }
    if let Some(path) = &o.wav {
        wav::write(path, wav_rate, &audio).map_err(|e| ProbeError::Io("--wav", e))?;
    }
    if summary.received == 0 {
        return Err(ProbeError::NothingArrived(o.listen, o.timeout.as_secs()));
    }
    Ok(summary)
}

/// The sender SSRC and NTP timestamp of the SR a compound RTCP packet starts with, if any.
fn sender_report(buf: &[u8]) -> Option<(u32, u64)> {
    let mut c = Compound::parse(buf).ok()?;
    match c.next()?.ok()? {
        Packet::Sr(sr) => Some((sr.ssrc(), sr.ntp_timestamp())),
        _ => None,
    }
}

/// A receiver report about `s` (RFC 3550 §6.4.2), with LSR/DLSR from the last SR heard.
fn receiver_report(s: &mut SourceStats, last_sr: Option<(u32, Instant)>) -> Vec<u8> {
    let (lsr, dlsr) = last_sr.map_or((0, 0), |(lsr, at)| (lsr, (at.elapsed().as_secs_f64() * 65536.0) as u32));
    let rb = ReportBlock::builder(s.ssrc)
        .fraction_lost(s.fraction_lost_since_last())
        // §6.4.1: a signed 24-bit count, clamped to its range.
        .cumulative_lost((s.cumulative_lost().clamp(-0x80_0000, 0x7f_ffff) as u32) & 0x00ff_ffff)
        .extended_sequence_number(s.extended_max_seq())
        .interarrival_jitter(s.jitter())
        .last_sender_report_timestamp(lsr)
        .delay_since_last_sender_report_timestamp(dlsr);
    // Our own SSRC as a receiver: derived from the source's, so it is stable per run.
    let me = s.ssrc ^ 0x5a5a_5a5a;
    let rr = ReceiverReport::builder(me).add_report_block(rb);
    let mut out = vec![0u8; 64];
    let n = rr.write_into(&mut out).unwrap_or(0);
    out.truncate(n);
    out
}
