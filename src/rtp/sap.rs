//! SAP announcement packets (RFC 2974), sans I/O: header + "application/sdp" + the SDP.
//!
//! Hand-written: no maintained crate builds SAP, and the header is eight bytes plus the
//! originating address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The SAP port (RFC 2974 §3).
pub const SAP_PORT: u16 = 9875;

/// Announce a session, or delete it (§3: message type T).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SapKind {
    Announce,
    Delete,
}

/// Where announcements for a session sent to `dest` go (§3): administratively scoped IPv4
/// groups (239/8) are announced on 239.255.255.255, everything else on the global SAP
/// group 224.2.127.254.
pub fn sap_group(dest: IpAddr) -> SocketAddr {
    let group = match dest {
        IpAddr::V4(a) if a.octets()[0] == 239 => Ipv4Addr::new(239, 255, 255, 255),
        _ => Ipv4Addr::new(224, 2, 127, 254),
    };
    SocketAddr::new(IpAddr::V4(group), SAP_PORT)
}

/// How long to wait before the next announcement (RFC 2974 §3.1): the interval `base`
/// (`RTPMIC_SAP_INTERVAL_S`) plus a random offset within ±1/3 of it, so announcers that
/// started together do not stay in step ("offset = rand(interval*2/3) - (interval/3)";
/// the RFC's own base, max(300 s, 8 × ads × size / limit), is for the global SAP
/// bandwidth: rtpmic announces one session on a LAN and takes the configured base).
/// `r` is uniform in [0, 1): the delay is uniform in [2/3, 4/3) × `base`, on average `base`.
pub fn next_announcement_delay(base: Duration, r: f64) -> Duration {
    let r = if r.is_finite() { r.clamp(0.0, 1.0) } else { 0.5 };
    base.mul_f64(2.0 / 3.0 + r * 2.0 / 3.0)
}

/// A 16-bit message id hash of the SDP (§5: changes when the announcement changes).
pub fn msg_id_hash(sdp: &str) -> u16 {
    // FNV-1a folded to 16 bits; 0 is avoided because §5 reserves it for "no hash".
    let mut h: u32 = 0x811c_9dc5;
    for b in sdp.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let v = (h ^ (h >> 16)) as u16;
    if v == 0 {
        1
    } else {
        v
    }
}

/// Builds one SAP packet: V=1, IPv4 origin, no authentication, no encryption or compression,
/// payload type "application/sdp" (§6).
pub fn packet(kind: SapKind, origin: Ipv4Addr, sdp: &str) -> Vec<u8> {
    let t = match kind {
        SapKind::Announce => 0,
        SapKind::Delete => 1,
    };
    let mut p = Vec::with_capacity(8 + 16 + sdp.len());
    p.push((1 << 5) | (t << 2)); // V=1, A=0 (IPv4), R=0, T, E=0, C=0
    p.push(0); // authentication length
    p.extend_from_slice(&msg_id_hash(sdp).to_be_bytes());
    p.extend_from_slice(&origin.octets());
    p.extend_from_slice(b"application/sdp\0");
    p.extend_from_slice(sdp.as_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let p = packet(SapKind::Announce, Ipv4Addr::new(10, 0, 0, 2), "v=0\n");
        assert_eq!(p[0], 0x20);
        assert_eq!(p[1], 0);
        assert_eq!(&p[2..4], &msg_id_hash("v=0\n").to_be_bytes());
        assert_eq!(&p[4..8], &[10, 0, 0, 2]);
        assert_eq!(&p[8..24], b"application/sdp\0");
        assert_eq!(&p[24..], b"v=0\n");
        assert_eq!(packet(SapKind::Delete, Ipv4Addr::LOCALHOST, "v=0\n")[0], 0x24);
    }

    #[test]
    fn groups_follow_the_scope() {
        assert_eq!(
            sap_group("239.255.7.7".parse().unwrap()),
            "239.255.255.255:9875".parse().unwrap()
        );
        assert_eq!(
            sap_group("10.0.0.9".parse().unwrap()),
            "224.2.127.254:9875".parse().unwrap()
        );
        assert_ne!(msg_id_hash("a"), msg_id_hash("b"));
    }

    #[test]
    fn announcements_are_spaced_by_the_interval_plus_or_minus_a_third() {
        let base = Duration::from_secs(30);
        assert_eq!(next_announcement_delay(base, 0.0), Duration::from_secs(20));
        assert_eq!(next_announcement_delay(base, 0.5), base);
        assert_eq!(next_announcement_delay(base, 1.0), Duration::from_secs(40));
        assert_eq!(next_announcement_delay(base, f64::NAN), base);
        assert_eq!(next_announcement_delay(base, -3.0), Duration::from_secs(20));
        // A deterministic spread of r: every delay in range, the mean the base, and not
        // all the same (the fixed interval this replaced).
        let delays: Vec<Duration> = (0..1000)
            .map(|i| next_announcement_delay(base, (f64::from(i) + 0.5) / 1000.0))
            .collect();
        assert!(delays
            .iter()
            .all(|d| *d >= Duration::from_secs(20) && *d < Duration::from_secs(40)));
        let mean = delays.iter().sum::<Duration>() / 1000;
        assert!(mean.abs_diff(base) < Duration::from_millis(10), "{mean:?}");
        assert!(delays.windows(2).all(|w| w[0] < w[1]));
    }
}
