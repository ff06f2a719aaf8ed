//! The `rtpmic-sap` thread: announces the stream's SDP by SAP (RFC 2974) on the group of the
//! first destination's scope, at once and then every `RTPMIC_SAP_INTERVAL_S` ± a random third
//! of it (§3.1, [`next_announcement_delay`]), and deletes the announcement on shutdown. It
//! waits in 100 ms steps, so a stop is seen within 100 ms. Not on the real-time path: it may
//! allocate and log.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::resolve::{local_address_towards, resolve};
use super::socket::{self, SocketOptions};
use crate::config::Config;
use crate::rtp::sap::{next_announcement_delay, packet, sap_group, SapKind};
use crate::rtp::sdp;

/// Body of the SAP thread; returns after sending the deletion once `stop` is set.
pub fn run(config: &Config, stop: &AtomicBool) {
    let Some(dest) = config.dest.first() else { return };
    let (Ok(addr), Some(text)) = (resolve(dest, None), sdp::for_destination(config, 0)) else {
        warn!("SAP: {dest} does not resolve; no announcements");
        return;
    };
    let IpAddr::V4(origin) = local_address_towards(dest) else {
        warn!("SAP: IPv6 sessions are not announced (IPv4 SAP only)");
        return;
    };
    let group = sap_group(addr.ip());
    let sock = match socket::open(true, &SocketOptions::from_config(config)) {
        Ok(s) => s,
        Err(e) => {
            warn!("SAP: {e}; no announcements");
            return;
        }
    };
    let announce = packet(SapKind::Announce, origin, &text);
    let interval = Duration::from_secs(u64::from(config.sap_interval_s));
    info!(
        "SAP: announcing on {group} every {} s ± 1/3 (RFC 2974 §3.1)",
        config.sap_interval_s
    );
    let mut failing = false;
    while !stop.load(Relaxed) {
        match sock.send_to(&announce, group) {
            Ok(_) => failing = false,
            Err(e) if !failing => {
                warn!("SAP: sending to {group}: {e} (retrying)");
                failing = true;
            }
            Err(_) => {}
        }
        let next = Instant::now() + next_announcement_delay(interval, rand::random::<f64>());
        while !stop.load(Relaxed) && Instant::now() < next {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // RFC 2974 §3: an explicit deletion lets receivers drop the session at once.
    let _ = sock.send_to(&packet(SapKind::Delete, origin, &text), group);
}
