//! Operations: counters and the latency histogram, the hot-path marker, logging set-up.

pub mod events;
pub mod hot_path;
pub mod log;
pub mod receivers;
pub mod stats;
