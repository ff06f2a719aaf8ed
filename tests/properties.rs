//! Hostile input, property-tested (proptest stands in for cargo-fuzz, which needs a nightly
//! toolchain this project's machines do not have): the config parser and the RTCP receive
//! path take arbitrary input without panicking, and account for every input.

use proptest::prelude::*;
use rtpmic::config::{Config, KEYS};
use rtpmic::rtp::session::{PeerId, PeerSpec, SendConfig, SendSession};

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(KEYS.iter().map(|k| k.name.to_string()).collect::<Vec<_>>()),
        "RTPMIC_[A-Z_]{0,12}",
        "[A-Z_]{1,10}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,40}",
        "[0-9]{1,7}",
        "[0-9.]{1,6}",
        "(opus|pcmu|pcma|l16|on|off|auto|voip|mix|S16_LE|S32_LE)",
        "(\\[::1\\]|127\\.0\\.0\\.1|[a-z]{1,8}):[0-9]{1,6}(,[a-z0-9.:\\[\\]]{0,20}){0,3}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn config_parser_never_panics_and_round_trips(pairs in proptest::collection::vec((key(), value()), 0..12)) {
        match Config::from_pairs(pairs.clone()) {
            Ok(c) => {
                // What check-config prints reads back to the same configuration.
                let lines: Vec<(String, String)> = c
                    .to_env_lines()
                    .lines()
                    .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                    .collect();
                prop_assert_eq!(Config::from_pairs(lines).unwrap(), c);
            }
            Err(e) => {
                prop_assert!(!e.0.is_empty());
                for line in &e.0 {
                    prop_assert!(line.line.starts_with("RTPMIC_"), "every problem names its key: {}", line.line);
                }
            }
        }
    }

    #[test]
    fn rtcp_receive_path_never_panics_and_counts_everything(
        datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..50),
        rtcp_like in any::<bool>(),
    ) {
        let mut session = SendSession::new(
            SendConfig {
                ssrc: 0x1234,
                payload_type: 96,
                first_seq: 0,
                ts_base: 0,
                clock_rate: 48_000,
                sample_rate: 48_000,
                ticks_per_frame: 960,
                frame_ns: 20_000_000,
                cname: "c".into(),
                session_bw: 4000.0,
                rtcp: true,
                srtp: None,
                srtcp_in: None,
                pacing: false,
                fec_loss: Some((5, 30)),
                max_peers: 1,
            },
            0,
        )
        .unwrap();
        // A multicast group: every source may report.
        session.set_peer(PeerId::new(0, 1), PeerSpec::udp(Some("239.1.2.3:5004".parse().unwrap()), true, false));
        for mut d in datagrams.clone() {
            if rtcp_like && d.len() >= 2 {
                d[0] = 0x80 | (d[0] & 0x1f); // version 2
                d[1] = 200 + d[1] % 5; // SR, RR, SDES, BYE, APP
            }
            session.handle_rtcp(0, 0, "127.0.0.1:5005".parse().unwrap(), &mut d);
        }
        while session.poll_event().is_some() {}
        let c = session.counters();
        let counted = c.malformed + c.unrelated + c.reports;
        // Every datagram lands in a counter (a report block about us counts per block).
        prop_assert!(counted >= datagrams.len() as u64, "{} counted for {}", counted, datagrams.len());
    }
}
