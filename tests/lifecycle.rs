//! Process lifecycle of `rtpmic run`: SIGTERM ends a live stream cleanly.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn sigterm_stops_within_a_second_with_a_final_stats_line() {
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &two_tone(48_000, 30.0));
    let rx = Receiver::bind();
    let mut child = board
        .rtpmic(&infile)
        .args(["run"])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_DEST", rx.dest())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Streaming for real: wait for 10 packets to arrive.
    let pkts = rx.collect(10, Duration::from_secs(10), Duration::from_secs(2));
    assert_eq!(pkts.len(), 10, "stream did not start");
    let t0 = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_for(&mut child, Duration::from_secs(1)).expect("rtpmic must exit within 1 s of SIGTERM");
    println!("exit after SIGTERM in {:?}", t0.elapsed());
    assert!(status.success(), "exit status {status}");
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    let last = log.lines().last().unwrap_or_default();
    assert!(last.contains("stopped: periods="), "last line: {last}\n{log}");
    assert!(last.contains("datagrams="), "{last}");
}

#[test]
fn seconds_option_ends_the_run_by_itself_after_that_much_audio() {
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &two_tone(8000, 3.0));
    let rx = Receiver::bind();
    let status = board
        .rtpmic(&infile)
        .args(["run", "--seconds", "1"])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_CODEC", "pcmu")
        .env("RTPMIC_FRAME_MS", "10")
        .env("RTPMIC_DEST", rx.dest())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let pkts = rx.collect(1000, Duration::from_millis(100), Duration::from_millis(100));
    assert_eq!(pkts.len(), 100, "1 s of 10 ms frames, nothing lost in the drain");
}
