//! Sliding windows over the fbank stream, and stitching their outputs.
//!
//! Window `k` covers fbank frames `[s_k, s_k + window_frames)` with
//! `s_k = k * hop * frames_per_output`, so every window's output grid lines up
//! with the global one (output frame `g` = fbank frames `[16 g, 16 g + 16)`).
//! Each output frame's probability is the (optionally centre-weighted) mean
//! over the windows that covered it.
//!
//! At the end of the stream, the next scheduled window runs on whatever is
//! left (it is shorter than `window_frames`), if any output frame is still
//! uncovered. No window ever starts before the next scheduled start, so an
//! output frame is final as soon as the window after it has been scheduled:
//! frames before `s_{k+1} / 16` are emitted right after window `k` runs.
//!
//! The result depends only on the sequence of fbank frames, never on how
//! they were chunked: streaming equals offline.

use crate::model::{ModelError, WindowModel};

/// Window geometry and normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowerConfig {
    /// Fbank frames per window (998 = 10 s).
    pub window_frames: usize,
    /// Advance between windows, in output frames (13 = 2.08 s).
    pub hop_outputs: usize,
    /// Fbank frames per output frame (16).
    pub frames_per_output: usize,
    /// Mel bins per fbank frame (128).
    pub num_bins: usize,
    /// Normalisation `(x - mean) / (2 std)`, from the manifest.
    pub mean: f32,
    /// Normalisation `(x - mean) / (2 std)`, from the manifest.
    pub std: f32,
    /// Weight window outputs by a raised cosine over the window, so frames
    /// the model saw with context on both sides count more.
    pub centre_weighted: bool,
}

impl WindowerConfig {
    /// Output frames in one full window.
    pub fn window_outputs(&self) -> usize {
        self.window_frames / self.frames_per_output
    }

    /// Checks that windows overlap or touch, so every frame is covered.
    pub fn validate(&self) -> Result<(), String> {
        if self.frames_per_output == 0 || self.window_outputs() == 0 {
            return Err("window shorter than one output frame".into());
        }
        if self.hop_outputs == 0 || self.hop_outputs > self.window_outputs() {
            return Err(format!(
                "hop of {} output frames must be between 1 and the window's {} output frames",
                self.hop_outputs,
                self.window_outputs()
            ));
        }
        Ok(())
    }
}

/// Streaming window scheduler and stitcher. Memory is bounded by one window.
pub struct Windower {
    cfg: WindowerConfig,
    /// Normalised frames from global fbank frame `buf_start` on.
    buf: Vec<f32>,
    buf_start: u64,
    /// Fbank frames received so far.
    frames_in: u64,
    /// Start (fbank frame) of the next window to run.
    next_start: u64,
    /// Per output frame from `emitted` on: class probability sums, then weights.
    sums: Vec<f32>,
    weights: Vec<f32>,
    /// Output frames emitted (final).
    emitted: u64,
    /// Output frames covered by at least one window so far.
    covered: u64,
    scratch: Vec<f32>,
    preview_scratch: Vec<f32>,
    classes: usize,
    windows_run: u64,
}

impl Windower {
    /// Creates a windower for a model with `classes` outputs per frame.
    pub fn new(cfg: WindowerConfig, classes: usize) -> Result<Self, String> {
        cfg.validate()?;
        Ok(Windower {
            buf: Vec::with_capacity((cfg.window_frames + cfg.frames_per_output) * cfg.num_bins),
            cfg,
            buf_start: 0,
            frames_in: 0,
            next_start: 0,
            sums: Vec::new(),
            weights: Vec::new(),
            emitted: 0,
            covered: 0,
            scratch: Vec::new(),
            preview_scratch: Vec::new(),
            classes,
            windows_run: 0,
        })
    }

    /// The geometry in use.
    pub fn config(&self) -> &WindowerConfig {
        &self.cfg
    }

    /// Output frames emitted so far.
    pub fn frames_out(&self) -> u64 {
        self.emitted
    }

    /// Inference windows run so far.
    pub fn windows_run(&self) -> u64 {
        self.windows_run
    }

    /// Feeds raw (un-normalised) fbank frames, row-major; runs every window
    /// they complete and appends the probabilities of output frames that
    /// became final to `out` (`classes` values per frame).
    pub fn push<M: WindowModel + ?Sized>(
        &mut self,
        fbank: &[f32],
        model: &mut M,
        out: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        let scale = 1.0 / (2.0 * self.cfg.std);
        let mean = self.cfg.mean;
        self.buf.extend(fbank.iter().map(|&x| (x - mean) * scale));
        self.frames_in += (fbank.len() / self.cfg.num_bins) as u64;
        let window = self.cfg.window_frames as u64;
        while self.next_start + window <= self.frames_in {
            self.run_window(self.cfg.window_frames, model)?;
            self.advance(out);
        }
        Ok(())
    }

    /// End of stream: runs the shortened last window if frames are still
    /// uncovered, and emits every remaining whole output frame.
    pub fn finish<M: WindowModel + ?Sized>(
        &mut self,
        model: &mut M,
        out: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        let per = self.cfg.frames_per_output as u64;
        let total_outputs = self.frames_in / per;
        if total_outputs > self.covered {
            let frames = (self.frames_in - self.next_start) as usize;
            self.run_window(frames, model)?;
        }
        self.emit_until(total_outputs, out);
        Ok(())
    }

    /// Runs the window starting at `next_start` over `frames` fbank frames
    /// and adds its outputs into the stitching accumulators.
    fn run_window<M: WindowModel + ?Sized>(
        &mut self,
        frames: usize,
        model: &mut M,
    ) -> Result<(), ModelError> {
        let bins = self.cfg.num_bins;
        let offset = (self.next_start - self.buf_start) as usize * bins;
        let window = &self.buf[offset..offset + frames * bins];
        self.scratch.clear();
        model.infer(window, frames, &mut self.scratch)?;
        self.windows_run += 1;
        let outputs = self.scratch.len() / self.classes;
        let first = self.next_start / self.cfg.frames_per_output as u64;
        let end = first + outputs as u64;
        let needed = (end - self.emitted) as usize;
        if self.weights.len() < needed {
            self.weights.resize(needed, 0.0);
            self.sums.resize(needed * self.classes, 0.0);
        }
        for j in 0..outputs {
            let w = self.weight(j, outputs);
            let slot = (first - self.emitted) as usize + j;
            self.weights[slot] += w;
            let probs = &self.scratch[j * self.classes..(j + 1) * self.classes];
            let sums = &mut self.sums[slot * self.classes..(slot + 1) * self.classes];
            for (s, p) in sums.iter_mut().zip(probs) {
                *s += w * p;
            }
        }
        self.covered = self.covered.max(end);
        Ok(())
    }

    fn weight(&self, j: usize, outputs: usize) -> f32 {
        if !self.cfg.centre_weighted {
            return 1.0;
        }
        // A raised cosine that never reaches zero, so the stream's first and
        // last frames (seen by one window only, at its edge) still count.
        let x = (j as f32 + 0.5) / outputs as f32;
        0.1 + 0.9 * (0.5 - 0.5 * (2.0 * std::f32::consts::PI * x).cos())
    }

    /// Schedules the next window and emits the frames it made final.
    fn advance(&mut self, out: &mut Vec<f32>) {
        let per = self.cfg.frames_per_output as u64;
        self.next_start += self.cfg.hop_outputs as u64 * per;
        self.emit_until(self.next_start / per, out);
        // One hop of frames before the next window is kept, so that a
        // preview window can always end at the newest frame.
        let keep_from = self
            .next_start
            .saturating_sub(self.cfg.hop_outputs as u64 * per)
            .max(self.buf_start);
        let drop = (keep_from - self.buf_start) as usize * self.cfg.num_bins;
        self.buf.drain(..drop);
        self.buf_start = keep_from;
    }

    /// Appends the current estimate of each frame that is not final yet
    /// but has been heard, following the last final frame: the mean over
    /// the windows run so far that covered it and, with `model`, over one
    /// extra window ending at the newest frame (run for this estimate only,
    /// never stored, so final frames do not depend on it). Returns how many
    /// frames were appended.
    pub fn provisional<M: WindowModel + ?Sized>(
        &mut self,
        model: Option<&mut M>,
        out: &mut Vec<f32>,
    ) -> Result<usize, ModelError> {
        let per = self.cfg.frames_per_output as u64;
        let bins = self.cfg.num_bins;
        // The extra window: the newest whole output frames, at most a
        // window's worth, on the global output grid.
        let start = self
            .frames_in
            .saturating_sub(self.cfg.window_frames as u64)
            .max(self.buf_start)
            .div_ceil(per)
            * per;
        let frames = self.frames_in.saturating_sub(start) as usize;
        let mut extra = (start / per, 0);
        self.preview_scratch.clear();
        if let Some(model) = model
            && frames >= per as usize
        {
            let offset = (start - self.buf_start) as usize * bins;
            model.infer(
                &self.buf[offset..offset + frames * bins],
                frames,
                &mut self.preview_scratch,
            )?;
            extra.1 = self.preview_scratch.len() / self.classes;
        }
        let (first, outputs) = extra;
        let until = self.covered.max(first + outputs as u64);
        for g in self.emitted..until {
            let slot = (g - self.emitted) as usize;
            let scheduled = g < self.covered && slot < self.weights.len();
            let mut weight = if scheduled { self.weights[slot] } else { 0.0 };
            let extra_j = (g >= first && g < first + outputs as u64).then(|| (g - first) as usize);
            let extra_w = extra_j.map_or(0.0, |j| self.weight(j, outputs));
            weight += extra_w;
            if weight <= 0.0 {
                break;
            }
            for c in 0..self.classes {
                let mut sum = if scheduled {
                    self.sums[slot * self.classes + c]
                } else {
                    0.0
                };
                if let Some(j) = extra_j {
                    sum += extra_w * self.preview_scratch[j * self.classes + c];
                }
                out.push(sum / weight);
            }
        }
        Ok(until.saturating_sub(self.emitted) as usize)
    }

    /// Fbank frames received so far.
    pub fn frames_in(&self) -> u64 {
        self.frames_in
    }

    fn emit_until(&mut self, until: u64, out: &mut Vec<f32>) {
        let count = until.saturating_sub(self.emitted) as usize;
        let count = count.min(self.weights.len());
        for slot in 0..count {
            let w = self.weights[slot];
            let sums = &self.sums[slot * self.classes..(slot + 1) * self.classes];
            out.extend(sums.iter().map(|s| s / w));
        }
        self.weights.drain(..count);
        self.sums.drain(..count * self.classes);
        self.emitted += count as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake model whose output for an output frame is the mean of its
    /// input frames' first bin plus where it sits in the window, so wrong
    /// alignment or averaging shows up in the numbers.
    struct Probe {
        per: usize,
        bins: usize,
    }

    impl WindowModel for Probe {
        fn num_classes(&self) -> usize {
            2
        }
        fn frames_per_output(&self) -> usize {
            self.per
        }
        fn infer(
            &mut self,
            w: &[f32],
            frames: usize,
            out: &mut Vec<f32>,
        ) -> Result<(), ModelError> {
            for g in 0..frames / self.per {
                let first_bin: f32 = (0..self.per)
                    .map(|i| w[(g * self.per + i) * self.bins])
                    .sum();
                out.push(first_bin / self.per as f32);
                out.push(g as f32);
            }
            Ok(())
        }
    }

    fn config(window_frames: usize, hop_outputs: usize) -> WindowerConfig {
        WindowerConfig {
            window_frames,
            hop_outputs,
            frames_per_output: 4,
            num_bins: 2,
            mean: 0.0,
            std: 0.5,
            centre_weighted: false,
        }
    }

    fn ramp(frames: usize) -> Vec<f32> {
        (0..frames).flat_map(|i| [i as f32, 0.0]).collect()
    }

    fn run(cfg: WindowerConfig, fbank: &[f32], chunk_frames: usize) -> Vec<f32> {
        let mut model = Probe {
            per: cfg.frames_per_output,
            bins: cfg.num_bins,
        };
        let bins = cfg.num_bins;
        let mut w = Windower::new(cfg, 2).expect("valid config");
        let mut out = Vec::new();
        for chunk in fbank.chunks(chunk_frames * bins) {
            w.push(chunk, &mut model, &mut out).expect("fake model");
        }
        w.finish(&mut model, &mut out).expect("fake model");
        out
    }

    #[test]
    fn every_whole_output_frame_is_emitted_once_with_its_own_input() {
        let frames = 103; // 25 whole output frames and a partial one
        let out = run(config(22, 2), &ramp(frames), 7);
        assert_eq!(out.len(), 25 * 2);
        for g in 0..25 {
            // Mean of frames 4g..4g+4 of the ramp, whatever window saw it.
            assert_eq!(out[g * 2], 4.0 * g as f32 + 1.5, "frame {g}");
        }
    }

    #[test]
    fn overlapping_windows_are_averaged() {
        // Window of 5 outputs, hop 2: frame 4 is seen at positions 4, 2, 0
        // of windows 0, 1, 2 -> mean position 2.
        let out = run(config(20, 2), &ramp(60), 60);
        assert_eq!(out[4 * 2 + 1], 2.0);
        // Frame 0 is only in window 0, at position 0.
        assert_eq!(out[1], 0.0);
    }

    #[test]
    fn chunking_does_not_change_the_output() {
        let fbank = ramp(517);
        let whole = run(config(40, 3), &fbank, 517);
        for chunk in [1, 3, 16, 100] {
            assert_eq!(run(config(40, 3), &fbank, chunk), whole, "chunk {chunk}");
        }
    }

    #[test]
    fn a_stream_shorter_than_one_window_still_gets_probabilities() {
        let out = run(config(40, 3), &ramp(13), 5);
        assert_eq!(out.len(), 3 * 2);
        assert_eq!(out[4], 9.5);
    }

    #[test]
    fn hop_longer_than_the_window_is_refused() {
        assert!(Windower::new(config(20, 6), 2).is_err());
        assert!(Windower::new(config(20, 0), 2).is_err());
    }
}
