//! Session description for the stream (RFC 8866), with the Opus rules of RFC 7587 §7.
//!
//! Pure: the caller supplies the origin address and session id, so the text is testable and
//! identical for identical inputs. Numbers are formatted by Rust's `Display`, which is
//! locale-independent.

use std::fmt::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

use crate::config::{format_frame_ms, Codec, Config, Destination, Host};

/// Builds the SDP a receiver of `dest` needs to play the stream.
///
/// * `o=` carries `origin` (the address we send from) and `session_id` (RFC 8866 §5.2 suggests
///   an NTP timestamp).
/// * `c=` is the destination's address: for a receiver that is its own unicast address or
///   the multicast group it joins (RFC 8866 §5.7). IPv4 multicast carries RTPMIC_MULTICAST_TTL.
/// * Opus is always `opus/48000/2` with `stereo=0; sprop-stereo=0` for our mono signal,
///   `useinbandfec` / `usedtx` as configured, and the capture rate as `maxplaybackrate` /
///   `sprop-maxcapturerate` (RFC 7587 §7).
/// * With RFC 2198 redundancy the m-line lists the RED type first and the codec's second, and
///   `a=fmtp:<red> <pt>/<pt>…` names the type of every block (§5).
pub fn describe(config: &Config, dest: &Destination, origin: IpAddr, session_id: u64) -> String {
    let mut s = String::new();
    let family = |ip: &IpAddr| if ip.is_ipv4() { "IP4" } else { "IP6" };
    let pt = config.payload_type;
    // Writing to a String cannot fail.
    let _ = writeln!(s, "v=0");
    let _ = writeln!(s, "o=- {session_id} {session_id} IN {} {origin}", family(&origin));
    let _ = writeln!(s, "s=rtpmic {}", config.device);
    match &dest.host {
        Host::Ip(ip) if ip.is_multicast() && ip.is_ipv4() => {
            let _ = writeln!(s, "c=IN IP4 {ip}/{}", config.multicast_ttl);
        }
        Host::Ip(ip) => {
            let _ = writeln!(s, "c=IN {} {ip}", family(ip));
        }
        Host::Name(name) => {
            let _ = writeln!(s, "c=IN {} {name}", family(&origin));
        }
    }
    let _ = writeln!(s, "t=0 0");
    // RFC 3711 §1 / RFC 4568 §6: SRTP streams are RTP/SAVP, keyed by an a=crypto line.
    let proto = if config.srtp.is_some() { "RTP/SAVP" } else { "RTP/AVP" };
    if config.redundancy > 0 {
        // RFC 2198 §5: the RED type first (what is sent), then the codec it carries.
        let red = config.red_payload_type;
        let _ = writeln!(s, "m=audio {} {proto} {red} {pt}", dest.port);
        let channels = if config.codec == Codec::Opus { "/2" } else { "" };
        let _ = writeln!(s, "a=rtpmap:{red} red/{}{channels}", config.rtp_clock_rate());
        let blocks = vec![pt.to_string(); usize::from(config.redundancy) + 1].join("/");
        let _ = writeln!(s, "a=fmtp:{red} {blocks}");
    } else {
        let _ = writeln!(s, "m=audio {} {proto} {pt}", dest.port);
    }
    match config.codec {
        Codec::Opus => {
            let _ = writeln!(s, "a=rtpmap:{pt} opus/48000/2");
            let _ = writeln!(
                s,
                "a=fmtp:{pt} stereo=0; sprop-stereo=0; useinbandfec={}; usedtx={}; maxplaybackrate={}; sprop-maxcapturerate={}; maxaveragebitrate={}",
                u8::from(config.opus_fec),
                u8::from(config.opus_dtx),
                config.rate,
                config.rate,
                config.bitrate
            );
        }
        Codec::Pcmu => {
            let _ = writeln!(s, "a=rtpmap:{pt} PCMU/8000");
        }
        Codec::Pcma => {
            let _ = writeln!(s, "a=rtpmap:{pt} PCMA/8000");
        }
        Codec::L16 => {
            let _ = writeln!(s, "a=rtpmap:{pt} L16/{}/1", config.rate);
        }
    }
    let ptime = format_frame_ms(config.frame_us);
    let _ = writeln!(s, "a=ptime:{ptime}");
    let _ = writeln!(s, "a=maxptime:{ptime}");
    if config.rtcp && config.rtcp_mux {
        // RFC 5761 §5.1.1: RTCP shares the RTP port.
        let _ = writeln!(s, "a=rtcp-mux");
    }
    if let Some(srtp) = &config.srtp {
        let _ = writeln!(
            s,
            "{}",
            crate::rtp::srtp::sdp_crypto_attribute(1, srtp.profile, &srtp.key)
        );
    }
    let _ = writeln!(s, "a=sendonly");
    s
}

/// The SDP for `config.dest[index]` as `rtpmic sdp` prints it and `RTPMIC_SDP_FILE` holds:
/// the origin is the local address the kernel would send from, the session id the current
/// NTP time (RFC 8866 §5.2). `None` when there is no such destination.
pub fn for_destination(config: &Config, index: usize) -> Option<String> {
    let dest = config.dest.get(index)?;
    let origin = crate::net::resolve::local_address_towards(dest);
    let session_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + 2_208_988_800)
        .unwrap_or(0);
    Some(describe(config, dest, origin, session_id))
}

/// Writes the SDP of the first destination to `path` atomically (temp file + rename), so a
/// receiver never reads half a file.
pub fn write_file(config: &Config, path: &std::path::Path) -> std::io::Result<()> {
    let text = for_destination(config, 0).ok_or_else(|| std::io::Error::other("no destination"))?;
    let tmp = path.with_extension("sdp.tmp");
    // With SRTP the file holds the key: readable by the owner only.
    let mode = if config.srtp.is_some() { 0o600 } else { 0o644 };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    // The mode applies only when the file is created; a left-over temp file keeps its own.
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut v = vec![("RTPMIC_DEST", "127.0.0.1:5004")];
        v.extend_from_slice(pairs);
        Config::from_pairs(v).unwrap()
    }

    #[test]
    fn opus_sdp_follows_rfc7587() {
        let c = config(&[]);
        let sdp = describe(&c, &c.dest[0], "127.0.0.1".parse().unwrap(), 42);
        let want = "v=0\no=- 42 42 IN IP4 127.0.0.1\ns=rtpmic default\nc=IN IP4 127.0.0.1\nt=0 0\n\
                    m=audio 5004 RTP/AVP 96\na=rtpmap:96 opus/48000/2\n\
                    a=fmtp:96 stereo=0; sprop-stereo=0; useinbandfec=0; usedtx=0; maxplaybackrate=48000; sprop-maxcapturerate=48000; maxaveragebitrate=32000\n\
                    a=ptime:20\na=maxptime:20\na=sendonly\n";
        assert_eq!(sdp, want);
    }

    #[test]
    fn fec_dtx_and_redundancy_are_advertised() {
        let c = config(&[("RTPMIC_OPUS_FEC", "on"), ("RTPMIC_OPUS_DTX", "on")]);
        let sdp = describe(&c, &c.dest[0], "127.0.0.1".parse().unwrap(), 1);
        assert!(sdp.contains("; useinbandfec=1; usedtx=1; "), "{sdp}");
        let c = config(&[("RTPMIC_FRAME_MS", "2.5"), ("RTPMIC_REDUNDANCY", "2")]);
        let sdp = describe(&c, &c.dest[0], "127.0.0.1".parse().unwrap(), 1);
        assert!(
            sdp.contains("m=audio 5004 RTP/AVP 121 96\na=rtpmap:121 red/48000/2\na=fmtp:121 96/96/96\na=rtpmap:96 opus/48000/2\n"),
            "{sdp}"
        );
    }

    #[test]
    fn static_types_and_fractional_ptime() {
        let c = config(&[("RTPMIC_CODEC", "pcma"), ("RTPMIC_DEST", "[ff02::1]:6000")]);
        let sdp = describe(&c, &c.dest[0], "::1".parse().unwrap(), 1);
        assert!(sdp.contains("c=IN IP6 ff02::1\n"), "{sdp}");
        assert!(sdp.contains("m=audio 6000 RTP/AVP 8\na=rtpmap:8 PCMA/8000\n"), "{sdp}");
        let c = config(&[("RTPMIC_FRAME_MS", "2.5"), ("RTPMIC_DEST", "239.1.2.3:5004")]);
        let sdp = describe(&c, &c.dest[0], "10.0.0.2".parse().unwrap(), 1);
        assert!(
            sdp.contains("a=ptime:2.5\n") && sdp.contains("c=IN IP4 239.1.2.3/16\n"),
            "{sdp}"
        );
        let c = config(&[("RTPMIC_CODEC", "l16"), ("RTPMIC_RATE", "16000")]);
        let sdp = describe(&c, &c.dest[0], "127.0.0.1".parse().unwrap(), 1);
        assert!(
            sdp.contains("a=rtpmap:97 L16/16000/1\n") && !sdp.contains("rtcp-mux"),
            "{sdp}"
        );
        let c = config(&[("RTPMIC_RTCP_MUX", "on")]);
        let sdp = describe(&c, &c.dest[0], "127.0.0.1".parse().unwrap(), 1);
        assert!(sdp.contains("a=rtcp-mux\n"), "{sdp}");
    }
}
