//! The rules that tie keys together, checked after every key was read on its own
//! ([`super::reader`]). Each rule reports on the key the user should change, and where the
//! value it checks was refused, puts that key's default in its place so that the rules
//! after it see a consistent configuration (and report nothing more about it).
//!
//! They run in the order of [`check`]: the codec's rate before its frame size (an L16 frame
//! must fit one datagram at that rate) and payload type (L16's static type 11 is 44.1 kHz).

use super::reader::Parser;
use super::{Codec, Config, MAX_PAYLOAD};

/// Applies every rule, in order.
pub(super) fn check(p: &mut Parser, c: &mut Config) {
    destination_required(p, c);
    rate_fits_codec(p, c);
    frame_fits_codec(p, c);
    payload_type_fits_codec(p, c);
    red_payload_type_differs(p, c);
    opus_only(p, c);
    loss_bounds(p);
    srtp_key_needs_srtp(p, c);
    srtp(p, c);
    destinations_fit_max_dest(p, c);
    rtcp_port_room(p, c);
    rtsp_access(p, c);
    rtsp_srtp(p, c);
}

/// `RTPMIC_DEST` has no default: a sender with nowhere to send is a mistake, unless RTSP
/// clients pull the stream (a pull-only board).
fn destination_required(p: &mut Parser, c: &Config) {
    if !p.given("RTPMIC_DEST") && !c.rtsp.enabled() {
        p.error(
            "RTPMIC_DEST",
            "required unless RTPMIC_RTSP_LISTEN is set; set a comma list of host:port, e.g. 192.0.2.10:5004,[2001:db8::1]:5004",
        );
    }
}

/// `RTPMIC_RATE` is one the codec takes (Opus's five, G.711's 8 kHz, L16's six); unset or
/// refused, the codec's default ([`Codec::default_rate`]).
fn rate_fits_codec(p: &mut Parser, c: &mut Config) {
    let rates = c.codec.rates();
    if p.accepted("RTPMIC_RATE") && !rates.contains(&c.rate) {
        let list: Vec<String> = rates.iter().map(|r| r.to_string()).collect();
        let why = format!("not a rate {} accepts; allowed: {}", c.codec.name(), list.join(" "));
        p.error("RTPMIC_RATE", &why);
    }
    if !p.accepted("RTPMIC_RATE") {
        c.rate = c.codec.default_rate();
    }
}

/// `RTPMIC_FRAME_MS` (whose reader checked it against the codec's sizes): unset or refused,
/// the codec's default; an L16 frame must fit one unfragmented datagram at the rate.
fn frame_fits_codec(p: &mut Parser, c: &mut Config) {
    if p.accepted("RTPMIC_FRAME_MS") && c.codec == Codec::L16 {
        let bytes = u64::from(c.rate) * u64::from(c.frame_us) / 1_000_000 * 2;
        if bytes > MAX_PAYLOAD as u64 {
            let rate = c.rate;
            p.error(
                "RTPMIC_FRAME_MS",
                &format!("l16 at {rate} Hz makes {bytes}-byte payloads, more than {MAX_PAYLOAD} fit in one unfragmented datagram; use a shorter frame or a lower RTPMIC_RATE"),
            );
        }
    }
    if !p.accepted("RTPMIC_FRAME_MS") {
        c.frame_us = c.codec.default_frame_us();
    }
}

/// `RTPMIC_PAYLOAD_TYPE` is dynamic (96..127) or the codec's static one at its rate
/// (RFC 3551 §6); unset or refused, the codec's default.
fn payload_type_fits_codec(p: &mut Parser, c: &mut Config) {
    if p.accepted("RTPMIC_PAYLOAD_TYPE") && !c.codec.payload_type_fits(c.payload_type, c.rate) {
        let why = format!(
            "not a payload type for {}; allowed: {}",
            c.codec.name(),
            p.allowed("RTPMIC_PAYLOAD_TYPE")
        );
        p.error("RTPMIC_PAYLOAD_TYPE", &why);
    }
    if !p.accepted("RTPMIC_PAYLOAD_TYPE") {
        c.payload_type = c.codec.default_payload_type();
    }
}

/// With redundancy on, RFC 2198 packets carry `RTPMIC_RED_PAYLOAD_TYPE` and wrap blocks of
/// `RTPMIC_PAYLOAD_TYPE`: a receiver cannot tell them apart when they are the same.
fn red_payload_type_differs(p: &mut Parser, c: &Config) {
    if c.redundancy > 0 && c.red_payload_type == c.payload_type {
        let why = format!(
            "same as RTPMIC_PAYLOAD_TYPE; allowed: {}",
            p.allowed("RTPMIC_RED_PAYLOAD_TYPE")
        );
        p.error("RTPMIC_RED_PAYLOAD_TYPE", &why);
    }
}

/// In-band FEC and DTX are Opus features: turned on for another codec, they would silently
/// do nothing.
fn opus_only(p: &mut Parser, c: &Config) {
    if c.codec == Codec::Opus {
        return;
    }
    for (key, on) in [("RTPMIC_OPUS_FEC", c.opus_fec), ("RTPMIC_OPUS_DTX", c.opus_dtx)] {
        if on {
            p.error(key, "needs RTPMIC_CODEC=opus; allowed: off for pcmu, pcma and l16");
        }
    }
}

/// `RTPMIC_OPUS_LOSS_MAX_PERCENT` is at least the minimum, as documented, even while a fixed
/// `RTPMIC_OPUS_LOSS_PERCENT` leaves both unused: the numbers as read, not the `Config`'s
/// (which keeps no bounds with a fixed percent).
fn loss_bounds(p: &mut Parser) {
    let (Some(min), Some(max)) = (
        p.number("RTPMIC_OPUS_LOSS_MIN_PERCENT"),
        p.number("RTPMIC_OPUS_LOSS_MAX_PERCENT"),
    ) else {
        return;
    };
    if max < min {
        let why = format!(
            "below RTPMIC_OPUS_LOSS_MIN_PERCENT={min}; allowed: {}",
            p.allowed("RTPMIC_OPUS_LOSS_MAX_PERCENT")
        );
        p.error("RTPMIC_OPUS_LOSS_MAX_PERCENT", &why);
    }
}

/// `RTPMIC_SRTP_KEY` means nothing with SRTP off (or refused): a key set there was meant for
/// an encrypted stream, which the operator must turn on.
fn srtp_key_needs_srtp(p: &mut Parser, c: &Config) {
    if c.srtp.is_none() && p.given("RTPMIC_SRTP_KEY") && !p.refused("RTPMIC_SRTP_KEY") {
        p.error(
            "RTPMIC_SRTP_KEY",
            "set but RTPMIC_SRTP is off; allowed: unset, or turn RTPMIC_SRTP on",
        );
    }
}

/// SRTP: a key made at random when `RTPMIC_SRTP_KEY` gave none; SAP would announce the key
/// to the whole LAN; and a fixed SSRC with a fixed key would make every restart reuse key
/// stream (RFC 3711 §9.1: the same key, SSRC and packet index must never meet twice). Any
/// `RTPMIC_SSRC` given counts as fixed, even one refused.
fn srtp(p: &mut Parser, c: &mut Config) {
    if let Some(s) = c.srtp.as_mut().filter(|s| s.random_key) {
        match crate::rtp::srtp::MasterKey::random() {
            Ok(key) => s.key = key,
            Err(e) => {
                c.srtp = None;
                let why = format!("no random key: {e}; allowed: a key of your own");
                p.error("RTPMIC_SRTP_KEY", &why);
            }
        }
    }
    let Some(s) = &c.srtp else { return };
    if c.sap {
        p.error(
            "RTPMIC_SAP",
            "would announce the SRTP key in clear to the whole LAN; allowed: off with RTPMIC_SRTP",
        );
    }
    if p.given("RTPMIC_SSRC") && !s.random_key {
        p.error(
            "RTPMIC_SSRC",
            "a fixed SSRC with a fixed RTPMIC_SRTP_KEY reuses SRTP key stream after a restart (RFC 3711 §9.1); allowed: unset (random) with RTPMIC_SRTP_KEY",
        );
    }
}

/// The destination slots are allocated at start, `RTPMIC_MAX_DEST` of them.
fn destinations_fit_max_dest(p: &mut Parser, c: &Config) {
    if c.dest.len() > c.max_dest {
        let why = format!(
            "{} destinations, more than RTPMIC_MAX_DEST={}; allowed: at most RTPMIC_MAX_DEST",
            c.dest.len(),
            c.max_dest
        );
        p.error("RTPMIC_DEST", &why);
    }
}

/// RTCP goes to (and is received on) the RTP port + 1 unless muxed (RFC 3550 §11,
/// RFC 5761), so port 65535 has none: the receive side once bound a random port instead,
/// the send side port 0. Odd RTP ports are not refused: §11's even/odd pairing is a SHOULD
/// for the receivers' destination ports, chosen by whoever runs the receiver.
fn rtcp_port_room(p: &mut Parser, c: &Config) {
    if !c.rtcp || c.rtcp_mux {
        return;
    }
    let why = "leaves no port for RTCP, which uses port + 1 (RFC 3550 §11); allowed: a port up to 65534, or RTPMIC_RTCP_MUX=on, or RTPMIC_RTCP=off";
    for d in c.dest.iter().filter(|d| d.port == u16::MAX) {
        let shown = super::reader::shown(&d.to_string());
        p.error("RTPMIC_DEST", &format!("{shown}: port 65535 {why}"));
    }
    if c.bind.is_some_and(|b| b.port() == u16::MAX) {
        p.error("RTPMIC_BIND", &format!("port 65535 {why}"));
    }
}

/// RTSP access control: a user and a password go together; the password comes from
/// `RTPMIC_RTSP_PASSWORD` or from the file `RTPMIC_RTSP_PASSWORD_FILE` names (a regular file
/// of at most 4 KiB, its first line), not both. No line ever shows the password.
fn rtsp_access(p: &mut Parser, c: &mut Config) {
    let r = &mut c.rtsp;
    if let Some(path) = r.password_file.clone() {
        if r.password.is_some() {
            p.error(
                "RTPMIC_RTSP_PASSWORD_FILE",
                "set with RTPMIC_RTSP_PASSWORD; allowed: one of the two",
            );
        }
        match super::env_file::read_regular(&path, 4096, "a password file") {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).unwrap_or_default();
                let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
                if line.is_empty() || line.len() > 255 || line.contains(char::is_control) {
                    r.password = None;
                    p.error(
                        "RTPMIC_RTSP_PASSWORD_FILE",
                        "its first line is not a password; allowed: 1..255 bytes of UTF-8 text without control characters on the first line",
                    );
                } else {
                    r.password = Some(crate::rtsp::auth::Password::new(line));
                }
            }
            Err(why) => {
                r.password = None;
                p.error("RTPMIC_RTSP_PASSWORD_FILE", &why);
            }
        }
    }
    match (&r.user, &r.password) {
        (Some(_), None) if !p.given("RTPMIC_RTSP_PASSWORD_FILE") => p.error(
            "RTPMIC_RTSP_PASSWORD",
            "required with RTPMIC_RTSP_USER; allowed: a password, or RTPMIC_RTSP_PASSWORD_FILE",
        ),
        (None, Some(_)) => p.error(
            "RTPMIC_RTSP_USER",
            "required with a password; allowed: the user name RTSP clients log in with",
        ),
        _ => {}
    }
}

/// With SRTP the SDP that DESCRIBE serves carries the key (RFC 4568 `a=crypto`): only
/// clients that authenticated may get it.
fn rtsp_srtp(p: &mut Parser, c: &Config) {
    if c.rtsp.enabled() && c.srtp.is_some() && c.rtsp.user.is_none() {
        p.error(
            "RTPMIC_RTSP_USER",
            "required with RTPMIC_SRTP and RTPMIC_RTSP_LISTEN (DESCRIBE gives the SRTP key); allowed: a user and a password",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, LossPercent};

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, super::super::ConfigErrors> {
        let mut v = vec![("RTPMIC_DEST", "127.0.0.1:5004")];
        v.extend_from_slice(pairs);
        Config::from_pairs(v)
    }

    #[test]
    fn loss_bounds_hold_even_under_a_fixed_percent() {
        let e = cfg(&[
            ("RTPMIC_OPUS_LOSS_MIN_PERCENT", "50"),
            ("RTPMIC_OPUS_LOSS_MAX_PERCENT", "20"),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "config: RTPMIC_OPUS_LOSS_MAX_PERCENT=\"20\": below RTPMIC_OPUS_LOSS_MIN_PERCENT=50; allowed: 0..100, at least RTPMIC_OPUS_LOSS_MIN_PERCENT"
        );
        assert!(cfg(&[
            ("RTPMIC_OPUS_LOSS_PERCENT", "10"),
            ("RTPMIC_OPUS_LOSS_MAX_PERCENT", "1")
        ])
        .is_err());
        let c = cfg(&[
            ("RTPMIC_OPUS_LOSS_PERCENT", "10"),
            ("RTPMIC_OPUS_LOSS_MIN_PERCENT", "1"),
        ])
        .unwrap();
        assert_eq!(c.opus_loss, LossPercent::Fixed(10));
        let c = cfg(&[
            ("RTPMIC_OPUS_LOSS_MIN_PERCENT", "1"),
            ("RTPMIC_OPUS_LOSS_MAX_PERCENT", "9"),
        ])
        .unwrap();
        assert_eq!(c.opus_loss, LossPercent::Auto { min: 1, max: 9 });
    }

    #[test]
    fn srtp_rules() {
        let srtp = ("RTPMIC_SRTP", "AES_CM_128_HMAC_SHA1_80");
        let key = ("RTPMIC_SRTP_KEY", "9IcLa2ikhznyH0kITvN+NuwJoyTq27fd5L9rNKBA");
        let c = cfg(&[srtp]).unwrap();
        assert!(c.srtp.as_ref().is_some_and(|s| s.random_key));
        // Two random keys differ (the placeholder was replaced).
        let other = cfg(&[srtp]).unwrap();
        assert!(c.srtp.unwrap().key != other.srtp.unwrap().key);
        let e = cfg(&[key]).unwrap_err().to_string();
        assert_eq!(
            e,
            "config: RTPMIC_SRTP_KEY=\"(hidden)\": set but RTPMIC_SRTP is off; allowed: unset, or turn RTPMIC_SRTP on"
        );
        let e = cfg(&[srtp, key, ("RTPMIC_SSRC", "x"), ("RTPMIC_SAP", "on")]).unwrap_err();
        let lines: Vec<&str> = e.0.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines[0].starts_with("RTPMIC_SAP=\"on\": would announce"), "{lines:#?}");
        assert!(
            lines[1].starts_with("RTPMIC_SSRC=\"x\": not a whole number"),
            "{lines:#?}"
        );
        assert!(lines[2].starts_with("RTPMIC_SSRC=\"x\": a fixed SSRC"), "{lines:#?}");
        assert!(
            cfg(&[srtp, ("RTPMIC_SSRC", "5")]).is_ok(),
            "a random key with a fixed SSRC"
        );
    }

    #[test]
    fn rtsp_makes_destinations_optional_and_access_needs_user_and_password() {
        let pull_only = Config::from_pairs([("RTPMIC_RTSP_LISTEN", "0.0.0.0:8554")]).unwrap();
        assert!(pull_only.dest.is_empty() && pull_only.rtsp.enabled());
        assert_eq!((pull_only.rtsp.path.as_str(), pull_only.rtsp.max_clients), ("/mic", 16));
        assert!(
            Config::from_pairs([("RTPMIC_RTSP_PATH", "/x")]).is_err(),
            "no RTSP, no destination"
        );
        let line = |pairs: &[(&str, &str)]| cfg(pairs).unwrap_err().to_string();
        let e = line(&[("RTPMIC_RTSP_USER", "nvr")]);
        assert!(
            e.contains("RTPMIC_RTSP_PASSWORD=\"(hidden)\": required with RTPMIC_RTSP_USER"),
            "{e}"
        );
        let e = line(&[("RTPMIC_RTSP_PASSWORD", "hunter2")]);
        assert!(
            e.contains("RTPMIC_RTSP_USER=\"\": required with a password") && !e.contains("hunter2"),
            "{e}"
        );
        let c = cfg(&[("RTPMIC_RTSP_USER", "nvr"), ("RTPMIC_RTSP_PASSWORD", "hunter2")]).unwrap();
        assert_eq!(c.rtsp.password, Some(crate::rtsp::auth::Password::new("hunter2")));
        assert!(!c.to_env_lines().contains("hunter2"), "check-config never shows it");
        assert!(c.to_env_lines().contains("RTPMIC_RTSP_PASSWORD=(set)\n"));
        let e = line(&[("RTPMIC_RTSP_USER", "nvr"), ("RTPMIC_RTSP_PASSWORD", "(set)")]);
        assert!(e.contains("what check-config shows in place of the password"), "{e}");
    }

    #[test]
    fn a_password_file_is_read_bounded_and_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rtsp.pw");
        std::fs::write(&file, "s3cret pass\nignored\n").unwrap();
        let path = file.to_str().unwrap();
        let c = cfg(&[("RTPMIC_RTSP_USER", "nvr"), ("RTPMIC_RTSP_PASSWORD_FILE", path)]).unwrap();
        assert_eq!(c.rtsp.password, Some(crate::rtsp::auth::Password::new("s3cret pass")));
        assert!(c
            .to_env_lines()
            .contains(&format!("RTPMIC_RTSP_PASSWORD_FILE={path}\n")));
        let e = cfg(&[
            ("RTPMIC_RTSP_USER", "nvr"),
            ("RTPMIC_RTSP_PASSWORD", "x"),
            ("RTPMIC_RTSP_PASSWORD_FILE", path),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("set with RTPMIC_RTSP_PASSWORD; allowed: one of the two"),
            "{e}"
        );
        for bad in ["/dev/zero", "relative.pw"] {
            let e = cfg(&[("RTPMIC_RTSP_USER", "nvr"), ("RTPMIC_RTSP_PASSWORD_FILE", bad)])
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("config: RTPMIC_RTSP_PASSWORD_FILE="), "{e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        std::fs::write(&file, "\n").unwrap();
        let e = cfg(&[("RTPMIC_RTSP_USER", "nvr"), ("RTPMIC_RTSP_PASSWORD_FILE", path)]).unwrap_err();
        assert!(e.to_string().contains("its first line is not a password"), "{e}");
    }

    #[test]
    fn srtp_over_rtsp_needs_authentication() {
        let srtp = ("RTPMIC_SRTP", "AES_CM_128_HMAC_SHA1_80");
        let listen = ("RTPMIC_RTSP_LISTEN", "127.0.0.1:8554");
        let e = cfg(&[srtp, listen]).unwrap_err().to_string();
        assert!(
            e.contains("RTPMIC_RTSP_USER=\"\": required with RTPMIC_SRTP and RTPMIC_RTSP_LISTEN"),
            "{e}"
        );
        assert!(cfg(&[srtp, listen, ("RTPMIC_RTSP_USER", "u"), ("RTPMIC_RTSP_PASSWORD", "p")]).is_ok());
        let e = cfg(&[("RTPMIC_RTSP_MULTICAST", "10.0.0.1:5000")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a multicast address"), "{e}");
    }
}
