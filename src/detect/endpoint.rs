//! Endpointing: per-frame class probabilities in, call start/update/end
//! events out.
//!
//! Durations are converted to whole frames once (rounded to nearest; the
//! onset, hang-over and minimum-duration times to at least one frame). The
//! score of a frame is P(call): the maximum over the call classes, or
//! 1 - P(background) with [`CallScore::OneMinusBackground`]; in per-class mode
//! each call class has its own track scored by its own probability.
//!
//! Rules, per track:
//!
//! 1. **Onset.** A call is *confirmed* once the score has been `>= onset` for
//!    `min_onset` consecutive frames. It starts at the first frame of that run.
//! 2. **Continuation and hang-over.** A confirmed call goes on while the score
//!    is `>= offset`. A run of frames below `offset` shorter than `hangover`
//!    is a dip and belongs to the call once the score recovers. When the run
//!    reaches `hangover` frames the call is *quiet*: its end is the first
//!    frame of that run, and the run is not part of the call.
//! 3. **Merge gap.** A quiet call waits: if a new onset run that starts at
//!    most `merge_gap` frames after the call's end gets confirmed, the gap
//!    and the new frames join the call, which goes on as in rule 2. A merge
//!    that would make the call longer than `max_duration` is not made: the
//!    quiet call ends and the onset starts a call of its own. The wait ends,
//!    and the call's end event is emitted, as soon as no onset can join any
//!    more: none starting within the gap is left to be confirmed, or the
//!    call would outgrow `max_duration` (which also bounds the end event's
//!    latency and the frames held in memory). Since the quiet run is at least
//!    `hangover` frames long, a merge gap no longer than the hang-over never
//!    bridges anything and the end is emitted as soon as the call is quiet.
//! 4. **Minimum duration.** A call is announced (start event) only once its
//!    frames so far (start to the last frame `>= offset`, dips and merged
//!    gaps included) span `min_duration`. Merging comes first, so fragments
//!    too short on their own still count if a merge joins them. A call that
//!    is quiet and done waiting before reaching `min_duration` is dropped
//!    without any event. A label may have a longer minimum of its own
//!    (`label_min_duration_s`): the call is then announced only once it
//!    spans that minimum for the label its frames so far give it (the rest
//!    of a call split by rule 5 is announced at once, whatever its label).
//! 5. **Maximum duration.** Once an open call spans `max_duration +
//!    min_duration`, it is split at `max_duration`: an end event (reason
//!    split) for the first piece and a start event for the rest, which starts
//!    at that very frame and is a new call. Waiting for `min_duration` beyond
//!    the maximum means the rest is always long enough to be announced; a call
//!    that ends with less than that beyond the maximum is cut at the maximum,
//!    the remainder dropped like any call too short to announce. So every
//!    announced call lasts between `min_duration` and `max_duration`.
//! 6. **Updates.** While a call is announced and growing, an update event is
//!    emitted when its label changes or its confidence has moved by at least
//!    `update_delta` since its start or last update.
//! 7. **End of stream.** [`Endpointer::finish`] ends every announced call at
//!    its last frame `>= offset`: reason end of stream for a call still
//!    sounding (in a dip included), reason quiet for one that was already
//!    quiet and only waiting out the merge gap. Unconfirmed onsets and calls
//!    too short to announce are dropped.
//!
//! Label and scores are means over the call's frames `[start, end)`: the
//! label is the call class with the highest mean (in per-class mode the
//! track's class), the confidence its mean.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::event::{CallEvent, CallPhase, EndReason};

/// How a class-agnostic track turns a probability vector into P(call).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallScore {
    /// Highest probability among the call classes; works with or without a
    /// background class.
    #[default]
    Max,
    /// 1 - P(background); needs a model with a background class.
    OneMinusBackground,
}

/// The `[endpoint]` configuration section: thresholds and times of the
/// rules in the module documentation.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointConfig {
    /// P(call) must reach this to start a call.
    pub onset: f32,
    /// A call continues while P(call) is at least this (`<= onset`).
    pub offset: f32,
    /// P(call) must stay `>= onset` this long to confirm a start.
    pub min_onset_s: f64,
    /// A call ends after P(call) stays below `offset` this long.
    pub hangover_s: f64,
    /// Shorter calls are never announced.
    pub min_duration_s: f64,
    /// Longer minimum durations for some labels (label name -> seconds),
    /// because a class's calls may never be that short: a one-second
    /// "rumble" is more likely an engine starting than an elephant. A call
    /// is announced once it spans the minimum of the label its frames so
    /// far give it (and `min_duration_s`).
    pub label_min_duration_s: BTreeMap<String, f64>,
    /// A call confirmed within this gap after the previous call's end is
    /// merged into it.
    pub merge_gap_s: f64,
    /// Longer calls are split.
    pub max_duration_s: f64,
    /// P(call) in class-agnostic mode.
    pub call_score: CallScore,
    /// One independent track per call class instead of one for all.
    pub per_class: bool,
    /// Confidence change that warrants an update event.
    pub update_delta: f32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            onset: 0.5,
            offset: 0.35,
            min_onset_s: 0.32,
            hangover_s: 0.48,
            min_duration_s: 0.32,
            label_min_duration_s: BTreeMap::new(),
            merge_gap_s: 0.64,
            max_duration_s: 30.0,
            call_score: CallScore::Max,
            per_class: false,
            update_delta: 0.1,
        }
    }
}

/// Why an endpointer cannot be built or reconfigured; messages name the
/// configuration key or model property at fault.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EndpointError {
    /// A configuration value is out of range.
    #[error("endpoint.{key} {problem}")]
    Invalid {
        /// Key inside the `[endpoint]` section.
        key: &'static str,
        /// What is wrong, with the offending value.
        problem: String,
    },
    /// `one_minus_background` on a model without a background class.
    #[error("endpoint.call_score = \"one_minus_background\" needs a model with a background class")]
    NeedsBackground,
    /// The model's classes leave nothing to detect.
    #[error("the model has {num_classes} classes and background {background:?}: no call class")]
    NoCallClass {
        /// Classes in the model output.
        num_classes: usize,
        /// Background class index.
        background: Option<usize>,
    },
    /// The background index does not name a model class.
    #[error("background class index {background} is out of range for {num_classes} classes")]
    BackgroundOutOfRange {
        /// Background class index.
        background: usize,
        /// Classes in the model output.
        num_classes: usize,
    },
    /// The model's output frame duration is unusable.
    #[error("frame duration must be a positive number of seconds, got {0}")]
    FrameDuration(f64),
    /// `label_min_duration_s` names a label the model cannot report as a
    /// call.
    #[error(
        "endpoint.label_min_duration_s names {label:?}, which is not one of the model's call \
         labels ({})",
        call_labels.join(", ")
    )]
    UnknownLabel {
        /// The label as configured.
        label: String,
        /// The model's labels, background excluded.
        call_labels: Vec<String>,
    },
    /// A live reload tried to change something that reshapes the tracks.
    #[error("changing endpoint.{0} needs a restart")]
    NeedsRestart(&'static str),
    /// A model's recommended settings name no `[endpoint]` key or have the
    /// wrong type.
    #[error("recommended endpoint settings: {0}")]
    Recommended(String),
}

/// Settings a model recommends for itself: its manifest's `endpoint` object,
/// any `[endpoint]` keys with their values (`models/tune_endpoint.py` chooses
/// them on development data). The user's own settings always win.
pub type Recommended = serde_json::Map<String, serde_json::Value>;

/// The thresholds only make sense together (offset <= onset), so the user
/// setting either one keeps both from the model.
const THRESHOLD_PAIR: [&str; 2] = ["onset", "offset"];

impl EndpointConfig {
    /// These settings with a model's `recommended` ones applied to every key
    /// the user did not set (`user_set`: keys from the config file or the
    /// command line), validated.
    pub fn with_recommended(
        &self,
        user_set: &BTreeSet<String>,
        recommended: &Recommended,
    ) -> Result<Self, EndpointError> {
        let bad = |e: serde_json::Error| EndpointError::Recommended(e.to_string());
        let mut merged = serde_json::to_value(self).map_err(bad)?;
        if let Some(fields) = merged.as_object_mut() {
            let pair_set = THRESHOLD_PAIR.iter().any(|k| user_set.contains(*k));
            for (key, value) in recommended {
                let in_pair = THRESHOLD_PAIR.contains(&key.as_str());
                if !(user_set.contains(key) || pair_set && in_pair) {
                    fields.insert(key.clone(), value.clone());
                }
            }
        }
        let cfg: Self = serde_json::from_value(merged).map_err(bad)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks ranges and relations, naming the key at fault, so a bad
    /// configuration is refused at start-up or reload instead of producing
    /// nonsense events.
    pub fn validate(&self) -> Result<(), EndpointError> {
        let invalid = |key, problem: String| Err(EndpointError::Invalid { key, problem });
        if !(self.onset > 0.0 && self.onset <= 1.0) {
            return invalid("onset", format!("({}) must be in (0, 1]", self.onset));
        }
        if !(self.offset >= 0.0 && self.offset <= 1.0) {
            return invalid("offset", format!("({}) must be in [0, 1]", self.offset));
        }
        if self.offset > self.onset {
            return invalid(
                "offset",
                format!(
                    "({}) must be <= endpoint.onset ({})",
                    self.offset, self.onset
                ),
            );
        }
        for (key, seconds) in [
            ("min_onset_s", self.min_onset_s),
            ("hangover_s", self.hangover_s),
            ("min_duration_s", self.min_duration_s),
            ("merge_gap_s", self.merge_gap_s),
            ("max_duration_s", self.max_duration_s),
        ] {
            if !(seconds.is_finite() && seconds >= 0.0) {
                return invalid(key, format!("({seconds}) must be a finite time >= 0 s"));
            }
        }
        for (label, &seconds) in &self.label_min_duration_s {
            if !(seconds.is_finite() && seconds >= 0.0 && seconds < self.max_duration_s) {
                return invalid(
                    "label_min_duration_s",
                    format!(
                        "{label:?} ({seconds}) must be a time >= 0 s and < endpoint.max_duration_s ({})",
                        self.max_duration_s
                    ),
                );
            }
        }
        if self.max_duration_s <= self.min_duration_s {
            return invalid(
                "max_duration_s",
                format!(
                    "({}) must be > endpoint.min_duration_s ({})",
                    self.max_duration_s, self.min_duration_s
                ),
            );
        }
        if !(self.update_delta > 0.0 && self.update_delta <= 1.0) {
            return invalid(
                "update_delta",
                format!("({}) must be in (0, 1]", self.update_delta),
            );
        }
        Ok(())
    }

    /// The longest a call may have to last before it is announced: the
    /// minimum duration, or a longer one of some label.
    pub fn longest_min_duration_s(&self) -> f64 {
        self.label_min_duration_s
            .values()
            .fold(self.min_duration_s, |a, &b| a.max(b))
    }
}

/// P(call) of a class-agnostic track, with the background index resolved.
#[derive(Clone, Copy, Debug)]
enum AgnosticScore {
    Max,
    OneMinus(usize),
}

/// The configuration resolved against the model: thresholds, and times in
/// frames.
#[derive(Clone, Debug)]
struct Rules {
    onset: f32,
    offset: f32,
    min_onset: u64,
    hangover: u64,
    min_duration: u64,
    /// Per class: frames a call of that label must span to be announced
    /// (at least `min_duration`).
    label_min_duration: Vec<u64>,
    merge_gap: u64,
    max_duration: u64,
    update_delta: f32,
    score: AgnosticScore,
    per_class: bool,
    /// The model's labels, one per output class.
    labels: Vec<String>,
    background: Option<usize>,
    frame_s: f64,
}

impl Rules {
    fn new(
        cfg: &EndpointConfig,
        labels: &[String],
        background: Option<usize>,
        frame_s: f64,
    ) -> Result<Self, EndpointError> {
        cfg.validate()?;
        let num_classes = labels.len();
        if !(frame_s.is_finite() && frame_s > 0.0) {
            return Err(EndpointError::FrameDuration(frame_s));
        }
        if let Some(bg) = background
            && bg >= num_classes
        {
            return Err(EndpointError::BackgroundOutOfRange {
                background: bg,
                num_classes,
            });
        }
        if num_classes <= usize::from(background.is_some()) {
            return Err(EndpointError::NoCallClass {
                num_classes,
                background,
            });
        }
        let score = match (cfg.call_score, background) {
            (CallScore::Max, _) => AgnosticScore::Max,
            (CallScore::OneMinusBackground, Some(bg)) => AgnosticScore::OneMinus(bg),
            // Per-class tracks never use the agnostic score.
            (CallScore::OneMinusBackground, None) if cfg.per_class => AgnosticScore::Max,
            (CallScore::OneMinusBackground, None) => return Err(EndpointError::NeedsBackground),
        };
        let frames = |seconds: f64| (seconds / frame_s).round() as u64;
        let min_duration = frames(cfg.min_duration_s).max(1);
        let mut label_min_duration = vec![min_duration; num_classes];
        for (label, &seconds) in &cfg.label_min_duration_s {
            let class = labels
                .iter()
                .position(|l| l == label)
                .filter(|&c| Some(c) != background)
                .ok_or_else(|| EndpointError::UnknownLabel {
                    label: label.clone(),
                    call_labels: labels
                        .iter()
                        .enumerate()
                        .filter(|&(c, _)| Some(c) != background)
                        .map(|(_, l)| l.clone())
                        .collect(),
                })?;
            label_min_duration[class] = frames(seconds).max(min_duration);
        }
        Ok(Self {
            onset: cfg.onset,
            offset: cfg.offset,
            min_onset: frames(cfg.min_onset_s).max(1),
            hangover: frames(cfg.hangover_s).max(1),
            min_duration,
            label_min_duration,
            merge_gap: frames(cfg.merge_gap_s),
            max_duration: frames(cfg.max_duration_s).max(min_duration),
            update_delta: cfg.update_delta,
            score,
            per_class: cfg.per_class,
            labels: labels.to_vec(),
            background,
            frame_s,
        })
    }

    fn num_classes(&self) -> usize {
        self.labels.len()
    }

    fn call_classes(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.num_classes()).filter(|&class| Some(class) != self.background)
    }

    /// P(call) of `probs` for the track following `class` (`None`: all).
    fn score(&self, class: Option<usize>, probs: &[f32]) -> f32 {
        match (class, self.score) {
            (Some(class), _) => probs[class],
            (None, AgnosticScore::OneMinus(bg)) => 1.0 - probs[bg],
            // f32::max skips NaN, so a broken frame reads as silence.
            (None, AgnosticScore::Max) => self
                .call_classes()
                .map(|class| probs[class])
                .fold(f32::NEG_INFINITY, f32::max),
        }
    }
}

/// The recent probability frames that open calls and onset runs may still
/// need for their means.
#[derive(Clone, Debug, Default)]
struct History {
    probs: VecDeque<f32>,
    first_frame: u64,
}

impl History {
    /// Mean of each class over frames `[start, end)`, all of them held.
    fn mean(&self, start: u64, end: u64, num_classes: usize) -> Vec<f32> {
        let mut sums = vec![0.0f64; num_classes];
        let skip = (start - self.first_frame) as usize * num_classes;
        let take = (end - start) as usize * num_classes;
        for (i, &p) in self.probs.range(skip..skip + take).enumerate() {
            sums[i % num_classes] += f64::from(p);
        }
        let n = (end - start) as f64;
        sums.into_iter().map(|sum| (sum / n) as f32).collect()
    }

    /// Forgets frames before `frame`.
    fn keep_from(&mut self, frame: u64, num_classes: usize) {
        let drop = frame.saturating_sub(self.first_frame) as usize * num_classes;
        self.probs.drain(..drop.min(self.probs.len()));
        self.first_frame = self.first_frame.max(frame);
    }
}

/// What an announced call last told its listeners.
#[derive(Clone, Copy, Debug)]
struct Announced {
    id: u64,
    label: usize,
    confidence: f32,
}

/// A confirmed call of one track, announced or not yet.
#[derive(Clone, Copy, Debug)]
struct OpenCall {
    start: u64,
    /// Exclusive end: one past the last frame `>= offset` (or merged onset).
    end: u64,
    /// Quiet for the hang-over; waiting out the merge gap.
    quiet: bool,
    announced: Option<Announced>,
}

/// Label, confidence and scores of a call over its frames so far.
struct Summary {
    label: usize,
    confidence: f32,
    scores: Vec<f32>,
}

/// Shared state a track needs to emit events.
struct Emitter<'a> {
    rules: &'a Rules,
    history: &'a History,
    next_call: &'a mut u64,
    out: &'a mut Vec<CallEvent>,
}

impl Emitter<'_> {
    fn summarize(&self, class: Option<usize>, start: u64, end: u64) -> Summary {
        let scores = self.history.mean(start, end, self.rules.num_classes());
        let label = class.unwrap_or_else(|| {
            // Strictly greater: ties go to the earlier class.
            self.rules
                .call_classes()
                .fold(None, |best: Option<usize>, c| match best {
                    Some(b) if scores[c] > scores[b] => Some(c),
                    Some(b) => Some(b),
                    None => Some(c),
                })
                .unwrap_or_default()
        });
        Summary {
            label,
            confidence: scores[label],
            scores,
        }
    }

    fn emit(
        &mut self,
        phase: CallPhase,
        call: u64,
        track: Option<usize>,
        summary: Summary,
        start_frame: u64,
        end: Option<(u64, EndReason)>,
    ) {
        self.out.push(CallEvent {
            phase,
            call,
            track,
            label: summary.label,
            confidence: summary.confidence,
            scores: summary.scores,
            start_frame,
            end_frame: end.map(|(frame, _)| frame),
            end_reason: end.map(|(_, reason)| reason),
        });
    }

    /// Starts the call that begins at `start` and is summed up by `summary`,
    /// giving it the next id.
    fn announce(&mut self, track: Option<usize>, start: u64, summary: Summary) -> Announced {
        let id = *self.next_call;
        *self.next_call += 1;
        let announced = Announced {
            id,
            label: summary.label,
            confidence: summary.confidence,
        };
        self.emit(CallPhase::Start, id, track, summary, start, None);
        announced
    }

    fn end(&mut self, track: Option<usize>, id: u64, start: u64, end: u64, reason: EndReason) {
        let summary = self.summarize(track, start, end);
        self.emit(
            CallPhase::End,
            id,
            track,
            summary,
            start,
            Some((end, reason)),
        );
    }
}

/// One segmentation track: all call classes together, or one class.
#[derive(Clone, Debug)]
struct Track {
    class: Option<usize>,
    /// First frame of the current run of frames `>= onset`.
    onset_run: Option<u64>,
    call: Option<OpenCall>,
}

impl Track {
    fn new(class: Option<usize>) -> Self {
        Self {
            class,
            onset_run: None,
            call: None,
        }
    }

    /// Earliest frame this track may still need from the history.
    fn oldest_needed(&self) -> Option<u64> {
        self.call.map(|call| call.start).or(self.onset_run)
    }

    fn step(&mut self, frame: u64, score: f32, em: &mut Emitter) {
        let rules = em.rules;
        if score >= rules.onset {
            self.onset_run.get_or_insert(frame);
        } else {
            self.onset_run = None;
        }
        if let Some(call) = &mut self.call
            && !call.quiet
        {
            if score >= rules.offset {
                call.end = frame + 1;
            } else if frame + 1 - call.end >= rules.hangover {
                call.quiet = true;
            }
        }
        self.wait_merge_gap(frame, em);
        if self.call.is_none()
            && let Some(run) = self.onset_run
            && frame + 1 - run >= rules.min_onset
        {
            self.call = Some(OpenCall {
                start: run,
                end: frame + 1,
                quiet: false,
                announced: None,
            });
        }
        self.report(em);
    }

    /// Rule 3: merges a quiet call with a confirmed onset within the gap, or
    /// ends it once no such onset can come.
    fn wait_merge_gap(&mut self, frame: u64, em: &mut Emitter) {
        let Some(call) = &mut self.call else { return };
        if !call.quiet {
            return;
        }
        let rules = em.rules;
        let last_merge_start = call.end.saturating_add(rules.merge_gap);
        let onset_in_gap = self.onset_run.filter(|&run| run <= last_merge_start);
        // Length of the call if an onset confirmed now joined it.
        let span = frame + 1 - call.start;
        if let Some(run) = onset_in_gap
            && frame + 1 - run >= rules.min_onset
            && span <= rules.max_duration
        {
            call.end = frame + 1;
            call.quiet = false;
        } else if span >= rules.max_duration
            || (onset_in_gap.is_none() && frame >= last_merge_start)
        {
            // No onset can join any more: none within the gap is left to be
            // confirmed, or joining would outgrow the maximum duration.
            self.close(EndReason::Quiet, em);
        }
    }

    /// Rules 4 to 6 for a growing call: announce, split, update.
    fn report(&mut self, em: &mut Emitter) {
        let Some(call) = &mut self.call else { return };
        if call.quiet {
            return;
        }
        let rules = em.rules;
        let mut announced = match call.announced {
            Some(announced) => announced,
            None if call.end - call.start >= rules.min_duration => {
                let summary = em.summarize(self.class, call.start, call.end);
                if call.end - call.start < rules.label_min_duration[summary.label] {
                    return;
                }
                em.announce(self.class, call.start, summary)
            }
            None => return,
        };
        while call.end - call.start >= rules.max_duration.saturating_add(rules.min_duration) {
            let split = call.start + rules.max_duration;
            em.end(
                self.class,
                announced.id,
                call.start,
                split,
                EndReason::Split,
            );
            call.start = split;
            let summary = em.summarize(self.class, call.start, call.end);
            announced = em.announce(self.class, call.start, summary);
        }
        let now = em.summarize(self.class, call.start, call.end);
        if now.label != announced.label
            || (now.confidence - announced.confidence).abs() >= rules.update_delta
        {
            announced.label = now.label;
            announced.confidence = now.confidence;
            em.emit(
                CallPhase::Update,
                announced.id,
                self.class,
                now,
                call.start,
                None,
            );
        }
        call.announced = Some(announced);
    }

    /// Ends the open call, if announced, cutting it at the maximum duration
    /// (rule 5), and forgets it.
    fn close(&mut self, reason: EndReason, em: &mut Emitter) {
        if let Some(call) = self.call.take()
            && let Some(announced) = call.announced
        {
            let end = call
                .end
                .min(call.start.saturating_add(em.rules.max_duration));
            em.end(self.class, announced.id, call.start, end, reason);
        }
    }

    /// Rule 7.
    fn finish(&mut self, em: &mut Emitter) {
        self.onset_run = None;
        let reason = match self.call {
            Some(call) if call.quiet => EndReason::Quiet,
            _ => EndReason::EndOfStream,
        };
        self.close(reason, em);
    }
}

/// Streaming endpointer: turns the model's per-frame probabilities into call
/// events, frame by frame, with bounded memory.
#[derive(Clone, Debug)]
pub struct Endpointer {
    rules: Rules,
    tracks: Vec<Track>,
    history: History,
    frames_seen: u64,
    next_call: u64,
}

impl Endpointer {
    /// Builds an endpointer for a model with one output per label per frame
    /// of `frame_s` seconds; fails on an invalid configuration or one the
    /// model cannot serve.
    pub fn new(
        cfg: &EndpointConfig,
        labels: &[String],
        background: Option<usize>,
        frame_s: f64,
    ) -> Result<Self, EndpointError> {
        let rules = Rules::new(cfg, labels, background, frame_s)?;
        let tracks = if rules.per_class {
            rules.call_classes().map(|c| Track::new(Some(c))).collect()
        } else {
            vec![Track::new(None)]
        };
        Ok(Self {
            rules,
            tracks,
            history: History::default(),
            frames_seen: 0,
            next_call: 0,
        })
    }

    /// Feeds the probabilities of the next frame and appends the events it
    /// causes to `out`.
    ///
    /// # Panics
    /// If `probs` does not hold one value per class: the model's output
    /// shape is validated at load, so this is a bug in the caller.
    pub fn push(&mut self, probs: &[f32], out: &mut Vec<CallEvent>) {
        assert_eq!(
            probs.len(),
            self.rules.num_classes(),
            "one probability per class"
        );
        let frame = self.frames_seen;
        self.frames_seen += 1;
        self.history.probs.extend(probs);
        let mut em = Emitter {
            rules: &self.rules,
            history: &self.history,
            next_call: &mut self.next_call,
            out,
        };
        for track in &mut self.tracks {
            let score = em.rules.score(track.class, probs);
            track.step(frame, score, &mut em);
        }
        let keep = self
            .tracks
            .iter()
            .filter_map(Track::oldest_needed)
            .min()
            .unwrap_or(self.frames_seen);
        self.history.keep_from(keep, self.rules.num_classes());
    }

    /// Ends the stream: closes every open call (rule 7). Frames pushed
    /// afterwards are a new stretch of the same stream and call numbering.
    pub fn finish(&mut self, out: &mut Vec<CallEvent>) {
        let mut em = Emitter {
            rules: &self.rules,
            history: &self.history,
            next_call: &mut self.next_call,
            out,
        };
        for track in &mut self.tracks {
            track.finish(&mut em);
        }
        self.history
            .keep_from(self.frames_seen, self.rules.num_classes());
    }

    /// Frames pushed so far: the stream clock, in frames.
    pub fn frames_seen(&self) -> u64 {
        self.frames_seen
    }

    /// Calls started and not yet ended, for status reports and shutdown
    /// checks.
    pub fn open_calls(&self) -> usize {
        self.tracks
            .iter()
            .filter(|t| t.call.is_some_and(|c| c.announced.is_some()))
            .count()
    }

    /// Live reload: new thresholds and times apply from the next frame,
    /// open calls included. Switching `per_class` reshapes the tracks and is
    /// refused; nothing changes on error.
    pub fn set_config(&mut self, cfg: &EndpointConfig) -> Result<(), EndpointError> {
        if cfg.per_class != self.rules.per_class {
            return Err(EndpointError::NeedsRestart("per_class"));
        }
        self.rules = Rules::new(
            cfg,
            &self.rules.labels,
            self.rules.background,
            self.rules.frame_s,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recommended(json: &str) -> Recommended {
        serde_json::from_str(json).expect("test JSON")
    }

    fn user_set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| (*k).to_owned()).collect()
    }

    #[test]
    fn a_model_recommendation_fills_only_what_the_user_left_unset() {
        let model = recommended(r#"{"onset": 0.6, "offset": 0.2, "hangover_s": 0.96}"#);
        let user = EndpointConfig {
            hangover_s: 0.16,
            ..EndpointConfig::default()
        };
        let got = user
            .with_recommended(&user_set(&["hangover_s"]), &model)
            .expect("valid");
        assert_eq!((got.onset, got.offset, got.hangover_s), (0.6, 0.2, 0.16));
        // Everything the model does not mention keeps its default.
        assert_eq!(got.merge_gap_s, EndpointConfig::default().merge_gap_s);
        // Nothing set: the model's values throughout.
        let got = EndpointConfig::default()
            .with_recommended(&user_set(&[]), &model)
            .expect("valid");
        assert_eq!((got.onset, got.offset, got.hangover_s), (0.6, 0.2, 0.96));
    }

    #[test]
    fn the_thresholds_come_from_one_source() {
        // The user raised only the onset; mixing in the model's offset could
        // even break offset <= onset, so both stay the user's.
        let model = recommended(r#"{"onset": 0.3, "offset": 0.25}"#);
        let user = EndpointConfig {
            onset: 0.8,
            ..EndpointConfig::default()
        };
        let got = user
            .with_recommended(&user_set(&["onset"]), &model)
            .expect("valid");
        assert_eq!(
            (got.onset, got.offset),
            (0.8, EndpointConfig::default().offset)
        );
    }

    #[test]
    fn bad_recommendations_are_refused_by_name() {
        for (json, named) in [
            (r#"{"onsett": 0.6}"#, "onsett"),
            (r#"{"onset": "high"}"#, "invalid type"),
            (r#"{"onset": 0.4, "offset": 0.6}"#, "offset"),
        ] {
            let err = EndpointConfig::default()
                .with_recommended(&user_set(&[]), &recommended(json))
                .expect_err(json)
                .to_string();
            assert!(err.contains(named), "{json}: {err}");
        }
    }

    /// Labels: 0 background, 1 rumble, 2 roar, 3 cry, 4 trumpet.
    const CLASSES: usize = 5;

    /// 1 s frames keep the times readable: onset 2, hang-over 3, minimum
    /// 2, merge gap 5, maximum 30 frames.
    fn cfg() -> EndpointConfig {
        EndpointConfig {
            onset: 0.5,
            offset: 0.3,
            min_onset_s: 2.0,
            hangover_s: 3.0,
            min_duration_s: 2.0,
            merge_gap_s: 5.0,
            max_duration_s: 30.0,
            ..EndpointConfig::default()
        }
    }

    /// A frame where `class` has probability `p` and the background the rest.
    fn frame(class: usize, p: f32) -> Vec<f32> {
        let mut probs = vec![0.0; CLASSES];
        probs[0] = 1.0 - p;
        probs[class] = p;
        probs
    }

    /// `n` labels: "background", "rumble", then "c2", "c3", ...
    fn labels(n: usize) -> Vec<String> {
        (0..n)
            .map(|c| match c {
                0 => "background".to_owned(),
                1 => "rumble".to_owned(),
                c => format!("c{c}"),
            })
            .collect()
    }

    /// An endpointer over 1 s frames, background at 0.
    fn endpointer(cfg: &EndpointConfig) -> Endpointer {
        Endpointer::new(cfg, &labels(CLASSES), Some(0), 1.0).expect("valid config")
    }

    /// Pushes rumble probabilities without finishing the stream.
    fn push_rumble(ep: &mut Endpointer, rumble: &[f32], out: &mut Vec<CallEvent>) {
        for &p in rumble {
            ep.push(&frame(1, p), out);
        }
    }

    /// The calls ended by the time the rumble `parts` have been pushed,
    /// the stream still open.
    fn ended_so_far(cfg: &EndpointConfig, parts: &[(f32, usize)]) -> Vec<(u64, u64, EndReason)> {
        let mut ep = endpointer(cfg);
        let mut out = Vec::new();
        push_rumble(&mut ep, &seq(parts), &mut out);
        calls(&out)
    }

    fn run_frames(cfg: &EndpointConfig, frames: &[Vec<f32>]) -> Vec<CallEvent> {
        let mut ep = endpointer(cfg);
        let mut out = Vec::new();
        for probs in frames {
            ep.push(probs, &mut out);
        }
        ep.finish(&mut out);
        assert_eq!(ep.open_calls(), 0);
        out
    }

    /// Runs rumble probabilities, given as (probability, frames) runs,
    /// through the class-agnostic track.
    fn run(cfg: &EndpointConfig, parts: &[(f32, usize)]) -> Vec<CallEvent> {
        let frames: Vec<_> = seq(parts).into_iter().map(|p| frame(1, p)).collect();
        run_frames(cfg, &frames)
    }

    /// (start, end, reason) of every end event.
    fn calls(events: &[CallEvent]) -> Vec<(u64, u64, EndReason)> {
        events
            .iter()
            .filter(|e| e.phase == CallPhase::End)
            .map(|e| {
                (
                    e.start_frame,
                    e.end_frame.expect("end frame"),
                    e.end_reason.expect("end reason"),
                )
            })
            .collect()
    }

    fn seq(parts: &[(f32, usize)]) -> Vec<f32> {
        parts
            .iter()
            .flat_map(|&(p, n)| std::iter::repeat_n(p, n))
            .collect()
    }

    #[test]
    fn onset_threshold_is_inclusive_and_required() {
        let below = run(&cfg(), &[(0.0, 2), (0.49, 10), (0.0, 10)]);
        assert!(below.is_empty());
        let at = run(&cfg(), &[(0.0, 2), (0.5, 10), (0.0, 10)]);
        assert_eq!(calls(&at), [(2, 12, EndReason::Quiet)]);
    }

    #[test]
    fn spike_shorter_than_min_onset_is_ignored() {
        let events = run(&cfg(), &[(0.0, 2), (0.9, 1), (0.4, 5), (0.0, 10)]);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn start_is_announced_when_confirmed_and_dated_from_the_onset_run() {
        let mut ep = endpointer(&cfg());
        let mut out = Vec::new();
        push_rumble(&mut ep, &[0.0, 0.0, 0.8], &mut out);
        assert!(out.is_empty());
        ep.push(&frame(1, 0.8), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].phase, CallPhase::Start);
        assert_eq!(out[0].start_frame, 2);
        assert_eq!(ep.open_calls(), 1);
    }

    #[test]
    fn dip_shorter_than_hangover_does_not_end_the_call() {
        let events = run(&cfg(), &[(0.9, 4), (0.1, 2), (0.9, 4), (0.0, 10)]);
        assert_eq!(calls(&events), [(0, 10, EndReason::Quiet)]);
    }

    #[test]
    fn quiet_run_of_hangover_ends_the_call_at_its_first_frame() {
        let no_merge = EndpointConfig {
            merge_gap_s: 0.0,
            ..cfg()
        };
        assert!(ended_so_far(&no_merge, &[(0.9, 4), (0.1, 2)]).is_empty());
        assert_eq!(
            ended_so_far(&no_merge, &[(0.9, 4), (0.1, 3)]),
            [(0, 4, EndReason::Quiet)]
        );
    }

    #[test]
    fn values_between_offset_and_onset_keep_but_do_not_start_a_call() {
        let kept = run(&cfg(), &[(0.9, 3), (0.4, 20), (0.0, 10)]);
        assert_eq!(calls(&kept), [(0, 23, EndReason::Quiet)]);
        let never = run(&cfg(), &[(0.4, 20), (0.0, 10)]);
        assert!(never.is_empty());
    }

    #[test]
    fn calls_shorter_than_min_duration_are_dropped() {
        let long_min = EndpointConfig {
            min_duration_s: 6.0,
            ..cfg()
        };
        let short = run(&long_min, &[(0.9, 5), (0.0, 20)]);
        assert!(short.is_empty(), "{short:?}");
        let long = run(&long_min, &[(0.9, 6), (0.0, 20)]);
        assert_eq!(calls(&long), [(0, 6, EndReason::Quiet)]);
    }

    #[test]
    fn merge_gap_bridges_a_short_gap_only() {
        // Quiet from 4; a second onset at 4 + 5 is within the gap.
        let bridged = run(&cfg(), &[(0.9, 4), (0.0, 5), (0.9, 4), (0.0, 20)]);
        assert_eq!(calls(&bridged), [(0, 13, EndReason::Quiet)]);
        assert_eq!(
            bridged
                .iter()
                .filter(|e| e.phase == CallPhase::Start)
                .count(),
            1
        );
        let apart = run(&cfg(), &[(0.9, 4), (0.0, 6), (0.9, 4), (0.0, 20)]);
        assert_eq!(
            calls(&apart),
            [(0, 4, EndReason::Quiet), (10, 14, EndReason::Quiet)]
        );
    }

    #[test]
    fn end_waits_for_the_merge_gap() {
        // Call [0, 4): quiet at frame 6, but an onset may still start at 9.
        assert!(ended_so_far(&cfg(), &[(0.9, 4), (0.0, 5)]).is_empty());
        assert_eq!(
            ended_so_far(&cfg(), &[(0.9, 4), (0.0, 6)]),
            [(0, 4, EndReason::Quiet)]
        );
    }

    #[test]
    fn fragments_too_short_alone_count_once_merged() {
        let long_min = EndpointConfig {
            min_duration_s: 8.0,
            ..cfg()
        };
        let events = run(&long_min, &[(0.9, 3), (0.0, 4), (0.9, 3), (0.0, 20)]);
        assert_eq!(calls(&events), [(0, 10, EndReason::Quiet)]);
    }

    #[test]
    fn long_call_is_split_with_a_new_start_at_the_same_frame() {
        let events = run(&cfg(), &[(0.9, 70), (0.0, 20)]);
        assert_eq!(
            calls(&events),
            [
                (0, 30, EndReason::Split),
                (30, 60, EndReason::Split),
                (60, 70, EndReason::Quiet)
            ]
        );
        let starts: Vec<_> = events
            .iter()
            .filter(|e| e.phase == CallPhase::Start)
            .map(|e| (e.call, e.start_frame))
            .collect();
        assert_eq!(starts, [(0, 0), (1, 30), (2, 60)]);
        // The split end and the new start come together.
        let split_end = events
            .iter()
            .position(|e| e.end_reason == Some(EndReason::Split))
            .expect("split");
        assert_eq!(events[split_end + 1].phase, CallPhase::Start);
        assert_eq!(events[split_end + 1].start_frame, 30);
    }

    #[test]
    fn remainder_too_short_after_the_maximum_is_cut_off() {
        let events = run(&cfg(), &[(0.9, 31), (0.0, 20)]);
        assert_eq!(calls(&events), [(0, 30, EndReason::Quiet)]);
    }

    #[test]
    fn merge_that_would_exceed_the_maximum_is_not_made() {
        let events = run(&cfg(), &[(0.9, 25), (0.0, 4), (0.9, 4), (0.0, 20)]);
        assert_eq!(
            calls(&events),
            [(0, 25, EndReason::Quiet), (29, 33, EndReason::Quiet)]
        );
    }

    #[test]
    fn held_frames_stay_bounded() {
        let hour_gap = EndpointConfig {
            merge_gap_s: 3600.0,
            ..cfg()
        };
        let mut ep = endpointer(&hour_gap);
        let mut out = Vec::new();
        // Frames held at most: max + min + hang-over + min onset.
        let bound = (30 + 2 + 3 + 2) * CLASSES;
        for i in 0..5000u64 {
            let p = if (i / 7) % 3 == 0 { 0.0 } else { 0.9 };
            ep.push(&frame(1, p), &mut out);
            assert!(ep.history.probs.len() <= bound, "frame {i}");
        }
        assert!(calls(&out).len() > 100);
    }

    #[test]
    fn label_is_the_class_with_the_highest_mean() {
        let mut frames = Vec::new();
        for _ in 0..8 {
            frames.push(vec![0.2, 0.1, 0.7, 0.0, 0.0]);
        }
        frames.push(vec![0.0, 1.0, 0.0, 0.0, 0.0]);
        frames.push(vec![0.0, 1.0, 0.0, 0.0, 0.0]);
        frames.extend(std::iter::repeat_n(vec![1.0, 0.0, 0.0, 0.0, 0.0], 10));
        let events = run_frames(&cfg(), &frames);
        let end = events
            .iter()
            .find(|e| e.phase == CallPhase::End)
            .expect("end");
        assert_eq!(end.label, 2);
        assert!((end.confidence - 0.56).abs() < 1e-6);
        assert_eq!(end.scores.len(), CLASSES);
        assert!((end.scores[1] - 0.28).abs() < 1e-6);
    }

    #[test]
    fn label_change_and_confidence_move_emit_updates() {
        let mut frames = vec![frame(2, 0.9); 4];
        frames.extend(vec![frame(1, 1.0); 10]);
        frames.extend(vec![frame(1, 0.0); 10]);
        let events = run_frames(&cfg(), &frames);
        let updates: Vec<_> = events
            .iter()
            .filter(|e| e.phase == CallPhase::Update)
            .collect();
        assert!(updates.iter().any(|u| u.label == 1), "{updates:?}");
        assert!(updates.iter().all(|u| u.call == 0 && u.start_frame == 0));
        let steady = run(&cfg(), &[(0.9, 20), (0.0, 10)]);
        assert!(steady.iter().all(|e| e.phase != CallPhase::Update));
    }

    #[test]
    fn end_of_stream_closes_open_calls() {
        let events = run(&cfg(), &[(0.0, 3), (0.9, 6), (0.1, 2)]);
        assert_eq!(calls(&events), [(3, 9, EndReason::EndOfStream)]);
        // Already quiet, only waiting out the merge gap: a natural end.
        let waiting = run(&cfg(), &[(0.9, 6), (0.1, 4)]);
        assert_eq!(calls(&waiting), [(0, 6, EndReason::Quiet)]);
        let unconfirmed = run(&cfg(), &[(0.0, 3), (0.9, 1)]);
        assert!(unconfirmed.is_empty());
    }

    #[test]
    fn per_class_tracks_overlap() {
        let per_class = EndpointConfig {
            per_class: true,
            ..cfg()
        };
        let mut frames = Vec::new();
        for i in 0..20 {
            let rumble = if i < 12 { 0.8 } else { 0.0 };
            let trumpet = if (6..18).contains(&i) { 0.7 } else { 0.0 };
            frames.push(vec![0.0, rumble, 0.0, 0.0, trumpet]);
        }
        frames.extend(vec![vec![1.0, 0.0, 0.0, 0.0, 0.0]; 10]);
        let events = run_frames(&per_class, &frames);
        let ends: Vec<_> = events
            .iter()
            .filter(|e| e.phase == CallPhase::End)
            .map(|e| (e.track, e.label, e.start_frame, e.end_frame))
            .collect();
        assert_eq!(ends, [(Some(1), 1, 0, Some(12)), (Some(4), 4, 6, Some(18))]);
        let ids: Vec<_> = events
            .iter()
            .filter(|e| e.phase == CallPhase::End)
            .map(|e| e.call)
            .collect();
        assert_eq!(ids, [0, 1]);
    }

    #[test]
    fn one_minus_background_scores_the_sum_of_call_classes() {
        // No single class reaches the onset, together they do.
        let spread = vec![0.3, 0.2, 0.2, 0.2, 0.1];
        let mut frames = vec![spread; 6];
        frames.extend(vec![frame(1, 0.0); 10]);
        assert!(run_frames(&cfg(), &frames).is_empty());
        let one_minus = EndpointConfig {
            call_score: CallScore::OneMinusBackground,
            ..cfg()
        };
        assert_eq!(
            calls(&run_frames(&one_minus, &frames)),
            [(0, 6, EndReason::Quiet)]
        );
    }

    /// `cfg()` with rumbles needing 6 frames to be announced.
    fn long_rumbles() -> EndpointConfig {
        EndpointConfig {
            label_min_duration_s: [("rumble".to_owned(), 6.0)].into(),
            ..cfg()
        }
    }

    #[test]
    fn a_label_minimum_drops_shorter_calls_of_that_label_only() {
        // 5 frames: long enough for min_duration_s, not for a rumble.
        let short = |class| {
            let mut frames = vec![frame(class, 0.9); 5];
            frames.extend(vec![frame(class, 0.0); 10]);
            frames
        };
        assert!(run_frames(&long_rumbles(), &short(1)).is_empty());
        assert_eq!(
            calls(&run_frames(&long_rumbles(), &short(2))),
            [(0, 5, EndReason::Quiet)]
        );
        assert_eq!(
            calls(&run_frames(&cfg(), &short(1))),
            [(0, 5, EndReason::Quiet)]
        );
    }

    #[test]
    fn a_call_reaching_its_label_minimum_is_announced_then_from_its_start() {
        let mut ep = endpointer(&long_rumbles());
        let mut out = Vec::new();
        push_rumble(&mut ep, &[0.9; 5], &mut out);
        assert!(out.is_empty(), "{out:?}");
        push_rumble(&mut ep, &[0.9], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].phase, out[0].start_frame), (CallPhase::Start, 0));
        push_rumble(&mut ep, &[0.0; 10], &mut out);
        assert_eq!(calls(&out), [(0, 6, EndReason::Quiet)]);
    }

    #[test]
    fn a_label_minimum_must_name_a_call_label() {
        for label in ["roar", "background"] {
            let cfg = EndpointConfig {
                label_min_duration_s: [(label.to_owned(), 1.0)].into(),
                ..cfg()
            };
            let err = Endpointer::new(&cfg, &labels(3), Some(0), 0.16).map(|_| ());
            assert_eq!(
                err.expect_err(label).to_string(),
                format!(
                    "endpoint.label_min_duration_s names \"{label}\", which is not one of the \
                     model's call labels (rumble, c2)"
                )
            );
        }
        let too_long = EndpointConfig {
            label_min_duration_s: [("rumble".to_owned(), 30.0)].into(),
            ..cfg()
        };
        assert!(
            too_long
                .validate()
                .expect_err("invalid")
                .to_string()
                .starts_with("endpoint.label_min_duration_s \"rumble\" (30)")
        );
        assert_eq!(long_rumbles().longest_min_duration_s(), 6.0);
    }

    #[test]
    fn validate_names_the_key() {
        let bad = EndpointConfig {
            offset: 0.6,
            ..EndpointConfig::default()
        };
        assert_eq!(
            bad.validate().expect_err("invalid").to_string(),
            "endpoint.offset (0.6) must be <= endpoint.onset (0.5)"
        );
        let bad = EndpointConfig {
            max_duration_s: 0.3,
            ..EndpointConfig::default()
        };
        assert!(
            bad.validate()
                .expect_err("invalid")
                .to_string()
                .starts_with("endpoint.max_duration_s")
        );
        let bad = EndpointConfig {
            hangover_s: f64::NAN,
            ..EndpointConfig::default()
        };
        assert!(
            bad.validate()
                .expect_err("invalid")
                .to_string()
                .starts_with("endpoint.hangover_s")
        );
        assert_eq!(EndpointConfig::default().validate(), Ok(()));
    }

    #[test]
    fn model_mismatches_are_refused() {
        let one_minus = EndpointConfig {
            call_score: CallScore::OneMinusBackground,
            ..cfg()
        };
        assert_eq!(
            Endpointer::new(&one_minus, &labels(4), None, 0.16).map(|_| ()),
            Err(EndpointError::NeedsBackground)
        );
        assert!(Endpointer::new(&cfg(), &labels(1), Some(0), 0.16).is_err());
        assert!(Endpointer::new(&cfg(), &labels(3), Some(3), 0.16).is_err());
        assert!(Endpointer::new(&cfg(), &labels(3), Some(0), 0.0).is_err());
    }

    #[test]
    fn set_config_applies_to_open_calls_and_refuses_mode_change() {
        let mut ep = endpointer(&cfg());
        let mut out = Vec::new();
        push_rumble(&mut ep, &[0.9; 10], &mut out);
        let shorter = EndpointConfig {
            max_duration_s: 5.0,
            ..cfg()
        };
        ep.set_config(&shorter).expect("reload");
        ep.push(&frame(1, 0.9), &mut out);
        assert_eq!(calls(&out), [(0, 5, EndReason::Split)]);
        let per_class = EndpointConfig {
            per_class: true,
            ..cfg()
        };
        assert_eq!(
            ep.set_config(&per_class),
            Err(EndpointError::NeedsRestart("per_class"))
        );
    }
}
