//! Network side: resolving destinations, the UDP sender backend(s) and the sender thread.

pub mod resolve;
pub mod sender;
pub mod udp;
