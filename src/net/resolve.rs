//! Destination resolution, done once at start-up on the main thread (never on the hot path).

use std::net::{SocketAddr, ToSocketAddrs};

use crate::config::{Destination, Host};

/// The first address `dest` resolves to, or why it does not.
pub fn resolve(dest: &Destination) -> Result<SocketAddr, String> {
    match &dest.host {
        Host::Ip(ip) => Ok(SocketAddr::new(*ip, dest.port)),
        Host::Name(name) => (name.as_str(), dest.port)
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .ok_or_else(|| "no address".to_string()),
    }
}
