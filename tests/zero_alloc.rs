//! The hot path allocates nothing: a counting global allocator attributes every allocation
//! to the thread making it, and the capture, encoder and sender threads (marked by
//! `rtpmic::ops::hot_path` once warmed up) must make none while ≥ 500 periods stream through
//! real ALSA (board/sim, paced), real libopus and a real UDP socket, also while peers join
//! and leave, and while RTSP clients (UDP and TCP-interleaved) set up, play and leave.

mod common;
#[path = "common/rtsp_client.rs"]
mod rtsp_client;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use rtpmic::config::Config;
use rtpmic::net::control::Control;
use rtpmic::ops::hot_path;
use rtpmic::ops::stats::Stats;
use rtpmic::pipeline::{Pipeline, RunOptions};
use rtpmic::rtp::session::PeerSpec;

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
    run_pipeline_with(board, keys, seconds, false)
}

/// Runs a pipeline for `seconds` of audio; with `churn`, a peer joins and leaves every 30 ms
/// (through the ring RTSP clients use) while the stream runs. Returns the periods read and
/// the hot-path allocations.
fn run_pipeline_with(board: &SimBoard, keys: &[(&str, &str)], seconds: u64, churn: bool) -> (u64, u64) {
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
            client_slots: if churn { 4 } else { 0 },
        },
    )
    .unwrap();
    let joiner = churn.then(|| {
        let (mut controls, mut ids) = pipeline.take_client_controls().expect("client slots");
        let visitor = UdpSocket::bind("127.0.0.1:0").unwrap();
        let spec = PeerSpec::udp(visitor.local_addr().ok(), true, false);
        std::thread::spawn(move || {
            let mut joins = 0;
            let deadline = Instant::now() + Duration::from_secs(seconds);
            while Instant::now() < deadline {
                let id = ids.allocate().expect("a free client slot");
                controls.push(|c| *c = Control::SetPeer { id, spec });
                std::thread::sleep(Duration::from_millis(30));
                controls.push(|c| *c = Control::RemovePeer { id });
                ids.release(id);
                joins += 1;
            }
            // What the visitor got while it was a peer.
            visitor.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 2048];
            let mut got = 0;
            while visitor.recv(&mut buf).is_ok() {
                got += 1;
            }
            (joins, got)
        })
    });
    let stats = pipeline.join();
    if let Some(j) = joiner {
        let (joins, got) = j.join().unwrap();
        println!("{joins} joins and leaves; the visitor got {got} datagrams");
        assert!(joins >= 50, "peers joined and left {joins} times");
        assert!(got >= joins, "every visit got packets: {got} for {joins} visits");
    }
    // The packets really left through the socket (the receiver's buffer holds the first few).
    assert_sent(&stats);
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

/// The stream's frames left through the socket: every one of at least 500 was sent or, when
/// this busy machine left a real-time thread behind, counted as dropped (drop-oldest rings);
/// and hundreds were sent.
fn assert_sent(stats: &Stats) {
    let sent = stats.datagrams.load(Relaxed);
    let dropped = stats.frame_drops.load(Relaxed) + stats.packet_drops.load(Relaxed);
    assert!(sent + dropped >= 500 && sent >= 100, "{}", stats.summary());
}

/// Runs a pipeline serving RTSP for `seconds` of audio while our client plays session after
/// session (UDP and TCP-interleaved in turn, each leaving by TEARDOWN or by closing its
/// connection in turn), each until it has a few packets. Returns the periods read and the
/// hot-path allocations.
fn run_pipeline_rtsp(board: &SimBoard, keys: &[(&str, &str)], seconds: u64) -> (u64, u64) {
    use rtsp_client::{assert_no_gap, Client, Transport};
    let infile = board.infile("in.raw", &two_tone(48_000, seconds as f64 + 1.0));
    std::env::set_var("JACK_DEFAULT_SERVER", &board.server);
    std::env::set_var("ALSA_CONFIG_PATH", alsa_config_path());
    std::env::set_var("SIM_INFILE", &infile);
    let rx = Receiver::bind();
    let dest = rx.dest();
    let listen = format!("127.0.0.1:{}", free_tcp_port());
    let mut pairs = vec![
        ("RTPMIC_DEVICE", "simfile"),
        ("RTPMIC_DEST", dest.as_str()),
        ("RTPMIC_RT_PRIORITY", "10"),
        ("RTPMIC_RTSP_LISTEN", listen.as_str()),
    ];
    pairs.extend_from_slice(keys);
    let config = Config::from_pairs(pairs).unwrap();
    let addr: std::net::SocketAddr = listen.parse().unwrap();
    let before = HOT_ALLOCS.load(Relaxed);
    let (mut pipeline, _) = Pipeline::start(
        &config,
        RunOptions {
            seconds: Some(seconds),
            no_drop: false,
            client_slots: 0,
        },
    )
    .unwrap();
    let churner = std::thread::spawn(move || {
        // Done a second before the stream ends.
        let deadline = Instant::now() + Duration::from_secs(seconds - 1);
        let mut sessions = [0u32; 2];
        let mut k = 0u32;
        while Instant::now() < deadline {
            let t = if k.is_multiple_of(2) {
                Transport::Udp
            } else {
                Transport::Tcp
            };
            let mut c = Client::connect(addr, "/mic").expect("connect");
            if let Err(e) = c.start(t) {
                panic!("RTSP session {k} ({t:?}): {e}");
            }
            assert!(
                c.wait_for_packets(3, Duration::from_secs(5)),
                "RTSP session {k} ({t:?}) got {} packets",
                c.count()
            );
            if (k / 2).is_multiple_of(2) {
                assert_eq!(c.teardown().unwrap().status, 200);
            }
            assert_no_gap(&c.packets(), &format!("RTSP session {k} ({t:?})"));
            sessions[usize::from(t == Transport::Tcp)] += 1;
            k += 1;
        }
        sessions
    });
    // `join` stops the RTSP server first: the clients are done before.
    let [udp, tcp] = churner.join().unwrap();
    let stats = pipeline.join();
    println!("{keys:?}: {udp} UDP and {tcp} TCP RTSP sessions; {}", stats.summary());
    assert!(udp >= 5 && tcp >= 5, "only {udp} UDP and {tcp} TCP RTSP sessions");
    assert_sent(&stats);
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
    // Peers joining and leaving every 30 ms (six frames) while the stream runs, in the
    // one-thread layout and with a sender thread.
    for threads in ["1", "3"] {
        let (periods, allocs) = run_pipeline_with(&board, &[opus[0], opus[1], ("RTPMIC_THREADS", threads)], 3, true);
        assert!(periods >= 500, "only {periods} periods");
        assert_eq!(
            allocs, 0,
            "heap allocations while peers join and leave ({threads} thread(s))"
        );
    }
    let entered = hot_path::entered_count();
    // PCMU at 10 ms: the cheapest codec, so the pipeline itself is all that runs; auto runs it
    // all in the capture thread.
    let (periods, allocs) = run_pipeline(&board, &[("RTPMIC_CODEC", "pcmu"), ("RTPMIC_FRAME_MS", "10")], 6);
    assert!(periods >= 500, "only {periods} periods");
    assert_eq!(
        hot_path::entered_count(),
        entered + 1,
        "the one thread marked its hot loop"
    );
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
    // RTSP clients setting up, playing and leaving over UDP and TCP-interleaved (the sending
    // thread frames their packets into the TCP sinks), in the one-thread layout and with a
    // sender thread.
    for threads in ["1", "3"] {
        let (periods, allocs) = run_pipeline_rtsp(&board, &[opus[0], opus[1], ("RTPMIC_THREADS", threads)], 3);
        assert!(periods >= 500, "only {periods} periods");
        assert_eq!(
            allocs, 0,
            "heap allocations while RTSP clients come and go ({threads} thread(s))"
        );
    }
    assert!(ALL_ALLOCS.load(Relaxed) > 0, "the counting allocator is installed");
}
