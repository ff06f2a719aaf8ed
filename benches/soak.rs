//! `make soak`: ≥ 10^7 periods through the whole pipeline (real alsa-lib reading board/sim's
//! unpaced `simfast` PCM, the encoder, the sender to a loopback sink), in this process, with a
//! counting allocator. Checks that the hot threads allocate nothing, that resident memory
//! stays flat, and that the counters agree (every period became a frame, a packet and a
//! datagram). Exits non-zero when a check fails. `SOAK_PERIODS` overrides the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use rtpmic::config::Config;
use rtpmic::ops::hot_path;
use rtpmic::pipeline::{Pipeline, RunOptions};

struct Counting;
static HOT_ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if hot_path::is_hot() {
            HOT_ALLOCS.fetch_add(1, Relaxed);
        }
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if hot_path::is_hot() {
            HOT_ALLOCS.fetch_add(1, Relaxed);
        }
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let periods: u64 = std::env::var("SOAK_PERIODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let root = env!("CARGO_MANIFEST_DIR");
    // The only thread running yet: setting the environment is safe here.
    std::env::set_var(
        "ALSA_CONFIG_PATH",
        format!("/usr/share/alsa/alsa.conf:{root}/board/sim/asound.conf"),
    );
    std::env::set_var("SIM_INFILE", "/dev/zero");
    let sink = UdpSocket::bind("127.0.0.1:0").expect("sink");
    let dest = sink.local_addr().unwrap().to_string();
    // PCMU at 10 ms: one 80-sample period per frame, the cheapest codec, so the pipeline
    // itself is what runs 10^7 times.
    let config = Config::from_pairs([
        ("RTPMIC_DEVICE", "simfast"),
        ("RTPMIC_CODEC", "pcmu"),
        ("RTPMIC_FRAME_MS", "10"),
        ("RTPMIC_RT_PRIORITY", "0"),
        ("RTPMIC_RTCP", "off"),
        ("RTPMIC_DEST", dest.as_str()),
    ])
    .expect("config");
    let seconds = periods / 100;
    let t0 = Instant::now();
    let (mut pipeline, _) = Pipeline::start(
        &config,
        RunOptions {
            seconds: Some(seconds),
            no_drop: true,
            ..RunOptions::default()
        },
    )
    .expect("start");
    let stats = pipeline.stats().clone();
    // Resident memory once warmed up (1 % in), then at the end.
    while stats.periods.load(Relaxed) < periods / 100 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let early = rss_kib();
    let stats = pipeline.join();
    let late = rss_kib();
    let (p, f, k, d) = (
        stats.periods.load(Relaxed),
        stats.frames.load(Relaxed),
        stats.packets.load(Relaxed),
        stats.datagrams.load(Relaxed),
    );
    let hot = HOT_ALLOCS.load(Relaxed);
    println!(
        "soak: {p} periods, {f} frames, {k} packets, {d} datagrams in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    println!("soak: RSS {early} KiB after 1 %, {late} KiB at the end; hot-path allocations {hot}");
    let mut ok = true;
    let mut check = |cond: bool, what: &str| {
        if !cond {
            eprintln!("soak FAILED: {what}");
            ok = false;
        }
    };
    check(p >= periods, "fewer periods than asked");
    check(f == p && k == f && d == k, "counters disagree");
    check(hot == 0, "the hot path allocated");
    check(late <= early + 1024, "resident memory grew by more than 1 MiB");
    check(
        stats.frame_drops.load(Relaxed) + stats.packet_drops.load(Relaxed) == 0,
        "drops in no-drop mode",
    );
    std::process::exit(if ok { 0 } else { 1 });
}
