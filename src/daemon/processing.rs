//! The processing thread: ring buffer in, call events out.
//!
//! It owns the model and drives a [`Detector`] exactly as `replay` does; only
//! the source differs. Each [`Segment`] (a capture stream from open to loss,
//! or the test input) is one stream with its own clock: its UTC anchor is
//! taken when its first samples arrive, and its events are timed by the
//! sample counter from there. A gap inside a segment (samples dropped
//! because processing fell behind) ends the stream at the exact sample and
//! starts the next one at the exact sample after the gap, so the clock stays
//! right and every call is either complete or marked truncated.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use time::OffsetDateTime;

use super::drift::{DRIFT_WINDOW, DriftWatch};
use super::early::EarlyStarts;
use super::evidence::EvidenceFeed;
use super::notify::Notifier;
use super::sinks::SinkFeeder;
use crate::audio::ClipMeter;
use crate::audio::capture::CaptureCounters;
use crate::audio::source::{ReadOutcome, Segment};
use crate::detect::{CallRecord, EndpointConfig, StreamContext};
use crate::model::{Manifest, WindowModel};
use crate::pipeline::{Detector, DetectorConfig, DetectorOutput};
use crate::publish::{EventSink, MqttSink, SeqSource};
use crate::stats::{ProcessingStats, TimedModel};

/// How long the thread sleeps when the ring is empty: samples pile up in the
/// ring meanwhile, so this only sets how bursty processing is.
const POLL: Duration = Duration::from_millis(50);

/// Most samples pushed through the detector at once (0.5 s at 16 kHz).
const MAX_CHUNK: usize = 8_000;

/// Requests to the processing thread.
pub enum Command {
    /// Apply new endpointing rules; the reply says whether they were taken.
    SetEndpoint(EndpointConfig, Sender<Result<(), String>>),
    /// Read what is already buffered, close open calls, and end.
    Stop,
}

/// Why the processing thread ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Asked to stop.
    Stopped,
    /// The source ended (the test input, not looped).
    SourceEnded,
    /// The requested amount of audio was processed.
    DurationReached,
}

/// Everything the thread needs.
pub struct Processing {
    /// The model, owned by this thread.
    pub model: Box<dyn WindowModel + Send>,
    /// Its manifest.
    pub manifest: Manifest,
    /// Detector settings; `input_rate` is replaced by each segment's rate.
    pub detector: DetectorConfig,
    /// Station name for the events.
    pub station: String,
    /// Streams from the source, in order.
    pub segments: Receiver<Segment>,
    /// Requests from the control thread.
    pub commands: Receiver<Command>,
    /// Where events go.
    pub sinks: SinkFeeder,
    /// Shared with the stats reporter.
    pub stats: Arc<Mutex<ProcessingStats>>,
    /// Stop after this many seconds of audio.
    pub max_audio_s: Option<f64>,
    /// Announce calls from provisional frames ([`EarlyStarts`]).
    pub early_start: bool,
    /// Numbers records per station; persisted across restarts when MQTT
    /// is on, so subscribers see `seq` keep increasing.
    pub seq: SeqSource,
    /// The MQTT spool, fed here rather than through the output thread so a
    /// reload that replaces the file outputs never drops it. Its `emit` is
    /// a local disk write, never a network wait.
    pub mqtt: Option<MqttSink>,
    /// The capture supervisor's counters, when the source is a device: while
    /// it reopens a lost device, waiting for audio is not a stall.
    pub capture: Option<Arc<CaptureCounters>>,
    /// Per-call evidence (`[evidence] enabled`): fed the samples and
    /// records, written on a thread of its own.
    pub evidence: Option<EvidenceFeed>,
    /// Largest tolerated gap between the sample clock and UTC before a
    /// stream is re-anchored ([`super::drift`]); `None` where the source
    /// has no real-time clock (a test input played fast).
    pub max_clock_drift_s: Option<f64>,
}

/// The segment being read and its detector.
struct Stream {
    segment: Segment,
    detector: Detector,
    ctx: StreamContext,
    early: Option<EarlyStarts>,
    /// Samples of the current detector's stream (since the segment start
    /// or the last gap).
    detector_samples: u64,
    anchored: bool,
    drift: DriftWatch,
}

impl Processing {
    /// Runs until stopped, the source ends or the audio limit is reached.
    pub fn run(mut self) -> Result<Finish> {
        let mut state = State {
            seq: 0,
            first_anchor: None,
            prev_end: None,
            remaining_s: self.max_audio_s,
            stopping: false,
            gaps: GapLog::default(),
            out: DetectorOutput::default(),
            records: Vec::new(),
            times_ms: Vec::new(),
            clipping: ClipMeter::default(),
        };
        let mut current: Option<Stream> = None;
        let mut buf = Vec::with_capacity(MAX_CHUNK);
        let mut notifier = Notifier::from_env();
        let finish = loop {
            if self.capture.as_ref().is_some_and(|c| c.recovering()) {
                notifier.source_recovering();
            }
            notifier.tick();
            self.handle_commands(&mut state, current.as_mut());
            let Some(stream) = current.as_mut() else {
                if state.stopping {
                    break Finish::Stopped;
                }
                match self.segments.recv_timeout(POLL) {
                    Ok(segment) => current = Some(self.open_stream(segment)?),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break Finish::SourceEnded,
                }
                continue;
            };
            buf.clear();
            match stream.segment.reader.read(&mut buf, MAX_CHUNK) {
                ReadOutcome::Samples(n) => {
                    if !stream.anchored {
                        self.anchor(stream, n, &mut state);
                    }
                    let reached = self.push(stream, &mut buf, &mut state)?;
                    self.watch_clock(stream);
                    notifier.audio_flowed();
                    if reached {
                        self.end_stream(stream, &mut state)?;
                        break Finish::DurationReached;
                    }
                }
                ReadOutcome::Gap(gap) => {
                    let lost = gap.len as f64 / f64::from(stream.segment.rate);
                    state.gaps.note(lost);
                    self.end_stream(stream, &mut state)?;
                    self.lock_stats().deaf_s += lost;
                    self.restart_after_gap(stream, gap.len)?;
                }
                ReadOutcome::Empty if state.stopping => {
                    self.end_stream(stream, &mut state)?;
                    break Finish::Stopped;
                }
                ReadOutcome::Empty => match self.segments.try_recv() {
                    // The source only opens a new stream after giving up the
                    // old one, whose end may never be seen (a stuck driver
                    // keeps the ring's writer alive): switch now.
                    Ok(next) => {
                        self.end_stream(stream, &mut state)?;
                        current = Some(self.open_stream(next)?);
                    }
                    // Nothing new, or a source that has no more streams to
                    // give (the test input): wait for samples.
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                        self.sinks.pump();
                        std::thread::sleep(POLL);
                    }
                },
                ReadOutcome::Ended => {
                    self.end_stream(stream, &mut state)?;
                    current = None;
                }
            }
        };
        self.sinks.drain();
        Ok(finish)
    }

    fn handle_commands(&mut self, state: &mut State, stream: Option<&mut Stream>) {
        let mut stream = stream;
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Stop => state.stopping = true,
                Command::SetEndpoint(cfg, reply) => {
                    let result = match stream.as_deref_mut() {
                        Some(s) => {
                            let applied = s.detector.set_endpoint_config(&cfg);
                            if let (Ok(()), Some(early)) = (&applied, s.early.as_mut()) {
                                early.set_rules(&cfg, s.ctx.frame_s);
                            }
                            applied.map_err(|e| e.to_string())
                        }
                        None => Ok(()),
                    };
                    if result.is_ok() {
                        self.detector.endpoint = cfg;
                    }
                    // The control thread may have given up waiting; the
                    // outcome is logged there either way.
                    let _ = reply.send(result);
                }
            }
        }
    }

    fn open_stream(&mut self, segment: Segment) -> Result<Stream> {
        if let Some(warning) = self.manifest.input_rate_warning(segment.rate) {
            tracing::warn!("{} {}: {warning}", segment.kind, segment.name);
        }
        self.lock_stats().input = format!("{} {}", segment.kind, segment.name);
        let ctx = StreamContext::new(&self.manifest, &self.station, segment.kind, &segment.name);
        let detector = self.new_detector(segment.rate)?;
        Ok(Stream {
            segment,
            detector,
            early: self.new_early(&ctx),
            ctx,
            detector_samples: 0,
            anchored: false,
            drift: DriftWatch::new(DRIFT_WINDOW),
        })
    }

    fn new_detector(&self, rate: u32) -> Result<Detector> {
        let cfg = DetectorConfig {
            input_rate: rate,
            ..self.detector.clone()
        };
        Detector::new(&self.manifest, &cfg).context("setting up the detector")
    }

    fn new_early(&self, ctx: &StreamContext) -> Option<EarlyStarts> {
        let hop = (self.detector.hop_frames * self.manifest.output.frames_per_output) as u64;
        self.early_start
            .then(|| EarlyStarts::new(&self.detector.endpoint, ctx.frame_s, hop))
    }

    /// Anchors a new segment: its first sample was captured `n + waiting`
    /// samples before now.
    fn anchor(&mut self, stream: &mut Stream, n: usize, state: &mut State) {
        let rate = f64::from(stream.segment.rate);
        let buffered = (n + stream.segment.reader.available()) as f64 / rate;
        let anchor = OffsetDateTime::now_utc() - time::Duration::seconds_f64(buffered);
        let first = *state.first_anchor.get_or_insert(anchor);
        stream.ctx.anchor = Some(anchor);
        stream.ctx.offset_base_s = (anchor - first).as_seconds_f64().max(0.0);
        stream.anchored = true;
        if let Some(evidence) = self.evidence.as_mut() {
            evidence.new_stream(stream.segment.rate, stream.ctx.offset_base_s);
        }
        if let Some(prev_end) = state.prev_end {
            let deaf = (anchor - prev_end).as_seconds_f64();
            if deaf > 0.0 {
                tracing::warn!(
                    "listening again on {} after {deaf:.1} s without audio",
                    stream.segment.name
                );
                self.lock_stats().deaf_s += deaf;
            }
        }
    }

    /// The next stream of a segment starts right after a gap of `lost`
    /// samples, anchored and offset at its own first sample, so times stay
    /// exact.
    fn restart_after_gap(&mut self, stream: &mut Stream, lost: u64) -> Result<()> {
        let skip_s = (stream.detector_samples + lost) as f64 / f64::from(stream.segment.rate);
        stream.ctx.offset_base_s += skip_s;
        stream.ctx.anchor = stream
            .ctx
            .anchor
            .map(|anchor| anchor + time::Duration::seconds_f64(skip_s));
        stream.detector_samples = 0;
        stream.drift.reset();
        stream.detector = self.new_detector(stream.segment.rate)?;
        stream.early = self.new_early(&stream.ctx);
        if let Some(evidence) = self.evidence.as_mut() {
            evidence.new_stream(stream.segment.rate, stream.ctx.offset_base_s);
        }
        Ok(())
    }

    /// Compares the sample clock with the wall clock after a read, and
    /// moves the stream's anchor when they have parted by more than allowed
    /// and no call is open (a call keeps one anchor, and with it one id and
    /// consistent times).
    fn watch_clock(&mut self, stream: &mut Stream) {
        let (Some(max), Some(anchor)) = (self.max_clock_drift_s, stream.ctx.anchor) else {
            return;
        };
        let rate = f64::from(stream.segment.rate);
        let seconds = time::Duration::seconds_f64;
        let by_counter = anchor + seconds(stream.detector_samples as f64 / rate);
        let waiting = stream.segment.reader.available() as f64 / rate;
        let by_wall = OffsetDateTime::now_utc() - seconds(waiting);
        let lead = (by_counter - by_wall).as_seconds_f64();
        let Some(drift) = stream.drift.observe(lead, Instant::now()) else {
            return;
        };
        self.lock_stats().clock_drift_s = drift;
        if drift.abs() <= max || stream.detector.open_calls() > 0 {
            return;
        }
        stream.ctx.anchor = Some(anchor - seconds(drift));
        stream.drift.reset();
        self.lock_stats().reanchors += 1;
        tracing::info!(
            "the sample clock of {} ran {:.3} s {} UTC; event times re-anchored",
            stream.segment.name,
            drift.abs(),
            if drift > 0.0 { "ahead of" } else { "behind" }
        );
    }

    /// Pushes `buf` through the detector; true when the audio limit is hit.
    fn push(&mut self, stream: &mut Stream, buf: &mut Vec<f32>, state: &mut State) -> Result<bool> {
        let rate = f64::from(stream.segment.rate);
        let mut reached = false;
        if let Some(remaining) = state.remaining_s.as_mut() {
            let allowed = (*remaining * rate).round().max(0.0) as usize;
            if buf.len() >= allowed {
                buf.truncate(allowed);
                reached = true;
            }
            *remaining -= buf.len() as f64 / rate;
        }
        if let Some(evidence) = self.evidence.as_mut() {
            evidence.samples(buf);
        }
        state.clipping.push(buf);
        let started = Instant::now();
        state.out.clear();
        {
            let mut timed = TimedModel::new(&mut *self.model, &mut state.times_ms);
            stream.detector.push(buf, &mut timed, &mut state.out)?;
        }
        stream.detector_samples += buf.len() as u64;
        self.deliver(stream, state, started, buf.len() as f64 / rate, false)?;
        Ok(reached)
    }

    /// Ends the detector's stream: flushes it, closing open calls.
    fn end_stream(&mut self, stream: &mut Stream, state: &mut State) -> Result<()> {
        let started = Instant::now();
        state.out.clear();
        {
            let mut timed = TimedModel::new(&mut *self.model, &mut state.times_ms);
            stream.detector.finish(&mut timed, &mut state.out)?;
        }
        if let Some(anchor) = stream.ctx.anchor {
            state.prev_end = Some(
                anchor
                    + time::Duration::seconds_f64(
                        stream.detector_samples as f64 / f64::from(stream.segment.rate),
                    ),
            );
        }
        self.deliver(stream, state, started, 0.0, true)
    }

    /// Publishes the events of the last push (`last`: of the stream's end).
    fn deliver(
        &mut self,
        stream: &mut Stream,
        state: &mut State,
        started: Instant,
        audio_s: f64,
        last: bool,
    ) -> Result<()> {
        let events = &state.out.events;
        let records = &mut state.records;
        match stream.early.as_mut() {
            Some(early) if last => early.finish(events, &stream.ctx, records),
            Some(early) => {
                let mut timed = TimedModel::new(&mut *self.model, &mut state.times_ms);
                early.records(
                    &mut stream.detector,
                    &mut timed,
                    events,
                    &stream.ctx,
                    records,
                )?;
            }
            None => records.extend(
                events
                    .iter()
                    .map(|ev| CallRecord::from_event(ev, &stream.ctx, 0)),
            ),
        }
        let published = records.len() as u64;
        for mut record in records.drain(..) {
            state.seq = match self.seq.next_seq() {
                Ok(seq) => seq,
                Err(e) => {
                    // A failing state database must not stop detection:
                    // number on from memory and say so.
                    tracing::error!("numbering events: {e}; continuing without persisting seq");
                    state.seq + 1
                }
            };
            record.seq = state.seq;
            if let Some(mqtt) = self.mqtt.as_mut()
                && let Err(e) = mqtt.emit(&record)
            {
                tracing::error!("MQTT spool could not take call {}: {e:#}", record.id);
            }
            if let Some(evidence) = self.evidence.as_mut() {
                evidence.record(&record);
            }
            self.sinks.send(record);
        }
        let busy = started.elapsed();
        let mut stats = self.lock_stats();
        stats.audio_s += audio_s;
        stats.interval_audio_s += audio_s;
        stats.interval_busy += busy;
        stats.events += published;
        stats.open_calls = stream.detector.open_calls();
        stats.interval_inference_ms.append(&mut state.times_ms);
        stats
            .interval_clipping
            .add(std::mem::take(&mut state.clipping));
        Ok(())
    }

    fn lock_stats(&self) -> std::sync::MutexGuard<'_, ProcessingStats> {
        // Stats are plain numbers: one left half-updated by a panicking
        // holder is still worth reporting.
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Overrun gaps, logged at most once per [`GAP_LOG_EVERY`] so a CPU that
/// cannot keep up does not also flood the log.
#[derive(Default)]
struct GapLog {
    last: Option<Instant>,
    gaps: u64,
    lost_s: f64,
}

/// Shortest time between two overrun warnings.
const GAP_LOG_EVERY: Duration = Duration::from_secs(10);

impl GapLog {
    fn note(&mut self, lost_s: f64) {
        self.gaps += 1;
        self.lost_s += lost_s;
        if self.last.is_some_and(|t| t.elapsed() < GAP_LOG_EVERY) {
            return;
        }
        tracing::warn!(
            "processing fell behind: {:.2} s of audio dropped in {} gap(s); \
             calls open at a gap are ended as truncated",
            self.lost_s,
            self.gaps
        );
        *self = GapLog {
            last: Some(Instant::now()),
            ..GapLog::default()
        };
    }
}

/// Per-run bookkeeping.
struct State {
    /// The last event sequence number given out.
    seq: u64,
    /// Anchor of the first stream: offsets count from it.
    first_anchor: Option<OffsetDateTime>,
    /// Wall-clock end of the previous stream, to measure deaf time.
    prev_end: Option<OffsetDateTime>,
    remaining_s: Option<f64>,
    stopping: bool,
    gaps: GapLog,
    out: DetectorOutput,
    records: Vec<CallRecord>,
    times_ms: Vec<f32>,
    /// Samples at full scale since the last delivery to the stats.
    clipping: ClipMeter,
}
