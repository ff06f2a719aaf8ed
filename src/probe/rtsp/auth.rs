//! The client side of RTSP authentication (RFC 2326 §D with HTTP's schemes): reading a 401's
//! `WWW-Authenticate` challenges and answering them with the URL's credentials.
//!
//! * Digest (RFC 7616): SHA-256 is preferred over MD5 when both are offered; `qop=auth`
//!   (with `nc` and `cnonce`) when offered, else the RFC 2069 form without `qop` (what
//!   gst-rtsp-server offers). `-sess` algorithms and `auth-int` alone are not supported: such a
//!   challenge is skipped.
//! * Basic (RFC 7617) when it is the only scheme offered that we can answer.
//!
//! The server side is [`crate::rtsp::auth`]; its hashing helpers are private to it (they work
//! on stored hashes, not passwords), so the few lines of RFC 7616 §3.4.1 are written again
//! here from the password.
//!
//! The password lives in [`Credentials`] (zeroized on drop, hidden from `Debug`) and is never
//! part of an error.

use std::fmt;

use base64::Engine;
use md5::Md5;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A user name and password, from the URL (percent-decoded).
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    password: Zeroizing<String>,
}

impl Credentials {
    pub fn new(user: String, password: String) -> Credentials {
        Credentials {
            user,
            password: Zeroizing::new(password),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({:?}, password hidden)", self.user)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

/// A challenge we can answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Digest {
        realm: String,
        nonce: String,
        opaque: Option<String>,
        algorithm: Algorithm,
        /// The challenge named its algorithm (echoed back; RFC 2069 servers name none).
        algorithm_named: bool,
        qop_auth: bool,
        stale: bool,
    },
    Basic,
}

/// Challenges longer than this are not read (the head is bounded anyway).
const MAX_PARAMS: usize = 64;

/// Splits `WWW-Authenticate` values into challenges: each is `scheme` followed by
/// `name=value` parameters (values quoted or not), all comma separated (several headers
/// arrive joined with ", " by rtsp-types, which RFC 7235 makes equivalent).
fn split(header: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut rest = header;
    let mut items = 0;
    while items < MAX_PARAMS * 4 {
        items += 1;
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..end];
        let after = rest[end..].trim_start_matches([' ', '\t']);
        if let (Some(value), false) = (after.strip_prefix('='), token.is_empty()) {
            // A parameter of the current challenge.
            let value = value.trim_start_matches([' ', '\t']);
            let (v, remaining) = match value.strip_prefix('"') {
                Some(q) => unquote(q),
                None => {
                    let e = value.find(',').unwrap_or(value.len());
                    (value[..e].trim().to_string(), &value[e..])
                }
            };
            if let Some((_, params)) = out.last_mut() {
                if params.len() < MAX_PARAMS {
                    params.push((token.to_ascii_lowercase(), v));
                }
            }
            rest = remaining;
        } else if token.is_empty() {
            // A stray '=': skip it.
            rest = &rest[rest.chars().next().map_or(0, char::len_utf8)..];
        } else {
            out.push((token.to_string(), Vec::new()));
            rest = &rest[end..];
        }
    }
    out
}

/// A quoted string's value (after its opening quote) and what follows its closing quote.
fn unquote(q: &str) -> (String, &str) {
    let mut v = String::new();
    let mut chars = q.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, e)) = chars.next() {
                    v.push(e);
                }
            }
            '"' => return (v, &q[i + 1..]),
            c => v.push(c),
        }
    }
    (v, "")
}

/// The challenges of `header` we can answer, in the order offered.
pub fn challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    for (scheme, params) in split(header) {
        let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        if scheme.eq_ignore_ascii_case("Basic") {
            out.push(Challenge::Basic);
        } else if scheme.eq_ignore_ascii_case("Digest") {
            let (Some(realm), Some(nonce)) = (get("realm"), get("nonce")) else {
                continue;
            };
            let algorithm = match get("algorithm") {
                None => Algorithm::Md5,
                Some(a) if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
                Some(a) if a.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
                Some(_) => continue,
            };
            let qop_auth = match get("qop") {
                None => false,
                Some(q) if q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")) => true,
                Some(_) => continue,
            };
            out.push(Challenge::Digest {
                realm,
                nonce,
                opaque: get("opaque"),
                algorithm,
                algorithm_named: get("algorithm").is_some(),
                qop_auth,
                stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
            });
        }
    }
    out
}

/// The challenge to answer: Digest SHA-256, then Digest MD5, then Basic.
pub fn choose(offered: Vec<Challenge>) -> Option<Challenge> {
    let rank = |c: &Challenge| match c {
        Challenge::Digest {
            algorithm: Algorithm::Sha256,
            ..
        } => 0,
        Challenge::Digest { .. } => 1,
        Challenge::Basic => 2,
    };
    offered.into_iter().min_by_key(rank)
}

/// Answers one challenge for every request of the session.
#[derive(Debug)]
pub struct Answerer {
    pub challenge: Challenge,
    nc: u32,
    cnonce: String,
}

impl Answerer {
    pub fn new(challenge: Challenge) -> Answerer {
        let cnonce: u64 = rand::random();
        Answerer {
            challenge,
            nc: 0,
            cnonce: format!("{cnonce:016x}"),
        }
    }

    /// The `Authorization` value for `method` on `uri` (the request line's URI).
    pub fn authorization(&mut self, creds: &Credentials, method: &str, uri: &str) -> String {
        match &self.challenge {
            Challenge::Basic => {
                let plain = Zeroizing::new(format!("{}:{}", creds.user, creds.password.as_str()));
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(plain.as_bytes())
                )
            }
            Challenge::Digest {
                realm,
                nonce,
                opaque,
                algorithm,
                algorithm_named,
                qop_auth,
                ..
            } => {
                let alg = *algorithm;
                let ha1 = Zeroizing::new(hash(alg, &[&creds.user, realm, creds.password.as_str()]));
                let ha2 = hash(alg, &[method, uri]);
                let mut h = format!(
                    "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\"",
                    quote(&creds.user),
                    quote(realm),
                    quote(nonce),
                    quote(uri)
                );
                let response = if *qop_auth {
                    self.nc = self.nc.wrapping_add(1);
                    let nc = format!("{:08x}", self.nc);
                    let r = hash(alg, &[&ha1, nonce, &nc, &self.cnonce, "auth", &ha2]);
                    h.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{}\"", self.cnonce));
                    r
                } else {
                    hash(alg, &[&ha1, nonce, &ha2])
                };
                h.push_str(&format!(", response=\"{response}\""));
                if *algorithm_named {
                    h.push_str(match alg {
                        Algorithm::Md5 => ", algorithm=MD5",
                        Algorithm::Sha256 => ", algorithm=SHA-256",
                    });
                }
                if let Some(o) = opaque {
                    h.push_str(&format!(", opaque=\"{}\"", quote(o)));
                }
                h
            }
        }
    }
}

/// `H(a:b:…)` in lower-case hex (RFC 7616 §3.4.1).
fn hash(alg: Algorithm, parts: &[&str]) -> String {
    fn run<D: Digest>(parts: &[&str]) -> String {
        let mut d = D::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                d.update(b":");
            }
            d.update(p.as_bytes());
        }
        d.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
    match alg {
        Algorithm::Md5 => run::<Md5>(parts),
        Algorithm::Sha256 => run::<Sha256>(parts),
    }
}

/// `s` inside a quoted string.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtsp::auth::{AuthConfig, AuthMode, Authenticator, Password, Verdict};

    fn creds(p: &str) -> Credentials {
        Credentials::new("user".into(), p.into())
    }

    #[test]
    fn rfc7616_example() {
        // RFC 7616 §3.9.1: the same request answered with SHA-256 and with MD5.
        let c = Credentials::new("Mufasa".into(), "Circle of Life".into());
        for (alg, name, expected) in [
            (
                Algorithm::Sha256,
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            (Algorithm::Md5, "MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ] {
            let header = format!(
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={name}, \
                 nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                 opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            );
            let ch = challenges(&header);
            assert_eq!(ch.len(), 1);
            assert!(matches!(&ch[0], Challenge::Digest { algorithm, qop_auth: true, .. } if *algorithm == alg));
            let mut a = Answerer::new(ch[0].clone());
            a.cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into();
            let h = a.authorization(&c, "GET", "/dir/index.html");
            assert!(h.contains(&format!("response=\"{expected}\"")), "{h}");
            assert!(
                h.contains("nc=00000001") && h.contains(&format!("algorithm={name}")),
                "{h}"
            );
            assert!(
                h.contains("opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""),
                "{h}"
            );
            assert!(!h.contains("Circle of Life"));
            // The count grows with each request on the nonce.
            assert!(a.authorization(&c, "GET", "/").contains("nc=00000002"));
        }
    }

    #[test]
    fn gstreamer_challenge_gets_an_rfc2069_answer() {
        // gst-rtsp-server 1.22: Digest without qop or algorithm.
        let ch = challenges("Digest realm=\"GStreamer RTSP Server\", nonce=\"a6326d5b76ee8f9d\"");
        let mut a = Answerer::new(choose(ch).unwrap());
        let h = a.authorization(&creds("secret"), "DESCRIBE", "rtsp://127.0.0.1:8554/test");
        let ha1 = hash(Algorithm::Md5, &["user", "GStreamer RTSP Server", "secret"]);
        let ha2 = hash(Algorithm::Md5, &["DESCRIBE", "rtsp://127.0.0.1:8554/test"]);
        let r = hash(Algorithm::Md5, &[&ha1, "a6326d5b76ee8f9d", &ha2]);
        assert_eq!(
            h,
            format!(
                "Digest username=\"user\", realm=\"GStreamer RTSP Server\", nonce=\"a6326d5b76ee8f9d\", \
                 uri=\"rtsp://127.0.0.1:8554/test\", response=\"{r}\""
            )
        );
    }

    #[test]
    fn choice_and_joined_headers() {
        // Two headers joined by rtsp-types, Basic first.
        let ch = challenges(
            "Basic realm=\"r\", Digest realm=\"r\", nonce=\"n1\", algorithm=MD5, \
             Digest realm=\"r\", nonce=\"n2\", algorithm=SHA-256, stale=TRUE",
        );
        assert_eq!(ch.len(), 3);
        let Some(Challenge::Digest { nonce, stale, .. }) = choose(ch) else {
            panic!()
        };
        assert_eq!((nonce.as_str(), stale), ("n2", true));
        assert_eq!(choose(challenges("Basic realm=\"x\"")), Some(Challenge::Basic));
        let mut a = Answerer::new(Challenge::Basic);
        // RFC 7617 §2's example.
        let c = Credentials::new("Aladdin".into(), "open sesame".into());
        assert_eq!(a.authorization(&c, "X", "y"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        // What we cannot answer is skipped.
        assert!(challenges("Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess").is_empty());
        assert!(challenges("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"").is_empty());
        assert!(challenges("Digest realm=\"r\"").is_empty());
        assert!(challenges("Bearer realm=\"r\"").is_empty());
    }

    #[test]
    fn hostile_headers_do_not_panic() {
        for h in [
            "",
            "=",
            "==,,=\"",
            "Digest realm=\"unterminated",
            "Digest realm=\"a\\",
            "Digest ,,, realm = \"r\" , nonce = n",
            "é=ü, Digest é",
            &"Digest a=b, ".repeat(10_000),
        ] {
            let _ = challenges(h);
        }
        let ch = challenges("Digest realm = \"r\" , nonce = n");
        assert!(
            matches!(&ch[0], Challenge::Digest { nonce, .. } if nonce == "n"),
            "{ch:?}"
        );
    }

    /// rtpmic's own RTSP server core takes our answers to its challenges: SHA-256 with qop,
    /// and MD5 when only the MD5 challenge is kept.
    #[test]
    fn rtpmics_server_accepts_our_answers() {
        let mut cfg = AuthConfig::new("user", Password::new("pa\"ss"));
        cfg.mode = AuthMode::Digest;
        let server = Authenticator::new(&cfg, &[9; 32]);
        let now = 1_000_000_000;
        let offered = server.challenges(now, false).join(", ");
        let uri = "rtsp://127.0.0.1:8554/mic";
        for md5_only in [false, true] {
            let mut ch = challenges(&offered);
            if md5_only {
                ch.retain(|c| {
                    matches!(
                        c,
                        Challenge::Digest {
                            algorithm: Algorithm::Md5,
                            ..
                        }
                    )
                });
            }
            let mut a = Answerer::new(choose(ch).unwrap());
            let mut last = None;
            for method in ["DESCRIBE", "SETUP"] {
                let h = a.authorization(&creds("pa\"ss"), method, uri);
                assert_eq!(
                    server.check(now, method, Some("/mic"), Some(&h), &mut last),
                    Verdict::Granted,
                    "{h}"
                );
            }
            let h = Answerer::new(a.challenge.clone()).authorization(&creds("wrong"), "DESCRIBE", uri);
            assert_eq!(
                server.check(now, "DESCRIBE", Some("/mic"), Some(&h), &mut None),
                Verdict::Failed
            );
        }
    }
}
