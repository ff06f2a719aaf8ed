//! `make soak` (second half): a paced soak with a fault injected every 30 s. rtpmic (the
//! release-profile binary cargo builds for this bench) runs in a network namespace joined by
//! veth to a second one, where a receiver counts what arrives. In turn, every
//! `FAULT_SOAK_EVERY_S` (30): the simulated board's jackd is stopped for 2 s and started
//! again (the microphone pulled and put back), the veth goes down for 2 s, and 5000 garbage
//! datagrams hit the RTCP port. After `FAULT_SOAK_S` (600) seconds the stream must still be
//! running: the process alive, the same SSRC from start to end (the sequence numbers go on
//! counting; gaps are the packets lost while the link was down), and the last 5 s complete.
//! Exits non-zero when a check fails.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{two_tone, SimBoard};

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
}

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Seq, timestamp, SSRC and arrival of one received packet.
type Seen = (u16, u32, u32, Instant);

fn main() {
    let total = Duration::from_secs(env_secs("FAULT_SOAK_S", 600));
    let every = Duration::from_secs(env_secs("FAULT_SOAK_EVERY_S", 30));
    let id = std::process::id() % 10_000;
    let (a, b) = (format!("rtpmic-soak-a-{id}"), format!("rtpmic-soak-b-{id}"));
    let (va, vb) = (format!("rsa{id}"), format!("rsb{id}"));
    for cmd in [
        format!("ip netns add {a}"),
        format!("ip netns add {b}"),
        format!("ip link add {va} netns {a} type veth peer name {vb} netns {b}"),
        format!("ip -n {a} addr add 10.232.0.1/24 dev {va}"),
        format!("ip -n {b} addr add 10.232.0.2/24 dev {vb}"),
        format!("ip -n {a} link set {va} up"),
        format!("ip -n {b} link set {vb} up"),
        format!("ip -n {a} link set lo up"),
        format!("ip -n {b} link set lo up"),
    ] {
        sh(&cmd);
    }
    let cleanup = || {
        let _ = Command::new("ip").args(["netns", "del", &a]).status();
        let _ = Command::new("ip").args(["netns", "del", &b]).status();
    };

    let mut board = SimBoard::private();
    // The input loops: a FIFO would need a writer; a long file is simpler.
    let infile = board.infile("tone.raw", &two_tone(8000, total.as_secs_f64() + 30.0));
    let in_b = |f: Box<dyn FnOnce() -> UdpSocket + Send>| {
        let path = format!("/run/netns/{b}");
        std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).unwrap();
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    };
    let rx = in_b(Box::new(|| UdpSocket::bind("10.232.0.2:5004").unwrap()));
    // From the receiver's RTCP port: from any other port rtpmic drops it unread (`foreign`).
    let garbage = in_b(Box::new(|| UdpSocket::bind("10.232.0.2:5005").unwrap()));
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let receiver = {
        let (seen, done) = (seen.clone(), done.clone());
        std::thread::spawn(move || {
            rx.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            let mut buf = [0u8; 2048];
            while !done.load(Ordering::Relaxed) {
                if let Ok(n) = rx.recv(&mut buf) {
                    if let Ok(p) = rtp_types::RtpPacket::parse(&buf[..n]) {
                        seen.lock()
                            .unwrap()
                            .push((p.sequence_number(), p.timestamp(), p.ssrc(), Instant::now()));
                    }
                }
            }
        })
    };

    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &a, env!("CARGO_BIN_EXE_rtpmic"), "run"]);
    board.apply_env(&mut cmd, &infile);
    let mut child = cmd
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_CODEC", "pcmu")
        .env("RTPMIC_DEST", "10.232.0.2:5004")
        .env("RTPMIC_BIND", "10.232.0.1:6000")
        .env("RTPMIC_STATS_INTERVAL_S", "60")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let start = Instant::now();
    let mut faults = Vec::new();
    let mut n = 0;
    while start.elapsed() + every <= total {
        std::thread::sleep(every);
        let t = start.elapsed().as_secs();
        match n % 3 {
            0 => {
                board.unplug();
                std::thread::sleep(Duration::from_secs(2));
                board.replug();
                faults.push(format!("{t:>4} s device pulled for 2 s"));
            }
            1 => {
                sh(&format!("ip -n {a} link set {va} down"));
                std::thread::sleep(Duration::from_secs(2));
                sh(&format!("ip -n {a} link set {va} up"));
                faults.push(format!("{t:>4} s link down for 2 s"));
            }
            _ => {
                let mut x = 0x2545_f491_4f6c_dd1du64;
                for _ in 0..5000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let len = (x % 200) as usize;
                    let bytes: Vec<u8> = (0..len).map(|i| (x >> (i % 56)) as u8).collect();
                    let _ = garbage.send_to(&bytes, "10.232.0.1:6001");
                }
                faults.push(format!("{t:>4} s 5000 garbage datagrams at the RTCP port"));
            }
        }
        n += 1;
    }
    // Let the end run past the last fault, then read what arrived in the last 5 s.
    let remaining = total.saturating_sub(start.elapsed());
    std::thread::sleep(remaining);
    let alive = child.try_wait().unwrap().is_none();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    done.store(true, Ordering::Relaxed);
    receiver.join().unwrap();
    cleanup();
    let log = String::from_utf8_lossy(&out.stderr);
    let seen = seen.lock().unwrap();

    println!("fault soak: {} s, {} faults:", total.as_secs(), faults.len());
    for f in &faults {
        println!("  {f}");
    }
    let mut failures = Vec::new();
    if !alive {
        failures.push("rtpmic exited during the soak".to_string());
    }
    if !out.status.success() {
        failures.push(format!("exit status {}", out.status));
    }
    let ssrcs: std::collections::BTreeSet<u32> = seen.iter().map(|s| s.2).collect();
    if ssrcs.len() != 1 {
        failures.push(format!("{} SSRCs: the stream changed identity", ssrcs.len()));
    }
    let seq_gaps = seen.windows(2).filter(|w| w[1].0 != w[0].0.wrapping_add(1)).count();
    let last_5s: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.3 + Duration::from_secs(5) >= seen.last().map_or(start, |l| l.3))
        .collect();
    if seen.last().is_none_or(|l| l.3 + Duration::from_secs(2) < start + total) {
        failures.push("the stream was not running at the end".into());
    }
    let tail_clean = last_5s
        .windows(2)
        .all(|w| w[1].0 == w[0].0.wrapping_add(1) && w[1].1.wrapping_sub(w[0].1) == 160);
    if last_5s.len() < 240 || !tail_clean {
        failures.push(format!("last 5 s: {} packets, clean: {tail_clean}", last_5s.len()));
    }
    println!(
        "received {} packets, {} SSRC(s), {} sequence gaps (packets lost while the link was down), last 5 s: {} packets clean={tail_clean}",
        seen.len(),
        ssrcs.len(),
        seq_gaps,
        last_5s.len()
    );
    if let Some(l) = log.lines().rfind(|l| l.contains("stopped:")) {
        println!("{l}");
    }
    if let Some(l) = log.lines().rfind(|l| l.contains("rtcp_in:")) {
        println!("{l}");
    }
    if failures.is_empty() {
        println!("fault soak: PASS");
    } else {
        for f in &failures {
            eprintln!("fault soak: FAIL: {f}");
        }
        eprintln!("{log}");
        std::process::exit(1);
    }
}
