//! Checks shared by the config targets.
#![allow(dead_code)]

use std::sync::OnceLock;

use rtpmic::config::{Config, ConfigErrors};

/// Findings already reported and not yet fixed, that a long run may skip to look for others:
/// `RTPMIC_FUZZ_KNOWN=name,name` (docs/FUZZING.md lists the names). Empty by default, so
/// `make fuzz` checks everything.
pub fn known(name: &str) -> bool {
    static KNOWN: OnceLock<Vec<String>> = OnceLock::new();
    KNOWN
        .get_or_init(|| {
            std::env::var("RTPMIC_FUZZ_KNOWN")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .iter()
        .any(|k| k == name)
}

/// How many lines `to_env_lines` prints (one per key it shows).
pub fn env_lines_per_config() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        Config::from_pairs([("RTPMIC_DEST", "127.0.0.1:5004")])
            .expect("a minimal config")
            .to_env_lines()
            .lines()
            .count()
    })
}

/// The error report contract: at least one error; each one line; `Display` gives one
/// `config: …` line per error, each starting with one of `prefixes`; an SRTP key is never shown.
pub fn check_errors(errors: &ConfigErrors, prefixes: &[&str]) {
    assert!(!errors.0.is_empty(), "Err without any error");
    let mut all_one_line = true;
    for e in &errors.0 {
        let full = format!("config: {}", e.line);
        assert!(
            prefixes.iter().any(|p| full.starts_with(p)),
            "error line does not start with {prefixes:?}: {full:?}"
        );
        if full.starts_with("config: RTPMIC_SRTP_KEY=") {
            assert!(
                full.starts_with("config: RTPMIC_SRTP_KEY=\"(hidden)\""),
                "an RTPMIC_SRTP_KEY error shows the value: {full:?}"
            );
        }
        if e.line.contains(['\n', '\r']) {
            all_one_line = false;
            let tolerated = (known("raw-key") && raw_unknown_key(&e.line))
                || (known("env-file-line") && e.line.starts_with("--env-file "));
            assert!(tolerated, "error is more than one line: {full:?}");
        }
    }
    if all_one_line {
        let text = errors.to_string();
        let expected: Vec<String> = errors.0.iter().map(|e| format!("config: {}", e.line)).collect();
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            expected,
            "Display: one line per error"
        );
    }
}

/// An "unknown key" error whose key itself holds the line break (the key is printed raw).
fn raw_unknown_key(line: &str) -> bool {
    line.contains(": unknown key") && line.split_once(": unknown key").is_some_and(|(k, _)| k.contains(['\n', '\r']))
}
