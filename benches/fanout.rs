//! Fan-out cost: CPU per delivered datagram and datagrams/s for 1, 8, 64 and 512 loopback
//! destinations, for the io_uring backend, the sendmmsg backend and a naive loop of one
//! `sendto` per datagram, in one run. Prints a Markdown table (benches/run.sh puts it into
//! docs/PERFORMANCE.md).
//!
//! Each destination is a bound loopback UDP socket that is never read. On loopback the
//! receive path runs in the sender's context too, so the kernel's per-datagram work (about
//! 2.5 µs here) is in every figure; the backends differ only in what they add on top. Packets
//! are 172 bytes (PCMU 20 ms) and sent one per batch, as a live stream does. CPU is the
//! sending thread's user + system time (getrusage RUSAGE_THREAD).
//!
//! `FANOUT_PATH=nic` measures a NIC-like path instead: the bench moves itself into a network
//! namespace it creates, sends to 10.233.0.2 over a veth whose root qdisc is a zero-length
//! pfifo (every datagram dropped as it is queued; this kernel has no tc classifiers) with a
//! permanent neighbour entry, so each datagram costs the whole transmit path up to the
//! queueing layer (as with a real NIC, minus the driver) and no receive path. The namespace is removed at the end.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use rtpmic::net::socket::SocketOptions;
use rtpmic::net::udp::{MmsgSender, StreamSockets, CHUNK};
use rtpmic::net::uring::UringSender;
use rtpmic::net::DatagramSender;
use rtpmic::ops::stats::Stats;
use rtpmic::rtp::session::{Kind, Local, PeerId, Route, SendResult, Transmit};

const DATAGRAMS_PER_RUN: usize = 200_000;
/// A PCMU 20 ms packet's size.
static PACKET: [u8; 172] = [0x80; 172];

fn thread_cpu_us() -> f64 {
    // SAFETY: valid out pointer.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// (CPU µs per datagram, datagrams per second, datagrams accepted)
fn measure(mut send_one: impl FnMut(&[u8]) -> u64, n_dest: usize) -> (f64, f64, u64) {
    let packet = PACKET;
    let rounds = (DATAGRAMS_PER_RUN / n_dest).max(200);
    for _ in 0..50 {
        send_one(&packet);
    }
    let (cpu0, t0) = (thread_cpu_us(), Instant::now());
    let mut accepted = 0;
    for _ in 0..rounds {
        accepted += send_one(&packet);
    }
    let (cpu, wall) = (thread_cpu_us() - cpu0, t0.elapsed().as_secs_f64());
    let total = (rounds * n_dest) as f64;
    (cpu / total, total / wall, accepted)
}

/// Enters a fresh namespace with a veth whose egress drops everything; returns its name.
fn enter_nic_namespace() -> String {
    let ns = format!("rtpmic-fanout-{}", std::process::id());
    let run = |cmd: &str| {
        let st = std::process::Command::new("sh").arg("-c").arg(cmd).status().unwrap();
        assert!(st.success(), "{cmd}");
    };
    run(&format!("ip netns add {ns}"));
    run(&format!("ip -n {ns} link add fo0 type veth peer name fo1"));
    run(&format!("ip -n {ns} addr add 10.233.0.1/24 dev fo0"));
    run(&format!("ip -n {ns} link set fo0 up"));
    run(&format!("ip -n {ns} link set fo1 up"));
    run(&format!(
        "ip -n {ns} neigh add 10.233.0.2 lladdr 02:00:00:00:00:02 dev fo0 nud permanent"
    ));
    // A zero-length FIFO: every datagram is dropped as it is queued for the device.
    run(&format!("ip netns exec {ns} tc qdisc add dev fo0 root pfifo limit 0"));
    let fd = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    ns
}

fn main() {
    let nic = std::env::var("FANOUT_PATH").is_ok_and(|v| v == "nic");
    let ns = nic.then(enter_nic_namespace);
    let opts = SocketOptions::default();
    println!("| destinations | backend | CPU µs per datagram | datagrams/s | accepted by the kernel | CPU vs naive |");
    println!("|---|---|---|---|---|---|");
    for n in [1usize, 8, 64, 512] {
        let sinks: Vec<UdpSocket> = if nic {
            Vec::new()
        } else {
            (0..n)
                .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind sink"))
                .collect()
        };
        let addrs: Vec<SocketAddr> = if nic {
            (0..n)
                .map(|i| SocketAddr::from(([10, 233, 0, 2], 5000 + i as u16)))
                .collect()
        } else {
            sinks.iter().map(|s| s.local_addr().unwrap()).collect()
        };

        let naive_sock = UdpSocket::bind(if nic { "10.233.0.1:0" } else { "127.0.0.1:0" }).unwrap();
        naive_sock.set_nonblocking(true).unwrap();
        let naive = measure(
            |p| addrs.iter().filter(|a| naive_sock.send_to(p, a).is_ok()).count() as u64,
            n,
        );

        let mut results = vec![("naive sendto loop", naive)];
        let sockets = || StreamSockets::open(&opts, false, false).unwrap();
        let backends: Vec<(&str, Box<dyn DatagramSender>)> = vec![
            ("sendmmsg", Box::new(MmsgSender::new(sockets()).unwrap())),
            ("io_uring", Box::new(UringSender::new(sockets()).unwrap())),
        ];
        // What the sending shell hands the backend: the packet to every peer, in chunks,
        // then counted.
        let batch: Vec<Transmit<'_>> = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| Transmit {
                peer: PeerId::new(i as u32, 1),
                route: Route::Udp(*a),
                local: Local::Rtp,
                kind: Kind::Rtp,
                bytes: &PACKET,
            })
            .collect();
        for (name, mut b) in backends {
            let stats = Stats::new(n);
            let mut results_buf: Vec<SendResult> = vec![Ok(0); CHUNK];
            let r = measure(
                |_| {
                    let before = stats.datagrams.load(Relaxed);
                    for chunk in batch.chunks(CHUNK) {
                        let results = &mut results_buf[..chunk.len()];
                        b.send(chunk, results);
                        stats.account(chunk, results);
                    }
                    stats.datagrams.load(Relaxed) - before
                },
                n,
            );
            results.push((name, r));
        }
        for (name, (cpu, rate, accepted)) in &results {
            println!(
                "| {n} | {name} | {cpu:.2} | {:.0} | {accepted} | {:.2} |",
                rate,
                cpu / results[0].1 .0
            );
        }
        drop(sinks);
    }
    if let Some(ns) = ns {
        let _ = std::process::Command::new("ip").args(["netns", "del", &ns]).status();
    }
}
