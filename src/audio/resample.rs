//! Streaming sample-rate conversion to the model rate.
//!
//! Recorders run anywhere from 2 kHz (low-power rumble loggers) to 48 kHz and
//! beyond; the model wants 16 kHz. The conversion computes exactly what
//! `scipy.signal.resample_poly(x, up, down)` computes (default Kaiser
//! window, beta 5), because that is how the training pipeline
//! (`models/common.py`) brings every recording to 16 kHz. Any other
//! resampler would hand the model different features wherever the signal is
//! empty: from a 2 kHz recorder, 84 of the 128 mel bins hold nothing but the
//! filter's stop-band leakage, whose log the model has learned. Measured on
//! the synthetic test, an FFT resampler changed the default model's
//! probabilities by up to 0.8 at 2-8 kHz recorders.
//!
//! It is a polyphase FIR filter: output sample `m` is
//! `sum_j x[j] h[half_len + j up - m down]`, with `x` zero before the
//! stream and after its end, so output `m` lies at input time `m / to_hz`
//! and timestamps need no correction.

use super::AudioError;

/// Kaiser window shape of scipy's `resample_poly` default.
const KAISER_BETA: f64 = 5.0;

/// Longest filter accepted (taps), about 32 MB: the filter has
/// `20 max(up, down) + 1` taps, so only rates that share almost no factor
/// with the model rate come near it (44.1 kHz needs 8821, 37.123 kHz 742461).
const MAX_TAPS: u64 = 1 << 22;

/// Converts an unbounded mono stream from one fixed rate to another.
///
/// The output does not depend on how the input is split into calls, and
/// memory stays bounded: only the input the next output still needs is kept.
pub struct StreamResampler {
    engine: Option<Engine>,
}

/// The filter and its state; absent when the rates are equal and samples
/// pass through.
struct Engine {
    up: i64,
    down: i64,
    half_len: i64,
    /// Polyphase filter: phase `p < up` holds `h[p], h[p + up], ...`; the
    /// phases lie back to back and `phase_start[p]..phase_start[p + 1]` is
    /// phase `p`.
    taps: Vec<f64>,
    phase_start: Vec<usize>,
    /// Input samples from index `first` on. Indices count from the stream
    /// start and are shifted back together with `next_out` (see `rebase`), so
    /// they never grow with the stream's length.
    history: Vec<f32>,
    first: i64,
    /// Index of the next input sample.
    n_in: i64,
    /// Index of the next output sample.
    next_out: i64,
}

impl Engine {
    fn new(from_hz: u32, to_hz: u32) -> Result<Self, String> {
        let g = gcd(from_hz, to_hz);
        let (up, down) = (u64::from(to_hz / g), u64::from(from_hz / g));
        let half_len = 10 * up.max(down);
        if 2 * half_len + 1 > MAX_TAPS {
            return Err(format!(
                "the ratio {up}/{down} needs a filter of {} taps (at most {MAX_TAPS}); \
                 use a recorder rate that shares more factors with {to_hz} Hz",
                2 * half_len + 1
            ));
        }
        let h = lowpass(half_len, up.max(down), up as f64);
        let mut taps = Vec::with_capacity(h.len());
        let mut phase_start = Vec::with_capacity(up as usize + 1);
        for p in 0..up as usize {
            phase_start.push(taps.len());
            taps.extend(h.iter().skip(p).step_by(up as usize));
        }
        phase_start.push(taps.len());
        let mut engine = Self {
            up: up as i64,
            down: down as i64,
            half_len: half_len as i64,
            taps,
            phase_start,
            history: Vec::new(),
            first: 0,
            n_in: 0,
            next_out: 0,
        };
        engine.reset();
        Ok(engine)
    }

    /// A new stream: silence before its first sample, as scipy pads.
    fn reset(&mut self) {
        let lead = self.half_len / self.up + 1;
        self.history.clear();
        self.history.resize(lead as usize, 0.0);
        self.first = -lead;
        self.n_in = 0;
        self.next_out = 0;
    }

    fn push(&mut self, input: &[f32]) {
        self.history.extend_from_slice(input);
        self.n_in += input.len() as i64;
    }

    /// Appends every output whose inputs are all in the history, at most
    /// `limit` of them; returns how many.
    fn emit(&mut self, out: &mut Vec<f32>, limit: u64) -> u64 {
        let mut emitted = 0;
        while emitted < limit {
            let available = self.first + self.history.len() as i64;
            let j_lo = self.first_input();
            let phase = (j_lo * self.up - (self.next_out * self.down - self.half_len)) as usize;
            let taps = &self.taps[self.phase_start[phase]..self.phase_start[phase + 1]];
            if j_lo + taps.len() as i64 > available {
                break;
            }
            let start = (j_lo - self.first) as usize;
            let x = &self.history[start..start + taps.len()];
            let y: f64 = x.iter().zip(taps).map(|(&x, &h)| f64::from(x) * h).sum();
            out.push(y as f32);
            self.next_out += 1;
            emitted += 1;
            self.rebase();
        }
        self.forget_used();
        emitted
    }

    /// Every `up` outputs the pattern of phases repeats `down` inputs
    /// later: shift all indices back by one period.
    fn rebase(&mut self) {
        if self.next_out >= self.up {
            self.next_out -= self.up;
            self.first -= self.down;
            self.n_in -= self.down;
        }
    }

    /// The lowest input the next output needs: output `m` reads the inputs
    /// `j` with `|j up - m down| <= half_len`.
    fn first_input(&self) -> i64 {
        let lo = self.next_out * self.down - self.half_len;
        -(-lo).div_euclid(self.up)
    }

    /// Drops input no future output needs, in batches so the copy is amortised.
    fn forget_used(&mut self) {
        let unused = (self.first_input() - self.first).max(0) as usize;
        if unused >= 4096 && unused * 2 >= self.history.len() {
            self.history.drain(..unused);
            self.first += unused as i64;
        }
    }

    /// Outputs the stream has had so far plus those still due at its end:
    /// `ceil(n_in up / down)` in all, as scipy returns.
    fn outputs_left(&self) -> u64 {
        let total = (self.n_in * self.up + self.down - 1).div_euclid(self.down);
        (total - self.next_out).max(0) as u64
    }
}

/// scipy's `firwin(2 half_len + 1, 1 / max_rate, window=("kaiser", 5))`
/// scaled by `gain`: a windowed-sinc low-pass at the lower Nyquist frequency,
/// normalised to unit gain at DC before the scaling.
fn lowpass(half_len: u64, max_rate: u64, gain: f64) -> Vec<f64> {
    let cutoff = 1.0 / max_rate as f64;
    let alpha = half_len as f64;
    let i0_beta = bessel_i0(KAISER_BETA);
    let mut h: Vec<f64> = (0..=2 * half_len)
        .map(|i| {
            let m = i as f64 - alpha;
            let r = m / alpha;
            let window = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
            cutoff * sinc(cutoff * m) * window
        })
        .collect();
    let sum: f64 = h.iter().sum();
    for v in &mut h {
        *v *= gain / sum;
    }
    h
}

/// Normalised sinc, sin(pi x) / (pi x), as numpy defines it.
fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// Modified Bessel function of the first kind, order 0, by its power series
/// (converges to full precision within 30 terms for the window's arguments).
fn bessel_i0(x: f64) -> f64 {
    let q = x * x / 4.0;
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > sum * 1e-17 {
        term *= q / (k * k);
        sum += term;
        k += 1.0;
    }
    sum
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl StreamResampler {
    /// Sets up conversion from `from_hz` to `to_hz`; equal rates pass samples
    /// through untouched.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, AudioError> {
        let refuse = |reason: String| AudioError::Resample {
            from_hz,
            to_hz,
            reason,
        };
        if from_hz == 0 || to_hz == 0 {
            return Err(refuse("sample rates must be > 0".to_owned()));
        }
        let engine = if from_hz == to_hz {
            None
        } else {
            Some(Engine::new(from_hz, to_hz).map_err(refuse)?)
        };
        Ok(Self { engine })
    }

    /// Appends the output that `input` completes to `out`. An output sample
    /// needs the input up to [`latency_samples`](Self::latency_samples) later,
    /// so a short call may append nothing.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        let Some(engine) = &mut self.engine else {
            out.extend_from_slice(input);
            return;
        };
        engine.push(input);
        engine.emit(out, u64::MAX);
    }

    /// Ends the stream: appends the tail, computed with silence after the
    /// last sample, so that the total output is `ceil(n_in * to_hz /
    /// from_hz)` samples; then resets for a new stream.
    pub fn flush(&mut self, out: &mut Vec<f32>) {
        let Some(engine) = &mut self.engine else {
            return;
        };
        let left = engine.outputs_left();
        let tail = engine.half_len / engine.up + 2;
        engine
            .history
            .resize(engine.history.len() + tail as usize, 0.0);
        engine.emit(out, left);
        engine.reset();
    }

    /// How many output samples the output can lag behind the input (the
    /// filter's look-ahead), for live-latency accounting. Timestamps need no
    /// correction: the output is aligned with the input.
    pub fn latency_samples(&self) -> usize {
        self.engine
            .as_ref()
            .map_or(0, |e| (e.half_len / e.down + 2) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sine(rate: u32, freq: f64, amp: f64, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as f32
            })
            .collect()
    }

    fn resample_all(from: u32, to: u32, x: &[f32]) -> Vec<f32> {
        let mut rs = StreamResampler::new(from, to).unwrap();
        let mut out = Vec::new();
        rs.process(x, &mut out);
        rs.flush(&mut out);
        out
    }

    /// Amplitude and phase of `freq` in `y` by least squares against sin/cos.
    fn fit(y: &[f32], rate: u32, freq: f64, start: usize) -> (f64, f64) {
        let (mut s, mut c) = (0.0, 0.0);
        let n = y.len();
        for (i, &v) in y.iter().enumerate() {
            let ph = 2.0 * std::f64::consts::PI * freq * (start + i) as f64 / rate as f64;
            s += f64::from(v) * ph.sin();
            c += f64::from(v) * ph.cos();
        }
        let (s, c) = (2.0 * s / n as f64, 2.0 * c / n as f64);
        ((s * s + c * c).sqrt(), c.atan2(s))
    }

    #[test]
    fn equal_rates_pass_through_exactly() {
        let x = sine(16_000, 100.0, 0.5, 1_000);
        assert_eq!(resample_all(16_000, 16_000, &x), x);
        assert_eq!(
            StreamResampler::new(16_000, 16_000)
                .unwrap()
                .latency_samples(),
            0
        );
    }

    #[test]
    fn zero_rate_is_an_error() {
        assert!(matches!(
            StreamResampler::new(0, 16_000),
            Err(AudioError::Resample { .. })
        ));
        assert!(matches!(
            StreamResampler::new(16_000, 0),
            Err(AudioError::Resample { .. })
        ));
    }

    #[test]
    fn keeps_frequency_amplitude_and_timing() {
        for from in [2_000, 4_000, 8_000, 11_025, 22_050, 44_100, 48_000, 96_000] {
            // One low (rumble) and one mid tone inside every input's passband.
            for freq in [18.0, 0.3 * f64::from(from.min(16_000))] {
                let n = from as usize * 2;
                let y = resample_all(from, 16_000, &sine(from, freq, 0.5, n));
                assert_eq!(y.len(), 32_000, "{from} Hz length");
                // Skip the edges, where the stream starts and stops abruptly.
                let (a, b) = (4_000, 28_000);
                let (amp, phase) = fit(&y[a..b], 16_000, freq, a);
                let db = 20.0 * (amp / 0.5).log10();
                assert!(db.abs() < 1.0, "{from} Hz, {freq} Hz: {db:.3} dB");
                // Phase error as a delay in output samples.
                let delay = phase / (2.0 * std::f64::consts::PI * freq) * 16_000.0;
                eprintln!("{from} Hz, {freq} Hz: {db:+.4} dB, delay {delay:+.3} samples");
                assert!(
                    delay.abs() < 0.01,
                    "{from} Hz, {freq} Hz: delay {delay:.3} samples"
                );
            }
        }
    }

    #[test]
    fn flush_gives_scipy_length() {
        for (from, n) in [
            (44_100, 12_345),
            (48_000, 1),
            (2_000, 999),
            (4_000, 0),
            (22_050, 100_000),
            // Rates sharing no factor with 16 kHz need one-second blocks.
            (37_123, 50_000),
            (1_000, 333),
            (384_000, 400_000),
        ] {
            let y = resample_all(from, 16_000, &vec![0.1; n]);
            let expected = (n as u64 * 16_000).div_ceil(u64::from(from));
            assert_eq!(y.len() as u64, expected, "{from} Hz, {n} samples");
        }
    }

    #[test]
    fn output_lag_is_bounded_by_latency() {
        let mut rs = StreamResampler::new(44_100, 16_000).unwrap();
        let mut out = Vec::new();
        let mut n_in = 0u64;
        for _ in 0..200 {
            rs.process(&[0.0; 777], &mut out);
            n_in += 777;
            let due = n_in * 16_000 / 44_100;
            assert!(out.len() as u64 + rs.latency_samples() as u64 >= due);
        }
    }

    #[test]
    fn flush_resets_for_a_new_stream() {
        let x = sine(48_000, 440.0, 0.3, 10_000);
        let mut rs = StreamResampler::new(48_000, 16_000).unwrap();
        let mut first = Vec::new();
        rs.process(&x, &mut first);
        rs.flush(&mut first);
        let mut second = Vec::new();
        rs.process(&x, &mut second);
        rs.flush(&mut second);
        assert_eq!(first, second);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn chunking_does_not_change_output(
            from in prop::sample::select(vec![2_000u32, 8_000, 22_050, 44_100, 48_000]),
            len in 0usize..20_000,
            cuts in proptest::collection::vec(0usize..5_000, 0..30),
        ) {
            let x = sine(from, 123.0, 0.5, len);
            let whole = resample_all(from, 16_000, &x);
            let mut rs = StreamResampler::new(from, 16_000).unwrap();
            let mut out = Vec::new();
            let mut rest = &x[..];
            for cut in cuts {
                let (head, tail) = rest.split_at(cut.min(rest.len()));
                rs.process(head, &mut out);
                rest = tail;
            }
            rs.process(rest, &mut out);
            rs.flush(&mut out);
            prop_assert_eq!(whole, out);
        }
    }
}
