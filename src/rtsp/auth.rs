//! Access control: HTTP Digest (RFC 7616) and, when configured, Basic (RFC 7617), as RTSP
//! uses them (RFC 2326 §D), and the slowing of repeated failures.
//!
//! * A 401 offers Digest with SHA-256 first and MD5 second, both with `qop="auth"` and the
//!   same nonce, then Basic in Basic mode. Clients that know only MD5 take the last Digest
//!   challenge (ffmpeg, live555/VLC) or compute MD5 whatever the challenge says; we verify
//!   with the algorithm the `Authorization` header names (none = MD5, RFC 7616 §3.4.1).
//!   `realm` and `nonce` come first in each challenge: live555 reads them with `sscanf`.
//! * `qop="auth"` answers (ffmpeg) and RFC 2069 answers without `qop` (GStreamer 1.22 and
//!   live555 send no `qop`, `nc` or `cnonce` even when offered) are both taken.
//! * Nonces are stateless: `hex(t) ‖ hex(HMAC-SHA256(secret, t)[..16])`, t the issue time
//!   (CLOCK_MONOTONIC ns). A nonce older than its lifetime, or not ours (forged, or from a
//!   previous run whose secret is gone), with otherwise right credentials gets 401 with
//!   `stale=true` so the client retries without asking its user. `nc` is checked per
//!   connection: the same nonce with a count that does not grow is a replay (also `stale`).
//! * The password is kept only as the three hashes the checks need (Digest's H(A1) for MD5
//!   and SHA-256, SHA-256 of Basic's `user:password`), in zeroized memory; [`Password`]
//!   shows nothing in `Debug`. No error or event carries it.
//! * Comparisons of secrets are constant-time (`subtle`, `hmac`'s verify).
//! * [`Throttle`]: wrong credentials from a source that failed recently are answered later and
//!   later (0, 0.5, 1, 2, 4, 8 s…, at most [`MAX_DELAY_NS`]), and the 401s to one source are
//!   spaced that far apart even across parallel connections. Sources are IPv4 addresses or
//!   IPv6 /64 prefixes, in a fixed table; when it is full the source that failed longest ago
//!   makes room.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::rtp::session::peers::canonical;

/// A password: shown as `(hidden)` by `Debug`, zeroed when dropped.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(p: impl Into<String>) -> Password {
        Password(Zeroizing::new(p.into()))
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

/// For comparing configurations (a reload notices a new password); constant-time anyway.
impl PartialEq for Password {
    fn eq(&self, other: &Password) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(hidden)")
    }
}

/// Which schemes a client may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// Digest only (SHA-256 or MD5).
    Digest,
    /// Digest, and Basic too (the password crosses the network in the clear; for clients
    /// that know nothing else).
    Basic,
}

/// The one account that may pull the stream.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    pub user: String,
    pub password: Password,
    pub mode: AuthMode,
    /// Digest realm (default `rtpmic`).
    pub realm: String,
    /// How long a nonce is taken (default 300 s).
    pub nonce_lifetime_ns: u64,
}

impl AuthConfig {
    pub fn new(user: impl Into<String>, password: Password) -> AuthConfig {
        AuthConfig {
            user: user.into(),
            password,
            mode: AuthMode::Digest,
            realm: "rtpmic".into(),
            nonce_lifetime_ns: 300_000_000_000,
        }
    }
}

/// How a request's credentials fare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Right credentials on a fresh nonce (or Basic, in Basic mode).
    Granted,
    /// No `Authorization` header: challenge.
    Missing,
    /// Wrong user or password, or an answer we cannot check: challenge, count, slow down.
    Failed,
    /// Right credentials on a nonce we no longer take: challenge with `stale=true`.
    /// `expired`: the nonce is ours and only too old (see the server's keepalive rule).
    Stale { expired: bool },
}

/// The last Digest nonce and count a connection used (for the `nc` replay check).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NonceUse {
    issued: u64,
    nc: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha256,
}

/// Checks credentials; holds no password, only hashes of it.
pub struct Authenticator {
    user: String,
    realm: String,
    mode: AuthMode,
    ha1_md5: Zeroizing<String>,
    ha1_sha256: Zeroizing<String>,
    basic_sha256: Zeroizing<[u8; 32]>,
    mac: Hmac<Sha256>,
    lifetime_ns: u64,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("user", &self.user)
            .field("realm", &self.realm)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// `H(a:b:…)` in lower-case hex.
fn hash_hex(alg: Algorithm, parts: &[&[u8]]) -> String {
    fn run<D: Digest>(parts: &[&[u8]]) -> String {
        let mut d = D::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                d.update(b":");
            }
            d.update(p);
        }
        hex(&d.finalize())
    }
    match alg {
        Algorithm::Md5 => run::<Md5>(parts),
        Algorithm::Sha256 => run::<Sha256>(parts),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Length of a nonce: 16 hex digits of time, 32 of MAC.
const NONCE_LEN: usize = 48;

impl Authenticator {
    /// `secret`: random bytes for the nonce MAC (from the server's random source).
    pub fn new(c: &AuthConfig, secret: &[u8; 32]) -> Authenticator {
        let (user, realm, pass) = (c.user.as_bytes(), c.realm.as_bytes(), c.password.expose().as_bytes());
        let basic: [u8; 32] = Sha256::new()
            .chain_update(user)
            .chain_update(b":")
            .chain_update(pass)
            .finalize()
            .into();
        Authenticator {
            user: c.user.clone(),
            realm: c.realm.clone(),
            mode: c.mode,
            ha1_md5: Zeroizing::new(hash_hex(Algorithm::Md5, &[user, realm, pass])),
            ha1_sha256: Zeroizing::new(hash_hex(Algorithm::Sha256, &[user, realm, pass])),
            basic_sha256: Zeroizing::new(basic),
            mac: <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes a key of any length"),
            lifetime_ns: c.nonce_lifetime_ns,
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    fn nonce_mac(&self, issued: u64) -> Hmac<Sha256> {
        let mut m = self.mac.clone();
        m.update(&issued.to_be_bytes());
        m
    }

    /// A nonce issued at `now`.
    pub fn nonce(&self, now: u64) -> String {
        let tag = self.nonce_mac(now).finalize().into_bytes();
        format!("{now:016x}{}", hex(&tag[..16]))
    }

    /// When our nonce `n` was issued; `None` when it is not ours.
    fn nonce_issued(&self, n: &str) -> Option<u64> {
        if n.len() != NONCE_LEN || !n.is_ascii() {
            return None;
        }
        let issued = u64::from_str_radix(&n[..16], 16).ok()?;
        let mut tag = [0u8; 16];
        for (i, t) in tag.iter_mut().enumerate() {
            *t = u8::from_str_radix(&n[16 + 2 * i..18 + 2 * i], 16).ok()?;
        }
        self.nonce_mac(issued).verify_truncated_left(&tag).ok()?;
        Some(issued)
    }

    /// The `WWW-Authenticate` values of a 401, in order.
    pub fn challenges(&self, now: u64, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now);
        let stale = if stale { ", stale=true" } else { "" };
        let realm = &self.realm;
        let mut v = vec![
            format!("Digest realm=\"{realm}\", nonce=\"{nonce}\"{stale}, algorithm=SHA-256, qop=\"auth\""),
            format!("Digest realm=\"{realm}\", nonce=\"{nonce}\"{stale}, algorithm=MD5, qop=\"auth\""),
        ];
        if self.mode == AuthMode::Basic {
            v.push(format!("Basic realm=\"{realm}\""));
        }
        v
    }

    /// Checks a request's `Authorization` header. `method` and `path` are the request's
    /// (`path`: of its URL, `None` for `*`); `last`: the connection's previous nonce use.
    pub fn check(
        &self,
        now: u64,
        method: &str,
        path: Option<&str>,
        authorization: Option<&str>,
        last: &mut Option<NonceUse>,
    ) -> Verdict {
        let Some(value) = authorization else {
            return Verdict::Missing;
        };
        let value = value.trim();
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("Digest") {
            self.digest(now, method, path, rest, last)
        } else if scheme.eq_ignore_ascii_case("Basic") && self.mode == AuthMode::Basic {
            self.basic(rest.trim())
        } else {
            Verdict::Failed
        }
    }

    fn basic(&self, b64: &str) -> Verdict {
        if b64.len() > 1024 {
            return Verdict::Failed;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            return Verdict::Failed;
        };
        let decoded = Zeroizing::new(decoded);
        let given: [u8; 32] = Sha256::digest(&decoded[..]).into();
        if bool::from(given.ct_eq(&self.basic_sha256[..])) {
            Verdict::Granted
        } else {
            Verdict::Failed
        }
    }

    fn digest(&self, now: u64, method: &str, path: Option<&str>, params: &str, last: &mut Option<NonceUse>) -> Verdict {
        let Some(p) = DigestParams::parse(params) else {
            return Verdict::Failed;
        };
        let (Some(username), Some(realm), Some(nonce), Some(uri), Some(response)) =
            (&p.username, &p.realm, &p.nonce, &p.uri, &p.response)
        else {
            return Verdict::Failed;
        };
        let (alg, ha1) = match p.algorithm.as_deref() {
            None => (Algorithm::Md5, &self.ha1_md5),
            Some(a) if a.eq_ignore_ascii_case("MD5") => (Algorithm::Md5, &self.ha1_md5),
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => (Algorithm::Sha256, &self.ha1_sha256),
            Some(_) => return Verdict::Failed,
        };
        if realm != &self.realm || !uri_matches(uri, path) {
            return Verdict::Failed;
        }
        let ha2 = hash_hex(alg, &[method.as_bytes(), uri.as_bytes()]);
        let mut nc_value = None;
        let expected = match p.qop.as_deref() {
            None => hash_hex(alg, &[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (&p.nc, &p.cnonce) else {
                    return Verdict::Failed;
                };
                let Ok(n) = u32::from_str_radix(nc, 16) else {
                    return Verdict::Failed;
                };
                nc_value = Some(n);
                hash_hex(
                    alg,
                    &[
                        ha1.as_bytes(),
                        nonce.as_bytes(),
                        nc.as_bytes(),
                        cnonce.as_bytes(),
                        b"auth",
                        ha2.as_bytes(),
                    ],
                )
            }
            Some(_) => return Verdict::Failed,
        };
        let user_ok = username.as_bytes().ct_eq(self.user.as_bytes());
        let response_ok = response.to_ascii_lowercase().as_bytes().ct_eq(expected.as_bytes());
        if !bool::from(user_ok & response_ok) {
            return Verdict::Failed;
        }
        let Some(issued) = self.nonce_issued(nonce).filter(|&t| t <= now) else {
            return Verdict::Stale { expired: false };
        };
        if let (Some(prev), Some(nc)) = (*last, nc_value) {
            if prev.issued == issued && nc <= prev.nc {
                return Verdict::Stale { expired: false };
            }
        }
        if now - issued > self.lifetime_ns {
            return Verdict::Stale { expired: true };
        }
        *last = Some(NonceUse {
            issued,
            nc: nc_value.unwrap_or(0),
        });
        Verdict::Granted
    }
}

/// The digest `uri` names the request's resource: the same path (the host part may differ:
/// clients behind NAT or proxies), or `*` for `*`.
fn uri_matches(uri: &str, path: Option<&str>) -> bool {
    let uri_path = if uri.contains("://") {
        match rtsp_types::Url::parse(uri) {
            Ok(u) => u.path().to_string(),
            Err(_) => return false,
        }
    } else {
        uri.split('?').next().unwrap_or("").to_string()
    };
    match path {
        None => uri_path == "*",
        Some(p) => uri_path == p,
    }
}

/// The parameters of a Digest `Authorization` header that we read.
#[derive(Default)]
struct DigestParams {
    username: Option<String>,
    realm: Option<String>,
    nonce: Option<String>,
    uri: Option<String>,
    response: Option<String>,
    algorithm: Option<String>,
    qop: Option<String>,
    nc: Option<String>,
    cnonce: Option<String>,
}

impl DigestParams {
    /// `name=value` or `name="quoted value"`, comma separated; `None` when malformed.
    fn parse(s: &str) -> Option<DigestParams> {
        let mut p = DigestParams::default();
        let mut rest = s.trim_start();
        let mut count = 0;
        while !rest.is_empty() {
            count += 1;
            if count > 32 {
                return None;
            }
            let eq = rest.find('=')?;
            let name = rest[..eq].trim();
            rest = rest[eq + 1..].trim_start();
            let value;
            if let Some(q) = rest.strip_prefix('"') {
                let mut v = String::new();
                let mut chars = q.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => v.push(chars.next()?.1),
                        '"' => {
                            end = Some(i + 1);
                            break;
                        }
                        c => v.push(c),
                    }
                }
                rest = &q[end?..];
                value = v;
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                value = rest[..end].trim().to_string();
                rest = &rest[end..];
            }
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
            } else if !rest.is_empty() {
                return None;
            }
            let slot = match name.to_ascii_lowercase().as_str() {
                "username" => &mut p.username,
                "realm" => &mut p.realm,
                "nonce" => &mut p.nonce,
                "uri" => &mut p.uri,
                "response" => &mut p.response,
                "algorithm" => &mut p.algorithm,
                "qop" => &mut p.qop,
                "nc" => &mut p.nc,
                "cnonce" => &mut p.cnonce,
                _ => continue,
            };
            *slot = Some(value);
        }
        Some(p)
    }
}

/// Sources remembered by [`Throttle`].
pub const THROTTLE_SOURCES: usize = 64;
/// The longest a failing source's 401 is held.
pub const MAX_DELAY_NS: u64 = 8_000_000_000;
/// The first delay (for a source's second failure).
const FIRST_DELAY_NS: u64 = 500_000_000;
/// A source that has not failed for this long starts afresh.
pub const FORGET_NS: u64 = 600_000_000_000;
/// However many 401s a source has waiting, none is held longer than this.
const MAX_HOLD_NS: u64 = 60_000_000_000;

#[derive(Clone, Copy, Debug)]
struct Source {
    key: u128,
    failures: u32,
    last_failure: u64,
    next_release: u64,
}

/// Recent authentication failures by source. See the module docs.
#[derive(Debug)]
pub struct Throttle {
    sources: Vec<Source>,
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle {
            sources: Vec::with_capacity(THROTTLE_SOURCES),
        }
    }
}

/// An IPv4 address, or the /64 of an IPv6 one (a host has a whole /64 to pick from).
fn source_key(ip: IpAddr) -> u128 {
    match canonical(SocketAddr::new(ip, 0)).ip() {
        IpAddr::V4(v4) => (0xffffu128 << 32) | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6) & !u128::from(u64::MAX),
    }
}

impl Throttle {
    /// A failure from `ip` at `now`: when its 401 may go out (`now` when not slowed).
    pub fn failed(&mut self, now: u64, ip: IpAddr) -> u64 {
        let key = source_key(ip);
        let i = match self.sources.iter().position(|s| s.key == key) {
            Some(i) => i,
            None => {
                let fresh = Source {
                    key,
                    failures: 0,
                    last_failure: now,
                    next_release: now,
                };
                if self.sources.len() < THROTTLE_SOURCES {
                    self.sources.push(fresh);
                    self.sources.len() - 1
                } else {
                    let oldest = (0..self.sources.len())
                        .min_by_key(|&i| self.sources[i].last_failure)
                        .unwrap_or(0);
                    self.sources[oldest] = fresh;
                    oldest
                }
            }
        };
        let s = &mut self.sources[i];
        if now.saturating_sub(s.last_failure) > FORGET_NS {
            s.failures = 0;
        }
        s.failures = s.failures.saturating_add(1);
        s.last_failure = now;
        let delay = match s.failures {
            0 | 1 => 0,
            n => FIRST_DELAY_NS.saturating_mul(1 << (n - 2).min(16)).min(MAX_DELAY_NS),
        };
        let release = (s.next_release.max(now) + delay).min(now + MAX_HOLD_NS);
        s.next_release = release;
        release
    }

    /// Right credentials from `ip`: it starts afresh.
    pub fn succeeded(&mut self, ip: IpAddr) {
        let key = source_key(ip);
        self.sources.retain(|s| s.key != key);
    }

    /// Sources remembered.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const SECRET: [u8; 32] = [7; 32];

    fn auth(mode: AuthMode) -> Authenticator {
        let mut c = AuthConfig::new("user", Password::new("secret"));
        c.mode = mode;
        Authenticator::new(&c, &SECRET)
    }

    /// RFC 7616 §3.4.1, computed here from the password (not from the server's hashes).
    pub fn digest_response(
        sha256: bool,
        user: &str,
        password: &str,
        method: &str,
        uri: &str,
        nonce: &str,
        qop: Option<(&str, &str)>,
    ) -> String {
        let h = |s: String| {
            if sha256 {
                hex(&Sha256::digest(s.as_bytes()))
            } else {
                hex(&Md5::digest(s.as_bytes()))
            }
        };
        let ha1 = h(format!("{user}:rtpmic:{password}"));
        let ha2 = h(format!("{method}:{uri}"));
        match qop {
            Some((nc, cnonce)) => h(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
            None => h(format!("{ha1}:{nonce}:{ha2}")),
        }
    }

    /// An `Authorization` header as ffmpeg 5.1 writes it (MD5) or as a SHA-256 client does.
    pub fn authorization(sha256: bool, password: &str, method: &str, uri: &str, nonce: &str, nc: u32) -> String {
        let nc = format!("{nc:08x}");
        let r = digest_response(
            sha256,
            "user",
            password,
            method,
            uri,
            nonce,
            Some((&nc, "795dbb614e2d1bfd")),
        );
        let alg = if sha256 { "SHA-256" } else { "MD5" };
        format!(
            "Digest username=\"user\", realm=\"rtpmic\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{r}\", algorithm=\"{alg}\", qop=\"auth\", cnonce=\"795dbb614e2d1bfd\", nc={nc}"
        )
    }

    /// As GStreamer 1.22 and live555 write it: RFC 2069, no qop, no algorithm.
    pub fn authorization_2069(password: &str, method: &str, uri: &str, nonce: &str) -> String {
        let r = digest_response(false, "user", password, method, uri, nonce, None);
        format!("Digest username=\"user\", realm=\"rtpmic\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\"")
    }

    /// The nonce of a challenge.
    pub fn nonce_of(challenge: &str) -> String {
        let start = challenge.find("nonce=\"").unwrap() + 7;
        let end = challenge[start..].find('"').unwrap() + start;
        challenge[start..end].to_string()
    }

    const URI: &str = "rtsp://127.0.0.1:8554/mic";

    #[test]
    fn ffmpeg_captured_answer_verifies() {
        // Captured from ffmpeg 5.1 (Lavf59.27.100) against a server whose challenge carried
        // this nonce, user "user", password "secret": the hash formula is the RFC's.
        assert_eq!(
            digest_response(
                false,
                "user",
                "secret",
                "DESCRIBE",
                "rtsp://127.0.0.1:18554/mic",
                "abcdef0123456789",
                Some(("00000001", "795dbb614e2d1bfd"))
            ),
            "54624e6a5c9fc6e5343bda1dc245c287"
        );
        // And from GStreamer 1.22 (RFC 2069 form).
        assert_eq!(
            digest_response(
                false,
                "user",
                "secret",
                "DESCRIBE",
                "rtsp://127.0.0.1:18555/mic",
                "abcdef0123456789",
                None
            ),
            "b8a74907b7b35989bf3f92ee525242a2"
        );
    }

    #[test]
    fn md5_sha256_and_rfc2069_answers_are_granted() {
        let a = auth(AuthMode::Digest);
        let now = 1_000_000_000;
        let nonce = nonce_of(&a.challenges(now, false)[0]);
        for (sha, nc) in [(false, 1), (true, 2)] {
            let h = authorization(sha, "secret", "DESCRIBE", URI, &nonce, nc);
            let mut last = None;
            assert_eq!(
                a.check(now, "DESCRIBE", Some("/mic"), Some(&h), &mut last),
                Verdict::Granted,
                "sha256={sha}"
            );
        }
        let h = authorization_2069("secret", "SETUP", "rtsp://10.0.0.1/mic/trackID=0", &nonce);
        assert_eq!(
            a.check(now, "SETUP", Some("/mic/trackID=0"), Some(&h), &mut None),
            Verdict::Granted,
            "another host in the URI is fine"
        );
    }

    #[test]
    fn wrong_credentials_fail() {
        let a = auth(AuthMode::Digest);
        let now = 5;
        let nonce = a.nonce(now);
        let mut last = None;
        let wrong = authorization(false, "guess", "DESCRIBE", URI, &nonce, 1);
        assert_eq!(
            a.check(now, "DESCRIBE", Some("/mic"), Some(&wrong), &mut last),
            Verdict::Failed
        );
        let good = authorization(false, "secret", "DESCRIBE", URI, &nonce, 1);
        assert_eq!(
            a.check(now, "PLAY", Some("/mic"), Some(&good), &mut last),
            Verdict::Failed,
            "the method is part of the hash"
        );
        assert_eq!(
            a.check(now, "DESCRIBE", Some("/other"), Some(&good), &mut last),
            Verdict::Failed,
            "for another resource"
        );
        let other_user = good.replace("username=\"user\"", "username=\"admin\"");
        assert_eq!(
            a.check(now, "DESCRIBE", Some("/mic"), Some(&other_user), &mut last),
            Verdict::Failed
        );
        let sess = good.replace("\"MD5\"", "MD5-sess");
        assert_eq!(
            a.check(now, "DESCRIBE", Some("/mic"), Some(&sess), &mut last),
            Verdict::Failed
        );
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("user:secret")
        );
        assert_eq!(
            a.check(now, "DESCRIBE", Some("/mic"), Some(&basic), &mut last),
            Verdict::Failed,
            "Basic in Digest mode"
        );
        for garbage in [
            "Digest",
            "Digest ,,,",
            "Digest username=\"unterminated",
            "Negotiate abc",
            "",
        ] {
            assert_eq!(
                a.check(now, "DESCRIBE", Some("/mic"), Some(garbage), &mut last),
                Verdict::Failed
            );
        }
        assert_eq!(
            a.check(now, "DESCRIBE", Some("/mic"), None, &mut last),
            Verdict::Missing
        );
    }

    #[test]
    fn nonces_expire_and_foreign_ones_are_stale() {
        let a = auth(AuthMode::Digest);
        let issued = 1_000;
        let nonce = a.nonce(issued);
        let h = authorization(true, "secret", "DESCRIBE", URI, &nonce, 1);
        let lifetime = AuthConfig::new("u", Password::new("p")).nonce_lifetime_ns;
        assert_eq!(
            a.check(issued + lifetime, "DESCRIBE", Some("/mic"), Some(&h), &mut None),
            Verdict::Granted
        );
        assert_eq!(
            a.check(issued + lifetime + 1, "DESCRIBE", Some("/mic"), Some(&h), &mut None),
            Verdict::Stale { expired: true }
        );
        // A previous run's nonce (another secret), with the right password.
        let before = Authenticator::new(&AuthConfig::new("user", Password::new("secret")), &[9; 32]);
        let old = before.nonce(issued);
        let h = authorization(true, "secret", "DESCRIBE", URI, &old, 1);
        assert_eq!(
            a.check(issued, "DESCRIBE", Some("/mic"), Some(&h), &mut None),
            Verdict::Stale { expired: false }
        );
        // A stale nonce with a wrong password is a failure, not a retry.
        let h = authorization(true, "guess", "DESCRIBE", URI, &old, 1);
        assert_eq!(
            a.check(issued, "DESCRIBE", Some("/mic"), Some(&h), &mut None),
            Verdict::Failed
        );
        // Tampered time.
        let forged = format!("{:016x}{}", issued + 1, &nonce[16..]);
        let h = authorization(true, "secret", "DESCRIBE", URI, &forged, 1);
        assert_eq!(
            a.check(issued + 2, "DESCRIBE", Some("/mic"), Some(&h), &mut None),
            Verdict::Stale { expired: false }
        );
    }

    #[test]
    fn a_replayed_count_is_stale() {
        let a = auth(AuthMode::Digest);
        let nonce = a.nonce(10);
        let mut last = None;
        let first = authorization(false, "secret", "DESCRIBE", URI, &nonce, 1);
        assert_eq!(
            a.check(10, "DESCRIBE", Some("/mic"), Some(&first), &mut last),
            Verdict::Granted
        );
        assert_eq!(
            a.check(11, "DESCRIBE", Some("/mic"), Some(&first), &mut last),
            Verdict::Stale { expired: false }
        );
        let second = authorization(false, "secret", "DESCRIBE", URI, &nonce, 2);
        assert_eq!(
            a.check(12, "DESCRIBE", Some("/mic"), Some(&second), &mut last),
            Verdict::Granted
        );
    }

    #[test]
    fn basic_only_in_basic_mode() {
        let a = auth(AuthMode::Basic);
        let b64 = |s: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s));
        assert_eq!(
            a.check(0, "DESCRIBE", Some("/mic"), Some(&b64("user:secret")), &mut None),
            Verdict::Granted
        );
        assert_eq!(
            a.check(0, "DESCRIBE", Some("/mic"), Some(&b64("user:secreT")), &mut None),
            Verdict::Failed
        );
        assert_eq!(
            a.check(0, "DESCRIBE", Some("/mic"), Some("Basic !!!"), &mut None),
            Verdict::Failed
        );
        let c = a.challenges(0, false);
        assert_eq!(c.len(), 3);
        assert!(c[0].contains("algorithm=SHA-256") && c[1].contains("algorithm=MD5"));
        assert_eq!(c[2], "Basic realm=\"rtpmic\"");
    }

    #[test]
    fn challenges_read_as_live555_reads_them() {
        let a = auth(AuthMode::Digest);
        let c = a.challenges(42, true);
        assert_eq!(c.len(), 2);
        for ch in &c {
            assert!(ch.starts_with("Digest realm=\"rtpmic\", nonce=\""), "{ch}");
            assert!(ch.contains("\", stale=true, algorithm="), "{ch}");
            assert!(ch.ends_with("qop=\"auth\""), "{ch}");
        }
        assert_eq!(nonce_of(&c[0]), nonce_of(&c[1]), "one nonce for both");
        assert_eq!(nonce_of(&c[0]).len(), NONCE_LEN);
        assert!(!a.challenges(42, false)[0].contains("stale"));
    }

    #[test]
    fn the_password_shows_nowhere() {
        let c = AuthConfig::new("user", Password::new("hunter2-secret"));
        let a = Authenticator::new(&c, &SECRET);
        for text in [format!("{c:?}"), format!("{a:?}"), a.challenges(0, true).join("\n")] {
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn throttle_slows_a_source_and_forgets_it() {
        let mut t = Throttle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let s = 1_000_000_000u64;
        assert_eq!(t.failed(0, ip), 0, "the first failure is answered at once");
        assert_eq!(t.failed(s, ip), s + s / 2);
        assert_eq!(t.failed(3 * s, ip), 4 * s);
        assert_eq!(t.failed(10 * s, ip), 12 * s);
        // Parallel attempts queue behind each other.
        let a = t.failed(20 * s, ip);
        let b = t.failed(20 * s, ip);
        assert_eq!((a, b), (24 * s, 32 * s));
        let c = t.failed(20 * s, ip);
        assert_eq!(c, 40 * s, "capped at 8 s apart");
        // Another source is not slowed; an IPv6 host is its /64.
        assert_eq!(t.failed(20 * s, "192.0.2.2".parse().unwrap()), 20 * s);
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(t.failed(0, v6a), 0);
        assert_eq!(t.failed(0, v6b), s / 2, "same /64");
        // Forgotten after a quiet while, or after a success.
        assert_eq!(t.failed(20 * s + FORGET_NS + 1, ip), 20 * s + FORGET_NS + 1);
        t.failed(0, "192.0.2.2".parse().unwrap());
        t.succeeded("192.0.2.2".parse().unwrap());
        assert_eq!(t.failed(0, "192.0.2.2".parse().unwrap()), 0);
    }

    #[test]
    fn throttle_table_is_bounded() {
        let mut t = Throttle::default();
        for i in 0..(THROTTLE_SOURCES as u32 * 4) {
            t.failed(u64::from(i), IpAddr::from(i.to_be_bytes()));
        }
        assert_eq!(t.len(), THROTTLE_SOURCES);
        // The most recent sources are the ones kept.
        let last = IpAddr::from((THROTTLE_SOURCES as u32 * 4 - 1).to_be_bytes());
        assert!(t.failed(10_000, last) > 10_000);
    }
}
