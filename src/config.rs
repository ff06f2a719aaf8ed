//! Configuration: `RTPMIC_*` keys → a typed, validated [`Config`].
//!
//! Keys come from the process environment (what systemd's `EnvironmentFile=` gives) or, with
//! `--env-file PATH`, from that file alone (`KEY=value` lines, `#` comments; what is read and
//! the exact syntax: [`env_file`]). The two are never mixed, so what
//! `check-config --env-file F` prints is exactly what `run --env-file F` uses.
//!
//! Rules, decided here and documented in `systemd/rtpmic.env`:
//! * The last assignment of a key wins, and an empty value (`RTPMIC_SSRC=`) means "use the
//!   default", so a later empty assignment resets what an earlier line set. One rule, the
//!   same as systemd's for `EnvironmentFile=` and `Environment=` lines that repeat a key.
//! * Unknown `RTPMIC_*` keys are errors: a typo must not pass silently. The line names the
//!   nearest known key; the value is never printed (a misspelt key may hold a password).
//! * Every problem is reported, one line each, naming the key, the bad value and what is
//!   allowed; nothing is opened or started while any problem remains. A line quotes at most
//!   [`MAX_SHOWN`] characters of any value, one key takes at most [`MAX_LINES_PER_KEY`]
//!   lines plus one that counts the rest, so a hostile file gives a short report, fast.
//! * Secrets (`RTPMIC_SRTP_KEY`, any key whose name holds KEY, PASSWORD or SECRET) never
//!   appear in an error, and an env file's text never appears in a syntax error.
//! * Text keys (CNAME, DEVICE, SDP_FILE, MULTICAST_IF) refuse control characters: they go
//!   into RTCP SDES items (RFC 3550 §6.5), log lines and `STATUS=` lines.
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
/// Most lines one key's problems take; one more line counts the rest ("… and N more
/// problems"). 4000 duplicate destinations once printed 4000 lines, each with the whole list.
pub const MAX_LINES_PER_KEY: usize = 5;
/// Most unknown keys named one line each; one more line counts the rest.
pub const MAX_UNKNOWN_KEYS: usize = 5;

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
        allowed: "an ALSA PCM name, e.g. default, plughw:1,0, sim (no control characters)",
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
        allowed: "comma list of host:port, IPv6 as [addr]:port (link-local with its interface: [fe80::1%eth0]:port), at most RTPMIC_MAX_DEST; port 1..65535 (65535 only with RTPMIC_RTCP_MUX=on or RTPMIC_RTCP=off: RTCP goes to port + 1)",
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
        allowed: "1..255 bytes of text, no control characters (RTCP SDES CNAME, RFC 3550 §6.5.1)",
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
        allowed: "a local address, address:port or [IPv6]:port to send from (link-local with its interface: [fe80::1%eth0]:port); port 0 (any) or 1..65535 (65535 only with RTPMIC_RTCP_MUX=on or RTPMIC_RTCP=off: RTCP uses port + 1)",
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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

/// One receiver.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Destination {
    pub host: Host,
    pub port: u16,
    /// The zone of a link-local IPv6 address (RFC 4007 §11): the interface it is reached
    /// through, by name (`eth0`) or index, as written after `%`. Checked for syntax here; the
    /// interface index is looked up when the address is resolved
    /// ([`crate::net::resolve::resolve`]), so an interface that appears later (a USB adapter
    /// at boot) or comes back with a new index is found by the resolver thread's retries.
    /// Only the socket address carries it: the SDP `c=` line has no zone syntax (RFC 8866).
    pub zone: Option<String>,
}

impl Destination {
    /// A multicast group given as an address (a name is taken as unicast until resolved).
    pub fn is_multicast(&self) -> bool {
        matches!(self.host, Host::Ip(ip) if ip.is_multicast())
    }

    /// Whether the socket address needs a look-up, and a new one now and then: a host name,
    /// or a zone whose interface index is found by name.
    pub fn needs_lookup(&self) -> bool {
        matches!(self.host, Host::Name(_)) || self.zone.is_some()
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.host, &self.zone) {
            (Host::Ip(IpAddr::V6(a)), Some(z)) => write!(f, "[{a}%{z}]:{}", self.port),
            (Host::Ip(IpAddr::V6(a)), None) => write!(f, "[{a}]:{}", self.port),
            (Host::Ip(IpAddr::V4(a)), _) => write!(f, "{a}:{}", self.port),
            (Host::Name(n), _) => write!(f, "{n}:{}", self.port),
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
    /// The local address to send from; a link-local IPv6 one carries its zone's interface
    /// index as scope id, looked up when the configuration is read (the address is local, so
    /// its interface must exist; `check-config` says so when it does not).
    pub bind: Option<std::net::SocketAddr>,
    /// The zone `RTPMIC_BIND` was written with (`eth0`), so it is printed back as written.
    pub bind_zone: Option<String>,
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

    /// `RTPMIC_BIND` as written: the address, a zone by the name it was given, the port.
    fn bind_text(&self) -> String {
        match (self.bind, &self.bind_zone) {
            (None, _) => String::new(),
            (Some(std::net::SocketAddr::V6(a)), Some(z)) => format!("[{}%{z}]:{}", a.ip(), a.port()),
            (Some(a), _) => a.to_string(),
        }
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
            ("RTPMIC_BIND", self.bind_text()),
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
    /// environment holds many); every problem with the others is collected. A key given
    /// twice takes its last value, and an empty value resets it to the default.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Config, ConfigErrors>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut vars = BTreeMap::new();
        // Distinct unknown keys: how many, and the first few by name (in the order given).
        let mut unknown_seen = std::collections::HashSet::new();
        let mut unknown: Vec<String> = Vec::new();
        for (k, v) in pairs {
            let (k, v) = (k.into(), v.into());
            if !k.starts_with("RTPMIC_") {
                continue;
            }
            if KEYS.iter().any(|s| s.name == k) {
                let v = v.trim();
                if v.is_empty() {
                    vars.remove(&k);
                } else {
                    vars.insert(k, v.to_string());
                }
            } else if unknown_seen.insert(k.clone()) && unknown.len() <= MAX_UNKNOWN_KEYS {
                unknown.push(k);
            }
        }
        let mut p = Parser {
            vars,
            errors: Vec::new(),
            lines_per_key: BTreeMap::new(),
        };
        // The value is never shown: a misspelt RTPMIC_SRTP_KEY (or any password) would be.
        let named = if unknown_seen.len() > MAX_UNKNOWN_KEYS + 1 {
            MAX_UNKNOWN_KEYS
        } else {
            unknown.len()
        };
        for k in &unknown[..named] {
            let line = format!("{}: unknown key; {}", shown(k), nearest_key_hint(k));
            p.errors.push((k.clone(), ConfigError { line: one_line(&line) }));
        }
        if let Some(k) = unknown.get(named) {
            let more = unknown_seen.len() - named;
            let line = format!("{}: unknown key, and {} more unknown keys", shown(k), more - 1);
            p.errors.push((k.clone(), ConfigError { line: one_line(&line) }));
        }
        let config = p.parse();
        let errors = p.finish();
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
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
    /// `KEY="value": why`, the value cut to [`MAX_SHOWN`] characters.
    fn new(key: &str, value: &str, why: &str) -> ConfigError {
        ConfigError {
            line: one_line(&format!("{}={:?}: {why}", shown(key), shown(value))),
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

/// Whether a key's value is a secret that no error line may show: `RTPMIC_SRTP_KEY`, and any
/// key whose name says KEY, PASSWORD or SECRET (keys to come, such as an RTSP password).
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    ["KEY", "PASSWORD", "SECRET"].iter().any(|w| k.contains(w))
}

/// "did you mean RTPMIC_X?" for the known key nearest to `key` (Levenshtein distance, at
/// most a third of the name after `RTPMIC_`, and at least 2), else where the keys are listed.
fn nearest_key_hint(key: &str) -> String {
    let fallback = "allowed: the keys in `rtpmic --help` and systemd/rtpmic.env".to_string();
    let Some(name) = key.strip_prefix("RTPMIC_").filter(|n| n.len() <= 64) else {
        return fallback;
    };
    let name = name.to_ascii_uppercase();
    let best = KEYS
        .iter()
        .map(|k| (edit_distance(&name, &k.name["RTPMIC_".len()..]), k.name))
        .min();
    match best {
        Some((d, k)) if d <= (name.len() / 3).max(2) => format!("did you mean {k}?"),
        _ => fallback,
    }
}

/// Levenshtein distance between two short ASCII names (bytes).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(x != y)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
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
    /// Each problem with the key it is about.
    errors: Vec<(String, ConfigError)>,
    /// How many problems each key had, shown or not.
    lines_per_key: BTreeMap<String, usize>,
}

impl Parser {
    /// Records a problem with `key`: `KEY="value": why`. Past [`MAX_LINES_PER_KEY`] for one
    /// key, it is only counted (and not even formatted).
    fn error(&mut self, key: &str, why: &str) {
        let n = self.lines_per_key.entry(key.to_string()).or_default();
        *n += 1;
        if *n > MAX_LINES_PER_KEY {
            return;
        }
        let value = if is_secret(key) {
            "(hidden)"
        } else {
            self.vars.get(key).map_or("", String::as_str)
        };
        let e = ConfigError::new(key, value, why);
        self.errors.push((key.to_string(), e));
    }

    /// The problems, in order, each key's overflow counted on a line after its last shown one.
    fn finish(&mut self) -> Vec<ConfigError> {
        let mut out = Vec::with_capacity(self.errors.len());
        let errors = std::mem::take(&mut self.errors);
        for (i, (key, e)) in errors.iter().enumerate() {
            out.push(e.clone());
            let total = self.lines_per_key.get(key).copied().unwrap_or(0);
            let last_shown = !errors[i + 1..].iter().any(|(k, _)| k == key);
            if total > MAX_LINES_PER_KEY && last_shown {
                out.push(ConfigError {
                    line: format!("{key}: … and {} more problems", total - MAX_LINES_PER_KEY),
                });
            }
        }
        out
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

    /// An integer in `lo..=hi`; decimal, or 0x hex when `hex` is set. A number outside
    /// (negative, or too large for any integer type) is "out of range"; only what is not a
    /// number at all is "not a whole number".
    fn int(&mut self, key: &str, lo: u64, hi: u64, default: u64, hex: bool) -> u64 {
        let Some(v) = self.vars.get(key) else { return default };
        let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            Some(h) if hex => u64::from_str_radix(h, 16),
            _ => v.parse::<u64>(),
        };
        let negative = v
            .strip_prefix('-')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
        match parsed {
            Ok(n) if (lo..=hi).contains(&n) => n,
            Err(e) if !negative && *e.kind() != std::num::IntErrorKind::PosOverflow => {
                self.error(key, &format!("not a whole number; allowed: {}", Parser::allowed(key)));
                default
            }
            _ => {
                self.error(key, &format!("out of range; allowed: {}", Parser::allowed(key)));
                default
            }
        }
    }

    /// A text value: `None` when unset; refused (with an error) when it holds a control
    /// character, which has no place in a name, a path or an RTCP SDES item (RFC 3550 §6.5)
    /// and would garble the log line or terminal that prints it.
    fn text(&mut self, key: &str) -> Option<String> {
        let v = self.vars.get(key)?.clone();
        if v.contains(char::is_control) {
            self.error(
                key,
                &format!("contains a control character; allowed: {}", Parser::allowed(key)),
            );
            return None;
        }
        Some(v)
    }

    fn parse(&mut self) -> Config {
        let device = self.text("RTPMIC_DEVICE").unwrap_or_else(|| "default".into());
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
        let sdp_file = self.text("RTPMIC_SDP_FILE").map(std::path::PathBuf::from);
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
        // RFC 3550 §6.5: an SDES item's length is one octet, so at most 255 bytes.
        let cname = self.text("RTPMIC_CNAME");
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
        let (bind, bind_zone) = self.bind().unzip();
        let bind_zone = bind_zone.flatten();
        self.rtcp_ports(rtcp && !rtcp_mux, &dest, bind);
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
            bind_zone,
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
        let v = match self.vars.get("RTPMIC_CHANNEL") {
            None => return ChannelSelect::Index(0),
            Some(v) if v.eq_ignore_ascii_case("mix") => return ChannelSelect::Mix,
            Some(v) => v,
        };
        if let Ok(i) = v.parse::<u32>() {
            if i < channels {
                return ChannelSelect::Index(i);
            }
        }
        let number = v.bytes().all(|b| b.is_ascii_digit())
            || v.strip_prefix('-')
                .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()));
        let what = if number { "out of range; " } else { "" };
        self.error(
            "RTPMIC_CHANNEL",
            &format!("{what}allowed: 0..{} (RTPMIC_CHANNELS={channels}) or mix", channels - 1),
        );
        ChannelSelect::Index(0)
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

    /// `RTPMIC_DEST`. Duplicates are found with a hash set (linear time), and each problem
    /// quotes only the entry it is about, cut to [`MAX_SHOWN`].
    fn destinations(&mut self) -> Vec<Destination> {
        let Some(v) = self.vars.get("RTPMIC_DEST").cloned() else {
            self.error(
                "RTPMIC_DEST",
                "required; set a comma list of host:port, e.g. 192.0.2.10:5004,[2001:db8::1]:5004",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for item in v.split(',').map(str::trim) {
            match parse_destination(item) {
                Ok(d) if !seen.insert(d.clone()) => {
                    self.error("RTPMIC_DEST", &format!("{} is listed twice", shown(item)))
                }
                Ok(d) => out.push(d),
                Err(why) => self.error(
                    "RTPMIC_DEST",
                    &format!(
                        "{:?}: {why}; allowed: host:port or [IPv6]:port ([fe80::1%eth0]:port for link-local), port 1..65535",
                        shown(item)
                    ),
                ),
            }
        }
        out
    }

    /// RTCP goes to (and is received on) the RTP port + 1 unless muxed (RFC 3550 §11,
    /// RFC 5761), so port 65535 has none: the receive side once bound a random port instead,
    /// the send side port 0. Odd RTP ports are not refused: §11's even/odd pairing is a
    /// SHOULD for the receivers' destination ports, chosen by whoever runs the receiver.
    fn rtcp_ports(&mut self, rtcp_next_port: bool, dest: &[Destination], bind: Option<std::net::SocketAddr>) {
        if !rtcp_next_port {
            return;
        }
        let why = "leaves no port for RTCP, which uses port + 1 (RFC 3550 §11); allowed: a port up to 65534, or RTPMIC_RTCP_MUX=on, or RTPMIC_RTCP=off";
        for d in dest.iter().filter(|d| d.port == u16::MAX) {
            self.error("RTPMIC_DEST", &format!("{}: port 65535 {why}", shown(&d.to_string())));
        }
        if bind.is_some_and(|b| b.port() == u16::MAX) {
            self.error("RTPMIC_BIND", &format!("port 65535 {why}"));
        }
    }

    fn multicast_if(&mut self) -> Option<MulticastIf> {
        let v = self.vars.get("RTPMIC_MULTICAST_IF")?.clone();
        if let Ok(ip) = v.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            return Some(MulticastIf::Addr(ip));
        }
        if interface_name(&v) {
            return Some(MulticastIf::Name(v));
        }
        self.error(
            "RTPMIC_MULTICAST_IF",
            &format!("allowed: {}", Parser::allowed("RTPMIC_MULTICAST_IF")),
        );
        None
    }

    /// `RTPMIC_BIND`, and the zone it was written with.
    fn bind(&mut self) -> Option<(std::net::SocketAddr, Option<String>)> {
        let v = self.vars.get("RTPMIC_BIND")?.clone();
        match parse_bind(&v) {
            Ok(b) => Some(b),
            Err(why) => {
                self.error(
                    "RTPMIC_BIND",
                    &format!("{why}; allowed: {}", Parser::allowed("RTPMIC_BIND")),
                );
                None
            }
        }
    }
}

/// A Linux interface name: 1..15 bytes (IFNAMSIZ - 1), not `.` or `..`, no `/`, `:`, `%`,
/// blank or control character (the kernel's `dev_valid_name`, plus `%` which would make a
/// zone ambiguous).
fn interface_name(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 15
        && v != "."
        && v != ".."
        && !v.contains(|c: char| c == '/' || c == ':' || c == '%' || c.is_whitespace() || c.is_control())
}

/// Checks the zone written after `%` in an IPv6 address (RFC 4007 §11): an interface name
/// or index, on an address whose scope needs one: link-local unicast (fe80::/10) or
/// interface- or link-local multicast (ff01::/16, ff02::/16 and their flag variants). A
/// zone on a global address would be ignored by the kernel, so it is refused as a mistake.
fn check_zone(addr: &std::net::Ipv6Addr, zone: &str) -> Result<(), String> {
    if zone.is_empty() {
        return Err("empty zone after '%'".into());
    }
    if !interface_name(zone) {
        return Err(format!(
            "zone {:?} is not an interface name or index (1..15 bytes, no '/', ':' or blanks)",
            shown(zone)
        ));
    }
    let first = addr.segments()[0];
    let link_local = first & 0xffc0 == 0xfe80 || (first & 0xff00 == 0xff00 && matches!(first & 0x000f, 1 | 2));
    if !link_local {
        return Err(format!(
            "a zone (%{}) applies only to link-local addresses (fe80::/10, ff02::/16)",
            shown(zone)
        ));
    }
    Ok(())
}

/// Splits `addr%zone`.
fn split_zone(h: &str) -> (&str, Option<&str>) {
    match h.split_once('%') {
        Some((a, z)) => (a, Some(z)),
        None => (h, None),
    }
}

/// A port number: 1..=65535, or 0 too when `zero_ok`. A number outside is "out of range".
fn parse_port(p: &str, zero_ok: bool) -> Result<u16, String> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {:?} is not a number", shown(p)));
    }
    match p.parse::<u16>() {
        Ok(0) if !zero_ok => Err("port 0 is out of range".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("port {} is out of range", shown(p))),
    }
}

/// Parses `RTPMIC_BIND`: `addr`, `addr:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address,
/// each IPv6 form with an optional `%zone` for a link-local address. The zone's interface
/// index is looked up now: the address is a local one, so its interface must exist when the
/// sockets are bound, and `check-config` is the place to say it does not.
pub fn parse_bind(v: &str) -> Result<(std::net::SocketAddr, Option<String>), String> {
    use std::net::{SocketAddr, SocketAddrV6};
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        let (h, p) = rest.split_once(']').ok_or("missing ']'")?;
        match p {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':').ok_or("only :port may follow ']'")?)),
        }
    } else if v.matches(':').count() > 1 {
        (v, None)
    } else {
        match v.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (v, None),
        }
    };
    let (addr, zone) = split_zone(host);
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("{:?} is not an IP address", shown(addr)))?;
    let port = port.map_or(Ok(0), |p| parse_port(p, true))?;
    match (ip, zone) {
        (IpAddr::V6(a), Some(z)) => {
            check_zone(&a, z)?;
            let scope = crate::net::resolve::scope_id(z)?;
            Ok((
                SocketAddr::V6(SocketAddrV6::new(a, port, 0, scope)),
                Some(z.to_string()),
            ))
        }
        (IpAddr::V4(_), Some(_)) => Err("a zone ('%') applies only to IPv6 link-local addresses".into()),
        (ip, None) => Ok((SocketAddr::new(ip, port), None)),
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

/// Parses one `host:port` / `[v6]:port` / `[v6%zone]:port` item. The messages quote at
/// most [`MAX_SHOWN`] characters of the item.
pub fn parse_destination(item: &str) -> Result<Destination, String> {
    if item.is_empty() {
        return Err("empty entry".into());
    }
    let (host, zone, port) = if let Some(rest) = item.strip_prefix('[') {
        let (h, p) = rest.split_once(']').ok_or("missing ']'")?;
        let p = p.strip_prefix(':').ok_or("missing :port")?;
        let (a, zone) = split_zone(h);
        let ip: std::net::Ipv6Addr = a
            .parse()
            .map_err(|_| format!("{:?} is not an IPv6 address", shown(a)))?;
        if let Some(z) = zone {
            check_zone(&ip, z)?;
        }
        (Host::Ip(IpAddr::V6(ip)), zone.map(str::to_string), p)
    } else {
        let (h, p) = item.rsplit_once(':').ok_or("missing :port")?;
        if h.contains(':') {
            return Err("IPv6 addresses must be written in brackets".into());
        }
        (parse_host(h)?, None, p)
    };
    let port = parse_port(port, false)?;
    Ok(Destination { host, port, zone })
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
        return Err(format!("{:?} is not an IP address or host name", shown(h)));
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
        assert_eq!(
            text,
            "config: RTPMIC_SRTP_KEYS: unknown key; did you mean RTPMIC_SRTP_KEY?"
        );
    }

    #[test]
    fn an_unknown_key_never_shows_its_value_and_names_the_nearest_key() {
        let e = Config::from_pairs([
            ("RTPMIC_DEST", "10.0.0.2:5004"),
            ("RTPMIC_RTSP_PASSWORD", "hunter2"),
            ("RTPMIC_BITRAT", "1"),
            ("RTPMIC_codec", "opus"),
            ("RTPMIC_DESTINATIONS", "10.0.0.3:5004"),
        ])
        .unwrap_err();
        let lines: Vec<&str> = e.0.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(
            lines,
            [
                "RTPMIC_RTSP_PASSWORD: unknown key; allowed: the keys in `rtpmic --help` and systemd/rtpmic.env",
                "RTPMIC_BITRAT: unknown key; did you mean RTPMIC_BITRATE?",
                "RTPMIC_codec: unknown key; did you mean RTPMIC_CODEC?",
                "RTPMIC_DESTINATIONS: unknown key; allowed: the keys in `rtpmic --help` and systemd/rtpmic.env",
            ]
        );
        // Many unknown keys: a few named, the rest counted; a huge key name is cut.
        let mut pairs: Vec<(String, String)> = (0..1000).map(|i| (format!("RTPMIC_X{i}"), "v".into())).collect();
        pairs.insert(0, (format!("RTPMIC_{}", "Y".repeat(1_000_000)), "v".into()));
        let e = Config::from_pairs(pairs).unwrap_err();
        let unknown: Vec<&str> =
            e.0.iter()
                .map(|e| e.line.as_str())
                .filter(|l| l.contains("unknown key"))
                .collect();
        assert_eq!(unknown.len(), MAX_UNKNOWN_KEYS + 1, "{unknown:#?}");
        assert!(
            unknown[0].starts_with("RTPMIC_YYYY") && unknown[0].len() < 200,
            "{}",
            &unknown[0][..200]
        );
        assert_eq!(unknown[5], "RTPMIC_X4: unknown key, and 995 more unknown keys");
        assert!(is_secret("RTPMIC_SRTP_KEY") && is_secret("RTPMIC_RTSP_Password") && is_secret("RTPMIC_X_SECRET"));
        assert!(!is_secret("RTPMIC_DEST"));
    }

    #[test]
    fn control_characters_in_keys_or_values_are_escaped() {
        let errors = Config::from_pairs([("RTPMIC_DEST", "10.0.0.2:5004"), ("RTPMIC_A\rB\0", "1\n2")]).unwrap_err();
        let text = errors.to_string();
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(text.contains("RTPMIC_A\\rB\\0: unknown key"), "{text}");
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
        assert!(
            text.contains("RTPMIC_CODECC: unknown key; did you mean RTPMIC_CODEC?"),
            "{text}"
        );
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

    #[test]
    fn a_number_too_large_or_negative_is_out_of_range_for_every_integer_key() {
        let integer_keys = [
            "RTPMIC_RATE",
            "RTPMIC_CHANNELS",
            "RTPMIC_CHANNEL",
            "RTPMIC_BITRATE",
            "RTPMIC_OPUS_COMPLEXITY",
            "RTPMIC_OPUS_LOSS_PERCENT",
            "RTPMIC_OPUS_LOSS_MIN_PERCENT",
            "RTPMIC_OPUS_LOSS_MAX_PERCENT",
            "RTPMIC_REDUNDANCY",
            "RTPMIC_RED_PAYLOAD_TYPE",
            "RTPMIC_PAYLOAD_TYPE",
            "RTPMIC_SAP_INTERVAL_S",
            "RTPMIC_RR_LOSS_WARN_PERCENT",
            "RTPMIC_RR_JITTER_WARN_MS",
            "RTPMIC_MAX_DEST",
            "RTPMIC_RESOLVE_INTERVAL_S",
            "RTPMIC_MULTICAST_TTL",
            "RTPMIC_DSCP",
            "RTPMIC_SO_PRIORITY",
            "RTPMIC_SSRC",
            "RTPMIC_RT_PRIORITY",
            "RTPMIC_STATS_INTERVAL_S",
        ];
        for v in ["99999999999999999999", "-1", "-99999999999999999999"] {
            for k in KEYS {
                let Err(e) = cfg(&[(k.name, v)]) else { continue };
                assert!(!e.to_string().contains("not a whole number"), "{}={v}: {e}", k.name);
                if integer_keys.contains(&k.name) {
                    assert!(e.to_string().contains("out of range"), "{}={v}: {e}", k.name);
                }
            }
        }
        for (k, v) in [
            ("RTPMIC_SSRC", "0x1ffffffffffffffffffff"),
            ("RTPMIC_DEST", "10.0.0.1:99999999999999999999"),
            ("RTPMIC_DEST", "10.0.0.1:65536"),
            ("RTPMIC_DEST", "10.0.0.1:0"),
            ("RTPMIC_BIND", "10.0.0.1:70000"),
        ] {
            let e = cfg(&[(k, v)]).unwrap_err().to_string();
            assert!(e.contains("out of range") && !e.contains("not a"), "{k}={v}: {e}");
        }
        for (k, v) in [
            ("RTPMIC_BITRATE", "1e5"),
            ("RTPMIC_SSRC", "0x"),
            ("RTPMIC_DEST", "10.0.0.1:50o4"),
        ] {
            let e = cfg(&[(k, v)]).unwrap_err().to_string();
            assert!(e.contains("not a") && !e.contains("out of range"), "{k}={v}: {e}");
        }
    }

    #[test]
    fn the_last_assignment_wins_and_an_empty_one_resets_to_the_default() {
        let c = cfg(&[
            ("RTPMIC_BITRATE", "12000"),
            ("RTPMIC_BITRATE", ""),
            ("RTPMIC_DSCP", "10"),
            ("RTPMIC_DSCP", "12"),
            ("RTPMIC_SSRC", "7"),
            ("RTPMIC_SSRC", "  "),
        ])
        .unwrap();
        assert_eq!((c.bitrate, c.dscp, c.ssrc), (32_000, 12, None));
        // The same through an env file.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.env");
        std::fs::write(&f, "RTPMIC_DEST=10.0.0.1:5004\nRTPMIC_CODEC=pcmu\nRTPMIC_CODEC=\n").unwrap();
        assert_eq!(Config::from_env_file(&f).unwrap().codec, Codec::Opus);
    }

    #[test]
    fn control_characters_are_refused_in_text_keys() {
        for (k, v) in [
            ("RTPMIC_CNAME", "door\0A"),
            ("RTPMIC_CNAME", "door\tA"),
            ("RTPMIC_CNAME", "door\x7fA"),
            ("RTPMIC_CNAME", "door\u{85}A"),
            ("RTPMIC_DEVICE", "hw:0\x1b[2J"),
            ("RTPMIC_SDP_FILE", "/run/a\nb.sdp"),
            ("RTPMIC_MULTICAST_IF", "eth\x000"),
        ] {
            let e = cfg(&[(k, v)]).unwrap_err();
            assert_eq!(e.0.len(), 1, "{k}={v:?}: {e}");
            let line = &e.0[0].line;
            assert!(line.starts_with(&format!("{k}=")) && line.contains("allowed"), "{line}");
            assert!(!line.contains(char::is_control), "escaped: {line:?}");
        }
        let c = cfg(&[
            ("RTPMIC_CNAME", "Tür A@intercom-7"),
            ("RTPMIC_DEVICE", "plughw:CARD=Device,DEV=0"),
        ])
        .unwrap();
        assert_eq!(c.cname.as_deref(), Some("Tür A@intercom-7"));
    }

    #[test]
    fn a_long_value_is_quoted_in_part_and_one_key_takes_a_few_lines() {
        let long = "1".repeat(1_000_000);
        for k in [
            "RTPMIC_CNAME",
            "RTPMIC_BITRATE",
            "RTPMIC_DEST",
            "RTPMIC_SRTP_KEY",
            "RTPMIC_MULTICAST_IF",
        ] {
            let e = cfg(&[(k, &long), ("RTPMIC_SRTP", "AES_CM_128_HMAC_SHA1_80")]).unwrap_err();
            for line in &e.0 {
                assert!(
                    line.line.len() < 400,
                    "{k}: {} bytes: {}…",
                    line.line.len(),
                    &line.line[..300]
                );
            }
        }
        let e = cfg(&[("RTPMIC_CNAME", &long)]).unwrap_err();
        assert!(
            e.0[0]
                .line
                .starts_with(&format!("RTPMIC_CNAME=\"{}…\": too long", "1".repeat(MAX_SHOWN))),
            "{e}"
        );

        // 4000 duplicates (what a 64 KiB env file holds): 5 lines and a count, each short.
        let dups = vec!["10.0.0.1:5004"; 4000].join(",");
        let e = cfg(&[("RTPMIC_DEST", &dups)]).unwrap_err();
        let lines: Vec<&str> = e.0.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(lines.len(), MAX_LINES_PER_KEY + 1, "{lines:#?}");
        assert!(
            lines[..5]
                .iter()
                .all(|l| l.ends_with(": 10.0.0.1:5004 is listed twice")),
            "{lines:#?}"
        );
        assert_eq!(lines[5], "RTPMIC_DEST: … and 3994 more problems");
        assert!(lines.iter().all(|l| l.len() < 200), "{lines:#?}");
        // The count comes right after the key's last line, before other keys' problems.
        let e = cfg(&[("RTPMIC_DEST", &dups), ("RTPMIC_DSCP", "99")]).unwrap_err();
        assert!(
            e.0[5].line.starts_with("RTPMIC_DEST: … and") && e.0[6].line.starts_with("RTPMIC_DSCP="),
            "{e}"
        );
    }

    #[test]
    fn ipv6_zones_parse_print_back_and_are_checked() {
        let c = cfg(&[(
            "RTPMIC_DEST",
            "[fe80::1%eth0]:5004, [ff02::1%2]:5006,[fe80::1%eth1]:5004",
        )])
        .unwrap();
        assert_eq!(c.dest[0].zone.as_deref(), Some("eth0"));
        assert_eq!(c.dest[0].host, Host::Ip("fe80::1".parse().unwrap()));
        assert_eq!(c.dest[0].to_string(), "[fe80::1%eth0]:5004");
        assert_eq!(c.dest[1].to_string(), "[ff02::1%2]:5006");
        assert_ne!(c.dest[0], c.dest[2], "same address, another interface");
        assert!(cfg(&[("RTPMIC_DEST", "[fe80::1%eth0]:5004,[fe80::1%eth0]:5004")]).is_err());
        // The interface of a destination need not exist yet: it is looked up when resolved.
        assert!(cfg(&[("RTPMIC_DEST", "[fe80::1%usb9]:5004")]).is_ok());
        for (v, why) in [
            ("[2001:db8::1%eth0]:5004", "applies only to link-local"),
            ("[::1%lo]:5004", "applies only to link-local"),
            ("[ff0e::1%eth0]:5004", "applies only to link-local"),
            ("[fe80::1%]:5004", "empty zone"),
            ("[fe80::1%eth/0]:5004", "not an interface name"),
            ("[fe80::1%a b]:5004", "not an interface name"),
            ("[fe80::1%sixteen-bytes-ab]:5004", "not an interface name"),
            ("[fe80::1%eth0%1]:5004", "not an interface name"),
            ("fe80::1%eth0:5004", "brackets"),
        ] {
            let e = cfg(&[("RTPMIC_DEST", v)]).unwrap_err().to_string();
            assert!(e.contains(why), "{v}: {e}");
        }
        // RTPMIC_BIND: the interface is local and must exist; printed back by name.
        let lo = nix::net::if_::if_nametoindex("lo").unwrap();
        let c = cfg(&[("RTPMIC_BIND", "[fe80::1%lo]:6000")]).unwrap();
        assert_eq!(
            c.bind,
            Some(std::net::SocketAddr::V6(std::net::SocketAddrV6::new(
                "fe80::1".parse().unwrap(),
                6000,
                0,
                lo
            )))
        );
        assert!(c.to_env_lines().lines().any(|l| l == "RTPMIC_BIND=[fe80::1%lo]:6000"));
        assert_eq!(
            cfg(&[("RTPMIC_BIND", "fe80::1%lo")]).unwrap().bind.map(|b| b.port()),
            Some(0)
        );
        for (v, why) in [
            ("[fe80::1%nosuch9]:6000", "no network interface \"nosuch9\""),
            ("10.0.0.1%lo:6000", "applies only to IPv6"),
            ("[2001:db8::1%lo]", "applies only to link-local"),
            ("[::1]x", "only :port"),
        ] {
            let e = cfg(&[("RTPMIC_BIND", v)]).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("allowed"), "{v}: {e}");
        }
        // Everything prints back and parses to the same configuration.
        let c = cfg(&[
            ("RTPMIC_DEST", "[fe80::1%eth0]:5004,10.0.0.1:5004"),
            ("RTPMIC_BIND", "[fe80::2%lo]:6000"),
        ])
        .unwrap();
        let lines: Vec<(String, String)> = c
            .to_env_lines()
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();
        assert_eq!(Config::from_pairs(lines).unwrap(), c);
    }

    #[test]
    fn port_65535_needs_rtcp_mux_or_no_rtcp() {
        for (k, v) in [("RTPMIC_BIND", "127.0.0.1:65535"), ("RTPMIC_DEST", "127.0.0.1:65535")] {
            let e = cfg(&[(k, v)]).unwrap_err();
            assert_eq!(e.0.len(), 1, "{e}");
            assert!(
                e.0[0].line.starts_with(&format!("{k}=")) && e.0[0].line.contains("RTCP"),
                "{e}"
            );
            assert!(cfg(&[(k, v), ("RTPMIC_RTCP_MUX", "on")]).is_ok());
            assert!(cfg(&[(k, v), ("RTPMIC_RTCP", "off")]).is_ok());
        }
        // Odd ports stay allowed (RFC 3550 §11's even/odd pairing is a SHOULD).
        assert!(cfg(&[("RTPMIC_BIND", "127.0.0.1:6001"), ("RTPMIC_DEST", "127.0.0.1:5005")]).is_ok());
        assert!(cfg(&[("RTPMIC_BIND", "127.0.0.1:65534"), ("RTPMIC_DEST", "127.0.0.1:65534")]).is_ok());
    }
}
