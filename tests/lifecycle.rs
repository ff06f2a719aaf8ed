//! Process lifecycle of `rtpmic run`: SIGTERM ends a live stream cleanly.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;

/// `rtpmic run` (no end) streaming 30 s of two-tone Opus to `rx`, stderr piped.
fn live_opus(board: &SimBoard, rx: &Receiver) -> std::process::Child {
    let infile = board.infile("in.raw", &two_tone(48_000, 30.0));
    board
        .rtpmic(&infile)
        .args(["run"])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_DEST", rx.dest())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn sigterm_stops_within_a_second_with_a_final_stats_line() {
    let board = SimBoard::shared();
    let rx = Receiver::bind();
    let mut child = live_opus(&board, &rx);
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

/// At normal priority the main thread races the stream thread's exit: a stop must not wait
/// for the 3 s grace because the thread said "ended" a moment before its handle showed it
/// (it did, most times, before `ExitGuard` counted ends). Several tries, each right after
/// the first packet.
#[test]
fn sigterm_at_normal_priority_stops_at_once_every_time() {
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &two_tone(48_000, 30.0));
    for attempt in 0..8 {
        let rx = Receiver::bind();
        let mut child = board
            .rtpmic(&infile)
            .args(["run"])
            .env("RTPMIC_DEVICE", "simfile")
            .env("RTPMIC_DEST", rx.dest())
            .env("RTPMIC_RT_PRIORITY", "0")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let first = rx.collect(1, Duration::from_secs(10), Duration::from_secs(1));
        assert_eq!(first.len(), 1, "attempt {attempt}: stream did not start");
        let t0 = Instant::now();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        // The race lost costs the 3 s grace; a busy machine may take a while otherwise.
        let Some(status) = wait_for(&mut child, Duration::from_secs(2)) else {
            let _ = child.kill();
            panic!("attempt {attempt}: still running 2 s after SIGTERM");
        };
        assert!(status.success(), "attempt {attempt}: exit status {status}");
        println!("attempt {attempt}: exit after SIGTERM in {:?}", t0.elapsed());
    }
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

/// A real overrun: the whole process is frozen (SIGSTOP) while board/sim keeps capturing, so
/// the ALSA buffer overflows and `readi` reports EPIPE. After SIGCONT the stream must go on
/// with the same SSRC, contiguous sequence numbers, a timestamp that jumped by the time lost,
/// and the marker bit on exactly the first packet after the gap.
#[test]
fn overrun_is_recovered_with_timestamp_jump_and_marker() {
    let board = SimBoard::shared();
    let rx = Receiver::bind();
    let mut child = live_opus(&board, &rx);
    let mut pkts = rx.collect(25, Duration::from_secs(10), Duration::from_secs(2));
    assert_eq!(pkts.len(), 25, "stream did not start");
    let pid = child.id() as i32;
    let t0 = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_millis(400)); // the fault: 400 ms without reading
    unsafe { libc::kill(pid, libc::SIGCONT) };
    // As long as it really was (this thread may oversleep on a busy machine).
    let frozen = t0.elapsed();
    pkts.extend(rx.collect(50, Duration::from_secs(5), Duration::from_secs(2)));
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = wait_for(&mut child, Duration::from_secs(2)).expect("exit");
    assert!(status.success());
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();

    let jumps: Vec<(usize, u32)> = pkts
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1].ts.wrapping_sub(w[0].ts) != 960)
        .map(|(i, w)| (i + 1, w[1].ts.wrapping_sub(w[0].ts)))
        .collect();
    println!("timestamp jumps (packet index, step): {jumps:?}");
    assert_eq!(jumps.len(), 1, "exactly one gap: {jumps:?}\n{log}");
    let (at, step) = jumps[0];
    // 400 ms frozen = 19200 samples; the jump covers the time frozen (within scheduling
    // slack: -100 ms, +200 ms).
    let frozen_ticks = (frozen.as_secs_f64() * 48_000.0) as u32;
    assert!(
        (frozen_ticks - 4800..=frozen_ticks + 9600).contains(&step),
        "jump of {step} ticks for {frozen:?} frozen"
    );
    for (i, w) in pkts.windows(2).enumerate() {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "sequence gap at {i}");
        assert_eq!(w[1].ssrc, w[0].ssrc);
    }
    let markers: Vec<usize> = pkts
        .iter()
        .enumerate()
        .filter(|(_, p)| p.marker)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        markers,
        vec![0, at],
        "marker on the first packet and the one after the gap"
    );
    let last = log.lines().last().unwrap_or_default();
    assert!(
        !last.contains("xruns=0 ") && last.contains("xruns="),
        "the overrun is counted: {last}"
    );
}

/// A device that cannot be opened is retried, reported with alsa-lib's own reason folded into
/// one warning line, and never stops the process; SIGTERM still ends it cleanly.
#[test]
fn missing_device_is_retried_and_reported_not_fatal() {
    use std::io::BufRead;
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &[0; 10]);
    let mut child = board
        .rtpmic(&infile)
        .args(["run"])
        .env("RTPMIC_DEVICE", "nosuchpcm")
        .env("RTPMIC_DEST", "127.0.0.1:9")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let warning = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("device_error"))
        .expect("a device_error warning");
    assert!(
        warning.contains("WARN") && warning.contains("Unknown PCM nosuchpcm") && warning.contains("retrying"),
        "{warning}"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_for(&mut child, Duration::from_secs(1)).expect("exit within 1 s");
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("stopped:") && l.contains("device_errors=")),
        "{rest:?}"
    );
    assert!(
        !rest.iter().any(|l| l.contains("ALSA lib")),
        "alsa-lib must not write to stderr itself: {rest:?}"
    );
}

/// Unplug and replug: the simulated board's jackd is stopped (the device goes silent, with no
/// error, as a pulled USB microphone behind a sound server does) and started again. rtpmic
/// notices the silence, reopens with back-off, and the stream resumes with the same SSRC,
/// contiguous sequence numbers, a timestamp advanced by the time away, and the marker bit.
#[test]
fn unplugged_device_is_reopened_and_the_stream_resumes() {
    let mut board = SimBoard::private();
    let rx = Receiver::bind();
    let mut child = live_opus(&board, &rx);
    let mut pkts = rx.collect(25, Duration::from_secs(10), Duration::from_secs(2));
    assert_eq!(pkts.len(), 25, "stream did not start");
    let t0 = Instant::now();
    board.unplug();
    // Nothing arrives while the device is gone.
    let during = rx.collect(1000, Duration::from_millis(1500), Duration::from_millis(1500));
    board.replug();
    let away = t0.elapsed();
    pkts.extend(during);
    pkts.extend(rx.collect(25, Duration::from_secs(10), Duration::from_secs(2)));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(wait_for(&mut child, Duration::from_secs(2)).expect("exit").success());
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();

    assert!(pkts.len() >= 50, "the stream resumed: {} packets\n{log}", pkts.len());
    for (i, w) in pkts.windows(2).enumerate() {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "sequence gap at {i}");
        assert_eq!(w[1].ssrc, w[0].ssrc, "same SSRC after the replug");
    }
    let gaps: Vec<(usize, u32)> = pkts
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1].ts.wrapping_sub(w[0].ts) != 960)
        .map(|(i, w)| (i + 1, w[1].ts.wrapping_sub(w[0].ts)))
        .collect();
    assert_eq!(gaps.len(), 1, "one gap: {gaps:?}");
    let (at, step) = gaps[0];
    let away_ticks = (away.as_secs_f64() * 48_000.0) as u32;
    assert!(
        step >= away_ticks / 2 && step <= away_ticks + 4 * 48_000,
        "jump {step} for {away:?} away"
    );
    assert!(pkts[at].marker, "marker on the first packet after the replug");
    assert!(log.contains("no audio for") || log.contains("device_error"), "{log}");
}

/// A microphone absent at boot: rtpmic starts anyway, retries, and streams once the device
/// appears (jackd started later). The first packet carries the marker.
#[test]
fn device_absent_at_start_is_picked_up_when_it_appears() {
    let mut board = SimBoard::private();
    board.unplug();
    let rx = Receiver::bind();
    let mut child = live_opus(&board, &rx);
    let early = rx.collect(1, Duration::from_millis(800), Duration::from_millis(800));
    assert!(early.is_empty(), "nothing can be sent without a device");
    board.replug();
    let pkts = rx.collect(20, Duration::from_secs(10), Duration::from_secs(2));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(wait_for(&mut child, Duration::from_secs(2)).expect("exit").success());
    assert_eq!(pkts.len(), 20, "the stream starts once the device is there");
    assert_clean_stream(&pkts, 96, 960);
}
