//! Session description for the stream (RFC 8866), with the Opus rules of RFC 7587 §7.
//!
//! Pure: the caller supplies the origin address and session id, so the text is testable and
//! identical for identical inputs. Numbers are formatted by Rust's `Display`, which is
//! locale-independent. Every line ends in CRLF (RFC 8866 §5).
//!
//! [`write_file`] puts the text at `RTPMIC_SDP_FILE` without trusting the directory: see
//! there.

use std::fmt::Write;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::config::{format_frame_ms, Codec, Config, Destination, Host, SrtpConfig};

/// What the SDP says about the stream itself, whoever receives it: the small typed settings
/// [`describe`] needs, taken from the configuration once.
#[derive(Clone, Debug)]
pub struct StreamDescription {
    /// Shown in `s=` (the capture device).
    pub name: String,
    pub codec: Codec,
    pub payload_type: u8,
    /// Capture rate, and the RTP clock rate.
    pub rate: u32,
    pub clock_rate: u32,
    pub frame_us: u32,
    pub opus_fec: bool,
    pub opus_dtx: bool,
    pub bitrate: u32,
    /// RFC 2198: previous frames repeated, and the RED payload type.
    pub redundancy: u8,
    pub red_payload_type: u8,
    pub rtcp_mux: bool,
    /// `a=crypto` (RFC 4568) with the profile and key, when SRTP is on.
    pub srtp: Option<SrtpConfig>,
}

impl StreamDescription {
    pub fn from_config(c: &Config) -> StreamDescription {
        StreamDescription {
            name: c.device.clone(),
            codec: c.codec,
            payload_type: c.payload_type,
            rate: c.rate,
            clock_rate: c.rtp_clock_rate(),
            frame_us: c.frame_us,
            opus_fec: c.opus_fec,
            opus_dtx: c.opus_dtx,
            bitrate: c.bitrate,
            redundancy: c.redundancy,
            red_payload_type: c.red_payload_type,
            rtcp_mux: c.rtcp && c.rtcp_mux,
            srtp: c.srtp.clone(),
        }
    }
}

/// Where the stream described goes (`c=` and the `m=` port), RFC 8866 §5.7 / §5.14.
#[derive(Clone, Debug)]
pub enum Target<'a> {
    /// A receiver of `RTPMIC_DEST`: its own address (or name), or the multicast group it
    /// joins (IPv4 with its TTL).
    Destination { dest: &'a Destination, multicast_ttl: u8 },
    /// An RTSP DESCRIBE (RFC 2326 Appendix C.1): no address yet (`c=IN IP4 0.0.0.0`, port
    /// 0; SETUP's Transport says), `a=control` names the track for SETUP.
    Rtsp { control: &'a str },
}

/// Builds the SDP a receiver needs to play the stream.
///
/// * `o=` carries `origin` (the address we send from) and `session_id` (RFC 8866 §5.2 suggests
///   an NTP timestamp).
/// * `c=` and the port come from `target`.
/// * Opus is always `opus/48000/2` with `stereo=0; sprop-stereo=0` for our mono signal,
///   `useinbandfec` / `usedtx` as configured, and the capture rate as `maxplaybackrate` /
///   `sprop-maxcapturerate` (RFC 7587 §7).
/// * With RFC 2198 redundancy the m-line lists the RED type first and the codec's second, and
///   `a=fmtp:<red> <pt>/<pt>…` names the type of every block (§5).
/// * Lines end in CRLF, as RFC 8866 §5 requires ("the sequence CRLF (0x0d0a) is used to end
///   a line"); the `s=` text has any control character replaced, so no value can start a
///   line of its own.
pub fn describe(stream: &StreamDescription, target: &Target<'_>, origin: IpAddr, session_id: u64) -> String {
    let mut s = String::new();
    let family = |ip: &IpAddr| if ip.is_ipv4() { "IP4" } else { "IP6" };
    let pt = stream.payload_type;
    // Writing to a String cannot fail.
    let _ = writeln!(s, "v=0");
    let _ = writeln!(s, "o=- {session_id} {session_id} IN {} {origin}", family(&origin));
    let _ = writeln!(s, "s=rtpmic {}", stream.name.replace(char::is_control, "?"));
    let port = match target {
        Target::Destination { dest, multicast_ttl } => {
            match &dest.host {
                Host::Ip(ip) if ip.is_multicast() && ip.is_ipv4() => {
                    let _ = writeln!(s, "c=IN IP4 {ip}/{multicast_ttl}");
                }
                Host::Ip(ip) => {
                    let _ = writeln!(s, "c=IN {} {ip}", family(ip));
                }
                Host::Name(name) => {
                    let _ = writeln!(s, "c=IN {} {name}", family(&origin));
                }
            }
            dest.port
        }
        Target::Rtsp { .. } => {
            let _ = writeln!(s, "c=IN {} {}", family(&origin), unspecified(&origin));
            0
        }
    };
    let _ = writeln!(s, "t=0 0");
    // RFC 3711 §1 / RFC 4568 §6: SRTP streams are RTP/SAVP, keyed by an a=crypto line.
    let proto = if stream.srtp.is_some() { "RTP/SAVP" } else { "RTP/AVP" };
    if stream.redundancy > 0 {
        // RFC 2198 §5: the RED type first (what is sent), then the codec it carries.
        let red = stream.red_payload_type;
        let _ = writeln!(s, "m=audio {port} {proto} {red} {pt}");
        let channels = if stream.codec == Codec::Opus { "/2" } else { "" };
        let _ = writeln!(s, "a=rtpmap:{red} red/{}{channels}", stream.clock_rate);
        let blocks = vec![pt.to_string(); usize::from(stream.redundancy) + 1].join("/");
        let _ = writeln!(s, "a=fmtp:{red} {blocks}");
    } else {
        let _ = writeln!(s, "m=audio {port} {proto} {pt}");
    }
    match stream.codec {
        Codec::Opus => {
            let _ = writeln!(s, "a=rtpmap:{pt} opus/48000/2");
            let _ = writeln!(
                s,
                "a=fmtp:{pt} stereo=0; sprop-stereo=0; useinbandfec={}; usedtx={}; maxplaybackrate={}; sprop-maxcapturerate={}; maxaveragebitrate={}",
                u8::from(stream.opus_fec),
                u8::from(stream.opus_dtx),
                stream.rate,
                stream.rate,
                stream.bitrate
            );
        }
        Codec::Pcmu => {
            let _ = writeln!(s, "a=rtpmap:{pt} PCMU/8000");
        }
        Codec::Pcma => {
            let _ = writeln!(s, "a=rtpmap:{pt} PCMA/8000");
        }
        Codec::L16 => {
            let _ = writeln!(s, "a=rtpmap:{pt} L16/{}/1", stream.rate);
        }
    }
    let ptime = format_frame_ms(stream.frame_us);
    let _ = writeln!(s, "a=ptime:{ptime}");
    let _ = writeln!(s, "a=maxptime:{ptime}");
    // RFC 5761 §5.1.1: RTCP shares the RTP port. Over RTSP the Transport header says where
    // RTCP goes (RFC 2326 §12.39), and RTPMIC_RTCP_MUX is about the push destinations.
    if stream.rtcp_mux && matches!(target, Target::Destination { .. }) {
        let _ = writeln!(s, "a=rtcp-mux");
    }
    if let Some(srtp) = &stream.srtp {
        let _ = writeln!(
            s,
            "{}",
            crate::rtp::srtp::sdp_crypto_attribute(1, srtp.profile, &srtp.key)
        );
    }
    if let Target::Rtsp { control } = target {
        let _ = writeln!(s, "a=control:{control}");
    }
    let _ = writeln!(s, "a=sendonly");
    // Built with `writeln!` (LF); every line gets its CR here, in one place.
    s.replace('\n', "\r\n")
}

/// The unspecified address of `origin`'s family.
fn unspecified(origin: &IpAddr) -> IpAddr {
    match origin {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}

/// The SDP for `config.dest[index]` as `rtpmic sdp` prints it and `RTPMIC_SDP_FILE` holds:
/// the origin is the local address the kernel would send from, the session id the current
/// NTP time (RFC 8866 §5.2). `None` when there is no such destination.
pub fn for_destination(config: &Config, index: usize) -> Option<String> {
    let dest = config.dest.get(index)?;
    let origin = crate::net::resolve::local_address_towards(dest);
    let target = Target::Destination {
        dest,
        multicast_ttl: config.multicast_ttl,
    };
    Some(describe(
        &StreamDescription::from_config(config),
        &target,
        origin,
        session_id_now(),
    ))
}

/// A session id (RFC 8866 §5.2 suggests an NTP timestamp): the current NTP seconds.
pub fn session_id_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + 2_208_988_800)
        .unwrap_or(0)
}

/// Writes the SDP of the first destination to `path` (`RTPMIC_SDP_FILE`) so that a receiver
/// never reads half a file and nobody else can use the write, even in a directory other
/// users may write to (e.g. `/tmp`):
///
/// * What is at `path` is looked at first without following links (`lstat`): anything but a
///   regular file — a symbolic link, a device, a FIFO, a socket, a directory — is refused
///   and left as it is. A link is refused rather than replaced (rename would replace the link
///   itself, not its target, which is safe, but an operator who points RTPMIC_SDP_FILE at a
///   link surely wanted the target written: say so instead of silently breaking the link).
/// * The text goes to a new temporary file in the same directory, with a random name, made
///   with `O_CREAT | O_EXCL | O_NOFOLLOW` (POSIX `open`: with `O_EXCL` an existing name, a
///   symbolic link included, fails with `EEXIST`, so nothing planted there is opened or
///   followed); on `EEXIST` another name is tried, [`TEMP_ATTEMPTS`] times in all.
/// * Its mode is final from the moment it exists: 0600 when it holds an SRTP key, else
///   0644, narrowed by the process umask (rtpmic.service's `UMask=0077` makes both 0600);
///   it is never widened afterwards, so the key is never readable by anyone else, not even
///   for an instant.
/// * It is written, `fsync`ed, and `rename`d over `path` (atomic, and it replaces the
///   directory entry without following a link that may have appeared there since the check).
///   On any error the temporary file is removed.
pub fn write_file(config: &Config, path: &Path) -> io::Result<()> {
    let text = for_destination(config, 0).ok_or_else(|| io::Error::other("no destination"))?;
    // With SRTP the file holds the key: readable by the owner only.
    let mode = if config.srtp.is_some() { 0o600 } else { 0o644 };
    replace_regular_file(path, text.as_bytes(), mode)
}

/// How many random temporary names [`write_file`] tries before giving up. A name that
/// exists was made by someone else first (with 64 random bits, not by chance).
pub const TEMP_ATTEMPTS: usize = 16;

/// Atomically replaces the regular file at `path` (or creates it) with `bytes`, mode `mode`
/// narrowed by the umask; see [`write_file`].
fn replace_regular_file(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    refuse_unless_regular(path)?;
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => (
            if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            },
            name,
        ),
        _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "names no file")),
    };
    let (mut file, tmp) = create_temp(dir, &name.to_string_lossy(), mode)?;
    let mut tmp = TempFile {
        path: tmp,
        renamed: false,
    };
    io::Write::write_all(&mut file, bytes)?;
    file.sync_all()?;
    drop(file);
    // Checked again right before the rename: a file the operator turned into something else
    // meanwhile is still not replaced (what a local user plants in the window is only a
    // directory entry, which rename replaces without following it).
    refuse_unless_regular(path)?;
    fs::rename(&tmp.path, path)?;
    tmp.renamed = true;
    // The rename itself durable too; best effort (the file is already complete).
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// `Ok` when nothing is at `path` or a regular file is; an error naming what is there
/// otherwise. Never follows a link (`lstat`).
fn refuse_unless_regular(path: &Path) -> io::Result<()> {
    let kind = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(m) if m.file_type().is_file() => return Ok(()),
        Ok(m) => {
            let t = m.file_type();
            if t.is_symlink() {
                "a symbolic link (point RTPMIC_SDP_FILE at the file itself)"
            } else if t.is_dir() {
                "a directory"
            } else if t.is_char_device() {
                "a character device"
            } else if t.is_block_device() {
                "a block device"
            } else if t.is_fifo() {
                "a FIFO"
            } else if t.is_socket() {
                "a socket"
            } else {
                "not a regular file"
            }
        }
    };
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("it is {kind}; only a regular file is replaced, so it is left as it is"),
    ))
}

/// A new file `dir/.NAME.RANDOM.tmp`, made exclusively (`O_CREAT | O_EXCL | O_NOFOLLOW`)
/// with `mode`; another random name on `EEXIST`.
fn create_temp(dir: &Path, name: &str, mode: u32) -> io::Result<(fs::File, PathBuf)> {
    let mut last = None;
    for _ in 0..TEMP_ATTEMPTS {
        let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{TEMP_ATTEMPTS} temporary names in {} were all taken ({})",
            dir.display(),
            last.map(|e| e.to_string()).unwrap_or_default()
        ),
    ))
}

/// The temporary file, removed on drop unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    renamed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut v = vec![("RTPMIC_DEST", "127.0.0.1:5004")];
        v.extend_from_slice(pairs);
        Config::from_pairs(v).unwrap()
    }

    /// The SDP for the first destination of `c`.
    fn for_dest(c: &Config, origin: IpAddr, session_id: u64) -> String {
        let target = Target::Destination {
            dest: &c.dest[0],
            multicast_ttl: c.multicast_ttl,
        };
        describe(&StreamDescription::from_config(c), &target, origin, session_id)
    }

    #[test]
    fn an_rtsp_description_has_no_address_and_names_its_track() {
        let c = config(&[("RTPMIC_CODEC", "pcma"), ("RTPMIC_RTCP_MUX", "on")]);
        let sdp = describe(
            &StreamDescription::from_config(&c),
            &Target::Rtsp { control: "trackID=0" },
            "192.0.2.7".parse().unwrap(),
            5,
        );
        assert!(sdp.contains("o=- 5 5 IN IP4 192.0.2.7\r\n"), "{sdp}");
        assert!(sdp.contains("c=IN IP4 0.0.0.0\r\n"), "{sdp}");
        assert!(sdp.contains("m=audio 0 RTP/AVP 8\r\n"), "{sdp}");
        assert!(sdp.ends_with("a=control:trackID=0\r\na=sendonly\r\n"), "{sdp}");
        assert!(
            !sdp.contains("rtcp-mux"),
            "SETUP's Transport says where RTCP goes: {sdp}"
        );
    }

    #[test]
    fn opus_sdp_follows_rfc7587() {
        let c = config(&[]);
        let sdp = for_dest(&c, "127.0.0.1".parse().unwrap(), 42);
        let want = "v=0\r\no=- 42 42 IN IP4 127.0.0.1\r\ns=rtpmic default\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                    m=audio 5004 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n\
                    a=fmtp:96 stereo=0; sprop-stereo=0; useinbandfec=0; usedtx=0; maxplaybackrate=48000; sprop-maxcapturerate=48000; maxaveragebitrate=32000\r\n\
                    a=ptime:20\r\na=maxptime:20\r\na=sendonly\r\n";
        assert_eq!(sdp, want);
    }

    #[test]
    fn fec_dtx_and_redundancy_are_advertised() {
        let c = config(&[("RTPMIC_OPUS_FEC", "on"), ("RTPMIC_OPUS_DTX", "on")]);
        let sdp = for_dest(&c, "127.0.0.1".parse().unwrap(), 1);
        assert!(sdp.contains("; useinbandfec=1; usedtx=1; "), "{sdp}");
        let c = config(&[("RTPMIC_FRAME_MS", "2.5"), ("RTPMIC_REDUNDANCY", "2")]);
        let sdp = for_dest(&c, "127.0.0.1".parse().unwrap(), 1);
        assert!(
            sdp.contains("m=audio 5004 RTP/AVP 121 96\r\na=rtpmap:121 red/48000/2\r\na=fmtp:121 96/96/96\r\na=rtpmap:96 opus/48000/2\r\n"),
            "{sdp}"
        );
    }

    #[test]
    fn static_types_and_fractional_ptime() {
        let c = config(&[("RTPMIC_CODEC", "pcma"), ("RTPMIC_DEST", "[ff02::1]:6000")]);
        let sdp = for_dest(&c, "::1".parse().unwrap(), 1);
        assert!(sdp.contains("c=IN IP6 ff02::1\r\n"), "{sdp}");
        assert!(
            sdp.contains("m=audio 6000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"),
            "{sdp}"
        );
        let c = config(&[("RTPMIC_FRAME_MS", "2.5"), ("RTPMIC_DEST", "239.1.2.3:5004")]);
        let sdp = for_dest(&c, "10.0.0.2".parse().unwrap(), 1);
        assert!(
            sdp.contains("a=ptime:2.5\r\n") && sdp.contains("c=IN IP4 239.1.2.3/16\r\n"),
            "{sdp}"
        );
        let c = config(&[("RTPMIC_CODEC", "l16"), ("RTPMIC_RATE", "16000")]);
        let sdp = for_dest(&c, "127.0.0.1".parse().unwrap(), 1);
        assert!(
            sdp.contains("a=rtpmap:97 L16/16000/1\r\n") && !sdp.contains("rtcp-mux"),
            "{sdp}"
        );
        let c = config(&[("RTPMIC_RTCP_MUX", "on")]);
        let sdp = for_dest(&c, "127.0.0.1".parse().unwrap(), 1);
        assert!(sdp.contains("a=rtcp-mux\r\n"), "{sdp}");
    }

    #[test]
    fn a_control_character_in_the_device_name_cannot_start_a_line() {
        // The config refuses such a name; the SDP does not rely on it.
        let mut c = config(&[]);
        c.device = "hw:0\r\na=crypto:1 x".into();
        let sdp = for_dest(&c, "127.0.0.1".parse().unwrap(), 1);
        assert!(sdp.contains("s=rtpmic hw:0??a=crypto:1 x\r\n"), "{sdp}");
        assert!(!sdp.contains("\na=crypto"), "{sdp}");
    }

    use std::os::unix::fs::PermissionsExt;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_a_regular_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sdp");
        fs::write(&path, "old").unwrap();
        replace_regular_file(&path, b"new", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o077, 0);
        assert_eq!(names(dir.path()), ["s.sdp"]);
    }

    #[test]
    fn refuses_what_is_not_a_regular_file_and_follows_no_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "kept").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = replace_regular_file(&link, b"x", 0o644).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let e = replace_regular_file(&sub, b"x", 0o644).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&target).unwrap(), "kept");
        assert_eq!(names(dir.path()), ["link", "sub", "target"]);
    }

    #[test]
    fn temporary_names_are_exclusive_and_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let (_a, pa) = create_temp(dir.path(), "s.sdp", 0o600).unwrap();
        let (_b, pb) = create_temp(dir.path(), "s.sdp", 0o600).unwrap();
        assert_ne!(pa, pb);
        let name = pa.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".s.sdp.") && name.ends_with(".tmp"), "{name}");
        // O_EXCL: an existing name (here a dangling link) is never opened.
        let planted = dir.path().join("planted");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &planted).unwrap();
        let e = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&planted)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert!(!dir.path().join("elsewhere").exists());
    }

    #[test]
    fn a_missing_directory_is_an_error_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent/s.sdp");
        assert!(replace_regular_file(&path, b"x", 0o644).is_err());
        assert!(names(dir.path()).is_empty());
    }
}
