//! Real peers decode what we send: ffmpeg plays the stream from `rtpmic sdp` as is.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

fn ffmpeg_decodes(keys: &[(&str, &str)], rate: u32) -> f64 {
    let board = SimBoard::shared();
    let source = two_tone(rate, 6.0);
    let infile = board.infile("in.raw", &source);
    let port = free_even_port();
    let dest = format!("127.0.0.1:{port}");
    let mut sdp_cmd = board.rtpmic(&infile);
    sdp_cmd.arg("sdp").env("RTPMIC_DEST", &dest);
    for (k, v) in keys {
        sdp_cmd.env(k, v);
    }
    let sdp = sdp_cmd.output().unwrap();
    assert!(
        sdp.status.success(),
        "rtpmic sdp failed: {}",
        String::from_utf8_lossy(&sdp.stderr)
    );
    let sdp_path = board.dir.path().join("stream.sdp");
    std::fs::write(&sdp_path, &sdp.stdout).unwrap();
    let out = board.dir.path().join("out.raw");
    let mut ffmpeg = spawn_ffmpeg(&sdp_path, rate, &out);
    let mut run = board.rtpmic(&infile);
    run.args(["run", "--seconds", "5"])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_DEST", &dest)
        .stderr(Stdio::null());
    for (k, v) in keys {
        run.env(k, v);
    }
    let status = run.status().unwrap();
    assert!(status.success());
    // The stream is over: what ffmpeg needs is in its socket, however slowly it runs.
    assert!(
        finish_ffmpeg(&mut ffmpeg, Duration::from_secs(10)),
        "ffmpeg did not finish decoding 2 s of the stream"
    );
    let bytes = std::fs::read(&out).unwrap();
    let decoded: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert!(decoded.len() >= rate as usize, "ffmpeg wrote {} samples", decoded.len());
    // ffmpeg joins mid-stream: the two-tone repeats every 25 ms, so a lag search over one
    // period plus the codec delay finds the alignment.
    aligned_snr(
        &source,
        &decoded,
        rate as usize / 10,
        rate as usize / 40 + rate as usize / 100,
    )
}

#[test]
fn ffmpeg_plays_opus_from_our_sdp() {
    let snr = ffmpeg_decodes(
        &[("RTPMIC_CODEC", "opus"), ("RTPMIC_OPUS_APPLICATION", "lowdelay")],
        48_000,
    );
    println!("ffmpeg opus SNR {snr:.1} dB");
    assert!(snr >= 20.0, "SNR {snr:.1} dB");
}

#[test]
fn ffmpeg_plays_pcmu_from_our_sdp() {
    let snr = ffmpeg_decodes(&[("RTPMIC_CODEC", "pcmu")], 8000);
    println!("ffmpeg pcmu SNR {snr:.1} dB");
    assert!(snr >= 20.0, "SNR {snr:.1} dB");
}

#[test]
fn ffmpeg_plays_l16_from_our_sdp() {
    let snr = ffmpeg_decodes(
        &[
            ("RTPMIC_CODEC", "l16"),
            ("RTPMIC_RATE", "16000"),
            ("RTPMIC_FRAME_MS", "20"),
        ],
        16_000,
    );
    println!("ffmpeg l16 SNR {snr:.1} dB");
    assert!(snr >= 60.0, "L16 is lossless: SNR {snr:.1} dB");
}

/// `RTPMIC_SDP_FILE`: the SDP written at start is enough for ffmpeg to join a running stream.
#[test]
fn ffmpeg_plays_pcma_from_the_sdp_file_written_at_start() {
    let board = SimBoard::shared();
    let source = two_tone(8000, 8.0);
    let infile = board.infile("in.raw", &source);
    let port = free_even_port();
    let sdp_path = board.dir.path().join("written.sdp");
    let mut run = board
        .rtpmic(&infile)
        .args(["run", "--seconds", "6"])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_CODEC", "pcma")
        .env("RTPMIC_DEST", format!("127.0.0.1:{port}"))
        .env("RTPMIC_SDP_FILE", &sdp_path)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The file appears (atomically, by rename) once rtpmic has started.
    let t0 = std::time::Instant::now();
    while !sdp_path.exists() {
        assert!(t0.elapsed() < Duration::from_secs(5), "RTPMIC_SDP_FILE was not written");
        std::thread::sleep(Duration::from_millis(10));
    }
    let sdp = std::fs::read_to_string(&sdp_path).unwrap();
    assert!(
        sdp.contains("a=rtpmap:8 PCMA/8000") && sdp.contains(&format!("m=audio {port} ")),
        "{sdp}"
    );
    let out = board.dir.path().join("out.raw");
    let mut ffmpeg = spawn_ffmpeg(&sdp_path, 8000, &out);
    let done = wait_for(&mut ffmpeg, Duration::from_secs(8));
    if done.is_none() {
        let _ = ffmpeg.kill();
    }
    assert!(done.is_some_and(|s| s.success()), "ffmpeg did not decode the stream");
    assert!(run.wait().unwrap().success());
    let bytes = std::fs::read(&out).unwrap();
    let decoded: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert!(decoded.len() >= 8000, "ffmpeg wrote {} samples", decoded.len());
    let snr = aligned_snr(&source, &decoded, 800, 200 + 80);
    println!("ffmpeg pcma (SDP file) SNR {snr:.1} dB");
    assert!(snr >= 20.0, "SNR {snr:.1} dB");
}
