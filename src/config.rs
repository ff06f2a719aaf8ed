//! Configuration: `RTPMIC_*` keys → a typed, validated [`Config`].
//!
//! Keys come from the process environment (what systemd's `EnvironmentFile=` gives) or, with
//! `--env-file PATH`, from that file alone (`KEY=value` lines, `#` comments; what is read and
//! the exact syntax: [`env_file`]). The two are never mixed, so what
//! `check-config --env-file F` prints is exactly what `run --env-file F` uses.
//!
//! Rules, decided here and documented in `systemd/rtpmic.env`:
//! * An empty value (`RTPMIC_SSRC=`) means "use the default".
//! * Unknown `RTPMIC_*` keys are errors: a typo must not pass silently.
//! * Every problem is reported, one line each, naming the key, the bad value and what is
//!   allowed; nothing is opened or started while any problem remains.
//! * Defaults that depend on the codec (RATE, FRAME_MS, PAYLOAD_TYPE) are resolved after CODEC.

pub mod env_file;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

/// Largest RTP payload we produce. 1500-byte Ethernet MTU − 40 (IPv6) − 8 (UDP) − 12 (RTP),
/// rounded down: no datagram of ours is ever fragmented.
pub const MAX_PAYLOAD: usize = 1440;
/// Largest RTP packet we produce (fixed header without CSRCs + payload).
pub const MAX_PACKET: usize = 12 + MAX_PAYLOAD;
/// Largest datagram: a packet plus the longest SRTP authentication tag (RFC 3711 §4.2).
pub const MAX_DATAGRAM: usize = MAX_PACKET + 10;
/// Highest `RTPMIC_MAX_DEST` accepted.
pub const MAX_DEST_LIMIT: usize = 1024;
/// Most input channels a device may be opened with.
pub const MAX_CHANNELS: u32 = 8;
/// Most characters of a value (or key) an error line quotes; a longer one is cut and ends in
/// `…`. A line stays readable in a terminal and a journal, however long the value.
pub const MAX_SHOWN: usize = 80;

/// One documented key: its name, default and what it accepts. The single source for
/// `check-config`, `--help` and the env file template test.
pub struct KeySpec {
    pub name: &'static str,
    pub default: &'static str,
    pub allowed: &'static str,
}

/// Every key rtpmic reads.
pub const KEYS: &[KeySpec] = &[
    KeySpec {
        name: "RTPMIC_DEVICE",
        default: "default",
        allowed: "an ALSA PCM name, e.g. default, plughw:1,0, sim",
    },
    KeySpec {
        name: "RTPMIC_RATE",
        default: "48000 (opus, l16), 8000 (pcmu, pcma)",
        allowed: "opus: 8000 12000 16000 24000 48000; pcmu/pcma: 8000; l16: 8000 16000 24000 32000 44100 48000",
    },
    KeySpec {
        name: "RTPMIC_CHANNELS",
        default: "1",
        allowed: "1..8 (channels the device is opened with)",
    },
    KeySpec {
        name: "RTPMIC_CHANNEL",
        default: "0",
        allowed: "0..CHANNELS-1 (the input channel sent) or mix (average of all)",
    },
    KeySpec {
        name: "RTPMIC_SAMPLE_FORMAT",
        default: "auto",
        allowed: "auto S16_LE S32_LE",
    },
    KeySpec {
        name: "RTPMIC_CODEC",
        default: "opus",
        allowed: "opus pcmu pcma l16",
    },
    KeySpec {
        name: "RTPMIC_FRAME_MS",
        default: "20 (opus, pcmu, pcma), 10 (l16)",
        allowed: "opus: 2.5 5 10 20 40 60; pcmu/pcma/l16: 10 20 30 40 (l16 payload at most 1440 bytes)",
    },
    KeySpec {
        name: "RTPMIC_BITRATE",
        default: "32000",
        allowed: "6000..510000 bits per second (opus only)",
    },
    KeySpec {
        name: "RTPMIC_OPUS_COMPLEXITY",
        default: "10",
        allowed: "0..10",
    },
    KeySpec {
        name: "RTPMIC_OPUS_APPLICATION",
        default: "voip",
        allowed: "voip audio lowdelay",
    },
    KeySpec {
        name: "RTPMIC_OPUS_FEC",
        default: "off",
        allowed: "on off (Opus in-band FEC, SILK and hybrid modes; frames of 10 ms or more)",
    },
    KeySpec {
        name: "RTPMIC_OPUS_LOSS_PERCENT",
        default: "auto",
        allowed: "auto (follow receivers' RTCP loss within RTPMIC_OPUS_LOSS_MIN/MAX_PERCENT) or 0..100",
    },
    KeySpec {
        name: "RTPMIC_OPUS_LOSS_MIN_PERCENT",
        default: "5",
        allowed: "0..100",
    },
    KeySpec {
        name: "RTPMIC_OPUS_LOSS_MAX_PERCENT",
        default: "30",
        allowed: "0..100, at least RTPMIC_OPUS_LOSS_MIN_PERCENT",
    },
    KeySpec {
        name: "RTPMIC_OPUS_DTX",
        default: "off",
        allowed: "on off (no packets during silence, RFC 7587 §3.3)",
    },
    KeySpec {
        name: "RTPMIC_REDUNDANCY",
        default: "0",
        allowed: "0..3 previous frames repeated in each packet (RFC 2198 RED; for 2.5-5 ms frames)",
    },
    KeySpec {
        name: "RTPMIC_RED_PAYLOAD_TYPE",
        default: "121",
        allowed: "96..127, not RTPMIC_PAYLOAD_TYPE",
    },
    KeySpec {
        name: "RTPMIC_PAYLOAD_TYPE",
        default: "96 (opus), 0 (pcmu), 8 (pcma), 97 (l16)",
        allowed: "96..127; also 0 for pcmu, 8 for pcma, 11 for l16 at 44100 Hz",
    },
    KeySpec {
        name: "RTPMIC_DEST",
        default: "(none, required)",
        allowed: "comma list of host:port, IPv6 as [addr]:port, at most RTPMIC_MAX_DEST",
    },
    KeySpec {
        name: "RTPMIC_SDP_FILE",
        default: "(none)",
        allowed: "an absolute path; the SDP for the first RTPMIC_DEST entry is written there at start",
    },
    KeySpec {
        name: "RTPMIC_SAP",
        default: "off",
        allowed: "on off (announce the SDP by SAP, RFC 2974, on the first destination's scope)",
    },
    KeySpec {
        name: "RTPMIC_SAP_INTERVAL_S",
        default: "30",
        allowed: "5..3600 seconds between SAP announcements",
    },
    KeySpec {
        name: "RTPMIC_RTCP",
        default: "on",
        allowed: "on off (RTCP sender reports, RFC 3550)",
    },
    KeySpec {
        name: "RTPMIC_RR_LOSS_WARN_PERCENT",
        default: "5",
        allowed: "0..100 (warn when a receiver reports more loss; at most once a minute each)",
    },
    KeySpec {
        name: "RTPMIC_RR_JITTER_WARN_MS",
        default: "30",
        allowed: "0..10000 (warn when a receiver reports more jitter; at most once a minute each)",
    },
    KeySpec {
        name: "RTPMIC_RTCP_MUX",
        default: "off",
        allowed: "on off (on: RTCP on the RTP port, RFC 5761; off: port + 1)",
    },
    KeySpec {
        name: "RTPMIC_CNAME",
        default: "rtpmic@HOSTNAME",
        allowed: "1..255 bytes of text (RTCP SDES CNAME)",
    },
    KeySpec {
        name: "RTPMIC_MAX_DEST",
        default: "64",
        allowed: "1..1024 (destinations preallocated)",
    },
    KeySpec {
        name: "RTPMIC_RESOLVE_INTERVAL_S",
        default: "300",
        allowed: "0..86400 seconds between host name lookups (0 = only at start and after failures)",
    },
    KeySpec {
        name: "RTPMIC_SENDER",
        default: "auto",
        allowed: "auto io_uring epoll",
    },
    KeySpec {
        name: "RTPMIC_MULTICAST_TTL",
        default: "16",
        allowed: "0..255",
    },
    KeySpec {
        name: "RTPMIC_MULTICAST_IF",
        default: "(routing table)",
        allowed: "an interface name (eth0) or a local address",
    },
    KeySpec {
        name: "RTPMIC_MULTICAST_LOOP",
        default: "off",
        allowed: "on off",
    },
    KeySpec {
        name: "RTPMIC_DSCP",
        default: "46",
        allowed: "0..63 (46 = EF, RFC 4594 telephony)",
    },
    KeySpec {
        name: "RTPMIC_SO_PRIORITY",
        default: "6",
        allowed: "0..6 (Linux SO_PRIORITY; 6 = Wi-Fi voice queue)",
    },
    KeySpec {
        name: "RTPMIC_BIND",
        default: "(any)",
        allowed: "a local address, address:port or [IPv6]:port to send from",
    },
    KeySpec {
        name: "RTPMIC_SRTP",
        default: "off",
        allowed: "off AES_CM_128_HMAC_SHA1_80 AES_CM_128_HMAC_SHA1_32 (RFC 3711 SRTP and SRTCP)",
    },
    KeySpec {
        name: "RTPMIC_SRTP_KEY",
        default: "(random at each start, published only in RTPMIC_SDP_FILE)",
        allowed: "base64 of 30 bytes (16-byte master key + 14-byte salt, RFC 4568 inline: key)",
    },
    KeySpec {
        name: "RTPMIC_SSRC",
        default: "(random)",
        allowed: "0..4294967295, decimal or 0x hex",
    },
    KeySpec {
        name: "RTPMIC_PACING",
        default: "off",
        allowed: "on off (send each packet a fixed, self-tuned time after its capture: even intervals, a few hundred µs more latency)",
    },
    KeySpec {
        name: "RTPMIC_THREADS",
        default: "auto",
        allowed: "auto 1 2 3 (real-time threads: 1 = all in one, 2 = capture | encode+send, 3 = capture | encode | send; auto = 1, or 3 above 8 destinations)",
    },
    KeySpec {
        name: "RTPMIC_RT_PRIORITY",
        default: "50",
        allowed: "0..99 (SCHED_RR priority of the real-time threads; 0 = normal scheduling, memory not locked)",
    },
    KeySpec {
        name: "RTPMIC_STATS_INTERVAL_S",
        default: "60",
        allowed: "0..86400 seconds (0 = only at exit)",
    },
    KeySpec {
        name: "RTPMIC_LOG_LEVEL",
        default: "info",
        allowed: "error warn info debug trace",
    },
    KeySpec {
        name: "RTPMIC_LOG_TARGET",
        default: "auto",
        allowed: "auto (journald when systemd connected stderr to the journal) journald stderr",
    },
];

/// The codec sent on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// RFC 7587, dynamic payload type, 48 kHz RTP clock.
    Opus,
    /// G.711 µ-law, RFC 3551 §4.5.14, static PT 0, 8 kHz.
    Pcmu,
    /// G.711 A-law, RFC 3551 §4.5.14, static PT 8, 8 kHz.
    Pcma,
    /// 16-bit linear PCM, network byte order, RFC 3551 §4.5.11.
    L16,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::Pcmu => "pcmu",
            Codec::Pcma => "pcma",
            Codec::L16 => "l16",
        }
    }
}

/// Opus encoder application mode (`OPUS_APPLICATION_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpusApplication {
    Voip,
    Audio,
    LowDelay,
}

/// Sample format the ALSA device is opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleFormat {
    /// Try S16_LE, then S32_LE.
    Auto,
    S16Le,
    S32Le,
}

/// Which input channel becomes the mono signal we send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelSelect {
    Index(u32),
    Mix,
}

/// A host as written in `RTPMIC_DEST`: an address literal or a DNS name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

/// One receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub host: Host,
    pub port: u16,
}

impl Destination {
    /// A multicast group given as an address (a name is taken as unicast until resolved).
    pub fn is_multicast(&self) -> bool {
        matches!(self.host, Host::Ip(ip) if ip.is_multicast())
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]:{}", self.port),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}:{}", self.port),
            Host::Name(n) => write!(f, "{n}:{}", self.port),
        }
    }
}

/// How many real-time threads the stream runs in (`RTPMIC_THREADS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// Chosen from the codec and the number of destinations ([`Config::stream_threads`]).
    Auto,
    /// Capture, encode and send in one thread.
    One,
    /// Capture | encode + send.
    Two,
    /// Capture | encode | send.
    Three,
}

/// More destinations than this get a sender thread of their own under `RTPMIC_THREADS=auto`.
pub const FEW_DESTINATIONS: usize = 8;

/// Which sender backend puts datagrams on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenderKind {
    /// io_uring where the kernel offers it (probed at start), else epoll.
    Auto,
    IoUring,
    /// sendmmsg + epoll.
    Epoll,
}

/// The interface multicast leaves through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MulticastIf {
    Name(String),
    Addr(IpAddr),
}

/// The expected packet loss the Opus encoder plans FEC for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossPercent {
    /// Follow the worst receiver's reported loss, within the bounds.
    Auto {
        min: u8,
        max: u8,
    },
    Fixed(u8),
}

/// SRTP (RFC 3711) as configured.
#[derive(Clone, Debug)]
pub struct SrtpConfig {
    pub profile: crate::rtp::srtp::Profile,
    /// The master key: from `RTPMIC_SRTP_KEY`, or made at random when the config was read.
    pub key: crate::rtp::srtp::MasterKey,
    /// The key was made at random (no `RTPMIC_SRTP_KEY`).
    pub random_key: bool,
}

/// Two configurations with random keys are the same: each start makes its own.
impl PartialEq for SrtpConfig {
    fn eq(&self, other: &SrtpConfig) -> bool {
        self.profile == other.profile
            && self.random_key == other.random_key
            && (self.random_key || self.key == other.key)
    }
}

/// Log verbosity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// journald when `JOURNAL_STREAM` names our stderr (systemd.exec(5)), stderr otherwise.
    Auto,
    Journald,
    Stderr,
}

impl LogTarget {
    pub fn name(self) -> &'static str {
        match self {
            LogTarget::Auto => "auto",
            LogTarget::Journald => "journald",
            LogTarget::Stderr => "stderr",
        }
    }
}

/// The validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub device: String,
    pub rate: u32,
    pub channels: u32,
    pub channel: ChannelSelect,
    pub sample_format: SampleFormat,
    pub codec: Codec,
    /// Frame duration in microseconds (2.5 ms = 2500).
    pub frame_us: u32,
    pub bitrate: u32,
    pub opus_complexity: u8,
    pub opus_application: OpusApplication,
    pub opus_fec: bool,
    pub opus_loss: LossPercent,
    pub opus_dtx: bool,
    /// RFC 2198 redundancy: how many previous frames each packet repeats (0 = plain RTP).
    pub redundancy: u8,
    pub red_payload_type: u8,
    pub payload_type: u8,
    pub dest: Vec<Destination>,
    pub ssrc: Option<u32>,
    pub srtp: Option<SrtpConfig>,
    pub sdp_file: Option<std::path::PathBuf>,
    pub sap: bool,
    pub sap_interval_s: u32,
    pub rtcp: bool,
    pub rtcp_mux: bool,
    pub rr_loss_warn_percent: u8,
    pub rr_jitter_warn_ms: u32,
    /// RTCP CNAME; `None` means "rtpmic@" + the host name, found at start.
    pub cname: Option<String>,
    pub max_dest: usize,
    pub resolve_interval_s: u32,
    pub sender: SenderKind,
    pub multicast_ttl: u8,
    pub multicast_if: Option<MulticastIf>,
    pub multicast_loop: bool,
    pub dscp: u8,
    pub so_priority: u8,
    pub bind: Option<std::net::SocketAddr>,
    pub rt_priority: u8,
    pub pacing: bool,
    pub threads: Threads,
    pub stats_interval_s: u32,
    pub log_level: LogLevel,
    pub log_target: LogTarget,
}

impl Config {
    /// Samples per frame at the device rate (mono).
    pub fn frame_samples(&self) -> usize {
        (u64::from(self.rate) * u64::from(self.frame_us) / 1_000_000) as usize
    }

    /// How many real-time threads the stream runs in (1, 2 or 3), `RTPMIC_THREADS=auto`
    /// resolved. Each handoff between threads costs a wake-up per frame (an eventfd write,
    /// a context switch: several µs, tens on a VM), so auto uses as few as the work allows:
    /// * Up to [`FEW_DESTINATIONS`] destinations: one thread reads, encodes and sends, as a
    ///   plain loop would (unpaced Opus: 1.00-1.01 × a bare C loop's CPU, against 1.04 × with
    ///   a capture thread of its own). While a frame is encoded the device keeps filling its
    ///   buffer, which holds at least 100 ms (`capture::device`), far more than an Opus frame
    ///   takes to encode even on a slow board.
    /// * More: the fan-out gets a thread of its own, which sends one packet while the next is
    ///   encoded, and the device is read by a thread that does nothing else.
    ///
    /// `2` (capture | encode + send) is there for a board whose encode time comes near the
    /// ALSA buffer: the frame ring then adds [`crate::pipeline::FRAME_RING`] frames of room.
    pub fn stream_threads(&self) -> u8 {
        match self.threads {
            Threads::One => 1,
            Threads::Two => 2,
            Threads::Three => 3,
            Threads::Auto if self.dest.len() > FEW_DESTINATIONS => 3,
            Threads::Auto => 1,
        }
    }

    /// The RTP clock rate of the stream: 48 kHz for Opus always (RFC 7587 §4.1), else the
    /// sampling rate (RFC 3551 §4.5).
    pub fn rtp_clock_rate(&self) -> u32 {
        match self.codec {
            Codec::Opus => 48_000,
            _ => self.rate,
        }
    }

    /// RTP timestamp ticks per frame.
    pub fn rtp_ticks_per_frame(&self) -> u32 {
        (u64::from(self.rtp_clock_rate()) * u64::from(self.frame_us) / 1_000_000) as u32
    }

    /// The CNAME for RTCP SDES: `RTPMIC_CNAME`, else "rtpmic@" + the host name (RFC 3550
    /// §6.5.1 suggests user@host).
    pub fn effective_cname(&self) -> String {
        self.cname.clone().unwrap_or_else(|| {
            let mut buf = [0u8; 256];
            // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
            let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
            let host = if ok {
                let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                String::from_utf8_lossy(&buf[..end]).into_owned()
            } else {
                "localhost".into()
            };
            format!("rtpmic@{host}")
        })
    }

    /// The effective configuration in env file syntax, one `KEY=value` per line.
    pub fn to_env_lines(&self) -> String {
        let channel = match self.channel {
            ChannelSelect::Index(i) => i.to_string(),
            ChannelSelect::Mix => "mix".into(),
        };
        let format = match self.sample_format {
            SampleFormat::Auto => "auto",
            SampleFormat::S16Le => "S16_LE",
            SampleFormat::S32Le => "S32_LE",
        };
        let app = match self.opus_application {
            OpusApplication::Voip => "voip",
            OpusApplication::Audio => "audio",
            OpusApplication::LowDelay => "lowdelay",
        };
        let dest: Vec<String> = self.dest.iter().map(|d| d.to_string()).collect();
        let ssrc = self.ssrc.map(|s| s.to_string()).unwrap_or_default();
        let sender = match self.sender {
            SenderKind::Auto => "auto",
            SenderKind::IoUring => "io_uring",
            SenderKind::Epoll => "epoll",
        };
        let multicast_if = match &self.multicast_if {
            None => String::new(),
            Some(MulticastIf::Name(n)) => n.clone(),
            Some(MulticastIf::Addr(a)) => a.to_string(),
        };
        let lines = [
            ("RTPMIC_DEVICE", self.device.clone()),
            ("RTPMIC_RATE", self.rate.to_string()),
            ("RTPMIC_CHANNELS", self.channels.to_string()),
            ("RTPMIC_CHANNEL", channel),
            ("RTPMIC_SAMPLE_FORMAT", format.into()),
            ("RTPMIC_CODEC", self.codec.name().into()),
            ("RTPMIC_FRAME_MS", format_frame_ms(self.frame_us)),
            ("RTPMIC_BITRATE", self.bitrate.to_string()),
            ("RTPMIC_OPUS_COMPLEXITY", self.opus_complexity.to_string()),
            ("RTPMIC_OPUS_APPLICATION", app.into()),
            ("RTPMIC_OPUS_FEC", on_off(self.opus_fec)),
            (
                "RTPMIC_OPUS_LOSS_PERCENT",
                match self.opus_loss {
                    LossPercent::Auto { .. } => "auto".into(),
                    LossPercent::Fixed(p) => p.to_string(),
                },
            ),
            (
                "RTPMIC_OPUS_LOSS_MIN_PERCENT",
                match self.opus_loss {
                    LossPercent::Auto { min, .. } => min.to_string(),
                    LossPercent::Fixed(_) => String::new(),
                },
            ),
            (
                "RTPMIC_OPUS_LOSS_MAX_PERCENT",
                match self.opus_loss {
                    LossPercent::Auto { max, .. } => max.to_string(),
                    LossPercent::Fixed(_) => String::new(),
                },
            ),
            ("RTPMIC_OPUS_DTX", on_off(self.opus_dtx)),
            ("RTPMIC_REDUNDANCY", self.redundancy.to_string()),
            ("RTPMIC_RED_PAYLOAD_TYPE", self.red_payload_type.to_string()),
            ("RTPMIC_PAYLOAD_TYPE", self.payload_type.to_string()),
            ("RTPMIC_DEST", dest.join(",")),
            (
                "RTPMIC_SRTP",
                self.srtp
                    .as_ref()
                    .map_or("off".into(), |s| s.profile.sdp_name().to_string()),
            ),
            // Never the key itself (it would land in logs and terminals).
            (
                "RTPMIC_SRTP_KEY",
                match &self.srtp {
                    None => String::new(),
                    Some(s) if s.random_key => "(random)".into(),
                    Some(_) => "(set)".into(),
                },
            ),
            ("RTPMIC_SSRC", ssrc),
            (
                "RTPMIC_SDP_FILE",
                self.sdp_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            ("RTPMIC_SAP", on_off(self.sap)),
            ("RTPMIC_SAP_INTERVAL_S", self.sap_interval_s.to_string()),
            ("RTPMIC_RTCP", on_off(self.rtcp)),
            ("RTPMIC_RTCP_MUX", on_off(self.rtcp_mux)),
            ("RTPMIC_RR_LOSS_WARN_PERCENT", self.rr_loss_warn_percent.to_string()),
            ("RTPMIC_RR_JITTER_WARN_MS", self.rr_jitter_warn_ms.to_string()),
            ("RTPMIC_CNAME", self.cname.clone().unwrap_or_default()),
            ("RTPMIC_MAX_DEST", self.max_dest.to_string()),
            ("RTPMIC_RESOLVE_INTERVAL_S", self.resolve_interval_s.to_string()),
            ("RTPMIC_SENDER", sender.into()),
            ("RTPMIC_MULTICAST_TTL", self.multicast_ttl.to_string()),
            ("RTPMIC_MULTICAST_IF", multicast_if),
            (
                "RTPMIC_MULTICAST_LOOP",
                if self.multicast_loop { "on" } else { "off" }.into(),
            ),
            ("RTPMIC_DSCP", self.dscp.to_string()),
            ("RTPMIC_SO_PRIORITY", self.so_priority.to_string()),
            ("RTPMIC_BIND", self.bind.map(|b| b.to_string()).unwrap_or_default()),
            ("RTPMIC_PACING", on_off(self.pacing)),
            (
                "RTPMIC_THREADS",
                match self.threads {
                    Threads::Auto => "auto",
                    Threads::One => "1",
                    Threads::Two => "2",
                    Threads::Three => "3",
                }
                .into(),
            ),
            ("RTPMIC_RT_PRIORITY", self.rt_priority.to_string()),
            ("RTPMIC_STATS_INTERVAL_S", self.stats_interval_s.to_string()),
            ("RTPMIC_LOG_LEVEL", self.log_level.name().into()),
            ("RTPMIC_LOG_TARGET", self.log_target.name().into()),
        ];
        lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }

    /// Parses `KEY=value` pairs. Keys not starting with `RTPMIC_` are ignored (the process
    /// environment holds many); every problem with the others is collected.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Config, ConfigErrors>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut vars = BTreeMap::new();
        let mut errors = Vec::new();
        for (k, v) in pairs {
            let (k, v) = (k.into(), v.into());
            if !k.starts_with("RTPMIC_") {
                continue;
            }
            if KEYS.iter().any(|s| s.name == k) {
                let v = v.trim().to_string();
                if !v.is_empty() {
                    vars.insert(k, v);
                }
            } else {
                // A misspelt RTPMIC_SRTP_KEY must not print the key it carries.
                let upper = k.to_ascii_uppercase();
                let shown = if upper.contains("SRTP") || upper.contains("KEY") {
                    "(hidden)"
                } else {
                    v.as_str()
                };
                errors.push(ConfigError::new(
                    &k,
                    shown,
                    &format!("unknown key; known keys: {}", known_keys()),
                ));
            }
        }
        let mut p = Parser { vars, errors };
        let config = p.parse();
        if p.errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(p.errors))
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigErrors> {
        Config::from_pairs(std::env::vars_os().filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            let v = v.into_string().unwrap_or_else(|v| v.to_string_lossy().into_owned());
            Some((k, v))
        }))
    }

    /// Reads an env file: a regular file of at most 64 KiB in the syntax [`env_file`]
    /// describes. A file that cannot be read or parsed gives one line naming the file (and
    /// the line number and key), never its text.
    pub fn from_env_file(path: &Path) -> Result<Config, ConfigErrors> {
        let fail = |why: String| {
            ConfigErrors(vec![ConfigError {
                line: one_line(&format!("--env-file {}: {why}", path.display())),
            }])
        };
        let bytes = env_file::read(path).map_err(fail)?;
        let pairs = env_file::parse(&bytes).map_err(|e| fail(e.to_string()))?;
        Config::from_pairs(pairs)
    }

    /// Reads the file when given, the process environment otherwise.
    pub fn load(env_file: Option<&Path>) -> Result<Config, ConfigErrors> {
        match env_file {
            Some(p) => Config::from_env_file(p),
            None => Config::from_env(),
        }
    }
}

fn on_off(b: bool) -> String {
    if b { "on" } else { "off" }.into()
}

fn known_keys() -> String {
    KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(" ")
}

/// Microseconds as the milliseconds users write: 20000 → "20", 2500 → "2.5".
pub fn format_frame_ms(us: u32) -> String {
    if us.is_multiple_of(1000) {
        (us / 1000).to_string()
    } else {
        format!("{}.{}", us / 1000, (us % 1000) / 100)
    }
}

/// One problem, already formatted as the line the user sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub line: String,
}

impl ConfigError {
    fn new(key: &str, value: &str, why: &str) -> ConfigError {
        ConfigError {
            line: one_line(&format!("{key}={value:?}: {why}")),
        }
    }
}

/// At most [`MAX_SHOWN`] characters of `text`, then `…` when there was more: what an error
/// line may quote of a key, a value or a part of one.
fn shown(text: &str) -> String {
    match text.char_indices().nth(MAX_SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Control characters (a CR or NUL in a key name, a newline in a value) escaped, so that every
/// problem stays one line of the log.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Every problem found; `Display` gives one line each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "config: {}", e.line)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

struct Parser {
    vars: BTreeMap<String, String>,
    errors: Vec<ConfigError>,
}

impl Parser {
    fn error(&mut self, key: &str, why: &str) {
        let value = match key {
            // A key never appears in an error line.
            "RTPMIC_SRTP_KEY" => "(hidden)".to_string(),
            _ => self.vars.get(key).cloned().unwrap_or_default(),
        };
        self.errors.push(ConfigError::new(key, &value, why));
    }

    fn allowed(key: &str) -> &'static str {
        KEYS.iter().find(|k| k.name == key).map(|k| k.allowed).unwrap_or("")
    }

    /// A choice among words (case-insensitive); the default when unset or invalid (an
    /// invalid value records an error).
    fn word<T: Copy>(&mut self, key: &str, choices: &[(&str, T)], default: T) -> T {
        let Some(v) = self.vars.get(key) else { return default };
        if let Some((_, t)) = choices.iter().find(|(w, _)| w.eq_ignore_ascii_case(v)) {
            return *t;
        }
        self.error(key, &format!("allowed: {}", Parser::allowed(key)));
        default
    }

    /// An integer in `lo..=hi`; decimal, or 0x hex when `hex` is set.
    fn int(&mut self, key: &str, lo: u64, hi: u64, default: u64, hex: bool) -> u64 {
        let Some(v) = self.vars.get(key) else { return default };
        let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            Some(h) if hex => u64::from_str_radix(h, 16),
            _ => v.parse::<u64>(),
        };
        match parsed {
            Ok(n) if (lo..=hi).contains(&n) => n,
            Ok(_) => {
                self.error(key, &format!("out of range; allowed: {}", Parser::allowed(key)));
                default
            }
            Err(_) => {
                self.error(key, &format!("not a whole number; allowed: {}", Parser::allowed(key)));
                default
            }
        }
    }

    fn parse(&mut self) -> Config {
        let device = self
            .vars
            .get("RTPMIC_DEVICE")
            .cloned()
            .unwrap_or_else(|| "default".into());
        let codec = self.word(
            "RTPMIC_CODEC",
            &[
                ("opus", Codec::Opus),
                ("pcmu", Codec::Pcmu),
                ("pcma", Codec::Pcma),
                ("l16", Codec::L16),
            ],
            Codec::Opus,
        );
        let rate = self.rate(codec);
        let channels = self.int("RTPMIC_CHANNELS", 1, u64::from(MAX_CHANNELS), 1, false) as u32;
        let channel = self.channel(channels);
        let sample_format = self.word(
            "RTPMIC_SAMPLE_FORMAT",
            &[
                ("auto", SampleFormat::Auto),
                ("S16_LE", SampleFormat::S16Le),
                ("S32_LE", SampleFormat::S32Le),
            ],
            SampleFormat::Auto,
        );
        let frame_us = self.frame_us(codec, rate);
        let bitrate = self.int("RTPMIC_BITRATE", 6000, 510_000, 32_000, false) as u32;
        let opus_complexity = self.int("RTPMIC_OPUS_COMPLEXITY", 0, 10, 10, false) as u8;
        let opus_application = self.word(
            "RTPMIC_OPUS_APPLICATION",
            &[
                ("voip", OpusApplication::Voip),
                ("audio", OpusApplication::Audio),
                ("lowdelay", OpusApplication::LowDelay),
            ],
            OpusApplication::Voip,
        );
        let payload_type = self.payload_type(codec, rate);
        let on_off = [("on", true), ("off", false)];
        let opus_fec = self.word("RTPMIC_OPUS_FEC", &on_off, false);
        let opus_loss = self.opus_loss();
        let opus_dtx = self.word("RTPMIC_OPUS_DTX", &on_off, false);
        let redundancy = self.int("RTPMIC_REDUNDANCY", 0, 3, 0, false) as u8;
        let red_payload_type = self.int("RTPMIC_RED_PAYLOAD_TYPE", 96, 127, 121, false) as u8;
        if red_payload_type == payload_type && redundancy > 0 {
            self.error(
                "RTPMIC_RED_PAYLOAD_TYPE",
                &format!(
                    "same as RTPMIC_PAYLOAD_TYPE; allowed: {}",
                    Parser::allowed("RTPMIC_RED_PAYLOAD_TYPE")
                ),
            );
        }
        if codec != Codec::Opus {
            for (key, on) in [("RTPMIC_OPUS_FEC", opus_fec), ("RTPMIC_OPUS_DTX", opus_dtx)] {
                if on {
                    self.error(key, "needs RTPMIC_CODEC=opus; allowed: off for pcmu, pcma and l16");
                }
            }
        }
        let dest = self.destinations();
        let ssrc = self
            .vars
            .contains_key("RTPMIC_SSRC")
            .then(|| self.int("RTPMIC_SSRC", 0, u64::from(u32::MAX), 0, true) as u32);
        let sdp_file = self.vars.get("RTPMIC_SDP_FILE").map(std::path::PathBuf::from);
        if sdp_file.as_ref().is_some_and(|p| !p.is_absolute()) {
            self.error(
                "RTPMIC_SDP_FILE",
                &format!("not absolute; allowed: {}", Parser::allowed("RTPMIC_SDP_FILE")),
            );
        }
        let sap = self.word("RTPMIC_SAP", &[("on", true), ("off", false)], false);
        let sap_interval_s = self.int("RTPMIC_SAP_INTERVAL_S", 5, 3600, 30, false) as u32;
        let srtp = self.srtp();
        if let Some(s) = &srtp {
            if sap {
                self.error(
                    "RTPMIC_SAP",
                    "would announce the SRTP key in clear to the whole LAN; allowed: off with RTPMIC_SRTP",
                );
            }
            if ssrc.is_some() && !s.random_key {
                // RFC 3711 §9.1: the same key, SSRC and packet index must never meet twice;
                // with both fixed, every restart would reuse key stream.
                self.error(
                    "RTPMIC_SSRC",
                    "a fixed SSRC with a fixed RTPMIC_SRTP_KEY reuses SRTP key stream after a restart (RFC 3711 §9.1); allowed: unset (random) with RTPMIC_SRTP_KEY",
                );
            }
        }
        let rtcp = self.word("RTPMIC_RTCP", &[("on", true), ("off", false)], true);
        let rtcp_mux = self.word("RTPMIC_RTCP_MUX", &[("on", true), ("off", false)], false);
        let rr_loss_warn_percent = self.int("RTPMIC_RR_LOSS_WARN_PERCENT", 0, 100, 5, false) as u8;
        let rr_jitter_warn_ms = self.int("RTPMIC_RR_JITTER_WARN_MS", 0, 10_000, 30, false) as u32;
        let cname = self.vars.get("RTPMIC_CNAME").cloned();
        if cname.as_ref().is_some_and(|c| c.len() > 255) {
            self.error(
                "RTPMIC_CNAME",
                &format!("too long; allowed: {}", Parser::allowed("RTPMIC_CNAME")),
            );
        }
        let max_dest = self.int("RTPMIC_MAX_DEST", 1, MAX_DEST_LIMIT as u64, 64, false) as usize;
        if dest.len() > max_dest {
            self.error(
                "RTPMIC_DEST",
                &format!(
                    "{} destinations, more than RTPMIC_MAX_DEST={max_dest}; allowed: at most RTPMIC_MAX_DEST",
                    dest.len()
                ),
            );
        }
        let resolve_interval_s = self.int("RTPMIC_RESOLVE_INTERVAL_S", 0, 86_400, 300, false) as u32;
        let sender = self.word(
            "RTPMIC_SENDER",
            &[
                ("auto", SenderKind::Auto),
                ("io_uring", SenderKind::IoUring),
                ("epoll", SenderKind::Epoll),
            ],
            SenderKind::Auto,
        );
        let multicast_ttl = self.int("RTPMIC_MULTICAST_TTL", 0, 255, 16, false) as u8;
        let multicast_if = self.multicast_if();
        let multicast_loop = self.word("RTPMIC_MULTICAST_LOOP", &[("on", true), ("off", false)], false);
        let dscp = self.int("RTPMIC_DSCP", 0, 63, 46, false) as u8;
        let so_priority = self.int("RTPMIC_SO_PRIORITY", 0, 6, 6, false) as u8;
        let bind = self.bind();
        let rt_priority = self.int("RTPMIC_RT_PRIORITY", 0, 99, 50, false) as u8;
        let pacing = self.word("RTPMIC_PACING", &[("on", true), ("off", false)], false);
        let threads = self.word(
            "RTPMIC_THREADS",
            &[
                ("auto", Threads::Auto),
                ("1", Threads::One),
                ("2", Threads::Two),
                ("3", Threads::Three),
            ],
            Threads::Auto,
        );
        let stats_interval_s = self.int("RTPMIC_STATS_INTERVAL_S", 0, 86_400, 60, false) as u32;
        let log_level = self.word(
            "RTPMIC_LOG_LEVEL",
            &[
                ("error", LogLevel::Error),
                ("warn", LogLevel::Warn),
                ("info", LogLevel::Info),
                ("debug", LogLevel::Debug),
                ("trace", LogLevel::Trace),
            ],
            LogLevel::Info,
        );
        let log_target = self.word(
            "RTPMIC_LOG_TARGET",
            &[
                ("auto", LogTarget::Auto),
                ("journald", LogTarget::Journald),
                ("stderr", LogTarget::Stderr),
            ],
            LogTarget::Auto,
        );
        Config {
            device,
            rate,
            channels,
            channel,
            sample_format,
            codec,
            frame_us,
            bitrate,
            opus_complexity,
            opus_application,
            payload_type,
            opus_fec,
            opus_loss,
            opus_dtx,
            redundancy,
            red_payload_type,
            dest,
            ssrc,
            srtp,
            sdp_file,
            sap,
            sap_interval_s,
            rtcp,
            rtcp_mux,
            rr_loss_warn_percent,
            rr_jitter_warn_ms,
            cname,
            max_dest,
            resolve_interval_s,
            sender,
            multicast_ttl,
            multicast_if,
            multicast_loop,
            dscp,
            so_priority,
            bind,
            rt_priority,
            pacing,
            threads,
            stats_interval_s,
            log_level,
            log_target,
        }
    }

    fn rate(&mut self, codec: Codec) -> u32 {
        let (allowed, default): (&[u32], u32) = match codec {
            Codec::Opus => (&[8000, 12000, 16000, 24000, 48000], 48000),
            Codec::Pcmu | Codec::Pcma => (&[8000], 8000),
            Codec::L16 => (&[8000, 16000, 24000, 32000, 44100, 48000], 48000),
        };
        let rate = self.int("RTPMIC_RATE", 1, 1_000_000, u64::from(default), false) as u32;
        if allowed.contains(&rate) {
            return rate;
        }
        let list: Vec<String> = allowed.iter().map(|r| r.to_string()).collect();
        self.error(
            "RTPMIC_RATE",
            &format!("not a rate {} accepts; allowed: {}", codec.name(), list.join(" ")),
        );
        default
    }

    fn channel(&mut self, channels: u32) -> ChannelSelect {
        match self.vars.get("RTPMIC_CHANNEL").map(String::as_str) {
            None => ChannelSelect::Index(0),
            Some(v) if v.eq_ignore_ascii_case("mix") => ChannelSelect::Mix,
            Some(v) => match v.parse::<u32>() {
                Ok(i) if i < channels => ChannelSelect::Index(i),
                _ => {
                    self.error(
                        "RTPMIC_CHANNEL",
                        &format!("allowed: 0..{} (RTPMIC_CHANNELS={channels}) or mix", channels - 1),
                    );
                    ChannelSelect::Index(0)
                }
            },
        }
    }

    fn frame_us(&mut self, codec: Codec, rate: u32) -> u32 {
        let (allowed, default): (&[u32], u32) = match codec {
            Codec::Opus => (&[2500, 5000, 10_000, 20_000, 40_000, 60_000], 20_000),
            Codec::Pcmu | Codec::Pcma => (&[10_000, 20_000, 30_000, 40_000], 20_000),
            Codec::L16 => (&[10_000, 20_000, 30_000, 40_000], 10_000),
        };
        let Some(v) = self.vars.get("RTPMIC_FRAME_MS").cloned() else {
            return default;
        };
        let list: Vec<String> = allowed.iter().map(|&us| format_frame_ms(us)).collect();
        let us = parse_ms(&v).filter(|us| allowed.contains(us));
        let Some(us) = us else {
            self.error(
                "RTPMIC_FRAME_MS",
                &format!("not a frame size {} accepts; allowed: {}", codec.name(), list.join(" ")),
            );
            return default;
        };
        if codec == Codec::L16 {
            let bytes = u64::from(rate) * u64::from(us) / 1_000_000 * 2;
            if bytes > MAX_PAYLOAD as u64 {
                self.error(
                    "RTPMIC_FRAME_MS",
                    &format!("l16 at {rate} Hz makes {bytes}-byte payloads, more than {MAX_PAYLOAD} fit in one unfragmented datagram; use a shorter frame or a lower RTPMIC_RATE"),
                );
                return default;
            }
        }
        us
    }

    fn srtp(&mut self) -> Option<SrtpConfig> {
        use crate::rtp::srtp::{MasterKey, Profile};
        let name = self.vars.get("RTPMIC_SRTP").cloned().unwrap_or_default();
        let profile = if name.is_empty() || name.eq_ignore_ascii_case("off") {
            None
        } else if let Some(p) = Profile::from_sdp_name(&name.to_ascii_uppercase()) {
            Some(p)
        } else {
            self.error("RTPMIC_SRTP", &format!("allowed: {}", Parser::allowed("RTPMIC_SRTP")));
            None
        };
        let key_text = self.vars.get("RTPMIC_SRTP_KEY").cloned();
        let Some(profile) = profile else {
            if key_text.is_some() {
                self.error(
                    "RTPMIC_SRTP_KEY",
                    "set but RTPMIC_SRTP is off; allowed: unset, or turn RTPMIC_SRTP on",
                );
            }
            return None;
        };
        match key_text {
            Some(text) => match MasterKey::from_sdes_inline(&text) {
                Ok(key) => Some(SrtpConfig {
                    profile,
                    key,
                    random_key: false,
                }),
                Err(e) => {
                    self.error(
                        "RTPMIC_SRTP_KEY",
                        &format!("{e}; allowed: {}", Parser::allowed("RTPMIC_SRTP_KEY")),
                    );
                    None
                }
            },
            None => match MasterKey::random() {
                Ok(key) => Some(SrtpConfig {
                    profile,
                    key,
                    random_key: true,
                }),
                Err(e) => {
                    self.error(
                        "RTPMIC_SRTP_KEY",
                        &format!("no random key: {e}; allowed: a key of your own"),
                    );
                    None
                }
            },
        }
    }

    fn opus_loss(&mut self) -> LossPercent {
        let min = self.int("RTPMIC_OPUS_LOSS_MIN_PERCENT", 0, 100, 5, false) as u8;
        let max = self.int("RTPMIC_OPUS_LOSS_MAX_PERCENT", 0, 100, 30, false) as u8;
        if max < min {
            self.error(
                "RTPMIC_OPUS_LOSS_MAX_PERCENT",
                &format!(
                    "below RTPMIC_OPUS_LOSS_MIN_PERCENT={min}; allowed: {}",
                    Parser::allowed("RTPMIC_OPUS_LOSS_MAX_PERCENT")
                ),
            );
        }
        match self.vars.get("RTPMIC_OPUS_LOSS_PERCENT") {
            Some(v) if !v.eq_ignore_ascii_case("auto") => {
                LossPercent::Fixed(self.int("RTPMIC_OPUS_LOSS_PERCENT", 0, 100, 0, false) as u8)
            }
            _ => LossPercent::Auto { min, max: max.max(min) },
        }
    }

    fn payload_type(&mut self, codec: Codec, rate: u32) -> u8 {
        let default = match codec {
            Codec::Opus => 96,
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::L16 => 97,
        };
        let pt = self.int("RTPMIC_PAYLOAD_TYPE", 0, 127, default, false) as u8;
        // RFC 3551 §6: 96..127 are dynamic; the static ones must match their codec.
        let ok = (96..=127).contains(&pt)
            || (codec == Codec::Pcmu && pt == 0)
            || (codec == Codec::Pcma && pt == 8)
            || (codec == Codec::L16 && pt == 11 && rate == 44100);
        if !ok {
            self.error(
                "RTPMIC_PAYLOAD_TYPE",
                &format!(
                    "not a payload type for {}; allowed: {}",
                    codec.name(),
                    Parser::allowed("RTPMIC_PAYLOAD_TYPE")
                ),
            );
            return default as u8;
        }
        pt
    }

    fn destinations(&mut self) -> Vec<Destination> {
        let Some(v) = self.vars.get("RTPMIC_DEST").cloned() else {
            self.error(
                "RTPMIC_DEST",
                "required; set a comma list of host:port, e.g. 192.0.2.10:5004,[2001:db8::1]:5004",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in v.split(',').map(str::trim) {
            match parse_destination(item) {
                Ok(d) if out.contains(&d) => self.error("RTPMIC_DEST", &format!("{item} is listed twice")),
                Ok(d) => out.push(d),
                Err(why) => self.error(
                    "RTPMIC_DEST",
                    &format!("{item:?}: {why}; allowed: host:port or [IPv6]:port, port 1..65535"),
                ),
            }
        }
        out
    }

    fn multicast_if(&mut self) -> Option<MulticastIf> {
        let v = self.vars.get("RTPMIC_MULTICAST_IF")?.clone();
        if let Ok(ip) = v.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            return Some(MulticastIf::Addr(ip));
        }
        // Linux interface names: at most 15 bytes, no '/', no whitespace (IFNAMSIZ - 1).
        if v.len() <= 15 && !v.contains('/') && !v.contains(char::is_whitespace) && !v.contains(':') {
            return Some(MulticastIf::Name(v));
        }
        self.error(
            "RTPMIC_MULTICAST_IF",
            &format!("allowed: {}", Parser::allowed("RTPMIC_MULTICAST_IF")),
        );
        None
    }

    fn bind(&mut self) -> Option<std::net::SocketAddr> {
        let v = self.vars.get("RTPMIC_BIND")?.clone();
        if let Ok(ip) = v.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            return Some(std::net::SocketAddr::new(ip, 0));
        }
        match v.parse::<std::net::SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error("RTPMIC_BIND", &format!("allowed: {}", Parser::allowed("RTPMIC_BIND")));
                None
            }
        }
    }
}

/// Parses "20", "2.5" into microseconds.
fn parse_ms(v: &str) -> Option<u32> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if int.is_empty() || frac.len() > 3 || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms: u32 = int.parse().ok()?;
    let frac_us: u32 = format!("{frac:0<3}").parse().ok()?;
    ms.checked_mul(1000)?.checked_add(frac_us)
}

/// Parses one `host:port` / `[v6]:port` item.
pub fn parse_destination(item: &str) -> Result<Destination, String> {
    if item.is_empty() {
        return Err("empty entry".into());
    }
    let (host, port) = if let Some(rest) = item.strip_prefix('[') {
        let (h, p) = rest.split_once(']').ok_or("missing ']'")?;
        let p = p.strip_prefix(':').ok_or("missing :port")?;
        let ip: std::net::Ipv6Addr = h.parse().map_err(|_| format!("{h:?} is not an IPv6 address"))?;
        (Host::Ip(IpAddr::V6(ip)), p)
    } else {
        let (h, p) = item.rsplit_once(':').ok_or("missing :port")?;
        if h.contains(':') {
            return Err("IPv6 addresses must be written in brackets".into());
        }
        (parse_host(h)?, p)
    };
    let port: u16 = port.parse().map_err(|_| format!("port {port:?} is not a number"))?;
    if port == 0 {
        return Err("port 0".into());
    }
    Ok(Destination { host, port })
}

/// An IPv4 literal or a DNS name (RFC 1123 §2.1 labels).
fn parse_host(h: &str) -> Result<Host, String> {
    if let Ok(ip) = h.parse::<std::net::Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    let labels_ok = !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    // A name made only of digits and dots is a mistyped IPv4 address, not a host name.
    let looks_numeric = h.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if !labels_ok || looks_numeric {
        return Err(format!("{h:?} is not an IP address or host name"));
    }
    Ok(Host::Name(h.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_env_file_error_never_quotes_the_file_and_stays_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rtpmic.env");
        // Found by cargo-fuzz: dotenvy's message repeats the rest of the file after an
        // unterminated quote, key and all.
        std::fs::write(
            &path,
            "RTPMIC_DEST=10.0.0.2:5004\nRTPMIC_CNAME=\"door A\nRTPMIC_SRTP=AES_CM_128_HMAC_SHA1_80\nRTPMIC_SRTP_KEY=WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\n",
        )
        .unwrap();
        let text = Config::from_env_file(&path).unwrap_err().to_string();
        assert!(!text.contains("WVNfX19z") && !text.contains("door"), "{text}");
        assert!(
            text.starts_with(&format!(
                "config: --env-file {}: line 2: RTPMIC_CNAME: unterminated quote",
                path.display()
            )),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn text_after_an_unquoted_secret_names_line_and_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rtpmic.env");
        let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
        std::fs::write(
            &path,
            format!("RTPMIC_DEST=10.0.0.2:5004\nRTPMIC_SRTP=AES_CM_128_HMAC_SHA1_80\nRTPMIC_SRTP_KEY={key} rotated 2026-12-01\n"),
        )
        .unwrap();
        let text = Config::from_env_file(&path).unwrap_err().to_string();
        assert!(
            text.starts_with(&format!(
                "config: --env-file {}: line 3: RTPMIC_SRTP_KEY: text after the value",
                path.display()
            )),
            "{text}"
        );
        assert!(!text.contains(&key[..6]) && !text.contains("rotated"), "{text}");
    }

    #[test]
    fn a_misspelt_srtp_key_is_not_printed() {
        let text = Config::from_pairs([("RTPMIC_DEST", "10.0.0.2:5004"), ("RTPMIC_SRTP_KEYS", "c2VjcmV0")])
            .unwrap_err()
            .to_string();
        assert!(text.contains("RTPMIC_SRTP_KEYS=\"(hidden)\": unknown key"), "{text}");
        assert!(!text.contains("c2VjcmV0"), "{text}");
    }

    #[test]
    fn control_characters_in_keys_or_values_are_escaped() {
        let errors = Config::from_pairs([("RTPMIC_DEST", "10.0.0.2:5004"), ("RTPMIC_A\rB\0", "1\n2")]).unwrap_err();
        let text = errors.to_string();
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(text.contains("RTPMIC_A\\rB\\0"), "{text}");
    }

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        let mut v: Vec<(String, String)> = vec![("RTPMIC_DEST".into(), "127.0.0.1:5004".into())];
        v.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Config::from_pairs(v)
    }

    #[test]
    fn auto_threads_follow_codec_and_fan_out() {
        let threads = |pairs: &[(&str, &str)]| cfg(pairs).unwrap().stream_threads();
        assert_eq!(threads(&[]), 1, "Opus to one destination: all in one thread");
        assert_eq!(threads(&[("RTPMIC_CODEC", "pcmu")]), 1);
        assert_eq!(threads(&[("RTPMIC_CODEC", "l16")]), 1);
        let nine: Vec<String> = (0..9).map(|i| format!("127.0.0.1:{}", 5004 + 2 * i)).collect();
        let nine = nine.join(",");
        assert_eq!(threads(&[("RTPMIC_DEST", &nine), ("RTPMIC_CODEC", "pcmu")]), 3);
        assert_eq!(threads(&[("RTPMIC_DEST", &nine), ("RTPMIC_THREADS", "1")]), 1);
        assert_eq!(threads(&[("RTPMIC_THREADS", "3")]), 3);
        assert_eq!(threads(&[("RTPMIC_THREADS", "2")]), 2);
        let err = cfg(&[("RTPMIC_THREADS", "4")]).unwrap_err().to_string();
        assert!(err.contains("RTPMIC_THREADS") && err.contains("auto 1 2 3"), "{err}");
    }

    #[test]
    fn defaults_depend_on_codec() {
        let c = cfg(&[]).unwrap();
        assert_eq!(
            (c.codec, c.rate, c.frame_us, c.payload_type),
            (Codec::Opus, 48000, 20_000, 96)
        );
        assert_eq!(c.rtp_ticks_per_frame(), 960);
        let c = cfg(&[("RTPMIC_CODEC", "pcmu")]).unwrap();
        assert_eq!(
            (c.rate, c.frame_us, c.payload_type, c.rtp_ticks_per_frame()),
            (8000, 20_000, 0, 160)
        );
        let c = cfg(&[("RTPMIC_CODEC", "l16")]).unwrap();
        assert_eq!(
            (c.rate, c.frame_us, c.payload_type, c.frame_samples()),
            (48000, 10_000, 97, 480)
        );
    }

    #[test]
    fn opus_clock_is_48k_whatever_the_rate() {
        let c = cfg(&[("RTPMIC_RATE", "16000"), ("RTPMIC_FRAME_MS", "2.5")]).unwrap();
        assert_eq!((c.frame_samples(), c.rtp_ticks_per_frame()), (40, 120));
    }

    #[test]
    fn destinations_parse() {
        let c = cfg(&[("RTPMIC_DEST", "10.0.0.1:5004, [::1]:6000,intercom-2.local:5004")]).unwrap();
        assert_eq!(c.dest.len(), 3);
        assert_eq!(c.dest[1].to_string(), "[::1]:6000");
        assert_eq!(c.dest[2].host, Host::Name("intercom-2.local".into()));
    }

    #[test]
    fn effective_config_round_trips() {
        let c = cfg(&[
            ("RTPMIC_SSRC", "0x10"),
            ("RTPMIC_FRAME_MS", "2.5"),
            ("RTPMIC_CHANNELS", "2"),
            ("RTPMIC_CHANNEL", "mix"),
        ])
        .unwrap();
        assert_eq!(c.ssrc, Some(16));
        let lines: Vec<(String, String)> = c
            .to_env_lines()
            .lines()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        assert_eq!(Config::from_pairs(lines).unwrap(), c);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let e = Config::from_pairs([("RTPMIC_BITRATE", "x"), ("RTPMIC_CODECC", "opus"), ("PATH", "/bin")]).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.0.len(), 3, "{text}");
        assert!(text.contains("RTPMIC_BITRATE=\"x\": not a whole number"), "{text}");
        assert!(text.contains("RTPMIC_CODECC=\"opus\": unknown key"), "{text}");
        assert!(text.contains("RTPMIC_DEST=\"\": required"), "{text}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let table: &[(&str, &str)] = &[
            ("RTPMIC_RATE", "44100"),
            ("RTPMIC_FRAME_MS", "3"),
            ("RTPMIC_FRAME_MS", "2.5.1"),
            ("RTPMIC_BITRATE", "1000"),
            ("RTPMIC_OPUS_COMPLEXITY", "11"),
            ("RTPMIC_OPUS_APPLICATION", "music"),
            ("RTPMIC_PAYLOAD_TYPE", "0"),
            ("RTPMIC_PAYLOAD_TYPE", "128"),
            ("RTPMIC_CHANNELS", "0"),
            ("RTPMIC_CHANNEL", "1"),
            ("RTPMIC_SAMPLE_FORMAT", "S24_LE"),
            ("RTPMIC_DEST", "10.0.0.1"),
            ("RTPMIC_DEST", "10.0.0.1:0"),
            ("RTPMIC_DEST", "10.0.0.1:70000"),
            ("RTPMIC_DEST", "300.1.2.3:5004"),
            ("RTPMIC_DEST", "::1:5004"),
            ("RTPMIC_DEST", "[::g]:5004"),
            ("RTPMIC_DEST", "a..b:5004"),
            ("RTPMIC_DEST", "10.0.0.1:5004,,10.0.0.2:5004"),
            ("RTPMIC_DEST", "10.0.0.1:5004,10.0.0.1:5004"),
            ("RTPMIC_SSRC", "-1"),
            ("RTPMIC_SSRC", "0x1ffffffff"),
            ("RTPMIC_RT_PRIORITY", "100"),
            ("RTPMIC_STATS_INTERVAL_S", "1d"),
            ("RTPMIC_LOG_LEVEL", "loud"),
            ("RTPMIC_MAX_DEST", "0"),
            ("RTPMIC_SENDER", "uring"),
            ("RTPMIC_MULTICAST_TTL", "256"),
            ("RTPMIC_MULTICAST_IF", "eth0/1"),
            ("RTPMIC_MULTICAST_LOOP", "yes"),
            ("RTPMIC_DSCP", "64"),
            ("RTPMIC_SO_PRIORITY", "7"),
            ("RTPMIC_BIND", "10.0.0.1:x"),
            ("RTPMIC_RTCP", "maybe"),
            ("RTPMIC_SDP_FILE", "relative/stream.sdp"),
            ("RTPMIC_SAP", "yes"),
            ("RTPMIC_SAP_INTERVAL_S", "1"),
            ("RTPMIC_RTCP_MUX", "1"),
            ("RTPMIC_RR_LOSS_WARN_PERCENT", "101"),
            ("RTPMIC_RR_JITTER_WARN_MS", "x"),
        ];
        for (k, v) in table {
            let e = cfg(&[(k, v)]).expect_err(&format!("{k}={v} must fail"));
            assert_eq!(e.0.len(), 1, "{k}={v}: {e}");
            assert!(e.0[0].line.starts_with(&format!("{k}=")), "{k}={v}: {e}");
            assert!(
                e.0[0].line.contains("allowed") || e.0[0].line.contains("twice"),
                "{k}={v}: {e}"
            );
        }
    }

    #[test]
    fn destinations_are_limited_by_max_dest() {
        let e = cfg(&[
            ("RTPMIC_DEST", "10.0.0.1:1,10.0.0.1:2,10.0.0.1:3"),
            ("RTPMIC_MAX_DEST", "2"),
        ])
        .unwrap_err();
        assert!(
            e.to_string().contains("RTPMIC_DEST=") && e.to_string().contains("RTPMIC_MAX_DEST=2"),
            "{e}"
        );
        let c = cfg(&[("RTPMIC_MULTICAST_IF", "10.1.2.3"), ("RTPMIC_BIND", "[::1]:5000")]).unwrap();
        assert_eq!(c.multicast_if, Some(MulticastIf::Addr("10.1.2.3".parse().unwrap())));
        assert_eq!(c.bind, Some("[::1]:5000".parse().unwrap()));
        assert_eq!(
            cfg(&[("RTPMIC_MULTICAST_IF", "eth0")]).unwrap().multicast_if,
            Some(MulticastIf::Name("eth0".into()))
        );
    }

    #[test]
    fn frame_size_depends_on_codec() {
        assert!(cfg(&[("RTPMIC_CODEC", "pcmu"), ("RTPMIC_FRAME_MS", "2.5")]).is_err());
        assert!(cfg(&[("RTPMIC_CODEC", "opus"), ("RTPMIC_FRAME_MS", "30")]).is_err());
        assert!(cfg(&[("RTPMIC_CODEC", "l16"), ("RTPMIC_FRAME_MS", "20")]).is_err());
        assert!(cfg(&[
            ("RTPMIC_CODEC", "l16"),
            ("RTPMIC_RATE", "16000"),
            ("RTPMIC_FRAME_MS", "40")
        ])
        .is_ok());
    }

    #[test]
    fn empty_value_means_default() {
        let c = cfg(&[("RTPMIC_SSRC", ""), ("RTPMIC_BITRATE", " ")]).unwrap();
        assert_eq!((c.ssrc, c.bitrate), (None, 32000));
    }
}
