//! Invariants of the endpointer's event stream over arbitrary probability
//! sequences and configurations, in both segmentation modes.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rumbled::detect::{CallEvent, CallPhase, CallScore, EndReason, EndpointConfig, Endpointer};

/// A model shape and a configuration that passes validation.
#[derive(Clone, Debug)]
struct Setup {
    cfg: EndpointConfig,
    /// One per model output class.
    labels: Vec<String>,
    background: Option<usize>,
    frame_s: f64,
}

fn setup() -> impl Strategy<Value = Setup> {
    let thresholds = (0.01f32..=1.0, 0.0f32..=1.0).prop_map(|(onset, frac)| (onset, onset * frac));
    let times = (
        0.0f64..2.0,
        0.0f64..2.0,
        0.0f64..3.0,
        0.0f64..4.0,
        0.01f64..30.0,
    );
    (
        thresholds,
        times,
        any::<bool>(),
        any::<bool>(),
        0.01f32..=1.0,
        2usize..8,
        prop_oneof![Just(None), Just(Some(0)), Just(Some(usize::MAX))],
        prop_oneof![Just(0.16), 0.05f64..1.0],
        (
            0usize..8,
            prop_oneof![Just(None), (0.0f64..1.0).prop_map(Some)],
        ),
    )
        .prop_map(
            |(
                (onset, offset),
                times,
                one_minus,
                per_class,
                delta,
                num_classes,
                bg,
                frame_s,
                (long_class, long_frac),
            )| {
                let (min_onset_s, hangover_s, min_duration_s, merge_gap_s, extra) = times;
                let labels: Vec<String> = (0..num_classes).map(|c| format!("c{c}")).collect();
                // usize::MAX stands for "the last class".
                let background = bg.map(|b| b.min(num_classes - 1));
                // One call class may need to last longer, up to the maximum.
                let long_class = long_class % num_classes;
                let label_min_duration_s = match long_frac {
                    Some(frac) if Some(long_class) != background => {
                        [(labels[long_class].clone(), min_duration_s + frac * extra)].into()
                    }
                    _ => BTreeMap::new(),
                };
                let call_score = if one_minus && background.is_some() {
                    CallScore::OneMinusBackground
                } else {
                    CallScore::Max
                };
                Setup {
                    cfg: EndpointConfig {
                        onset,
                        offset,
                        min_onset_s,
                        hangover_s,
                        min_duration_s,
                        label_min_duration_s,
                        merge_gap_s,
                        max_duration_s: min_duration_s + extra,
                        call_score,
                        per_class,
                        update_delta: delta,
                    },
                    labels,
                    background,
                    frame_s,
                }
            },
        )
}

/// Runs of constant probabilities with occasional noise frames: plain i.i.d.
/// noise would rarely hold an onset long enough to test anything.
fn frames(num_classes: usize) -> impl Strategy<Value = Vec<Vec<f32>>> {
    let probs = proptest::collection::vec(0.0f32..=1.0, num_classes);
    let segment = (probs, 1usize..80);
    proptest::collection::vec(segment, 0..60).prop_map(|segments| {
        segments
            .into_iter()
            .flat_map(|(probs, n)| std::iter::repeat_n(probs, n))
            .take(2000)
            .collect()
    })
}

fn case() -> impl Strategy<Value = (Setup, Vec<Vec<f32>>)> {
    setup().prop_flat_map(|s| {
        let n = s.labels.len();
        (Just(s), frames(n))
    })
}

/// The documented conversion of seconds to frames.
fn to_frames(seconds: f64, frame_s: f64) -> u64 {
    (seconds / frame_s).round() as u64
}

#[derive(Debug)]
struct Seen {
    track: Option<usize>,
    start: u64,
    end: Option<u64>,
}

fn check(setup: &Setup, frames: &[Vec<f32>]) -> Result<(), TestCaseError> {
    let Setup {
        cfg,
        labels,
        background,
        frame_s,
    } = setup;
    prop_assert_eq!(cfg.validate(), Ok(()));
    let mut ep = Endpointer::new(cfg, labels, *background, *frame_s).expect("valid configuration");
    let min_frames = to_frames(cfg.min_duration_s, *frame_s).max(1);
    let max_frames = to_frames(cfg.max_duration_s, *frame_s).max(min_frames);
    // Frames a call must span before it is announced, by label.
    let announce_frames = |label: usize| {
        cfg.label_min_duration_s
            .get(&labels[label])
            .map_or(min_frames, |&s| to_frames(s, *frame_s).max(min_frames))
    };
    // (track, frame) of every split: the rest of a split call starts there.
    let mut splits = Vec::new();

    // Every event with the number of frames seen when it was emitted.
    let mut events: Vec<(u64, CallEvent)> = Vec::new();
    let mut out = Vec::new();
    for probs in frames {
        ep.push(probs, &mut out);
        events.extend(out.drain(..).map(|e| (ep.frames_seen(), e)));
    }
    ep.finish(&mut out);
    events.extend(out.drain(..).map(|e| (ep.frames_seen(), e)));
    prop_assert_eq!(ep.open_calls(), 0);
    prop_assert_eq!(ep.frames_seen(), frames.len() as u64);

    let mut calls: BTreeMap<u64, Seen> = BTreeMap::new();
    for (seen, ev) in &events {
        prop_assert_eq!(ev.scores.len(), labels.len());
        prop_assert_eq!(ev.confidence, ev.scores[ev.label]);
        prop_assert!(Some(ev.label) != *background, "background label: {:?}", ev);
        if cfg.per_class {
            prop_assert_eq!(ev.track, Some(ev.label));
        } else {
            prop_assert_eq!(ev.track, None);
        }
        prop_assert!(ev.start_frame < *seen, "{:?} before its start", ev);
        prop_assert_eq!(ev.end_frame.is_some(), ev.phase == CallPhase::End);
        prop_assert_eq!(ev.end_reason.is_some(), ev.phase == CallPhase::End);
        match ev.phase {
            CallPhase::Start => {
                // Ids are handed out in order of announcement.
                prop_assert_eq!(ev.call, calls.len() as u64);
                // A new call (not the rest of a split one) is announced only
                // once it spans its label's minimum.
                if !splits.contains(&(ev.track, ev.start_frame)) {
                    prop_assert!(
                        seen - ev.start_frame >= announce_frames(ev.label),
                        "announced after {} frames, its label needs {}: {:?}",
                        seen - ev.start_frame,
                        announce_frames(ev.label),
                        ev
                    );
                }
                calls.insert(
                    ev.call,
                    Seen {
                        track: ev.track,
                        start: ev.start_frame,
                        end: None,
                    },
                );
            }
            CallPhase::Update | CallPhase::End => {
                let Some(call) = calls.get_mut(&ev.call) else {
                    return Err(TestCaseError::fail(format!("{ev:?} before its start")));
                };
                prop_assert!(call.end.is_none(), "{:?} after its end", ev);
                prop_assert_eq!(call.track, ev.track);
                prop_assert_eq!(call.start, ev.start_frame);
                if let Some(end) = ev.end_frame {
                    prop_assert!(ev.start_frame < end && end <= *seen, "{:?}", ev);
                    let duration = end - ev.start_frame;
                    prop_assert!(
                        (min_frames..=max_frames).contains(&duration),
                        "duration {} outside [{}, {}]: {:?}",
                        duration,
                        min_frames,
                        max_frames,
                        ev
                    );
                    if ev.end_reason == Some(EndReason::Split) {
                        prop_assert_eq!(duration, max_frames);
                        splits.push((ev.track, end));
                    }
                    call.end = Some(end);
                }
            }
        }
    }

    let mut by_track: BTreeMap<Option<usize>, Vec<(u64, u64)>> = BTreeMap::new();
    for (id, call) in &calls {
        let Some(end) = call.end else {
            return Err(TestCaseError::fail(format!("call {id} never ended")));
        };
        by_track
            .entry(call.track)
            .or_default()
            .push((call.start, end));
    }
    for (track, mut spans) in by_track {
        spans.sort_unstable();
        for pair in spans.windows(2) {
            prop_assert!(
                pair[0].1 <= pair[1].0,
                "overlap on track {:?}: {:?}",
                track,
                pair
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn event_stream_is_well_formed((setup, frames) in case()) {
        check(&setup, &frames)?;
    }
}
