//! Power spectra of sample blocks, reduced to the rows of an image.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// How image rows are spaced in frequency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreqScale {
    /// Evenly in Hz: the natural view of one band (a rumble's harmonics).
    Linear,
    /// Evenly in mel: low frequencies get room without hiding the high
    /// ones, so rumbles and trumpets show in one picture.
    Mel,
}

impl FreqScale {
    fn warp(self, hz: f64) -> f64 {
        match self {
            FreqScale::Linear => hz,
            FreqScale::Mel => 1127.0 * (1.0 + hz / 700.0).ln(),
        }
    }

    fn unwarp(self, v: f64) -> f64 {
        match self {
            FreqScale::Linear => v,
            FreqScale::Mel => 700.0 * ((v / 1127.0).exp() - 1.0),
        }
    }

    /// Frequency at `fraction` (0 = bottom, 1 = top) of a 0..`max_hz` axis.
    pub fn hz_at(self, fraction: f64, max_hz: f64) -> f64 {
        self.unwarp(fraction * self.warp(max_hz))
    }

    /// Where `hz` sits on a 0..`max_hz` axis, as a fraction from the bottom.
    pub fn fraction_of(self, hz: f64, max_hz: f64) -> f64 {
        self.warp(hz) / self.warp(max_hz)
    }
}

/// Hann-windowed power spectra of `n_fft`-sample blocks, each reduced to
/// `rows` values (the mean power of the FFT bins in the row's band, or the
/// nearest bin where a row is narrower than a bin), lowest frequency first.
pub struct Spectrum {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    input: Vec<f32>,
    output: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// FFT bin range `[lo, hi)` of each row.
    bands: Vec<(usize, usize)>,
}

impl Spectrum {
    /// Spectra of `n_fft` samples at `rate` Hz shown from 0 to `max_hz`
    /// (capped at Nyquist) in `rows` rows spaced by `scale`.
    pub fn new(n_fft: usize, rate: u32, max_hz: f64, rows: usize, scale: FreqScale) -> Self {
        let n_fft = n_fft.max(2);
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let window = (0..n_fft)
            .map(|i| {
                let phase = std::f64::consts::TAU * i as f64 / n_fft as f64;
                (0.5 - 0.5 * phase.cos()) as f32
            })
            .collect();
        let bin_hz = f64::from(rate) / n_fft as f64;
        let last_bin = n_fft / 2;
        let max_hz = max_hz.min(f64::from(rate) / 2.0);
        let bands = (0..rows)
            .map(|r| {
                let f0 = scale.hz_at(r as f64 / rows as f64, max_hz);
                let f1 = scale.hz_at((r + 1) as f64 / rows as f64, max_hz);
                let lo = ((f0 / bin_hz).ceil() as usize).min(last_bin);
                let hi = ((f1 / bin_hz).ceil() as usize).min(last_bin + 1);
                if hi > lo {
                    (lo, hi)
                } else {
                    let nearest = ((0.5 * (f0 + f1) / bin_hz).round() as usize).min(last_bin);
                    (nearest, nearest + 1)
                }
            })
            .collect();
        Self {
            input: fft.make_input_vec(),
            output: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            window,
            bands,
        }
    }

    /// Samples per block.
    pub fn n_fft(&self) -> usize {
        self.window.len()
    }

    /// Values per spectrum.
    pub fn rows(&self) -> usize {
        self.bands.len()
    }

    /// The spectrum of the block of `samples` that starts at index `start`
    /// (which may lie before 0 or run past the end: samples outside are
    /// zero), written into `out` (`rows()` values).
    pub fn power_rows(&mut self, samples: &[f32], start: i64, out: &mut [f32]) {
        for (i, x) in self.input.iter_mut().enumerate() {
            let at = start + i as i64;
            let s = usize::try_from(at)
                .ok()
                .and_then(|j| samples.get(j))
                .copied()
                .unwrap_or(0.0);
            *x = s * self.window[i];
        }
        // Lengths come from the plan itself, so the FFT cannot refuse them.
        if self
            .fft
            .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch)
            .is_err()
        {
            out.fill(0.0);
            return;
        }
        for (value, &(lo, hi)) in out.iter_mut().zip(&self.bands) {
            let sum: f32 = self.output[lo..hi].iter().map(Complex::norm_sqr).sum();
            *value = sum / (hi - lo) as f32;
        }
    }
}

/// Smallest power of two that is at least `n`, within `[min, max]`.
pub fn fft_size(n: f64, min: usize, max: usize) -> usize {
    let n = if n.is_finite() && n > 0.0 {
        n.ceil() as usize
    } else {
        min
    };
    n.next_power_of_two().clamp(min, max.max(min))
}

/// Power to image brightness: decibels relative to `top_db`, spread over
/// `range_db` below it, as 0..1.
pub fn brightness(power: f32, top_db: f32, range_db: f32) -> f32 {
    let db = 10.0 * (power.max(1e-20)).log10();
    1.0 - (top_db - db) / range_db
}

/// The loudest value of `powers`, in decibels: the top of the colour scale.
pub fn top_db(powers: &[f32]) -> f32 {
    let max = powers.iter().copied().fold(1e-20_f32, f32::max);
    10.0 * max.log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_lights_the_row_of_its_frequency() {
        let rate = 16_000;
        let hz = 250.0;
        let samples: Vec<f32> = (0..4096)
            .map(|i| (std::f64::consts::TAU * hz * f64::from(i) / f64::from(rate)).sin() as f32)
            .collect();
        for scale in [FreqScale::Linear, FreqScale::Mel] {
            let mut spec = Spectrum::new(4096, rate, 500.0, 100, scale);
            let mut rows = vec![0.0; spec.rows()];
            spec.power_rows(&samples, 0, &mut rows);
            let loudest = rows
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i)
                .expect("rows");
            let expected = (scale.fraction_of(hz, 500.0) * 100.0) as usize;
            assert!(
                loudest.abs_diff(expected) <= 1,
                "{scale:?}: {loudest} vs {expected}"
            );
        }
    }

    #[test]
    fn blocks_outside_the_samples_are_silent() {
        let mut spec = Spectrum::new(256, 8000, 4000.0, 10, FreqScale::Linear);
        let mut rows = vec![1.0; 10];
        spec.power_rows(&[1.0; 100], 500, &mut rows);
        assert!(rows.iter().all(|&r| r == 0.0));
        spec.power_rows(&[1.0; 100], -300, &mut rows);
        assert!(rows.iter().all(|&r| r == 0.0));
    }

    #[test]
    fn fft_sizes_are_clamped_powers_of_two() {
        assert_eq!(fft_size(3000.0, 256, 8192), 4096);
        assert_eq!(fft_size(10.0, 256, 8192), 256);
        assert_eq!(fft_size(1e9, 256, 8192), 8192);
        assert_eq!(fft_size(f64::NAN, 256, 8192), 256);
    }

    #[test]
    fn brightness_spans_the_range_below_the_top() {
        assert_eq!(brightness(1.0, 0.0, 60.0), 1.0);
        assert!((brightness(1e-3, 0.0, 60.0) - 0.5).abs() < 1e-6);
        assert_eq!(top_db(&[0.01, 100.0]), 20.0);
    }
}
