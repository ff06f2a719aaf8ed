//! `Config::from_pairs` on hostile `KEY=value` pairs (what the process environment gives).
//!
//! Input: records separated by '\n'; each record is `KEY=value` split at the first '='
//! (a record without '=' is a key with an empty value). A key of exactly one byte stands for
//! `KEYS[byte % KEYS.len()]`, so most records name a real key cheaply; a NUL byte anywhere
//! stands for '\n' (environment strings cannot hold NUL, but they can hold newlines). Bytes
//! that are not UTF-8 are replaced, as `Config::from_env` does for values.
//!
//! Checks: never panics; on `Err` there is at least one error, each `ConfigError` is one line
//! (no '\n' or '\r'), the `Display` text is one `config: RTPMIC_…` line per error, and an
//! `RTPMIC_SRTP_KEY` error never shows the key. On `Ok` without SRTP, the effective
//! configuration `to_env_lines` prints parses back to the same `Config`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtpmic::config::{Config, KEYS};

mod common;

fn pairs(data: &[u8]) -> Vec<(String, String)> {
    data.split(|&b| b == b'\n')
        .filter(|r| !r.is_empty())
        .map(|record| {
            let record: Vec<u8> = record.iter().map(|&b| if b == 0 { b'\n' } else { b }).collect();
            let (k, v) = match record.iter().position(|&b| b == b'=') {
                Some(i) => (&record[..i], &record[i + 1..]),
                None => (&record[..], &[][..]),
            };
            let key = match k {
                [b] => KEYS[usize::from(*b) % KEYS.len()].name.to_string(),
                _ => String::from_utf8_lossy(k).into_owned(),
            };
            (key, String::from_utf8_lossy(v).into_owned())
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let pairs = pairs(data);
    match Config::from_pairs(pairs) {
        Err(errors) => common::check_errors(&errors, &["config: RTPMIC_"]),
        Ok(config) => {
            if config.srtp.is_some() {
                // to_env_lines hides the key ("(set)"/"(random)"): no round trip.
                return;
            }
            let text = config.to_env_lines();
            if text.lines().count() != common::env_lines_per_config() {
                // A value with a newline in it (a device or path name) cannot round trip
                // through line syntax; that is not what this checks.
                return;
            }
            let back: Vec<(String, String)> = text
                .lines()
                .map(|l| {
                    let (k, v) = l.split_once('=').expect("to_env_lines: KEY=value lines");
                    (k.to_string(), v.to_string())
                })
                .collect();
            match Config::from_pairs(back) {
                Ok(again) => assert_eq!(again, config, "to_env_lines does not parse back:\n{text}"),
                Err(e) => panic!("to_env_lines does not parse back:\n{text}\n{e}"),
            }
        }
    }
});
