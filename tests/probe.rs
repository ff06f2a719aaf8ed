//! `rtpmic probe`, the installer's receiver: it measures a live rtpmic stream (no loss, the
//! right level), writes a WAV that decodes to the source, answers with receiver reports that
//! rtpmic logs, and fails when nothing arrives.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn probe_measures_a_live_stream_and_reports_back() {
    let board = SimBoard::shared();
    let source = two_tone(48_000, 6.0);
    let infile = board.infile("in.raw", &source);
    let port = free_even_port();
    let base = free_even_port();
    let wav = board.dir.path().join("probe.wav");
    let probe = Command::new(RTPMIC)
        .args(["probe", &format!("127.0.0.1:{port}"), "--seconds", "8", "--wav"])
        .arg(&wav)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Listening before the stream starts, for as long as it lasts (8 s for 3 s of stream
    // and its start-up): the probe must count every packet.
    let t0 = std::time::Instant::now();
    while !udp_port_bound(port) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the probe did not bind its port"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let run = board
        .rtpmic(&infile)
        .args(["run", "--seconds", "3"])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_OPUS_APPLICATION", "lowdelay")
        .env("RTPMIC_BIND", format!("127.0.0.1:{base}"))
        .env("RTPMIC_DEST", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{log}");
    let out = probe.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("received=150 lost=0 reordered=0 duplicates=0"),
        "{stderr}"
    );
    // Per-second lines: level of the decoded audio next to the source's (−14.2 dBFS), in
    // the seconds that got most of their 50 packets (a busy machine moves a few across the
    // probe's second boundaries).
    let src_level = rms_dbfs(&source, 4800);
    let levels: Vec<f64> = stdout
        .lines()
        .filter(|l| {
            l.split("(+")
                .nth(1)
                .and_then(|r| r.split(')').next()?.parse::<u32>().ok())
                .is_some_and(|n| n >= 40)
        })
        .filter_map(|l| l.split("level=").nth(1)?.trim_end_matches("dBFS").parse().ok())
        .collect();
    assert!(!levels.is_empty(), "{stdout}");
    assert!(
        levels.iter().all(|l| (l - src_level).abs() < 1.5),
        "levels {levels:?} vs source {src_level:.1}\n{stdout}"
    );
    // The WAV holds the decoded stream.
    let bytes = std::fs::read(&wav).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    let decoded: Vec<i16> = bytes[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(decoded.len(), 150 * 960);
    let snr = aligned_snr(&source, &decoded, 4800, 1300);
    assert!(snr >= 20.0, "WAV SNR {snr:.1} dB");
    // Its receiver reports reached rtpmic's RTCP port (RTPMIC_BIND + 1).
    let last = log.lines().rfind(|l| l.contains("rtcp_in:")).unwrap_or_default();
    assert!(
        last.contains("[ssrc=0x") && last.contains("cumulative_lost=0 "),
        "{last}"
    );
}

#[test]
fn probe_fails_when_nothing_arrives() {
    let port = free_even_port();
    let out = Command::new(RTPMIC)
        .args(["probe", &format!("127.0.0.1:{port}"), "--timeout", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = out;
    let status = wait_for(&mut out, Duration::from_secs(5)).expect("probe gives up by itself");
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut out.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("no RTP arrived"), "{err}");
}

/// The `rtcp_in:` line rtpmic logged last, and one of its counters.
fn rtcp_in_counter(log: &str, name: &str) -> u64 {
    let last = log.lines().rfind(|l| l.contains("rtcp_in:")).unwrap_or_default();
    last.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name}= in {last}\n{log}"))
}

/// Without `RTPMIC_BIND`, rtpmic's RTP and RTCP leave from ports the kernel picks: the probe
/// answers to where the sender reports come from, and rtpmic takes its reports.
#[test]
fn probe_reports_reach_rtpmic_without_a_bind_address() {
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &two_tone(8000, 8.0));
    let port = free_even_port();
    let probe = Command::new(RTPMIC)
        .args(["probe", &format!("127.0.0.1:{port}"), "--seconds", "8"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = board
        .rtpmic(&infile)
        .args(["run", "--seconds", "7"])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_CODEC", "pcmu")
        .env("RTPMIC_STATS_INTERVAL_S", "1")
        .env("RTPMIC_DEST", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{log}");
    let out = probe.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{summary}");
    assert!(!summary.contains("rr_sent=0"), "{summary}");
    assert!(
        rtcp_in_counter(&log, "reports") > 0,
        "rtpmic took none of the probe's reports:\n{log}"
    );
    let last = log.lines().rfind(|l| l.contains("rtcp_in:")).unwrap_or_default();
    assert!(
        last.contains("[ssrc=0x") && last.contains("fraction_lost=0.000"),
        "{last}"
    );
}

/// One forged packet with the stream's SSRC and a sequence number far ahead (RFC 3550 A.1's
/// "very large jump") is not believed: the probe's loss and reordering stay at zero.
#[test]
fn one_spoofed_far_sequence_number_does_not_corrupt_the_probe() {
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &two_tone(8000, 6.0));
    let port = free_even_port();
    let probe = Command::new(RTPMIC)
        .args(["probe", &format!("127.0.0.1:{port}"), "--seconds", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = board
        .rtpmic(&infile)
        .args(["run", "--seconds", "4"])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_CODEC", "pcmu")
        .env("RTPMIC_SSRC", "0x5eed0001")
        .env("RTPMICTEST_FIRST_SEQ", "1000")
        .env("RTPMIC_DEST", format!("127.0.0.1:{port}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // PCMU, SSRC of the stream, sequence number 30 000 ahead, a plausible timestamp.
    let mut forged = vec![0x80, 0x00, 0x7d, 0x00, 0x00, 0x01, 0x00, 0x00, 0x5e, 0xed, 0x00, 0x01];
    forged.extend_from_slice(&[0xffu8; 160]);
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(&forged, ("127.0.0.1", port)).unwrap();
    let mut run = run;
    assert!(run.wait().unwrap().success());
    let out = probe.wait_with_output().unwrap();
    let (stdout, summary) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{summary}");
    let field = |k: &str| -> u64 {
        summary
            .split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k} in {summary}"))
    };
    assert_eq!(field("received="), 200, "{summary}\n{stdout}");
    assert_eq!((field("lost="), field("reordered=")), (0, 0), "{summary}\n{stdout}");
    assert!(
        stdout
            .lines()
            .all(|l| !l.contains("lost=") || l.contains("lost=0 (0.0%)")),
        "{stdout}"
    );
}
