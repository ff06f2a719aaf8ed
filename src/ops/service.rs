//! The main thread of `rtpmic run`: starts the pipeline, then waits for signals and the
//! pipeline's end, turning counters into log lines and systemd notifications.
//!
//! * SIGTERM / SIGINT: stop (the rings drain, RTCP BYE goes out), final stats line, exit 0.
//! * SIGHUP: re-read the env file ([`crate::ops::reload`] decides what applies live).
//! * SIGUSR1: log the full stats now.
//!
//! Every line carries `RTPMIC_EVENT` (journald) so operators can filter; the stats lines carry
//! every counter as a field too. Only this thread logs.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::net::rtsp::RtspCounters;
use crate::net::sender::RtcpInCounters;
use crate::ops::events::{Event, EventWatch};
use crate::ops::notify::{self, Progress, ServiceManager, State, StatusFacts, Verdict, Watchdog};
use crate::ops::receivers::{ReceiverTable, ReceiverWatch, Thresholds};
use crate::ops::reload::{self, Plan};
use crate::ops::stats::{DeviceState, Stats};
use crate::pipeline::{Pipeline, RunOptions, StartError, StartReport, Tuning};
use crate::rt::now_ns;
use crate::rtp::sdp;
use crate::rtp::session::Event as SessionEvent;

/// How long the stream threads get to end after a stop request before the process gives up
/// on them (a thread stuck in a driver call that never returns, e.g. opening a PCM whose
/// server is frozen).
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Longest wait of the main loop: counters are looked at this often.
const TICK: Duration = Duration::from_secs(1);
/// STATUS is re-sent at least this often while the text changes (packet counts do).
const STATUS_REFRESH_NS: u64 = 5_000_000_000;

/// Why `run` ended badly.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot start: {0}")]
    Start(#[from] StartError),
    #[error("a pipeline thread did not stop within {STOP_GRACE:?} (stuck in the device driver?)")]
    StuckThread,
    /// The main loop could not wait for signals or the pipeline any more.
    #[error("the main loop cannot go on: {0}")]
    MainLoop(String),
    /// A stream thread ended although no stop was asked for and no `--seconds` limit set.
    #[error("the stream ended by itself")]
    StreamEnded,
}

/// Which signals arrived since the last look. Set by handlers, taken by the main loop.
#[derive(Default)]
struct SignalFlags {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    dump: Arc<AtomicBool>,
}

/// Signal flags plus a socket that becomes readable when any of them is set.
fn install_signals() -> std::io::Result<(SignalFlags, UnixStream)> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    let flags = SignalFlags::default();
    let (rx, tx) = UnixStream::pair()?;
    rx.set_nonblocking(true)?;
    tx.set_nonblocking(true)?;
    for (sig, flag) in [
        (SIGTERM, &flags.stop),
        (SIGINT, &flags.stop),
        (SIGHUP, &flags.reload),
        (SIGUSR1, &flags.dump),
    ] {
        // The flag first, so the wake-up always finds it set.
        signal_hook::flag::register(sig, flag.clone())?;
        signal_hook::low_level::pipe::register(sig, tx.try_clone()?)?;
    }
    Ok((flags, rx))
}

/// `rtpmic run`: streams until a stop signal or the end of `--seconds`.
pub fn run(config: Config, env_file: Option<PathBuf>, opts: RunOptions) -> Result<(), ServiceError> {
    // Signals first, so a SIGTERM during start-up is not lost.
    let (flags, wake) = install_signals().map_err(ServiceError::Signals)?;
    let mut notifier = ServiceManager::from_env();
    let mut service = Service::start(config, opts)?;
    let outcome = service.main_loop(&flags, wake, &mut notifier, env_file.as_deref());
    notifier.stopping();
    // On a signal this was already asked; when a thread ended by itself (--seconds, or a
    // failure), the others must stop too.
    service.finish(outcome)
}

/// A running pipeline and what the main thread knows about it.
struct Service {
    config: Config,
    opts: RunOptions,
    pipeline: Pipeline,
    /// `RTPMIC_DEST` as written, for the per-destination lines.
    dest_names: Vec<String>,
    resolved: usize,
    /// What receivers report, from the send session's events.
    receivers: ReceiverTable,
}

/// Why the main loop returned.
enum Outcome {
    Signal,
    PipelineEnded,
    /// The service cannot go on (the loop could not wait, or no pipeline could be started
    /// again after a reload); stop as cleanly as possible and exit with a failure, so that
    /// systemd's `Restart=on-failure` starts the service again.
    Broken(ServiceError),
}

impl Service {
    fn start(config: Config, opts: RunOptions) -> Result<Service, StartError> {
        let dest_names: Vec<String> = config.dest.iter().map(|d| d.to_string()).collect();
        info!(
            event = "starting",
            "starting: device={} codec={} rate={} frame_ms={} payload_type={} dest={}",
            config.device,
            config.codec.name(),
            config.rate,
            f64::from(config.frame_us) / 1000.0,
            config.payload_type,
            dest_names.join(",")
        );
        let (pipeline, report) = Pipeline::start(&config, opts)?;
        log_start_report(&config, &report);
        Ok(Service {
            resolved: report.destinations.iter().flatten().count(),
            config,
            opts,
            pipeline,
            dest_names,
            receivers: ReceiverTable::default(),
        })
    }

    fn stats(&self) -> &Arc<Stats> {
        self.pipeline.stats()
    }

    fn progress(&self) -> Progress {
        let s = self.stats();
        Progress {
            periods: s.periods.load(Relaxed),
            packets_out: s.packets_out.load(Relaxed),
            absent_heartbeat: s.absent_heartbeat.load(Relaxed),
        }
    }

    fn main_loop(
        &mut self,
        flags: &SignalFlags,
        mut wake: UnixStream,
        notifier: &mut ServiceManager,
        env_file: Option<&Path>,
    ) -> Outcome {
        const SIGNAL: Token = Token(0);
        const EXITED: Token = Token(1);
        let mut poll = match Poll::new() {
            Ok(p) => p,
            Err(e) => return Outcome::Broken(ServiceError::MainLoop(format!("epoll: {e}"))),
        };
        let mut events = Events::with_capacity(4);
        let wake_fd = std::os::fd::AsRawFd::as_raw_fd(&wake);
        if let Err(e) = poll
            .registry()
            .register(&mut SourceFd(&wake_fd), SIGNAL, Interest::READABLE)
        {
            return Outcome::Broken(ServiceError::MainLoop(format!("cannot wait for signals: {e}")));
        }
        let watch_pipeline = |registry: &mio::Registry, service: &Service| {
            let exit_fd = service.pipeline.exit_fd();
            registry
                .register(&mut SourceFd(&exit_fd), EXITED, Interest::READABLE)
                .map_err(|e| ServiceError::MainLoop(format!("cannot watch the pipeline: {e}")))
        };
        if let Err(e) = watch_pipeline(poll.registry(), self) {
            return Outcome::Broken(e);
        }
        let mut watchdog = notifier
            .watchdog_timeout()
            .map(|t| Watchdog::new(t, now_ns(), self.progress()));
        if let Some(w) = &watchdog {
            info!(
                event = "watchdog",
                "systemd watchdog: pinging every {:?} while the stream flows",
                w.interval()
            );
        }
        let tick = watchdog.as_ref().map_or(TICK, |w| w.interval().min(TICK));
        let mut watch = EventWatch::default();
        let mut receiver_watch = ReceiverWatch::default();
        let mut next_stats = now_ns() + self.stats_interval_ns();
        let mut status = StatusTracker::default();
        let mut rt_warned = false;
        loop {
            if let Err(e) = poll.poll(&mut events, Some(tick)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Outcome::Broken(ServiceError::MainLoop(format!("poll: {e}")));
                }
            }
            for ev in events.iter() {
                if ev.token() == SIGNAL {
                    let mut buf = [0u8; 64];
                    while matches!(wake.read(&mut buf), Ok(n) if n > 0) {}
                } else {
                    self.pipeline.clear_exit_fd();
                }
            }
            if flags.stop.swap(false, Relaxed) {
                info!(event = "signal", "stopping on signal");
                self.pipeline.request_stop();
                return Outcome::Signal;
            }
            if flags.dump.swap(false, Relaxed) {
                self.log_stats();
            }
            if flags.reload.swap(false, Relaxed) {
                notifier.reloading();
                match self.reload(env_file) {
                    Ok(false) => {}
                    Ok(true) => {
                        // A new pipeline: new exit eventfd, counters from zero.
                        if let Err(e) = watch_pipeline(poll.registry(), self) {
                            return Outcome::Broken(e);
                        }
                        let progress = self.progress();
                        if let Some(w) = watchdog.as_mut() {
                            w.rebase(progress);
                        }
                        status = StatusTracker::default();
                        next_stats = now_ns() + self.stats_interval_ns();
                    }
                    Err(e) => return Outcome::Broken(e),
                }
                notifier.reloaded();
            }
            if self.pipeline.any_finished() {
                return Outcome::PipelineEnded;
            }
            if self.pipeline.realtime_refused() && !rt_warned {
                rt_warned = true;
                warn!(
                    event = "realtime_refused",
                    "SCHED_RR at priority {} refused; running at normal priority", self.config.rt_priority
                );
            }
            let now = now_ns();
            self.log_events(&mut watch, &mut receiver_watch, now);
            self.take_session_events();
            let progress = self.progress();
            let (line, due) = status.line(self, progress, now);
            if notifier.is_ready() {
                if due {
                    notifier.status(&line);
                }
            } else if progress.packets_out > 0 || self.stats().device_state() == DeviceState::Absent {
                notifier.ready(&line);
            }
            if let Some(w) = watchdog.as_mut() {
                if w.poll(now, progress) == Verdict::Ping {
                    notifier.watchdog();
                }
            }
            let interval_ns = self.stats_interval_ns();
            if interval_ns > 0 && now >= next_stats {
                next_stats = now + interval_ns;
                self.log_stats();
            }
        }
    }

    /// SIGHUP: re-reads the env file and applies it live or by restarting the pipeline
    /// ([`reload::plan`]). An invalid file changes nothing. Returns whether the pipeline was
    /// replaced.
    fn reload(&mut self, env_file: Option<&Path>) -> Result<bool, ServiceError> {
        let Some(path) = env_file else {
            warn!(
                event = "reload",
                "SIGHUP: started without --env-file, nothing to re-read; ignored"
            );
            return Ok(false);
        };
        let new = match Config::load(Some(path)) {
            Ok(c) => c,
            Err(errors) => {
                for e in &errors.0 {
                    error!(event = "reload_rejected", "{}", e.line);
                }
                warn!(
                    event = "reload_rejected",
                    "reload of {} rejected ({} problem(s)); the running configuration stays",
                    path.display(),
                    errors.0.len()
                );
                return Ok(false);
            }
        };
        let waiting: Vec<&str> = reload::changed_keys(&self.config, &new)
            .into_iter()
            .filter(|k| reload::PROCESS_KEYS.contains(k))
            .collect();
        if !waiting.is_empty() {
            warn!(
                event = "reload",
                "reload: {} take effect at the next start of the process",
                waiting.join(", ")
            );
        }
        match reload::plan(&self.config, &new, self.pipeline.slots()) {
            Plan::Nothing => {
                info!(event = "reload", "reload: no change to apply");
                Ok(false)
            }
            Plan::Live(keys) => {
                self.apply_live(new, &keys);
                info!(event = "reload", "reload: applied live: {}", keys.join(", "));
                Ok(false)
            }
            Plan::Restart(keys) => {
                info!(
                    event = "reload",
                    "reload: restarting the pipeline for {}",
                    keys.join(", ")
                );
                self.restart(new)?;
                Ok(true)
            }
        }
    }

    fn apply_live(&mut self, mut new: Config, keys: &[&str]) {
        // Equal by the plan; keep the key the running stream uses (a random one differs).
        new.srtp = self.config.srtp.clone();
        if keys.contains(&"RTPMIC_BITRATE") || keys.contains(&"RTPMIC_OPUS_COMPLEXITY") {
            let t = self.pipeline.encoder_tuning();
            self.pipeline.tune_encoder(Tuning {
                bitrate: new.bitrate,
                complexity: new.opus_complexity,
                ..t
            });
        }
        if keys.contains(&"RTPMIC_DSCP") {
            if let Err(e) = self.pipeline.set_dscp(new.dscp) {
                warn!(event = "reload", "RTPMIC_DSCP={}: {e}; the old marking stays", new.dscp);
            }
        }
        if keys.contains(&"RTPMIC_DEST") {
            // The plan checked that the list fits the slots.
            self.pipeline.set_destinations(new.dest.clone());
            self.dest_names = new.dest.iter().map(|d| d.to_string()).collect();
            if let Some(path) = &new.sdp_file {
                if let Err(e) = sdp::write_file(&new, path) {
                    warn!(event = "sdp", "cannot write RTPMIC_SDP_FILE={}: {e}", path.display());
                }
            }
        }
        if keys.iter().any(|k| reload::RTSP_LIVE_KEYS.contains(k)) {
            match self.pipeline.reconfigure_rtsp(&new) {
                Ok(()) => info!(
                    event = "rtsp",
                    "RTSP: serving rtsp://{}{} with the new settings",
                    new.rtsp.listen.map_or("-".to_string(), |a| a.to_string()),
                    new.rtsp.path
                ),
                Err(e) => {
                    error!(
                        event = "rtsp",
                        "RTSP: cannot serve with the new settings: {e}; the previous ones stay"
                    );
                    // What runs is the old RTSP configuration.
                    new.rtsp = self.config.rtsp.clone();
                }
            }
        }
        self.config = new;
    }

    /// Stops the running pipeline, releases everything it holds (its threads end, its
    /// sockets close, fixed `RTPMIC_BIND` ports included), and only then starts one with
    /// `new`, so the new pipeline can bind what the old one held. When that fails, the
    /// previous configuration is started again the same way. An error means that neither
    /// could start: the service cannot go on.
    fn restart(&mut self, new: Config) -> Result<(), ServiceError> {
        self.pipeline.request_stop();
        if !self.pipeline.wait_stopped(STOP_GRACE) {
            return Err(ServiceError::StuckThread);
        }
        let stats = self.pipeline.join();
        self.take_session_events();
        log_counters(
            "restarted",
            &stats,
            &self.dest_names,
            self.rtcp_lines(),
            self.rtsp_line(),
        );
        *self = match Service::start(new, self.opts) {
            Ok(s) => s,
            Err(e) => {
                error!(
                    event = "reload",
                    "reload: cannot start with the new configuration: {e}; back to the previous one"
                );
                Service::start(self.config.clone(), self.opts)?
            }
        };
        Ok(())
    }

    /// Takes the send session's events: receivers' reports into the table, and the loss
    /// Opus FEC should plan for (`RTPMIC_OPUS_LOSS_PERCENT=auto`) to the encoder.
    fn take_session_events(&mut self) {
        let (pipeline, receivers) = (&mut self.pipeline, &mut self.receivers);
        let mut expected_loss = None;
        pipeline.take_events(|e| {
            receivers.apply(&e);
            if let SessionEvent::ExpectedLoss(p) = e {
                expected_loss = Some(p);
            }
        });
        let Some(percent) = expected_loss else { return };
        let t = self.pipeline.encoder_tuning();
        if t.loss_percent != percent {
            debug!(
                event = "fec_loss",
                "Opus FEC now planned for {percent}% loss (worst receiver reports {:.1}%)",
                self.receivers.worst_loss().1 * 100.0
            );
            self.pipeline.tune_encoder(Tuning {
                loss_percent: percent,
                ..t
            });
        }
    }

    /// The RTSP server's counters, when it runs.
    fn rtsp_line(&self) -> Option<&RtspCounters> {
        self.config
            .rtsp
            .enabled()
            .then(|| self.pipeline.rtsp_counters().as_ref())
    }

    /// The RTCP-in counters and receivers, when RTCP is on.
    fn rtcp_lines(&self) -> Option<(&RtcpInCounters, &ReceiverTable)> {
        self.config
            .rtcp
            .then(|| (self.pipeline.rtcp_counters().as_ref(), &self.receivers))
    }

    fn stats_interval_ns(&self) -> u64 {
        u64::from(self.config.stats_interval_s) * 1_000_000_000
    }

    /// Warnings for counters that grew and for receivers reporting trouble.
    fn log_events(&self, watch: &mut EventWatch, receiver_watch: &mut ReceiverWatch, now: u64) {
        let stats = self.stats();
        for r in watch.poll(stats, now) {
            let name = r.event.name();
            match r.event {
                Event::DeviceError => warn!(
                    event = name,
                    new = r.new,
                    total = r.total,
                    "{name}: {} new, {} in all: {} (retrying)",
                    r.new,
                    r.total,
                    stats.device_error()
                ),
                _ => warn!(
                    event = name,
                    new = r.new,
                    total = r.total,
                    "{name}: {} new, {} in all",
                    r.new,
                    r.total
                ),
            }
        }
        let thresholds = Thresholds {
            loss_percent: f64::from(self.config.rr_loss_warn_percent),
            jitter_ms: f64::from(self.config.rr_jitter_warn_ms),
        };
        for w in receiver_watch.poll(self.receivers.receivers(), thresholds, now) {
            warn!(event = "receiver", "{w}");
        }
    }

    fn log_stats(&self) {
        log_counters(
            "stats",
            self.stats(),
            &self.dest_names,
            self.rtcp_lines(),
            self.rtsp_line(),
        );
    }

    /// Stops the pipeline (if not already), waits for it, logs the final lines. Only a stop
    /// that was asked for (a signal, or the end of `--seconds`) is a success.
    fn finish(mut self, outcome: Outcome) -> Result<(), ServiceError> {
        self.pipeline.request_stop();
        let verdict = match outcome {
            Outcome::Signal => Ok(()),
            Outcome::PipelineEnded if self.opts.seconds.is_some() => Ok(()),
            Outcome::PipelineEnded => Err(ServiceError::StreamEnded),
            Outcome::Broken(e) => Err(e),
        };
        let stopped = self.pipeline.wait_stopped(STOP_GRACE);
        // Joining a thread stuck in a driver call would hang; the process ends without it.
        let stats = if stopped {
            self.pipeline.join()
        } else {
            self.pipeline.stats().clone()
        };
        self.take_session_events();
        log_counters("stopped", &stats, &self.dest_names, self.rtcp_lines(), self.rtsp_line());
        if !stopped {
            return Err(ServiceError::StuckThread);
        }
        verdict
    }
}

/// The RTCP, destinations and counters lines; `event` is "stats" or "stopped". The counters
/// line carries every counter as a field (journald: `RTPMIC_PACKETS=…`).
fn log_counters(
    event: &str,
    stats: &Stats,
    dest_names: &[String],
    rtcp: Option<(&RtcpInCounters, &ReceiverTable)>,
    rtsp: Option<&RtspCounters>,
) {
    if let Some((counters, receivers)) = rtcp {
        info!(event = "rtcp_in", "rtcp_in: {}", receivers.summary(counters));
    }
    if let Some(r) = rtsp {
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
        info!(
            event = "rtsp",
            clients = r.clients.load(Relaxed),
            "rtsp: clients={} sessions={} requests={} refused={} auth_failures={} stalled={}",
            r.clients.load(Relaxed),
            n(&r.sessions_started),
            n(&r.requests),
            n(&r.refused),
            n(&r.auth_failures),
            n(&r.stalled)
        );
    }
    if !dest_names.is_empty() {
        info!(
            event = "destinations",
            "destinations: {}",
            stats.destination_summary(dest_names)
        );
    }
    let c = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
    info!(
        event,
        periods = c(&stats.periods),
        frames = c(&stats.frames),
        xruns = c(&stats.xruns),
        samples_lost = c(&stats.samples_lost),
        suspends = c(&stats.suspends),
        stalls = c(&stats.stalls),
        device_errors = c(&stats.device_errors),
        frame_drops = c(&stats.frame_drops),
        encode_errors = c(&stats.encode_errors),
        packets = c(&stats.packets),
        packet_drops = c(&stats.packet_drops),
        datagrams = c(&stats.datagrams),
        bytes = c(&stats.bytes),
        send_would_block = c(&stats.send_would_block),
        send_unreachable = c(&stats.send_unreachable),
        send_errors = c(&stats.send_errors),
        rtcp_reports = c(&stats.rtcp_reports),
        latency_max_us = stats.latency.max_ns() / 1000,
        latency_max_encoded_us = stats.latency.max_encoded_ns() / 1000,
        "{event}: {}",
        stats.summary()
    );
}

/// Decides the STATUS text and when to send it: at once when the state changes, otherwise
/// every [`STATUS_REFRESH_NS`].
#[derive(Default)]
struct StatusTracker {
    last_periods: u64,
    state: Option<State>,
    sent_at: u64,
}

impl StatusTracker {
    /// The current STATUS line, and whether it is due to be sent at `now`.
    fn line(&mut self, service: &Service, progress: Progress, now: u64) -> (String, bool) {
        let stats = service.stats();
        let advanced = progress.periods > self.last_periods;
        self.last_periods = progress.periods;
        let (receivers, worst_loss) = service.receivers.worst_loss();
        let state = notify::state(stats.device_state(), advanced, progress.periods > 0);
        let facts = StatusFacts {
            state,
            device: &service.config.device,
            codec: service.config.codec.name(),
            destinations_resolved: service.resolved,
            destinations: service.config.dest.len(),
            packets: progress.packets_out,
            receivers,
            worst_loss,
            rtsp_clients: service
                .config
                .rtsp
                .enabled()
                .then(|| service.pipeline.rtsp_counters().clients.load(Relaxed)),
        };
        let due = self.state != Some(state) || now >= self.sent_at + STATUS_REFRESH_NS;
        if due {
            self.state = Some(state);
            self.sent_at = now;
        }
        (notify::status_line(&facts), due)
    }
}

/// The lines after a start: what could not be set up as asked, the sender, the SDP file.
fn log_start_report(config: &Config, report: &StartReport) {
    for u in &report.unresolved {
        warn!(
            event = "unresolved",
            "destination not resolved yet, retrying in the background: {u}"
        );
    }
    // Once per process: a pipeline restarted by a reload meets the same limit again.
    static MLOCK_WARNED: AtomicBool = AtomicBool::new(false);
    if let Some(e) = report
        .memory_lock
        .as_ref()
        .filter(|_| !MLOCK_WARNED.swap(true, Relaxed))
    {
        warn!(event = "mlock_refused", "{e}");
    }
    let threads = match report.threads {
        1 => "capture+encode+send in one thread",
        2 => "capture | encode+send",
        _ => "capture | encode | send",
    };
    match &report.sender_fallback {
        None => info!(event = "sender", "sender: {}; {threads}", report.sender),
        Some(why) => info!(event = "sender", "sender: {} ({why}); {threads}", report.sender),
    }
    if let Some(path) = &config.sdp_file {
        match sdp::write_file(config, path) {
            Ok(()) => info!(event = "sdp", "SDP written to {}", path.display()),
            Err(e) => warn!(event = "sdp", "cannot write RTPMIC_SDP_FILE={}: {e}", path.display()),
        }
    }
    if let Some(listen) = config.rtsp.listen {
        let auth = match (&config.rtsp.user, config.rtsp.auth) {
            (None, _) => "no authentication",
            (Some(_), crate::config::RtspAuth::Digest) => "Digest authentication",
            (Some(_), crate::config::RtspAuth::Basic) => "Digest or Basic authentication",
        };
        info!(
            event = "rtsp",
            "RTSP: serving rtsp://{listen}{} to at most {} client(s), {auth}",
            config.rtsp.path,
            config.rtsp.max_clients
        );
    }
    let resolved = report.destinations.iter().flatten().count();
    info!(
        event = "started",
        "started: ssrc={:#010x} to {resolved} of {} destination(s)",
        report.ssrc,
        report.destinations.len()
    );
}
