//! Addresses as written in `RTPMIC_DEST` and `RTPMIC_BIND`: IPv4, bracketed IPv6 with an
//! optional zone (RFC 4007 §11), host names (RFC 1123), ports. Each function returns the
//! reason a value is refused; the key readers in [`super::keys`] turn it into an error line.

use std::net::IpAddr;

use super::reader::shown;
use super::{Destination, Host};

/// A Linux interface name: 1..15 bytes (IFNAMSIZ - 1), not `.` or `..`, no `/`, `:`, `%`,
/// blank or control character (the kernel's `dev_valid_name`, plus `%` which would make a
/// zone ambiguous).
pub(super) fn interface_name(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 15
        && v != "."
        && v != ".."
        && !v.contains(|c: char| c == '/' || c == ':' || c == '%' || c.is_whitespace() || c.is_control())
}

/// Checks the zone written after `%` in an IPv6 address (RFC 4007 §11): an interface name
/// or index, on an address whose scope needs one: link-local unicast (fe80::/10) or
/// interface- or link-local multicast (ff01::/16, ff02::/16 and their flag variants). A
/// zone on a global address would be ignored by the kernel, so it is refused as a mistake.
fn check_zone(addr: &std::net::Ipv6Addr, zone: &str) -> Result<(), String> {
    if zone.is_empty() {
        return Err("empty zone after '%'".into());
    }
    if !interface_name(zone) {
        return Err(format!(
            "zone {:?} is not an interface name or index (1..15 bytes, no '/', ':' or blanks)",
            shown(zone)
        ));
    }
    let first = addr.segments()[0];
    let link_local = first & 0xffc0 == 0xfe80 || (first & 0xff00 == 0xff00 && matches!(first & 0x000f, 1 | 2));
    if !link_local {
        return Err(format!(
            "a zone (%{}) applies only to link-local addresses (fe80::/10, ff02::/16)",
            shown(zone)
        ));
    }
    Ok(())
}

/// Splits `addr%zone`.
fn split_zone(h: &str) -> (&str, Option<&str>) {
    match h.split_once('%') {
        Some((a, z)) => (a, Some(z)),
        None => (h, None),
    }
}

/// A port number: 1..=65535, or 0 too when `zero_ok`. A number outside is "out of range".
fn parse_port(p: &str, zero_ok: bool) -> Result<u16, String> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {:?} is not a number", shown(p)));
    }
    match p.parse::<u16>() {
        Ok(0) if !zero_ok => Err("port 0 is out of range".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("port {} is out of range", shown(p))),
    }
}

/// Parses `RTPMIC_BIND`: `addr`, `addr:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address,
/// each IPv6 form with an optional `%zone` for a link-local address. The zone's interface
/// index is looked up now: the address is a local one, so its interface must exist when the
/// sockets are bound, and `check-config` is the place to say it does not.
pub fn parse_bind(v: &str) -> Result<(std::net::SocketAddr, Option<String>), String> {
    use std::net::{SocketAddr, SocketAddrV6};
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        let (h, p) = rest.split_once(']').ok_or("missing ']'")?;
        match p {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':').ok_or("only :port may follow ']'")?)),
        }
    } else if v.matches(':').count() > 1 {
        (v, None)
    } else {
        match v.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (v, None),
        }
    };
    let (addr, zone) = split_zone(host);
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("{:?} is not an IP address", shown(addr)))?;
    let port = port.map_or(Ok(0), |p| parse_port(p, true))?;
    match (ip, zone) {
        (IpAddr::V6(a), Some(z)) => {
            check_zone(&a, z)?;
            let scope = crate::net::resolve::scope_id(z)?;
            Ok((
                SocketAddr::V6(SocketAddrV6::new(a, port, 0, scope)),
                Some(z.to_string()),
            ))
        }
        (IpAddr::V4(_), Some(_)) => Err("a zone ('%') applies only to IPv6 link-local addresses".into()),
        (ip, None) => Ok((SocketAddr::new(ip, port), None)),
    }
}

/// Parses one `host:port` / `[v6]:port` / `[v6%zone]:port` item. The messages quote at
/// most [`MAX_SHOWN`](super::MAX_SHOWN) characters of the item.
pub fn parse_destination(item: &str) -> Result<Destination, String> {
    if item.is_empty() {
        return Err("empty entry".into());
    }
    let (host, zone, port) = if let Some(rest) = item.strip_prefix('[') {
        let (h, p) = rest.split_once(']').ok_or("missing ']'")?;
        let p = p.strip_prefix(':').ok_or("missing :port")?;
        let (a, zone) = split_zone(h);
        let ip: std::net::Ipv6Addr = a
            .parse()
            .map_err(|_| format!("{:?} is not an IPv6 address", shown(a)))?;
        if let Some(z) = zone {
            check_zone(&ip, z)?;
        }
        (Host::Ip(IpAddr::V6(ip)), zone.map(str::to_string), p)
    } else {
        let (h, p) = item.rsplit_once(':').ok_or("missing :port")?;
        if h.contains(':') {
            return Err("IPv6 addresses must be written in brackets".into());
        }
        (parse_host(h)?, None, p)
    };
    let port = parse_port(port, false)?;
    Ok(Destination { host, port, zone })
}

/// An IPv4 literal or a DNS name (RFC 1123 §2.1 labels).
fn parse_host(h: &str) -> Result<Host, String> {
    if let Ok(ip) = h.parse::<std::net::Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    let labels_ok = !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    // A name made only of digits and dots is a mistyped IPv4 address, not a host name.
    let looks_numeric = h.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if !labels_ok || looks_numeric {
        return Err(format!("{:?} is not an IP address or host name", shown(h)));
    }
    Ok(Host::Name(h.to_ascii_lowercase()))
}
