//! The key table: every `RTPMIC_*` key, defined once.
//!
//! Each [`Key`] gives what `rtpmic --help` and `systemd/rtpmic.env` document (its default and
//! allowed values), whether its value is a secret, how a value is read ([`Kind`]) and into
//! which [`Config`] field, and how `check-config` prints it back. Everything else follows:
//! * [`Config::from_pairs`] reads the keys top to bottom ([`super::reader`]), then applies the
//!   rules that tie keys together ([`super::rules`]);
//! * [`Config::to_env_lines`] prints one `KEY=value` line per key, in table order;
//! * `rtpmic --help` lists each key with its default and allowed values, in table order;
//! * a reload compares two configurations key by key ([`Key::differs`]);
//! * tests check that the template documents exactly these keys, defaults and allowed texts,
//!   that every value printed reads back to the same configuration, and that each integer
//!   key's range and each word key's words are the ones its allowed text names.
//!
//! # Adding a key
//!
//! A key is one entry here plus its field in [`Config`] (with a placeholder in
//! `Config::blank`), and its block in `systemd/rtpmic.env` (a test says when the block is
//! missing or differs). The `RTPMIC_RTSP_*` entries below show the kinds: an integer with
//! its range (`RTPMIC_RTSP_MAX_CLIENTS`: `Kind::int`, its `allowed` text starting with the
//! range), a text read by its own function (`RTPMIC_RTSP_PATH`: `Kind::Custom`), and a
//! secret (`RTPMIC_RTSP_PASSWORD`: errors show `"(hidden)"`, `check-config` `(set)`, and a
//! reload compares the secrets themselves through `Secret::differs`).
//!
//! A rule that ties the key to others ("RTPMIC_RTSP_PASSWORD needs RTPMIC_RTSP_USER") is a
//! step in [`super::rules`]; a reload decision about it goes in `ops/reload.rs`.

use std::net::IpAddr;
use std::path::PathBuf;

use super::address::{interface_name, parse_bind, parse_destination};
use super::reader::{shown, KeyReader};
use super::{ChannelSelect, Config, LossPercent, MulticastIf, SrtpConfig, Word, MAX_CHANNELS, MAX_DEST_LIMIT};
use KeyDefault::{Described, Value};

/// One key: its documentation, how it is read, where it goes and how it is printed.
#[derive(Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    /// What an unset key means, as `--help` and the template say.
    pub default: KeyDefault,
    /// What the key accepts, as `--help`, the template and every error about it say.
    pub allowed: &'static str,
    /// `Some` for a secret: no error line shows its value (`"(hidden)"`), `check-config`
    /// prints only whether it is set. Every key whose name says KEY, PASSWORD or SECRET must
    /// be one (a test checks).
    pub secret: Option<Secret>,
    /// How a value is read, and into which field.
    pub(crate) kind: Kind,
    /// The effective value as `check-config` prints it; it reads back to the same field
    /// value. Use [`Key::rendered`], which keeps secrets hidden.
    pub(crate) render: fn(&Config) -> String,
}

/// What an unset key means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDefault {
    /// This value, read as if it had been written.
    Value(&'static str),
    /// A description: the field keeps "no value" (`None`: a random SSRC, no SDP file), or a
    /// rule picks the value from other keys (the codec's rate).
    Described(&'static str),
}

impl KeyDefault {
    /// The text `--help` and the template show.
    pub fn text(self) -> &'static str {
        match self {
            Value(t) | Described(t) => t,
        }
    }
}

/// What makes a key secret.
#[derive(Clone, Copy)]
pub struct Secret {
    /// Whether two configurations hold different secrets. The printed value says only
    /// "(set)", so this is how a reload notices a rotated key or password.
    pub differs: fn(&Config, &Config) -> bool,
}

/// How a key's value is read. Each kind refuses a value with the key's allowed text.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// One of the words of a [`Word`] type, in any case: `|c, v| pick(&mut c.codec, v)`.
    Word(fn(&mut Config, &str) -> bool),
    /// `on` or `off`, in any case.
    OnOff(fn(&mut Config, bool)),
    /// A whole number in `lo..=hi`, decimal (and `0x` hex when `hex`). A number outside
    /// (negative, or too large for any integer) is "out of range", anything else "not a whole
    /// number". `set` stores it: `|c, n| fit(&mut c.dscp, n)`.
    Int {
        lo: u64,
        hi: u64,
        hex: bool,
        set: fn(&mut Config, u64),
    },
    /// Text without control characters.
    Text(fn(&mut Config, String)),
    /// Anything else: reads the value into the config, or refuses it through the
    /// [`KeyReader`]. Keys are read top to bottom, so it may look at the fields of the keys
    /// above it (RTPMIC_CHANNEL at RTPMIC_CHANNELS); rules about keys below it are
    /// [`super::rules`]' business.
    Custom(fn(&mut KeyReader<'_>, &mut Config, &str)),
}

impl Kind {
    /// A decimal integer in `lo..=hi`: the common [`Kind::Int`].
    const fn int(lo: u64, hi: u64, set: fn(&mut Config, u64)) -> Kind {
        Kind::Int {
            lo,
            hi,
            hex: false,
            set,
        }
    }
}

impl Key {
    /// The value `check-config` prints for this key. A secret key prints "(set)", "(random)"
    /// or nothing, never the secret, whatever its `render` says.
    pub fn rendered(&self, c: &Config) -> String {
        let text = (self.render)(c);
        match self.secret {
            Some(_) if !matches!(text.as_str(), "" | "(set)" | "(random)") => "(set)".into(),
            _ => text,
        }
    }

    /// Whether this key's effective value differs between two configurations: what
    /// `check-config` prints, and for a secret the secret itself.
    pub fn differs(&self, a: &Config, b: &Config) -> bool {
        (self.render)(a) != (self.render)(b) || self.secret.is_some_and(|s| (s.differs)(a, b))
    }
}

/// Looks `word` up among `T`'s words (any case) and stores its value; false when it is not
/// one of them.
pub(crate) fn pick<T: Word>(field: &mut T, word: &str) -> bool {
    match T::from_word(word) {
        Some(v) => {
            *field = v;
            true
        }
        None => false,
    }
}

/// Stores `n` in an integer field. Each key's range fits its field's type (a test reads `lo`
/// and `hi` of every integer key back), so nothing is ever cut.
pub(crate) fn fit<T: TryFrom<u64>>(field: &mut T, n: u64) {
    if let Ok(v) = T::try_from(n) {
        *field = v;
    }
}

pub(crate) fn on_off(b: bool) -> String {
    if b { "on" } else { "off" }.into()
}

/// How a secret is printed: whether it is set.
pub(crate) fn set_or_not(set: bool) -> String {
    if set { "(set)" } else { "" }.into()
}

/// Every key rtpmic reads, in the order `--help`, `check-config` and `systemd/rtpmic.env`
/// list them.
pub const KEYS: &[Key] = &[
    // Capture
    Key {
        name: "RTPMIC_DEVICE",
        default: Value("default"),
        allowed: "an ALSA PCM name, e.g. default, plughw:1,0, sim (no control characters)",
        secret: None,
        kind: Kind::Text(|c, v| c.device = v),
        render: |c| c.device.clone(),
    },
    Key {
        name: "RTPMIC_RATE",
        default: Described("48000 (opus, l16), 8000 (pcmu, pcma)"),
        allowed: "opus: 8000 12000 16000 24000 48000; pcmu/pcma: 8000; l16: 8000 16000 24000 32000 44100 48000",
        secret: None,
        // Which rates the codec takes, and the default: rules::rate_fits_codec.
        kind: Kind::int(1, 1_000_000, |c, n| fit(&mut c.rate, n)),
        render: |c| c.rate.to_string(),
    },
    Key {
        name: "RTPMIC_CHANNELS",
        default: Value("1"),
        allowed: "1..8 (channels the device is opened with)",
        secret: None,
        kind: Kind::int(1, MAX_CHANNELS as u64, |c, n| fit(&mut c.channels, n)),
        render: |c| c.channels.to_string(),
    },
    Key {
        name: "RTPMIC_CHANNEL",
        default: Value("0"),
        allowed: "0..CHANNELS-1 (the input channel sent) or mix (average of all)",
        secret: None,
        kind: Kind::Custom(read_channel),
        render: |c| match c.channel {
            ChannelSelect::Index(i) => i.to_string(),
            ChannelSelect::Mix => "mix".into(),
        },
    },
    Key {
        name: "RTPMIC_SAMPLE_FORMAT",
        default: Value("auto"),
        allowed: "auto S16_LE S32_LE",
        secret: None,
        kind: Kind::Word(|c, v| pick(&mut c.sample_format, v)),
        render: |c| c.sample_format.word().into(),
    },
    // Codec
    Key {
        name: "RTPMIC_CODEC",
        default: Value("opus"),
        allowed: "opus pcmu pcma l16",
        secret: None,
        kind: Kind::Word(|c, v| pick(&mut c.codec, v)),
        render: |c| c.codec.word().into(),
    },
    Key {
        name: "RTPMIC_FRAME_MS",
        default: Described("20 (opus, pcmu, pcma), 10 (l16)"),
        allowed: "opus: 2.5 5 10 20 40 60; pcmu/pcma/l16: 10 20 30 40 (l16 payload at most 1440 bytes)",
        secret: None,
        // The default and the l16 payload limit: rules::frame_fits_codec.
        kind: Kind::Custom(read_frame_ms),
        render: |c| super::format_frame_ms(c.frame_us),
    },
    Key {
        name: "RTPMIC_BITRATE",
        default: Value("32000"),
        allowed: "6000..510000 bits per second (opus only)",
        secret: None,
        kind: Kind::int(6000, 510_000, |c, n| fit(&mut c.bitrate, n)),
        render: |c| c.bitrate.to_string(),
    },
    Key {
        name: "RTPMIC_OPUS_COMPLEXITY",
        default: Value("10"),
        allowed: "0..10",
        secret: None,
        kind: Kind::int(0, 10, |c, n| fit(&mut c.opus_complexity, n)),
        render: |c| c.opus_complexity.to_string(),
    },
    Key {
        name: "RTPMIC_OPUS_APPLICATION",
        default: Value("voip"),
        allowed: "voip audio lowdelay",
        secret: None,
        kind: Kind::Word(|c, v| pick(&mut c.opus_application, v)),
        render: |c| c.opus_application.word().into(),
    },
    Key {
        name: "RTPMIC_OPUS_FEC",
        default: Value("off"),
        allowed: "on off (Opus in-band FEC, SILK and hybrid modes; frames of 10 ms or more)",
        secret: None,
        kind: Kind::OnOff(|c, b| c.opus_fec = b),
        render: |c| on_off(c.opus_fec),
    },
    Key {
        name: "RTPMIC_OPUS_LOSS_PERCENT",
        default: Value("auto"),
        allowed: "auto (follow receivers' RTCP loss within RTPMIC_OPUS_LOSS_MIN/MAX_PERCENT) or 0..100",
        secret: None,
        kind: Kind::Custom(read_loss_percent),
        render: |c| match c.opus_loss {
            LossPercent::Auto { .. } => "auto".into(),
            LossPercent::Fixed(p) => p.to_string(),
        },
    },
    Key {
        name: "RTPMIC_OPUS_LOSS_MIN_PERCENT",
        default: Value("5"),
        allowed: "0..100",
        secret: None,
        // A bound of auto; unused (and printed empty) with a fixed percent.
        kind: Kind::int(0, 100, |c, n| {
            if let LossPercent::Auto { min, .. } = &mut c.opus_loss {
                fit(min, n);
            }
        }),
        render: |c| match c.opus_loss {
            LossPercent::Auto { min, .. } => min.to_string(),
            LossPercent::Fixed(_) => String::new(),
        },
    },
    Key {
        name: "RTPMIC_OPUS_LOSS_MAX_PERCENT",
        default: Value("30"),
        allowed: "0..100, at least RTPMIC_OPUS_LOSS_MIN_PERCENT",
        secret: None,
        // At least the minimum: rules::loss_bounds.
        kind: Kind::int(0, 100, |c, n| {
            if let LossPercent::Auto { max, .. } = &mut c.opus_loss {
                fit(max, n);
            }
        }),
        render: |c| match c.opus_loss {
            LossPercent::Auto { max, .. } => max.to_string(),
            LossPercent::Fixed(_) => String::new(),
        },
    },
    Key {
        name: "RTPMIC_OPUS_DTX",
        default: Value("off"),
        allowed: "on off (no packets during silence, RFC 7587 §3.3)",
        secret: None,
        kind: Kind::OnOff(|c, b| c.opus_dtx = b),
        render: |c| on_off(c.opus_dtx),
    },
    Key {
        name: "RTPMIC_REDUNDANCY",
        default: Value("0"),
        allowed: "0..3 previous frames repeated in each packet (RFC 2198 RED; for 2.5-5 ms frames)",
        secret: None,
        kind: Kind::int(0, 3, |c, n| fit(&mut c.redundancy, n)),
        render: |c| c.redundancy.to_string(),
    },
    Key {
        name: "RTPMIC_RED_PAYLOAD_TYPE",
        default: Value("121"),
        allowed: "96..127, not RTPMIC_PAYLOAD_TYPE",
        secret: None,
        // Not the stream's own: rules::red_payload_type_differs.
        kind: Kind::int(96, 127, |c, n| fit(&mut c.red_payload_type, n)),
        render: |c| c.red_payload_type.to_string(),
    },
    Key {
        name: "RTPMIC_PAYLOAD_TYPE",
        default: Described("96 (opus), 0 (pcmu), 8 (pcma), 97 (l16)"),
        allowed: "96..127; also 0 for pcmu, 8 for pcma, 11 for l16 at 44100 Hz",
        secret: None,
        // Which the codec takes, and the default: rules::payload_type_fits_codec.
        kind: Kind::int(0, 127, |c, n| fit(&mut c.payload_type, n)),
        render: |c| c.payload_type.to_string(),
    },
    // Network
    Key {
        name: "RTPMIC_DEST",
        default: Described("(none, required)"),
        allowed: "comma list of host:port, IPv6 as [addr]:port (link-local with its interface: [fe80::1%eth0]:port), at most RTPMIC_MAX_DEST; port 1..65535 (65535 only with RTPMIC_RTCP_MUX=on or RTPMIC_RTCP=off: RTCP goes to port + 1)",
        secret: None,
        // Required, at most RTPMIC_MAX_DEST, port 65535: rules.
        kind: Kind::Custom(read_dest),
        render: |c| {
            let dest: Vec<String> = c.dest.iter().map(|d| d.to_string()).collect();
            dest.join(",")
        },
    },
    Key {
        name: "RTPMIC_SDP_FILE",
        default: Described("(none)"),
        allowed: "an absolute path; the SDP for the first RTPMIC_DEST entry is written there at start",
        secret: None,
        kind: Kind::Custom(read_sdp_file),
        render: |c| c.sdp_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
    },
    Key {
        name: "RTPMIC_SAP",
        default: Value("off"),
        allowed: "on off (announce the SDP by SAP, RFC 2974, on the first destination's scope)",
        secret: None,
        // Not with SRTP: rules::srtp.
        kind: Kind::OnOff(|c, b| c.sap = b),
        render: |c| on_off(c.sap),
    },
    Key {
        name: "RTPMIC_SAP_INTERVAL_S",
        default: Value("30"),
        allowed: "5..3600 seconds between SAP announcements",
        secret: None,
        kind: Kind::int(5, 3600, |c, n| fit(&mut c.sap_interval_s, n)),
        render: |c| c.sap_interval_s.to_string(),
    },
    Key {
        name: "RTPMIC_RTCP",
        default: Value("on"),
        allowed: "on off (RTCP sender reports, RFC 3550)",
        secret: None,
        kind: Kind::OnOff(|c, b| c.rtcp = b),
        render: |c| on_off(c.rtcp),
    },
    Key {
        name: "RTPMIC_RR_LOSS_WARN_PERCENT",
        default: Value("5"),
        allowed: "0..100 (warn when a receiver reports more loss; at most once a minute each)",
        secret: None,
        kind: Kind::int(0, 100, |c, n| fit(&mut c.rr_loss_warn_percent, n)),
        render: |c| c.rr_loss_warn_percent.to_string(),
    },
    Key {
        name: "RTPMIC_RR_JITTER_WARN_MS",
        default: Value("30"),
        allowed: "0..10000 (warn when a receiver reports more jitter; at most once a minute each)",
        secret: None,
        kind: Kind::int(0, 10_000, |c, n| fit(&mut c.rr_jitter_warn_ms, n)),
        render: |c| c.rr_jitter_warn_ms.to_string(),
    },
    Key {
        name: "RTPMIC_RTCP_MUX",
        default: Value("off"),
        allowed: "on off (on: RTCP on the RTP port, RFC 5761; off: port + 1)",
        secret: None,
        kind: Kind::OnOff(|c, b| c.rtcp_mux = b),
        render: |c| on_off(c.rtcp_mux),
    },
    Key {
        name: "RTPMIC_CNAME",
        default: Described("rtpmic@HOSTNAME"),
        allowed: "1..255 bytes of text, no control characters (RTCP SDES CNAME, RFC 3550 §6.5.1)",
        secret: None,
        kind: Kind::Custom(read_cname),
        render: |c| c.cname.clone().unwrap_or_default(),
    },
    Key {
        name: "RTPMIC_MAX_DEST",
        default: Value("64"),
        allowed: "1..1024 (destinations preallocated)",
        secret: None,
        kind: Kind::int(1, MAX_DEST_LIMIT as u64, |c, n| fit(&mut c.max_dest, n)),
        render: |c| c.max_dest.to_string(),
    },
    Key {
        name: "RTPMIC_RESOLVE_INTERVAL_S",
        default: Value("300"),
        allowed: "0..86400 seconds between host name lookups (0 = only at start and after failures)",
        secret: None,
        kind: Kind::int(0, 86_400, |c, n| fit(&mut c.resolve_interval_s, n)),
        render: |c| c.resolve_interval_s.to_string(),
    },
    Key {
        name: "RTPMIC_SENDER",
        default: Value("auto"),
        allowed: "auto io_uring epoll",
        secret: None,
        kind: Kind::Word(|c, v| pick(&mut c.sender, v)),
        render: |c| c.sender.word().into(),
    },
    Key {
        name: "RTPMIC_MULTICAST_TTL",
        default: Value("16"),
        allowed: "0..255",
        secret: None,
        kind: Kind::int(0, 255, |c, n| fit(&mut c.multicast_ttl, n)),
        render: |c| c.multicast_ttl.to_string(),
    },
    Key {
        name: "RTPMIC_MULTICAST_IF",
        default: Described("(routing table)"),
        allowed: "an interface name (eth0) or a local address",
        secret: None,
        kind: Kind::Custom(read_multicast_if),
        render: |c| match &c.multicast_if {
            None => String::new(),
            Some(MulticastIf::Name(n)) => n.clone(),
            Some(MulticastIf::Addr(a)) => a.to_string(),
        },
    },
    Key {
        name: "RTPMIC_MULTICAST_LOOP",
        default: Value("off"),
        allowed: "on off",
        secret: None,
        kind: Kind::OnOff(|c, b| c.multicast_loop = b),
        render: |c| on_off(c.multicast_loop),
    },
    Key {
        name: "RTPMIC_DSCP",
        default: Value("46"),
        allowed: "0..63 (46 = EF, RFC 4594 telephony)",
        secret: None,
        kind: Kind::int(0, 63, |c, n| fit(&mut c.dscp, n)),
        render: |c| c.dscp.to_string(),
    },
    Key {
        name: "RTPMIC_SO_PRIORITY",
        default: Value("6"),
        allowed: "0..6 (Linux SO_PRIORITY; 6 = Wi-Fi voice queue)",
        secret: None,
        kind: Kind::int(0, 6, |c, n| fit(&mut c.so_priority, n)),
        render: |c| c.so_priority.to_string(),
    },
    Key {
        name: "RTPMIC_BIND",
        default: Described("(any)"),
        allowed: "a local address, address:port or [IPv6]:port to send from (link-local with its interface: [fe80::1%eth0]:port); port 0 (any) or 1..65535 (65535 only with RTPMIC_RTCP_MUX=on or RTPMIC_RTCP=off: RTCP uses port + 1)",
        secret: None,
        // Port 65535: rules::rtcp_port_room.
        kind: Kind::Custom(read_bind),
        render: render_bind,
    },
    Key {
        name: "RTPMIC_SRTP",
        default: Value("off"),
        allowed: "off AES_CM_128_HMAC_SHA1_80 AES_CM_128_HMAC_SHA1_32 (RFC 3711 SRTP and SRTCP)",
        secret: None,
        kind: Kind::Custom(read_srtp),
        render: |c| c.srtp.as_ref().map_or("off", |s| s.profile.sdp_name()).into(),
    },
    Key {
        name: "RTPMIC_SRTP_KEY",
        default: Described("(random at each start, published in RTPMIC_SDP_FILE and to authenticated RTSP clients)"),
        allowed: "base64 of 30 bytes (16-byte master key + 14-byte salt, RFC 4568 inline: key)",
        secret: Some(Secret {
            differs: srtp_key_rotated,
        }),
        // Made at random when unset, never with SAP, no fixed SSRC with it: rules::srtp.
        kind: Kind::Custom(read_srtp_key),
        render: |c| match &c.srtp {
            None => String::new(),
            Some(s) if s.random_key => "(random)".into(),
            Some(_) => set_or_not(true),
        },
    },
    Key {
        name: "RTPMIC_SSRC",
        default: Described("(random)"),
        allowed: "0..4294967295, decimal or 0x hex",
        secret: None,
        kind: Kind::Int {
            lo: 0,
            hi: u32::MAX as u64,
            hex: true,
            set: |c, n| c.ssrc = u32::try_from(n).ok(),
        },
        render: |c| c.ssrc.map(|s| s.to_string()).unwrap_or_default(),
    },
    // RTSP server
    Key {
        name: "RTPMIC_RTSP_LISTEN",
        default: Described("(off)"),
        allowed: "address:port to serve RTSP on (RFC 2326), e.g. 0.0.0.0:8554 or [::]:8554; then RTPMIC_DEST may be empty",
        secret: None,
        kind: Kind::Custom(read_rtsp_listen),
        render: |c| c.rtsp.listen.map(|a| a.to_string()).unwrap_or_default(),
    },
    Key {
        name: "RTPMIC_RTSP_PATH",
        default: Value("/mic"),
        allowed: "a path of at most 255 bytes starting with / of letters, digits and - _ . / (rtsp://board:8554/mic)",
        secret: None,
        kind: Kind::Custom(read_rtsp_path),
        render: |c| c.rtsp.path.clone(),
    },
    Key {
        name: "RTPMIC_RTSP_MAX_CLIENTS",
        default: Value("16"),
        allowed: "1..256 RTSP clients at once (preallocated)",
        secret: None,
        kind: Kind::int(1, 256, |c, n| fit(&mut c.rtsp.max_clients, n)),
        render: |c| c.rtsp.max_clients.to_string(),
    },
    Key {
        name: "RTPMIC_RTSP_SESSION_TIMEOUT_S",
        default: Value("60"),
        allowed: "10..3600 seconds an RTSP session lives without a request or an RTCP report",
        secret: None,
        kind: Kind::int(10, 3600, |c, n| fit(&mut c.rtsp.session_timeout_s, n)),
        render: |c| c.rtsp.session_timeout_s.to_string(),
    },
    Key {
        name: "RTPMIC_RTSP_MULTICAST",
        default: Described("(none: multicast clients are refused)"),
        allowed: "a multicast group:port every RTSP multicast client shares, e.g. 239.255.12.1:5010 or [ff15::12]:5010 (port 1..65534: RTCP uses port + 1)",
        secret: None,
        kind: Kind::Custom(read_rtsp_multicast),
        render: |c| c.rtsp.multicast.map(|a| a.to_string()).unwrap_or_default(),
    },
    Key {
        name: "RTPMIC_RTSP_USER",
        default: Described("(none: anyone may pull the stream)"),
        allowed: "1..64 bytes of text without control characters or ':' (with RTPMIC_RTSP_PASSWORD or _FILE)",
        secret: None,
        kind: Kind::Custom(read_rtsp_user),
        render: |c| c.rtsp.user.clone().unwrap_or_default(),
    },
    Key {
        name: "RTPMIC_RTSP_PASSWORD",
        default: Described("(none)"),
        allowed: "1..255 bytes of text without control characters (or RTPMIC_RTSP_PASSWORD_FILE)",
        secret: Some(Secret {
            differs: |a, b| a.rtsp.password != b.rtsp.password,
        }),
        kind: Kind::Custom(read_rtsp_password),
        render: |c| set_or_not(c.rtsp.password.is_some() && c.rtsp.password_file.is_none()),
    },
    Key {
        name: "RTPMIC_RTSP_PASSWORD_FILE",
        default: Described("(none)"),
        allowed: "an absolute path to a regular file of at most 4 KiB holding the password (one line; read at start and on SIGHUP)",
        secret: None,
        // Read, and exclusive with RTPMIC_RTSP_PASSWORD: rules::rtsp_access.
        kind: Kind::Custom(read_rtsp_password_file),
        render: |c| c.rtsp.password_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
    },
    Key {
        name: "RTPMIC_RTSP_AUTH",
        default: Value("digest"),
        allowed: "digest basic (digest: RFC 7616 SHA-256 and MD5; basic: Basic too, the password in the clear)",
        secret: None,
        kind: Kind::Word(|c, v| pick(&mut c.rtsp.auth, v)),
        render: |c| c.rtsp.auth.word().into(),
    },
    Key {
        name: "RTPMIC_RTSP_TCP_STALL_MS",
        default: Value("2000"),
        allowed: "100..60000 ms a TCP client may leave its send buffer full before it is disconnected",
        secret: None,
        kind: Kind::int(100, 60_000, |c, n| fit(&mut c.rtsp.tcp_stall_ms, n)),
        render: |c| c.rtsp.tcp_stall_ms.to_string(),
    },
    // Operation
    Key {
        name: "RTPMIC_PACING",
        default: Value("off"),
        allowed: "on off (send each packet a fixed, self-tuned time after its capture: even intervals, a few hundred µs more latency)",
        secret: None,
        kind: Kind::OnOff(|c, b| c.pacing = b),
        render: |c| on_off(c.pacing),
    },
    Key {
        name: "RTPMIC_THREADS",
        default: Value("auto"),
        allowed: "auto 1 2 3 (real-time threads: 1 = all in one, 2 = capture | encode+send, 3 = capture | encode | send; auto = 1, or 3 above 8 destinations)",
        secret: None,
        kind: Kind::Word(|c, v| pick(&mut c.threads, v)),
        render: |c| c.threads.word().into(),
    },
    Key {
        name: "RTPMIC_RT_PRIORITY",
        default: Value("50"),
        allowed: "0..99 (SCHED_RR priority of the real-time threads; 0 = normal scheduling, memory not locked)",
        secret: None,
        kind: Kind::int(0, 99, |c, n| fit(&mut c.rt_priority, n)),
        render: |c| c.rt_priority.to_string(),
    },
    Key {
        name: "RTPMIC_STATS_INTERVAL_S",
        default: Value("60"),
        allowed: "0..86400 seconds (0 = only at exit)",
        secret: None,
        kind: Kind::int(0, 86_400, |c, n| fit(&mut c.stats_interval_s, n)),
        render: |c| c.stats_interval_s.to_string(),
    },
    Key {
        name: "RTPMIC_LOG_LEVEL",
        default: Value("info"),
        allowed: "error warn info debug trace",
        secret: None,
        kind: Kind::Word(|c, v| pick(&mut c.log_level, v)),
        render: |c| c.log_level.word().into(),
    },
    Key {
        name: "RTPMIC_LOG_TARGET",
        default: Value("auto"),
        allowed: "auto (journald when systemd connected stderr to the journal) journald stderr",
        secret: None,
        kind: Kind::Word(|c, v| pick(&mut c.log_target, v)),
        render: |c| c.log_target.word().into(),
    },
];

/// `RTPMIC_CHANNEL`: an input channel below `RTPMIC_CHANNELS` (read above), or `mix`.
fn read_channel(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    if v.eq_ignore_ascii_case("mix") {
        c.channel = ChannelSelect::Mix;
        return;
    }
    if let Ok(i) = v.parse::<u32>() {
        if i < c.channels {
            c.channel = ChannelSelect::Index(i);
            return;
        }
    }
    let number = v.bytes().all(|b| b.is_ascii_digit())
        || v.strip_prefix('-')
            .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()));
    let what = if number { "out of range; " } else { "" };
    let channels = c.channels;
    r.refuse(&format!(
        "{what}allowed: 0..{} (RTPMIC_CHANNELS={channels}) or mix",
        channels.saturating_sub(1)
    ));
}

/// `RTPMIC_FRAME_MS`: milliseconds ("20", "2.5") among the sizes `RTPMIC_CODEC` (read above)
/// takes; the message names that codec and its sizes.
fn read_frame_ms(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    let sizes = c.codec.frame_sizes_us();
    match parse_ms(v).filter(|us| sizes.contains(us)) {
        Some(us) => c.frame_us = us,
        None => {
            let list: Vec<String> = sizes.iter().map(|&us| super::format_frame_ms(us)).collect();
            r.refuse(&format!(
                "not a frame size {} accepts; allowed: {}",
                c.codec.name(),
                list.join(" ")
            ));
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

/// `RTPMIC_OPUS_LOSS_PERCENT`: `auto` keeps [`LossPercent::Auto`] (what `Config::blank`
/// starts with), whose bounds the two keys below fill in; a number fixes the percent.
fn read_loss_percent(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    if v.eq_ignore_ascii_case("auto") {
        return;
    }
    if let Some(p) = r.int(v, 0, 100, false).and_then(|p| u8::try_from(p).ok()) {
        c.opus_loss = LossPercent::Fixed(p);
    }
}

/// `RTPMIC_DEST`: a comma list. Duplicates are found with a hash set (linear time), and each
/// problem quotes only the entry it is about, cut to [`super::MAX_SHOWN`].
fn read_dest(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    let mut seen = std::collections::HashSet::new();
    for item in v.split(',').map(str::trim) {
        match parse_destination(item) {
            Ok(d) if !seen.insert(d.clone()) => r.refuse(&format!("{} is listed twice", shown(item))),
            Ok(d) => c.dest.push(d),
            Err(why) => r.refuse(&format!(
                "{:?}: {why}; allowed: host:port or [IPv6]:port ([fe80::1%eth0]:port for link-local), port 1..65535",
                shown(item)
            )),
        }
    }
}

/// `RTPMIC_SDP_FILE`: text, an absolute path (the service's working directory is not the
/// operator's).
fn read_sdp_file(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    let Some(text) = r.text(v) else { return };
    let path = PathBuf::from(text);
    if path.is_absolute() {
        c.sdp_file = Some(path);
    } else {
        r.refuse(&format!("not absolute; allowed: {}", r.allowed()));
    }
}

/// `RTPMIC_CNAME`: text of at most 255 bytes, since an SDES item's length is one octet
/// (RFC 3550 §6.5).
fn read_cname(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    let Some(text) = r.text(v) else { return };
    if text.len() > 255 {
        r.refuse(&format!("too long; allowed: {}", r.allowed()));
    } else {
        c.cname = Some(text);
    }
}

/// `RTPMIC_MULTICAST_IF`: a local address (IPv6 with or without brackets), else an
/// interface name.
fn read_multicast_if(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    if let Ok(ip) = v.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        c.multicast_if = Some(MulticastIf::Addr(ip));
    } else if interface_name(v) {
        c.multicast_if = Some(MulticastIf::Name(v.to_string()));
    } else {
        r.refuse(&format!("allowed: {}", r.allowed()));
    }
}

/// `RTPMIC_BIND`: the address, and the zone it was written with ([`parse_bind`]).
fn read_bind(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    match parse_bind(v) {
        Ok((addr, zone)) => {
            c.bind = Some(addr);
            c.bind_zone = zone;
        }
        Err(why) => r.refuse(&format!("{why}; allowed: {}", r.allowed())),
    }
}

/// `RTPMIC_BIND` as written: the address, a zone by the name it was given, the port.
fn render_bind(c: &Config) -> String {
    match (c.bind, &c.bind_zone) {
        (None, _) => String::new(),
        (Some(std::net::SocketAddr::V6(a)), Some(z)) => format!("[{}%{z}]:{}", a.ip(), a.port()),
        (Some(a), _) => a.to_string(),
    }
}

/// `RTPMIC_SRTP`: `off` or a profile name, in any case. A profile starts with a key marked
/// random, all zeros until `rules::srtp` makes it, unless `RTPMIC_SRTP_KEY` (read next)
/// gives one.
fn read_srtp(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    use crate::rtp::srtp::{MasterKey, Profile, SDES_KEY_LEN};
    if v.eq_ignore_ascii_case("off") {
        c.srtp = None;
    } else if let Some(profile) = Profile::from_sdp_name(&v.to_ascii_uppercase()) {
        c.srtp = Some(SrtpConfig {
            profile,
            key: MasterKey::from_bytes(&[0; SDES_KEY_LEN]),
            random_key: true,
        });
    } else {
        r.refuse(&format!("allowed: {}", r.allowed()));
    }
}

/// `RTPMIC_SRTP_KEY`: the master key for the profile `RTPMIC_SRTP` (read above) chose; left
/// alone while SRTP is off (`rules::srtp_key_needs_srtp` says so). A key that does not
/// decode turns SRTP off, so no rule reports on a stream that cannot start anyway.
fn read_srtp_key(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    let Some(srtp) = &mut c.srtp else { return };
    match crate::rtp::srtp::MasterKey::from_sdes_inline(v) {
        Ok(key) => {
            srtp.key = key;
            srtp.random_key = false;
        }
        Err(e) => {
            c.srtp = None;
            r.refuse(&format!("{e}; allowed: {}", r.allowed()));
        }
    }
}

/// `RTPMIC_RTSP_LISTEN`: an address and port (IPv6 in brackets); port 0 is refused (clients
/// need to know it).
fn read_rtsp_listen(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    match v.parse::<std::net::SocketAddr>() {
        Ok(a) if a.port() != 0 => c.rtsp.listen = Some(a),
        Ok(_) => r.refuse(&format!("port 0; allowed: {}", r.allowed())),
        Err(_) => r.refuse(&format!("allowed: {}", r.allowed())),
    }
}

/// `RTPMIC_RTSP_PATH`: what clients put after host:port; a plain path, so a URL never needs
/// escaping.
fn read_rtsp_path(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    let plain =
        v.len() <= 255 && v.starts_with('/') && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if plain {
        c.rtsp.path = v.to_string();
    } else {
        r.refuse(&format!("allowed: {}", r.allowed()));
    }
}

/// `RTPMIC_RTSP_MULTICAST`: a multicast group and a port with room for RTCP above it.
fn read_rtsp_multicast(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    match v.parse::<std::net::SocketAddr>() {
        Ok(a) if a.ip().is_multicast() && a.port() != 0 && a.port() < u16::MAX => c.rtsp.multicast = Some(a),
        Ok(a) if !a.ip().is_multicast() => r.refuse(&format!("not a multicast address; allowed: {}", r.allowed())),
        _ => r.refuse(&format!("allowed: {}", r.allowed())),
    }
}

/// `RTPMIC_RTSP_USER`: text without ':' (Basic joins user and password with one, RFC 7617
/// §2).
fn read_rtsp_user(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    let Some(text) = r.text(v) else { return };
    if text.len() > 64 || text.contains(':') {
        r.refuse(&format!("allowed: {}", r.allowed()));
    } else {
        c.rtsp.user = Some(text);
    }
}

/// `RTPMIC_RTSP_PASSWORD`: text of at most 255 bytes (never shown: a secret).
fn read_rtsp_password(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    let Some(text) = r.text(v) else { return };
    if text.len() > 255 {
        r.refuse(&format!("too long; allowed: {}", r.allowed()));
    } else if text == set_or_not(true) {
        // `check-config` output read back: the password itself was left out.
        r.refuse("is what check-config shows in place of the password; write the password itself");
    } else {
        c.rtsp.password = Some(crate::rtsp::auth::Password::new(text));
    }
}

/// `RTPMIC_RTSP_PASSWORD_FILE`: an absolute path; the file is read by
/// `rules::rtsp_access`.
fn read_rtsp_password_file(r: &mut KeyReader<'_>, c: &mut Config, v: &str) {
    let Some(text) = r.text(v) else { return };
    let path = PathBuf::from(text);
    if path.is_absolute() {
        c.rtsp.password_file = Some(path);
    } else {
        r.refuse(&format!("not absolute; allowed: {}", r.allowed()));
    }
}

/// Whether a fixed SRTP master key was replaced by another. The key prints only as "(set)",
/// so a rotated key is compared here, never printed. Turning SRTP on or off, or switching
/// between a fixed and a random key, shows in the printed value already; two random keys are
/// the same setting (each start makes its own).
fn srtp_key_rotated(old: &Config, new: &Config) -> bool {
    match (&old.srtp, &new.srtp) {
        (Some(a), Some(b)) => !a.random_key && !b.random_key && a.key != b.key,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{is_secret, parse_with, Codec, ConfigErrors, LogLevel, LogTarget, OpusApplication};
    use super::super::{SampleFormat, SenderKind, Threads};
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        let mut v = vec![("RTPMIC_DEST", "127.0.0.1:5004")];
        v.extend_from_slice(pairs);
        Config::from_pairs(v)
    }

    fn key(name: &str) -> &'static Key {
        KEYS.iter().find(|k| k.name == name).unwrap()
    }

    #[test]
    fn names_are_unique_and_secret_names_are_secret() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(k.name.starts_with("RTPMIC_"), "{}", k.name);
            assert!(!KEYS[..i].iter().any(|o| o.name == k.name), "{} twice", k.name);
            if is_secret(k.name) {
                assert!(k.secret.is_some(), "{} is named like a secret: mark it secret", k.name);
            }
        }
    }

    /// An unset key prints its documented default when that is a value, and nothing when the
    /// default is "no value"; the codec's keys print the value their default names for each
    /// codec ("48000 (opus, l16), 8000 (pcmu, pcma)").
    #[test]
    fn unset_keys_print_their_documented_defaults() {
        let c = cfg(&[]).unwrap();
        let by_codec = ["RTPMIC_RATE", "RTPMIC_FRAME_MS", "RTPMIC_PAYLOAD_TYPE"];
        for k in KEYS {
            match k.default {
                Value(v) => assert_eq!(k.rendered(&c), v, "{}", k.name),
                Described(_) if k.name == "RTPMIC_DEST" || by_codec.contains(&k.name) => {}
                Described(_) => assert_eq!(k.rendered(&c), "", "{}", k.name),
            }
        }
        for k in by_codec {
            for group in key(k).default.text().split("), ") {
                let (value, codecs) = group.split_once(" (").unwrap();
                for codec in codecs.trim_end_matches(')').split(", ") {
                    let c = cfg(&[("RTPMIC_CODEC", codec)]).unwrap();
                    assert_eq!(key(k).rendered(&c), value, "{k} for {codec}");
                }
            }
        }
    }

    /// What the allowed text says is what is read: an integer key's text starts with its
    /// range, and both ends print back as read (they fit the field); a word key's text lists
    /// its words (parenthesised remarks aside), each read and printed back as written; an
    /// on/off key's starts with "on off".
    #[test]
    fn allowed_texts_name_what_is_read() {
        fn words<T: Word>() -> Vec<&'static str> {
            T::WORDS.iter().map(|(w, _)| *w).collect()
        }
        let word_keys = [
            ("RTPMIC_SAMPLE_FORMAT", words::<SampleFormat>()),
            ("RTPMIC_CODEC", words::<Codec>()),
            ("RTPMIC_OPUS_APPLICATION", words::<OpusApplication>()),
            ("RTPMIC_SENDER", words::<SenderKind>()),
            ("RTPMIC_THREADS", words::<Threads>()),
            ("RTPMIC_LOG_LEVEL", words::<LogLevel>()),
            ("RTPMIC_LOG_TARGET", words::<LogTarget>()),
            ("RTPMIC_RTSP_AUTH", words::<super::super::RtspAuth>()),
        ];
        // The codecs narrow these two; their texts are checked against the codecs below.
        let narrowed = ["RTPMIC_RATE", "RTPMIC_PAYLOAD_TYPE"];
        let mut c = cfg(&[]).unwrap();
        for k in KEYS {
            match k.kind {
                Kind::Int { lo, hi, set, .. } => {
                    let range = format!("{lo}..{hi}");
                    assert!(
                        narrowed.contains(&k.name) || k.allowed.starts_with(&range),
                        "{}",
                        k.name
                    );
                    for n in [lo, hi] {
                        c.opus_loss = LossPercent::Auto { min: 0, max: 0 };
                        set(&mut c, n);
                        assert_eq!(k.rendered(&c), n.to_string(), "{}", k.name);
                    }
                }
                Kind::OnOff(_) => assert!(k.allowed.starts_with("on off"), "{}", k.name),
                Kind::Word(_) => {
                    let mut listed = String::new();
                    let mut depth = 0;
                    for ch in k.allowed.chars() {
                        match ch {
                            '(' => depth += 1,
                            ')' => depth -= 1,
                            _ if depth == 0 => listed.push(ch),
                            _ => {}
                        }
                    }
                    let listed: Vec<&str> = listed.split_whitespace().collect();
                    let (_, words) = word_keys.iter().find(|(n, _)| *n == k.name).unwrap();
                    assert_eq!(&listed, words, "{}", k.name);
                    for w in words {
                        assert_eq!(k.rendered(&cfg(&[(k.name, w)]).unwrap()), *w, "{}", k.name);
                    }
                }
                Kind::Text(_) | Kind::Custom(_) => {}
            }
        }
        assert_eq!(
            word_keys.len(),
            KEYS.iter().filter(|k| matches!(k.kind, Kind::Word(_))).count()
        );
        // "opus: 8000 12000 …; pcmu/pcma: 8000; l16: …": each codec's list is the one it takes.
        for codec in [Codec::Opus, Codec::Pcmu, Codec::Pcma, Codec::L16] {
            let rates: Vec<String> = codec.rates().iter().map(u32::to_string).collect();
            let frames: Vec<String> = codec
                .frame_sizes_us()
                .iter()
                .map(|&us| super::super::format_frame_ms(us))
                .collect();
            for (k, list) in [("RTPMIC_RATE", rates), ("RTPMIC_FRAME_MS", frames)] {
                let group = key(k)
                    .allowed
                    .split("; ")
                    .find(|g| g.split(':').next().unwrap().split('/').any(|n| n == codec.name()))
                    .unwrap();
                let named = group.split(": ").nth(1).unwrap().split(" (").next().unwrap();
                assert_eq!(named, list.join(" "), "{k} for {}", codec.name());
            }
        }
    }

    /// A secret key shows "(hidden)" in errors and "(set)" in check-config, even when its
    /// renderer is careless, and a reload notices a changed secret: what adding a key such as
    /// RTPMIC_RTSP_PASSWORD relies on. The test key stores into an existing field.
    #[test]
    fn a_new_secret_key_is_one_entry() {
        let mut keys = KEYS.to_vec();
        keys.push(Key {
            name: "RTPMIC_TEST_PASSWORD",
            default: Described("(none)"),
            allowed: "text",
            secret: Some(Secret {
                differs: |a, b| a.cname != b.cname,
            }),
            kind: Kind::Text(|c, v| c.cname = Some(v)),
            render: |c| c.cname.clone().unwrap_or_default(),
        });
        let keys: &'static [Key] = Vec::leak(keys);
        let read = |pw: &str| parse_with(keys, [("RTPMIC_DEST", "127.0.0.1:5004"), ("RTPMIC_TEST_PASSWORD", pw)]);
        let e = read("hunter\x072").unwrap_err().to_string();
        assert_eq!(
            e,
            "config: RTPMIC_TEST_PASSWORD=\"(hidden)\": contains a control character; allowed: text"
        );
        let (a, b) = (read("hunter2").unwrap(), read("hunter3").unwrap());
        let new = keys.last().unwrap();
        assert_eq!((new.rendered(&a), new.rendered(&b)), ("(set)".into(), "(set)".into()));
        assert!(new.differs(&a, &b) && !new.differs(&a, &a.clone()));
        // An integer key: read, printed, its default applied when unset.
        let mut keys = KEYS.to_vec();
        keys.push(Key {
            name: "RTPMIC_TEST_MAX_CLIENTS",
            default: Value("8"),
            allowed: "1..64",
            secret: None,
            kind: Kind::int(1, 64, |c, n| fit(&mut c.rr_jitter_warn_ms, n)),
            render: |c| c.rr_jitter_warn_ms.to_string(),
        });
        let keys: &'static [Key] = Vec::leak(keys);
        let c = parse_with(keys, [("RTPMIC_DEST", "127.0.0.1:5004")]).unwrap();
        assert_eq!(c.rr_jitter_warn_ms, 8);
        let e = parse_with(
            keys,
            [("RTPMIC_DEST", "127.0.0.1:5004"), ("RTPMIC_TEST_MAX_CLIENTS", "65")],
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "config: RTPMIC_TEST_MAX_CLIENTS=\"65\": out of range; allowed: 1..64"
        );
    }
}
