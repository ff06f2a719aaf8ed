//! SRTP (RFC 3711) end to end: ffmpeg decodes our encrypted stream from our SDP's a=crypto
//! line, across a 2^16 sequence wrap (rollover counter); a wrong key decodes nothing; tshark
//! sees no plaintext on the wire.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

/// A fixed test key (30 bytes, base64), as an installer would put in the env file.
const KEY: &str = "9IcLa2ikhznyH0kITvN+NuwJoyTq27fd5L9rNKBA";
const OTHER_KEY: &str = "X2GjQPdFC3yPOaLaxCX7lDqehQ23z4KxHA9IZYey";

/// `rtpmic sdp` for `dest` with `keys`.
fn sdp(board: &SimBoard, infile: &std::path::Path, dest: &str, keys: &[(&str, &str)]) -> String {
    let mut c = board.rtpmic(infile);
    c.arg("sdp").env("RTPMIC_DEST", dest);
    for (k, v) in keys {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Streams 4 s with `keys` to `dest` while ffmpeg decodes from `sdp_text`; returns the
/// decoded samples (none when ffmpeg could not decode anything), giving ffmpeg `patience`
/// after the stream to finish.
fn decode_with_ffmpeg(
    board: &SimBoard,
    infile: &std::path::Path,
    dest: &str,
    keys: &[(&str, &str)],
    sdp_text: &str,
    patience: Duration,
) -> Vec<i16> {
    let sdp_path = board.dir.path().join(format!("{}.sdp", dest.replace([':', '.'], "_")));
    std::fs::write(&sdp_path, sdp_text).unwrap();
    let out = board.dir.path().join(format!("{}.raw", dest.replace([':', '.'], "_")));
    let mut ffmpeg = spawn_ffmpeg(&sdp_path, 8000, &out);
    let mut run = board.rtpmic(infile);
    run.args(["run", "--seconds", "4"])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_DEST", dest)
        .stderr(Stdio::piped());
    for (k, v) in keys {
        run.env(k, v);
    }
    let result = run.output().unwrap();
    let log = String::from_utf8_lossy(&result.stderr).to_string();
    assert!(result.status.success(), "{log}");
    assert!(
        !log.contains(KEY) && !log.contains(OTHER_KEY),
        "the key never reaches the log"
    );
    // ffmpeg ends by itself after 2 s of audio (the stream is over, so everything it needs
    // is in its socket by now); with nothing it can decode it waits forever.
    finish_ffmpeg(&mut ffmpeg, patience);
    std::fs::read(&out)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[test]
fn ffmpeg_decodes_srtp_across_the_sequence_wrap_and_not_with_a_wrong_key() {
    let board = SimBoard::shared();
    let source = two_tone(8000, 5.0);
    let infile = board.infile("tone.raw", &source);
    // The first packet is 65500: the sequence wraps (and the ROC goes to 1) after 0.72 s.
    let keys = [
        ("RTPMIC_CODEC", "pcma"),
        ("RTPMIC_SRTP", "AES_CM_128_HMAC_SHA1_80"),
        ("RTPMIC_SRTP_KEY", KEY),
        ("RTPMICTEST_FIRST_SEQ", "65500"),
    ];
    let port = free_even_port();
    let dest = format!("127.0.0.1:{port}");
    let text = sdp(&board, &infile, &dest, &keys);
    assert!(text.contains(&format!("m=audio {port} RTP/SAVP 8\r\n")), "{text}");
    assert!(
        text.contains(&format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n")),
        "{text}"
    );

    let decoded = decode_with_ffmpeg(&board, &infile, &dest, &keys, &text, Duration::from_secs(10));
    assert!(decoded.len() >= 16_000, "ffmpeg decoded {} samples", decoded.len());
    // After the first second: everything past the wrap.
    let snr = aligned_snr(&source, &decoded, 8000, 200 + 80);
    println!("SRTP PCMA through ffmpeg, after the rollover: SNR {snr:.1} dB");
    assert!(snr >= 20.0, "SNR {snr:.1} dB");

    let wrong = text.replace(KEY, OTHER_KEY);
    let port = free_even_port();
    let dest = format!("127.0.0.1:{port}");
    let wrong = wrong.replace(&format!("m=audio {}", text_port(&text)), &format!("m=audio {port}"));
    let decoded = decode_with_ffmpeg(&board, &infile, &dest, &keys, &wrong, Duration::from_secs(3));
    assert!(
        decoded.is_empty(),
        "a wrong key decodes nothing, got {} samples",
        decoded.len()
    );
}

fn text_port(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

/// Digital silence in PCMU is 0xFF in every payload byte: on the wire with SRTP none of that
/// shows, and every packet carries the 10-byte tag. With no key configured, a random one is
/// made and published only in the SDP file, which only its owner may read.
#[test]
fn tshark_sees_no_plaintext() {
    let board = SimBoard::shared();
    let infile = board.infile("silence.raw", &vec![0i16; 8000 * 3]);
    let port = free_even_port();
    let sdp_file = board.dir.path().join("srtp.sdp");
    let tshark = start_tshark(
        &[],
        &[
            "-l",
            "-n",
            "-i",
            "lo",
            "-f",
            &format!("udp dst port {port}"),
            "-d",
            &format!("udp.port=={port},rtp"),
            "-T",
            "fields",
            "-e",
            "udp.length",
            "-e",
            "rtp.payload",
        ],
    );
    let status = board
        .rtpmic(&infile)
        .args(["run", "--seconds", "2"])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_CODEC", "pcmu")
        .env("RTPMIC_DEST", format!("127.0.0.1:{port}"))
        .env("RTPMIC_SRTP", "AES_CM_128_HMAC_SHA1_80")
        .env("RTPMIC_SDP_FILE", &sdp_file)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let sdp = std::fs::read_to_string(&sdp_file).unwrap();
    assert!(sdp.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"), "{sdp}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sdp_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the SDP file holds the key");
    let capture = stop_tshark(tshark);
    let rows: Vec<(u32, String)> = capture
        .lines()
        .filter_map(|l| {
            let (len, payload) = l.split_once('\t')?;
            Some((len.parse().ok()?, payload.to_string()))
        })
        .collect();
    assert!(rows.len() >= 90, "captured {} packets", rows.len());
    for (len, payload) in &rows {
        // UDP 8 + RTP 12 + 160 bytes of PCMU + 10-byte tag.
        assert_eq!(*len, 8 + 12 + 160 + 10, "{payload}");
        assert!(
            !payload.contains("ff:ff:ff:ff:ff:ff:ff:ff"),
            "plaintext silence on the wire: {payload}"
        );
    }
}

/// Receivers' reports under SRTP: an SRTCP receiver report protected with the stream's key
/// (RFC 3711 §3.4, the key of the SDP's a=crypto line) is taken; a replay of one is not; a
/// plaintext report, or one under another key, is counted as unauthenticated and not believed.
#[test]
fn srtcp_reports_are_believed_and_plaintext_or_replayed_ones_are_not() {
    use rtcp_types::{ReceiverReport, ReportBlock, RtcpPacketWriterExt};
    use rtpmic::rtp::srtp::{MasterKey, Profile, SrtpContext};
    let board = SimBoard::shared();
    let infile = board.infile("tone.raw", &two_tone(8000, 7.0));
    let port = free_even_port();
    let rtp = std::net::UdpSocket::bind(("127.0.0.1", port)).unwrap();
    let rtcp = std::net::UdpSocket::bind(("127.0.0.1", port + 1)).unwrap();
    let base = free_even_port();
    let child = board
        .rtpmic(&infile)
        .args(["run", "--seconds", "5"])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_CODEC", "pcma")
        .env("RTPMIC_SRTP", "AES_CM_128_HMAC_SHA1_80")
        .env("RTPMIC_SRTP_KEY", KEY)
        .env("RTPMIC_BIND", format!("127.0.0.1:{base}"))
        .env("RTPMIC_STATS_INTERVAL_S", "1")
        .env("RTPMIC_DEST", format!("127.0.0.1:{port}"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    rtp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut first_packet = [0u8; 1500];
    rtp.recv(&mut first_packet).unwrap(); // streaming; the SSRC is in the clear
    let ssrc = u32::from_be_bytes(first_packet[8..12].try_into().unwrap());
    let rr = |reporter: u32, lost: u8| {
        let rb = ReportBlock::builder(ssrc).fraction_lost(lost);
        let mut buf = vec![0u8; 128];
        let n = ReceiverReport::builder(reporter)
            .add_report_block(rb)
            .write_into(&mut buf)
            .unwrap();
        (buf, n)
    };
    let protect = |ctx: &mut SrtpContext, (mut buf, n): (Vec<u8>, usize)| {
        let n = ctx.protect_rtcp(&mut buf, n).unwrap();
        buf.truncate(n);
        buf
    };
    let key = MasterKey::from_sdes_inline(KEY).unwrap();
    let mut receiver = SrtpContext::new(Profile::AesCm128HmacSha1_80, &key, 0x5151);
    let mut stranger = SrtpContext::new(
        Profile::AesCm128HmacSha1_80,
        &MasterKey::from_sdes_inline(OTHER_KEY).unwrap(),
        0x7171,
    );
    let to = ("127.0.0.1", base + 1);
    let first = protect(&mut receiver, rr(0x5151, 0));
    rtcp.send_to(&first, to).unwrap();
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(700));
        rtcp.send_to(&protect(&mut receiver, rr(0x5151, 0)), to).unwrap();
    }
    rtcp.send_to(&first, to).unwrap(); // a replay
    let (plain, n) = rr(0x6161, 128);
    rtcp.send_to(&plain[..n], to).unwrap();
    rtcp.send_to(&protect(&mut stranger, rr(0x7171, 128)), to).unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let last = log.lines().rfind(|l| l.contains("rtcp_in:")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        last.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}= in {last}"))
    };
    assert_eq!(field("reports"), 3, "{last}");
    assert_eq!((field("unauthenticated"), field("replayed")), (2, 1), "{last}");
    assert!(last.contains("[ssrc=0x00005151"), "{last}");
    assert!(!last.contains("0x00006161") && !last.contains("0x00007171"), "{last}");
}
