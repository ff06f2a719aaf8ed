//! Packaging and appliance set-up: the systemd unit (verify, exposure score, its privileges
//! at work), the board profiles, `make install` / `make uninstall` and `make deb`.
//!
//! The Makefile targets run in temporary directories of their own (DESTDIR, OUTDIR) with
//! this test binary's rtpmic (BIN=…), so tests running in parallel never share a path and
//! nothing is compiled here. The Raspberry Pi cross builds and their qemu runs are heavier
//! and timing-free: `make test` runs them after this suite (make pi-smoke, armv7-smoke).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const RTPMIC: &str = env!("CARGO_BIN_EXE_rtpmic");
const VERSION: &str = env!("CARGO_PKG_VERSION");

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

/// `make -C <repo> ARGS…`, isolated from a calling make (its jobserver and flags).
fn make(args: &[&str]) -> Command {
    let mut c = Command::new("make");
    c.arg("--no-print-directory")
        .arg("-C")
        .arg(repo())
        .args(args)
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .stdin(Stdio::null());
    c
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
        unit.contains("\nExecStart=/usr/bin/rtpmic run --env-file /etc/default/rtpmic\n"),
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
        ("ExecStart", "/usr/bin/rtpmic run --env-file /etc/default/rtpmic"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
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
        .env("RTPMIC_THREADS", "3")
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
    // RTPMIC_THREADS=3: every real-time thread there can be.
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

/// Regular files under `root`, relative, sorted.
fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn make_install_and_uninstall_honour_destdir_and_prefix() {
    let boards: Vec<String> = fs::read_dir(repo().join("board"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n != "sim")
        .collect();
    assert!(boards.len() >= 4);
    for (prefix, unitdir) in [
        ("/usr", "lib/systemd/system"),
        ("/usr/local", "usr/local/lib/systemd/system"),
    ] {
        let dest = tempfile::tempdir().unwrap();
        let d = dest.path();
        let args = [
            format!("DESTDIR={}", d.display()),
            format!("PREFIX={prefix}"),
            format!("BIN={RTPMIC}"),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let p = prefix.trim_start_matches('/');
        ok(make(&[&["install"], &args[..]].concat()));

        let bin = d.join(p).join("bin/rtpmic");
        assert_eq!(fs::read(&bin).unwrap(), fs::read(RTPMIC).unwrap(), "{prefix}: binary");
        let mode = fs::metadata(&bin).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        let unit = fs::read_to_string(d.join(unitdir).join("rtpmic.service")).unwrap();
        assert!(
            unit.contains(&format!(
                "\nExecStart={prefix}/bin/rtpmic run --env-file /etc/default/rtpmic\n"
            )),
            "{prefix}: ExecStart"
        );
        assert_eq!(
            unit.replace(&format!("ExecStart={prefix}/"), "ExecStart=/usr/"),
            fs::read_to_string(unit_path()).unwrap()
        );
        let env = d.join("etc/default/rtpmic");
        assert_eq!(
            fs::read_to_string(&env).unwrap(),
            fs::read_to_string(repo().join("systemd/rtpmic.env")).unwrap()
        );
        let mode = fs::metadata(&env).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{prefix}: the env file may hold the SRTP key");
        for b in &boards {
            for f in fs::read_dir(repo().join("board").join(b)).unwrap().flatten() {
                let installed = d.join(p).join("share/rtpmic/board").join(b).join(f.file_name());
                assert_eq!(
                    fs::read(&installed).unwrap(),
                    fs::read(f.path()).unwrap(),
                    "{}",
                    installed.display()
                );
            }
        }
        assert!(
            !d.join(p).join("share/rtpmic/board/sim").exists(),
            "board/sim is for development only"
        );

        // A configured env file survives a reinstall and an uninstall.
        let configured = "RTPMIC_DEST=192.0.2.10:5004\n";
        fs::write(&env, configured).unwrap();
        ok(make(&[&["install"], &args[..]].concat()));
        assert_eq!(
            fs::read_to_string(&env).unwrap(),
            configured,
            "install overwrote the configuration"
        );
        ok(make(&[&["uninstall"], &args[..]].concat()));
        assert_eq!(files_under(d), ["etc/default/rtpmic"], "{prefix}: uninstall left files");

        // An untouched template goes with the rest.
        fs::remove_file(&env).unwrap();
        ok(make(&[&["install"], &args[..]].concat()));
        assert!(files_under(d).len() > 5);
        ok(make(&[&["uninstall"], &args[..]].concat()));
        assert_eq!(files_under(d), Vec::<String>::new(), "{prefix}: uninstall left files");
    }
}

#[test]
fn make_install_without_a_binary_says_what_to_do() {
    let dest = tempfile::tempdir().unwrap();
    let o = make(&[
        "install",
        &format!("DESTDIR={}", dest.path().display()),
        "BIN=/nonexistent/rtpmic",
    ])
    .output()
    .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("make build"),
        "{}",
        text(&o)
    );
    assert_eq!(files_under(dest.path()), Vec::<String>::new());
}

#[test]
fn make_deb_builds_a_package_with_the_binary_the_unit_and_the_env_file_as_conffile() {
    let out = tempfile::tempdir().unwrap();
    ok(make(&[
        "deb",
        &format!("OUTDIR={}", out.path().display()),
        &format!("BIN={RTPMIC}"),
    ]));
    let arch = String::from_utf8(ok(Command::new("dpkg").arg("--print-architecture")).stdout).unwrap();
    let deb = out.path().join(format!("rtpmic_{VERSION}_{}.deb", arch.trim()));
    assert!(
        deb.is_file(),
        "{} missing: {:?}",
        deb.display(),
        files_under(out.path())
    );

    let contents = String::from_utf8(ok(Command::new("dpkg-deb").arg("-c").arg(&deb)).stdout).unwrap();
    let shipped = |f: &str| {
        contents
            .lines()
            .any(|l| l.ends_with(&format!(" ./{f}")) && l.contains("root/root"))
    };
    for f in [
        "usr/bin/rtpmic",
        "lib/systemd/system/rtpmic.service",
        "etc/default/rtpmic",
        "usr/share/rtpmic/board/pi-i2s-mems/asound.conf",
    ] {
        assert!(shipped(f), "{f} not in the package (owned by root):\n{contents}");
    }
    let conffiles =
        String::from_utf8(ok(Command::new("dpkg-deb").args(["-I"]).arg(&deb).arg("conffiles")).stdout).unwrap();
    assert_eq!(conffiles.trim(), "/etc/default/rtpmic");
    let field = |f: &str| {
        String::from_utf8(ok(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(f)).stdout)
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), "rtpmic");
    assert_eq!(field("Version"), VERSION);
    assert_eq!(field("Architecture"), arch.trim());
    let depends = field("Depends");
    for d in ["libasound2", "libopus0", "libc6"] {
        assert!(
            depends.split(", ").any(|x| x.starts_with(d)),
            "Depends lacks {d}: {depends}"
        );
    }

    // The files themselves, and maintainer scripts that are valid sh.
    let x = tempfile::tempdir().unwrap();
    ok(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(x.path()));
    ok(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(x.path().join("DEBIAN")));
    assert_eq!(
        fs::read_to_string(x.path().join("lib/systemd/system/rtpmic.service")).unwrap(),
        fs::read_to_string(unit_path()).unwrap()
    );
    let out = ok(Command::new(x.path().join("usr/bin/rtpmic")).arg("--version"));
    assert!(String::from_utf8_lossy(&out.stdout).contains(VERSION));
    for s in ["postinst", "prerm", "postrm"] {
        let p = x.path().join("DEBIAN").join(s);
        let mode = fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "{s} mode");
        ok(Command::new("sh").arg("-n").arg(&p));
    }
    let postinst = fs::read_to_string(x.path().join("DEBIAN/postinst")).unwrap();
    assert!(postinst.contains("getent passwd rtpmic") && postinst.contains("--ingroup audio"));
    assert!(
        postinst.contains("[ -d /run/systemd/system ]"),
        "daemon-reload only under systemd"
    );
}
