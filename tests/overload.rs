//! Overload and back-pressure, injected into a running rtpmic with real kernel mechanisms:
//! an encoder thread starved by a CFS quota (cgroup v1 cpu controller, per thread), a socket
//! send buffer filled behind a 8 kbit/s token bucket (tc tbf) on a namespace's loopback, and
//! an overrun storm (the process stopped again and again).
//!
//! Recovery is judged from the packets received, not from rtpmic's own counters alone. Their
//! arrival times are the kernel's stamps (SO_TIMESTAMPNS), so the test's own receiving thread
//! running late on a busy machine does not show as rtpmic's lag.

mod common;

use std::io::Read;
use std::net::UdpSocket;
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime};

use common::*;

/// One packet as received: when it arrived (the kernel's stamp), and its header fields.
struct Arrival {
    at: SystemTime,
    seq: u16,
    ts: u32,
    marker: bool,
}

/// Reads RTP from `socket` until `stop` says so or `idle` passes without a packet.
fn receive(socket: &UdpSocket, idle: Duration, mut stop: impl FnMut(&[Arrival]) -> bool) -> Vec<Arrival> {
    stamp_arrivals(socket);
    socket.set_read_timeout(Some(idle)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while let Some((n, at)) = recv_stamped(socket, &mut buf) {
        let p = rtp_types::RtpPacket::parse(&buf[..n]).expect("valid RTP");
        out.push(Arrival {
            at,
            seq: p.sequence_number(),
            ts: p.timestamp(),
            marker: p.marker_bit(),
        });
        if stop(&out) {
            break;
        }
    }
    out
}

/// How far each packet arrived behind the audio clock, relative to the earliest packet (ms):
/// arrival time minus the time its RTP timestamp stands for (`ticks_per_ms`: 48 or 8).
fn lag_ms(pkts: &[Arrival], ticks_per_ms: f64) -> Vec<f64> {
    let (t0, ts0) = (pkts[0].at, pkts[0].ts);
    let raw: Vec<f64> = pkts
        .iter()
        .map(|p| since(t0, p.at).as_secs_f64() * 1000.0 - f64::from(p.ts.wrapping_sub(ts0)) / ticks_per_ms)
        .collect();
    let min = raw.iter().cloned().fold(f64::MAX, f64::min);
    raw.iter().map(|l| l - min).collect()
}

/// `later - earlier`, zero when the wall clock says otherwise.
fn since(earlier: SystemTime, later: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}

/// The median of `x`.
fn median(x: &[f64]) -> f64 {
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// How far the lag moves over `lag` (ms), the outer 2 % left out: a packet the test thread
/// read late is not the stream's doing.
fn tail_lag_spread(lag: &[f64]) -> f64 {
    let mut v = lag.to_vec();
    v.sort_by(f64::total_cmp);
    let cut = v.len() / 50;
    v[v.len() - 1 - cut] - v[cut]
}

fn final_line(child: &mut Child) -> String {
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    log
}

/// The thread id of `name` in process `pid`.
fn thread_id(pid: u32, name: &str) -> Option<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
        .find_map(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            (comm.trim() == name).then(|| t.file_name().to_string_lossy().parse().ok())?
        })
}

/// A cgroup (v1 cpu controller) that lets its SCHED_RR threads run `runtime_us` out of every
/// 100 ms (real-time group scheduling); removed on drop.
struct Throttle {
    dir: std::path::PathBuf,
}

impl Throttle {
    fn new(runtime_us: u32) -> Throttle {
        let dir = std::path::PathBuf::from(format!("/sys/fs/cgroup/cpu/rtpmic-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cgroup v1 cpu controller at /sys/fs/cgroup/cpu (run as root)");
        std::fs::write(dir.join("cpu.rt_period_us"), "100000").unwrap();
        std::fs::write(dir.join("cpu.rt_runtime_us"), runtime_us.to_string()).unwrap();
        Throttle { dir }
    }

    /// Moves one thread in (cgroup v1 takes thread ids in `tasks`).
    fn add(&self, tid: u32) {
        std::fs::write(self.dir.join("tasks"), tid.to_string()).unwrap();
    }

    /// Moves every thread back to the root group, unthrottled.
    fn lift(&self) {
        if let Ok(tasks) = std::fs::read_to_string(self.dir.join("tasks")) {
            for t in tasks.lines() {
                let _ = std::fs::write("/sys/fs/cgroup/cpu/tasks", t);
            }
        }
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.lift();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The encoder thread (SCHED_RR like the others) gets 0.2 ms of CPU per 100 ms for 2 s (Opus at
/// complexity 10 with 2.5 ms frames needs several times that; capture and sender are not
/// throttled): the capture → encoder ring drops the oldest frames and counts them,
/// capture never overruns, packets arrive at most a bounded time behind the audio clock, and
/// once the quota is lifted the lag falls back to where it was. The ring's rule itself (newest
/// frames kept, age bounded by its capacity, none left over once the reader runs) is
/// `ring::tests::a_starved_reader_sees_bounded_age_and_recovers_at_once`, in simulated time.
#[test]
fn a_starved_encoder_drops_frames_with_bounded_lag_and_recovers() {
    let board = SimBoard::shared();
    let infile = board.infile("tone.raw", &two_tone(48_000, 12.0));
    let rx = Receiver::bind();
    let mut child = board
        .rtpmic(&infile)
        .args(["run", "--seconds", "8"])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_DEST", rx.dest())
        .env("RTPMIC_FRAME_MS", "2.5")
        .env("RTPMIC_BITRATE", "64000")
        // The frame ring between a capture thread and an encoder thread is what is tested.
        .env("RTPMIC_THREADS", "2")
        .env("RTPMIC_STATS_INTERVAL_S", "0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let throttle = Throttle::new(200);
    let mut phase = 0;
    let mut throttled_at = None;
    let mut lifted_at = None;
    let pkts = receive(&rx.socket, Duration::from_secs(2), |p| {
        let elapsed = since(p[0].at, SystemTime::now());
        if phase == 0 && elapsed >= Duration::from_secs(2) {
            let tid = thread_id(child.id(), "rtpmic-encode").expect("the encoder thread");
            throttle.add(tid);
            throttled_at = Some(p.len());
            phase = 1;
        } else if phase == 1 && elapsed >= Duration::from_secs(4) {
            throttle.lift();
            lifted_at = Some(p.len());
            phase = 2;
        }
        false
    });
    let status = wait_for(&mut child, Duration::from_secs(10)).expect("rtpmic ends");
    let log = final_line(&mut child);
    assert!(status.success(), "{log}");
    let start = throttled_at.expect("throttled");
    assert!(lifted_at.is_some(), "lifted");
    assert!(
        stopped_counter(&log, "frame_drops") > 0,
        "the ring dropped frames:\n{log}"
    );
    assert_eq!(
        stopped_counter(&log, "xruns"),
        0,
        "capture never overran because of the encoder:\n{log}"
    );

    for w in pkts.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "sequence numbers stay contiguous");
        let step = w[1].ts.wrapping_sub(w[0].ts);
        // Frames dropped in the ring leave whole frames out; only a capture-side gap (which
        // the marker announces) moves the timestamp by anything else.
        assert!(step < 48_000, "timestamps move forward: {step}");
        assert!(
            step % 120 == 0 || w[1].marker,
            "off the frame grid without a marker: {step}"
        );
    }
    let skipped = pkts.windows(2).filter(|w| w[1].ts.wrapping_sub(w[0].ts) > 120).count();
    assert!(skipped > 0, "dropped frames show as timestamp jumps");
    // Lag is judged against the packets' audio clock. board/sim's clock can fall behind real
    // time on a busy machine (a JACK cycle its client misses is 5 ms of audio that never
    // arrives, with no overrun to see): that shows as lag that never goes away, a few ms to a
    // few tens of ms per run. The bounds leave room for it; the backlog a ring that did not
    // drop would build (seconds) and a stream that stays behind do not fit in them.
    let lag = lag_ms(&pkts, 48.0);
    let before = median(&lag[..start]);
    // While starved and right after (what the ring held comes out then).
    let during = lag[start..].iter().cloned().fold(0.0, f64::max);
    // After the lift: the last second.
    let tail = &pkts[pkts.len() - 400..];
    let after = median(&lag[pkts.len() - 400..]);
    println!("lag median before {before:.1} ms, while starved max {during:.1} ms, median over the last second {after:.1} ms; {skipped} jumps");
    assert!(
        during < 1000.0,
        "lag stays bounded by the ring (2 s of starvation; an unbounded queue would hold most of it): {during:.1} ms"
    );
    // A standing backlog would drain in the last second (its lag falling as packets catch
    // up); a stream that recovered flows at the audio's pace: its lag is level. (Its level
    // against `before` is not the test: what board/sim's clock lost under load stays in it.)
    let spread = tail_lag_spread(&lag[pkts.len() - 400..]);
    assert!(
        spread < 40.0,
        "the lag is level again a second after the lift (median {after:.1} ms, {before:.1} ms before): it moves by {spread:.1} ms"
    );
    // Recovered means every frame goes out again: no more jumps, and rtpmic's own
    // capture-to-send latency (which board/sim's clock does not enter) shows no standing
    // backlog: most packets of the run, those before and after the starvation, left within
    // 5 ms of their capture.
    assert!(
        tail.windows(2).all(|w| w[1].ts.wrapping_sub(w[0].ts) == 120),
        "frames still dropped a second after the lift"
    );
    let p50 = log
        .lines()
        .rfind(|l| l.contains("stopped: "))
        .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("latency_p50=<")))
        .and_then(|v| v.strip_suffix("us")?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("latency_p50 in the stopped line:\n{log}"));
    assert!(p50 <= 5000, "median capture-to-send latency under {p50} µs:\n{log}");
    drop(throttle);
}

/// A network namespace with a 8 kbit/s token bucket on its loopback (tc tbf with a huge
/// queue, so datagrams wait in the qdisc holding the sender's socket buffer). Removed on drop.
struct SlowLink {
    name: String,
}

impl SlowLink {
    fn create() -> SlowLink {
        let link = SlowLink {
            name: format!("rtpmic-slow-{}", std::process::id()),
        };
        for cmd in [
            format!("ip netns add {}", link.name),
            format!("ip -n {} link set lo up", link.name),
            format!(
                "ip netns exec {} tc qdisc add dev lo root tbf rate 8kbit burst 1600 limit 50000000",
                link.name
            ),
        ] {
            let st = std::process::Command::new("sh").arg("-c").arg(&cmd).status().unwrap();
            assert!(st.success(), "{cmd}");
        }
        link
    }

    /// The network comes back: the qdisc goes, and what it held is dropped.
    fn restore(&self) {
        let st = std::process::Command::new("ip")
            .args(["netns", "exec", &self.name, "tc", "qdisc", "del", "dev", "lo", "root"])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// A UDP socket bound inside the namespace (setns on a helper thread).
    fn bind(&self, addr: &str) -> UdpSocket {
        let (path, addr) = (format!("/run/netns/{}", self.name), addr.to_string());
        std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).unwrap();
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            UdpSocket::bind(addr).unwrap()
        })
        .join()
        .unwrap()
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The socket send buffer fills behind a slow link: sends fail with EAGAIN, are counted per
/// destination and dropped, capture and encoding never wait; when the link is back the very
/// next packets go out, carrying live audio (no backlog). Both sender backends (io_uring
/// used to park such a send in the kernel, and the sender thread with it).
#[test]
fn a_full_socket_buffer_drops_and_counts_and_the_stream_resumes_at_once() {
    for backend in ["io_uring", "epoll"] {
        full_socket_buffer(backend);
    }
}

fn full_socket_buffer(backend: &str) {
    use std::io::BufRead;
    let board = SimBoard::shared();
    let infile = board.infile("tone.raw", &two_tone(8000, 12.0));
    let link = SlowLink::create();
    let socket = link.bind("127.0.0.1:5004");
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", &link.name, common::RTPMIC]);
    board.apply_env(&mut cmd, &infile);
    let mut child = cmd
        .args(["run", "--seconds", "10"])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_SENDER", backend)
        .env("RTPMIC_CODEC", "pcmu")
        .env("RTPMIC_DEST", "127.0.0.1:5004")
        .env("RTPMIC_RTCP", "off")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // rtpmic's warning says when the buffer is full; the link comes back then.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("send_would_block:") {
                let _ = tx.send(SystemTime::now());
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    let receiver = std::thread::spawn(move || receive(&socket, Duration::from_secs(3), |_| false));
    let full_at = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the send buffer filled (EAGAIN)");
    link.restore();
    let restored = SystemTime::now();
    let pkts = receiver.join().unwrap();
    let status = wait_for(&mut child, Duration::from_secs(10)).expect("rtpmic ends");
    let log = reader.join().unwrap();
    assert!(status.success(), "{log}");
    assert!(log.contains(&format!("sender: {backend}")), "{log}");
    assert!(stopped_counter(&log, "send_would_block") > 0, "{log}");
    // Capture and encoding never waited on the sender: every 20 ms of the 10 s became a
    // frame, or is accounted for as lost to an overrun (a loaded machine may cause one).
    let accounted = stopped_counter(&log, "frames") * 160 + stopped_counter(&log, "samples_lost");
    assert!(
        accounted.abs_diff(80_000) <= 160,
        "{accounted} of 80000 samples:\n{log}"
    );
    let dest_line = log
        .lines()
        .rfind(|l| l.contains("destinations: [127.0.0.1:5004"))
        .unwrap_or_default();
    assert!(
        !dest_line.contains("errors=0]"),
        "counted for the destination: {dest_line}"
    );
    let first_after = pkts
        .iter()
        .position(|p| p.at > restored)
        .expect("packets after the link returned");
    let resumed_in = since(restored, pkts[first_after].at);
    println!(
        "{backend}: buffer full {:?} after start; first packet {resumed_in:?} after the link returned",
        since(pkts[0].at, full_at)
    );
    assert!(
        resumed_in < Duration::from_millis(200),
        "resumed within a few packets: {resumed_in:?}"
    );
    // From then on: every packet, live. A backlog kept through the outage would come out
    // first, late, each packet less late than the one before; so no packet may be much later
    // behind its audio than the packets after it. (board/sim's clock falling behind on a busy
    // machine makes all later packets later, which this leaves alone.)
    let after = &pkts[first_after..];
    for w in after.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "nothing lost once the link is back");
    }
    let lag = lag_ms(after, 8.0);
    let backlog = (0..lag.len())
        .map(|i| lag[i] - lag[i..].iter().cloned().fold(f64::MAX, f64::min))
        .fold(0.0, f64::max);
    println!("{backend}: after recovery, a packet at most {backlog:.1} ms later than one after it");
    assert!(backlog < 50.0, "no backlog after recovery: {backlog:.1} ms");
}

/// An overrun storm: the whole process is stopped for 300 ms eight times in a row (longer
/// than the ALSA buffer, so each stop is an overrun). Every one is recovered and counted; the
/// sequence stays contiguous, each gap moves the timestamp by about the time lost and sets
/// the marker, and the stream goes on cleanly afterwards.
#[test]
fn an_overrun_storm_is_recovered_every_time() {
    const STOPS: usize = 8;
    let board = SimBoard::shared();
    let infile = board.infile("tone.raw", &two_tone(8000, 12.0));
    let rx = Receiver::bind();
    let mut child = board
        .rtpmic(&infile)
        .args(["run", "--seconds", "10"])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_CODEC", "pcmu")
        .env("RTPMIC_DEST", rx.dest())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let storm = std::thread::spawn(move || {
        let mut stopped = Vec::new();
        // Let the stream settle first.
        std::thread::sleep(Duration::from_millis(1000));
        for _ in 0..STOPS {
            let t0 = std::time::Instant::now();
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            std::thread::sleep(Duration::from_millis(300));
            unsafe { libc::kill(pid, libc::SIGCONT) };
            stopped.push(t0.elapsed().as_millis() as u32);
            std::thread::sleep(Duration::from_millis(400));
        }
        stopped
    });
    let pkts = receive(&rx.socket, Duration::from_secs(2), |_| false);
    let stops = storm.join().unwrap();
    let status = wait_for(&mut child, Duration::from_secs(10)).expect("rtpmic ends");
    let log = final_line(&mut child);
    assert!(status.success(), "{log}");
    assert!(
        stopped_counter(&log, "xruns") >= STOPS as u64,
        "every stop counted:\n{log}"
    );

    let mut gaps = Vec::new();
    for w in pkts.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "sequence contiguous through the storm"
        );
        let step = w[1].ts.wrapping_sub(w[0].ts);
        if step != 160 {
            assert!(w[1].marker, "a gap of {step} ticks without the marker");
            gaps.push(step);
        }
    }
    assert!(
        gaps.len() >= stops.len(),
        "{} gaps for {} stops: {gaps:?}",
        gaps.len(),
        stops.len()
    );
    // Each gap is about the time stopped (8 ticks per ms), never more than the stop plus
    // a buffer's worth, never a backwards step.
    let lost_ms: f64 = gaps.iter().map(|&g| f64::from(g) / 8.0).sum();
    let stopped_ms: f64 = stops.iter().map(|&s| f64::from(s)).sum();
    println!(
        "{} gaps, {lost_ms:.0} ms skipped for {stopped_ms:.0} ms stopped",
        gaps.len()
    );
    assert!(gaps.iter().all(|&g| g < 8 * 1000), "{gaps:?}");
    assert!(
        (lost_ms - stopped_ms).abs() < 0.25 * stopped_ms,
        "{lost_ms:.0} ms vs {stopped_ms:.0} ms"
    );
    // After the storm: a clean stream to the end.
    let tail = &pkts[pkts.len() - 50..];
    assert!(
        tail.windows(2).all(|w| w[1].ts.wrapping_sub(w[0].ts) == 160),
        "clean after the storm"
    );
}
