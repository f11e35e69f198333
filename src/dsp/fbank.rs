//! Streaming Kaldi-compatible log-mel filterbank.
//!
//! The model was trained on `torchaudio.compliance.kaldi.fbank`, so this is a
//! float32 port of exactly that computation (see the feature contract in
//! ARCHITECTURE.md). Streaming and offline use share one code path, so a live
//! stream produces the same frames, bit for bit, as a file processed at once.

use std::f64::consts::PI;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use thiserror::Error;

/// Kaldi's log floor: `f32::EPSILON`, the value torchaudio clamps energies to.
const LOG_FLOOR: f32 = f32::EPSILON;

/// Exponent that turns a Hann window into Kaldi's "povey" window.
const POVEY_EXPONENT: f64 = 0.85;

/// Why a filterbank configuration was refused.
#[derive(Debug, Error, PartialEq)]
pub enum FbankError {
    /// A parameter is out of range; `field` names it as in [`FbankConfig`].
    #[error("invalid fbank setting `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field of [`FbankConfig`].
        field: &'static str,
        /// What is wrong and what would be accepted.
        reason: String,
    },
}

/// Parameters of the Kaldi filterbank, named after the feature contract so a
/// model manifest can be checked against them field by field.
#[derive(Debug, Clone, PartialEq)]
pub struct FbankConfig {
    /// Input sample rate in Hz.
    pub sample_rate: u32,
    /// Number of triangular mel filters (output values per frame).
    pub num_mel_bins: usize,
    /// Frame length in samples (25 ms at 16 kHz = 400).
    pub frame_length: usize,
    /// Hop between frame starts in samples (10 ms at 16 kHz = 160).
    pub frame_shift: usize,
    /// Lower edge of the first mel filter in Hz.
    pub low_freq: f32,
    /// Upper edge of the last mel filter in Hz; `<= 0` is an offset from
    /// Nyquist, as in Kaldi (0 means Nyquist).
    pub high_freq: f32,
    /// Pre-emphasis coefficient.
    pub preemphasis: f32,
    /// Factor applied to samples in [-1, 1] first; Kaldi expects 16-bit range.
    pub scale: f32,
}

impl Default for FbankConfig {
    /// The feature contract: torchaudio Kaldi fbank, 128 bins, 16 kHz, 25/10 ms.
    fn default() -> Self {
        Self {
            sample_rate: 16_000,
            num_mel_bins: 128,
            frame_length: 400,
            frame_shift: 160,
            low_freq: 20.0,
            high_freq: 0.0,
            preemphasis: 0.97,
            scale: 32_768.0,
        }
    }
}

/// Sparse triangular filters: filter `m` covers spectrum bins
/// `start[m] .. start[m] + (offsets[m + 1] - offsets[m])`.
#[derive(Debug, Clone)]
struct MelBank {
    start: Vec<usize>,
    offsets: Vec<usize>,
    weights: Vec<f32>,
}

impl MelBank {
    /// Kaldi's construction as torchaudio's `get_mel_banks` does it, in
    /// float32 like torchaudio so the filter edges round the same way.
    fn new(num_bins: usize, fft_size: usize, sample_rate: f32, low: f32, high: f32) -> Self {
        let mel_scalar = |f: f64| 1127.0 * (1.0 + f / 700.0).ln();
        let mel_low = mel_scalar(f64::from(low));
        let mel_delta = (mel_scalar(f64::from(high)) - mel_low) / (num_bins as f64 + 1.0);
        let (mel_low, mel_delta) = (mel_low as f32, mel_delta as f32);
        let bin_width = sample_rate / fft_size as f32;
        // The Nyquist bin always has weight 0 in Kaldi, so it is left out.
        let fft_mels: Vec<f32> = (0..fft_size / 2)
            .map(|k| 1127.0 * (1.0 + bin_width * k as f32 / 700.0).ln())
            .collect();

        let mut bank = Self {
            start: Vec::with_capacity(num_bins),
            offsets: vec![0],
            weights: Vec::new(),
        };
        for m in 0..num_bins {
            let left = mel_low + m as f32 * mel_delta;
            let center = mel_low + (m as f32 + 1.0) * mel_delta;
            let right = mel_low + (m as f32 + 2.0) * mel_delta;
            let weight = |mel: f32| {
                let up = (mel - left) / (center - left);
                let down = (right - mel) / (right - center);
                up.min(down).max(0.0)
            };
            let first = fft_mels.iter().position(|&mel| weight(mel) > 0.0);
            // An empty filter keeps its neighbour's start so starts stay sorted.
            let start = first.unwrap_or_else(|| bank.start.last().copied().unwrap_or(0));
            if first.is_some() {
                let len = fft_mels[start..]
                    .iter()
                    .position(|&mel| weight(mel) <= 0.0)
                    .unwrap_or(fft_mels.len() - start);
                bank.weights
                    .extend(fft_mels[start..start + len].iter().map(|&mel| weight(mel)));
            }
            bank.start.push(start);
            bank.offsets.push(bank.weights.len());
        }
        bank
    }
}

/// Kaldi fbank over an unbounded stream: samples go in as they arrive, each
/// frame comes out once, as soon as its last sample is in.
pub struct StreamingFbank {
    frame_length: usize,
    frame_shift: usize,
    preemphasis: f32,
    scale: f32,
    window: Vec<f32>,
    mel: MelBank,
    fft: Arc<dyn RealToComplex<f32>>,
    /// Samples from the start of the next frame on; never longer than a frame.
    pending: Vec<f32>,
    /// Input samples to drop before the next frame starts (only non-zero when
    /// the shift is longer than the frame).
    to_skip: usize,
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    power: Vec<f32>,
    scratch: Vec<Complex<f32>>,
    frames_emitted: u64,
}

impl StreamingFbank {
    /// Validates `cfg` and precomputes window, mel filters and FFT plan, so
    /// that [`push`](Self::push) does no allocation of its own.
    pub fn new(cfg: &FbankConfig) -> Result<Self, FbankError> {
        let invalid = |field, reason: String| Err(FbankError::InvalidConfig { field, reason });
        if cfg.sample_rate == 0 {
            return invalid("sample_rate", "must be > 0".into());
        }
        if cfg.frame_length < 2 {
            return invalid(
                "frame_length",
                format!("must be at least 2 samples, got {}", cfg.frame_length),
            );
        }
        if cfg.frame_shift == 0 {
            return invalid("frame_shift", "must be at least 1 sample".into());
        }
        if cfg.num_mel_bins <= 3 {
            return invalid(
                "num_mel_bins",
                format!("Kaldi needs more than 3 mel bins, got {}", cfg.num_mel_bins),
            );
        }
        if !(0.0..=1.0).contains(&cfg.preemphasis) {
            return invalid(
                "preemphasis",
                format!("must be in [0, 1], got {}", cfg.preemphasis),
            );
        }
        if !cfg.scale.is_finite() || cfg.scale <= 0.0 {
            return invalid(
                "scale",
                format!("must be finite and > 0, got {}", cfg.scale),
            );
        }
        // Kaldi's round_to_power_of_two: the padded FFT is never shorter than
        // the frame, so no samples are lost.
        let fft_size = cfg.frame_length.next_power_of_two();
        let nyquist = cfg.sample_rate as f32 / 2.0;
        let high = if cfg.high_freq <= 0.0 {
            cfg.high_freq + nyquist
        } else {
            cfg.high_freq
        };
        if !(0.0..nyquist).contains(&cfg.low_freq) {
            return invalid(
                "low_freq",
                format!("must be in [0, {nyquist}) Hz, got {}", cfg.low_freq),
            );
        }
        if !(high > cfg.low_freq && high <= nyquist) {
            return invalid(
                "high_freq",
                format!(
                    "resolves to {high} Hz, which must be above low_freq ({}) and at most Nyquist ({nyquist})",
                    cfg.low_freq
                ),
            );
        }

        let denom = (cfg.frame_length - 1) as f64;
        let window = (0..cfg.frame_length)
            .map(|n| {
                let hann = 0.5 - 0.5 * (2.0 * PI * n as f64 / denom).cos();
                hann.powf(POVEY_EXPONENT) as f32
            })
            .collect();
        let mel = MelBank::new(
            cfg.num_mel_bins,
            fft_size,
            cfg.sample_rate as f32,
            cfg.low_freq,
            high,
        );
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(fft_size);
        Ok(Self {
            frame_length: cfg.frame_length,
            frame_shift: cfg.frame_shift,
            preemphasis: cfg.preemphasis,
            scale: cfg.scale,
            window,
            mel,
            pending: Vec::with_capacity(cfg.frame_length),
            to_skip: 0,
            frame: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            power: vec![0.0; fft_size / 2],
            scratch: fft.make_scratch_vec(),
            fft,
            frames_emitted: 0,
        })
    }

    /// Values per frame, i.e. the stride of the rows [`push`](Self::push) appends.
    pub fn num_bins(&self) -> usize {
        self.mel.start.len()
    }

    /// Appends each frame completed by `samples` to `out`, row-major,
    /// [`num_bins`](Self::num_bins) values per frame; returns the number of
    /// frames appended. The result does not depend on how the stream is split
    /// into calls.
    pub fn push(&mut self, mut samples: &[f32], out: &mut Vec<f32>) -> usize {
        let mut appended = 0;
        loop {
            let skip = self.to_skip.min(samples.len());
            self.to_skip -= skip;
            samples = &samples[skip..];
            let take = (self.frame_length - self.pending.len()).min(samples.len());
            self.pending.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.pending.len() < self.frame_length {
                return appended;
            }
            self.compute_frame(out);
            appended += 1;
            let keep_from = self.frame_shift.min(self.frame_length);
            self.pending.drain(..keep_from);
            self.to_skip = self.frame_shift - keep_from;
        }
    }

    /// Frames produced since creation or the last [`reset`](Self::reset); frame
    /// `i` starts at input sample `i * frame_shift`, which is how callers map
    /// frames back to time.
    pub fn frames_emitted(&self) -> u64 {
        self.frames_emitted
    }

    /// Forgets buffered samples so a new, unrelated stream can start (e.g.
    /// after a device restart) without frames straddling the gap.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.to_skip = 0;
        self.frames_emitted = 0;
    }

    /// One frame from `pending`: the arithmetic follows torchaudio's order of
    /// operations so the float32 rounding lands close to the reference.
    fn compute_frame(&mut self, out: &mut Vec<f32>) {
        let n = self.frame_length;
        let frame = &mut self.frame[..n];
        for (dst, &src) in frame.iter_mut().zip(&self.pending) {
            *dst = src * self.scale;
        }
        // f64 accumulation keeps the mean correctly rounded, like torch's
        // pairwise reduction, whatever the frame length.
        let mean = (frame.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64) as f32;
        frame.iter_mut().for_each(|x| *x -= mean);
        // Backwards, so each sample is pre-emphasised against the original
        // value of its predecessor; the first against itself, as Kaldi does.
        for j in (1..n).rev() {
            frame[j] -= self.preemphasis * frame[j - 1];
        }
        frame[0] -= self.preemphasis * frame[0];
        for (x, &w) in frame.iter_mut().zip(&self.window) {
            *x *= w;
        }
        self.frame[n..].fill(0.0);

        // The buffers come from the plan itself, so a length mismatch is a bug
        // here, not something input can cause.
        self.fft
            .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch)
            .expect("FFT buffers are sized by their own plan");
        for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
            *p = c.norm_sqr();
        }

        let mel = &self.mel;
        out.extend(mel.start.iter().enumerate().map(|(m, &start)| {
            let weights = &mel.weights[mel.offsets[m]..mel.offsets[m + 1]];
            let energy: f32 = weights
                .iter()
                .zip(&self.power[start..])
                .map(|(w, p)| w * p)
                .sum();
            energy.max(LOG_FLOOR).ln()
        }));
        self.frames_emitted += 1;
    }
}

/// Whole-signal computation, for tests and offline tools: the same frames a
/// [`StreamingFbank`] would stream, `num_mel_bins` values per frame, row-major.
pub fn fbank(samples: &[f32], cfg: &FbankConfig) -> Result<Vec<f32>, FbankError> {
    let mut fb = StreamingFbank::new(cfg)?;
    let frames = if samples.len() >= cfg.frame_length {
        1 + (samples.len() - cfg.frame_length) / cfg.frame_shift
    } else {
        0
    };
    let mut out = Vec::with_capacity(frames * fb.num_bins());
    fb.push(samples, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        // xorshift: deterministic without pulling in a RNG crate.
        let mut s = seed.max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn frame_count_follows_snip_edges() {
        let cfg = FbankConfig::default();
        for (n, frames) in [(0, 0), (399, 0), (400, 1), (559, 1), (560, 2), (16_000, 98)] {
            let out = fbank(&vec![0.0; n], &cfg).unwrap();
            assert_eq!(out.len(), frames * 128, "n = {n}");
        }
    }

    #[test]
    fn silence_is_log_floor() {
        let out = fbank(&[0.0; 800], &FbankConfig::default()).unwrap();
        assert!(out.iter().all(|&v| v == LOG_FLOOR.ln()));
    }

    #[test]
    fn mel_bank_matches_kaldi_shape() {
        let bank = MelBank::new(128, 512, 16_000.0, 20.0, 8_000.0);
        assert_eq!(bank.start.len(), 128);
        // At 31.25 Hz per FFT bin the lowest filters are narrower than a
        // bin; filter 3 catches none, in torchaudio too (its output is then
        // the log floor). All others cover at least one bin.
        let empty: Vec<usize> = (0..128)
            .filter(|&m| bank.offsets[m + 1] == bank.offsets[m])
            .collect();
        assert_eq!(empty, [3]);
        assert!(bank.start.windows(2).all(|w| w[0] <= w[1]));
        assert!(bank.weights.iter().all(|&w| w > 0.0 && w <= 1.0));
        let last = bank.start[127] + bank.offsets[128] - bank.offsets[127];
        assert!(last <= 256, "Nyquist bin must not be used");
    }

    #[test]
    fn rejects_bad_configs() {
        let bad = [
            FbankConfig {
                sample_rate: 0,
                ..Default::default()
            },
            FbankConfig {
                frame_length: 1,
                ..Default::default()
            },
            FbankConfig {
                frame_shift: 0,
                ..Default::default()
            },
            FbankConfig {
                num_mel_bins: 3,
                ..Default::default()
            },
            FbankConfig {
                low_freq: 9_000.0,
                ..Default::default()
            },
            FbankConfig {
                high_freq: 9_000.0,
                ..Default::default()
            },
            FbankConfig {
                high_freq: -8_000.0,
                ..Default::default()
            },
            FbankConfig {
                scale: f32::NAN,
                ..Default::default()
            },
            FbankConfig {
                preemphasis: 1.5,
                ..Default::default()
            },
        ];
        for cfg in bad {
            assert!(StreamingFbank::new(&cfg).is_err(), "{cfg:?} accepted");
        }
    }

    #[test]
    fn shift_longer_than_frame_skips_samples() {
        let cfg = FbankConfig {
            frame_length: 256,
            frame_shift: 300,
            ..Default::default()
        };
        let x = noise(2_000, 3);
        let whole = fbank(&x, &cfg).unwrap();
        assert_eq!(whole.len() / 128, 1 + (2_000 - 256) / 300);
        let third = fbank(&x[600..856], &cfg).unwrap();
        assert_eq!(&whole[2 * 128..3 * 128], &third[..]);
    }

    #[test]
    fn reset_starts_a_fresh_stream() {
        let cfg = FbankConfig::default();
        let mut fb = StreamingFbank::new(&cfg).unwrap();
        let mut out = Vec::new();
        fb.push(&noise(1_000, 5), &mut out);
        fb.reset();
        assert_eq!(fb.frames_emitted(), 0);
        out.clear();
        let x = noise(900, 9);
        fb.push(&x, &mut out);
        assert_eq!(out, fbank(&x, &cfg).unwrap());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn chunking_does_not_change_output(
            seed in 1u64..u64::MAX,
            len in 0usize..3_000,
            cuts in proptest::collection::vec(0usize..700, 0..40),
        ) {
            let cfg = FbankConfig::default();
            let x = noise(len, seed);
            let whole = fbank(&x, &cfg).unwrap();

            let mut fb = StreamingFbank::new(&cfg).unwrap();
            let mut out = Vec::new();
            let mut rest = &x[..];
            let mut total = 0;
            for cut in cuts {
                let (head, tail) = rest.split_at(cut.min(rest.len()));
                total += fb.push(head, &mut out);
                rest = tail;
            }
            total += fb.push(rest, &mut out);
            prop_assert_eq!(total * 128, out.len());
            prop_assert_eq!(fb.frames_emitted(), total as u64);
            // Bit-identical, not approximately equal.
            prop_assert!(whole.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()));
            prop_assert_eq!(whole.len(), out.len());
        }
    }

    #[test]
    fn one_sample_at_a_time_is_bit_identical() {
        let cfg = FbankConfig::default();
        let x = noise(4_321, 11);
        let whole = fbank(&x, &cfg).unwrap();
        let mut fb = StreamingFbank::new(&cfg).unwrap();
        let mut out = Vec::new();
        for s in &x {
            fb.push(std::slice::from_ref(s), &mut out);
        }
        assert!(
            whole
                .iter()
                .zip(&out)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        assert_eq!(whole.len(), out.len());
    }
}
