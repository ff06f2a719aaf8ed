//! The network side with real sockets: both sender backends, fan-out, refusing and vanishing
//! receivers on loopback, and unicast + multicast + DSCP across a veth link between two network
//! namespaces this test creates (and removes).

mod common;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn run_pcmu(board: &SimBoard, infile: &std::path::Path, dest: &str, keys: &[(&str, &str)], seconds: &str) -> String {
    let mut cmd = board.rtpmic(infile);
    cmd.args(["run", "--seconds", seconds])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_CODEC", "pcmu")
        .env("RTPMIC_DEST", dest)
        .stderr(Stdio::piped());
    for (k, v) in keys {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    log
}

#[test]
fn every_backend_and_thread_layout_sends_identical_streams() {
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &two_tone(48_000, 3.0));
    let mut streams = Vec::new();
    let layouts = [
        ("io_uring", "3", "capture | encode | send"),
        ("epoll", "3", "capture | encode | send"),
        ("io_uring", "2", "capture | encode+send"),
        ("epoll", "2", "capture | encode+send"),
        ("io_uring", "1", "capture+encode+send in one thread"),
        ("epoll", "1", "capture+encode+send in one thread"),
    ];
    for (backend, threads, layout) in layouts {
        let rx = Receiver::bind();
        let child = board
            .rtpmic(&infile)
            .args(["run", "--seconds", "1"])
            .env("RTPMIC_DEVICE", "simfile")
            .env("RTPMIC_SENDER", backend)
            .env("RTPMIC_THREADS", threads)
            .env("RTPMIC_SSRC", "0x1234")
            .env("RTPMIC_DEST", rx.dest())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pkts = rx.collect(1000, Duration::from_secs(10), Duration::from_millis(500));
        let out = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.contains(&format!("sender: {backend}; {layout}")), "{log}");
        assert_clean_stream(&pkts, 96, 960);
        streams.push(pkts);
    }
    let a = &streams[0];
    assert_eq!(a.len(), 50);
    for (b, (backend, threads, _)) in streams.iter().zip(layouts).skip(1) {
        assert_eq!(a.len(), b.len(), "{backend}, {threads} threads");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert_eq!(
                x.payload, y.payload,
                "payload {i} differs with {backend}, {threads} threads"
            );
            assert_eq!((x.ssrc, x.pt, x.marker), (y.ssrc, y.pt, y.marker));
        }
    }
}

#[test]
fn fan_out_to_32_receivers_delivers_every_packet() {
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &two_tone(8000, 11.0));
    let receivers: Vec<Receiver> = (0..32).map(|_| Receiver::bind()).collect();
    let dest: Vec<String> = receivers.iter().map(|r| r.dest()).collect();
    let collectors: Vec<_> = receivers
        .into_iter()
        .map(|r| std::thread::spawn(move || r.collect(10_000, Duration::from_secs(15), Duration::from_secs(1))))
        .collect();
    let log = run_pcmu(&board, &infile, &dest.join(","), &[("RTPMIC_SSRC", "0xfa0")], "10");
    for (i, c) in collectors.into_iter().enumerate() {
        // A port just freed by another test may still receive that test's stream.
        let pkts: Vec<Rtp> = c.join().unwrap().into_iter().filter(|p| p.ssrc == 0xfa0).collect();
        assert_eq!(pkts.len(), 500, "receiver {i} got {} of 500", pkts.len());
        assert_clean_stream(&pkts, 0, 160);
    }
    let summary = log.lines().find(|l| l.contains("destinations:")).unwrap_or_default();
    assert_eq!(summary.matches("datagrams=500 errors=0").count(), 32, "{summary}");
    // More than 8 destinations: a sender thread of its own, on io_uring under auto.
    assert!(log.contains("sender: io_uring; capture | encode | send"), "{log}");
}

#[test]
fn refusing_and_vanishing_receivers_do_not_disturb_the_others() {
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &two_tone(8000, 4.0));
    let good = Receiver::bind();
    // Refused and vanishing receivers live on 127.0.0.2 so that no other test's receiver (all
    // on 127.0.0.1) can pick up their ports and our packets. Port 9 (discard) has no listener:
    // ICMP port unreachable.
    let refused = "127.0.0.2:9";
    let vanishing = Receiver {
        socket: UdpSocket::bind("127.0.0.2:0").unwrap(),
    };
    let dest = format!("{refused},{},{}", vanishing.dest(), good.dest());
    let collector = std::thread::spawn(move || good.collect(10_000, Duration::from_secs(10), Duration::from_secs(1)));
    let vanisher = std::thread::spawn(move || {
        let first = vanishing.collect(20, Duration::from_secs(10), Duration::from_secs(1));
        drop(vanishing); // gone mid-stream
        first.len()
    });
    run_pcmu(&board, &infile, &dest, &[], "3");
    assert_eq!(vanisher.join().unwrap(), 20);
    let pkts = collector.join().unwrap();
    assert_eq!(pkts.len(), 150, "the good receiver gets every packet");
    assert_clean_stream(&pkts, 0, 160);
}

/// Two namespaces joined by veth; removed on drop.
struct Netns {
    a: String,
    b: String,
}

impl Netns {
    fn create(tag: &str) -> Netns {
        let id = std::process::id() % 10_000;
        let ns = Netns {
            a: format!("rtpmic-{tag}-a-{id}"),
            b: format!("rtpmic-{tag}-b-{id}"),
        };
        let (va, vb) = (format!("rma{id}"), format!("rmb{id}"));
        for cmd in [
            format!("ip netns add {}", ns.a),
            format!("ip netns add {}", ns.b),
            format!(
                "ip link add {va} netns {} type veth peer name {vb} netns {}",
                ns.a, ns.b
            ),
            format!("ip -n {} addr add 10.231.0.1/24 dev {va}", ns.a),
            format!("ip -n {} addr add 10.231.0.2/24 dev {vb}", ns.b),
            format!("ip -n {} link set {va} up", ns.a),
            format!("ip -n {} link set {vb} up", ns.b),
            format!("ip -n {} link set lo up", ns.a),
            format!("ip -n {} link set lo up", ns.b),
            format!("ip -n {} route add 224.0.0.0/4 dev {va}", ns.a),
            format!("ip -n {} route add 224.0.0.0/4 dev {vb}", ns.b),
        ] {
            sh(&cmd);
        }
        ns
    }

    /// Runs `f` on a thread that lives inside namespace `name` (setns is per thread).
    fn in_ns<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{name}");
        std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).unwrap();
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.a]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.b]).status();
    }
}

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
}

#[test]
fn unicast_and_multicast_cross_a_veth_marked_dscp_46() {
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &two_tone(8000, 5.0));
    let ns = Netns::create("net");
    let id = std::process::id() % 10_000;
    let (va, vb) = (format!("rma{id}"), format!("rmb{id}"));
    // tshark in B sees what crosses the link: the DSCP of every UDP packet.
    let tshark = start_tshark(
        &["ip", "netns", "exec", &ns.b],
        &[
            "-l",
            "-n",
            "-i",
            &vb,
            "-f",
            "udp",
            "-T",
            "fields",
            "-e",
            "ip.dsfield.dscp",
            "-e",
            "ip.dst",
        ],
    );
    let vb2 = vb.clone();
    let receivers = Netns::in_ns(&ns.b, move || {
        let uni = UdpSocket::bind("10.231.0.2:5004").unwrap();
        let multi = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        multi.set_reuse_address(true).unwrap();
        multi
            .bind(&"0.0.0.0:5006".parse::<std::net::SocketAddr>().unwrap().into())
            .unwrap();
        let index = nix::net::if_::if_nametoindex(vb2.as_str()).unwrap();
        multi
            .join_multicast_v4_n(
                &"239.255.7.7".parse().unwrap(),
                &socket2::InterfaceIndexOrAddress::Index(index),
            )
            .unwrap();
        let multi: UdpSocket = multi.into();
        let u = std::thread::spawn(move || {
            Receiver { socket: uni }.collect(10_000, Duration::from_secs(15), Duration::from_secs(1))
        });
        let m = Receiver { socket: multi }.collect(10_000, Duration::from_secs(15), Duration::from_secs(1));
        (u.join().unwrap(), m)
    });
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.a, RTPMIC, "run", "--seconds", "3"]);
    board.apply_env(&mut cmd, &infile);
    let out = cmd
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_CODEC", "pcmu")
        .env("RTPMIC_DEST", "10.231.0.2:5004,239.255.7.7:5006")
        .env("RTPMIC_MULTICAST_IF", &va)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (uni, multi) = receivers.join().unwrap();
    assert_eq!(uni.len(), 150, "unicast receiver in the other namespace");
    assert_clean_stream(&uni, 0, 160);
    assert_eq!(multi.len(), 150, "multicast receiver that joined the group");
    assert_clean_stream(&multi, 0, 160);
    let text = stop_tshark(tshark);
    let rows: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('\t')).collect();
    assert!(rows.len() >= 300, "tshark saw {} packets", rows.len());
    assert!(
        rows.iter().all(|(dscp, _)| *dscp == "46"),
        "every packet is DSCP 46: {:?}",
        &rows[..5.min(rows.len())]
    );
    assert!(rows.iter().any(|(_, dst)| *dst == "239.255.7.7") && rows.iter().any(|(_, dst)| *dst == "10.231.0.2"));
}

/// SAP (RFC 2974): ffmpeg in the other namespace finds the stream with nothing but
/// `sap://239.255.255.255` and decodes it; a listener sees announcements with our SDP and the
/// deletion sent on shutdown.
#[test]
fn ffmpeg_finds_the_stream_by_sap_and_the_announcement_is_deleted_at_exit() {
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &two_tone(48_000, 12.0));
    let ns = Netns::create("sap");
    let id = std::process::id() % 10_000;
    let vb = format!("rmb{id}");
    let listener = Netns::in_ns(&ns.b, move || {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        s.set_reuse_address(true).unwrap();
        s.bind(&"0.0.0.0:9875".parse::<std::net::SocketAddr>().unwrap().into())
            .unwrap();
        let index = nix::net::if_::if_nametoindex(vb.as_str()).unwrap();
        s.join_multicast_v4_n(
            &"239.255.255.255".parse().unwrap(),
            &socket2::InterfaceIndexOrAddress::Index(index),
        )
        .unwrap();
        let s: UdpSocket = s.into();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = s.recv(&mut buf) {
            seen.push(buf[..n].to_vec());
            if buf[0] & 0x04 != 0 {
                break; // the deletion
            }
        }
        seen
    });
    let out = board.dir.path().join("sap.raw");
    let mut ffmpeg = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.b,
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            "sap://239.255.255.255",
        ])
        .args(["-t", "2", "-ac", "1", "-f", "s16le", "-y"])
        .arg(&out)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.a, RTPMIC, "run", "--seconds", "9"]);
    board.apply_env(&mut cmd, &infile);
    let run = cmd
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_OPUS_APPLICATION", "lowdelay")
        .env("RTPMIC_DEST", "239.255.7.9:5008")
        .env("RTPMIC_SAP", "on")
        .env("RTPMIC_SAP_INTERVAL_S", "5")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let done = wait_for(&mut ffmpeg, Duration::from_secs(5));
    if done.is_none() {
        let _ = ffmpeg.kill();
    }
    assert!(
        done.is_some_and(|s| s.success()),
        "ffmpeg did not play the SAP-announced stream"
    );
    let bytes = std::fs::read(&out).unwrap();
    let decoded: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let snr = aligned_snr(&two_tone(48_000, 12.0), &decoded, 4800, 1200 + 480);
    println!("ffmpeg via SAP: SNR {snr:.1} dB");
    assert!(snr >= 20.0, "SNR {snr:.1} dB");
    let seen = listener.join().unwrap();
    assert!(seen.len() >= 2, "announcements and a deletion: {} packets", seen.len());
    let (last, announcements) = seen.split_last().unwrap();
    assert_eq!(last[0], 0x24, "SAP v1, IPv4, deletion");
    for a in announcements {
        assert_eq!(a[0], 0x20, "SAP v1, IPv4, announcement");
        let text = String::from_utf8_lossy(&a[8..]);
        assert!(
            text.starts_with("application/sdp\0v=0") && text.contains("c=IN IP4 239.255.7.9/16"),
            "{text}"
        );
    }
}

/// nftables in namespace A drops `percent` % of the UDP packets to port 5004 on the way out,
/// at random, and counts what it dropped and what it let through.
fn drop_rtp_randomly(ns: &str, percent: u32) {
    sh(&format!("ip netns exec {ns} nft add table inet rtpmic_loss"));
    sh(&format!(
        "ip netns exec {ns} nft 'add chain inet rtpmic_loss out {{ type filter hook output priority 0 ; }}'"
    ));
    sh(&format!(
        "ip netns exec {ns} nft add rule inet rtpmic_loss out udp dport 5004 numgen random mod 100 '<' {percent} counter drop"
    ));
    sh(&format!(
        "ip netns exec {ns} nft add rule inet rtpmic_loss out udp dport 5004 counter accept"
    ));
}

/// (dropped, passed) from the counters of `drop_rtp_randomly`.
fn nft_counts(ns: &str) -> (u64, u64) {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "nft",
            "list",
            "chain",
            "inet",
            "rtpmic_loss",
            "out",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let count = |verdict: &str| -> u64 {
        text.lines()
            .find(|l| l.contains("counter") && l.trim_end().ends_with(verdict))
            .and_then(|l| {
                l.split_whitespace()
                    .skip_while(|w| *w != "packets")
                    .nth(1)
                    .map(str::to_string)
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {verdict} counter in {text}"))
    };
    (count("drop"), count("accept"))
}

/// A GStreamer receiver (rtpbin) behind 5 % random loss sends receiver reports; the loss
/// rtpmic reports for it matches what nftables dropped within 2 percentage points.
#[test]
fn receiver_reported_loss_matches_the_nftables_counter() {
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &two_tone(8000, 16.0));
    let ns = Netns::create("loss");
    drop_rtp_randomly(&ns.a, 5);
    let caps = "application/x-rtp,media=audio,clock-rate=8000,encoding-name=PCMU,payload=0";
    let pipeline = format!(
        "rtpbin name=rb udpsrc port=5004 caps={caps} ! rb.recv_rtp_sink_0 udpsrc port=5005 ! rb.recv_rtcp_sink_0 \
         rb.send_rtcp_src_0 ! udpsink host=10.231.0.1 port=6001 bind-port=5005 sync=false async=false \
         rb. ! rtppcmudepay ! fakesink"
    );
    let mut gst = Command::new("ip")
        .args(["netns", "exec", &ns.b, "gst-launch-1.0", "-q"])
        .args(pipeline.split_whitespace())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.a, RTPMIC, "run", "--seconds", "13"]);
    board.apply_env(&mut cmd, &infile);
    let out = cmd
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_CODEC", "pcmu")
        .env("RTPMIC_BIND", "10.231.0.1:6000")
        .env("RTPMIC_STATS_INTERVAL_S", "1")
        .env("RTPMIC_DEST", "10.231.0.2:5004")
        .output()
        .unwrap();
    let _ = gst.kill();
    let _ = gst.wait();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let (dropped, passed) = nft_counts(&ns.a);
    let nft_ratio = dropped as f64 / (dropped + passed) as f64;
    // The newest report: cumulative loss over the packets the receiver expected by then.
    let rr = log
        .lines()
        .rfind(|l| l.contains("rtcp_in:") && l.contains("[ssrc="))
        .expect("GStreamer's receiver reports");
    let num = |line: &str, key: &str| -> f64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.trim_end_matches(']').parse().ok())
            .unwrap_or_else(|| panic!("{key} in {line}"))
    };
    let cum = num(rr, "cumulative_lost=");
    let sent = num(rr, "expected=");
    let reported = cum / sent;
    println!(
        "nftables dropped {dropped} of {} ({:.2} %), receiver reported {cum} of {sent} ({:.2} %)",
        dropped + passed,
        nft_ratio * 100.0,
        reported * 100.0
    );
    assert!(dropped > 0, "nftables dropped nothing");
    assert!(
        (reported - nft_ratio).abs() <= 0.02,
        "reported {:.2} % vs nftables {:.2} %",
        reported * 100.0,
        nft_ratio * 100.0
    );
}

/// `rtpmic probe` behind the same 5 % loss, fed by a GStreamer sender, counts the same loss as
/// tshark's RTP analysis of the packets that reached it.
#[test]
fn probe_counts_the_same_loss_as_tshark() {
    let ns = Netns::create("probe");
    drop_rtp_randomly(&ns.a, 5);
    let id = std::process::id() % 10_000;
    let vb = format!("rmb{id}");
    let tshark = start_tshark(
        &["ip", "netns", "exec", &ns.b],
        &[
            "-q",
            "-n",
            "-i",
            &vb,
            "-f",
            "udp port 5004",
            "-d",
            "udp.port==5004,rtp",
            "-z",
            "rtp,streams",
        ],
    );
    let probe = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.b,
            RTPMIC,
            "probe",
            "10.231.0.2:5004",
            "--seconds",
            "12",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The probe must be listening before the sender starts, and its 12 s must outlast the
    // sender's start-up and its 6 s of packets, for both to count the same packets.
    let t0 = std::time::Instant::now();
    while !udp_port_bound_by(probe.id(), 5004) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the probe did not bind its port"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let gst = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.a,
            "gst-launch-1.0",
            "-q",
            "audiotestsrc",
            "is-live=true",
            "num-buffers=300",
        ])
        .args([
            "samplesperbuffer=160",
            "!",
            "audio/x-raw,rate=8000,channels=1",
            "!",
            "mulawenc",
            "!",
            "rtppcmupay",
        ])
        .args(["!", "udpsink", "host=10.231.0.2", "port=5004"])
        .status()
        .unwrap();
    assert!(gst.success());
    let out = probe.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{summary}");
    let streams = stop_tshark(tshark);
    let row = rtp_stream_row(&streams, "g711U");
    assert!(row.len() >= 10, "tshark rtp,streams:\n{streams}");
    let tshark_lost: u64 = row[9].parse().unwrap();
    let tshark_pkts: u64 = row[8].parse().unwrap();
    let field = |k: &str| -> u64 {
        summary
            .split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    println!("probe: {summary}tshark: {tshark_pkts} packets, {tshark_lost} lost");
    assert!(tshark_lost > 0, "nftables dropped nothing");
    // The probe believes a source only after two packets in sequence (RFC 3550 A.1
    // probation): when a packet right after the first one is lost, the first packet and that
    // loss lie before the source's start, where tshark counts them. Everything after matches
    // exactly: the same shortfall in packets received and in packets lost.
    let (received, lost) = (field("received="), field("lost="));
    let before_start = tshark_pkts.checked_sub(received).expect("never more than tshark");
    assert!(before_start <= 2, "probe {received} vs tshark {tshark_pkts} packets");
    assert_eq!(
        lost + before_start,
        tshark_lost,
        "probe {lost} vs tshark {tshark_lost} lost"
    );
}

/// IPv6 destinations and host names end to end: `[::1]` directly, and `localhost`, which the
/// resolver turns into 127.0.0.1 or ::1 (whichever the system prefers; both listen here).
#[test]
fn ipv6_and_host_name_destinations_receive_the_stream() {
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &two_tone(8000, 3.0));
    let v6 = Receiver {
        socket: UdpSocket::bind("[::1]:0").unwrap(),
    };
    // One port on both loopbacks for the name.
    let (named4, named6) = loop {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if let Ok(b) = UdpSocket::bind(("::1", port)) {
            break (Receiver { socket: a }, Receiver { socket: b });
        }
    };
    let dest = format!("{},localhost:{}", v6.dest(), named4.port());
    let c6 = std::thread::spawn(move || v6.collect(1000, Duration::from_secs(10), Duration::from_secs(1)));
    let c4n = std::thread::spawn(move || named4.collect(1000, Duration::from_secs(3), Duration::from_secs(1)));
    let c6n = std::thread::spawn(move || named6.collect(1000, Duration::from_secs(3), Duration::from_secs(1)));
    let log = run_pcmu(&board, &infile, &dest, &[], "1");
    let pkts = c6.join().unwrap();
    assert_eq!(pkts.len(), 50, "IPv6 receiver");
    assert_clean_stream(&pkts, 0, 160);
    let (n4, n6) = (c4n.join().unwrap(), c6n.join().unwrap());
    let named = if n4.is_empty() { n6 } else { n4 };
    assert_eq!(
        named.len(),
        50,
        "the name resolved to one loopback, which got the whole stream\n{log}"
    );
    assert_clean_stream(&named, 0, 160);
}

/// The network goes away (the link is set down for a second) and comes back: sends fail and
/// are counted, capture and encoding go on, and the stream resumes at once when the link is
/// up again, with the sequence numbers showing what was lost.
#[test]
fn link_down_and_up_the_stream_resumes() {
    let va = format!("rma{}", std::process::id() % 10_000);
    outage_and_recovery("link", &format!("link set {va} down"), &format!("link set {va} up"));
}

/// The same with the route to the receiver removed and restored.
#[test]
fn route_removed_and_restored_the_stream_resumes() {
    let va = format!("rma{}", std::process::id() % 10_000);
    outage_and_recovery(
        "route",
        "route del 10.231.0.0/24",
        &format!("route add 10.231.0.0/24 dev {va}"),
    );
}

/// Streams from namespace A to B, runs `ip -n A {down}` for a second, then `ip -n A {up}`,
/// and checks the stream came back at once, losses showing in the sequence numbers and the
/// failed sends counted.
fn outage_and_recovery(tag: &str, down: &str, up: &str) {
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &two_tone(8000, 10.0));
    let ns = Netns::create(tag);
    let (tx_first, rx_first) = std::sync::mpsc::channel::<()>();
    let receiver = Netns::in_ns(&ns.b, move || {
        let r = Receiver {
            socket: UdpSocket::bind("10.231.0.2:5004").unwrap(),
        };
        stamp_arrivals(&r.socket);
        let before = r.collect(25, Duration::from_secs(10), Duration::from_secs(2));
        tx_first.send(()).unwrap();
        // Everything until the stream ends, with arrival times (the kernel's stamps: this
        // thread may run late on a busy machine).
        let mut after = Vec::new();
        r.socket.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 2048];
        while let Some((n, at)) = recv_stamped(&r.socket, &mut buf) {
            let p = rtp_types::RtpPacket::parse(&buf[..n]).unwrap();
            after.push((at, p.sequence_number()));
        }
        (before, after)
    });
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.a, RTPMIC, "run", "--seconds", "6"]);
    board.apply_env(&mut cmd, &infile);
    let child = cmd
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_CODEC", "pcmu")
        .env("RTPMIC_DEST", "10.231.0.2:5004")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    rx_first.recv().unwrap();
    sh(&format!("ip -n {} {down}", ns.a));
    std::thread::sleep(Duration::from_secs(1)); // the fault: one second without a network
    sh(&format!("ip -n {} {up}", ns.a));
    let up_at = std::time::SystemTime::now();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let (before, after) = receiver.join().unwrap();
    assert_eq!(before.len(), 25);
    let resumed = after.iter().find(|(t, _)| *t >= up_at).expect("the stream came back");
    let delay = resumed.0.duration_since(up_at).unwrap_or_default();
    println!("first packet {delay:?} after the link came back");
    assert!(delay < Duration::from_millis(300), "resumed {delay:?} after link up");
    // Sequence numbers keep counting through the outage: the receiver sees what was lost.
    let seqs: Vec<u16> = before.iter().map(|p| p.seq).chain(after.iter().map(|a| a.1)).collect();
    let lost: u32 = seqs
        .windows(2)
        .map(|w| u32::from(w[1].wrapping_sub(w[0]).wrapping_sub(1)))
        .sum();
    assert!(lost >= 30, "about 50 packets fell in the outage, saw {lost}");
    let last = log.lines().rfind(|l| l.contains("stopped:")).unwrap_or_default();
    assert!(
        !last.contains("send_unreachable=0 ") || !last.contains("send_errors=0 "),
        "failed sends are counted: {last}"
    );
}
