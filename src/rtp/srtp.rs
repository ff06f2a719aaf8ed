//! SRTP and SRTCP for one sending SSRC (RFC 3711), sans I/O: in-place protection of the
//! packets the packetizer and `RtcpPackets` write, keyed by SDES (RFC 4568).
//!
//! # What it does
//!
//! * Profiles: `AES_CM_128_HMAC_SHA1_80` (RFC 3711 §5, the default) and
//!   `AES_CM_128_HMAC_SHA1_32` (RFC 4568 §6.2.2: the SRTP tag is 32 bits). SRTCP keeps the
//!   80-bit tag under both, as RFC 5764 §4.1.2 specifies and libsrtp does: RFC 3711 §7.5 allows
//!   short tags only for media whose playback is stateless.
//! * Keys: a 30-byte master key || master salt (RFC 4568 §6.1 `inline:`), session keys derived
//!   once with key_derivation_rate 0 (RFC 3711 §4.3.1), labels 0–2 for SRTP and 3–5 for SRTCP
//!   (§4.3.1, §4.3.2). No MKI, no `|lifetime`, no re-keying: a new key means a new [`SrtpContext`].
//! * SRTP (§3.1): AES-128 counter mode over the payload (and RTP padding) after the fixed
//!   header, CSRCs and header extension, which stay in the clear but are authenticated; the IV
//!   is salt·2^16 ⊕ SSRC·2^64 ⊕ index·2^16 with index = ROC·2^16 + SEQ (§4.1.1); the tag is the
//!   leftmost 80 (or 32) bits of HMAC-SHA1(auth key, packet || ROC) (§4.2).
//! * ROC (§3.3.1): the sender's rollover counter, incremented when SEQ wraps 65535 → 0; the
//!   index of each packet is estimated as in Appendix A, so a seq jump of up to 2^15 forward is
//!   followed. An index that does not advance is refused: protecting it again would reuse key
//!   stream (§9.1), as libsrtp refuses it too.
//! * SRTCP (§3.4): everything after the first 8 bytes (header + sender SSRC) of the compound is
//!   encrypted with the SRTCP keys, IV from the 31-bit SRTCP index; then E=1 || index
//!   (4 bytes) and the 80-bit tag over all of it. The index starts at 0 and counts every packet.
//!
//! # Scope
//!
//! The sending side, one SSRC (the packetizer's): [`SrtpContext`] refuses packets of any other
//! SSRC, since the ROC and the SRTCP index belong to one source. The receiving side is SRTCP
//! only: [`SrtcpInbound`] checks, replay-protects (a 128-index window per sending SSRC,
//! §3.3.2) and decrypts our receivers' reports. There is no SRTP `unprotect` (rtpmic receives
//! no media yet), no RFC 6904 header-extension encryption, no AES-GCM (RFC 7714).
//! The stream is protected once per packet and the same bytes go to every destination: all
//! receivers of a stream share its key, as they share its SDP.
//!
//! # Key lifetime (§9.2)
//!
//! A master key protects at most 2^48 SRTP packets and 2^31 SRTCP packets. Since each packet's
//! index is larger than the one before, the SRTP limit is reached when the ROC would pass
//! 2^32 − 1: [`SrtpError::RtpKeyExhausted`] (≈ 45 000 years of 5 ms packets). The SRTCP
//! index is never wrapped: after index 2^31 − 1, [`SrtpError::RtcpKeyExhausted`] (≈ 340 years
//! of a report every 5 s). Either way the caller must start a new context with a new key.
//!
//! Key stream is reused — and the audio is readable — if two contexts ever use the same master
//! key, SSRC and index. A key generated at each start ([`MasterKey::random`]) rules this out;
//! a fixed configured key relies on the SSRC being random at each start.
//!
//! # Keys are never logged
//!
//! [`MasterKey`] and [`SrtpContext`] print as redacted in `Debug`, [`KeyError`] never contains
//! key material (not even the offending base64 character), and every key, derived key and
//! salt is zeroed when dropped. The one place the key appears is the SDP `a=crypto` line
//! ([`sdp_crypto_attribute`]): SDES carries it there by design (RFC 4568 §8), so the SDP
//! must travel over a secure channel and is itself never to be logged.
//!
//! # Hot path
//!
//! [`SrtpContext::protect_rtp`] and [`SrtpContext::protect_rtcp`] allocate nothing, take no
//! lock and log nothing: the AES key schedules and the keyed HMAC state are computed in
//! [`SrtpContext::new`]; per packet, the HMAC state is copied on the stack (`Hmac<Sha1>` holds
//! two SHA-1 states and a block, no heap) and the counter mode borrows the key schedule.
//! The test `protecting_allocates_nothing` counts allocations to prove it.
//!
//! # Why the framing is written here
//!
//! The cryptography is RustCrypto's (`aes`, `ctr`, `hmac`, `sha1`); only the framing, key
//! derivation and index logic are here. The SRTP crates looked at do not fit a no-allocation
//! hot path: `webrtc-srtp` / `rtc-srtp` allocate per packet (`Bytes`/`BytesMut`, `Vec`
//! session keys) and the former pulls an async stack; `libsrtp` (pure Rust, 0.1) takes and
//! returns a `Vec<u8>` per packet; `str0m` is a whole WebRTC stack; `srtp` (0.7) binds the C
//! libsrtp2 (`srtp2-sys`, FFI and a C build) behind a `Vec`-like API. The test vectors below
//! include packets protected by libsrtp 2.5 itself.

use std::fmt;

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher, StreamCipherCoreWrapper};
use aes::Aes128Enc;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ctr::flavors::Ctr128BE;
use ctr::CtrCore;
use hmac::{Hmac, Mac};
use rtp_types::{RtpPacket, RtpParseError};
use sha1::Sha1;
use zeroize::{Zeroize, Zeroizing};

/// Master key length of AES_CM_128 (RFC 3711 §8.2).
pub const MASTER_KEY_LEN: usize = 16;
/// Master salt length (RFC 3711 §8.2).
pub const MASTER_SALT_LEN: usize = 14;
/// The SDES inline key: master key || master salt (RFC 4568 §6.1).
pub const SDES_KEY_LEN: usize = MASTER_KEY_LEN + MASTER_SALT_LEN;
/// The E flag and SRTCP index that precede the SRTCP tag (RFC 3711 §3.4).
pub const SRTCP_INDEX_LEN: usize = 4;
/// Largest SRTCP index (31 bits); one more packet would need a new key (§9.2).
pub const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;

/// HMAC-SHA1 authentication key length (RFC 3711 §8.2: n_a = 160 bits).
const AUTH_KEY_LEN: usize = 20;
/// The RTCP header and sender SSRC, which SRTCP leaves in the clear (§3.4).
const RTCP_CLEAR_LEN: usize = 8;
/// Key derivation labels (§4.3.1, §4.3.2): encryption, authentication, salt.
const SRTP_LABELS: [u8; 3] = [0x00, 0x01, 0x02];
const SRTCP_LABELS: [u8; 3] = [0x03, 0x04, 0x05];
/// E flag of the SRTCP index word: the payload is encrypted (§3.4).
const SRTCP_E_FLAG: u32 = 0x8000_0000;

/// The SRTP crypto suites supported, by their SDES names (RFC 4568 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag: RFC 3711's default.
    AesCm128HmacSha1_80,
    /// As above with a 32-bit SRTP tag; SRTCP keeps 80 bits (RFC 5764 §4.1.2).
    AesCm128HmacSha1_32,
}

impl Profile {
    /// The crypto-suite name in `a=crypto` (RFC 4568 §6.2).
    pub const fn sdp_name(self) -> &'static str {
        match self {
            Profile::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Profile::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The profile an `a=crypto` crypto-suite name denotes, if supported.
    pub fn from_sdp_name(name: &str) -> Option<Profile> {
        [Profile::AesCm128HmacSha1_80, Profile::AesCm128HmacSha1_32]
            .into_iter()
            .find(|p| p.sdp_name() == name)
    }

    /// Bytes the SRTP authentication tag adds to each RTP packet.
    pub const fn srtp_tag_len(self) -> usize {
        match self {
            Profile::AesCm128HmacSha1_80 => 10,
            Profile::AesCm128HmacSha1_32 => 4,
        }
    }

    /// Length of the SRTCP authentication tag: 80 bits under both profiles.
    pub const fn srtcp_tag_len(self) -> usize {
        10
    }

    /// Bytes SRTCP adds to each compound RTCP packet: E || index, then the tag.
    pub const fn srtcp_overhead(self) -> usize {
        SRTCP_INDEX_LEN + self.srtcp_tag_len()
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sdp_name())
    }
}

/// Why an SDES key was refused. Never contains key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("SRTP key is empty: expected the base64 of a 30-byte master key and salt (RFC 4568 §6.1)")]
    Empty,
    #[error(
        "SRTP key is not valid base64{}: expected the base64 of a 30-byte master key and salt (RFC 4568 §6.1)",
        match .position { Some(p) => format!(" (at character {p})"), None => String::new() }
    )]
    Base64 {
        /// Where in the base64 text the problem is; the character itself is not kept.
        position: Option<usize>,
    },
    #[error("SRTP key decodes to {decoded} bytes, but AES_CM_128 needs 30: a 16-byte master key then a 14-byte master salt (RFC 4568 §6.1)")]
    Length { decoded: usize },
    #[error("SRTP key has '|' parameters (lifetime or MKI, RFC 4568 §6.1), which are not supported: give only the base64 key")]
    Parameters,
}

/// An SRTP master key and master salt. `Debug` is redacted; zeroed on drop.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; MASTER_KEY_LEN],
    salt: [u8; MASTER_SALT_LEN],
}

/// For comparing configurations (SIGHUP), not for authenticating anything: not constant-time.
impl PartialEq for MasterKey {
    fn eq(&self, other: &MasterKey) -> bool {
        self.key == other.key && self.salt == other.salt
    }
}

impl MasterKey {
    pub fn new(key: [u8; MASTER_KEY_LEN], salt: [u8; MASTER_SALT_LEN]) -> MasterKey {
        MasterKey { key, salt }
    }

    /// From the 30 bytes of an SDES key: master key || master salt.
    pub fn from_bytes(bytes: &[u8; SDES_KEY_LEN]) -> MasterKey {
        let mut k = MasterKey {
            key: [0; MASTER_KEY_LEN],
            salt: [0; MASTER_SALT_LEN],
        };
        k.key.copy_from_slice(&bytes[..MASTER_KEY_LEN]);
        k.salt.copy_from_slice(&bytes[MASTER_KEY_LEN..]);
        k
    }

    /// Parses the key of an SDES `inline:` key-param (RFC 4568 §6.1): the base64 of the
    /// 30 bytes, with or without the `inline:` prefix; surrounding white space is ignored.
    pub fn from_sdes_inline(text: &str) -> Result<MasterKey, KeyError> {
        let text = text.trim();
        let text = text.strip_prefix("inline:").unwrap_or(text);
        if text.contains('|') {
            return Err(KeyError::Parameters);
        }
        if text.is_empty() {
            return Err(KeyError::Empty);
        }
        let bytes = Zeroizing::new(BASE64.decode(text).map_err(|e| KeyError::Base64 {
            position: match e {
                base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => Some(at),
                base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => None,
            },
        })?);
        let bytes: &[u8; SDES_KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Length { decoded: bytes.len() })?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// A fresh key from the operating system's random number generator (getrandom(2)).
    pub fn random() -> std::io::Result<MasterKey> {
        use rand::TryRngCore;
        let mut bytes = Zeroizing::new([0u8; SDES_KEY_LEN]);
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes[..])
            .map_err(std::io::Error::other)?;
        Ok(MasterKey::from_bytes(&bytes))
    }

    /// The key as SDES carries it: base64 of master key || master salt, the `inline:` value.
    /// This *is* the secret: put it only into the SDP (RFC 4568 §8), never into a log.
    pub fn to_sdes_inline(&self) -> String {
        let mut bytes = Zeroizing::new([0u8; SDES_KEY_LEN]);
        bytes[..MASTER_KEY_LEN].copy_from_slice(&self.key);
        bytes[MASTER_KEY_LEN..].copy_from_slice(&self.salt);
        BASE64.encode(&bytes[..])
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.key.zeroize();
        self.salt.zeroize();
    }
}

/// The SDP attribute that hands `key` to the receivers (RFC 4568 §9.1), e.g.
/// `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<base64>` (no line ending). `tag` is the
/// attribute's tag, 1 for the only offer. The line contains the key: never log it.
pub fn sdp_crypto_attribute(tag: u32, profile: Profile, key: &MasterKey) -> String {
    let inline = Zeroizing::new(key.to_sdes_inline());
    format!("a=crypto:{tag} {profile} inline:{}", inline.as_str())
}

/// Why a packet could not be protected. The buffer and the context are unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("packet length {len} exceeds its buffer of {capacity} bytes")]
    LengthExceedsBuffer { len: usize, capacity: usize },
    #[error("no room for the {needed}-byte SRTP trailer: packet of {len} bytes in a buffer of {capacity}")]
    NoRoom { len: usize, needed: usize, capacity: usize },
    #[error("not an RTP packet: {0}")]
    MalformedRtp(&'static str),
    #[error("not an RTCP packet: {0}")]
    MalformedRtcp(&'static str),
    #[error("packet SSRC {found:#010x} is not this SRTP context's {expected:#010x}")]
    SsrcMismatch { expected: u32, found: u32 },
    #[error("RTP sequence number {seq} does not advance past {highest}: protecting it would reuse key stream (RFC 3711 §9.1)")]
    IndexNotAdvancing { seq: u16, highest: u16 },
    #[error("SRTP master key exhausted after 2^48 packets (RFC 3711 §9.2): a new key is needed")]
    RtpKeyExhausted,
    #[error("SRTCP master key exhausted after 2^31 packets (RFC 3711 §9.2): a new key is needed")]
    RtcpKeyExhausted,
    #[error("authentication tag does not match: not protected with this key, or altered (RFC 3711 §3.4)")]
    Authentication,
    #[error(
        "SRTCP index {index} of SSRC {ssrc:#010x} was seen already or is behind the replay window (RFC 3711 §3.3.2)"
    )]
    Replayed { ssrc: u32, index: u32 },
}

impl SrtpError {
    fn from_rtp(e: RtpParseError) -> SrtpError {
        SrtpError::MalformedRtp(match e {
            RtpParseError::UnsupportedVersion(_) => "RTP version is not 2",
            RtpParseError::Truncated { .. } => "shorter than its header, CSRCs, extension or padding say",
            RtpParseError::PaddingInvalid(_) => "padding count of zero",
        })
    }
}

/// Session keys of one direction of use (SRTP or SRTCP), derived once (§4.3).
struct SessionKeys {
    /// The AES key schedule of the session encryption key.
    aes: Aes128Enc,
    /// HMAC-SHA1 already keyed with the session authentication key; cloned per packet.
    mac: Hmac<Sha1>,
    salt: [u8; MASTER_SALT_LEN],
}

impl SessionKeys {
    fn derive(master: &MasterKey, [enc_label, auth_label, salt_label]: [u8; 3]) -> SessionKeys {
        let mut enc = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        let mut auth = Zeroizing::new([0u8; AUTH_KEY_LEN]);
        let mut salt = [0u8; MASTER_SALT_LEN];
        derive(master, enc_label, &mut enc[..]);
        derive(master, auth_label, &mut auth[..]);
        derive(master, salt_label, &mut salt);
        SessionKeys {
            aes: Aes128Enc::new(&(*enc).into()),
            mac: <Hmac<Sha1> as KeyInit>::new_from_slice(&auth[..]).expect("HMAC takes a key of any length"),
            salt,
        }
    }
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        // `aes` and `hmac` zero their own state (their `zeroize` features).
        self.salt.zeroize();
    }
}

/// The AES-CM PRF of key derivation (§4.3.1, §4.3.3) with key_derivation_rate 0: r = 0, so
/// x = (label << 48) ⊕ master salt, and `out` is the key stream from IV = x · 2^16.
fn derive(master: &MasterKey, label: u8, out: &mut [u8]) {
    let mut iv = Zeroizing::new([0u8; 16]);
    iv[..MASTER_SALT_LEN].copy_from_slice(&master.salt);
    // key_id = label || r (56 bits) is right-aligned in the 112-bit salt: label is byte 7.
    iv[7] ^= label;
    let aes = Aes128Enc::new(&master.key.into());
    out.fill(0);
    apply_keystream(&aes, &iv, out);
}

/// The AES-CM IV (§4.1.1): IV = (salt · 2^16) ⊕ (SSRC · 2^64) ⊕ (index · 2^16).
fn counter_iv(salt: &[u8; MASTER_SALT_LEN], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(salt);
    for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *b ^= s;
    }
    iv
}

/// XORs `data` with AES-CM key stream from `iv` (§4.1.1): block j is AES(IV + j), a
/// 128-bit big-endian counter. Borrows the key schedule: no copy, no allocation.
fn apply_keystream(aes: &Aes128Enc, iv: &[u8; 16], data: &mut [u8]) {
    let core = CtrCore::<&Aes128Enc, Ctr128BE>::inner_iv_init(aes, iv.into());
    StreamCipherCoreWrapper::from_core(core).apply_keystream(data);
}

/// The leftmost `out.len()` bytes of HMAC-SHA1 over `parts` (§4.2), from a pre-keyed state.
fn auth_tag(mac: &Hmac<Sha1>, parts: [&[u8]; 2], out: &mut [u8]) {
    let mut mac = mac.clone();
    for p in parts {
        mac.update(p);
    }
    let full = mac.finalize().into_bytes();
    out.copy_from_slice(&full[..out.len()]);
}

/// Checks `len` against the buffer and returns where the trailer of `trailer` bytes ends.
fn room(buf: &[u8], len: usize, trailer: usize) -> Result<usize, SrtpError> {
    let capacity = buf.len();
    if len > capacity {
        return Err(SrtpError::LengthExceedsBuffer { len, capacity });
    }
    match len.checked_add(trailer) {
        Some(end) if end <= capacity => Ok(end),
        _ => Err(SrtpError::NoRoom {
            len,
            needed: trailer,
            capacity,
        }),
    }
}

/// The sender side of one SRTP stream: its keys, its ROC and its SRTCP index.
pub struct SrtpContext {
    profile: Profile,
    ssrc: u32,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    /// Rollover counter of the highest index sent (§3.3.1).
    roc: u32,
    /// Sequence number of the highest index sent; `None` before the first packet.
    highest_seq: Option<u16>,
    /// The SRTCP index of the next SRTCP packet; `MAX_SRTCP_INDEX + 1` when exhausted.
    srtcp_index: u32,
}

impl SrtpContext {
    /// Derives the session keys of `master` for the stream of `ssrc` (at start-up: the key
    /// schedules are computed here so that protecting costs no set-up).
    pub fn new(profile: Profile, master: &MasterKey, ssrc: u32) -> SrtpContext {
        SrtpContext {
            profile,
            ssrc,
            rtp: SessionKeys::derive(master, SRTP_LABELS),
            rtcp: SessionKeys::derive(master, SRTCP_LABELS),
            roc: 0,
            highest_seq: None,
            srtcp_index: 0,
        }
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The rollover counter of the last packet protected (§3.3.1).
    pub fn roc(&self) -> u32 {
        self.roc
    }

    /// The SRTCP index the next SRTCP packet will carry.
    pub fn next_srtcp_index(&self) -> u32 {
        self.srtcp_index
    }

    /// Protects the RTP packet in `buf[..len]` in place (§3.1): encrypts its payload and
    /// appends the authentication tag. Returns the SRTP packet's length, `len` +
    /// [`Profile::srtp_tag_len`]. No allocation.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let end = room(buf, len, self.profile.srtp_tag_len())?;
        let (payload_offset, ssrc, seq) = {
            let packet = RtpPacket::parse(&buf[..len]).map_err(SrtpError::from_rtp)?;
            (packet.payload_offset(), packet.ssrc(), packet.sequence_number())
        };
        if ssrc != self.ssrc {
            return Err(SrtpError::SsrcMismatch {
                expected: self.ssrc,
                found: ssrc,
            });
        }
        let roc = self.roc_of(seq)?;
        let index = (u64::from(roc) << 16) | u64::from(seq);
        // §3.1: the encrypted portion is the payload including any RTP padding.
        let iv = counter_iv(&self.rtp.salt, ssrc, index);
        apply_keystream(&self.rtp.aes, &iv, &mut buf[payload_offset..len]);
        // §4.2: the authenticated portion (header + encrypted payload) || ROC.
        let (packet, tag) = buf[..end].split_at_mut(len);
        auth_tag(&self.rtp.mac, [packet, &roc.to_be_bytes()], tag);
        self.roc = roc;
        self.highest_seq = Some(seq);
        Ok(end)
    }

    /// The ROC of a packet with sequence number `seq`, estimated as in RFC 3711 Appendix A
    /// from the highest index sent; an error unless the index is above it.
    fn roc_of(&self, seq: u16) -> Result<u32, SrtpError> {
        let Some(highest) = self.highest_seq else {
            return Ok(self.roc);
        };
        let (s_l, s) = (i32::from(highest), i32::from(seq));
        let newer_roc = if s_l < 0x8000 {
            // s − s_l > 2^15 would be ROC − 1: a packet from before the last wrap.
            (s > s_l && s - s_l <= 0x8000).then_some(self.roc)
        } else if s_l - 0x8000 > s {
            Some(self.roc.checked_add(1).ok_or(SrtpError::RtpKeyExhausted)?)
        } else {
            (s > s_l).then_some(self.roc)
        };
        newer_roc.ok_or(SrtpError::IndexNotAdvancing { seq, highest })
    }

    /// Protects the compound RTCP packet in `buf[..len]` in place (§3.4): encrypts all
    /// after the first 8 bytes, appends E=1 || SRTCP index and the 80-bit tag. Returns the
    /// SRTCP packet's length, `len` + [`Profile::srtcp_overhead`]. No allocation.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let end = room(buf, len, self.profile.srtcp_overhead())?;
        if len < RTCP_CLEAR_LEN {
            return Err(SrtpError::MalformedRtcp("shorter than an RTCP header and sender SSRC"));
        }
        if buf[0] >> 6 != 2 {
            return Err(SrtpError::MalformedRtcp("RTCP version is not 2"));
        }
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        if ssrc != self.ssrc {
            return Err(SrtpError::SsrcMismatch {
                expected: self.ssrc,
                found: ssrc,
            });
        }
        let index = self.srtcp_index;
        if index > MAX_SRTCP_INDEX {
            return Err(SrtpError::RtcpKeyExhausted);
        }
        let iv = counter_iv(&self.rtcp.salt, ssrc, u64::from(index));
        apply_keystream(&self.rtcp.aes, &iv, &mut buf[RTCP_CLEAR_LEN..len]);
        let tagged = len + SRTCP_INDEX_LEN;
        buf[len..tagged].copy_from_slice(&(SRTCP_E_FLAG | index).to_be_bytes());
        // §3.4: the authenticated portion is the whole packet up to and including the index.
        let (packet, tag) = buf[..end].split_at_mut(tagged);
        auth_tag(&self.rtcp.mac, [packet, &[]], tag);
        self.srtcp_index = index + 1;
        Ok(end)
    }
}

impl fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .field("ssrc", &format_args!("{:#010x}", self.ssrc))
            .field("roc", &self.roc)
            .field("highest_seq", &self.highest_seq)
            .field("next_srtcp_index", &self.srtcp_index)
            .field("keys", &format_args!("<redacted>"))
            .finish()
    }
}

/// Indices the SRTCP replay window covers below the highest one accepted (RFC 3711 §3.3.2
/// asks for at least 64).
pub const SRTCP_REPLAY_WINDOW: u32 = 128;
/// Sending SSRCs whose replay state is kept; past that, the one heard from longest ago is
/// forgotten. Only authenticated packets create state, so only key holders can fill it.
pub const MAX_SRTCP_SOURCES: usize = 256;

/// The replay state of one sending SSRC (RFC 3711 §3.3.2): the highest SRTCP index accepted
/// and which of the [`SRTCP_REPLAY_WINDOW`] indices below it were accepted.
#[derive(Clone, Copy, Debug)]
struct ReplayWindow {
    highest: u32,
    /// Bit k set: index `highest − k` was accepted (bit 0 is `highest` itself).
    seen: u128,
    /// When this source was last accepted (a counter), to forget the stalest when full.
    used: u64,
}

impl ReplayWindow {
    /// Whether `index` may be accepted: above the highest, or inside the window and new.
    fn is_new(&self, index: u32) -> bool {
        if index > self.highest {
            return true;
        }
        let behind = self.highest - index;
        behind < SRTCP_REPLAY_WINDOW && self.seen & (1u128 << behind) == 0
    }

    fn accept(&mut self, index: u32) {
        if index > self.highest {
            let shift = index - self.highest;
            self.seen = if shift >= SRTCP_REPLAY_WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.highest = index;
        }
        self.seen |= 1u128 << (self.highest - index);
    }
}

/// The receiving side of SRTCP (RFC 3711 §3.4): checks, replay-protects and decrypts the
/// compound RTCP packets other participants (our receivers) send, keyed by the same master
/// key as our stream.
///
/// # Which key
///
/// RFC 4568 gives each direction its own key: in an offer/answer each side's `a=crypto` line
/// is the key *it* sends with. rtpmic publishes one stream with one `a=crypto` line and no
/// answer comes back, so a receiver has no key of its own that rtpmic could know: a receiver
/// that protects its reports can only use the key of the line it was given (a libsrtp-based
/// receiver set up from our SDP with one key for the session, e.g. GStreamer's
/// `srtpdec`/`srtpenc` pair). Reports are therefore checked against the stream's own master
/// key, with the SRTCP session keys of labels 3–5 (§4.3.1, §4.3.2); the libsrtp-made packets
/// in the tests below pass. Key stream is not shared with our own SRTCP as long as the
/// sending SSRCs differ (the SSRC is in the IV, §4.1.1): packets carrying our own SSRC are
/// the caller's to drop before they get here.
///
/// # Order of checks
///
/// Length and version, then the tag over the whole packet up to and including E || index
/// (constant-time compare), then the replay window of that SSRC, then decryption. The tag
/// comes before the replay check so that a forged packet is reported as
/// [`SrtpError::Authentication`], never as a replay, and only authentic packets create or
/// move replay state. Nothing changes for a packet that is refused.
///
/// The per-SSRC replay table is allocated in `new` ([`MAX_SRTCP_SOURCES`] entries) and
/// searched linearly: after that nothing allocates, so the send session can use it in the
/// real-time thread that sends.
pub struct SrtcpInbound {
    keys: SessionKeys,
    tag_len: usize,
    replay: Vec<(u32, ReplayWindow)>,
    clock: u64,
}

impl SrtcpInbound {
    pub fn new(profile: Profile, master: &MasterKey) -> SrtcpInbound {
        SrtcpInbound {
            keys: SessionKeys::derive(master, SRTCP_LABELS),
            tag_len: profile.srtcp_tag_len(),
            replay: Vec::with_capacity(MAX_SRTCP_SOURCES),
            clock: 0,
        }
    }

    fn window(&self, ssrc: u32) -> Option<usize> {
        self.replay.iter().position(|(s, _)| *s == ssrc)
    }

    /// Unprotects the SRTCP packet in `buf` in place (RFC 3711 §3.4): returns the length of
    /// the plain compound RTCP packet at the start of `buf`. On any error `buf` and the
    /// replay state are unchanged.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tagged = buf
            .len()
            .checked_sub(self.tag_len)
            .filter(|&t| t >= RTCP_CLEAR_LEN + SRTCP_INDEX_LEN)
            .ok_or(SrtpError::MalformedRtcp(
                "shorter than an RTCP header, sender SSRC, SRTCP index and tag",
            ))?;
        if buf[0] >> 6 != 2 {
            return Err(SrtpError::MalformedRtcp("RTCP version is not 2"));
        }
        let len = tagged - SRTCP_INDEX_LEN;
        let word = u32::from_be_bytes([buf[len], buf[len + 1], buf[len + 2], buf[len + 3]]);
        let (encrypted, index) = (word & SRTCP_E_FLAG != 0, word & MAX_SRTCP_INDEX);
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        // §3.4: the tag covers the packet up to and including E || index.
        let mut mac = self.keys.mac.clone();
        mac.update(&buf[..tagged]);
        mac.verify_truncated_left(&buf[tagged..])
            .map_err(|_| SrtpError::Authentication)?;
        if self.window(ssrc).is_some_and(|i| !self.replay[i].1.is_new(index)) {
            return Err(SrtpError::Replayed { ssrc, index });
        }
        if encrypted {
            let iv = counter_iv(&self.keys.salt, ssrc, u64::from(index));
            apply_keystream(&self.keys.aes, &iv, &mut buf[RTCP_CLEAR_LEN..len]);
        }
        self.clock += 1;
        let clock = self.clock;
        let i = match self.window(ssrc) {
            Some(i) => i,
            None => {
                let fresh = ReplayWindow {
                    highest: index,
                    seen: 0,
                    used: clock,
                };
                if self.replay.len() < MAX_SRTCP_SOURCES {
                    self.replay.push((ssrc, fresh));
                    self.replay.len() - 1
                } else {
                    // The table is full: the source heard from longest ago makes room.
                    let stalest = (0..self.replay.len())
                        .min_by_key(|&i| self.replay[i].1.used)
                        .unwrap_or(0);
                    self.replay[stalest] = (ssrc, fresh);
                    stalest
                }
            }
        };
        let window = &mut self.replay[i].1;
        window.accept(index);
        window.used = clock;
        Ok(len)
    }

    /// Sending SSRCs with replay state (at most [`MAX_SRTCP_SOURCES`]).
    pub fn sources(&self) -> usize {
        self.replay.len()
    }
}

impl fmt::Debug for SrtcpInbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtcpInbound")
            .field("sources", &self.replay.len())
            .field("keys", &format_args!("<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 3711 B.3's master key and salt; libsrtp's test suite uses the same.
    fn rfc_master() -> MasterKey {
        let bytes: [u8; 30] = hex("E1F97A0D3E018BE0D64FA32C06DE4139 0EC675AD498AFEEBB6960B3AABE6")
            .try_into()
            .unwrap();
        MasterKey::from_bytes(&bytes)
    }

    const SSRC: u32 = 0xdead_beef;

    /// An RTP packet of SSRC `SSRC`, PT 0, timestamp 0x10000 and a 20-byte payload 0..20.
    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        p.extend_from_slice(&SSRC.to_be_bytes());
        p.extend(0u8..20);
        p
    }

    /// Protects a copy of `packet` in a buffer with 64 bytes to spare.
    fn protect(ctx: &mut SrtpContext, packet: &[u8]) -> Vec<u8> {
        let mut buf = packet.to_vec();
        buf.resize(packet.len() + 64, 0);
        let n = ctx.protect_rtp(&mut buf, packet.len()).unwrap();
        buf.truncate(n);
        buf
    }

    fn protect_rtcp(ctx: &mut SrtpContext, packet: &[u8]) -> Vec<u8> {
        let mut buf = packet.to_vec();
        buf.resize(packet.len() + 64, 0);
        let n = ctx.protect_rtcp(&mut buf, packet.len()).unwrap();
        buf.truncate(n);
        buf
    }

    /// A receiver written from RFC 3711 alone, for round trips: it checks the tag and
    /// decrypts, estimating the ROC from what it has received (Appendix A).
    struct Receiver {
        rtp: SessionKeys,
        rtcp: SessionKeys,
        tag_len: usize,
        roc: u32,
        s_l: Option<u16>,
    }

    #[derive(Debug, PartialEq)]
    enum Rejected {
        Authentication,
        Malformed,
    }

    impl Receiver {
        fn new(profile: Profile, master: &MasterKey) -> Receiver {
            Receiver {
                rtp: SessionKeys::derive(master, SRTP_LABELS),
                rtcp: SessionKeys::derive(master, SRTCP_LABELS),
                tag_len: profile.srtp_tag_len(),
                roc: 0,
                s_l: None,
            }
        }

        fn unprotect_rtp(&mut self, srtp: &[u8]) -> Result<Vec<u8>, Rejected> {
            let len = srtp.len().checked_sub(self.tag_len).ok_or(Rejected::Malformed)?;
            let (packet, tag) = srtp.split_at(len);
            // Parsed by hand: the padding count is encrypted, so RtpPacket::parse would check
            // a byte of cipher text.
            if packet.len() < 12 || packet[0] >> 6 != 2 {
                return Err(Rejected::Malformed);
            }
            let seq = u16::from_be_bytes([packet[2], packet[3]]);
            let ssrc = u32::from_be_bytes(packet[8..12].try_into().unwrap());
            let mut payload_offset = 12 + 4 * usize::from(packet[0] & 0x0f);
            if packet[0] & 0x10 != 0 {
                let words = packet
                    .get(payload_offset + 2..payload_offset + 4)
                    .ok_or(Rejected::Malformed)?;
                payload_offset += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
            }
            if payload_offset > packet.len() {
                return Err(Rejected::Malformed);
            }
            let v = match self.s_l {
                None => self.roc,
                Some(s_l) if s_l < 0x8000 && i32::from(seq) - i32::from(s_l) > 0x8000 => self.roc.wrapping_sub(1),
                Some(s_l) if s_l >= 0x8000 && i32::from(s_l) - 0x8000 > i32::from(seq) => self.roc.wrapping_add(1),
                Some(_) => self.roc,
            };
            let mut mac = self.rtp.mac.clone();
            mac.update(packet);
            mac.update(&v.to_be_bytes());
            mac.verify_truncated_left(tag).map_err(|_| Rejected::Authentication)?;
            let mut plain = packet.to_vec();
            let iv = counter_iv(&self.rtp.salt, ssrc, (u64::from(v) << 16) | u64::from(seq));
            apply_keystream(&self.rtp.aes, &iv, &mut plain[payload_offset..]);
            let index = (u64::from(v) << 16) | u64::from(seq);
            if self
                .s_l
                .is_none_or(|s_l| index > (u64::from(self.roc) << 16) | u64::from(s_l))
            {
                self.roc = v;
                self.s_l = Some(seq);
            }
            Ok(plain)
        }

        /// Returns the plain compound and the SRTCP index it carried.
        fn unprotect_rtcp(&self, srtcp: &[u8]) -> Result<(Vec<u8>, u32), Rejected> {
            let tagged = srtcp.len().checked_sub(10).ok_or(Rejected::Malformed)?;
            let len = tagged.checked_sub(4).filter(|&l| l >= 8).ok_or(Rejected::Malformed)?;
            let mut mac = self.rtcp.mac.clone();
            mac.update(&srtcp[..tagged]);
            mac.verify_truncated_left(&srtcp[tagged..])
                .map_err(|_| Rejected::Authentication)?;
            let word = u32::from_be_bytes(srtcp[len..tagged].try_into().unwrap());
            assert_eq!(word & SRTCP_E_FLAG, SRTCP_E_FLAG, "E flag set");
            let index = word & MAX_SRTCP_INDEX;
            let ssrc = u32::from_be_bytes(srtcp[4..8].try_into().unwrap());
            let mut plain = srtcp[..len].to_vec();
            apply_keystream(
                &self.rtcp.aes,
                &counter_iv(&self.rtcp.salt, ssrc, u64::from(index)),
                &mut plain[8..],
            );
            Ok((plain, index))
        }
    }

    #[test]
    fn rfc3711_b2_aes_cm_key_stream() {
        // B.2: session key and salt, SSRC 0, ROC 0, SEQ 0.
        let aes = Aes128Enc::new(
            &<[u8; 16]>::try_from(hex("2B7E151628AED2A6ABF7158809CF4F3C"))
                .unwrap()
                .into(),
        );
        let salt: [u8; 14] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap();
        let iv = counter_iv(&salt, 0, 0);
        assert_eq!(iv.to_vec(), hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"));
        let mut stream = vec![0u8; 0xff02 * 16];
        apply_keystream(&aes, &iv, &mut stream);
        for (block, expected) in [
            (0x0000, "E03EAD0935C95E80E166B16DD92B4EB4"),
            (0x0001, "D23513162B02D0F72A43A2FE4A5F97AB"),
            (0x0002, "41E95B3BB0A2E8DD477901E4FCA894C0"),
            (0xfeff, "EC8CDF7398607CB0F2D21675EA9EA1E4"),
            (0xff00, "362B7C3C6773516318A077D7FC5073AE"),
            (0xff01, "6A2CC3787889374FBEB4C81B17BA6C44"),
        ] {
            assert_eq!(stream[block * 16..][..16].to_vec(), hex(expected), "block {block:#06x}");
        }
    }

    #[test]
    fn rfc3711_b3_key_derivation() {
        let master = rfc_master();
        let mut enc = [0u8; 16];
        let mut auth = [0u8; 20];
        let mut salt = [0u8; 14];
        derive(&master, 0, &mut enc);
        derive(&master, 1, &mut auth);
        derive(&master, 2, &mut salt);
        assert_eq!(enc.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        assert_eq!(auth.to_vec(), hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"));
        assert_eq!(salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        // B.3 prints 94 bytes of the auth label's key stream; the first 64 check the counter.
        let mut long = [0u8; 64];
        derive(&master, 1, &mut long);
        assert_eq!(
            long.to_vec(),
            hex("CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
                 E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25")
        );
    }

    // Packets protected by libsrtp 2.5.0 (Debian libsrtp2-dev) with the RFC 3711 B.3 master
    // key, ssrc_any_outbound, RTP policy aes_cm_128_hmac_sha1_80 (or _32), RTCP policy
    // aes_cm_128_hmac_sha1_80, by a C program that calls srtp_protect on rtp(65534),
    // rtp(65535), rtp(0), then CSRC_EXT_PLAIN, and srtp_protect_rtcp on RTCP_PLAIN twice.
    // libsrtp's first SRTCP packet carries index 1, so the context here sends one first.
    const LIBSRTP_80: [(u16, &str); 3] = [
        (
            65534,
            "8000fffe00010000deadbeef b7c8d7519ba3c12c05aedc09e2db1652f7edb4f1 90eaa708f506f04e47ee",
        ),
        (
            65535,
            "8000ffff00010000deadbeef bc2343396e43953a1a885039ce8c4e4c37faeada 3cc2ce9d8523ae954a85",
        ),
        (
            0,
            "8000000000010000deadbeef 491dd5a221c3259d77e117b2464cbe5b4d5aee3f 39380e27721c907ed885",
        ),
    ];
    /// V=2, X=1, CC=2, marker, PT 8, seq 1 (ROC 1 after the packets above), two CSRCs, a
    /// one-word RFC 8285 header extension, 12 bytes of payload.
    const CSRC_EXT_PLAIN: &str = "92880001000100a0deadbeef 1111111122222222 bede000110aa0000 d5d5d5d55555555501020304";
    const CSRC_EXT_LIBSRTP: &str =
        "92880001000100a0deadbeef 1111111122222222 bede000110aa0000 005c2a8b1b008ffd35e3a548 77d0593619643c86142d";
    /// SR (28 bytes) + SDES CNAME "rtpmi", SSRC 0xdeadbeef.
    const RTCP_PLAIN: &str = "80c80006deadbeef e94b6c8012345678 00010000 00000032 00001388
                              81ca0003deadbeef 01057274706d6900";
    const RTCP_LIBSRTP_INDEX_1: &str = "80c80006deadbeef f6b17915953bdbf4f1f08916acd0e640f22fe2be140fb001fb297093
                                        21ba2b4f3a87dc86 80000001 612f997b206e55d277f0";
    const RTCP_LIBSRTP_INDEX_2: &str = "80c80006deadbeef 4341f970d80c30ea34b344ca26cf2309d3ebeba0a17f41d5d4bd9a70
                                        0bee009d86499bf6 80000002 cca8eb17082659283f23";

    #[test]
    fn matches_libsrtp_across_the_rollover() {
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &rfc_master(), SSRC);
        for (seq, expected) in LIBSRTP_80 {
            assert_eq!(protect(&mut ctx, &rtp(seq)), hex(expected), "seq {seq}");
        }
        assert_eq!(ctx.roc(), 1);
        assert_eq!(protect(&mut ctx, &hex(CSRC_EXT_PLAIN)), hex(CSRC_EXT_LIBSRTP));
    }

    #[test]
    fn srtcp_matches_libsrtp() {
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &rfc_master(), SSRC);
        protect_rtcp(&mut ctx, &hex(RTCP_PLAIN)); // index 0, which libsrtp skips
        assert_eq!(protect_rtcp(&mut ctx, &hex(RTCP_PLAIN)), hex(RTCP_LIBSRTP_INDEX_1));
        assert_eq!(protect_rtcp(&mut ctx, &hex(RTCP_PLAIN)), hex(RTCP_LIBSRTP_INDEX_2));
        assert_eq!(ctx.next_srtcp_index(), 3);
    }

    #[test]
    fn short_tag_profile_matches_libsrtp_and_keeps_80_bits_for_srtcp() {
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_32, &rfc_master(), SSRC);
        let srtp = protect(&mut ctx, &rtp(65534));
        assert_eq!(
            srtp,
            hex("8000fffe00010000deadbeef b7c8d7519ba3c12c05aedc09e2db1652f7edb4f1 90eaa708")
        );
        // The 32-bit tag is the first 4 bytes of the 80-bit one.
        assert_eq!(srtp[..], hex(LIBSRTP_80[0].1)[..36]);
        protect_rtcp(&mut ctx, &hex(RTCP_PLAIN));
        assert_eq!(protect_rtcp(&mut ctx, &hex(RTCP_PLAIN)), hex(RTCP_LIBSRTP_INDEX_1));
        assert_eq!(
            Profile::from_sdp_name("AES_CM_128_HMAC_SHA1_32"),
            Some(Profile::AesCm128HmacSha1_32)
        );
        assert_eq!(
            Profile::from_sdp_name("AES_CM_128_HMAC_SHA1_80"),
            Some(Profile::AesCm128HmacSha1_80)
        );
        assert_eq!(Profile::from_sdp_name("AEAD_AES_128_GCM"), None);
    }

    #[test]
    fn round_trip_adds_a_10_byte_tag_and_hides_the_payload() {
        let key = MasterKey::random().unwrap();
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, SSRC);
        let mut rx = Receiver::new(Profile::AesCm128HmacSha1_80, &key);
        let plain = rtp(1000);
        let srtp = protect(&mut ctx, &plain);
        assert_eq!(srtp.len(), plain.len() + 10);
        assert_eq!(srtp[..12], plain[..12], "header in the clear");
        assert_ne!(srtp[12..32], plain[12..32], "payload encrypted");
        assert_eq!(rx.unprotect_rtp(&srtp).unwrap(), plain);
        // The same payload at the next index encrypts differently.
        let next = protect(&mut ctx, &rtp(1001));
        assert_ne!(next[12..32], srtp[12..32]);
        assert_eq!(rx.unprotect_rtp(&next).unwrap(), rtp(1001));
    }

    #[test]
    fn wrong_key_or_altered_bytes_fail_authentication() {
        let key = MasterKey::random().unwrap();
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, SSRC);
        let srtp = protect(&mut ctx, &rtp(7));
        let mut stranger = Receiver::new(Profile::AesCm128HmacSha1_80, &MasterKey::random().unwrap());
        assert_eq!(stranger.unprotect_rtp(&srtp), Err(Rejected::Authentication));
        for at in [1, 3, 12, 31, srtp.len() - 1] {
            let mut bad = srtp.clone();
            bad[at] ^= 0x01;
            let mut rx = Receiver::new(Profile::AesCm128HmacSha1_80, &key);
            assert_eq!(rx.unprotect_rtp(&bad), Err(Rejected::Authentication), "byte {at}");
        }
    }

    #[test]
    fn roc_counts_sequence_wraps_and_the_receiver_follows() {
        let key = MasterKey::random().unwrap();
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, SSRC);
        let mut rx = Receiver::new(Profile::AesCm128HmacSha1_80, &key);
        let mut seq = 65530u16;
        let mut rocs = Vec::new();
        // Twice around: 65530 → 65535 → 0 → … → 65535 → 0 → 5.
        for _ in 0..(2 * 65536 - 65530 + 6) {
            let srtp = protect(&mut ctx, &rtp(seq));
            assert_eq!(
                rx.unprotect_rtp(&srtp).unwrap(),
                rtp(seq),
                "seq {seq} roc {}",
                ctx.roc()
            );
            rocs.push((seq, ctx.roc()));
            seq = seq.wrapping_add(1);
        }
        assert!(rocs.contains(&(65535, 0)) && rocs.contains(&(0, 1)) && rocs.contains(&(65535, 1)));
        assert_eq!(rocs.last(), Some(&(5, 2)));
        // The index (not just the sequence number) enters the IV: after the wrap, the same
        // seq encrypts differently than before it.
        let mut a = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, SSRC);
        let before = protect(&mut a, &rtp(3));
        for seq in [30000, 60000, 65535] {
            protect(&mut a, &rtp(seq));
        }
        let after = protect(&mut a, &rtp(3));
        assert_eq!(a.roc(), 1);
        assert_ne!(before, after);
    }

    #[test]
    fn a_packet_lost_before_the_encoder_does_not_confuse_the_roc() {
        // Sequence numbers are consecutive in rtpmic, but the index estimate follows gaps.
        let key = MasterKey::random().unwrap();
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, SSRC);
        let mut rx = Receiver::new(Profile::AesCm128HmacSha1_80, &key);
        for seq in [65000, 65400, 10, 20000] {
            let srtp = protect(&mut ctx, &rtp(seq));
            assert_eq!(rx.unprotect_rtp(&srtp).unwrap(), rtp(seq));
        }
        assert_eq!(ctx.roc(), 1);
    }

    #[test]
    fn a_repeated_or_older_index_is_refused() {
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &rfc_master(), SSRC);
        protect(&mut ctx, &rtp(100));
        for seq in [100, 99, 40000] {
            let mut buf = rtp(seq);
            buf.resize(64, 0);
            assert_eq!(
                ctx.protect_rtp(&mut buf, 32),
                Err(SrtpError::IndexNotAdvancing { seq, highest: 100 })
            );
        }
        // Nothing changed: the next packet is still the one libsrtp would protect.
        assert_eq!(ctx.roc(), 0);
        protect(&mut ctx, &rtp(101));
    }

    #[test]
    fn header_extension_and_csrcs_stay_clear_and_padding_is_encrypted() {
        let key = rfc_master();
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, SSRC);
        let mut rx = Receiver::new(Profile::AesCm128HmacSha1_80, &key);
        let plain = hex(CSRC_EXT_PLAIN);
        let srtp = protect(&mut ctx, &plain);
        assert_eq!(srtp[..28], plain[..28], "header, CSRCs and extension in the clear");
        assert_ne!(srtp[28..40], plain[28..], "payload encrypted");
        assert_eq!(rx.unprotect_rtp(&srtp).unwrap(), plain);
        // With the P bit: 4 bytes of payload, 4 of padding; all 8 are encrypted (§3.1).
        let mut padded = rtp(9);
        padded[0] |= 0x20;
        padded.truncate(12 + 8);
        padded[19] = 4;
        let srtp = protect(&mut ctx, &padded);
        assert_ne!(srtp[19], 4, "the padding count is encrypted");
        assert_eq!(rx.unprotect_rtp(&srtp).unwrap(), padded);
    }

    #[test]
    fn bad_packets_are_errors_and_change_nothing() {
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &rfc_master(), SSRC);
        let plain = rtp(65534);
        // No room for the tag: 9 spare bytes.
        let mut buf = plain.clone();
        buf.resize(plain.len() + 9, 0xaa);
        let before = buf.clone();
        assert_eq!(
            ctx.protect_rtp(&mut buf, plain.len()),
            Err(SrtpError::NoRoom {
                len: 32,
                needed: 10,
                capacity: 41
            })
        );
        assert_eq!(buf, before);
        assert_eq!(
            ctx.protect_rtp(&mut buf, 100),
            Err(SrtpError::LengthExceedsBuffer { len: 100, capacity: 41 })
        );
        let mut short = [0x80u8; 40];
        assert!(matches!(
            ctx.protect_rtp(&mut short, 11),
            Err(SrtpError::MalformedRtp(_))
        ));
        let mut v1 = rtp(1);
        v1[0] = 0x40;
        v1.resize(64, 0);
        assert!(matches!(ctx.protect_rtp(&mut v1, 32), Err(SrtpError::MalformedRtp(_))));
        let mut cc_too_long = rtp(1);
        cc_too_long[0] = 0x8f; // 15 CSRCs = 60 bytes, but the packet has 32
        cc_too_long.resize(64, 0);
        assert!(matches!(
            ctx.protect_rtp(&mut cc_too_long, 32),
            Err(SrtpError::MalformedRtp(_))
        ));
        let mut other = rtp(1);
        other[8..12].copy_from_slice(&1u32.to_be_bytes());
        other.resize(64, 0);
        assert_eq!(
            ctx.protect_rtp(&mut other, 32),
            Err(SrtpError::SsrcMismatch {
                expected: SSRC,
                found: 1
            })
        );
        // After all that, the first packet is still protected as libsrtp does it.
        assert_eq!(protect(&mut ctx, &plain), hex(LIBSRTP_80[0].1));
        // RTCP: too short, wrong version, no room.
        let mut rtcp = hex(RTCP_PLAIN);
        let n = rtcp.len();
        rtcp.resize(n + 14, 0);
        assert!(matches!(
            ctx.protect_rtcp(&mut rtcp, 7),
            Err(SrtpError::MalformedRtcp(_))
        ));
        assert!(matches!(
            ctx.protect_rtcp(&mut rtcp[..n + 13], n),
            Err(SrtpError::NoRoom { .. })
        ));
        rtcp[0] = 0x40;
        assert!(matches!(
            ctx.protect_rtcp(&mut rtcp, n),
            Err(SrtpError::MalformedRtcp(_))
        ));
        assert_eq!(ctx.next_srtcp_index(), 0);
    }

    #[test]
    fn srtcp_round_trip_with_incrementing_index() {
        let key = MasterKey::random().unwrap();
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, SSRC);
        let rx = Receiver::new(Profile::AesCm128HmacSha1_80, &key);
        // The compound rtcp.rs builds, as the sender will protect it.
        let mut packets = crate::rtp::rtcp::RtcpPackets::new(SSRC, "rtpmic@intercom").unwrap();
        for i in 0..3u32 {
            let plain = packets
                .report(crate::rtp::rtcp::SenderInfo {
                    ntp: 0x1122_3344_5566_7788 + u64::from(i),
                    rtp_timestamp: 960 * i,
                    packets: 50 * i,
                    octets: 5000 * i,
                })
                .to_vec();
            let n = plain.len();
            let srtcp = protect_rtcp(&mut ctx, &plain);
            assert_eq!(srtcp.len(), n + 4 + 10);
            assert_eq!(srtcp[..8], plain[..8], "header and sender SSRC in the clear");
            assert_ne!(srtcp[8..plain.len()], plain[8..], "the rest encrypted");
            assert_eq!(
                srtcp[plain.len()..][..4],
                (0x8000_0000 | i).to_be_bytes(),
                "E=1 || index"
            );
            assert_eq!(rx.unprotect_rtcp(&srtcp).unwrap(), (plain, i));
            let mut bad = srtcp.clone();
            bad[n + 3] ^= 1; // a bit of the index
            assert_eq!(rx.unprotect_rtcp(&bad), Err(Rejected::Authentication));
        }
        let stranger = Receiver::new(Profile::AesCm128HmacSha1_80, &MasterKey::random().unwrap());
        let srtcp = protect_rtcp(&mut ctx, &hex(RTCP_PLAIN));
        assert_eq!(stranger.unprotect_rtcp(&srtcp), Err(Rejected::Authentication));
    }

    /// Unprotects a copy of `srtcp`; the plain compound, or the error and proof that the
    /// buffer was left as it was.
    fn unprotect_rtcp(rx: &mut SrtcpInbound, srtcp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let mut buf = srtcp.to_vec();
        match rx.unprotect_rtcp(&mut buf) {
            Ok(n) => Ok(buf[..n].to_vec()),
            Err(e) => {
                assert_eq!(buf, srtcp, "a refused packet is left as it was");
                Err(e)
            }
        }
    }

    #[test]
    fn srtcp_inbound_takes_libsrtp_packets() {
        let mut rx = SrtcpInbound::new(Profile::AesCm128HmacSha1_80, &rfc_master());
        for protected in [RTCP_LIBSRTP_INDEX_1, RTCP_LIBSRTP_INDEX_2] {
            assert_eq!(unprotect_rtcp(&mut rx, &hex(protected)).unwrap(), hex(RTCP_PLAIN));
        }
        // The short-tag profile keeps the 80-bit SRTCP tag: the same packets.
        let mut short = SrtcpInbound::new(Profile::AesCm128HmacSha1_32, &rfc_master());
        assert_eq!(
            unprotect_rtcp(&mut short, &hex(RTCP_LIBSRTP_INDEX_2)).unwrap(),
            hex(RTCP_PLAIN)
        );
    }

    #[test]
    fn srtcp_inbound_round_trips_reports_of_any_ssrc() {
        let key = MasterKey::random().unwrap();
        let mut rx = SrtcpInbound::new(Profile::AesCm128HmacSha1_80, &key);
        for ssrc in [1u32, 0x5151, u32::MAX] {
            let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, ssrc);
            let mut plain = hex(RTCP_PLAIN);
            plain[4..8].copy_from_slice(&ssrc.to_be_bytes());
            plain[32..36].copy_from_slice(&ssrc.to_be_bytes()); // the SDES chunk's SSRC
            for _ in 0..3 {
                let srtcp = protect_rtcp(&mut ctx, &plain);
                assert_eq!(unprotect_rtcp(&mut rx, &srtcp).unwrap(), plain);
            }
        }
        assert_eq!(rx.sources(), 3);
    }

    #[test]
    fn srtcp_inbound_refuses_forged_altered_and_plain_packets() {
        let key = MasterKey::random().unwrap();
        let mut rx = SrtcpInbound::new(Profile::AesCm128HmacSha1_80, &key);
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, SSRC);
        let srtcp = protect_rtcp(&mut ctx, &hex(RTCP_PLAIN));
        for at in [0, 1, 5, 9, 44, 47, srtcp.len() - 1] {
            let mut bad = srtcp.clone();
            bad[at] ^= 0x04;
            assert!(
                matches!(
                    unprotect_rtcp(&mut rx, &bad),
                    Err(SrtpError::Authentication | SrtpError::MalformedRtcp(_))
                ),
                "byte {at}"
            );
        }
        // A plaintext report, and one under another key.
        assert_eq!(
            unprotect_rtcp(&mut rx, &hex(RTCP_PLAIN)),
            Err(SrtpError::Authentication)
        );
        let mut stranger = SrtpContext::new(Profile::AesCm128HmacSha1_80, &MasterKey::random().unwrap(), SSRC);
        let forged = protect_rtcp(&mut stranger, &hex(RTCP_PLAIN));
        assert_eq!(unprotect_rtcp(&mut rx, &forged), Err(SrtpError::Authentication));
        // Too short for header, SSRC, index and tag; not version 2.
        for short in [&srtcp[..0], &srtcp[..21], &hex("80c80006deadbeef")[..]] {
            assert!(matches!(
                unprotect_rtcp(&mut rx, short),
                Err(SrtpError::MalformedRtcp(_))
            ));
        }
        let mut v1 = srtcp.clone();
        v1[0] = 0x40;
        assert!(matches!(unprotect_rtcp(&mut rx, &v1), Err(SrtpError::MalformedRtcp(_))));
        assert_eq!(rx.sources(), 0, "nothing refused leaves state behind");
        // The genuine packet still goes through, once.
        assert_eq!(unprotect_rtcp(&mut rx, &srtcp).unwrap(), hex(RTCP_PLAIN));
        assert_eq!(
            unprotect_rtcp(&mut rx, &srtcp),
            Err(SrtpError::Replayed { ssrc: SSRC, index: 0 })
        );
    }

    #[test]
    fn srtcp_inbound_takes_an_unencrypted_but_authenticated_packet() {
        // E = 0 (§3.4): the payload is in the clear, the tag still covers it.
        let key = rfc_master();
        let keys = SessionKeys::derive(&key, SRTCP_LABELS);
        let mut packet = hex(RTCP_PLAIN);
        packet.extend_from_slice(&7u32.to_be_bytes());
        let mut tag = [0u8; 10];
        auth_tag(&keys.mac, [&packet, &[]], &mut tag);
        packet.extend_from_slice(&tag);
        let mut rx = SrtcpInbound::new(Profile::AesCm128HmacSha1_80, &key);
        assert_eq!(unprotect_rtcp(&mut rx, &packet).unwrap(), hex(RTCP_PLAIN));
    }

    #[test]
    fn srtcp_replay_window_is_128_indices_per_ssrc() {
        let key = MasterKey::random().unwrap();
        let mut rx = SrtcpInbound::new(Profile::AesCm128HmacSha1_80, &key);
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, SSRC);
        let packets: Vec<Vec<u8>> = (0..400).map(|_| protect_rtcp(&mut ctx, &hex(RTCP_PLAIN))).collect();
        // Out of order within the window: each once.
        for i in [10usize, 5, 7, 6, 200] {
            assert!(unprotect_rtcp(&mut rx, &packets[i]).is_ok(), "index {i}");
        }
        for i in [10usize, 5, 200] {
            assert_eq!(
                unprotect_rtcp(&mut rx, &packets[i]),
                Err(SrtpError::Replayed {
                    ssrc: SSRC,
                    index: i as u32
                })
            );
        }
        // 200 − 127 is the oldest index the window holds; 200 − 128 is behind it.
        assert!(unprotect_rtcp(&mut rx, &packets[73]).is_ok());
        assert!(matches!(
            unprotect_rtcp(&mut rx, &packets[72]),
            Err(SrtpError::Replayed { index: 72, .. })
        ));
        // A jump beyond the window forgets it; the index just below the new highest is new.
        assert!(unprotect_rtcp(&mut rx, &packets[399]).is_ok());
        assert!(unprotect_rtcp(&mut rx, &packets[398]).is_ok());
        assert!(unprotect_rtcp(&mut rx, &packets[201]).is_err(), "behind the window now");
        // Another SSRC has a window of its own, from its own index 0.
        let mut other = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, 7);
        let mut plain = hex(RTCP_PLAIN);
        plain[4..8].copy_from_slice(&7u32.to_be_bytes());
        assert!(unprotect_rtcp(&mut rx, &protect_rtcp(&mut other, &plain)).is_ok());
    }

    #[test]
    fn srtcp_replay_state_is_bounded() {
        let key = MasterKey::random().unwrap();
        let mut rx = SrtcpInbound::new(Profile::AesCm128HmacSha1_80, &key);
        let mut plain = hex(RTCP_PLAIN);
        for ssrc in 0..(MAX_SRTCP_SOURCES as u32 + 50) {
            let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, ssrc);
            plain[4..8].copy_from_slice(&ssrc.to_be_bytes());
            assert!(unprotect_rtcp(&mut rx, &protect_rtcp(&mut ctx, &plain)).is_ok());
        }
        assert_eq!(rx.sources(), MAX_SRTCP_SOURCES);
        assert!(!format!("{rx:?}").contains(&key.to_sdes_inline()[..8]));
    }

    #[test]
    fn srtcp_index_is_never_wrapped() {
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &rfc_master(), SSRC);
        ctx.srtcp_index = MAX_SRTCP_INDEX;
        let last = protect_rtcp(&mut ctx, &hex(RTCP_PLAIN));
        assert_eq!(last[44..48], [0xff, 0xff, 0xff, 0xff], "E=1 and index 2^31 − 1");
        let mut buf = hex(RTCP_PLAIN);
        buf.resize(64, 0);
        let before = buf.clone();
        assert_eq!(ctx.protect_rtcp(&mut buf, 44), Err(SrtpError::RtcpKeyExhausted));
        assert_eq!(ctx.protect_rtcp(&mut buf, 44), Err(SrtpError::RtcpKeyExhausted));
        assert_eq!(buf, before);
    }

    #[test]
    fn srtp_index_space_ends_at_2_to_the_48() {
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &rfc_master(), SSRC);
        ctx.roc = u32::MAX;
        ctx.highest_seq = Some(65534);
        protect(&mut ctx, &rtp(65535)); // index 2^48 − 1: the last one
        let mut buf = rtp(0);
        buf.resize(64, 0);
        assert_eq!(ctx.protect_rtp(&mut buf, 32), Err(SrtpError::RtpKeyExhausted));
        assert_eq!(ctx.roc(), u32::MAX);
    }

    #[test]
    fn sdes_inline_key_parses_and_prints_back() {
        let text = "4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm";
        let key = MasterKey::from_sdes_inline(text).unwrap();
        assert_eq!(key.key.to_vec(), hex("E1F97A0D3E018BE0D64FA32C06DE4139"));
        assert_eq!(key.salt.to_vec(), hex("0EC675AD498AFEEBB6960B3AABE6"));
        assert_eq!(key.to_sdes_inline(), text);
        let with_prefix = MasterKey::from_sdes_inline(&format!("  inline:{text}\n")).unwrap();
        assert_eq!(with_prefix.key, key.key);
        assert_eq!(
            sdp_crypto_attribute(1, Profile::AesCm128HmacSha1_80, &key),
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{text}")
        );
        assert_eq!(
            sdp_crypto_attribute(2, Profile::AesCm128HmacSha1_32, &key),
            format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{text}")
        );
        // A random key round-trips through its SDP line.
        let fresh = MasterKey::random().unwrap();
        let line = sdp_crypto_attribute(1, Profile::AesCm128HmacSha1_80, &fresh);
        let inline = line.rsplit(' ').next().unwrap();
        let back = MasterKey::from_sdes_inline(inline).unwrap();
        assert_eq!((back.key, back.salt), (fresh.key, fresh.salt));
        assert_ne!(fresh.key, MasterKey::random().unwrap().key);
    }

    #[test]
    fn key_errors_say_what_is_wrong_and_never_show_the_key() {
        let secret = "4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm";
        let cases = [
            (String::new(), KeyError::Empty),
            ("inline:".to_string(), KeyError::Empty),
            (secret[..32].to_string(), KeyError::Length { decoded: 24 }),
            (format!("{secret}AAAA"), KeyError::Length { decoded: 33 }),
            (
                format!("{}*{}", &secret[..10], &secret[11..]),
                KeyError::Base64 { position: Some(10) },
            ),
            (secret[..39].to_string(), KeyError::Base64 { position: None }),
            (format!("{secret}|2^20|1:4"), KeyError::Parameters),
        ];
        for (text, expected) in cases {
            let err = MasterKey::from_sdes_inline(&text).unwrap_err();
            assert_eq!(err, expected, "{text:?}");
            let message = err.to_string();
            assert!(message.starts_with("SRTP key"), "{message}");
            for window in secret.as_bytes().windows(6) {
                let w = std::str::from_utf8(window).unwrap();
                assert!(!message.contains(w), "{message:?} shows key material {w:?}");
            }
            assert!(!message.contains('*'), "{message:?} shows the bad character");
        }
        assert!(KeyError::Length { decoded: 24 }.to_string().contains("24 bytes"));
        assert!(KeyError::Base64 { position: Some(10) }
            .to_string()
            .contains("character 10"));
    }

    #[test]
    fn debug_output_redacts_every_key() {
        let key = rfc_master();
        let ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, SSRC);
        let inline = key.to_sdes_inline();
        for text in [format!("{key:?}"), format!("{ctx:?}"), format!("{ctx:#?}")] {
            assert!(text.contains("redacted"), "{text}");
            for needle in [
                "e1f97a",
                "E1F97A",
                "e1, f9",
                "225, 249",
                "0ec675",
                "c61e7a",
                "cebe32",
                "30cbbc",
                &inline[..8],
            ] {
                assert!(!text.contains(needle), "{text} contains {needle}");
            }
        }
        assert!(format!("{ctx:?}").contains("0xdeadbeef"));
    }

    /// A counting allocator for this module's tests: it counts only on a thread that asked,
    /// so the other tests in this binary run as usual.
    mod counting {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        thread_local! {
            static COUNTING: Cell<bool> = const { Cell::new(false) };
            static COUNT: Cell<u64> = const { Cell::new(0) };
        }

        pub struct Counting;

        fn count() {
            if COUNTING.try_with(Cell::get).unwrap_or(false) {
                let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            }
        }

        // SAFETY: forwards to the system allocator; counting touches only const-initialised
        // thread-locals, which neither allocate nor recurse.
        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                count();
                System.alloc(layout)
            }
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                System.dealloc(ptr, layout)
            }
            unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
                count();
                System.alloc_zeroed(layout)
            }
            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                count();
                System.realloc(ptr, layout, new_size)
            }
        }

        #[global_allocator]
        static GLOBAL: Counting = Counting;

        /// Runs `f` and returns how many allocations the calling thread made in it.
        pub fn allocations_in(f: impl FnOnce()) -> u64 {
            COUNT.with(|c| c.set(0));
            COUNTING.with(|c| c.set(true));
            f();
            COUNTING.with(|c| c.set(false));
            COUNT.with(Cell::get)
        }
    }

    #[test]
    fn protecting_allocates_nothing() {
        let key = MasterKey::random().unwrap();
        let mut ctx = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, SSRC);
        let mut short = SrtpContext::new(Profile::AesCm128HmacSha1_32, &key, SSRC);
        let mut rtp_buf = [0u8; 1500];
        let mut rtcp_buf = [0u8; 256];
        let plain_rtcp = hex(RTCP_PLAIN);
        let allocations = counting::allocations_in(|| {
            for i in 0..3000u32 {
                // 65000 + i crosses the wrap: the ROC path is exercised too.
                let seq = 65000u16.wrapping_add(i as u16);
                rtp_buf[..12].copy_from_slice(&[
                    0x80,
                    0,
                    (seq >> 8) as u8,
                    seq as u8,
                    0,
                    0,
                    0,
                    0,
                    0xde,
                    0xad,
                    0xbe,
                    0xef,
                ]);
                let n = ctx.protect_rtp(&mut rtp_buf, 12 + 960).unwrap();
                assert_eq!(n, 12 + 960 + 10);
                rtp_buf[..12].copy_from_slice(&[
                    0x80,
                    0,
                    (seq >> 8) as u8,
                    seq as u8,
                    0,
                    0,
                    0,
                    0,
                    0xde,
                    0xad,
                    0xbe,
                    0xef,
                ]);
                short.protect_rtp(&mut rtp_buf, 12 + 160).unwrap();
                if i % 250 == 0 {
                    rtcp_buf[..plain_rtcp.len()].copy_from_slice(&plain_rtcp);
                    ctx.protect_rtcp(&mut rtcp_buf, plain_rtcp.len()).unwrap();
                }
                // The error paths allocate nothing either.
                assert!(ctx.protect_rtp(&mut rtp_buf[..20], 20).is_err());
            }
        });
        assert_eq!(ctx.roc(), 1);
        assert_eq!(allocations, 0, "heap allocations while protecting");
        // The allocator is installed and counts on this thread.
        assert_eq!(
            counting::allocations_in(|| drop(std::hint::black_box(vec![1u8; 16]))),
            1
        );
    }
}
