//! The hot path allocates nothing: a counting global allocator attributes every allocation
//! to the thread making it, and the capture, encoder and sender threads (marked by
//! `rtpmic::ops::hot_path` once warmed up) must make none while ≥ 500 periods stream through
//! real ALSA (board/sim, paced), real libopus and a real UDP socket.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use common::*;
use rtpmic::config::Config;
use rtpmic::ops::hot_path;
use rtpmic::pipeline::{Pipeline, RunOptions};

struct Counting;

static HOT_ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALL_ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
}

fn count() {
    ALL_ALLOCS.fetch_add(1, Relaxed);
    if hot_path::is_hot() {
        HOT_ALLOCS.fetch_add(1, Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn run_pipeline(board: &SimBoard, keys: &[(&str, &str)], seconds: u64) -> (u64, u64) {
    let infile = board.infile("in.raw", &two_tone(48_000, seconds as f64 + 1.0));
    // The only test in this binary: nothing else reads the environment concurrently.
    std::env::set_var("JACK_DEFAULT_SERVER", &board.server);
    std::env::set_var("ALSA_CONFIG_PATH", alsa_config_path());
    std::env::set_var("SIM_INFILE", &infile);
    let rx = Receiver::bind();
    let dest = rx.dest();
    let mut pairs = vec![
        ("RTPMIC_DEVICE", "simfile"),
        ("RTPMIC_DEST", dest.as_str()),
        ("RTPMIC_RT_PRIORITY", "10"),
    ];
    pairs.extend_from_slice(keys);
    let config = Config::from_pairs(pairs).unwrap();
    let before = HOT_ALLOCS.load(Relaxed);
    let (mut pipeline, _) = Pipeline::start(
        &config,
        RunOptions {
            seconds: Some(seconds),
            no_drop: false,
        },
    )
    .unwrap();
    let stats = pipeline.join();
    // The packets really left through the socket (the receiver's buffer holds the first few).
    assert!(stats.datagrams.load(Relaxed) >= 500, "{}", stats.summary());
    assert!(!rx
        .collect(
            10,
            std::time::Duration::from_millis(200),
            std::time::Duration::from_millis(200)
        )
        .is_empty());
    println!("{keys:?}: {}", stats.summary());
    (stats.periods.load(Relaxed), HOT_ALLOCS.load(Relaxed) - before)
}

#[test]
fn hot_threads_allocate_nothing() {
    let board = SimBoard::shared();
    // Opus at 5 ms frames: 3 s = 600 periods through every stage, in three threads, then in
    // two (the encoder sends).
    let opus = [("RTPMIC_CODEC", "opus"), ("RTPMIC_FRAME_MS", "5")];
    let (periods, allocs) = run_pipeline(&board, &[opus[0], opus[1], ("RTPMIC_THREADS", "3")], 3);
    assert!(periods >= 500, "only {periods} periods");
    assert_eq!(
        hot_path::entered_count(),
        3,
        "all three threads must have marked their hot loop"
    );
    assert_eq!(allocs, 0, "heap allocations on the hot path (opus, 3 threads)");
    let (periods, allocs) = run_pipeline(&board, &[opus[0], opus[1], ("RTPMIC_THREADS", "2")], 3);
    assert!(periods >= 500, "only {periods} periods");
    assert_eq!(hot_path::entered_count(), 5, "both threads marked their hot loop");
    assert_eq!(allocs, 0, "heap allocations on the hot path (opus, 2 threads)");
    // PCMU at 10 ms: the cheapest codec, so the pipeline itself is all that runs; auto runs it
    // all in the capture thread.
    let (periods, allocs) = run_pipeline(&board, &[("RTPMIC_CODEC", "pcmu"), ("RTPMIC_FRAME_MS", "10")], 6);
    assert!(periods >= 500, "only {periods} periods");
    assert_eq!(hot_path::entered_count(), 6, "the one thread marked its hot loop");
    assert_eq!(allocs, 0, "heap allocations on the hot path (pcmu, 1 thread)");
    // Everything optional on the hot path at once: FEC, DTX, RFC 2198 redundancy, SRTP and
    // SRTCP, paced sending (by the sender thread's batch loop).
    let (periods, allocs) = run_pipeline(
        &board,
        &[
            ("RTPMIC_FRAME_MS", "10"),
            ("RTPMIC_OPUS_FEC", "on"),
            ("RTPMIC_OPUS_DTX", "on"),
            ("RTPMIC_REDUNDANCY", "2"),
            ("RTPMIC_SRTP", "AES_CM_128_HMAC_SHA1_80"),
            ("RTPMIC_PACING", "on"),
            ("RTPMIC_THREADS", "3"),
        ],
        6,
    );
    assert!(periods >= 500, "only {periods} periods");
    assert_eq!(
        allocs, 0,
        "heap allocations on the hot path (FEC, DTX, RED, SRTP, pacing)"
    );
    assert!(ALL_ALLOCS.load(Relaxed) > 0, "the counting allocator is installed");
}
