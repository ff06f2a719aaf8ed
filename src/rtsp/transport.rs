//! The `Transport` header (RFC 2326 §12.39): what a client asks for in SETUP, what we choose,
//! and what we answer.
//!
//! Parsed here rather than with `rtsp_types::headers::Transports`, for three reasons: that
//! parser fails the whole header when any one alternative has a parameter it cannot read
//! (we want the first alternative we support, whatever follows it); it can panic on hostile
//! input (its `dest_addr` unquoting indexes past a lone `"` or a trailing `\`); and we need
//! only a handful of parameters, read leniently (case-insensitive names, quoted values).
//!
//! What we serve, in the client's order of preference (the first alternative we support wins):
//!
//! * `RTP/AVP;unicast;client_port=a-b` (also spelt `RTP/AVP/UDP`): RTP to the client's address
//!   port a, RTCP to port b (a + 1 when b is missing). The address is always the RTSP
//!   connection's peer address: a `destination` naming another host is refused (463), or the
//!   server would send a stream wherever anyone asked (a traffic reflector).
//! * `RTP/AVP/TCP;unicast;interleaved=a-b` (§10.12): RTP on channel a, RTCP on b of the RTSP
//!   connection; without `interleaved` (or with channels another session of the connection
//!   already uses) the server picks free ones.
//! * `RTP/AVP;multicast`: the configured group (461 when there is none); the client cannot
//!   choose another group (463).
//! * `RTP/SAVP…` in place of `RTP/AVP…` when SRTP is on, and only then: a plain-RTP client
//!   of an SRTP stream would get noise, and an SAVP one of a plain stream nothing it trusts.

use std::net::{IpAddr, SocketAddr};

use crate::rtp::session::peers::canonical;

/// The RTP profile (RFC 3551 AVP, RFC 3711 SAVP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Avp,
    Savp,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Avp => "RTP/AVP",
            Profile::Savp => "RTP/SAVP",
        }
    }
}

/// A multicast group the stream is sent to (configured; shared by every multicast client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MulticastGroup {
    /// The group and its RTP port (RTCP on the next port, RFC 3550 §11).
    pub group: SocketAddr,
    pub ttl: u8,
}

/// One alternative of a client's `Transport` header, as written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spec<'a> {
    /// `RTP/AVP`, `RTP/SAVP`, … (without the lower transport).
    pub protocol: &'a str,
    /// `TCP`, `UDP`, or `None`.
    pub lower: Option<&'a str>,
    pub unicast: bool,
    pub multicast: bool,
    pub client_port: Option<(u16, Option<u16>)>,
    pub interleaved: Option<(u8, Option<u8>)>,
    pub destination: Option<&'a str>,
    pub mode: Option<&'a str>,
}

/// An alternative that cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

/// At most this many alternatives are looked at.
pub const MAX_ALTERNATIVES: usize = 16;

/// The alternatives of a `Transport` header, in order, each parsed on its own.
pub fn parse(header: &str) -> impl Iterator<Item = Result<Spec<'_>, Malformed>> {
    split_unquoted(header, b',')
        .filter(|alt| !alt.trim().is_empty())
        .take(MAX_ALTERNATIVES)
        .map(parse_one)
}

fn parse_one(alt: &str) -> Result<Spec<'_>, Malformed> {
    let mut parts = split_unquoted(alt, b';');
    let spec = parts.next().unwrap_or("").trim();
    let mut words = spec.split('/');
    let (Some(proto), Some(profile)) = (words.next(), words.next()) else {
        return Err(Malformed);
    };
    let lower = words.next();
    if words.next().is_some() || proto.is_empty() || profile.is_empty() {
        return Err(Malformed);
    }
    let mut s = Spec {
        protocol: &spec[..proto.len() + 1 + profile.len()],
        lower,
        ..Spec::default()
    };
    for param in parts {
        let param = param.trim();
        if param.is_empty() {
            continue;
        }
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim()))),
            None => (param, None),
        };
        let lower_name = |n: &str| name.eq_ignore_ascii_case(n);
        if lower_name("unicast") {
            s.unicast = true;
        } else if lower_name("multicast") {
            s.multicast = true;
        } else if lower_name("client_port") {
            s.client_port = Some(range(value.ok_or(Malformed)?)?);
        } else if lower_name("interleaved") {
            let (a, b) = range::<u8>(value.ok_or(Malformed)?)?;
            s.interleaved = Some((a, b));
        } else if lower_name("destination") {
            s.destination = value;
        } else if lower_name("mode") {
            s.mode = Some(value.ok_or(Malformed)?);
        }
        // Anything else (ttl, port, ssrc, source, append, layers, …) does not change what
        // we send to a client that plays, and is ignored.
    }
    Ok(s)
}

/// `a` or `a-b`.
fn range<T: std::str::FromStr>(v: &str) -> Result<(T, Option<T>), Malformed> {
    let (a, b) = match v.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    let a = a.trim().parse().map_err(|_| Malformed)?;
    let b = b.map(|b| b.trim().parse().map_err(|_| Malformed)).transpose()?;
    Ok((a, b))
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v)
}

/// Splits at `sep` outside double quotes.
fn split_unquoted(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        let mut quoted = false;
        for (i, b) in r.bytes().enumerate() {
            match b {
                b'"' => quoted = !quoted,
                b if b == sep && !quoted => {
                    rest = Some(&r[i + 1..]);
                    return Some(&r[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(r)
    })
}

/// What the server knows when it chooses.
#[derive(Clone, Copy, Debug)]
pub struct Offer {
    pub srtp: bool,
    /// The RTSP connection's peer address.
    pub client: IpAddr,
    pub multicast: Option<MulticastGroup>,
}

/// The transport chosen for a session, before the server fills in its side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// UDP to the client's address, RTP to `rtp_port`, RTCP to `rtcp_port`.
    Udp { rtp_port: u16, rtcp_port: u16 },
    /// Interleaved on the RTSP connection, on the channels asked for (if any).
    Tcp { channels: Option<(u8, u8)> },
    /// The configured multicast group.
    Multicast,
}

/// Why no alternative was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `Transport` header, or none of its alternatives can be read: 400.
    Malformed,
    /// None is supported: 461.
    Unsupported,
    /// One asks us to send somewhere other than the client: 463.
    DestinationProhibited,
}

/// The first alternative of `header` the server supports, with its profile.
pub fn choose(header: &str, offer: &Offer) -> Result<(Choice, Profile), Refusal> {
    let mut refusal = Refusal::Malformed;
    for alt in parse(header) {
        let Ok(spec) = alt else { continue };
        match judge(&spec, offer) {
            Ok(chosen) => return Ok(chosen),
            // The most telling reason of the alternatives we could read.
            Err(r) if r == Refusal::DestinationProhibited || refusal == Refusal::Malformed => refusal = r,
            Err(_) => {}
        }
    }
    Err(refusal)
}

fn judge(s: &Spec<'_>, offer: &Offer) -> Result<(Choice, Profile), Refusal> {
    let profile = if s.protocol.eq_ignore_ascii_case("RTP/AVP") {
        Profile::Avp
    } else if s.protocol.eq_ignore_ascii_case("RTP/SAVP") {
        Profile::Savp
    } else {
        return Err(Refusal::Unsupported);
    };
    if (profile == Profile::Savp) != offer.srtp {
        return Err(Refusal::Unsupported);
    }
    if s.mode.is_some_and(|m| !m.trim().eq_ignore_ascii_case("PLAY")) {
        return Err(Refusal::Unsupported);
    }
    let tcp = match s.lower {
        None => false,
        Some(l) if l.eq_ignore_ascii_case("UDP") => false,
        Some(l) if l.eq_ignore_ascii_case("TCP") => true,
        Some(_) => return Err(Refusal::Unsupported),
    };
    // RFC 2326 §12.39: multicast is the default; a client that gives its ports or wants TCP
    // means unicast.
    let multicast = s.multicast || (!s.unicast && !tcp && s.client_port.is_none());
    let choice = match (tcp, multicast) {
        (true, true) => return Err(Refusal::Unsupported),
        (true, false) => Choice::Tcp {
            channels: s.interleaved.and_then(|(a, b)| Some((a, b.or(a.checked_add(1))?))),
        },
        (false, true) => {
            let group = offer.multicast.ok_or(Refusal::Unsupported)?;
            if let Some(d) = s.destination {
                if parse_ip(d).map(canonical_ip) != Some(canonical_ip(group.group.ip())) {
                    return Err(Refusal::DestinationProhibited);
                }
            }
            Choice::Multicast
        }
        (false, false) => {
            if let Some(d) = s.destination {
                if parse_ip(d).map(canonical_ip) != Some(canonical_ip(offer.client)) {
                    return Err(Refusal::DestinationProhibited);
                }
            }
            let (rtp_port, rtcp_port) = match s.client_port {
                Some((0, _)) | Some((_, Some(0))) | None => return Err(Refusal::Unsupported),
                Some((a, b)) => (a, b.or(a.checked_add(1)).ok_or(Refusal::Unsupported)?),
            };
            Choice::Udp { rtp_port, rtcp_port }
        }
    };
    Ok((choice, profile))
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(s);
    s.parse().ok()
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    canonical(SocketAddr::new(ip, 0)).ip()
}

/// What a session got, to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granted {
    Udp {
        client_ports: (u16, u16),
        server_ports: (u16, u16),
    },
    Tcp {
        channels: (u8, u8),
    },
    Multicast(MulticastGroup),
}

/// The `Transport` header of our SETUP answer.
pub fn reply(profile: Profile, granted: &Granted, ssrc: u32) -> String {
    let p = profile.as_str();
    match granted {
        Granted::Udp {
            client_ports: (a, b),
            server_ports: (c, d),
        } => format!("{p};unicast;client_port={a}-{b};server_port={c}-{d};ssrc={ssrc:08X}"),
        Granted::Tcp { channels: (a, b) } => format!("{p}/TCP;unicast;interleaved={a}-{b};ssrc={ssrc:08X}"),
        Granted::Multicast(g) => {
            let port = g.group.port();
            format!(
                "{p};multicast;destination={};port={port}-{};ttl={};ssrc={ssrc:08X}",
                g.group.ip(),
                port.wrapping_add(1),
                g.ttl
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> Offer {
        Offer {
            srtp: false,
            client: "192.0.2.7".parse().unwrap(),
            multicast: None,
        }
    }

    fn group() -> MulticastGroup {
        MulticastGroup {
            group: "239.1.2.3:5004".parse().unwrap(),
            ttl: 16,
        }
    }

    #[test]
    fn udp_as_ffmpeg_and_gstreamer_ask() {
        for h in [
            "RTP/AVP/UDP;unicast;client_port=7102-7103",
            "RTP/AVP;unicast;client_port=7102-7103",
            "rtp/avp;UNICAST;client_port=7102",
            "RTP/AVP;unicast;client_port=7102-7103;mode=\"PLAY\"",
            "RTP/AVP;unicast;destination=192.0.2.7;client_port=7102-7103",
            "RTP/AVP;unicast;destination=::ffff:192.0.2.7;client_port=7102-7103",
        ] {
            assert_eq!(
                choose(h, &offer()),
                Ok((
                    Choice::Udp {
                        rtp_port: 7102,
                        rtcp_port: 7103
                    },
                    Profile::Avp
                )),
                "{h}"
            );
        }
    }

    #[test]
    fn tcp_with_and_without_channels() {
        assert_eq!(
            choose("RTP/AVP/TCP;unicast;interleaved=0-1", &offer()),
            Ok((Choice::Tcp { channels: Some((0, 1)) }, Profile::Avp))
        );
        assert_eq!(
            choose("RTP/AVP/TCP;unicast;interleaved=4", &offer()),
            Ok((Choice::Tcp { channels: Some((4, 5)) }, Profile::Avp))
        );
        assert_eq!(
            choose("RTP/AVP/TCP;unicast", &offer()),
            Ok((Choice::Tcp { channels: None }, Profile::Avp))
        );
        assert_eq!(
            choose("RTP/AVP/TCP;unicast;interleaved=255", &offer()),
            Ok((Choice::Tcp { channels: None }, Profile::Avp)),
            "no room for RTCP: the server picks"
        );
        assert_eq!(choose("RTP/AVP/TCP;multicast", &offer()), Err(Refusal::Unsupported));
    }

    #[test]
    fn the_first_supported_alternative_wins() {
        let gst = "RTP/AVP;multicast,RTP/AVP;unicast;client_port=40000-40001,RTP/AVP/TCP;unicast;interleaved=0-1";
        assert_eq!(
            choose(gst, &offer()).unwrap().0,
            Choice::Udp {
                rtp_port: 40000,
                rtcp_port: 40001
            },
            "no group configured: multicast is skipped"
        );
        let with_group = Offer {
            multicast: Some(group()),
            ..offer()
        };
        assert_eq!(choose(gst, &with_group).unwrap().0, Choice::Multicast);
        // RFC 2326's own example, with a quoted mode holding a comma.
        let rfc = "RTP/AVP;multicast;ttl=127;mode=\"PLAY,RECORD\", RTP/AVP;unicast;client_port=3456-3457;mode=\"PLAY\"";
        assert_eq!(
            choose(rfc, &offer()).unwrap().0,
            Choice::Udp {
                rtp_port: 3456,
                rtcp_port: 3457
            }
        );
        // An unreadable alternative does not spoil the next one.
        let bad_first = "RTP/AVP;unicast;client_port=x-y, RTP/AVP/TCP;interleaved=2-3";
        assert_eq!(
            choose(bad_first, &offer()).unwrap().0,
            Choice::Tcp { channels: Some((2, 3)) }
        );
    }

    #[test]
    fn savp_only_with_srtp_and_avp_only_without() {
        let srtp = Offer { srtp: true, ..offer() };
        assert_eq!(
            choose("RTP/SAVP;unicast;client_port=5000-5001", &srtp).unwrap().1,
            Profile::Savp
        );
        assert_eq!(
            choose("RTP/SAVP/TCP;unicast;interleaved=0-1", &srtp).unwrap().1,
            Profile::Savp
        );
        assert_eq!(
            choose("RTP/AVP;unicast;client_port=5000-5001", &srtp),
            Err(Refusal::Unsupported)
        );
        assert_eq!(
            choose("RTP/SAVP;unicast;client_port=5000-5001", &offer()),
            Err(Refusal::Unsupported)
        );
        assert_eq!(
            choose("RTP/AVPF;unicast;client_port=5000-5001", &offer()),
            Err(Refusal::Unsupported)
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            choose(
                "RTP/AVP;unicast;destination=198.51.100.9;client_port=5000-5001",
                &offer()
            ),
            Err(Refusal::DestinationProhibited),
            "a reflector's request"
        );
        assert_eq!(
            choose(
                "RTP/AVP;unicast;destination=victim.example;client_port=5000-5001",
                &offer()
            ),
            Err(Refusal::DestinationProhibited)
        );
        let with_group = Offer {
            multicast: Some(group()),
            ..offer()
        };
        assert_eq!(
            choose("RTP/AVP;multicast;destination=239.9.9.9", &with_group),
            Err(Refusal::DestinationProhibited)
        );
        assert_eq!(
            choose("RTP/AVP;multicast;destination=239.1.2.3;port=6000-6001", &with_group),
            Ok((Choice::Multicast, Profile::Avp))
        );
        assert_eq!(choose("RTP/AVP;multicast", &offer()), Err(Refusal::Unsupported));
        assert_eq!(
            choose("RTP/AVP;unicast;client_port=0-1", &offer()),
            Err(Refusal::Unsupported)
        );
        assert_eq!(choose("RTP/AVP;unicast", &offer()), Err(Refusal::Unsupported));
        assert_eq!(
            choose("RTP/AVP;unicast;client_port=5000-5001;mode=RECORD", &offer()),
            Err(Refusal::Unsupported)
        );
        assert_eq!(choose("RAW/RAW/UDP;unicast", &offer()), Err(Refusal::Unsupported));
        assert_eq!(choose("", &offer()), Err(Refusal::Malformed));
        assert_eq!(choose("RTP;;;", &offer()), Err(Refusal::Malformed));
        assert_eq!(
            choose("RTP/AVP;unicast;client_port=99999", &offer()),
            Err(Refusal::Malformed)
        );
        // Hostile shapes that panic other parsers.
        for h in [
            "\"",
            "RTP/AVP;dest_addr=\"\\\"/\"",
            "RTP/AVP;destination=\"",
            ",,,;;;===",
            "RTP/AVP/TCP/X",
        ] {
            let _ = choose(h, &offer());
        }
    }

    #[test]
    fn replies() {
        let udp = Granted::Udp {
            client_ports: (7102, 7103),
            server_ports: (6970, 6971),
        };
        assert_eq!(
            reply(Profile::Avp, &udp, 0xdeadbeef),
            "RTP/AVP;unicast;client_port=7102-7103;server_port=6970-6971;ssrc=DEADBEEF"
        );
        assert_eq!(
            reply(Profile::Savp, &Granted::Tcp { channels: (0, 1) }, 0x1234),
            "RTP/SAVP/TCP;unicast;interleaved=0-1;ssrc=00001234"
        );
        assert_eq!(
            reply(Profile::Avp, &Granted::Multicast(group()), 1),
            "RTP/AVP;multicast;destination=239.1.2.3;port=5004-5005;ttl=16;ssrc=00000001"
        );
    }
}
