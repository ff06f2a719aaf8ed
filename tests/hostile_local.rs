//! A local attacker and an unprivileged operator, through the real process (these tests run as
//! root; the attacker is `nobody`, via `setpriv`):
//!
//! * `RTPMIC_SDP_FILE` in a directory others can write: no link is followed, no file of
//!   someone else is written or exposed, nothing but a regular file is replaced, the SRTP key
//!   is never readable by another user, and no temporary file is left behind.
//! * An unprivileged run under a small `RLIMIT_MEMLOCK` streams, and says once why memory
//!   is not locked.
//! * libjack's complaints about an absent JACK server (board/sim) are not printed per retry.
//!
//! The directories are world-writable but not sticky, so the kernel's `fs.protected_symlinks`
//! and `fs.protected_regular` (which only guard sticky directories) play no part: what is
//! tested is rtpmic's own care.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A fixed SRTP key (30 bytes, base64) to look for where it must not be.
const KEY: &str = "9IcLa2ikhznyH0kITvN+NuwJoyTq27fd5L9rNKBA";

/// A fresh directory under /tmp with `mode` (e.g. 0o777: anyone may create and delete
/// entries).
fn dir_with_mode(mode: u32) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("rtpmic-hostile-")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(mode)).unwrap();
    d
}

/// `program args…` run as the local user `nobody:nogroup` with no supplementary groups.
fn as_nobody(program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", program]);
    c
}

/// `rtpmic run` for one second of board/sim's unpaced `simfast` PCM (no jackd needed) with
/// `keys`, its umask set to `umask`; returns when it has exited.
fn run_rtpmic(keys: &[(&str, &str)], umask: libc::mode_t) -> Output {
    let mut c = Command::new(RTPMIC);
    one_second_of_simfast(&mut c);
    for (k, v) in keys {
        c.env(k, v);
    }
    // SAFETY: umask is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(move || {
            libc::umask(umask);
            Ok(())
        });
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "rtpmic: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Makes `c` (rtpmic, or a wrapper whose last argument is rtpmic) `run` for one second of
/// board/sim's unpaced `simfast` PCM to a free local port, none of the caller's `RTPMIC_*`
/// keys inherited, logging to stderr without real-time priority.
fn one_second_of_simfast(c: &mut Command) {
    for (k, _) in std::env::vars() {
        if k.starts_with("RTPMIC_") {
            c.env_remove(k);
        }
    }
    c.args(["run", "--seconds", "1", "--no-drop"])
        .env("ALSA_CONFIG_PATH", alsa_config_path())
        .env("SIM_INFILE", "/dev/zero")
        .env("RTPMIC_DEVICE", "simfast")
        .env("RTPMIC_DEST", format!("127.0.0.1:{}", free_even_port()))
        .env("RTPMIC_LOG_TARGET", "stderr")
        .env("RTPMIC_RT_PRIORITY", "0")
        .stdin(Stdio::null());
}

fn log_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Names in `dir` other than `keep`.
fn strays(dir: &Path, keep: &[&str]) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

/// The old fixed temporary name (`PATH.sdp.tmp` for `PATH.sdp`) is a symlink to a root-only
/// file: that file keeps its content and its mode 0600; the SDP lands at the path.
#[test]
fn sdp_file_a_planted_symlink_is_not_followed() {
    let private = dir_with_mode(0o700);
    let victim = private.path().join("shadow");
    fs::write(&victim, "root only\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    let open = dir_with_mode(0o777);
    let path = open.path().join("stream.sdp");
    let planted = as_nobody("ln")
        .arg("-s")
        .arg(&victim)
        .arg(open.path().join("stream.sdp.tmp"))
        .status()
        .unwrap();
    assert!(planted.success());

    let out = run_rtpmic(&[("RTPMIC_SDP_FILE", path.to_str().unwrap())], 0o022);

    assert_eq!(fs::read_to_string(&victim).unwrap(), "root only\n", "{}", log_of(&out));
    assert_eq!(mode_of(&victim), 0o600, "the victim's mode");
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_file(), "the SDP file is a regular file");
    assert_eq!(meta.uid(), 0);
    assert!(fs::read_to_string(&path).unwrap().starts_with("v=0\r\n"));
    assert_eq!(
        strays(open.path(), &["stream.sdp", "stream.sdp.tmp"]),
        Vec::<String>::new()
    );
}

/// A local user creates the old fixed temporary name first and keeps it open: whatever they
/// read through that descriptor, and the file left at the path, never shows them the key.
#[test]
fn sdp_file_a_pre_created_temp_file_does_not_leak_the_srtp_key() {
    let open = dir_with_mode(0o777);
    let path = open.path().join("stream.sdp");
    let tmp = open.path().join("stream.sdp.tmp");
    let ready = open.path().join("ready");
    let done = open.path().join("done");
    // Creates the temp file world-writable, holds it open, and when told, prints what it
    // holds through the descriptor opened before rtpmic ran.
    let attacker = as_nobody("sh")
        .args([
            "-c",
            r#"umask 0; : > "$1"; exec 3< "$1"; : > "$2"
               while [ ! -e "$3" ]; do sleep 0.02; done
               cat <&3"#,
            "sh",
        ])
        .args([&tmp, &ready, &done])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !ready.exists() {
        assert!(t0.elapsed() < Duration::from_secs(5), "the attacker did not start");
        std::thread::sleep(Duration::from_millis(10));
    }

    let out = run_rtpmic(
        &[
            ("RTPMIC_SDP_FILE", path.to_str().unwrap()),
            ("RTPMIC_SRTP", "AES_CM_128_HMAC_SHA1_80"),
            ("RTPMIC_SRTP_KEY", KEY),
        ],
        0o022,
    );
    fs::write(&done, "").unwrap();
    let seen = attacker.wait_with_output().unwrap();
    let log = log_of(&out);

    assert!(
        !String::from_utf8_lossy(&seen.stdout).contains(KEY),
        "the attacker read the key through the pre-created temp file"
    );
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(
        (meta.uid(), mode_of(&path)),
        (0, 0o600),
        "owner and mode of the SDP file"
    );
    assert!(fs::read_to_string(&path).unwrap().contains(KEY), "{log}");
    let read = as_nobody("cat").arg(&path).output().unwrap();
    assert!(!read.status.success() && !String::from_utf8_lossy(&read.stdout).contains(KEY));
    assert!(!log.contains(KEY), "the key never reaches the log");
    let left = strays(open.path(), &["stream.sdp", "stream.sdp.tmp", "ready", "done"]);
    assert_eq!(left, Vec::<String>::new());
}

/// A device node, a FIFO, a symlink or a directory at RTPMIC_SDP_FILE is left as it is and
/// the warning names the key and what is there.
#[test]
fn sdp_file_anything_but_a_regular_file_is_refused() {
    let dir = dir_with_mode(0o755);
    let target = dir.path().join("target.sdp");
    fs::write(&target, "kept\n").unwrap();
    type Make = fn(&Path, &Path);
    let cases: [(&str, Make, &str); 4] = [
        (
            "device",
            |p, _| {
                assert!(Command::new("mknod")
                    .arg(p)
                    .args(["c", "1", "3"])
                    .status()
                    .unwrap()
                    .success())
            },
            "character device",
        ),
        (
            "fifo",
            |p, _| assert!(Command::new("mkfifo").arg(p).status().unwrap().success()),
            "FIFO",
        ),
        (
            "symlink",
            |p, t| std::os::unix::fs::symlink(t, p).unwrap(),
            "symbolic link",
        ),
        ("dir", |p, _| fs::create_dir(p).unwrap(), "directory"),
    ];
    for (name, make, what) in cases {
        let path = dir.path().join(name);
        make(&path, &target);
        let before = fs::symlink_metadata(&path).unwrap();
        let out = run_rtpmic(&[("RTPMIC_SDP_FILE", path.to_str().unwrap())], 0o022);
        let log = log_of(&out);
        let after = fs::symlink_metadata(&path).unwrap();
        assert_eq!(
            (after.file_type(), after.ino()),
            (before.file_type(), before.ino()),
            "{name}: replaced\n{log}"
        );
        let line = log
            .lines()
            .find(|l| l.contains("RTPMIC_SDP_FILE="))
            .unwrap_or_else(|| panic!("{name}: no warning\n{log}"));
        assert!(line.contains("WARN") && line.contains(what), "{name}: {line}");
    }
    assert_eq!(fs::read_to_string(&target).unwrap(), "kept\n");
    let left = strays(dir.path(), &["target.sdp", "device", "fifo", "symlink", "dir"]);
    assert_eq!(left, Vec::<String>::new(), "temporary files left behind");
}

/// A write that fails half-way (the file-size limit) leaves no temporary file and no SDP.
#[test]
fn sdp_file_a_failed_write_leaves_nothing_behind() {
    let dir = dir_with_mode(0o755);
    let path = dir.path().join("stream.sdp");
    let mut c = Command::new("prlimit");
    c.arg("--fsize=100").arg(RTPMIC);
    one_second_of_simfast(&mut c);
    c.env("RTPMIC_SDP_FILE", &path);
    // SAFETY: signal() is async-signal-safe. An ignored SIGXFSZ stays ignored across exec, so
    // the oversized write fails with EFBIG instead of killing the process.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let out = c.output().unwrap();
    let log = log_of(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("RTPMIC_SDP_FILE=")),
        "{log}"
    );
    assert_eq!(strays(dir.path(), &[]), Vec::<String>::new(), "{log}");
}

/// The ordinary case: the file's mode is 0600 with a key and 0644 without, narrowed by the
/// umask (rtpmic.service's UMask=0077 makes both 0600); lines end in CRLF (RFC 8866 §5).
#[test]
fn sdp_file_modes_follow_the_key_and_the_umask() {
    let dir = dir_with_mode(0o755);
    let srtp = [("RTPMIC_SRTP", "AES_CM_128_HMAC_SHA1_80"), ("RTPMIC_SRTP_KEY", KEY)];
    for (name, with_key, umask, want) in [
        ("plain-022.sdp", false, 0o022, 0o644),
        ("srtp-022.sdp", true, 0o022, 0o600),
        ("plain-077.sdp", false, 0o077, 0o600),
        ("srtp-000.sdp", true, 0o000, 0o600),
    ] {
        let path = dir.path().join(name);
        let mut keys = vec![("RTPMIC_SDP_FILE", path.to_str().unwrap())];
        if with_key {
            keys.extend_from_slice(&srtp);
        }
        let out = run_rtpmic(&keys, umask);
        let log = log_of(&out);
        assert_eq!(mode_of(&path), want, "{name}\n{log}");
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("v=0\r\n") && text.ends_with("a=sendonly\r\n"),
            "{text:?}"
        );
        assert_eq!(text.matches('\n').count(), text.matches("\r\n").count(), "{text:?}");
        assert_eq!(text.contains(KEY), with_key);
        assert!(log.contains(&format!("SDP written to {}", path.display())), "{log}");
    }
    let names = ["plain-022.sdp", "srtp-022.sdp", "plain-077.sdp", "srtp-000.sdp"];
    assert_eq!(strays(dir.path(), &names), Vec::<String>::new());
}

/// `rtpmic sdp` prints CRLF lines too.
#[test]
fn sdp_command_prints_crlf_lines() {
    let out = Command::new(RTPMIC)
        .arg("sdp")
        .env("RTPMIC_DEST", "127.0.0.1:5004")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("v=0\r\n") && text.ends_with("\r\n"), "{text:?}");
    assert_eq!(text.matches('\n').count(), text.matches("\r\n").count(), "{text:?}");
}

/// RLIMIT_MEMLOCK's hard limit in bytes (u64::MAX for unlimited).
fn memlock_hard_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) }, 0);
    r.rlim_max
}

/// As a normal user (no CAP_IPC_LOCK) under an 8 MiB RLIMIT_MEMLOCK (the usual default) with
/// the default RTPMIC_RT_PRIORITY, rtpmic does not lock its memory, streams every packet,
/// and warns once, naming the limit and the fix. Also tried at 32 MiB where this process may
/// raise the limit: there `mlockall` itself succeeds and every later mapping fails.
#[test]
fn an_unprivileged_run_under_a_small_memlock_limit_streams_and_says_why_once() {
    let dir = dir_with_mode(0o755);
    let infile = dir.path().join("tone.raw");
    let bytes: Vec<u8> = two_tone(48_000, 3.0).iter().flat_map(|s| s.to_le_bytes()).collect();
    fs::write(&infile, bytes).unwrap();
    fs::set_permissions(&infile, fs::Permissions::from_mode(0o644)).unwrap();
    let mut limits = vec![(8u64 << 20).min(memlock_hard_limit())];
    let may_raise = Command::new("prlimit")
        .args(["--memlock=33554432", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if may_raise {
        limits.push(32 << 20);
    } else {
        println!("RLIMIT_MEMLOCK cannot be raised here: only {} bytes tried", limits[0]);
    }
    for limit in limits {
        let rx = Receiver::bind();
        let mut c = Command::new("prlimit");
        c.arg(format!("--memlock={limit}"))
            .args(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", RTPMIC])
            .args(["run", "--seconds", "3", "--no-drop"]);
        for (k, _) in std::env::vars() {
            if k.starts_with("RTPMIC_") {
                c.env_remove(k);
            }
        }
        let mut child = c
            .env("ALSA_CONFIG_PATH", alsa_config_path())
            .env("SIM_INFILE", &infile)
            .env("RTPMIC_DEVICE", "simfast")
            .env("RTPMIC_DEST", rx.dest())
            .env("RTPMIC_LOG_TARGET", "stderr")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
        let pkts = rx.collect(150, Duration::from_secs(10), Duration::from_secs(2));
        if wait_for(&mut child, Duration::from_secs(10)).is_none() {
            // SAFETY: signalling our own child (prlimit execs setpriv execs rtpmic: same pid).
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
        let log = reader.join().unwrap();
        assert_eq!(pkts.len(), 150, "RLIMIT_MEMLOCK={limit}: packets received\n{log}");
        let warnings: Vec<&str> = log.lines().filter(|l| l.contains("RLIMIT_MEMLOCK")).collect();
        assert_eq!(warnings.len(), 1, "RLIMIT_MEMLOCK={limit}: one warning\n{log}");
        assert!(
            warnings[0].contains("WARN")
                && warnings[0].contains("LimitMEMLOCK=infinity")
                && warnings[0].contains(&format!("{} MiB", limit >> 20)),
            "{}",
            warnings[0]
        );
        assert!(!log.contains("WARN device_error"), "{log}");
    }
}

/// board/sim with its JACK server gone: libjack's complaints ("Cannot connect to server
/// socket …", "jack server is not running …") are folded into rtpmic's device_error line, not
/// printed loose at every retry.
#[test]
fn libjack_messages_are_not_printed_at_every_retry() {
    let dir = dir_with_mode(0o755);
    let mut c = Command::new(RTPMIC);
    for (k, _) in std::env::vars() {
        if k.starts_with("RTPMIC_") {
            c.env_remove(k);
        }
    }
    let mut child = c
        .arg("run")
        .env("ALSA_CONFIG_PATH", alsa_config_path())
        .env("JACK_DEFAULT_SERVER", format!("rtpmic-absent-{}", std::process::id()))
        .env("SIM_INFILE", dir.path().join("none.raw"))
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_DEST", format!("127.0.0.1:{}", free_even_port()))
        .env("RTPMIC_LOG_TARGET", "stderr")
        .env("RTPMIC_RT_PRIORITY", "0")
        .env("RTPMIC_STATS_INTERVAL_S", "1")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Attempts at 0, 0.1, 0.3, 0.7, 1.5 s …; the first loads libjack, whose lines reach
    // stderr that once. Read until the device_error warning is out and a stats line counts
    // three failed attempts, however long a busy machine takes to get there.
    let mut log = String::new();
    let mut warned = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut lines = std::io::BufRead::lines(stderr).map_while(Result::ok);
    for line in lines.by_ref() {
        log.push_str(&line);
        log.push('\n');
        warned |= line.contains("WARN") && line.contains("device_error");
        let attempts = line
            .contains(" stats: ")
            .then(|| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix("device_errors=")?.parse::<u64>().ok())
            })
            .flatten()
            .unwrap_or(0);
        if (warned && attempts >= 3) || Instant::now() > deadline {
            break;
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    for line in lines {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(child.wait().unwrap().success(), "{log}");
    let loose = log
        .lines()
        .filter(|l| l.starts_with("Cannot connect to server socket"))
        .count();
    assert!(loose <= 1, "{loose} loose libjack lines\n{log}");
    let line = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("device_error"))
        .unwrap_or_else(|| panic!("no device_error line\n{log}"));
    assert!(line.contains("jack server is not running"), "{line}");
    assert!(
        stopped_counter(&log, "device_errors") >= 3,
        "three attempts or more\n{log}"
    );
}
