//! Early starts: announcing a call from frames that are not final yet.
//!
//! A frame is final once every window covering it has run, a window's
//! length after it (10 s for the default model): too late for a ranger.
//! After each window, and half a hop later with one extra window over the
//! newest audio, the detector's [`preview`](Detector::preview) runs the
//! endpointer over the frames as they stand; a call it would start is
//! announced at once as a `start` record marked `provisional`. The extra
//! window doubles the inference work and halves the wait for the next
//! look; it never changes the final frames. The final
//! frames stay the authority, and every provisional start is resolved:
//!
//! - the final endpointer starts a call near it on the same track: that
//!   call's records (an `update` in place of its `start`, then its updates
//!   and its end) carry the provisional start's id, with `provisional`
//!   false, so a subscriber sees one call;
//! - the final frames pass it without such a call: an `end` record with
//!   reason `retracted` withdraws it (a false alarm of the early path).
//!
//! Final starts with no provisional start before them are published as
//! they are. Without early starts the records are exactly `replay`'s.

use crate::detect::{CallEvent, CallPhase, CallRecord, EndReason, EndpointConfig, StreamContext};
use crate::model::WindowModel;
use crate::pipeline::{Detector, PipelineError};

/// How far apart (in frames) a provisional and a final start may be and
/// still be the same call: the final probabilities move an onset by a few
/// frames, not by a second.
const MATCH_FRAMES: u64 = 6;

/// A provisional start awaiting the final frames' verdict.
struct Pending {
    track: Option<usize>,
    start_frame: u64,
    record: CallRecord,
}

/// Resolves provisional starts against the final events of one detector
/// stream.
pub struct EarlyStarts {
    pending: Vec<Pending>,
    /// Final calls published under a provisional start's id: (call, id).
    renamed: Vec<(u64, String)>,
    /// Final frames needed past a provisional start before its absence from
    /// the final events is a verdict.
    verdict_frames: u64,
    preview: Vec<CallEvent>,
    windows_seen: u64,
    /// Fbank frames between looks when no scheduled window runs.
    look_every: u64,
    /// Fbank frames heard at the last look.
    looked_at: u64,
}

impl EarlyStarts {
    /// For a stream endpointed with `cfg` on frames of `frame_s` seconds,
    /// whose scheduled windows are `hop` fbank frames apart: it looks at the
    /// newest audio every half hop.
    pub fn new(cfg: &EndpointConfig, frame_s: f64, hop: u64) -> Self {
        let mut early = EarlyStarts {
            pending: Vec::new(),
            renamed: Vec::new(),
            verdict_frames: 0,
            preview: Vec::new(),
            windows_seen: 0,
            look_every: (hop / 2).max(1),
            looked_at: 0,
        };
        early.set_rules(cfg, frame_s);
        early
    }

    /// Follows new endpointing rules (live reload).
    pub fn set_rules(&mut self, cfg: &EndpointConfig, frame_s: f64) {
        // A final start is announced once its onset run and minimum duration
        // (its label's, at the longest) are final; two frames of rounding spare.
        let confirm =
            ((cfg.min_onset_s + cfg.longest_min_duration_s()) / frame_s).ceil() as u64 + 2;
        self.verdict_frames = MATCH_FRAMES + confirm;
    }

    /// Records for one push: `events` are the detector's final events of
    /// that push (ids renamed where a provisional start came first), then
    /// retractions now due, then new provisional starts. `seq` is left 0.
    pub fn records<M: WindowModel + ?Sized>(
        &mut self,
        detector: &mut Detector,
        model: &mut M,
        events: &[CallEvent],
        ctx: &StreamContext,
        out: &mut Vec<CallRecord>,
    ) -> Result<(), PipelineError> {
        self.resolve(events, ctx, out);
        let decided_until = detector.frames_out().saturating_sub(self.verdict_frames);
        self.retract(|p| p.start_frame < decided_until, out);
        let heard = detector.fbank_frames();
        let window_ran = detector.windows_run() != self.windows_seen;
        if !window_ran && heard < self.looked_at + self.look_every {
            return Ok(());
        }
        self.windows_seen = detector.windows_run();
        self.looked_at = heard;
        self.preview.clear();
        // A scheduled window that just ran ends at the newest audio already.
        detector.preview((!window_ran).then_some(model), &mut self.preview)?;
        for ev in &self.preview {
            if ev.phase != CallPhase::Start
                || self.pending.iter().any(|p| {
                    p.track == ev.track && p.start_frame.abs_diff(ev.start_frame) <= MATCH_FRAMES
                })
            {
                continue;
            }
            let mut record = CallRecord::from_event(ev, ctx, 0);
            record.provisional = true;
            out.push(record.clone());
            self.pending.push(Pending {
                track: ev.track,
                start_frame: ev.start_frame,
                record,
            });
        }
        Ok(())
    }

    /// Records for the end of the stream: its last final events, then
    /// every provisional start they did not confirm, retracted.
    pub fn finish(&mut self, events: &[CallEvent], ctx: &StreamContext, out: &mut Vec<CallRecord>) {
        self.resolve(events, ctx, out);
        self.retract(|_| true, out);
    }

    fn resolve(&mut self, events: &[CallEvent], ctx: &StreamContext, out: &mut Vec<CallRecord>) {
        for ev in events {
            let mut record = CallRecord::from_event(ev, ctx, 0);
            if ev.phase == CallPhase::Start {
                let matched = self.pending.iter().position(|p| {
                    p.track == ev.track && p.start_frame.abs_diff(ev.start_frame) <= MATCH_FRAMES
                });
                if let Some(i) = matched {
                    let pending = self.pending.remove(i);
                    record.phase = CallPhase::Update;
                    record.id = pending.record.id;
                    self.renamed.push((ev.call, record.id.clone()));
                }
            } else if let Some(i) = self.renamed.iter().position(|(call, _)| *call == ev.call) {
                record.id = self.renamed[i].1.clone();
                if ev.phase == CallPhase::End {
                    self.renamed.remove(i);
                }
            }
            out.push(record);
        }
    }

    fn retract(&mut self, due: impl Fn(&Pending) -> bool, out: &mut Vec<CallRecord>) {
        let mut i = 0;
        while i < self.pending.len() {
            if !due(&self.pending[i]) {
                i += 1;
                continue;
            }
            let mut record = self.pending.remove(i).record;
            record.phase = CallPhase::End;
            record.end = record.start.clone();
            record.duration_s = Some(0.0);
            record.end_reason = Some(EndReason::Retracted);
            out.push(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Manifest, ModelError, WindowModel};
    use crate::pipeline::{DetectorConfig, DetectorOutput};

    /// Says "call" where the input is loud; with `edge_ghost`, also on the
    /// last frames of every window, which later windows contradict.
    struct Fake {
        edge_ghost: bool,
    }

    impl WindowModel for Fake {
        fn num_classes(&self) -> usize {
            5
        }
        fn frames_per_output(&self) -> usize {
            16
        }
        fn infer(
            &mut self,
            w: &[f32],
            frames: usize,
            out: &mut Vec<f32>,
        ) -> Result<(), ModelError> {
            let outputs = frames / 16;
            for g in 0..outputs {
                let rows = &w[g * 16 * 128..(g + 1) * 16 * 128];
                let loud = rows.iter().sum::<f32>() > 0.0;
                let ghost = self.edge_ghost && g + 4 >= outputs && frames >= 998;
                let p = if loud || ghost { 0.9 } else { 0.05 };
                out.extend([1.0 - p, p, 0.0, 0.0, 0.0]);
            }
            Ok(())
        }
    }

    fn manifest() -> Manifest {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/models/ok_pool.json");
        Manifest::load(&path).expect("manifest")
    }

    /// Streams `audio` through a detector in 0.1 s chunks; returns the
    /// records with the audio time (s) at which each was produced.
    fn run(audio: &[f32], model: &mut Fake) -> Vec<(f64, CallRecord)> {
        let m = manifest();
        let cfg = DetectorConfig {
            input_rate: 16_000,
            gain: 1.0,
            hop_frames: 13,
            centre_weighted: false,
            endpoint: EndpointConfig::default(),
        };
        let mut detector = Detector::new(&m, &cfg).expect("detector");
        let ctx = StreamContext::new(&m, "t", "file", "x");
        let mut early = EarlyStarts::new(&cfg.endpoint, ctx.frame_s, 13 * 16);
        let mut out = DetectorOutput::default();
        let mut records = Vec::new();
        let mut t = 0.0;
        for chunk in audio.chunks(1600) {
            out.clear();
            detector.push(chunk, model, &mut out).expect("push");
            t += chunk.len() as f64 / 16_000.0;
            let mut recs = Vec::new();
            early
                .records(&mut detector, model, &out.events, &ctx, &mut recs)
                .expect("records");
            records.extend(recs.into_iter().map(|r| (t, r)));
        }
        out.clear();
        detector.finish(model, &mut out).expect("finish");
        let mut recs = Vec::new();
        early.finish(&out.events, &ctx, &mut recs);
        records.extend(recs.into_iter().map(|r| (t, r)));
        records
    }

    /// Quiet audio with loud noise over `calls` (seconds).
    fn audio(total_s: f64, calls: &[(f64, f64)]) -> Vec<f32> {
        let n = (total_s * 16_000.0) as usize;
        let mut x = 12345u32;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let r = (x >> 16) as f32 / 32_768.0 - 1.0;
                let t = i as f64 / 16_000.0;
                let amp = if calls.iter().any(|&(a, b)| t >= a && t < b) {
                    0.3
                } else {
                    1e-4
                };
                r * amp
            })
            .collect()
    }

    #[test]
    fn a_call_is_announced_early_then_confirmed_and_ended_under_one_id() {
        let records = run(
            &audio(40.0, &[(15.0, 19.0)]),
            &mut Fake { edge_ghost: false },
        );
        let kinds: Vec<_> = records
            .iter()
            .map(|(_, r)| (r.phase, r.provisional))
            .collect();
        assert_eq!(
            kinds,
            [
                (CallPhase::Start, true),
                (CallPhase::Update, false),
                (CallPhase::End, false)
            ],
            "{records:#?}"
        );
        assert!(records.iter().all(|(_, r)| r.id == records[0].1.id));
        // Announced within half a hop (1.04 s, the extra look) plus the
        // onset confirmation (0.32 s) and a chunk (0.1 s), not a window
        // (10 s) later.
        let (t_start, start) = &records[0];
        assert!(*t_start - 15.0 < 1.5, "start after {t_start} s: {start:?}");
        let (t_final, confirm) = &records[1];
        assert!(*t_final - 15.0 > 9.0, "{t_final}");
        assert!((confirm.offset_s - 15.0).abs() < 0.5, "{confirm:?}");
        assert_eq!(records[2].1.end_reason, Some(EndReason::Quiet));
    }

    #[test]
    fn a_start_the_final_frames_do_not_confirm_is_retracted() {
        let records = run(&audio(30.0, &[]), &mut Fake { edge_ghost: true });
        assert!(!records.is_empty());
        let starts: Vec<_> = records
            .iter()
            .filter(|(_, r)| r.phase == CallPhase::Start)
            .map(|(_, r)| r)
            .collect();
        assert!(starts.iter().all(|r| r.provisional));
        for start in &starts {
            let ends: Vec<_> = records
                .iter()
                .filter(|(_, r)| r.id == start.id && r.phase == CallPhase::End)
                .collect();
            assert_eq!(ends.len(), 1, "{records:#?}");
            assert_eq!(ends[0].1.end_reason, Some(EndReason::Retracted));
            assert_eq!(ends[0].1.duration_s, Some(0.0));
        }
        assert!(records.iter().all(|(_, r)| r.phase != CallPhase::Update));
    }

    #[test]
    fn without_provisional_starts_the_final_records_pass_unchanged() {
        let m = manifest();
        let ctx = StreamContext::new(&m, "t", "file", "x");
        let mut early = EarlyStarts::new(&EndpointConfig::default(), 0.16, 208);
        let ev = CallEvent {
            phase: CallPhase::End,
            call: 3,
            track: None,
            label: 1,
            confidence: 0.8,
            scores: vec![0.2, 0.8, 0.0, 0.0, 0.0],
            start_frame: 10,
            end_frame: Some(20),
            end_reason: Some(EndReason::Quiet),
        };
        let mut out = Vec::new();
        early.finish(std::slice::from_ref(&ev), &ctx, &mut out);
        assert_eq!(out, [CallRecord::from_event(&ev, &ctx, 0)]);
    }
}
