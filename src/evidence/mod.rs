//! Per-call evidence: for every finished call, an audio clip with pre- and
//! post-roll (WAV or FLAC), a spectrogram PNG with the detection marked, and
//! a JSON description, so a reviewer can listen to and look at what the
//! detector heard.
//!
//! # Using the writer
//!
//! [`EvidenceWriter`] is a sink fed two things from one stream: its samples
//! (mono, at the stream's own rate, before any gain) through
//! [`EvidenceWriter::push_samples`], and its call records through
//! [`EvidenceWriter::on_event`]. Records are placed on the samples by
//! `offset_s`: sample 0 of the stream is offset
//! [`new_stream`](EvidenceWriter::new_stream)'s `start_offset_s` (0 for a
//! writer fresh from [`EvidenceWriter::new`]). The live daemon and `replay`
//! drive it the same way:
//!
//! ```no_run
//! # use rumbled::evidence::{EvidenceConfig, EvidenceWriter};
//! # let (config, rate, delay_s) = (EvidenceConfig::default(), 16_000, 45.0);
//! # let chunks: Vec<Vec<f32>> = Vec::new();
//! # let records_after = |_: &[f32]| Vec::<rumbled::detect::CallRecord>::new();
//! let mut evidence = EvidenceWriter::new(&config, rate, delay_s);
//! for chunk in &chunks {
//!     evidence.push_samples(chunk); // before the detector sees the chunk
//!     for record in records_after(chunk) {
//!         evidence.on_event(&record); // start/update records are ignored
//!     }
//! }
//! evidence.finish(); // writes calls still waiting for their post-roll
//! ```
//!
//! Calls are only reported after they end, so the writer keeps a ring of
//! the latest samples: pre-roll plus the detection delay (see
//! [`detection_delay_s`]) plus post-roll. Memory is that ring, whatever the
//! stream's length. A clip is written once its post-roll has arrived.
//!
//! Writing never fails the caller: a full or unwritable disk is logged
//! (once, until writing works again) and counted in [`EvidenceStats`], and
//! detection goes on. Encoding, drawing and writing happen on the calling
//! thread when a clip completes: for a 14 s clip at 16 to 48 kHz, drawing
//! took 15-50 ms and FLAC encoding 20-80 ms on an x86 development build;
//! expect several times that on a Raspberry-Pi-class CPU. The live daemon
//! therefore runs the writer on a thread of its own
//! (`daemon::evidence`), fed the same samples and records.

pub mod clip;
pub mod ring;
pub mod store;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use clip::ClipFormat;
use ring::SampleRing;
use store::EvidenceStore;

use crate::detect::{CallPhase, CallRecord, EndReason, EndpointConfig, StreamContext};
use crate::model::Manifest;
use crate::plot::{CallView, class_colour, render_call, view_max_hz};
use crate::replay::ReplayObserver;

/// The `[evidence]` configuration section.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceConfig {
    /// Write evidence for every call (off by default: it costs SD card).
    pub enabled: bool,
    /// Directory of the evidence files.
    pub dir: PathBuf,
    /// Seconds of audio kept before each call.
    pub pre_roll_s: f64,
    /// Seconds of audio kept after each call.
    pub post_roll_s: f64,
    /// Clip container.
    pub format: ClipFormat,
    /// Also draw a spectrogram PNG of each clip.
    pub spectrogram: bool,
    /// Evidence files may use at most this many megabytes (10^6 bytes); the
    /// oldest calls' files are deleted first.
    pub max_disk_mb: u64,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            dir: PathBuf::from("/var/lib/rumbled/evidence"),
            pre_roll_s: 2.0,
            post_roll_s: 2.0,
            format: ClipFormat::Wav,
            spectrogram: true,
            max_disk_mb: 1000,
        }
    }
}

/// The longest pre- or post-roll accepted: evidence is about the call, and
/// the ring holding the roll lives in memory.
const MAX_ROLL_S: f64 = 60.0;

impl EvidenceConfig {
    /// Checks ranges; on error, the key (within `[evidence]`) and what is
    /// wrong with it.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, value) in [
            ("pre_roll_s", self.pre_roll_s),
            ("post_roll_s", self.post_roll_s),
        ] {
            if !(value.is_finite() && (0.0..=MAX_ROLL_S).contains(&value)) {
                return Err((
                    key,
                    format!("{value} must be between 0 and {MAX_ROLL_S} seconds"),
                ));
            }
        }
        if self.max_disk_mb == 0 {
            return Err(("max_disk_mb", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// The longest time from a call's first sample to its end record leaving
/// the detector, in seconds: the longest call, the hang-over and merge gap
/// that confirm its end, and the model's look-ahead (one window and one
/// hop), plus a margin for the resampler and the caller's chunking.
pub fn detection_delay_s(endpoint: &EndpointConfig, manifest: &Manifest, hop_frames: usize) -> f64 {
    let window_s = manifest.window_frames as f64 * manifest.features.frame_shift as f64
        / f64::from(manifest.sample_rate.max(1));
    let hop_s = hop_frames as f64 * manifest.output_frame_seconds();
    /// Resampler delay and read chunks, generously.
    const MARGIN_S: f64 = 3.0;
    endpoint.max_duration_s
        + endpoint.hangover_s
        + endpoint.merge_gap_s
        + window_s
        + hop_s
        + MARGIN_S
}

/// What the writer has done, for logs and the daemon's stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EvidenceStats {
    /// Calls whose evidence was written.
    pub written: u64,
    /// Calls whose evidence could not be written.
    pub failed: u64,
    /// Older calls' evidence deleted to respect the quota.
    pub deleted: u64,
    /// Bytes of evidence on disk.
    pub used_bytes: u64,
}

/// What the live daemon reports about evidence: the writer's counts and
/// what the hand-over to the writer's thread had to skip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EvidenceReport {
    /// The writer's counts.
    #[serde(flatten)]
    pub writer: EvidenceStats,
    /// Call records the writer could not take in time (no evidence for them).
    pub skipped_calls: u64,
    /// Seconds of audio the writer could not take in time (clips around
    /// them start later or are missing).
    pub skipped_audio_s: f64,
}

/// Schema tag of the JSON description written next to each clip.
pub const EVIDENCE_SCHEMA: &str = "rumbled.evidence/1";

/// The JSON file of a call's evidence: the call, and where it sits in the
/// clip.
#[derive(Serialize)]
struct Description<'a> {
    schema: &'static str,
    /// The call's end record.
    call: &'a CallRecord,
    /// File name of the clip.
    audio: String,
    /// File name of the spectrogram, if drawn.
    image: Option<String>,
    sample_rate: u32,
    /// Stream time of the clip's first sample.
    clip_offset_s: f64,
    /// The call's start and end, in seconds from the clip's start.
    call_in_clip_s: [f64; 2],
}

/// A finished call waiting for its post-roll, in stream samples.
#[derive(Debug)]
struct PendingClip {
    record: CallRecord,
    clip_start: u64,
    clip_end: u64,
    call_start: u64,
    call_end: u64,
}

/// Writes the evidence of one stream's calls; see the module documentation.
pub struct EvidenceWriter {
    config: EvidenceConfig,
    rate: u32,
    /// Offset (`offset_s` terms) of sample 0 of the current stream.
    start_offset_s: f64,
    delay_s: f64,
    ring: SampleRing,
    pending: Vec<PendingClip>,
    store: EvidenceStore,
    written: u64,
    failed: u64,
    /// Set after a failure was logged; cleared (and said so) when a write
    /// works again, so a full disk logs one error, not one per call.
    failing: bool,
}

impl EvidenceWriter {
    /// A writer for a stream at `sample_rate` Hz whose calls are reported up
    /// to `detection_delay_s` after they start (see [`detection_delay_s`]).
    /// The directory is created now if it can be; if not, that is logged
    /// and tried again at each call.
    pub fn new(config: &EvidenceConfig, sample_rate: u32, detection_delay_s: f64) -> Self {
        let max_bytes = config.max_disk_mb.saturating_mul(1_000_000);
        Self {
            config: config.clone(),
            rate: sample_rate.max(1),
            start_offset_s: 0.0,
            delay_s: detection_delay_s.max(0.0),
            ring: SampleRing::new(ring_capacity(config, sample_rate, detection_delay_s)),
            pending: Vec::new(),
            store: EvidenceStore::open(&config.dir, max_bytes),
            written: 0,
            failed: 0,
            failing: false,
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> EvidenceStats {
        EvidenceStats {
            written: self.written,
            failed: self.failed,
            deleted: self.store.deleted_groups(),
            used_bytes: self.store.used_bytes(),
        }
    }

    /// Ends the current stream (as [`finish`](Self::finish)) and starts
    /// another at `sample_rate`, whose first sample is at `start_offset_s`
    /// in the records' `offset_s` terms: the next file of a replay, or the
    /// capture device restarted.
    pub fn new_stream(&mut self, sample_rate: u32, start_offset_s: f64) {
        self.finish();
        let sample_rate = sample_rate.max(1);
        if sample_rate != self.rate {
            self.rate = sample_rate;
            self.ring = SampleRing::new(ring_capacity(&self.config, sample_rate, self.delay_s));
        } else {
            self.ring.clear();
        }
        self.start_offset_s = start_offset_s;
    }

    /// Takes the stream's next samples; writes the calls whose post-roll is
    /// now complete.
    pub fn push_samples(&mut self, samples: &[f32]) {
        self.ring.push(samples);
        let total = self.ring.total();
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].clip_end <= total {
                let clip = self.pending.remove(i);
                self.write(&clip);
            } else {
                i += 1;
            }
        }
    }

    /// Takes a call record; an `end` record schedules the call's evidence
    /// (written at once if its post-roll has already been pushed).
    pub fn on_event(&mut self, record: &CallRecord) {
        // A retracted provisional start was never a call: nothing to keep.
        if record.phase != CallPhase::End || record.end_reason == Some(EndReason::Retracted) {
            return;
        }
        let rate = f64::from(self.rate);
        let to_sample =
            |offset_s: f64| ((offset_s - self.start_offset_s) * rate).round().max(0.0) as u64;
        let call_start = to_sample(record.offset_s);
        let call_end =
            to_sample(record.offset_s + record.duration_s.unwrap_or(0.0)).max(call_start);
        let clip = PendingClip {
            record: record.clone(),
            clip_start: call_start.saturating_sub((self.config.pre_roll_s * rate).round() as u64),
            clip_end: call_end + (self.config.post_roll_s * rate).round() as u64,
            call_start,
            call_end,
        };
        if clip.clip_end <= self.ring.total() {
            self.write(&clip);
        } else {
            self.pending.push(clip);
        }
    }

    /// End of stream: writes every waiting call with the post-roll there is.
    pub fn finish(&mut self) {
        for clip in std::mem::take(&mut self.pending) {
            self.write(&clip);
        }
    }

    fn write(&mut self, clip: &PendingClip) {
        let mut samples = Vec::new();
        let held = self.ring.copy(clip.clip_start..clip.clip_end, &mut samples);
        if held.start > clip.clip_start {
            tracing::warn!(
                "call {}: the first {:.2} s of its clip were no longer held; the clip starts later",
                clip.record.id,
                (held.start - clip.clip_start) as f64 / f64::from(self.rate)
            );
        }
        let stem = file_stem(&clip.record);
        let audio = clip::encode(&samples, self.rate, self.config.format);
        let in_clip = |sample: u64| sample.clamp(held.start, held.end) - held.start;
        let call = in_clip(clip.call_start) as usize..in_clip(clip.call_end) as usize;
        let clip_offset_s = self.start_offset_s + held.start as f64 / f64::from(self.rate);
        let image = self
            .config
            .spectrogram
            .then(|| self.picture(&clip.record, &samples, call.clone(), clip_offset_s))
            .flatten();
        let description = Description {
            schema: EVIDENCE_SCHEMA,
            call: &clip.record,
            audio: format!("{stem}.{}", self.config.format.extension()),
            image: image.as_ref().map(|_| format!("{stem}.png")),
            sample_rate: self.rate,
            clip_offset_s,
            call_in_clip_s: [
                call.start as f64 / f64::from(self.rate),
                call.end as f64 / f64::from(self.rate),
            ],
        };
        // Plain fields and a record that serialises everywhere else: this
        // cannot fail, and a missing description must not cost the clip.
        let description = serde_json::to_vec_pretty(&description).unwrap_or_default();
        let mut files: Vec<(&str, &[u8])> = vec![(self.config.format.extension(), &audio)];
        if let Some(png) = &image {
            files.push(("png", png));
        }
        files.push(("json", &description));
        match self.store.save(&stem, &files) {
            Ok(()) => {
                self.written += 1;
                if self.failing {
                    self.failing = false;
                    tracing::info!(
                        "evidence writing works again ({})",
                        self.config.dir.display()
                    );
                }
            }
            Err(e) => {
                self.failed += 1;
                if self.failing {
                    tracing::debug!("evidence for call {} not written: {e}", clip.record.id);
                } else {
                    self.failing = true;
                    tracing::error!(
                        "evidence for call {} not written: {e}; detection goes on, further failures are logged at debug level until writing works again",
                        clip.record.id
                    );
                }
            }
        }
    }

    /// The PNG of one clip; `None` (the call still gets its clip) if
    /// encoding fails.
    fn picture(
        &self,
        record: &CallRecord,
        samples: &[f32],
        call: std::ops::Range<usize>,
        clip_offset_s: f64,
    ) -> Option<Vec<u8>> {
        let when = record
            .start
            .clone()
            .unwrap_or_else(|| format!("{:.2} s", record.offset_s));
        let title = format!(
            "{} {:.2}  {}  {when}",
            record.label, record.confidence, record.id
        );
        let colour = record
            .scores
            .0
            .iter()
            .position(|(label, _)| *label == record.label)
            .map_or(class_colour(0), class_colour);
        let view = CallView {
            samples,
            rate: self.rate,
            call,
            clip_offset_s,
            max_hz: view_max_hz(&record.label, self.rate),
            title: &title,
            colour,
        };
        render_call(&view)
            .encode_png()
            .map_err(|e| tracing::warn!("call {}: cannot encode its spectrogram: {e}", record.id))
            .ok()
    }
}

/// `rumbled replay --clips`: one writer for the whole replay (one quota),
/// restarted on each file's clock.
pub struct ReplayEvidence {
    config: EvidenceConfig,
    endpoint: EndpointConfig,
    hop_frames: usize,
    writer: Option<EvidenceWriter>,
}

impl ReplayEvidence {
    /// Evidence per `config`, for detection with `endpoint` rules and
    /// windows advancing `hop_frames` (which set how long calls wait).
    pub fn new(config: &EvidenceConfig, endpoint: &EndpointConfig, hop_frames: usize) -> Self {
        Self {
            config: config.clone(),
            endpoint: endpoint.clone(),
            hop_frames,
            writer: None,
        }
    }

    /// What the writer did; zeros if no file was replayed.
    pub fn stats(&self) -> EvidenceStats {
        self.writer
            .as_ref()
            .map(EvidenceWriter::stats)
            .unwrap_or_default()
    }
}

impl ReplayObserver for ReplayEvidence {
    fn begin_file(
        &mut self,
        _: &Path,
        ctx: &StreamContext,
        manifest: &Manifest,
        rate: u32,
    ) -> anyhow::Result<()> {
        let writer = self.writer.get_or_insert_with(|| {
            let delay_s = detection_delay_s(&self.endpoint, manifest, self.hop_frames);
            EvidenceWriter::new(&self.config, rate, delay_s)
        });
        writer.new_stream(rate, ctx.offset_base_s);
        Ok(())
    }

    fn samples(&mut self, samples: &[f32]) {
        if let Some(writer) = self.writer.as_mut() {
            writer.push_samples(samples);
        }
    }

    fn record(&mut self, record: &CallRecord) {
        if let Some(writer) = self.writer.as_mut() {
            writer.on_event(record);
        }
    }

    fn end_file(&mut self, _: f64) -> anyhow::Result<()> {
        if let Some(writer) = self.writer.as_mut() {
            writer.finish();
        }
        Ok(())
    }
}

/// Samples the ring must hold: pre-roll, the detection delay and the
/// post-roll that is waited for.
fn ring_capacity(config: &EvidenceConfig, rate: u32, delay_s: f64) -> usize {
    let seconds = config.pre_roll_s + delay_s.max(0.0) + config.post_roll_s;
    (seconds * f64::from(rate)).ceil() as usize + 1
}

/// `<when>_<label>_<id>`: names sort by time where the stream has a clock,
/// say what the call is, and end in the id the store recognises.
fn file_stem(record: &CallRecord) -> String {
    let when = match &record.start {
        Some(start) => start.replace(['-', ':'], ""),
        None => {
            let source = record
                .source
                .name
                .rsplit_once('.')
                .map_or(record.source.name.as_str(), |(stem, _)| stem);
            format!("{source}+{:.3}s", record.offset_s)
        }
    };
    format!(
        "{}_{}_{}",
        safe(&when),
        safe(&record.label),
        safe(&record.id)
    )
}

/// Keeps a name portable: letters, digits and `.+-` stay, the rest is `-`.
fn safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".+-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ranges_are_checked() {
        assert_eq!(EvidenceConfig::default().validate(), Ok(()));
        let bad = EvidenceConfig {
            pre_roll_s: -1.0,
            ..EvidenceConfig::default()
        };
        assert_eq!(bad.validate().map_err(|e| e.0), Err("pre_roll_s"));
        let bad = EvidenceConfig {
            post_roll_s: f64::NAN,
            ..EvidenceConfig::default()
        };
        assert_eq!(bad.validate().map_err(|e| e.0), Err("post_roll_s"));
        let bad = EvidenceConfig {
            max_disk_mb: 0,
            ..EvidenceConfig::default()
        };
        assert_eq!(bad.validate().map_err(|e| e.0), Err("max_disk_mb"));
    }

    #[test]
    fn names_are_portable_and_recognised_by_the_store() {
        assert_eq!(safe("a/b c:d"), "a-b-c-d");
        let stem = format!(
            "{}_{}_{}",
            safe("20261126T210411.520Z"),
            safe("rumble"),
            "st03-7K2M9Q4D1XFA"
        );
        assert!(store::is_evidence_stem(&stem));
    }
}
