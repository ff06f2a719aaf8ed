//! `Config::from_env_file` (what `--env-file PATH` runs) on a hostile file.
//!
//! Input: the file's bytes, written to a temporary file that the public loader reads (the
//! parser of src/config/env_file.rs: quotes, escapes, comments, `export`, a BOM, CRLF; the
//! 64 KiB limit).
//!
//! Checks: never panics; on `Err` there is at least one error, each one line (no '\n' or
//! '\r'), each `Display` line starts with `config: RTPMIC_` or, for a file that cannot be
//! read or parsed, `config: --env-file PATH: `; an `RTPMIC_SRTP_KEY` error never shows the
//! key, and neither does an error about a file that cannot be parsed (which must not echo
//! the file's `RTPMIC_SRTP_KEY=value` line).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rtpmic::config::Config;

mod common;

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        // tmpfs when there is one: a write per execution.
        let dir = ["/dev/shm", "/tmp"]
            .iter()
            .map(PathBuf::from)
            .find(|d| d.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        dir.join(format!("rtpmic-fuzz-env-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    std::fs::write(path, data).expect("write the env file");
    let prefix = format!("config: --env-file {}: ", path.display());
    let result = Config::from_env_file(path);
    // Not left behind when the run ends.
    let _ = std::fs::remove_file(path);
    if let Err(errors) = result {
        common::check_errors(&errors, &["config: RTPMIC_", &prefix]);
        for e in errors.0.iter().filter(|e| e.line.starts_with("--env-file ")) {
            if let Some(value) = echoed_key(&e.line) {
                assert!(
                    common::known("env-file-echo"),
                    "an --env-file error shows an RTPMIC_SRTP_KEY value ({value:?}): {:?}",
                    e.line
                );
            }
        }
    }
});

/// A non-empty `RTPMIC_SRTP_KEY=` value that an error line quotes from the file.
fn echoed_key(line: &str) -> Option<&str> {
    line.match_indices("RTPMIC_SRTP_KEY=").find_map(|(i, m)| {
        let rest = &line[i + m.len()..];
        let mut value = &rest[..rest.find(['\n', '\r']).unwrap_or(rest.len())];
        // The old dotenvy message "Error parsing line: '…', error at line index: N" closed the
        // quote; kept so a regression to that form is still recognised.
        if let Some(j) = value.rfind("', error at line index: ") {
            if value[j + 24..].bytes().all(|b| b.is_ascii_digit()) {
                value = &value[..j];
            }
        }
        let value = value.trim();
        (!value.is_empty()).then_some(value)
    })
}
