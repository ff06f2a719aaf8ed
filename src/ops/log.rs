//! Logging set-up: plain lines on stderr (journald captures them under systemd; native
//! journald fields come with the operations work). Only the main thread logs; the real-time
//! threads count, and the main thread turns counter changes into log lines.

use crate::config::LogLevel;

/// Installs the global subscriber at `level`. Safe to call once per process.
pub fn init(level: LogLevel) {
    let filter = match level {
        LogLevel::Error => tracing::Level::ERROR,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Trace => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}
