//! Configuration: `RTPMIC_*` keys → a typed, validated [`Config`].
//!
//! Keys come from the process environment (what systemd's `EnvironmentFile=` gives) or, with
//! `--env-file PATH`, from that file alone (`KEY=value` lines, `#` comments; what is read and
//! the exact syntax: [`env_file`]). The two are never mixed, so what
//! `check-config --env-file F` prints is exactly what `run --env-file F` uses.
//!
//! Every key is defined once, in the table [`KEYS`] (`config/keys.rs`): its documented default
//! and allowed values, whether it is secret, how it is read, where it goes in [`Config`] and
//! how `check-config` prints it. `--help`, `check-config`, reload and the template test all
//! work from that table; how to add a key is in that module's docs. Reading a configuration
//! takes two steps:
//! 1. each key on its own, top to bottom through the table (`config/reader.rs`);
//! 2. the rules that tie keys together, in a fixed order (`config/rules.rs`): the codec's
//!    rate, frame size and payload type, RED's payload type, Opus-only features, the loss
//!    bounds, SRTP with SAP and SSRC, the destination count, ports with no room for RTCP.
//!
//! Rules, decided here and documented in `systemd/rtpmic.env`:
//! * The last assignment of a key wins, and an empty value (`RTPMIC_SSRC=`) means "use the
//!   default", so a later empty assignment resets what an earlier line set. One rule, the
//!   same as systemd's for `EnvironmentFile=` and `Environment=` lines that repeat a key.
//! * Unknown `RTPMIC_*` keys are errors: a typo must not pass silently. The line names the
//!   nearest known key; the value is never printed (a misspelt key may hold a password).
//! * Every problem is reported, one line each, naming the key, the bad value and what is
//!   allowed; nothing is opened or started while any problem remains. Unknown keys come
//!   first, then the problems key by key in table order. A line quotes at most
//!   [`MAX_SHOWN`] characters of any value, one key takes at most [`MAX_LINES_PER_KEY`]
//!   lines plus one that counts the rest, so a hostile file gives a short report, fast.
//! * Secrets (`RTPMIC_SRTP_KEY`, any key whose name holds KEY, PASSWORD or SECRET) never
//!   appear in an error (`"(hidden)"`) nor in `check-config` (`(set)`, `(random)`), and an
//!   env file's text never appears in a syntax error.
//! * Text keys (CNAME, DEVICE, SDP_FILE, MULTICAST_IF) refuse control characters: they go
//!   into RTCP SDES items (RFC 3550 §6.5), log lines and `STATUS=` lines.
//! * Defaults that depend on the codec (RATE, FRAME_MS, PAYLOAD_TYPE) are resolved after CODEC.

mod address;
pub mod env_file;
mod keys;
mod reader;
mod rules;

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

pub use address::{parse_bind, parse_destination};
pub use keys::{Key, KeyDefault, Secret, KEYS};
pub use reader::is_secret;
use reader::{one_line, shown, Parser};

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

/// A setting named by one of a few words (`RTPMIC_CODEC=opus`): read in any case, printed
/// back as listed. The list is the only place a value is spelt.
pub trait Word: Copy + PartialEq + 'static {
    /// Each value with its word.
    const WORDS: &'static [(&'static str, Self)];

    /// The word for this value.
    fn word(self) -> &'static str {
        Self::WORDS.iter().find(|(_, v)| *v == self).map_or("", |(w, _)| w)
    }

    /// The value a word (in any case) names.
    fn from_word(word: &str) -> Option<Self> {
        Self::WORDS
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
            .map(|&(_, v)| v)
    }
}

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

impl Word for Codec {
    const WORDS: &'static [(&'static str, Codec)] = &[
        ("opus", Codec::Opus),
        ("pcmu", Codec::Pcmu),
        ("pcma", Codec::Pcma),
        ("l16", Codec::L16),
    ];
}

impl Codec {
    /// The codec's name in `RTPMIC_CODEC` and in messages.
    pub fn name(self) -> &'static str {
        self.word()
    }

    /// The capture rates (Hz) the codec takes: Opus's five (RFC 7587 §4.1), G.711's 8 kHz
    /// (RFC 3551 §4.5.14), and for L16 the usual rates up to 48 kHz.
    pub fn rates(self) -> &'static [u32] {
        match self {
            Codec::Opus => &[8000, 12000, 16000, 24000, 48000],
            Codec::Pcmu | Codec::Pcma => &[8000],
            Codec::L16 => &[8000, 16000, 24000, 32000, 44100, 48000],
        }
    }

    /// The rate when `RTPMIC_RATE` is unset: Opus's full band, G.711's only rate, full-band
    /// L16.
    pub fn default_rate(self) -> u32 {
        match self {
            Codec::Opus | Codec::L16 => 48_000,
            Codec::Pcmu | Codec::Pcma => 8000,
        }
    }

    /// The frame durations (µs) the codec takes: Opus's frame sizes (RFC 6716 §2.1.4), and
    /// 10..40 ms for the sample codecs.
    pub fn frame_sizes_us(self) -> &'static [u32] {
        match self {
            Codec::Opus => &[2500, 5000, 10_000, 20_000, 40_000, 60_000],
            Codec::Pcmu | Codec::Pcma | Codec::L16 => &[10_000, 20_000, 30_000, 40_000],
        }
    }

    /// The frame duration (µs) when `RTPMIC_FRAME_MS` is unset: 20 ms (RFC 3551's usual
    /// packet time), 10 ms for L16 (a 20 ms frame at 48 kHz would not fit one datagram).
    pub fn default_frame_us(self) -> u32 {
        match self {
            Codec::L16 => 10_000,
            Codec::Opus | Codec::Pcmu | Codec::Pcma => 20_000,
        }
    }

    /// The payload type when `RTPMIC_PAYLOAD_TYPE` is unset: G.711's static ones (RFC 3551
    /// §6), else a dynamic one.
    pub fn default_payload_type(self) -> u8 {
        match self {
            Codec::Opus => 96,
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::L16 => 97,
        }
    }

    /// Whether payload type `pt` may carry this codec at `rate`: any dynamic one (96..127),
    /// or the codec's static one (RFC 3551 §6: PCMU 0, PCMA 8, L16 mono at 44.1 kHz 11).
    pub fn payload_type_fits(self, pt: u8, rate: u32) -> bool {
        (96..=127).contains(&pt)
            || (self == Codec::Pcmu && pt == 0)
            || (self == Codec::Pcma && pt == 8)
            || (self == Codec::L16 && pt == 11 && rate == 44100)
    }
}

/// Opus encoder application mode (`OPUS_APPLICATION_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpusApplication {
    Voip,
    Audio,
    LowDelay,
}

impl Word for OpusApplication {
    const WORDS: &'static [(&'static str, OpusApplication)] = &[
        ("voip", OpusApplication::Voip),
        ("audio", OpusApplication::Audio),
        ("lowdelay", OpusApplication::LowDelay),
    ];
}

/// Sample format the ALSA device is opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleFormat {
    /// Try S16_LE, then S32_LE.
    Auto,
    S16Le,
    S32Le,
}

impl Word for SampleFormat {
    const WORDS: &'static [(&'static str, SampleFormat)] = &[
        ("auto", SampleFormat::Auto),
        ("S16_LE", SampleFormat::S16Le),
        ("S32_LE", SampleFormat::S32Le),
    ];
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

impl Word for Threads {
    const WORDS: &'static [(&'static str, Threads)] = &[
        ("auto", Threads::Auto),
        ("1", Threads::One),
        ("2", Threads::Two),
        ("3", Threads::Three),
    ];
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

impl Word for SenderKind {
    const WORDS: &'static [(&'static str, SenderKind)] = &[
        ("auto", SenderKind::Auto),
        ("io_uring", SenderKind::IoUring),
        ("epoll", SenderKind::Epoll),
    ];
}

/// The interface multicast leaves through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MulticastIf {
    Name(String),
    Addr(IpAddr),
}

/// Which schemes RTSP clients may authenticate with (`RTPMIC_RTSP_AUTH`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtspAuth {
    /// Digest (RFC 7616: SHA-256, and MD5 for old clients).
    Digest,
    /// Digest, and Basic too (the password crosses the network in the clear).
    Basic,
}

impl Word for RtspAuth {
    const WORDS: &'static [(&'static str, RtspAuth)] = &[("digest", RtspAuth::Digest), ("basic", RtspAuth::Basic)];
}

/// The built-in RTSP server (`RTPMIC_RTSP_*`): off while `listen` is `None`.
#[derive(Clone, Debug, PartialEq)]
pub struct RtspSettings {
    pub listen: Option<std::net::SocketAddr>,
    /// The stream's path (`/mic`).
    pub path: String,
    /// Clients at once (peer slots preallocated for them).
    pub max_clients: usize,
    pub session_timeout_s: u32,
    /// The group (and port) multicast clients share.
    pub multicast: Option<std::net::SocketAddr>,
    pub user: Option<String>,
    /// From `RTPMIC_RTSP_PASSWORD`, or read from `RTPMIC_RTSP_PASSWORD_FILE`.
    pub password: Option<crate::rtsp::auth::Password>,
    pub password_file: Option<std::path::PathBuf>,
    pub auth: RtspAuth,
    /// A TCP client whose send buffer stays full this long is disconnected.
    pub tcp_stall_ms: u32,
}

impl RtspSettings {
    /// Whether the server runs.
    pub fn enabled(&self) -> bool {
        self.listen.is_some()
    }
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

impl Word for LogLevel {
    const WORDS: &'static [(&'static str, LogLevel)] = &[
        ("error", LogLevel::Error),
        ("warn", LogLevel::Warn),
        ("info", LogLevel::Info),
        ("debug", LogLevel::Debug),
        ("trace", LogLevel::Trace),
    ];
}

impl LogLevel {
    pub fn name(self) -> &'static str {
        self.word()
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

impl Word for LogTarget {
    const WORDS: &'static [(&'static str, LogTarget)] = &[
        ("auto", LogTarget::Auto),
        ("journald", LogTarget::Journald),
        ("stderr", LogTarget::Stderr),
    ];
}

impl LogTarget {
    pub fn name(self) -> &'static str {
        self.word()
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
    pub rtsp: RtspSettings,
}

impl Config {
    /// What reading starts from: placeholders, not defaults. Every key then sets its field,
    /// to its documented default when unset ([`KeyDefault::Value`]); what a described
    /// default leaves here means "no value" (`None`, no destinations), or is replaced by a
    /// rule (the codec's rate, frame size and payload type).
    fn blank() -> Config {
        Config {
            device: String::new(),
            rate: 0,
            channels: 0,
            channel: ChannelSelect::Index(0),
            sample_format: SampleFormat::Auto,
            codec: Codec::Opus,
            frame_us: 0,
            bitrate: 0,
            opus_complexity: 0,
            opus_application: OpusApplication::Voip,
            opus_fec: false,
            // Auto unless RTPMIC_OPUS_LOSS_PERCENT fixes it; the two bound keys fill it in.
            opus_loss: LossPercent::Auto { min: 0, max: 0 },
            opus_dtx: false,
            redundancy: 0,
            red_payload_type: 0,
            payload_type: 0,
            dest: Vec::new(),
            ssrc: None,
            srtp: None,
            sdp_file: None,
            sap: false,
            sap_interval_s: 0,
            rtcp: false,
            rtcp_mux: false,
            rr_loss_warn_percent: 0,
            rr_jitter_warn_ms: 0,
            cname: None,
            max_dest: 0,
            resolve_interval_s: 0,
            sender: SenderKind::Auto,
            multicast_ttl: 0,
            multicast_if: None,
            multicast_loop: false,
            dscp: 0,
            so_priority: 0,
            bind: None,
            bind_zone: None,
            rt_priority: 0,
            pacing: false,
            threads: Threads::Auto,
            stats_interval_s: 0,
            log_level: LogLevel::Info,
            log_target: LogTarget::Auto,
            rtsp: RtspSettings {
                listen: None,
                path: String::new(),
                max_clients: 0,
                session_timeout_s: 0,
                multicast: None,
                user: None,
                password: None,
                password_file: None,
                auth: RtspAuth::Digest,
                tcp_stall_ms: 0,
            },
        }
    }

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

    /// The effective configuration in env file syntax, one `KEY=value` per line, in table
    /// order; a secret shows only as `(set)` or `(random)`. Without secrets it reads back to
    /// the same configuration; with them, reading it back is refused (a `(set)` is never
    /// taken for the secret).
    pub fn to_env_lines(&self) -> String {
        KEYS.iter()
            .map(|k| format!("{}={}\n", k.name, k.rendered(self)))
            .collect()
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
        parse_with(KEYS, pairs)
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

/// [`Config::from_pairs`] with a key table of its own: [`KEYS`], or in tests a table with a
/// key added. Each key is read, then the rules are applied; every problem is reported.
fn parse_with<I, K, V>(keys: &'static [Key], pairs: I) -> Result<Config, ConfigErrors>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    let mut p = Parser::new(keys, pairs);
    let mut config = Config::blank();
    p.read_keys(&mut config);
    rules::check(&mut p, &mut config);
    let errors = p.finish();
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
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
            ("RTPMIC_SIP_ACCOUNT_PASSWORD", "hunter2"),
            ("RTPMIC_BITRAT", "1"),
            ("RTPMIC_codec", "opus"),
            ("RTPMIC_DESTINATIONS", "10.0.0.3:5004"),
        ])
        .unwrap_err();
        let lines: Vec<&str> = e.0.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(
            lines,
            [
                "RTPMIC_SIP_ACCOUNT_PASSWORD: unknown key; allowed: the keys in `rtpmic --help` and systemd/rtpmic.env",
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
        assert!(
            !is_secret("RTPMIC_DEST") && !is_secret("RTPMIC_RTSP_PASSWORD_FILE"),
            "a file's path is no secret"
        );
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
