//! `rumbled run`: the field daemon. Listens to a sound device (or plays the
//! test-input recording in real time) for months, and turns what it hears
//! into call events with the same [`Detector`](crate::pipeline::Detector)
//! as `replay`.
//!
//! Threads, one job each:
//!
//! - **source**: the cpal callback (or the test-input player) fills a
//!   lock-free ring; a supervisor reopens a device that fails or stalls
//!   ([`crate::audio::capture`]);
//! - **processing** ([`processing`]): ring -> detector -> call records;
//! - **sinks** ([`sinks`]): records -> log, JSONL file (and more outputs),
//!   so a slow output never holds up listening;
//! - **control** (the caller's thread): signals (SIGTERM/SIGINT stop,
//!   SIGHUP reload), periodic stats, and the orderly end.

pub mod drift;
pub mod early;
pub mod evidence;
pub mod notify;
pub mod processing;
pub mod sinks;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::audio::capture::{CaptureCounters, DeviceSourceConfig, spawn_device_source};
use crate::audio::source::{FileSourceConfig, RingCounters, Segment, ring, spawn_file_source};
use crate::audio::{AudioError, AudioFile, ChannelMode};
use crate::config::{ChannelSelect, Config, InputKind};
use crate::detect::{ModelInfo, Recommended};
use crate::evidence::EvidenceReport;
use crate::evidence::detection_delay_s;
use crate::model::Manifest;
use crate::pipeline::DetectorConfig;
use crate::publish::{MqttHandle, MqttPublisher, MqttSink, Role, SeqSource, StatusInfo};
use crate::replay::{load_model, with_model_endpoint};
use crate::stats::{ProcessingStats, StatsReport};
use evidence::EvidenceFeed;
use processing::{Command, Finish, Processing};
use sinks::{SinkMessage, build_sinks, sinks_changed, spawn_sink_thread};

/// From a stop signal to the process exit, at most (systemd and the
/// operators expect a prompt stop; the open call's end event must be out
/// by then).
const STOP_DEADLINE: Duration = Duration::from_millis(1800);

/// Extra time the last calls' evidence (clips waiting for post-roll) gets
/// to be written at a stop: a few clips, each well under a second on a Pi,
/// inside systemd's `TimeoutStopSec`.
const EVIDENCE_GRACE: Duration = Duration::from_secs(5);

/// How `rumbled run` was invoked, beyond the configuration.
pub struct RunOptions {
    /// Stop after this many seconds of audio (a station check); forever if
    /// unset.
    pub max_audio_s: Option<f64>,
    /// Playback speed of the test input (1.0 = real time).
    pub speed: f64,
    /// Re-reads the configuration on SIGHUP (the file, with the command
    /// line's overrides applied again).
    pub reload: Box<dyn Fn() -> Result<Config>>,
}

/// Messages to the control thread.
enum Control {
    Signal(i32),
    Finished(Result<Finish>),
}

/// Runs the daemon until a stop signal, the end of the test input, or
/// `max_audio_s`. Returns once every open call is closed and every output
/// flushed.
pub fn run(config: Config, options: RunOptions) -> Result<()> {
    let started = Instant::now();
    let model = load_model(&config)?;
    let manifest = model.manifest().clone();
    let config = with_model_endpoint(&config, &manifest)?;
    let manifest_endpoint = manifest.endpoint.clone();
    let (sink_tx, sink_thread) =
        spawn_sink_thread(build_sinks(&config)?).context("starting the output thread")?;
    let (seq, mqtt_sink, mqtt) = start_mqtt(&config, &manifest)?;
    let (control_tx, control_rx) = mpsc::channel();
    let signals = watch_signals(control_tx.clone())?;

    let stop = Arc::new(AtomicBool::new(false));
    let ring_counters = Arc::new(RingCounters::default());
    let capture_counters = Arc::new(CaptureCounters::default());
    let (segment_tx, segment_rx) = mpsc::channel();
    let file_source = start_source(
        &config,
        &options,
        manifest.sample_rate,
        &ring_counters,
        &capture_counters,
        segment_tx,
        &stop,
    )?;

    let (evidence_feed, evidence_thread, evidence_report) = if config.evidence.enabled {
        let delay_s = detection_delay_s(&config.endpoint, &manifest, config.model.hop_frames);
        let (feed, thread, report) = EvidenceFeed::start(&config.evidence, delay_s)
            .context("starting the evidence thread")?;
        (Some(feed), Some(thread), Some(report))
    } else {
        (None, None, None)
    };

    let (command_tx, command_rx) = mpsc::channel();
    let stats = Arc::new(Mutex::new(ProcessingStats::default()));
    let processing = Processing {
        model: Box::new(model),
        detector: DetectorConfig {
            input_rate: manifest.sample_rate,
            gain: config.input.gain,
            hop_frames: config.model.hop_frames,
            centre_weighted: config.model.centre_weighted,
            endpoint: config.endpoint.clone(),
        },
        manifest,
        station: config.station.name.clone(),
        segments: segment_rx,
        commands: command_rx,
        sinks: sinks::SinkFeeder::new(sink_tx.clone()),
        stats: stats.clone(),
        max_audio_s: options.max_audio_s,
        early_start: config.daemon.early_start,
        seq,
        mqtt: mqtt_sink,
        capture: (config.input.kind == InputKind::Device).then(|| capture_counters.clone()),
        evidence: evidence_feed,
        max_clock_drift_s: follows_wall_clock(&config, &options)
            .then_some(config.daemon.max_clock_drift_s),
    };
    let finished_tx = control_tx.clone();
    std::thread::Builder::new()
        .name("rumbled-processing".into())
        .spawn(move || {
            // The control thread outlives this one; if it is gone, so is
            // the process.
            let _ = finished_tx.send(Control::Finished(processing.run()));
        })
        .context("starting the processing thread")?;
    tracing::info!(
        "rumbled {} listening: station {}, input {}",
        env!("CARGO_PKG_VERSION"),
        config.station.name,
        describe_input(&config)
    );

    let mut control = ControlLoop {
        recommended_endpoint: manifest_endpoint,
        config,
        options,
        started,
        command_tx,
        sink_tx,
        ring_counters,
        capture_counters,
        stats,
        mqtt,
        evidence: evidence_report,
    };
    let outcome = control.run(&control_rx, &stop);
    signals.close();
    let config_drain_s = control.config.mqtt.drain_timeout_s;
    let ControlLoop { sink_tx, mqtt, .. } = control;
    drop(sink_tx);
    let deadline = outcome
        .as_ref()
        .map_or_else(|_| Instant::now(), |(_, d)| *d)
        + STOP_DEADLINE;
    // The outputs first: the last events (the ends of calls the stream's
    // end closed) must be in the MQTT spool before `stopped` goes out.
    let outputs = wait_until_finished(&sink_thread, deadline)
        .context("the outputs did not finish writing in time");
    if let Some(mqtt) = mqtt {
        // Publishes what is spooled, then `stopped`, as long as the broker
        // keeps up; whatever is left goes out after the next start.
        mqtt.shutdown(Duration::from_secs_f64(config_drain_s));
    }
    outputs?;
    if let Some(thread) = &evidence_thread
        && wait_until_finished(thread, deadline + EVIDENCE_GRACE).is_err()
    {
        tracing::warn!("stopping before the last calls' evidence was written");
    }
    let finish = outcome?.0;
    if let Some(handle) = file_source
        && handle.is_finished()
        && let Ok(Err(e)) = handle.join()
    {
        return Err(anyhow::Error::new(e).context("the test input failed"));
    }
    tracing::info!("stopped ({})", describe_finish(finish));
    Ok(())
}

/// The persisted sequence source and the MQTT publisher, when `[mqtt]` is
/// enabled; an in-memory sequence otherwise.
fn start_mqtt(
    config: &Config,
    manifest: &Manifest,
) -> Result<(SeqSource, Option<MqttSink>, Option<MqttHandle>)> {
    if !config.mqtt.enabled {
        return Ok((SeqSource::in_memory(), None, None));
    }
    let state = &config.state.dir;
    let seq = SeqSource::open(state, &config.station.name)
        .context("opening the state database (`state.dir`)")?;
    let status = StatusInfo::new(
        config,
        ModelInfo {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
        },
    );
    let (sink, handle) = MqttPublisher::start(
        &config.mqtt,
        &config.station.name,
        Role::Daemon(status),
        state,
    )
    .context("starting the MQTT publisher")?;
    Ok((seq, Some(sink), Some(handle)))
}

/// Whether event times should follow the wall clock: a capture device, or
/// the test input played at (about) real time, which stands in for one. A
/// test input played faster or slower has no wall clock to follow.
fn follows_wall_clock(config: &Config, options: &RunOptions) -> bool {
    config.input.kind == InputKind::Device || (options.speed - 1.0).abs() <= 0.1
}

fn describe_input(config: &Config) -> String {
    match config.input.kind {
        InputKind::Device => format!("device `{}`", config.input.device),
        InputKind::File => format!(
            "test file {}{}",
            config
                .input
                .file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            if config.input.looped { " (looped)" } else { "" }
        ),
    }
}

fn describe_finish(finish: Finish) -> &'static str {
    match finish {
        Finish::Stopped => "on request",
        Finish::SourceEnded => "end of the test input",
        Finish::DurationReached => "requested duration reached",
    }
}

/// Forwards SIGTERM, SIGINT and SIGHUP to the control thread.
fn watch_signals(control: Sender<Control>) -> Result<signal_hook::iterator::Handle> {
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("installing signal handlers")?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("rumbled-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if control.send(Control::Signal(signal)).is_err() {
                    break;
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(handle)
}

/// Starts the configured source; the test input's thread is returned so
/// its error can be reported at the end.
fn start_source(
    config: &Config,
    options: &RunOptions,
    model_rate: u32,
    ring_counters: &Arc<RingCounters>,
    capture_counters: &Arc<CaptureCounters>,
    segments: Sender<Segment>,
    stop: &Arc<AtomicBool>,
) -> Result<Option<JoinHandle<Result<(), AudioError>>>> {
    let input = &config.input;
    let d = &config.daemon;
    match input.kind {
        InputKind::Device => {
            let settings = DeviceSourceConfig {
                device: input.device.clone(),
                channel: input.channel,
                model_rate,
                ring_s: d.ring_s,
                stall_timeout: Duration::from_secs_f64(d.stall_timeout_s),
                retry_initial: Duration::from_secs_f64(d.retry_initial_s),
                retry_max: Duration::from_secs_f64(d.retry_max_s),
            };
            // Not joined: a wedged driver may hold it, and it must not hold
            // up the daemon's exit.
            spawn_device_source(
                settings,
                ring_counters.clone(),
                capture_counters.clone(),
                segments,
                stop.clone(),
            )
            .context("starting the capture thread")?;
            Ok(None)
        }
        InputKind::File => {
            let path = input
                .file
                .clone()
                .ok_or_else(|| anyhow!("input.file must be set when input.kind = \"file\""))?;
            let channel = match input.channel {
                ChannelSelect::Mix => ChannelMode::Mix,
                ChannelSelect::Index(i) => ChannelMode::Pick(i),
            };
            let file = AudioFile::open(&path, channel)?;
            if let Some(note) = file.repaired_header() {
                tracing::warn!("{}: {note}", path.display());
            }
            let rate = file.sample_rate();
            let (writer, reader) = ring(
                (d.ring_s * f64::from(rate)).ceil() as usize,
                ring_counters.clone(),
            );
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            segments
                .send(Segment {
                    reader,
                    rate,
                    kind: "file",
                    name,
                })
                .map_err(|_| anyhow!("the processing thread is not running"))?;
            let cfg = FileSourceConfig {
                path,
                channel,
                looped: input.looped,
                speed: options.speed,
            };
            let handle = spawn_file_source(cfg, file, writer, stop.clone())
                .context("starting the test-input thread")?;
            Ok(Some(handle))
        }
    }
}

/// The control thread's state.
struct ControlLoop {
    config: Config,
    /// The model's recommended `[endpoint]` settings, applied to every
    /// reloaded config as at start.
    recommended_endpoint: Recommended,
    options: RunOptions,
    started: Instant,
    command_tx: Sender<Command>,
    sink_tx: SyncSender<SinkMessage>,
    ring_counters: Arc<RingCounters>,
    capture_counters: Arc<CaptureCounters>,
    stats: Arc<Mutex<ProcessingStats>>,
    /// The MQTT publisher: stats go to `<prefix>/stats`, `stopped` at exit.
    mqtt: Option<MqttHandle>,
    /// What the evidence thread did, when `[evidence]` is on.
    evidence: Option<Arc<Mutex<EvidenceReport>>>,
}

impl ControlLoop {
    /// Handles signals and stats until the processing thread ends; returns
    /// how it ended and the moment the end began (the stop deadline runs
    /// from there).
    fn run(
        &mut self,
        control: &mpsc::Receiver<Control>,
        stop: &AtomicBool,
    ) -> Result<(Finish, Instant)> {
        let every = Duration::from_secs_f64(self.config.daemon.stats_interval_s);
        let mut next_stats = Instant::now() + every;
        loop {
            let wait = next_stats.saturating_duration_since(Instant::now());
            match control.recv_timeout(wait) {
                Ok(Control::Signal(SIGHUP)) => self.reload(),
                Ok(Control::Signal(signal)) => {
                    let asked = Instant::now();
                    let name = if signal == SIGINT {
                        "SIGINT"
                    } else {
                        "SIGTERM"
                    };
                    tracing::info!("{name} received: closing open calls and stopping");
                    notify::stopping();
                    stop.store(true, Ordering::Relaxed);
                    // Fails only if processing already ended; its result
                    // is on the way then.
                    let _ = self.command_tx.send(Command::Stop);
                    let result = wait_for_processing(control, asked + STOP_DEADLINE);
                    self.log_stats();
                    return result.map(|f| (f, asked));
                }
                Ok(Control::Finished(result)) => {
                    stop.store(true, Ordering::Relaxed);
                    self.log_stats();
                    return result.map(|f| (f, Instant::now()));
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.log_stats();
                    next_stats += every;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(anyhow!("the processing thread vanished"));
                }
            }
        }
    }

    /// The health figures now, closing the stats interval, and the
    /// warning for an input that clipped over it.
    fn report(&self) -> (StatsReport, Option<String>) {
        let ring = &self.ring_counters;
        let capacity = ring.capacity.load(Ordering::Relaxed).max(1);
        let high_water = ring.high_water.swap(0, Ordering::Relaxed);
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let (real_time_factor, windows, p50, p95) = stats.take_interval();
        let clipping = std::mem::take(&mut stats.interval_clipping);
        let clip_warning = clipping
            .warning()
            .map(|warning| format!("{}: {warning}", stats.input));
        let report = StatsReport {
            uptime_s: self.started.elapsed().as_secs_f64(),
            samples_in: ring.samples.load(Ordering::Relaxed),
            audio_s: stats.audio_s,
            dropped_samples: ring.dropped.load(Ordering::Relaxed),
            deaf_s: stats.deaf_s,
            device_restarts: self.capture_counters.lost.load(Ordering::Relaxed),
            device_xruns: self.capture_counters.xruns.load(Ordering::Relaxed),
            ring_fill_max: high_water as f64 / capacity as f64,
            clipped_fraction: clipping.fraction(),
            real_time_factor,
            windows,
            inference_ms_p50: p50,
            inference_ms_p95: p95,
            open_calls: stats.open_calls,
            events: stats.events,
            clock_drift_s: stats.clock_drift_s,
            reanchors: stats.reanchors,
            evidence: self
                .evidence
                .as_ref()
                .map(|r| *r.lock().unwrap_or_else(|e| e.into_inner())),
        };
        (report, clip_warning)
    }

    fn log_stats(&self) {
        let (report, clip_warning) = self.report();
        tracing::info!("{}", report.log_line());
        if let Some(warning) = clip_warning {
            tracing::warn!("{warning}");
        }
        if let Some(mqtt) = &self.mqtt {
            let payload = serde_json::json!({ "health": report, "mqtt": mqtt.stats() });
            if let Err(e) = mqtt.publish_stats(&payload) {
                tracing::warn!("stats not published: {e:#}");
            }
        }
    }

    /// SIGHUP: re-reads the configuration and applies what can change while
    /// running; an invalid file changes nothing.
    fn reload(&mut self) {
        let new = (self.options.reload)().and_then(|mut new| {
            new.adopt_recommended_endpoint(&self.recommended_endpoint)
                .context("the model's recommended [endpoint] settings")?;
            Ok(new)
        });
        let new = match new {
            Ok(new) => new,
            Err(e) => {
                tracing::error!("reload failed, keeping the running configuration: {e:#}");
                return;
            }
        };
        let mut applied = Vec::new();
        if new.endpoint != self.config.endpoint {
            let (reply_tx, reply_rx) = mpsc::channel();
            let asked = self
                .command_tx
                .send(Command::SetEndpoint(new.endpoint.clone(), reply_tx));
            match asked.map(|()| reply_rx.recv_timeout(Duration::from_secs(5))) {
                Ok(Ok(Ok(()))) => {
                    self.config.endpoint = new.endpoint.clone();
                    applied.push("endpoint");
                }
                Ok(Ok(Err(e))) => {
                    tracing::error!("reload: {e}; keeping the running [endpoint] settings");
                }
                _ => tracing::error!(
                    "reload: the processing thread did not answer; [endpoint] unchanged"
                ),
            }
        }
        if sinks_changed(&self.config, &new) {
            match build_sinks(&new) {
                Ok(sinks) => {
                    if self.sink_tx.send(SinkMessage::Replace(sinks)).is_ok() {
                        self.config.output = new.output.clone();
                        applied.push("output");
                    }
                }
                Err(e) => tracing::error!("reload: {e:#}; keeping the running outputs"),
            }
        }
        let pending = changed_sections(&self.config, &new);
        if !pending.is_empty() {
            tracing::warn!(
                "reload: [{}] changed; restart rumbled to apply",
                pending.join("], [")
            );
        }
        tracing::info!(
            "configuration reloaded: {}",
            if applied.is_empty() {
                "nothing to apply".to_owned()
            } else {
                format!("applied [{}]", applied.join("], ["))
            }
        );
    }
}

/// Top-level sections that differ between two configurations.
fn changed_sections(old: &Config, new: &Config) -> Vec<String> {
    let table = |c: &Config| match toml::Value::try_from(c) {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    let (old, new) = (table(old), table(new));
    let mut keys: Vec<_> = old.keys().chain(new.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.retain(|k| old.get(k) != new.get(k));
    keys
}

/// Waits for the processing thread's result until `deadline`.
fn wait_for_processing(control: &mpsc::Receiver<Control>, deadline: Instant) -> Result<Finish> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match control.recv_timeout(left) {
            Ok(Control::Finished(result)) => return result,
            // A second stop signal changes nothing; a reload is moot now.
            Ok(Control::Signal(_)) => {}
            Err(_) => {
                return Err(anyhow!(
                    "processing did not finish within {:.1} s of the stop signal; \
                     the end events of open calls may be missing",
                    STOP_DEADLINE.as_secs_f64()
                ));
            }
        }
    }
}

fn wait_until_finished<T>(thread: &JoinHandle<T>, deadline: Instant) -> Result<()> {
    while !thread.is_finished() {
        if Instant::now() >= deadline {
            return Err(anyhow!("gave up waiting"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_sections_names_each_section_once() {
        let old = Config::default();
        let mut new = old.clone();
        assert!(changed_sections(&old, &new).is_empty());
        new.input.device = "usb".into();
        new.input.gain = 2.0;
        new.endpoint.onset = 0.7;
        assert_eq!(changed_sections(&old, &new), ["endpoint", "input"]);
    }
}
