//! Logging set-up: native journald entries under systemd, plain lines on stderr otherwise.
//!
//! Only the main thread logs; the real-time threads count, and the main thread turns counter
//! changes into (rate-limited) lines. Every line carries an `event` field; journald receives
//! fields as `RTPMIC_<NAME>` (so `journalctl -u rtpmic RTPMIC_EVENT=xrun` works) with the
//! syslog priority of its level. On stderr only the message is written: it already says
//! everything the fields do.

use tracing_journald::{Priority, PriorityMappings};
use tracing_subscriber::fmt::format;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogLevel, LogTarget};

/// Where the lines went, and why not journald when it was asked for.
#[derive(Debug)]
pub enum Installed {
    Journald,
    Stderr,
    /// journald was asked for (explicitly) but its socket refused; stderr instead.
    StderrJournaldFailed(std::io::Error),
}

/// Whether `JOURNAL_STREAM` (`device:inode`, set by systemd when stdout/stderr go to the
/// journal, systemd.exec(5)) names the file our stderr is.
pub fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    // The magic link resolves to the open file itself (pipe, socket or file alike).
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// Installs the global subscriber at `level`, to `target`. Call once per process.
pub fn init(level: LogLevel, target: LogTarget) -> Installed {
    let filter = match level {
        LogLevel::Error => tracing::Level::ERROR,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Trace => tracing::Level::TRACE,
    };
    let want_journal = match target {
        LogTarget::Auto => stderr_is_journal(),
        LogTarget::Journald => true,
        LogTarget::Stderr => false,
    };
    let mut failure = None;
    if want_journal {
        match journald_layer() {
            Ok(layer) => {
                let _ = tracing_subscriber::registry()
                    .with(tracing_subscriber::filter::LevelFilter::from_level(filter))
                    .with(layer)
                    .try_init();
                return Installed::Journald;
            }
            Err(e) => failure = Some(e),
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .fmt_fields(format::debug_fn(|w, field, value| {
            if field.name() == "message" {
                write!(w, "{value:?}")
            } else {
                Ok(())
            }
        }))
        .try_init();
    match (target, failure) {
        (LogTarget::Journald, Some(e)) => Installed::StderrJournaldFailed(e),
        _ => Installed::Stderr,
    }
}

/// journald's native protocol: fields prefixed `RTPMIC_`, levels mapped to the syslog
/// priorities an operator expects (info is 6, not tracing-journald's default 5 "notice").
fn journald_layer() -> std::io::Result<tracing_journald::Layer> {
    let mut priorities = PriorityMappings::new();
    priorities.info = Priority::Informational;
    priorities.debug = Priority::Debug;
    Ok(tracing_journald::layer()?
        .with_field_prefix(Some("RTPMIC".into()))
        .with_syslog_identifier("rtpmic".into())
        .with_priority_mappings(priorities))
}
