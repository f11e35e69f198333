//! `rumbled replay`: recordings in, calls out, as fast as the CPU allows.
//!
//! Each file runs through a fresh [`Detector`] (its own clock, anchored at
//! the recording's start when known) sharing one loaded model. A bad file is
//! reported and skipped; the others are still processed.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use time::OffsetDateTime;

use crate::audio::{AudioFile, ChannelMode, ClipMeter};
use crate::clock;
use crate::config::{ChannelSelect, Config};
use crate::detect::{CallPhase, CallRecord, StreamContext};
use crate::model::{Manifest, Model, ModelOptions};
use crate::pipeline::{Detector, DetectorConfig, DetectorOutput, StageTimes};
use crate::publish::{
    EventSink, FanOut, FrameCsvWriter, JsonlSink, MqttHandle, MqttPublisher, RavenWriter, Role,
    SeqSource,
};

/// Name of the shipped default model's manifest.
pub const DEFAULT_MANIFEST: &str = "rumbled-edge-ev5.json";

/// Samples read from a file per step: 1 s at 16 kHz, small enough for a
/// smooth progress bar, large enough that per-call overhead vanishes.
const READ_CHUNK: usize = 16_000;

/// What to replay and where results go.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    /// Recordings, processed in order.
    pub files: Vec<PathBuf>,
    /// JSONL events file (`-` = stdout).
    pub events: Option<PathBuf>,
    /// Directory for Raven selection tables.
    pub raven_dir: Option<PathBuf>,
    /// Per-frame probabilities CSV.
    pub frames: Option<PathBuf>,
    /// Anchor for files whose names carry no time stamp.
    pub start_time: Option<OffsetDateTime>,
    /// Print each call as it ends.
    pub print_calls: bool,
}

/// The outcome for one file.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The recording.
    pub path: PathBuf,
    /// Seconds of audio processed (up to the error, if any).
    pub audio_s: f64,
    /// Calls found, per label.
    pub calls: BTreeMap<String, usize>,
    /// Why the file failed, if it did (calls found before are kept).
    pub error: Option<String>,
    /// What was odd about it without stopping it (a repaired header, a
    /// rate below the model's training rates), also logged as it happens.
    pub warnings: Vec<String>,
}

impl FileReport {
    /// Logs a warning about this file and keeps it for the summary, so
    /// that in a batch of thousands it is counted, not just scrolled past.
    fn warn(&mut self, warning: String) {
        tracing::warn!("{}: {warning}", self.path.display());
        self.warnings.push(warning);
    }
}

/// The outcome of a whole replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// One entry per file, in order.
    pub files: Vec<FileReport>,
    /// Wall-clock time spent.
    pub elapsed: Duration,
    /// Where the time went.
    pub stages: StageTimes,
}

impl ReplayReport {
    /// Files that could not be processed completely.
    pub fn failed_files(&self) -> usize {
        self.files.iter().filter(|f| f.error.is_some()).count()
    }

    /// Files processed, but with warnings.
    pub fn warned_files(&self) -> usize {
        self.files.iter().filter(|f| !f.warnings.is_empty()).count()
    }

    /// Calls per label over all files.
    pub fn calls(&self) -> BTreeMap<String, usize> {
        let mut total = BTreeMap::new();
        for (label, n) in self.files.iter().flat_map(|f| &f.calls) {
            *total.entry(label.clone()).or_insert(0) += n;
        }
        total
    }

    /// Audio processed, in seconds.
    pub fn audio_s(&self) -> f64 {
        self.files.iter().map(|f| f.audio_s).sum()
    }

    /// The one-line summary printed at the end.
    pub fn summary_line(&self) -> String {
        let calls = self.calls();
        let total: usize = calls.values().sum();
        let per_class: Vec<String> = calls.iter().map(|(l, n)| format!("{l} {n}")).collect();
        let problems: Vec<String> = [
            (self.failed_files(), "failed"),
            (self.warned_files(), "with warnings"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        let problems = if problems.is_empty() {
            String::new()
        } else {
            format!(" ({})", problems.join(", "))
        };
        let speed = self.audio_s() / self.elapsed.as_secs_f64().max(1e-9);
        format!(
            "{} file{}{problems}, {:.3} h of audio, {total} call{}{}, {:.0}x real time",
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" },
            self.audio_s() / 3600.0,
            if total == 1 { "" } else { "s" },
            if per_class.is_empty() {
                String::new()
            } else {
                format!(" ({})", per_class.join(", "))
            },
            speed
        )
    }
}

/// Sees each file of a replay as it is processed: its samples, final frame
/// probabilities and call records, in stream order. `--plot`, `--clips` and
/// `rumbled eval` are observers, so they see exactly what the other
/// outputs see.
pub trait ReplayObserver {
    /// A file starts: its stream context, the model and the file's sample
    /// rate. An error fails the file.
    fn begin_file(
        &mut self,
        path: &Path,
        ctx: &StreamContext,
        manifest: &Manifest,
        sample_rate: u32,
    ) -> Result<()>;
    /// The file's next samples (mono, at its own rate, before gain), given
    /// before the detector hears them.
    fn samples(&mut self, _samples: &[f32]) {}
    /// Final probabilities, one row of `ctx.labels.len()` values per frame,
    /// from frame `first_frame` on.
    fn frames(&mut self, _first_frame: u64, _probs: &[f32]) {}
    /// A call record (any phase), after the frames it was decided on.
    fn record(&mut self, _record: &CallRecord) {}
    /// The file is done, `audio_s` seconds of it read (also after a decode
    /// error part-way). An error fails the file.
    fn end_file(&mut self, _audio_s: f64) -> Result<()> {
        Ok(())
    }
}

/// Finds the manifest to use: the configured one, or the shipped default
/// next to the binary, in the package's share directory, or in the checkout.
pub fn manifest_path(config: &Config) -> PathBuf {
    if let Some(path) = &config.model.manifest {
        return path.clone();
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("../share/rumbled/models").join(DEFAULT_MANIFEST));
    }
    candidates.push(Path::new("/usr/share/rumbled/models").join(DEFAULT_MANIFEST));
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(DEFAULT_MANIFEST),
    );
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| candidates.remove(candidates.len() - 1))
}

/// Loads and validates the configured model.
pub fn load_model(config: &Config) -> Result<Model> {
    let manifest = Manifest::load(&manifest_path(config))?;
    let options = ModelOptions {
        onnxruntime: config.model.onnxruntime.clone(),
        threads: config.model.threads,
    };
    Ok(Model::load(manifest, &options)?)
}

/// `config` with the model's recommended `[endpoint]` settings wherever it
/// has none of its own.
pub fn with_model_endpoint(config: &Config, manifest: &Manifest) -> Result<Config> {
    let mut config = config.clone();
    config
        .adopt_recommended_endpoint(&manifest.endpoint)
        .with_context(|| format!("model {}", manifest.path.display()))?;
    if !manifest.endpoint.is_empty() {
        tracing::info!(
            "endpoint settings: {} (model {} recommends {})",
            serde_json::to_string(&config.endpoint)?,
            manifest.name,
            serde_json::to_string(&manifest.endpoint)?
        );
    }
    Ok(config)
}

/// Replays every file of `request`; fails only when nothing can start
/// (model, output files); per-file problems are in the report.
pub fn run(config: &Config, request: &ReplayRequest) -> Result<ReplayReport> {
    run_observed(config, request, &mut [])
}

/// [`run`], with `observers` shown every file as it is processed.
pub fn run_observed(
    config: &Config,
    request: &ReplayRequest,
    observers: &mut [&mut dyn ReplayObserver],
) -> Result<ReplayReport> {
    let mut model = load_model(config)?;
    let config = &with_model_endpoint(config, model.manifest())?;
    let mut events = open_events(request.events.as_deref())?;
    let (mut seq, mqtt) = start_mqtt(config, &mut events)?;
    if let Some(dir) = &request.raven_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create Raven directory {}", dir.display()))?;
    }
    let started = Instant::now();
    let mut report = ReplayReport::default();
    let progress = progress_bar(&request.files);
    for path in &request.files {
        let mut job = FileJob {
            config,
            request,
            model: &mut model,
            events: events.as_deref_mut(),
            seq: &mut seq,
            progress: &progress,
            observers: &mut *observers,
        };
        let file_report = job.run(path);
        if let Some(error) = &file_report.0.error {
            progress.suspend(|| tracing::error!("{error}"));
        }
        add_times(&mut report.stages, file_report.1);
        report.files.push(file_report.0);
    }
    progress.finish_and_clear();
    if let Some(sink) = events.as_deref_mut() {
        sink.close().context("closing the events output")?;
    }
    if let Some(handle) = mqtt {
        finish_mqtt(handle, config);
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

fn add_times(total: &mut StageTimes, t: StageTimes) {
    total.resample += t.resample;
    total.fbank += t.fbank;
    total.model += t.model;
    total.endpoint += t.endpoint;
}

/// With `[mqtt] enabled` (`replay --mqtt`): events are numbered in the
/// station's persisted sequence and also published through the spool, so a
/// replay on a station checks the whole chain to the subscriber. Otherwise
/// numbers start at 1 and nothing is published.
fn start_mqtt(
    config: &Config,
    events: &mut Option<Box<dyn EventSink>>,
) -> Result<(SeqSource, Option<MqttHandle>)> {
    if !config.mqtt.enabled {
        return Ok((SeqSource::in_memory(), None));
    }
    let (station, state) = (&config.station.name, &config.state.dir);
    let seq =
        SeqSource::open(state, station).context("opening the state database (`state.dir`)")?;
    let (sink, handle) = MqttPublisher::start(&config.mqtt, station, Role::Replay, state)
        .context("starting MQTT publishing")?;
    let mut sinks: Vec<Box<dyn EventSink>> = events.take().into_iter().collect();
    sinks.push(Box::new(sink));
    *events = Some(Box::new(FanOut(sinks)));
    Ok((seq, Some(handle)))
}

/// Waits up to `[mqtt] drain_timeout_s` for the broker to acknowledge
/// every spooled event; what is left stays spooled for the next run.
fn finish_mqtt(handle: MqttHandle, config: &Config) {
    let timeout = Duration::from_secs_f64(config.mqtt.drain_timeout_s);
    let drained = handle.wait_drained(timeout);
    let stats = handle.stats();
    if drained {
        tracing::info!(
            acked = stats.acked,
            "MQTT: every event acknowledged by the broker"
        );
    } else {
        tracing::warn!(
            spooled = stats.spool_depth,
            "MQTT: {} event(s) not acknowledged within {timeout:?}; they stay in the spool and go out with the next `replay --mqtt`",
            stats.spool_depth
        );
    }
    handle.shutdown(Duration::from_secs(2));
}

fn open_events(path: Option<&Path>) -> Result<Option<Box<dyn EventSink>>> {
    let Some(path) = path else { return Ok(None) };
    if path == Path::new("-") {
        return Ok(Some(Box::new(JsonlSink::new(
            std::io::stdout(),
            "standard output",
        ))));
    }
    let file = File::create(path)
        .with_context(|| format!("cannot create events file {}", path.display()))?;
    Ok(Some(Box::new(JsonlSink::new(
        file,
        path.display().to_string(),
    ))))
}

/// A progress bar over total audio frames, drawn only on a terminal.
fn progress_bar(files: &[PathBuf]) -> ProgressBar {
    let total: u64 = files
        .iter()
        .filter_map(|p| AudioFile::open(p, ChannelMode::Mix).ok())
        .filter_map(|f| {
            f.total_frames()
                .map(|n| n * 1000 / u64::from(f.sample_rate().max(1)))
        })
        .sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} ms audio ({eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// One file's run: decode, detect, write.
struct FileJob<'a, 'o> {
    config: &'a Config,
    request: &'a ReplayRequest,
    model: &'a mut Model,
    events: Option<&'a mut (dyn EventSink + 'static)>,
    seq: &'a mut SeqSource,
    progress: &'a ProgressBar,
    observers: &'a mut [&'o mut dyn ReplayObserver],
}

/// Per-file outputs that follow the file's own timeline.
struct FileOutputs {
    raven: Option<RavenWriter<File>>,
    frames: Option<FrameCsvWriter<File>>,
}

impl FileJob<'_, '_> {
    fn run(&mut self, path: &Path) -> (FileReport, StageTimes) {
        let mut report = FileReport {
            path: path.to_path_buf(),
            audio_s: 0.0,
            calls: BTreeMap::new(),
            error: None,
            warnings: Vec::new(),
        };
        let mut times = StageTimes::default();
        if let Err(e) = self.process(path, &mut report, &mut times) {
            report.error = Some(format!("{e:#}"));
        }
        (report, times)
    }

    fn process(
        &mut self,
        path: &Path,
        report: &mut FileReport,
        times: &mut StageTimes,
    ) -> Result<()> {
        let channel = match self.config.input.channel {
            ChannelSelect::Mix => ChannelMode::Mix,
            ChannelSelect::Index(i) => ChannelMode::Pick(i),
        };
        let mut audio = AudioFile::open(path, channel)?;
        if let Some(note) = audio.repaired_header() {
            report.warn(note.to_owned());
        }
        let manifest = self.model.manifest().clone();
        let rate = audio.sample_rate();
        if let Some(warning) = manifest.input_rate_warning(rate) {
            report.warn(warning);
        }
        let mut detector = Detector::new(
            &manifest,
            &DetectorConfig {
                input_rate: rate,
                gain: self.config.input.gain,
                hop_frames: self.config.model.hop_frames,
                centre_weighted: self.config.model.centre_weighted,
                endpoint: self.config.endpoint.clone(),
            },
        )?;
        let ctx = self.stream_context(path, &manifest);
        let mut outputs = self.open_file_outputs(path, &ctx, rate)?;
        for observer in self.observers.iter_mut() {
            observer.begin_file(path, &ctx, &manifest, rate)?;
        }
        let mut samples = Vec::with_capacity(READ_CHUNK);
        let mut clipping = ClipMeter::default();
        let mut out = DetectorOutput::default();
        let chunk = (READ_CHUNK as u64 * u64::from(rate) / 16_000).max(256) as usize;
        // A decode error mid-file still flushes the detector, so calls heard
        // before the damage are closed and written, never dropped.
        let read_result = loop {
            samples.clear();
            match audio.read(&mut samples, chunk) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    clipping.push(&samples);
                    for observer in self.observers.iter_mut() {
                        observer.samples(&samples);
                    }
                    out.clear();
                    detector.push(&samples, &mut *self.model, &mut out)?;
                    self.deliver(&out, &ctx, &mut outputs, report)?;
                    self.progress.inc(n as u64 * 1000 / u64::from(rate.max(1)));
                }
                Err(e) => break Err(e),
            }
        };
        out.clear();
        detector.finish(&mut *self.model, &mut out)?;
        self.deliver(&out, &ctx, &mut outputs, report)?;
        report.audio_s = detector.samples_in() as f64 / f64::from(rate.max(1));
        if let Some(warning) = clipping.warning() {
            report.warn(warning);
        }
        *times = detector.stage_times();
        if let Some(raven) = outputs.raven.as_mut() {
            raven.close()?;
        }
        if let Some(frames) = outputs.frames.as_mut() {
            frames.flush().context("writing the frames CSV")?;
        }
        // Every observer finishes its file even if one fails, so none is
        // left half-way; the first failure is the file's.
        let mut observed = Ok(());
        for observer in self.observers.iter_mut() {
            let result = observer.end_file(report.audio_s);
            if observed.is_ok() {
                observed = result;
            }
        }
        read_result?;
        observed
    }

    fn stream_context(&self, path: &Path, manifest: &Manifest) -> StreamContext {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let anchor = clock::anchor_from_file_name(&name).or(self.request.start_time);
        StreamContext {
            anchor,
            ..StreamContext::new(manifest, &self.config.station.name, "file", &name)
        }
    }

    fn open_file_outputs(
        &self,
        path: &Path,
        ctx: &StreamContext,
        rate: u32,
    ) -> Result<FileOutputs> {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "audio".into());
        let raven = match &self.request.raven_dir {
            Some(dir) => {
                let table = dir.join(format!("{stem}.rumbled.selections.txt"));
                let file = File::create(&table)
                    .with_context(|| format!("cannot create Raven table {}", table.display()))?;
                let name = table.display().to_string();
                Some(
                    RavenWriter::new(file, name, path, f64::from(rate) / 2.0)
                        .with_context(|| format!("cannot write Raven table {}", table.display()))?,
                )
            }
            None => None,
        };
        let frames = match &self.request.frames {
            Some(target) => {
                let target = per_file_path(target, &stem, self.request.files.len() > 1);
                let file = File::create(&target)
                    .with_context(|| format!("cannot create frames file {}", target.display()))?;
                Some(
                    FrameCsvWriter::new(file, ctx).with_context(|| {
                        format!("cannot write frames file {}", target.display())
                    })?,
                )
            }
            None => None,
        };
        Ok(FileOutputs { raven, frames })
    }

    fn deliver(
        &mut self,
        out: &DetectorOutput,
        ctx: &StreamContext,
        outputs: &mut FileOutputs,
        report: &mut FileReport,
    ) -> Result<()> {
        if let Some(frames) = outputs.frames.as_mut() {
            for (i, row) in out.probs.chunks_exact(ctx.labels.len()).enumerate() {
                frames
                    .write_frame(out.first_frame + i as u64, row)
                    .context("writing the frames CSV")?;
            }
        }
        for observer in self.observers.iter_mut() {
            observer.frames(out.first_frame, &out.probs);
        }
        for event in &out.events {
            let seq = self.seq.next_seq().context("numbering an event")?;
            let record = CallRecord::from_event(event, ctx, seq);
            for observer in self.observers.iter_mut() {
                observer.record(&record);
            }
            if let Some(sink) = self.events.as_deref_mut() {
                sink.emit(&record).context("writing an event")?;
            }
            if event.phase != CallPhase::End {
                continue;
            }
            *report.calls.entry(record.label.clone()).or_insert(0) += 1;
            if let Some(raven) = outputs.raven.as_mut() {
                raven.emit(&record)?;
            }
            if self.request.print_calls {
                let line = format!(
                    "{}\t{:>9.2} s\t{:>6.2} s\t{:<8}\t{:.2}",
                    ctx.source_name,
                    record.offset_s,
                    record.duration_s.unwrap_or(0.0),
                    record.label,
                    record.confidence
                );
                self.progress.suspend(|| println!("{line}"));
            }
        }
        Ok(())
    }
}

/// `out.csv` for one recording; `out.<recording>.csv` when there are several
/// (any per-recording output: frame CSVs, plots).
pub fn per_file_path(target: &Path, stem: &str, several: bool) -> PathBuf {
    if !several {
        return target.to_path_buf();
    }
    let base = target
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = target
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "csv".into());
    target.with_file_name(format!("{base}.{stem}.{ext}"))
}
