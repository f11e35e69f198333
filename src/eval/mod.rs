//! `rumbled eval`: detections measured against annotations.
//!
//! Ground truth is one Raven selection table per recording. Detections are
//! either read (rumbled's JSONL events, plus its frame CSV for the framewise
//! metrics) or made on the spot by replaying the recordings. Tables and
//! recordings are paired by name (see [`input::pair_by_name`]); a single
//! table and a single recording pair whatever their names.
//!
//! Reported (see [`report`]): event precision, recall and F1 with
//! one-to-one matching by temporal IoU; per-class scores, label accuracy
//! and the confusion matrix of matched calls; onset and offset error
//! distributions; false alarms per hour; framewise average precision and
//! ROC AUC per class, the paper's metrics.

pub mod framewise;
pub mod input;
pub mod labels;
pub mod matching;
pub mod report;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub use labels::{LabelMap, Mapped};
pub use report::{EvalReport, EvalSettings, Recording, evaluate};

use crate::config::Config;
use crate::detect::{CallPhase, CallRecord, EndReason, StreamContext};
use crate::model::Manifest;
use crate::publish::read_selection_table;
use crate::replay::{self, ReplayObserver, ReplayRequest};
use input::{FrameTrack, pair_by_name, read_detections, read_frames, recording_key};
use matching::Interval;

/// Where the detections come from.
#[derive(Clone, Debug)]
pub enum DetectionSource {
    /// A JSONL events file from `rumbled replay --events`, with optional
    /// frame CSVs from `--frames` (one per recording).
    Files {
        /// The events.
        events: PathBuf,
        /// Frame probabilities.
        frames: Vec<PathBuf>,
    },
    /// Replay these recordings now (probabilities come with them).
    Replay(Vec<PathBuf>),
}

/// What `rumbled eval` was asked.
#[derive(Clone, Debug)]
pub struct EvalRequest {
    /// Raven selection tables, one per recording.
    pub truth: Vec<PathBuf>,
    /// Column of the tables holding the class.
    pub class_column: String,
    /// Detections.
    pub source: DetectionSource,
    /// Label of the no-call column in frame CSVs.
    pub background: String,
    /// Scoring settings.
    pub settings: EvalSettings,
}

/// Gathers what is needed, then scores it.
pub fn run(config: &Config, request: &EvalRequest) -> Result<EvalReport> {
    let iou = request.settings.min_iou;
    if !(iou > 0.0 && iou <= 1.0) {
        bail!("--iou {iou} must be above 0 and at most 1");
    }
    let labels = &request.settings.labels;
    let mut recordings = match &request.source {
        DetectionSource::Files { events, .. } => read_detections(events)?
            .into_iter()
            .map(|(name, records)| Recording {
                name,
                detections: records
                    .iter()
                    .filter_map(|r| detection(r, labels))
                    .collect(),
                ..Recording::default()
            })
            .collect(),
        DetectionSource::Replay(files) => replay_recordings(config, files, labels)?,
    };
    let replayed = matches!(request.source, DetectionSource::Replay(_));
    attach_truth(&mut recordings, request, replayed)?;
    if let DetectionSource::Files { frames, .. } = &request.source {
        attach_frames(&mut recordings, frames, &request.background)?;
    }
    Ok(evaluate(&recordings, &request.settings))
}

/// Whether `record` ends a call that was heard: an end record, but not the
/// retraction of a provisional start (the live daemon's early starts).
fn is_call_end(record: &CallRecord) -> bool {
    record.phase == CallPhase::End && record.end_reason != Some(EndReason::Retracted)
}

/// A detection as an interval, unless its label is mapped away.
fn detection(record: &CallRecord, labels: &LabelMap) -> Option<Interval> {
    let label = match labels.map(&record.label) {
        Mapped::Class(name) => name,
        Mapped::Dropped => return None,
    };
    Some(Interval {
        begin_s: record.offset_s,
        end_s: record.offset_s + record.duration_s.unwrap_or(0.0),
        label: Some(label),
    })
}

/// Pairs each truth table with its recording. Replayed recordings must
/// all have a table and every table a recording; with detection files, a
/// table without detections is a recording where nothing was detected,
/// and detections without a table are left out (both with a warning).
fn attach_truth(
    recordings: &mut Vec<Recording>,
    request: &EvalRequest,
    replayed: bool,
) -> Result<()> {
    let mut has_truth = vec![false; recordings.len()];
    for table in &request.truth {
        let keys: Vec<String> = recordings.iter().map(|r| r.name.clone()).collect();
        let index = if request.truth.len() == 1 && recordings.len() == 1 {
            Some(0)
        } else {
            pair_by_name(&keys, table)
        };
        let index = match index {
            Some(i) => i,
            None if replayed => bail!(
                "truth table {} matches none of the recordings ({}); name it <recording>.*.txt",
                table.display(),
                keys.join(", ")
            ),
            None => {
                let name = table_recording_name(table);
                tracing::warn!(
                    "truth table {} matches no recording in the detections: taken as recording {name} with nothing detected",
                    table.display()
                );
                recordings.push(Recording {
                    name,
                    ..Recording::default()
                });
                has_truth.push(false);
                recordings.len() - 1
            }
        };
        if has_truth[index] {
            bail!(
                "two truth tables for recording {}; the second is {}",
                recordings[index].name,
                table.display()
            );
        }
        has_truth[index] = true;
        let selections = read_selection_table(table, &request.class_column)?;
        recordings[index].truth = selections
            .into_iter()
            .filter_map(|s| {
                let label = match s.class.as_deref().map(|c| request.settings.labels.map(c)) {
                    None => None,
                    Some(Mapped::Class(name)) => Some(name),
                    Some(Mapped::Dropped) => return None,
                };
                Some(Interval {
                    begin_s: s.begin_s,
                    end_s: s.end_s,
                    label,
                })
            })
            .collect();
    }
    let missing: Vec<String> = recordings
        .iter()
        .zip(&has_truth)
        .filter(|(_, has)| !**has)
        .map(|(r, _)| r.name.clone())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if replayed {
        bail!(
            "no truth table for {}; give one per recording with --truth (named <recording>.*.txt)",
            missing.join(", ")
        );
    }
    tracing::warn!(
        "no truth table for {}: left out of the evaluation",
        missing.join(", ")
    );
    let mut keep = has_truth.iter();
    recordings.retain(|_| keep.next().copied().unwrap_or(false));
    Ok(())
}

/// The recording a truth table names: its file name up to the first dot.
fn table_recording_name(table: &Path) -> String {
    let name = table
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.split('.').next().unwrap_or_default().to_owned()
}

/// Pairs frame CSVs with recordings, by name unless there is one of each.
fn attach_frames(recordings: &mut [Recording], frames: &[PathBuf], background: &str) -> Result<()> {
    let keys: Vec<String> = recordings.iter().map(|r| r.name.clone()).collect();
    for path in frames {
        let index = if frames.len() == 1 && recordings.len() == 1 {
            Some(0)
        } else {
            pair_by_name(&keys, path)
        };
        let Some(index) = index else {
            bail!(
                "frames file {} matches none of the recordings ({}); name it <name>.<recording>.csv",
                path.display(),
                keys.join(", ")
            );
        };
        let track = read_frames(path, background)?;
        recordings[index].audio_s = Some(track.start_s + track.frames() as f64 * track.frame_s);
        recordings[index].frames = Some(track);
    }
    Ok(())
}

/// Replays `files`, collecting each one's detections and probabilities.
fn replay_recordings(
    config: &Config,
    files: &[PathBuf],
    labels: &LabelMap,
) -> Result<Vec<Recording>> {
    let request = ReplayRequest {
        files: files.to_vec(),
        events: None,
        raven_dir: None,
        frames: None,
        start_time: None,
        print_calls: false,
    };
    let mut collector = Collector {
        labels: labels.clone(),
        current: None,
        done: Vec::new(),
    };
    let report = replay::run_observed(config, &request, &mut [&mut collector])?;
    let failed: Vec<String> = report
        .files
        .iter()
        .filter_map(|f| f.error.as_ref())
        .cloned()
        .collect();
    if !failed.is_empty() {
        bail!("cannot evaluate: {}", failed.join("; "));
    }
    Ok(collector.done)
}

/// Collects each replayed file's end records and probabilities.
struct Collector {
    labels: LabelMap,
    current: Option<Recording>,
    done: Vec<Recording>,
}

impl ReplayObserver for Collector {
    fn begin_file(&mut self, path: &Path, ctx: &StreamContext, _: &Manifest, _: u32) -> Result<()> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.current = Some(Recording {
            name: recording_key(&name),
            frames: Some(FrameTrack {
                labels: ctx.labels.clone(),
                background: ctx.background,
                frame_s: ctx.frame_s,
                start_s: ctx.offset_base_s,
                probs: Vec::new(),
            }),
            ..Recording::default()
        });
        Ok(())
    }

    fn frames(&mut self, _first_frame: u64, probs: &[f32]) {
        // Replay hands over every final frame exactly once, in order.
        if let Some(track) = self.current.as_mut().and_then(|r| r.frames.as_mut()) {
            track.probs.extend_from_slice(probs);
        }
    }

    fn record(&mut self, record: &CallRecord) {
        if !is_call_end(record) {
            return;
        }
        if let Some(rec) = self.current.as_mut()
            && let Some(interval) = detection(record, &self.labels)
        {
            rec.detections.push(interval);
        }
    }

    fn end_file(&mut self, audio_s: f64) -> Result<()> {
        if let Some(mut rec) = self.current.take() {
            rec.audio_s = Some(audio_s);
            self.done.push(rec);
        }
        Ok(())
    }
}

/// Writes `report` as pretty JSON to `path` (`-` = standard output).
pub fn write_json(report: &EvalReport, path: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(report).context("serialising the report")?;
    if path == Path::new("-") {
        println!("{json}");
        return Ok(());
    }
    std::fs::write(path, json + "\n").with_context(|| format!("cannot write {}", path.display()))
}
