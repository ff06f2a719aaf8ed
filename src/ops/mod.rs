//! Operations: counters and the latency histogram, the hot-path marker, logging set-up,
//! systemd notifications and the main thread's service loop.

pub mod events;
pub mod hot_path;
pub mod log;
pub mod notify;
pub mod receivers;
pub mod reload;
pub mod service;
pub mod stats;
