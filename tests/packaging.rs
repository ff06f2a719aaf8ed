//! Packaging and appliance set-up: the systemd unit (verify, exposure score, its privileges
//! at work) and the board profiles.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const RTPMIC: &str = env!("CARGO_BIN_EXE_rtpmic");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn unit_path() -> PathBuf {
    repo().join("systemd/rtpmic.service")
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `c` and asserts it succeeded, showing its output when not.
fn ok(mut c: impl std::borrow::BorrowMut<Command>) -> Output {
    let c = c.borrow_mut();
    let o = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(o.status.success(), "{c:?} failed: {}", text(&o));
    o
}

/// An rtpmic command with no RTPMIC_* key of the caller.
fn rtpmic() -> Command {
    let mut c = Command::new(RTPMIC);
    for (k, _) in std::env::vars() {
        if k.starts_with("RTPMIC_") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

/// The `[Service]`-style `Key=value` lines of a unit file (comments and sections skipped);
/// repeated keys keep every value.
fn unit_settings(path: &Path) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in fs::read_to_string(path).unwrap().lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("not Key=value: {line}"));
        m.entry(k.into()).or_default().push(v.into());
    }
    m
}

/// A copy of the unit whose ExecStart runs this build's binary (systemd-analyze verify checks
/// that the command exists and is executable), in `dir`.
fn unit_copy_running_this_build(dir: &Path, name: &str) -> PathBuf {
    let unit = fs::read_to_string(unit_path()).unwrap();
    assert!(
        unit.contains("\nExecStart=/usr/bin/rtpmic run\n"),
        "ExecStart changed: update this test"
    );
    let copy = dir.join(name);
    fs::write(
        &copy,
        unit.replace("\nExecStart=/usr/bin/rtpmic ", &format!("\nExecStart={RTPMIC} ")),
    )
    .unwrap();
    copy
}

#[test]
fn unit_passes_systemd_analyze_verify_without_a_remark() {
    let dir = tempfile::tempdir().unwrap();
    let copy = unit_copy_running_this_build(dir.path(), "rtpmic.service");
    let o = ok(Command::new("systemd-analyze").arg("verify").arg(&copy));
    // verify exits 0 even for unknown keys or bad values: any remark at all is a failure.
    assert!(
        o.stdout.is_empty() && o.stderr.is_empty(),
        "systemd-analyze verify remarks: {}",
        text(&o)
    );

    // The same check notices a broken unit (so the assertion above can fail).
    let broken = dir.path().join("broken.service");
    let unit = fs::read_to_string(&copy).unwrap();
    fs::write(
        &broken,
        unit.replace("Type=notify", "Type=notify\nProtectEverything=yes"),
    )
    .unwrap();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&broken)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ProtectEverything"),
        "verify did not flag an unknown key: {}",
        text(&o)
    );
}

#[test]
fn unit_exposure_level_is_at_most_2_0() {
    let o = ok(Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(unit_path()));
    let out = String::from_utf8_lossy(&o.stdout);
    let marker = "Overall exposure level for rtpmic.service:";
    let line = out
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no overall exposure line: {}", text(&o)));
    let score: f64 = line
        .split(marker)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the exposure level in {line:?}"));
    println!("{line}");
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{out}");
}

#[test]
fn unit_runs_rtpmic_as_a_hardened_notify_service() {
    let s = unit_settings(&unit_path());
    let one = |k: &str| -> String {
        let v = s.get(k).unwrap_or_else(|| panic!("{k}= missing"));
        assert_eq!(v.len(), 1, "{k}= set {} times", v.len());
        v[0].clone()
    };
    for (k, v) in [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("ExecStart", "/usr/bin/rtpmic run"),
        ("EnvironmentFile", "/etc/default/rtpmic"),
        ("Restart", "on-failure"),
        ("RestartSec", "2"),
        ("RestartPreventExitStatus", "78"),
        ("WatchdogSec", "10"),
        ("User", "rtpmic"),
        ("Group", "audio"),
        ("RuntimeDirectory", "rtpmic"),
        ("LimitRTPRIO", "95"),
        ("LimitMEMLOCK", "infinity"),
        ("ProtectSystem", "strict"),
        ("DevicePolicy", "closed"),
        ("DeviceAllow", "char-alsa rw"),
        ("NoNewPrivileges", "yes"),
        ("SystemCallArchitectures", "native"),
        ("UMask", "0077"),
    ] {
        assert_eq!(one(k), v, "{k}=");
    }
    // Exactly the two capabilities, and nothing that would take SCHED_RR or audio away.
    for k in ["AmbientCapabilities", "CapabilityBoundingSet"] {
        let mut caps: Vec<String> = one(k).split_whitespace().map(String::from).collect();
        caps.sort();
        assert_eq!(caps, ["CAP_IPC_LOCK", "CAP_SYS_NICE"], "{k}=");
    }
    assert!(
        !s.contains_key("RestrictRealtime"),
        "RestrictRealtime= would refuse SCHED_RR"
    );
    assert_ne!(
        s.get("PrivateUsers").map(|v| v[0].as_str()),
        Some("yes"),
        "PrivateUsers=yes loses the audio group"
    );
    let filters = s.get("SystemCallFilter").expect("SystemCallFilter=");
    assert!(
        filters
            .iter()
            .any(|f| f.contains("@system-service") && f.contains("io_uring_setup")),
        "SystemCallFilter= must allow the service set and io_uring: {filters:?}"
    );
}

/// The unit's identity and capabilities at work: rtpmic started as an unprivileged user in
/// group audio with exactly the unit's AmbientCapabilities (setpriv does what systemd's
/// User=/Group=/AmbientCapabilities=/NoNewPrivileges= do) gets SCHED_RR on its three stream
/// threads and locks its memory.
#[test]
fn unit_capabilities_give_an_unprivileged_rtpmic_sched_rr_and_locked_memory() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test needs root (setpriv to another user)"
    );
    let s = unit_settings(&unit_path());
    let ambient = &s["AmbientCapabilities"][0];
    let caps: Vec<String> = ambient
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    let caps = caps.join(",");
    let group = &s["Group"][0];
    let gid = String::from_utf8(ok(Command::new("getent").args(["group", group])).stdout)
        .unwrap()
        .split(':')
        .nth(2)
        .unwrap()
        .to_string();

    // Input: a FIFO nobody writes to; the capture thread waits in read(), the stream is idle.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("in.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&fifo, fs::Permissions::from_mode(0o666)).unwrap();
    // Held open read-write, so rtpmic's open does not block; dropped to end its reads.
    let writer = fs::OpenOptions::new().read(true).write(true).open(&fifo).unwrap();

    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", &format!("--regid={gid}"), "--clear-groups"])
        .arg(format!("--inh-caps=-all,{caps}"))
        .arg(format!("--ambient-caps={caps}"))
        .arg(format!("--bounding-set=-all,{caps}"))
        .arg("--no-new-privs")
        .arg(RTPMIC)
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "ALSA_CONFIG_PATH",
            format!(
                "/usr/share/alsa/alsa.conf:{}",
                repo().join("board/sim/asound.conf").display()
            ),
        )
        .env("SIM_INFILE", &fifo)
        .env("RTPMIC_DEVICE", "simfast")
        .env("RTPMIC_DEST", "127.0.0.1:9")
        .env("RTPMIC_RTCP", "off")
        .env("RTPMIC_RT_PRIORITY", "50")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv (util-linux)");
    let pid = child.id();

    // (policy, priority) of each stream thread, read from /proc until all three are SCHED_RR.
    let threads = || -> BTreeMap<String, (u32, u32)> {
        let mut m = BTreeMap::new();
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            return m;
        };
        for t in tasks.flatten() {
            let comm = fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let stat = fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // Fields after "(comm) ": state is field 3; rt_priority 40, policy 41.
            let f: Vec<&str> = stat
                .rsplit_once(") ")
                .map(|(_, r)| r.split(' ').collect())
                .unwrap_or_default();
            if let (Some(prio), Some(policy)) = (f.get(37), f.get(38)) {
                m.insert(
                    comm.trim().to_string(),
                    (policy.parse().unwrap_or(0), prio.parse().unwrap_or(0)),
                );
            }
        }
        m
    };
    let names = ["rtpmic-capture", "rtpmic-encode", "rtpmic-send"];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = threads();
    while !names.iter().all(|n| seen.get(*n) == Some(&(libc::SCHED_RR as u32, 50))) && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        seen = threads();
    }
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    drop(writer);
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);

    for n in names {
        assert_eq!(
            seen.get(n),
            Some(&(libc::SCHED_RR as u32, 50)),
            "{n} is not SCHED_RR 50: {seen:?}\n{log}"
        );
    }
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("{k} not in /proc/{pid}/status:\n{status}"))
    };
    assert_eq!(field("Uid:"), "65534", "not running as the unprivileged user");
    assert_eq!(field("Gid:"), gid);
    let cap_eff = u64::from_str_radix(&field("CapEff:"), 16).unwrap();
    assert_eq!(
        cap_eff,
        (1 << 23) | (1 << 14),
        "effective capabilities are not exactly CAP_SYS_NICE CAP_IPC_LOCK"
    );
    let locked_kib: u64 = field("VmLck:").parse().unwrap();
    assert!(locked_kib > 1024, "memory not locked (VmLck {locked_kib} kB)\n{log}");
    assert!(!log.contains("refused"), "rtpmic reports a refused privilege:\n{log}");
    assert!(out.status.success(), "rtpmic: {}\n{log}", out.status);
}

/// Every board/*/rtpmic.env is a complete, valid configuration; a device it names that is not
/// a standard ALSA name is defined by the board's asound.conf, which alsa-lib parses, lists and
/// resolves down to the hardware card the profile is written for.
#[test]
fn board_profiles_are_valid_and_their_alsa_devices_resolve() {
    let mut profiles = Vec::new();
    for e in fs::read_dir(repo().join("board")).unwrap().flatten() {
        if e.path().join("rtpmic.env").is_file() {
            profiles.push(e.path());
        }
    }
    profiles.sort();
    assert!(
        profiles.len() >= 5,
        "only {} board profiles: {profiles:?}",
        profiles.len()
    );
    for dir in &profiles {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let env = dir.join("rtpmic.env");
        let o = ok(rtpmic().arg("check-config").arg("--env-file").arg(&env));
        let effective = String::from_utf8_lossy(&o.stdout).to_string();
        let device = effective
            .lines()
            .find_map(|l| l.strip_prefix("RTPMIC_DEVICE="))
            .unwrap_or_else(|| panic!("{name}: no RTPMIC_DEVICE in check-config output"))
            .trim_matches('"')
            .to_string();
        if name != "sim" {
            assert!(dir.join("README.md").is_file(), "{name}: README.md missing");
        }
        let conf = dir.join("asound.conf");
        let standard = device == "default" || device.contains(':');
        if standard {
            continue;
        }
        assert!(
            conf.is_file(),
            "{name}: RTPMIC_DEVICE={device} needs the board's asound.conf"
        );
        let conf_text = fs::read_to_string(&conf).unwrap();
        assert!(
            conf_text.contains(&format!("pcm.{device} ")) || conf_text.contains(&format!("pcm.{device}\n")),
            "{name}: asound.conf does not define pcm.{device}"
        );
        let alsa_path = format!("/usr/share/alsa/alsa.conf:{}", conf.display());
        let o = ok(Command::new("arecord").arg("-L").env("ALSA_CONFIG_PATH", &alsa_path));
        let listed = String::from_utf8_lossy(&o.stdout);
        assert!(
            listed.lines().any(|l| l == device),
            "{name}: alsa-lib does not list {device} from asound.conf:\n{}",
            text(&o)
        );
        // A profile for real hardware: opening its device must get as far as the card (which
        // this machine lacks), i.e. every plugin on the way is defined and well formed.
        if let Some(card) = conf_text
            .split("hw:CARD=")
            .nth(1)
            .and_then(|r| r.split([',', '"']).next())
        {
            let o = Command::new("arecord")
                .args(["-D", &device, "-f", "S16_LE", "-r", "48000", "-d", "1", "/dev/null"])
                .env("ALSA_CONFIG_PATH", &alsa_path)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                o.status.success() || err.contains(&format!("Cannot get card index for {card}")),
                "{name}: opening {device} fails before reaching card {card}: {}",
                text(&o)
            );
        }
    }
}
