//! The numbers of an evaluation and how they are shown: a text table for
//! people, the same numbers as JSON (`rumbled.eval/1`) for scripts.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::framewise::ScoredFrames;
use super::input::FrameTrack;
use super::labels::{LabelMap, Mapped};
use super::matching::{Interval, match_events};
use crate::detect::CallScore;

/// Schema tag of the JSON report.
pub const EVAL_SCHEMA: &str = "rumbled.eval/1";

/// Row and column name of "no call" in the confusion matrix: a missed
/// call's detection, a false alarm's truth.
pub const NONE: &str = "(none)";
/// Class name of selections without a class.
pub const UNLABELLED: &str = "(unlabelled)";
/// Class name of the framewise any-call row.
pub const ANY_CALL: &str = "call";

/// One recording's material: annotated calls, detections and (when
/// available) per-frame probabilities; labels already mapped.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    /// Recording key (file name without extension).
    pub name: String,
    /// Annotated calls.
    pub truth: Vec<Interval>,
    /// Detected calls.
    pub detections: Vec<Interval>,
    /// Per-frame probabilities, for the framewise metrics.
    pub frames: Option<FrameTrack>,
    /// Seconds of audio, when known.
    pub audio_s: Option<f64>,
}

/// How to score.
#[derive(Clone, Debug)]
pub struct EvalSettings {
    /// Least temporal IoU for a detection to match an annotated call.
    pub min_iou: f64,
    /// Label mapping, applied to the model's class names too.
    pub labels: LabelMap,
    /// How a frame's any-call score is formed (as the endpointer does).
    pub call_score: CallScore,
    /// Total audio duration, overriding what the recordings know.
    pub duration_s: Option<f64>,
}

/// Everything an evaluation found.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// [`EVAL_SCHEMA`].
    pub schema: &'static str,
    /// Least IoU of a match.
    pub min_iou: f64,
    /// Per-recording counts.
    pub recordings: Vec<RecordingSummary>,
    /// Seconds of audio evaluated; `null` when unknown.
    pub audio_s: Option<f64>,
    /// Class-agnostic event detection.
    pub events: EventScores,
    /// Class-aware event scores per class.
    pub classes: Vec<ClassScores>,
    /// Labels of matched calls.
    pub labels: LabelScores,
    /// Boundary errors of matched calls.
    pub timing: Timing,
    /// Framewise AP and ROC AUC; `null` without frame probabilities.
    pub framewise: Option<Framewise>,
}

/// Counts of one recording.
#[derive(Clone, Debug, Serialize)]
pub struct RecordingSummary {
    /// Recording key.
    pub name: String,
    /// Annotated calls.
    pub truth: usize,
    /// Detections.
    pub detections: usize,
    /// Matched pairs.
    pub matched: usize,
    /// Seconds of audio, when known.
    pub audio_s: Option<f64>,
}

/// Event detection regardless of class.
#[derive(Clone, Debug, Serialize)]
pub struct EventScores {
    /// Annotated calls.
    pub truth: usize,
    /// Detections.
    pub detections: usize,
    /// Matched pairs.
    pub matched: usize,
    /// Annotated calls without a match.
    pub missed: usize,
    /// Detections without a match.
    pub false_alarms: usize,
    /// matched / detections.
    pub precision: Option<f64>,
    /// matched / truth.
    pub recall: Option<f64>,
    /// Harmonic mean of precision and recall.
    pub f1: Option<f64>,
    /// False alarms per hour of audio.
    pub false_alarms_per_hour: Option<f64>,
}

/// Event scores of one class: a detection counts for class c when it
/// matches a call annotated c and is labelled c.
#[derive(Clone, Debug, Serialize)]
pub struct ClassScores {
    /// Class name.
    pub class: String,
    /// Calls annotated with the class.
    pub truth: usize,
    /// Detections labelled with the class.
    pub detected: usize,
    /// Matched and labelled right.
    pub correct: usize,
    /// correct / detected.
    pub precision: Option<f64>,
    /// correct / truth.
    pub recall: Option<f64>,
    /// Harmonic mean.
    pub f1: Option<f64>,
}

/// Labels of matched calls.
#[derive(Clone, Debug, Serialize)]
pub struct LabelScores {
    /// Matched pairs whose annotation has a class.
    pub matched_labelled: usize,
    /// Fraction of those labelled right.
    pub accuracy: Option<f64>,
    /// Row and column names: the classes, then [`NONE`].
    pub confusion_labels: Vec<String>,
    /// `confusion[truth][detected]`: matched pairs by their two labels;
    /// missed calls in the [`NONE`] column, false alarms in the [`NONE`] row.
    pub confusion: Vec<Vec<usize>>,
}

/// Detected minus annotated boundary times of matched calls, in seconds.
#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    /// Start errors (negative: detected early).
    pub onset: ErrorStats,
    /// End errors (negative: detected ending early).
    pub offset: ErrorStats,
}

/// A distribution of signed errors.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ErrorStats {
    /// Number of errors.
    pub n: usize,
    /// Mean.
    pub mean: Option<f64>,
    /// Mean absolute error.
    pub mean_abs: Option<f64>,
    /// Smallest.
    pub min: Option<f64>,
    /// 10th percentile.
    pub p10: Option<f64>,
    /// Median.
    pub median: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

impl ErrorStats {
    fn of(mut errors: Vec<f64>) -> Self {
        if errors.is_empty() {
            return Self::default();
        }
        errors.sort_by(f64::total_cmp);
        let n = errors.len();
        // Linear interpolation between order statistics (numpy's default).
        let percentile = |q: f64| {
            let pos = q * (n - 1) as f64;
            let (i, t) = (pos.floor() as usize, pos.fract());
            let next = errors[(i + 1).min(n - 1)];
            Some(errors[i] + (next - errors[i]) * t)
        };
        Self {
            n,
            mean: Some(errors.iter().sum::<f64>() / n as f64),
            mean_abs: Some(errors.iter().map(|e| e.abs()).sum::<f64>() / n as f64),
            min: errors.first().copied(),
            p10: percentile(0.1),
            median: percentile(0.5),
            p90: percentile(0.9),
            max: errors.last().copied(),
        }
    }
}

/// Framewise metrics.
#[derive(Clone, Debug, Serialize)]
pub struct Framewise {
    /// Frames scored.
    pub frames: usize,
    /// Seconds per frame (of the first recording with frames).
    pub frame_s: f64,
    /// [`ANY_CALL`] first, then each class.
    pub classes: Vec<FrameScores>,
}

/// AP and AUC of one class over frames.
#[derive(Clone, Debug, Serialize)]
pub struct FrameScores {
    /// Class name.
    pub class: String,
    /// Frames inside an annotated call of the class.
    pub positives: usize,
    /// Average precision; `null` without positives.
    pub ap: Option<f64>,
    /// ROC AUC; `null` without both positives and negatives.
    pub auc: Option<f64>,
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn f1(precision: Option<f64>, recall: Option<f64>) -> Option<f64> {
    match (precision, recall) {
        (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
        (Some(_), Some(_)) => Some(0.0),
        _ => None,
    }
}

fn label_of(interval: &Interval) -> &str {
    interval.label.as_deref().unwrap_or(UNLABELLED)
}

/// Scores `recordings`.
pub fn evaluate(recordings: &[Recording], settings: &EvalSettings) -> EvalReport {
    let mut summaries = Vec::new();
    let mut onset = Vec::new();
    let mut offset = Vec::new();
    // (truth label, detected label) of every matched pair, missed call and
    // false alarm; NONE marks the missing side.
    let mut pairs: Vec<(String, String)> = Vec::new();
    let (mut truth_n, mut det_n, mut matched_n) = (0, 0, 0);
    for rec in recordings {
        let matches = match_events(&rec.truth, &rec.detections, settings.min_iou);
        let mut truth_matched = vec![false; rec.truth.len()];
        let mut det_matched = vec![false; rec.detections.len()];
        for m in &matches {
            let (t, d) = (&rec.truth[m.truth], &rec.detections[m.detection]);
            truth_matched[m.truth] = true;
            det_matched[m.detection] = true;
            onset.push(d.begin_s - t.begin_s);
            offset.push(d.end_s - t.end_s);
            pairs.push((label_of(t).to_owned(), label_of(d).to_owned()));
        }
        for (t, _) in rec.truth.iter().zip(&truth_matched).filter(|(_, m)| !**m) {
            pairs.push((label_of(t).to_owned(), NONE.to_owned()));
        }
        for (d, _) in rec
            .detections
            .iter()
            .zip(&det_matched)
            .filter(|(_, m)| !**m)
        {
            pairs.push((NONE.to_owned(), label_of(d).to_owned()));
        }
        truth_n += rec.truth.len();
        det_n += rec.detections.len();
        matched_n += matches.len();
        summaries.push(RecordingSummary {
            name: rec.name.clone(),
            truth: rec.truth.len(),
            detections: rec.detections.len(),
            matched: matches.len(),
            audio_s: rec.audio_s,
        });
    }
    let audio_s = settings
        .duration_s
        .or_else(|| recordings.iter().map(|r| r.audio_s).sum());
    let precision = ratio(matched_n, det_n);
    let recall = ratio(matched_n, truth_n);
    let false_alarms = det_n - matched_n;
    let events = EventScores {
        truth: truth_n,
        detections: det_n,
        matched: matched_n,
        missed: truth_n - matched_n,
        false_alarms,
        precision,
        recall,
        f1: f1(precision, recall),
        false_alarms_per_hour: audio_s
            .filter(|s| *s > 0.0)
            .map(|s| false_alarms as f64 / (s / 3600.0)),
    };

    let classes: BTreeSet<&str> = pairs
        .iter()
        .flat_map(|(t, d)| [t.as_str(), d.as_str()])
        .filter(|l| *l != NONE)
        .collect();
    let mut confusion_labels: Vec<String> = classes.iter().map(|c| (*c).to_owned()).collect();
    confusion_labels.push(NONE.to_owned());
    let index: BTreeMap<&str, usize> = confusion_labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let mut confusion = vec![vec![0; confusion_labels.len()]; confusion_labels.len()];
    for (t, d) in &pairs {
        confusion[index[t.as_str()]][index[d.as_str()]] += 1;
    }
    let matched_labelled: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(t, d)| t != NONE && d != NONE && t != UNLABELLED)
        .collect();
    let correct_labels = matched_labelled.iter().filter(|(t, d)| t == d).count();
    let class_scores = classes
        .iter()
        .filter(|c| **c != UNLABELLED)
        .map(|&class| {
            let truth = pairs.iter().filter(|(t, _)| t == class).count();
            let detected = pairs.iter().filter(|(_, d)| d == class).count();
            let correct = pairs
                .iter()
                .filter(|(t, d)| t == class && d == class)
                .count();
            let (precision, recall) = (ratio(correct, detected), ratio(correct, truth));
            ClassScores {
                class: class.to_owned(),
                truth,
                detected,
                correct,
                precision,
                recall,
                f1: f1(precision, recall),
            }
        })
        .collect();

    EvalReport {
        schema: EVAL_SCHEMA,
        min_iou: settings.min_iou,
        recordings: summaries,
        audio_s,
        events,
        classes: class_scores,
        labels: LabelScores {
            matched_labelled: matched_labelled.len(),
            accuracy: ratio(correct_labels, matched_labelled.len()),
            confusion_labels,
            confusion,
        },
        timing: Timing {
            onset: ErrorStats::of(onset),
            offset: ErrorStats::of(offset),
        },
        framewise: framewise(recordings, settings),
    }
}

/// AP and AUC per class over every frame of every recording with frames.
/// A frame is a positive of class c when its centre lies inside a call
/// annotated c; of [`ANY_CALL`] when inside any annotated call.
fn framewise(recordings: &[Recording], settings: &EvalSettings) -> Option<Framewise> {
    let mut any_call = ScoredFrames::default();
    let mut per_class: BTreeMap<String, ScoredFrames> = BTreeMap::new();
    let mut frame_s = None;
    for rec in recordings {
        let Some(track) = &rec.frames else { continue };
        frame_s.get_or_insert(track.frame_s);
        let width = track.labels.len();
        // Model columns grouped by mapped class name; a class's score is
        // the highest of its columns.
        let mut columns: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (c, label) in track.labels.iter().enumerate() {
            if Some(c) == track.background {
                continue;
            }
            if let Mapped::Class(name) = settings.labels.map(label) {
                columns.entry(name).or_default().push(c);
            }
        }
        let calls: Vec<usize> = (0..width)
            .filter(|&c| Some(c) != track.background)
            .collect();
        for (g, row) in track.probs.chunks_exact(width.max(1)).enumerate() {
            let centre = track.start_s + (g as f64 + 0.5) * track.frame_s;
            let inside = |iv: &Interval| iv.begin_s <= centre && centre < iv.end_s;
            let score = match (settings.call_score, track.background) {
                (CallScore::OneMinusBackground, Some(bg)) => 1.0 - row[bg],
                _ => calls
                    .iter()
                    .map(|&c| row[c])
                    .fold(f32::NEG_INFINITY, f32::max),
            };
            any_call.push(score, rec.truth.iter().any(inside));
            for (name, cols) in &columns {
                let score = cols
                    .iter()
                    .map(|&c| row[c])
                    .fold(f32::NEG_INFINITY, f32::max);
                let positive = rec
                    .truth
                    .iter()
                    .any(|iv| iv.label.as_deref() == Some(name.as_str()) && inside(iv));
                per_class
                    .entry(name.clone())
                    .or_default()
                    .push(score, positive);
            }
        }
    }
    let frame_s = frame_s?;
    let scores = |class: &str, frames: &ScoredFrames| FrameScores {
        class: class.to_owned(),
        positives: frames.positives(),
        ap: frames.average_precision(),
        auc: frames.roc_auc(),
    };
    let mut classes = vec![scores(ANY_CALL, &any_call)];
    classes.extend(per_class.iter().map(|(name, frames)| scores(name, frames)));
    Some(Framewise {
        frames: any_call.len(),
        frame_s,
        classes,
    })
}

/// A number to 3 decimals, or `-` when undefined.
fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.events;
        let hours = self.audio_s.map_or_else(
            || "unknown duration".to_owned(),
            |s| format!("{:.3} h of audio", s / 3600.0),
        );
        writeln!(
            f,
            "{} recording{}, {hours}; {} annotated calls, {} detections; match at IoU >= {:.2}",
            self.recordings.len(),
            if self.recordings.len() == 1 { "" } else { "s" },
            e.truth,
            e.detections,
            self.min_iou
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "events   precision {}  recall {}  F1 {}   matched {}  missed {}  false alarms {} ({} per hour)",
            num(e.precision),
            num(e.recall),
            num(e.f1),
            e.matched,
            e.missed,
            e.false_alarms,
            e.false_alarms_per_hour.map_or_else(
                || "- (duration unknown; give --duration-s)".to_owned(),
                |v| format!("{v:.2}")
            )
        )?;
        writeln!(
            f,
            "labels   accuracy {} on {} matched labelled calls",
            num(self.labels.accuracy),
            self.labels.matched_labelled
        )?;
        if !self.classes.is_empty() {
            writeln!(f)?;
            let w = self
                .classes
                .iter()
                .map(|c| c.class.len())
                .max()
                .unwrap_or(0)
                .max(5);
            writeln!(
                f,
                "{:<w$}  {:>6} {:>8} {:>7}  {:>9} {:>7} {:>7}",
                "class", "truth", "detected", "correct", "precision", "recall", "F1"
            )?;
            for c in &self.classes {
                writeln!(
                    f,
                    "{:<w$}  {:>6} {:>8} {:>7}  {:>9} {:>7} {:>7}",
                    c.class,
                    c.truth,
                    c.detected,
                    c.correct,
                    num(c.precision),
                    num(c.recall),
                    num(c.f1)
                )?;
            }
        }
        let labels = &self.labels.confusion_labels;
        if labels.len() > 1 {
            writeln!(f)?;
            writeln!(f, "confusion (rows: annotated, columns: detected)")?;
            let w = labels.iter().map(String::len).max().unwrap_or(0).max(6);
            write!(f, "{:<w$}", "")?;
            for l in labels {
                write!(f, " {l:>w$}")?;
            }
            writeln!(f)?;
            for (l, row) in labels.iter().zip(&self.labels.confusion) {
                write!(f, "{l:<w$}")?;
                for n in row {
                    write!(f, " {n:>w$}")?;
                }
                writeln!(f)?;
            }
        }
        writeln!(f)?;
        writeln!(
            f,
            "timing (detected - annotated, s)  {:>4} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "n", "mean", "|mean|", "p10", "median", "p90"
        )?;
        for (name, s) in [
            ("onset", &self.timing.onset),
            ("offset", &self.timing.offset),
        ] {
            writeln!(
                f,
                "{name:<32}  {:>4} {:>7} {:>7} {:>7} {:>7} {:>7}",
                s.n,
                num(s.mean),
                num(s.mean_abs),
                num(s.p10),
                num(s.median),
                num(s.p90)
            )?;
        }
        writeln!(f)?;
        match &self.framewise {
            None => writeln!(
                f,
                "framewise: no frame probabilities (give --frames, or use --replay)"
            )?,
            Some(fw) => {
                writeln!(
                    f,
                    "framewise over {} frames of {:.0} ms",
                    fw.frames,
                    fw.frame_s * 1000.0
                )?;
                let w = fw
                    .classes
                    .iter()
                    .map(|c| c.class.len())
                    .max()
                    .unwrap_or(0)
                    .max(5);
                writeln!(
                    f,
                    "{:<w$}  {:>9} {:>7} {:>7}",
                    "class", "positives", "AP", "AUC"
                )?;
                for c in &fw.classes {
                    writeln!(
                        f,
                        "{:<w$}  {:>9} {:>7} {:>7}",
                        c.class,
                        c.positives,
                        num(c.ap),
                        num(c.auc)
                    )?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_percentiles_interpolate() {
        let s = ErrorStats::of(vec![0.4, -0.2, 0.0, 0.2, 0.6]);
        assert_eq!(s.n, 5);
        assert_eq!(s.median, Some(0.2));
        assert!((s.p10.expect("p10") - (-0.12)).abs() < 1e-12);
        assert!((s.mean.expect("mean") - 0.2).abs() < 1e-12);
        assert!((s.mean_abs.expect("mean_abs") - 0.28).abs() < 1e-12);
        assert_eq!(ErrorStats::of(Vec::new()), ErrorStats::default());
    }

    #[test]
    fn f1_handles_zero_and_undefined() {
        assert_eq!(f1(Some(0.0), Some(0.0)), Some(0.0));
        assert_eq!(f1(None, Some(1.0)), None);
        assert_eq!(f1(Some(0.5), Some(1.0)), Some(2.0 / 3.0));
    }
}
