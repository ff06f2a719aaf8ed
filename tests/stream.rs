//! End to end through real parts: a known signal enters ALSA (board/sim's paced `simfile`
//! PCM, read by real alsa-lib), rtpmic encodes and sends it over a real UDP socket, the test
//! receives, checks the RTP invariants and decodes (real libopus, G.711, L16).

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use rtpmic::codec::g711;

/// Runs `rtpmic run --seconds 2` with `keys` on a two-tone infile at `rate`; returns the
/// source signal and the packets received.
fn stream(keys: &[(&str, &str)], rate: u32) -> (Vec<i16>, Vec<Rtp>) {
    let board = SimBoard::shared();
    let source = two_tone(rate, 3.0);
    let infile = board.infile("in.raw", &source);
    let rx = Receiver::bind();
    let mut cmd = board.rtpmic(&infile);
    cmd.args(["run", "--seconds", "2"])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_DEST", rx.dest());
    for (k, v) in keys {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let pkts = rx.collect(10_000, Duration::from_secs(10), Duration::from_millis(500));
    let status = wait_for(&mut child, Duration::from_secs(10)).expect("rtpmic ends after --seconds");
    assert!(status.success(), "rtpmic exit {status}");
    (source, pkts)
}

/// CELT (`lowdelay`) codes the waveform, so SNR is its fair measure: ≥ 20 dB at 32 kb/s.
#[test]
fn opus_two_tone_decodes_with_20db_snr() {
    let keys = [
        ("RTPMIC_CODEC", "opus"),
        ("RTPMIC_BITRATE", "32000"),
        ("RTPMIC_OPUS_APPLICATION", "lowdelay"),
    ];
    let (source, pkts) = stream(&keys, 48_000);
    assert_eq!(pkts.len(), 100, "2 s of 20 ms frames");
    assert_clean_stream(&pkts, 96, 960);
    let decoded = decode_opus(&pkts);
    let snr = aligned_snr(&source, &decoded, 4800, 1300);
    println!("opus lowdelay 32 kb/s SNR {snr:.1} dB");
    assert!(snr >= 20.0, "SNR {snr:.1} dB");
}

/// Paced sending holds each packet until its release time: the stream is the same, complete
/// and in order (how even the intervals become is measured by `make bench`).
#[test]
fn paced_sending_delivers_the_same_clean_stream() {
    let keys = [
        ("RTPMIC_OPUS_APPLICATION", "lowdelay"),
        ("RTPMIC_FRAME_MS", "10"),
        ("RTPMIC_PACING", "on"),
    ];
    let (source, pkts) = stream(&keys, 48_000);
    assert_eq!(pkts.len(), 200, "2 s of 10 ms frames");
    assert_clean_stream(&pkts, 96, 480);
    let snr = aligned_snr(&source, &decode_opus(&pkts), 4800, 1300);
    assert!(snr >= 20.0, "SNR {snr:.1} dB");
}

/// SILK/hybrid (`voip`, the default) shape their noise perceptually and do not keep the
/// phase of tones above a few hundred Hz (measured: 24.6 dB at 200 Hz, 17 dB at 440 Hz,
/// 3 dB at 2 kHz for a plain libopus encode), so SNR is no bar for it. What must hold: every
/// packet decodes with real libopus, and the level arrives within 1.5 dB.
#[test]
fn opus_voip_stream_decodes_at_the_source_level() {
    let (source, pkts) = stream(&[("RTPMIC_CODEC", "opus")], 48_000);
    assert_eq!(pkts.len(), 100);
    assert_clean_stream(&pkts, 96, 960);
    let decoded = decode_opus(&pkts);
    assert_eq!(decoded.len(), 100 * 960);
    let (src, dec) = (rms_dbfs(&source[..decoded.len()], 4800), rms_dbfs(&decoded, 4800));
    println!("opus voip level: source {src:.2} dBFS, decoded {dec:.2} dBFS");
    assert!((src - dec).abs() < 1.5, "source {src:.2} dBFS, decoded {dec:.2} dBFS");
}

#[test]
fn pcmu_decodes_with_20db_snr() {
    let (source, pkts) = stream(&[("RTPMIC_CODEC", "pcmu")], 8000);
    assert_eq!(pkts.len(), 100);
    assert_clean_stream(&pkts, 0, 160);
    let decoded: Vec<i16> = pkts
        .iter()
        .flat_map(|p| p.payload.iter().map(|&b| g711::ulaw_to_linear(b)))
        .collect();
    let snr = aligned_snr(&source, &decoded, 800, 0);
    println!("pcmu SNR {snr:.1} dB");
    assert!(snr >= 20.0, "SNR {snr:.1} dB");
}

#[test]
fn pcma_decodes_with_20db_snr() {
    let (source, pkts) = stream(&[("RTPMIC_CODEC", "pcma"), ("RTPMIC_FRAME_MS", "30")], 8000);
    assert_clean_stream(&pkts, 8, 240);
    let decoded: Vec<i16> = pkts
        .iter()
        .flat_map(|p| p.payload.iter().map(|&b| g711::alaw_to_linear(b)))
        .collect();
    let snr = aligned_snr(&source, &decoded, 800, 0);
    println!("pcma SNR {snr:.1} dB");
    assert!(snr >= 20.0, "SNR {snr:.1} dB");
}

/// The samples L16 payloads carry (RFC 3551 §4.5.11: big-endian), in packet order.
fn l16_samples(pkts: &[Rtp]) -> Vec<i16> {
    pkts.iter()
        .flat_map(|p| p.payload.chunks_exact(2).map(|b| i16::from_be_bytes([b[0], b[1]])))
        .collect()
}

/// An unpaced file (`simfast`) has every period ready at once: the capture takes up to
/// `FRAMES_PER_READ` frames in one `readi` and cuts them into frames, losing, repeating and
/// reordering nothing.
#[test]
fn unpaced_reads_take_several_frames_and_keep_every_sample() {
    let board = SimBoard::shared();
    let source = two_tone(48_000, 2.0);
    let infile = board.infile("fast.raw", &source);
    let rx = Receiver::bind();
    // 100 packets of ~1 KB arrive within milliseconds: room for all of them.
    socket2::SockRef::from(&rx.socket)
        .set_recv_buffer_size(1 << 20)
        .unwrap();
    let mut child = board
        .rtpmic(&infile)
        .args(["run", "--seconds", "1", "--no-drop"])
        .env("RTPMIC_DEVICE", "simfast")
        .env("RTPMIC_DEST", rx.dest())
        .env("RTPMIC_CODEC", "l16")
        .env("RTPMIC_FRAME_MS", "10")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pkts = rx.collect(10_000, Duration::from_secs(10), Duration::from_millis(500));
    let status = wait_for(&mut child, Duration::from_secs(10)).expect("rtpmic ends after --seconds");
    assert!(status.success(), "rtpmic exit {status}");
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert_eq!(pkts.len(), 100, "1 s of 10 ms frames\n{log}");
    assert_clean_stream(&pkts, 97, 480);
    let decoded = l16_samples(&pkts);
    assert!(decoded == source[..48_000], "the infile's samples, in order");
    let (reads, frames) = (stopped_counter(&log, "periods"), stopped_counter(&log, "frames"));
    assert_eq!(frames, 100, "{log}");
    assert!(
        reads * 4 <= frames,
        "{reads} reads for {frames} frames: not batched\n{log}"
    );
}

#[test]
fn l16_payload_is_bit_exact() {
    let (source, pkts) = stream(&[("RTPMIC_CODEC", "l16"), ("RTPMIC_FRAME_MS", "10")], 48_000);
    assert_eq!(pkts.len(), 200, "2 s of 10 ms frames");
    assert_clean_stream(&pkts, 97, 480);
    let decoded = l16_samples(&pkts);
    assert_eq!(decoded.len(), 96_000);
    assert!(
        decoded == source[..decoded.len()],
        "L16 payloads must be the infile's samples, in order, big-endian"
    );
}
