//! SIGHUP: what a new configuration means for the running stream. Pure: compares two
//! configurations, does no I/O.
//!
//! Keys in [`LIVE_KEYS`] apply to the running pipeline without a gap (same SSRC, contiguous
//! sequence numbers). Any other change restarts the pipeline: the old one drains and says
//! BYE, a new one starts (new SSRC, RFC 3550 §8.2). Decisions:
//! * `RTPMIC_DEST` is live only while SAP is off (SAP announces the destination, so a change
//!   restarts it) and while the list keeps the same mix of unicast and multicast (the RTCP
//!   reader's source filter depends on it), and only when the new list fits the slots
//!   allocated at start (`RTPMIC_MAX_DEST`).
//! * `RTPMIC_LOG_LEVEL` and `RTPMIC_LOG_TARGET` need a process restart (the logger is set up
//!   once); a reload says so and leaves them.
//! * The RTCP interval keeps the session bandwidth computed at start after a live bitrate
//!   change (RFC 3550 §6.2 allows any fixed fraction; the difference is a few per cent).
//! * The RTSP server's keys ([`RTSP_LIVE_KEYS`]) restart only the RTSP server (its clients
//!   are told goodbye and may reconnect), not the stream, while the server stays on with the
//!   same `RTPMIC_RTSP_MAX_CLIENTS`; turning it on or off, or changing how many clients it
//!   takes, changes the peer slots allocated at start, so the pipeline restarts.

use crate::config::Config;

/// Keys that change on a running pipeline.
pub const LIVE_KEYS: [&str; 7] = [
    "RTPMIC_BITRATE",
    "RTPMIC_OPUS_COMPLEXITY",
    "RTPMIC_DEST",
    "RTPMIC_DSCP",
    "RTPMIC_STATS_INTERVAL_S",
    "RTPMIC_RR_LOSS_WARN_PERCENT",
    "RTPMIC_RR_JITTER_WARN_MS",
];

/// Keys that restart the RTSP server alone (see the module docs).
pub const RTSP_LIVE_KEYS: [&str; 9] = [
    "RTPMIC_RTSP_LISTEN",
    "RTPMIC_RTSP_PATH",
    "RTPMIC_RTSP_SESSION_TIMEOUT_S",
    "RTPMIC_RTSP_MULTICAST",
    "RTPMIC_RTSP_USER",
    "RTPMIC_RTSP_PASSWORD",
    "RTPMIC_RTSP_PASSWORD_FILE",
    "RTPMIC_RTSP_AUTH",
    "RTPMIC_RTSP_TCP_STALL_MS",
];

/// Keys that only a new process picks up.
pub const PROCESS_KEYS: [&str; 2] = ["RTPMIC_LOG_LEVEL", "RTPMIC_LOG_TARGET"];

/// What to do with a new configuration.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing that matters changed.
    Nothing,
    /// Apply these keys to the running pipeline.
    Live(Vec<&'static str>),
    /// Restart the pipeline; the keys that forced it.
    Restart(Vec<&'static str>),
}

/// The keys whose effective value differs between `old` and `new`, in table order: what
/// `check-config` prints for them, and for a secret the secret itself (a rotated SRTP key
/// prints "(set)" both times; [`crate::config::Key::differs`]).
pub fn changed_keys(old: &Config, new: &Config) -> Vec<&'static str> {
    crate::config::KEYS
        .iter()
        .filter(|k| k.differs(old, new))
        .map(|k| k.name)
        .collect()
}

/// Decides how `new` replaces `old`; `slots` is the number of destination slots the running
/// pipeline allocated.
pub fn plan(old: &Config, new: &Config, slots: usize) -> Plan {
    let changed: Vec<&'static str> = changed_keys(old, new)
        .into_iter()
        .filter(|k| !PROCESS_KEYS.contains(k))
        .collect();
    if changed.is_empty() {
        return Plan::Nothing;
    }
    let dest_live = !new.sap && new.dest.len() <= slots && has_multicast(old) == has_multicast(new);
    let rtsp_live = old.rtsp.enabled() && new.rtsp.enabled() && old.rtsp.max_clients == new.rtsp.max_clients;
    let forcing: Vec<&'static str> = changed
        .iter()
        .copied()
        .filter(|k| {
            let live = if RTSP_LIVE_KEYS.contains(k) {
                rtsp_live
            } else {
                LIVE_KEYS.contains(k) && (*k != "RTPMIC_DEST" || dest_live)
            };
            !live
        })
        .collect();
    if forcing.is_empty() {
        Plan::Live(changed)
    } else {
        Plan::Restart(forcing)
    }
}

fn has_multicast(c: &Config) -> bool {
    c.dest.iter().any(|d| d.is_multicast())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut all = vec![("RTPMIC_DEST", "127.0.0.1:5004")];
        all.extend_from_slice(pairs);
        Config::from_pairs(all.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
    }

    #[test]
    fn bitrate_complexity_dscp_and_stats_interval_are_live() {
        let old = config(&[]);
        let new = config(&[
            ("RTPMIC_BITRATE", "64000"),
            ("RTPMIC_OPUS_COMPLEXITY", "3"),
            ("RTPMIC_DSCP", "34"),
            ("RTPMIC_STATS_INTERVAL_S", "5"),
        ]);
        assert_eq!(
            plan(&old, &new, 64),
            Plan::Live(vec![
                "RTPMIC_BITRATE",
                "RTPMIC_OPUS_COMPLEXITY",
                "RTPMIC_DSCP",
                "RTPMIC_STATS_INTERVAL_S"
            ])
        );
    }

    #[test]
    fn the_same_file_again_changes_nothing() {
        let c = config(&[("RTPMIC_BITRATE", "24000")]);
        assert_eq!(plan(&c, &c.clone(), 64), Plan::Nothing);
        // Log keys wait for a new process.
        assert_eq!(
            plan(
                &c,
                &config(&[("RTPMIC_BITRATE", "24000"), ("RTPMIC_LOG_LEVEL", "debug")]),
                64
            ),
            Plan::Nothing
        );
    }

    #[test]
    fn codec_or_device_changes_restart_naming_the_keys() {
        let old = config(&[]);
        let new = config(&[("RTPMIC_CODEC", "pcmu"), ("RTPMIC_BITRATE", "16000")]);
        match plan(&old, &new, 64) {
            Plan::Restart(keys) => assert!(keys.contains(&"RTPMIC_CODEC") && !keys.contains(&"RTPMIC_BITRATE")),
            p => panic!("{p:?}"),
        }
        let new = config(&[("RTPMIC_DEVICE", "hw:2")]);
        assert_eq!(plan(&old, &new, 64), Plan::Restart(vec!["RTPMIC_DEVICE"]));
    }

    #[test]
    fn a_rotated_srtp_key_restarts_and_a_random_one_does_not() {
        let srtp = [("RTPMIC_SRTP", "AES_CM_128_HMAC_SHA1_80")];
        let with_key = |key| config(&[srtp[0], ("RTPMIC_SRTP_KEY", key)]);
        let old = with_key("9IcLa2ikhznyH0kITvN+NuwJoyTq27fd5L9rNKBA");
        let rotated = with_key("X2GjQPdFC3yPOaLaxCX7lDqehQ23z4KxHA9IZYey");
        assert_eq!(plan(&old, &rotated, 64), Plan::Restart(vec!["RTPMIC_SRTP_KEY"]));
        assert_eq!(plan(&old, &old.clone(), 64), Plan::Nothing);
        // Two random keys: each start makes its own, nothing to apply.
        assert_eq!(plan(&config(&srtp), &config(&srtp), 64), Plan::Nothing);
        assert_eq!(plan(&config(&srtp), &old, 64), Plan::Restart(vec!["RTPMIC_SRTP_KEY"]));
    }

    #[test]
    fn destinations_are_live_within_the_slots_without_sap() {
        let old = config(&[]);
        let two = config(&[("RTPMIC_DEST", "127.0.0.1:5004,127.0.0.1:6004")]);
        assert_eq!(plan(&old, &two, 64), Plan::Live(vec!["RTPMIC_DEST"]));
        assert_eq!(
            plan(&old, &two, 1),
            Plan::Restart(vec!["RTPMIC_DEST"]),
            "more than the slots"
        );
        let multicast = config(&[("RTPMIC_DEST", "239.1.2.3:5004")]);
        assert_eq!(plan(&old, &multicast, 64), Plan::Restart(vec!["RTPMIC_DEST"]));
        let sap_old = config(&[("RTPMIC_SAP", "on")]);
        let sap_new = config(&[("RTPMIC_SAP", "on"), ("RTPMIC_DEST", "127.0.0.1:7004")]);
        assert_eq!(plan(&sap_old, &sap_new, 64), Plan::Restart(vec!["RTPMIC_DEST"]));
    }

    #[test]
    fn rtsp_keys_restart_only_the_rtsp_server_while_it_stays_on() {
        let on = [("RTPMIC_RTSP_LISTEN", "127.0.0.1:8554")];
        let old = config(&on);
        let new = config(&[
            on[0],
            ("RTPMIC_RTSP_PATH", "/door"),
            ("RTPMIC_RTSP_SESSION_TIMEOUT_S", "30"),
        ]);
        assert_eq!(
            plan(&old, &new, 64),
            Plan::Live(vec!["RTPMIC_RTSP_PATH", "RTPMIC_RTSP_SESSION_TIMEOUT_S"])
        );
        // A new password (its value never shown) is noticed too.
        let with = |pw| config(&[on[0], ("RTPMIC_RTSP_USER", "nvr"), ("RTPMIC_RTSP_PASSWORD", pw)]);
        assert_eq!(
            plan(&with("one"), &with("two"), 64),
            Plan::Live(vec!["RTPMIC_RTSP_PASSWORD"])
        );
        // On or off, or more clients: the peer slots change, the pipeline restarts.
        assert_eq!(plan(&config(&[]), &old, 64), Plan::Restart(vec!["RTPMIC_RTSP_LISTEN"]));
        let more = config(&[on[0], ("RTPMIC_RTSP_MAX_CLIENTS", "32")]);
        assert_eq!(plan(&old, &more, 64), Plan::Restart(vec!["RTPMIC_RTSP_MAX_CLIENTS"]));
    }
}
