//! The command line as an installer meets it: config errors, check-config, sdp, the env file
//! template.

mod common;

use std::process::{Command, Output};

use common::{repo, RTPMIC};
use rtpmic::config::{KeyDefault, KEYS};

/// Runs rtpmic with exactly `keys` as its RTPMIC_* environment.
fn rtpmic(args: &[&str], keys: &[(&str, &str)]) -> Output {
    let mut c = Command::new(RTPMIC);
    for (k, _) in std::env::vars() {
        if k.starts_with("RTPMIC_") {
            c.env_remove(k);
        }
    }
    c.args(args).envs(keys.iter().copied()).output().unwrap()
}

const DEST: (&str, &str) = ("RTPMIC_DEST", "127.0.0.1:5004");

#[test]
fn bad_config_table_exits_78_naming_the_key_and_starts_nothing() {
    let table: &[(&str, &str)] = &[
        ("RTPMIC_BOGUS", "1"),
        ("RTPMIC_RATE", "abc"),
        ("RTPMIC_RATE", "44100"),
        ("RTPMIC_CHANNELS", "9"),
        ("RTPMIC_CHANNEL", "3"),
        ("RTPMIC_SAMPLE_FORMAT", "FLOAT_LE"),
        ("RTPMIC_CODEC", "mp3"),
        ("RTPMIC_FRAME_MS", "15"),
        ("RTPMIC_FRAME_MS", "twenty"),
        ("RTPMIC_BITRATE", "5999"),
        ("RTPMIC_BITRATE", "510001"),
        ("RTPMIC_OPUS_COMPLEXITY", "-1"),
        ("RTPMIC_OPUS_APPLICATION", "speech"),
        ("RTPMIC_PAYLOAD_TYPE", "8"),
        ("RTPMIC_DEST", ""),
        ("RTPMIC_DEST", "host"),
        ("RTPMIC_DEST", "host:port"),
        ("RTPMIC_DEST", "10.0.0.1:0"),
        ("RTPMIC_DEST", "10.0.0.1:65536"),
        ("RTPMIC_DEST", "bad_host!:5004"),
        ("RTPMIC_DEST", "[fe80::1:5004"),
        ("RTPMIC_SSRC", "4294967296"),
        ("RTPMIC_RT_PRIORITY", "high"),
        ("RTPMIC_STATS_INTERVAL_S", "-5"),
        ("RTPMIC_LOG_LEVEL", "verbose"),
    ];
    assert!(table.len() >= 20);
    for &(key, value) in table {
        for cmd in ["check-config", "run", "sdp"] {
            // An empty DEST must be reported as missing, so do not add the default one then.
            let keys: Vec<(&str, &str)> = if key == "RTPMIC_DEST" {
                vec![(key, value)]
            } else {
                vec![DEST, (key, value)]
            };
            let out = rtpmic(&[cmd], &keys);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(78), "{cmd} with {key}={value:?}: {err}");
            let lines: Vec<&str> = err.lines().collect();
            assert_eq!(lines.len(), 1, "one line per problem: {err}");
            // `KEY="value": …`, or `KEY: unknown key; …` (an unknown key's value is never shown).
            assert!(
                lines[0].starts_with(&format!("config: {key}="))
                    || lines[0].starts_with(&format!("config: {key}: unknown key")),
                "{cmd} with {key}={value:?}: {err}"
            );
            assert!(!err.contains("starting"), "nothing may start: {err}");
            assert!(out.stdout.is_empty());
        }
    }
}

#[test]
fn every_problem_gets_its_own_line() {
    let out = rtpmic(
        &["check-config"],
        &[
            ("RTPMIC_CODEC", "pcmu"),
            ("RTPMIC_FRAME_MS", "5"),
            ("RTPMIC_BITRAT", "1"),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78));
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        err.contains("config: RTPMIC_BITRAT: unknown key; did you mean RTPMIC_BITRATE?"),
        "{err}"
    );
    assert!(
        err.contains("config: RTPMIC_FRAME_MS=\"5\": not a frame size pcmu accepts; allowed: 10 20 30 40"),
        "{err}"
    );
    assert!(err.contains("config: RTPMIC_DEST=\"\": required"), "{err}");
}

#[test]
fn check_config_prints_the_effective_config_from_an_env_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("rtpmic.env");
    std::fs::write(
        &f,
        "# comment\nRTPMIC_CODEC=pcma\nRTPMIC_DEST=\"192.0.2.1:5004, [2001:db8::1]:5006\"\n",
    )
    .unwrap();
    // The file alone counts: a stray RTPMIC_ key in the environment is not mixed in.
    let out = rtpmic(
        &["check-config", "--env-file", f.to_str().unwrap()],
        &[("RTPMIC_BOGUS", "1")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "RTPMIC_CODEC=pcma",
        "RTPMIC_RATE=8000",
        "RTPMIC_PAYLOAD_TYPE=8",
        "RTPMIC_DEST=192.0.2.1:5004,[2001:db8::1]:5006",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    assert_eq!(text.lines().count(), KEYS.len());
}

#[test]
fn unreadable_env_file_is_a_config_error() {
    let out = rtpmic(&["check-config", "--env-file", "/nonexistent/rtpmic.env"], &[]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/rtpmic.env"));
}

/// systemd/rtpmic.env documents exactly the keys of the table, in its order: each in a block of
/// comment lines ending in its assignment (`KEY=value`, or `# KEY=value` when left at the
/// default), with one `# default:` and one `# allowed:` line saying what `--help` says. Where
/// the default is a value, the assignment shows it. As a configuration, the template lacks
/// only the destination.
#[test]
fn env_template_documents_exactly_the_keys_their_defaults_and_allowed_values() {
    let path = repo().join("systemd/rtpmic.env");
    let text = std::fs::read_to_string(&path).unwrap();
    // (key, value, the comment lines above it)
    let mut blocks: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    let mut comments: Vec<&str> = Vec::new();
    for line in text.lines() {
        // `KEY=value` alone on its line (prose that mentions `KEY=on (or …)` goes on).
        let assignment = line
            .strip_prefix("# ")
            .unwrap_or(line)
            .split_once('=')
            .filter(|(k, v)| {
                k.starts_with("RTPMIC_")
                    && k.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                    && !v.contains(' ')
            });
        if let Some((k, v)) = assignment {
            blocks.push((k, v, std::mem::take(&mut comments)));
        } else if line.starts_with('#') {
            comments.push(line);
        } else {
            comments.clear();
        }
    }
    let documented: Vec<&str> = blocks.iter().map(|(k, _, _)| *k).collect();
    let table: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
    assert_eq!(documented, table, "the template's keys, in order, are the table's");
    for ((name, value, comments), k) in blocks.iter().zip(KEYS) {
        let said = |label: &str| -> Vec<&str> { comments.iter().filter_map(|l| l.strip_prefix(label)).collect() };
        assert_eq!(
            said("# default: "),
            [k.default.text()],
            "{name}: # default: as in --help"
        );
        assert_eq!(said("# allowed: "), [k.allowed], "{name}: # allowed: as in --help");
        if let KeyDefault::Value(default) = k.default {
            assert_eq!(*value, default, "{name}: the assignment shows the default");
        }
    }
    let out = rtpmic(&["check-config", "--env-file", path.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("config: RTPMIC_DEST=\"\": required"), "{err}");
}

#[test]
fn help_lists_every_key_with_its_default_and_allowed_values() {
    let out = rtpmic(&["--help"], &[]);
    let text = String::from_utf8(out.stdout).unwrap();
    for k in KEYS {
        let default = format!("  {:<24} default {}\n", k.name, k.default.text());
        let allowed = format!("  {:<24} allowed {}\n", "", k.allowed);
        assert!(
            text.contains(&format!("{default}{allowed}")),
            "{} missing from --help",
            k.name
        );
    }
}

#[test]
fn sdp_describes_the_configured_stream() {
    let out = rtpmic(
        &["sdp"],
        &[("RTPMIC_DEST", "127.0.0.1:5004,[::1]:6004"), ("RTPMIC_CODEC", "pcmu")],
    );
    assert!(out.status.success());
    let sdp = String::from_utf8(out.stdout).unwrap();
    assert!(sdp.starts_with("v=0\r\n"), "{sdp:?}");
    assert!(
        sdp.contains("c=IN IP4 127.0.0.1\r\n")
            && sdp.contains("m=audio 5004 RTP/AVP 0\r\n")
            && sdp.contains("a=rtpmap:0 PCMU/8000\r\n"),
        "{sdp}"
    );
    let out = rtpmic(&["sdp", "--dest", "1"], &[("RTPMIC_DEST", "127.0.0.1:5004,[::1]:6004")]);
    let sdp = String::from_utf8(out.stdout).unwrap();
    assert!(
        sdp.contains("o=- ") && sdp.contains("IN IP6 ::1\r\n") && sdp.contains("m=audio 6004 RTP/AVP 96\r\n"),
        "{sdp}"
    );
    let out = rtpmic(&["sdp", "--dest", "2"], &[("RTPMIC_DEST", "127.0.0.1:5004")]);
    assert_eq!(out.status.code(), Some(78));
}
