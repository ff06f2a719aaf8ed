//! Host name resolution, off the hot path: once at start (main thread), then in the
//! `rtpmic-resolve` thread, which re-resolves a name when it never resolved, when sends to it
//! failed since the last look-up, or every `RTPMIC_RESOLVE_INTERVAL_S`, and hands changed
//! addresses to the send session as [`Control`] messages through a ring. `RTPMIC_DEST` entry
//! `i` is the session's peer in slot `i`; a new entry in a slot (SIGHUP) is a new peer, with
//! the slot's next generation.

use std::net::{IpAddr, SocketAddr, SocketAddrV6, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use tracing::{info, warn};

use super::control::Control;
use crate::config::{Destination, Host};
use crate::ops::stats::Stats;
use crate::ring::Producer;
use crate::rt::now_ns;
use crate::rtp::session::{PeerId, PeerSpec};

/// Shortest time between two look-ups of the same name (failures included).
pub const MIN_RETRY_NS: u64 = 5_000_000_000;

/// The address `dest` resolves to, preferring the family of `previous` so a destination does
/// not hop between IPv4 and IPv6 on every look-up. A link-local IPv6 address with a zone gets
/// that interface's index as scope id.
pub fn resolve(dest: &Destination, previous: Option<SocketAddr>) -> Result<SocketAddr, String> {
    match &dest.host {
        Host::Ip(IpAddr::V6(a)) => {
            let scope = dest.zone.as_deref().map_or(Ok(0), scope_id)?;
            Ok(SocketAddr::V6(SocketAddrV6::new(*a, dest.port, 0, scope)))
        }
        Host::Ip(ip) => Ok(SocketAddr::new(*ip, dest.port)),
        Host::Name(name) => {
            let all: Vec<SocketAddr> = (name.as_str(), dest.port)
                .to_socket_addrs()
                .map_err(|e| e.to_string())?
                .collect();
            let same_family = previous.and_then(|p| all.iter().find(|a| a.is_ipv4() == p.is_ipv4()));
            same_family
                .or(all.first())
                .copied()
                .ok_or_else(|| "no address".to_string())
        }
    }
}

/// The scope id of an IPv6 zone (RFC 4007 §11, the `%eth0` of `fe80::1%eth0`): the index of
/// the interface of that name, or the zone itself when it is a number (as getaddrinfo reads
/// `%2`). An interface that does not exist (not yet, or no more) is an error naming it.
pub fn scope_id(zone: &str) -> Result<u32, String> {
    match nix::net::if_::if_nametoindex(zone) {
        Ok(index) => Ok(index),
        Err(_) => zone
            .parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("no network interface {zone:?} (the zone after '%')")),
    }
}

/// The local address the kernel would send to `dest` from (a UDP `connect` sends nothing);
/// the unspecified address when that cannot be known.
pub fn local_address_towards(dest: &Destination) -> std::net::IpAddr {
    resolve(dest, None)
        .ok()
        .and_then(|to| {
            let any = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let s = std::net::UdpSocket::bind(any).ok()?;
            s.connect(to).ok()?;
            s.local_addr().ok().map(|a| a.ip())
        })
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// When each name is due for a look-up. Pure: time and error counts are arguments.
pub struct Schedule {
    interval_ns: u64,
    last_try: Vec<Option<u64>>,
    last_ok: Vec<Option<u64>>,
    errors_seen: Vec<u64>,
}

impl Schedule {
    pub fn new(n: usize, interval_s: u32) -> Schedule {
        Schedule {
            interval_ns: u64::from(interval_s) * 1_000_000_000,
            last_try: vec![None; n],
            last_ok: vec![None; n],
            errors_seen: vec![0; n],
        }
    }

    /// Whether destination `i` should be looked up at `now`, given its send error count.
    pub fn due(&self, i: usize, now: u64, errors: u64) -> bool {
        if self.last_try[i].is_some_and(|t| now.saturating_sub(t) < MIN_RETRY_NS) {
            return false;
        }
        match self.last_ok[i] {
            None => true,
            Some(_) if errors > self.errors_seen[i] => true,
            Some(ok) => self.interval_ns > 0 && now.saturating_sub(ok) >= self.interval_ns,
        }
    }

    /// Records a look-up of `i` at `now`.
    pub fn record(&mut self, i: usize, now: u64, ok: bool, errors: u64) {
        self.last_try[i] = Some(now);
        self.errors_seen[i] = errors;
        if ok {
            self.last_ok[i] = Some(now);
        }
    }
}

/// A new `RTPMIC_DEST` list handed from the main thread (SIGHUP) to the resolver thread, the
/// one owner of changes to the sender's destination table.
pub type NewDestinations = std::sync::Arc<std::sync::Mutex<Option<Vec<Destination>>>>;

/// What the `rtpmic-resolve` thread works with.
pub struct ResolverContext<'a> {
    pub controls: Producer<Control>,
    pub stats: &'a Stats,
    pub stop: &'a AtomicBool,
    pub interval_s: u32,
    /// RTCP to destinations (`RTPMIC_RTCP`), muxed (`RTPMIC_RTCP_MUX`).
    pub rtcp: bool,
    pub rtcp_mux: bool,
    pub new_destinations: NewDestinations,
    /// The peer handle of each slot (the session knows the first list already).
    pub ids: Vec<PeerId>,
    /// Multicast destinations' RTCP groups, for the RTCP reader to join.
    pub groups: MulticastGroups,
}

/// The RTCP addresses of the multicast groups (port + 1, or the RTP port with rtcp-mux),
/// shared by those who learn them (the resolver, an RTSP restart) and the RTCP reader, which
/// joins them. None is a real-time thread.
pub type MulticastGroups = std::sync::Arc<std::sync::Mutex<Vec<SocketAddr>>>;

/// The peer handles of the destinations a pipeline starts with: slot `i`, generation 1.
pub fn initial_ids(n: usize) -> Vec<PeerId> {
    (0..n as u32).map(|i| PeerId::new(i, 1)).collect()
}

/// Body of the `rtpmic-resolve` thread: runs until `stop`. Re-resolves names as [`Schedule`]
/// says, and switches to a new destination list when the main thread hands one over.
pub fn run(mut dests: Vec<Destination>, mut current: Vec<Option<SocketAddr>>, mut ctx: ResolverContext<'_>) {
    let mut schedule = Schedule::new(dests.len(), ctx.interval_s);
    let start = now_ns();
    // The main thread made the first look-up (and reported failures) just before.
    for (i, a) in current.iter().enumerate() {
        schedule.record(i, start, a.is_some(), 0);
    }
    let mut failing: Vec<bool> = current.iter().map(Option::is_none).collect();
    while !ctx.stop.load(Relaxed) {
        let now = now_ns();
        let handed = ctx.new_destinations.lock().ok().and_then(|mut n| n.take());
        if let Some(new) = handed {
            current = switch_list(&dests, &new, &current, &mut ctx);
            dests = new;
            schedule = Schedule::new(dests.len(), ctx.interval_s);
            for (i, a) in current.iter().enumerate() {
                schedule.record(i, now, a.is_some(), 0);
            }
            failing = current.iter().map(Option::is_none).collect();
        }
        for (i, d) in dests.iter().enumerate() {
            if !d.needs_lookup() {
                continue;
            }
            let errors = ctx.stats.peers.get(i).map_or(0, |c| c.errors.load(Relaxed));
            if !schedule.due(i, now, errors) {
                continue;
            }
            let result = resolve(d, current[i]);
            schedule.record(i, now, result.is_ok(), errors);
            match result {
                Ok(addr) => {
                    if current[i] != Some(addr) {
                        info!(event = "resolved", "destination {d} is now {addr}");
                        current[i] = Some(addr);
                        publish(&mut ctx, i, Some(addr));
                        count_resolved(ctx.stats, &current);
                    }
                    failing[i] = false;
                }
                Err(e) => {
                    // Keep sending to the last known address; say so once per failure spell.
                    if !failing[i] {
                        warn!(
                            event = "unresolved",
                            "cannot resolve destination {d}: {e} (retrying every {} s)",
                            MIN_RETRY_NS / 1_000_000_000
                        );
                        failing[i] = true;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Moves the sender from `old` to `new` (same slots, index for index; slots past the new
/// list go inactive) and returns the new addresses. Destinations that stay the same keep
/// their address and counters, so their stream goes on untouched.
fn switch_list(
    old: &[Destination],
    new: &[Destination],
    current: &[Option<SocketAddr>],
    ctx: &mut ResolverContext<'_>,
) -> Vec<Option<SocketAddr>> {
    let mut next = Vec::with_capacity(new.len());
    for i in 0..old.len().max(new.len()) {
        let same = old.get(i).is_some_and(|o| new.get(i) == Some(o));
        let addr = match new.get(i) {
            None => None,
            Some(_) if same => current.get(i).copied().flatten(),
            Some(d) => resolve(d, None)
                .inspect_err(|e| warn!(event = "unresolved", "cannot resolve destination {d} yet: {e}"))
                .ok(),
        };
        if !same {
            if let Some(c) = ctx.stats.peers.get(i) {
                c.datagrams.store(0, Relaxed);
                c.errors.store(0, Relaxed);
            }
            // A different receiver in this slot: the old one leaves (and gets its BYE), the
            // new one is a new peer.
            if i < old.len() {
                let id = ctx.ids[i];
                ctx.controls.push(|c| *c = Control::RemovePeer { id });
            }
            if i < new.len() {
                if i >= ctx.ids.len() {
                    ctx.ids.push(PeerId::new(i as u32, 0));
                }
                ctx.ids[i] = PeerId::new(i as u32, ctx.ids[i].generation().wrapping_add(1));
                publish(ctx, i, addr);
            }
        }
        if i < new.len() {
            next.push(addr);
        }
    }
    count_resolved(ctx.stats, &next);
    next
}

/// Hands slot `i`'s address to the send session.
fn publish(ctx: &mut ResolverContext<'_>, index: usize, addr: Option<SocketAddr>) {
    let Some(&id) = ctx.ids.get(index) else { return };
    let spec = PeerSpec::udp(addr, ctx.rtcp, ctx.rtcp_mux);
    // A multicast group learned now (a new RTPMIC_DEST on SIGHUP): the RTCP reader joins
    // it to hear the members' reports.
    if let Some(a) = addr.filter(|a| a.ip().is_multicast()) {
        let a = crate::rtp::session::peers::rtcp_address(a, ctx.rtcp_mux);
        if let Ok(mut g) = ctx.groups.lock() {
            if !g.contains(&a) {
                g.push(a);
            }
        }
    }
    // The ring holds two messages per slot, so even a whole new list never overwrites one.
    ctx.controls.push(|c| *c = Control::SetPeer { id, spec });
}

fn count_resolved(stats: &Stats, current: &[Option<SocketAddr>]) {
    stats
        .destinations_resolved
        .store(current.iter().flatten().count() as u64, Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn schedule_retries_failures_errors_and_interval() {
        let mut s = Schedule::new(1, 60);
        assert!(s.due(0, 0, 0), "never resolved");
        s.record(0, 0, false, 0);
        assert!(!s.due(0, S, 0), "retry rate-limited");
        assert!(s.due(0, 5 * S, 0), "retry after 5 s");
        s.record(0, 5 * S, true, 0);
        assert!(!s.due(0, 20 * S, 0));
        assert!(s.due(0, 20 * S, 3), "send errors since the last look-up");
        s.record(0, 20 * S, true, 3);
        assert!(!s.due(0, 40 * S, 3));
        assert!(s.due(0, 80 * S, 3), "interval");
    }

    #[test]
    fn literals_and_localhost_resolve() {
        let d = crate::config::parse_destination("localhost:5004").unwrap();
        let a = resolve(&d, None).unwrap();
        assert!(a.ip().is_loopback() && a.port() == 5004);
        let v6 = resolve(&d, Some("[::1]:1".parse().unwrap())).unwrap();
        assert!(v6.ip().is_loopback());
        assert!(resolve(
            &crate::config::parse_destination("no-such-host.invalid:1").unwrap(),
            None
        )
        .is_err());
    }

    #[test]
    fn a_zone_becomes_the_interface_index() {
        let lo = nix::net::if_::if_nametoindex("lo").unwrap();
        let d = crate::config::parse_destination("[fe80::1%lo]:5004").unwrap();
        assert!(d.needs_lookup());
        let a = resolve(&d, None).unwrap();
        assert_eq!(
            a,
            SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 5004, 0, lo))
        );
        let d = crate::config::parse_destination("[ff02::1%7]:5004").unwrap();
        assert_eq!(resolve(&d, None).unwrap().to_string(), "[ff02::1%7]:5004");
        let d = crate::config::parse_destination("[fe80::1%nosuch9]:5004").unwrap();
        let e = resolve(&d, None).unwrap_err();
        assert!(e.contains("no network interface \"nosuch9\""), "{e}");
        assert!(!crate::config::parse_destination("[fe80::1]:5004")
            .unwrap()
            .needs_lookup());
    }
}
