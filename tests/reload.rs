//! SIGHUP restarts that must never stop the intercom: a restart with fixed ports
//! (`RTPMIC_BIND`) releases them before binding again, a failed restart goes back to the
//! running configuration the same way, a rotated SRTP key is detected and applied, and new
//! RTSP settings restart the RTSP server alone.

mod common;
#[path = "common/rtsp_client.rs"]
mod rtsp_client;

use std::net::UdpSocket;
use std::time::Duration;

use common::*;

/// Packets from a source other than `old_ssrc` (the restarted stream), up to `n`.
fn packets_of_a_new_stream(rx: &Receiver, old_ssrc: u32, n: usize) -> Vec<Rtp> {
    let mut out = Vec::new();
    while out.len() < n {
        let got = rx.collect(1, Duration::from_secs(5), Duration::from_secs(5));
        let Some(p) = got.into_iter().next() else {
            break;
        };
        if p.ssrc != old_ssrc {
            out.push(p);
        }
    }
    out
}

/// What a SIGHUP from one env file to another led to.
struct Reloaded {
    /// Up to 25 packets of the stream that followed (a new SSRC).
    after: Vec<Rtp>,
    still_running: bool,
    status: std::process::ExitStatus,
    log: String,
}

/// Runs rtpmic with `first` (plus the receiver as `RTPMIC_DEST`) until it streams, rewrites
/// the env file with `second`, sends SIGHUP, waits for a new stream, and stops it.
fn reload(name: &str, first: &[(&str, &str)], second: &[(&str, &str)]) -> Reloaded {
    let board = SimBoard::shared();
    let rx = Receiver::bind();
    let env = board.dir.path().join(name);
    let dest = rx.dest();
    let with_dest = |pairs: &[(&str, &str)]| {
        let mut all = vec![("RTPMIC_DEST", dest.as_str())];
        all.extend_from_slice(pairs);
        write_env(&env, &all);
    };
    with_dest(first);
    let mut child = run_with_env_file(&board, &env);
    let before = rx.collect(25, Duration::from_secs(10), Duration::from_secs(2));
    assert_eq!(before.len(), 25, "stream started");

    with_dest(second);
    signal(&child, libc::SIGHUP);
    let after = packets_of_a_new_stream(&rx, before[0].ssrc, 25);
    let still_running = child.try_wait().unwrap().is_none();
    let (status, log) = stop(&mut child);
    Reloaded {
        after,
        still_running,
        status,
        log,
    }
}

/// With `RTPMIC_BIND` on a fixed port, a SIGHUP that changes a restart key (the CNAME) must
/// release the old pipeline's sockets before the new one binds the same ports: the stream
/// comes back with a new SSRC from the same source port, and the process keeps running.
#[test]
fn a_restart_with_fixed_ports_releases_them_before_binding_again() {
    let bind = format!("127.0.0.1:{}", free_even_port());
    let r = reload(
        "bind.env",
        &[("RTPMIC_BIND", &bind)],
        &[("RTPMIC_BIND", &bind), ("RTPMIC_CNAME", "door-2")],
    );
    let log = &r.log;
    assert!(r.still_running, "rtpmic must keep running after the reload:\n{log}");
    assert_eq!(r.after.len(), 25, "the restarted stream flows:\n{log}");
    assert!(r.status.success(), "{log}");
    assert!(!log.contains("Address already in use"), "{log}");
    assert!(
        log.contains("reload: restarting the pipeline for RTPMIC_CNAME"),
        "{log}"
    );
}

/// A new configuration that cannot start (its bind port is taken) is refused after the old
/// pipeline has been released; the previous configuration then starts again on its own
/// fixed port, and the intercom keeps streaming.
#[test]
fn a_restart_that_cannot_bind_goes_back_to_the_running_configuration() {
    let bind = format!("127.0.0.1:{}", free_even_port());
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let r = reload(
        "rollback.env",
        &[("RTPMIC_BIND", &bind)],
        &[("RTPMIC_BIND", &taken_addr), ("RTPMIC_RTCP", "off")],
    );
    let log = &r.log;
    assert!(r.still_running, "rtpmic must keep running:\n{log}");
    assert_eq!(r.after.len(), 25, "the previous configuration streams again:\n{log}");
    assert!(r.status.success(), "{log}");
    assert!(
        log.contains("reload: cannot start with the new configuration") && log.contains("back to the previous one"),
        "{log}"
    );
    drop(taken);
}

/// Two SRTP keys (30 bytes, base64).
const KEY_1: &str = "9IcLa2ikhznyH0kITvN+NuwJoyTq27fd5L9rNKBA";
const KEY_2: &str = "X2GjQPdFC3yPOaLaxCX7lDqehQ23z4KxHA9IZYey";

/// Rotating `RTPMIC_SRTP_KEY` by SIGHUP restarts the stream with the new key: the SDP file
/// gets the new key, ffmpeg decodes the new stream from it, and neither key is ever logged.
#[test]
fn a_rotated_srtp_key_is_detected_and_applied() {
    let board = SimBoard::shared();
    let port = free_even_port();
    let dest = format!("127.0.0.1:{port}");
    let env = board.dir.path().join("srtp.env");
    let sdp_path = board.dir.path().join("stream.sdp");
    let sdp_file = sdp_path.to_str().unwrap();
    let write = |key: &str| {
        write_env(
            &env,
            &[
                ("RTPMIC_DEST", &dest),
                ("RTPMIC_CODEC", "pcma"),
                ("RTPMIC_SRTP", "AES_CM_128_HMAC_SHA1_80"),
                ("RTPMIC_SRTP_KEY", key),
                ("RTPMIC_SDP_FILE", sdp_file),
            ],
        )
    };
    write(KEY_1);
    // The receiver holds the port so no ICMP "port unreachable" disturbs the sender.
    let rx = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut child = run_with_env_file(&board, &env);
    let mut buf = [0u8; 2048];
    rx.recv(&mut buf).expect("the SRTP stream started");
    let first = std::fs::read_to_string(&sdp_path).unwrap();
    assert!(first.contains(&format!("inline:{KEY_1}")), "{first}");

    write(KEY_2);
    signal(&child, libc::SIGHUP);
    // The SDP file is rewritten when the new pipeline starts.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut text = first.clone();
    while std::time::Instant::now() < deadline && !text.contains(KEY_2) {
        rx.recv(&mut buf).expect("the stream goes on");
        text = std::fs::read_to_string(&sdp_path).unwrap_or_default();
    }
    drop(rx);
    assert!(
        text.contains(&format!("inline:{KEY_2}")),
        "the SDP file has the new key: {text}"
    );
    assert!(!text.contains(KEY_1), "{text}");
    let out = board.dir.path().join("decoded.raw");
    let mut ffmpeg = spawn_ffmpeg(&sdp_path, 8000, &out);
    finish_ffmpeg(&mut ffmpeg, Duration::from_secs(10));
    let (status, log) = stop(&mut child);
    assert!(status.success(), "{log}");
    assert!(
        log.contains("reload: restarting the pipeline for RTPMIC_SRTP_KEY"),
        "{log}"
    );
    assert!(
        !log.contains(KEY_1) && !log.contains(KEY_2),
        "a key reached the log:\n{log}"
    );
    let samples: Vec<i16> = std::fs::read(&out)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert!(
        samples.len() >= 8000,
        "ffmpeg decoded the new stream with the new key: {} samples",
        samples.len()
    );
    let level = rms_dbfs(&samples, 800);
    assert!(level > -25.0, "the test tone, not noise: {level:.1} dBFS");
}

/// A SIGHUP that changes the RTSP keys (path, user, password) restarts the RTSP server alone:
/// the push receiver's stream goes on with one SSRC and no gap; the client of the old
/// settings is told goodbye (its connection closes); the new path asks for the new
/// credentials and plays with them, the old path is gone; the counters of both servers add
/// up; the password is in no log line.
#[test]
fn new_rtsp_settings_restart_the_rtsp_server_alone() {
    use rtsp_client::{assert_no_gap, wait_until, Client, Transport, UdpRecorder};
    const PASSWORD: &str = "Door-Secret-4711";
    let board = SimBoard::shared();
    let push = UdpRecorder::bind();
    let env = board.dir.path().join("rtsp.env");
    let dest = push.addr().to_string();
    let listen: std::net::SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let listen_text = listen.to_string();
    write_env(&env, &[("RTPMIC_DEST", &dest), ("RTPMIC_RTSP_LISTEN", &listen_text)]);
    let mut child = run_with_env_file(&board, &env);
    assert!(push.wait_for(25, Duration::from_secs(10)), "the push stream started");

    let old = Client::play_session(listen, "/mic", Transport::Tcp);
    assert!(
        old.wait_for_packets(10, Duration::from_secs(5)),
        "the first client plays"
    );

    write_env(
        &env,
        &[
            ("RTPMIC_DEST", &dest),
            ("RTPMIC_RTSP_LISTEN", &listen_text),
            ("RTPMIC_RTSP_PATH", "/door"),
            ("RTPMIC_RTSP_USER", "installer"),
            ("RTPMIC_RTSP_PASSWORD", PASSWORD),
            ("RTPMIC_RTSP_AUTH", "basic"),
        ],
    );
    signal(&child, libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || old.closed_by_server()),
        "the old settings' client is told goodbye"
    );

    // The server of the new settings may still be starting: connect until it answers.
    let mut anonymous = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            anonymous = Client::connect(listen, "/door").ok().and_then(|mut c| {
                let r = c.describe().ok()?;
                Some(r.status)
            });
            anonymous.is_some()
        }),
        "the RTSP server is back"
    );
    assert_eq!(anonymous, Some(401), "the new settings ask for credentials");
    let mut gone = Client::connect(listen, "/mic").unwrap();
    gone.basic_auth("installer", PASSWORD);
    assert_eq!(gone.describe().unwrap().status, 404, "the old path is gone");
    let mut new = Client::connect(listen, "/door").unwrap();
    new.basic_auth("installer", PASSWORD);
    new.start(Transport::Udp).unwrap();
    assert!(new.wait_for_packets(10, Duration::from_secs(5)), "the new path plays");
    assert_eq!(new.packets()[0].ssrc, old.packets()[0].ssrc, "one stream, one SSRC");
    new.teardown().unwrap();

    let still_running = child.try_wait().unwrap().is_none();
    let (status, log) = stop(&mut child);
    let pushed = push.finish(Duration::from_millis(300));
    assert!(still_running, "rtpmic keeps running:\n{log}");
    assert!(status.success(), "{log}");
    assert_no_gap(&pushed, "push receiver across the RTSP restart");
    assert!(
        log.contains("RTSP: serving rtsp://") && log.contains("/door with the new settings"),
        "{log}"
    );
    assert!(
        !log.contains("restarting the pipeline"),
        "only the RTSP server restarts:\n{log}"
    );
    let last_rtsp_line = log.lines().rfind(|l| l.contains("rtsp: clients=")).unwrap_or_default();
    assert!(last_rtsp_line.contains(" sessions=2 "), "{log}");
    assert!(!log.contains(PASSWORD), "the password appears in the log:\n{log}");
}
