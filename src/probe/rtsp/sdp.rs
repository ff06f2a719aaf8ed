//! What the probe needs from a DESCRIBE answer's SDP (RFC 8866): the first audio stream it
//! can decode, that stream's control URL and the session's, and whether it is encrypted.
//!
//! Parsed by hand rather than with `sdp-types`: that crate parses a whole session and fails
//! it for one line it does not like (cameras' SDPs are often loose: a missing `s=`, stray
//! spaces, LF line ends), while the probe reads four attributes of one media section
//! (`a=rtpmap`, `a=control`, `a=crypto`, the m-line's formats) and can skip the rest line by
//! line.

use crate::probe::Codec;

/// The SDP a server may send is bounded by the response body limit; this bounds the formats
/// kept per m-line.
const MAX_FORMATS: usize = 32;

/// The audio stream chosen, and the session's control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    /// The m-line's payload types the probe can decode, in the m-line's order.
    pub formats: Vec<(u8, Codec)>,
    /// How each is described (`OPUS/48000/2 (pt 96)`), for the status line.
    pub encoding: String,
    /// The stream's `a=control` (absolute, relative, or `*`), if any.
    pub control: Option<String>,
    /// The session-level `a=control`, if any (aggregate control).
    pub session_control: Option<String>,
}

/// Why no stream could be taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("the stream is encrypted (SRTP: {0}); SRTP is not supported by the probe")]
    Srtp(&'static str),
    #[error("the SDP has no audio stream")]
    NoAudio,
    #[error("no audio stream in the SDP that the probe can decode ({0}); it plays Opus, PCMU, PCMA and mono L16")]
    Unsupported(String),
}

#[derive(Default)]
struct Media {
    proto: String,
    fmts: Vec<u8>,
    rtpmaps: Vec<(u8, String)>,
    control: Option<String>,
    crypto: bool,
}

/// Reads `sdp` (CRLF or LF lines). The first `m=audio` section with a format the probe can
/// decode wins; an encrypted one (`RTP/SAVP…` or `a=crypto`) is an error when no plain audio
/// stream precedes it.
pub fn parse(sdp: &str) -> Result<Described, SdpError> {
    let mut session_control = None;
    let mut media: Vec<Media> = Vec::new();
    let mut in_audio = false;
    // Before the first m-line: session-level attributes.
    let mut session_level = true;
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(m) = line.strip_prefix("m=") {
            session_level = false;
            let mut f = m.split_ascii_whitespace();
            in_audio = f.next().is_some_and(|kind| kind.eq_ignore_ascii_case("audio"));
            if in_audio {
                let _port = f.next();
                let proto = f.next().unwrap_or("").to_string();
                let fmts = f.filter_map(|p| p.parse::<u8>().ok()).take(MAX_FORMATS).collect();
                media.push(Media {
                    proto,
                    fmts,
                    ..Media::default()
                });
            }
            continue;
        }
        let Some(attr) = line.strip_prefix("a=") else { continue };
        let (name, value) = attr.split_once(':').unwrap_or((attr, ""));
        let value = value.trim();
        match (media.last_mut().filter(|_| in_audio), session_level) {
            (None, true) if name == "control" => session_control = Some(value.to_string()),
            (Some(m), _) => match name {
                "control" => m.control = Some(value.to_string()),
                "crypto" => m.crypto = true,
                "rtpmap" => {
                    if let Some((pt, enc)) = value.split_once(' ') {
                        if let Ok(pt) = pt.trim().parse::<u8>() {
                            if m.rtpmaps.len() < MAX_FORMATS {
                                m.rtpmaps.push((pt, enc.trim().to_string()));
                            }
                        }
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    if media.is_empty() {
        return Err(SdpError::NoAudio);
    }
    let mut seen = Vec::new();
    let mut srtp = None;
    for m in media {
        let encrypted = if m.proto.to_ascii_uppercase().contains("SAVP") {
            Some("the stream's profile is RTP/SAVP")
        } else if m.crypto {
            Some("a=crypto")
        } else {
            None
        };
        if let Some(why) = encrypted {
            srtp.get_or_insert(why);
            continue;
        }
        let mut formats = Vec::new();
        let mut names = Vec::new();
        for &pt in &m.fmts {
            let rtpmap = m.rtpmaps.iter().find(|(p, _)| *p == pt).map(|(_, e)| e.as_str());
            let name = rtpmap.map_or_else(|| format!("pt {pt}"), |e| format!("{e} (pt {pt})"));
            match codec(pt, rtpmap) {
                Some(c) => {
                    formats.push((pt, c));
                    names.push(name);
                }
                None => seen.push(name),
            }
        }
        if !formats.is_empty() {
            return Ok(Described {
                formats,
                encoding: printable(&names.join(", ")),
                control: m.control,
                session_control,
            });
        }
    }
    match srtp {
        Some(why) => Err(SdpError::Srtp(why)),
        None => Err(SdpError::Unsupported(printable(&seen.join(", ")))),
    }
}

/// The codec of payload type `pt` given its `a=rtpmap` value (`encoding/clock[/channels]`),
/// or for a static type without one (RFC 3551: 0 PCMU, 8 PCMA, 11 L16/44100/1).
fn codec(pt: u8, rtpmap: Option<&str>) -> Option<Codec> {
    let Some(map) = rtpmap else {
        return match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            11 => Some(Codec::L16 { rate: 44_100 }),
            _ => None,
        };
    };
    let mut parts = map.split('/');
    let name = parts.next()?.trim().to_ascii_lowercase();
    let rate: u32 = parts.next()?.trim().parse().ok()?;
    let channels: u32 = match parts.next() {
        Some(c) => c.trim().parse().ok()?,
        None => 1,
    };
    match (name.as_str(), rate, channels) {
        // RFC 7587: always opus/48000/2, whatever the stream carries (a mono decoder mixes
        // a stereo stream down).
        ("opus", 48_000, _) => Some(Codec::Opus),
        ("pcmu", 8000, 1) => Some(Codec::Pcmu),
        ("pcma", 8000, 1) => Some(Codec::Pcma),
        ("l16", 1..=192_000, 1) => Some(Codec::L16 { rate }),
        _ => None,
    }
}

/// `s` cut to 200 characters, control characters escaped: text from the server goes to a
/// terminal.
pub fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(200).flat_map(char::escape_debug).collect();
    if s.chars().nth(200).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// gst-rtsp-server 1.22's answer, as captured.
    const GST: &str = "v=0\r\no=- 6824920818841407292 1 IN IP4 127.0.0.1\r\ns=Session streamed with GStreamer\r\n\
        i=rtsp-server\r\nt=0 0\r\na=tool:GStreamer\r\na=type:broadcast\r\na=control:*\r\na=range:npt=now-\r\n\
        m=audio 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\nb=AS:64\r\na=rtpmap:96 OPUS/48000/2\r\n\
        a=fmtp:96 sprop-stereo=0;sprop-maxcapturerate=48000\r\na=control:stream=0\r\na=ts-refclk:local\r\n\
        a=mediaclk:sender\r\na=ssrc:3042466210 cname:user706233673@host-710a3a92\r\n";

    #[test]
    fn reads_gstreamers_sdp() {
        let d = parse(GST).unwrap();
        assert_eq!(d.formats, vec![(96, Codec::Opus)]);
        assert_eq!(d.encoding, "OPUS/48000/2 (pt 96)");
        assert_eq!(d.control.as_deref(), Some("stream=0"));
        assert_eq!(d.session_control.as_deref(), Some("*"));
    }

    #[test]
    fn static_and_mapped_formats() {
        let d = parse("v=0\nm=audio 0 RTP/AVP 0 8\n").unwrap();
        assert_eq!(d.formats, vec![(0, Codec::Pcmu), (8, Codec::Pcma)]);
        assert_eq!(d.control, None);
        let d = parse("m=audio 0 RTP/AVP 97\na=rtpmap:97 L16/16000/1\na=control:rtsp://h/a/track1\n").unwrap();
        assert_eq!(d.formats, vec![(97, Codec::L16 { rate: 16_000 })]);
        assert_eq!(d.control.as_deref(), Some("rtsp://h/a/track1"));
        let d = parse("m=audio 0 RTP/AVP 97\na=rtpmap:97 pcma/8000\n").unwrap();
        assert_eq!(d.formats, vec![(97, Codec::Pcma)]);
    }

    #[test]
    fn the_first_decodable_audio_stream_wins() {
        let sdp = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:v\r\n\
                   m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\na=control:a1\r\n\
                   m=audio 0 RTP/AVP 0\r\na=control:a2\r\n";
        let d = parse(sdp).unwrap();
        assert_eq!((d.formats[0], d.control.as_deref()), ((0, Codec::Pcmu), Some("a2")));
    }

    #[test]
    fn refusals() {
        assert_eq!(parse("v=0\r\nm=video 0 RTP/AVP 96\r\n"), Err(SdpError::NoAudio));
        let e = parse("m=audio 0 RTP/AVP 97\na=rtpmap:97 L16/48000/2\nm=audio 0 RTP/AVP 98\na=rtpmap:98 G722/8000\n");
        assert_eq!(
            e,
            Err(SdpError::Unsupported("L16/48000/2 (pt 97), G722/8000 (pt 98)".into()))
        );
        let e = parse("m=audio 0 RTP/AVP 96\na=rtpmap:96 opus/48000/2\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\n");
        assert_eq!(e, Err(SdpError::Srtp("a=crypto")));
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("SRTP is not supported by the probe"));
        let e = parse("m=audio 0 RTP/SAVP 0\n");
        assert!(matches!(e, Err(SdpError::Srtp(_))));
        // Control characters from the server are escaped.
        let e = parse("m=audio 0 RTP/AVP 97\na=rtpmap:97 X\x1b[2J/8000\n").unwrap_err();
        assert!(!e.to_string().contains('\x1b'), "{e}");
    }

    #[test]
    fn garbage_does_not_panic() {
        for s in [
            "",
            "m=",
            "m=audio",
            "a=rtpmap:",
            "m=audio 0\na=rtpmap:x y",
            "m=audio 0 RTP/AVP 300 -1 96\na=rtpmap:96 opus/x",
        ] {
            let _ = parse(s);
        }
    }
}
