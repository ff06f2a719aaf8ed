//! SAP announcement packets (RFC 2974), sans I/O: header + "application/sdp" + the SDP.
//!
//! Hand-written: no maintained crate builds SAP, and the header is eight bytes plus the
//! originating address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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
}
