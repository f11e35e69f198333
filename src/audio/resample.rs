//! Streaming sample-rate conversion to the model rate.
//!
//! Recorders run anywhere from 2 kHz (low-power rumble loggers) to 48 kHz and
//! beyond; the model wants 16 kHz. The conversion is synchronous (fixed
//! ratio), done with rubato's FFT resampler: fast, linear-phase and flat in
//! the passband, which keeps an 18 Hz rumble's level and timing intact.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::AudioError;

/// Input blocks per second to aim for (50 ms blocks): long enough for a sharp
/// anti-aliasing filter, short enough to keep live latency low.
const BLOCKS_PER_SECOND: u32 = 20;

/// Shortest input block, so very low rates still get a usable filter.
const MIN_BLOCK: usize = 256;

/// Converts an unbounded mono stream from one fixed rate to another.
///
/// Output is time-aligned: output sample `k` corresponds to input time
/// `k / to_hz` (the filter delay is dropped at the start), so timestamps need
/// no correction. The output does not depend on how the input is split into
/// calls.
pub struct StreamResampler {
    from_hz: u32,
    to_hz: u32,
    engine: Option<Engine>,
    samples_in: u64,
    samples_out: u64,
}

/// The rubato side; absent when the rates are equal and samples pass through.
struct Engine {
    rubato: Fft<f32>,
    chunk_in: usize,
    /// Input waiting for a full chunk; rubato always gets whole chunks so the
    /// result is independent of the caller's chunking.
    pending: Vec<f32>,
    chunk_out: Vec<f32>,
    /// Output samples of filter delay still to drop at the stream start.
    to_trim: usize,
    delay: usize,
}

impl Engine {
    /// Resamples one chunk of `input` (`input.len() < chunk_in` only at the end
    /// of the stream, then padded with silence) and appends at most `limit`
    /// delay-compensated samples to `out`; returns how many were appended.
    fn run(&mut self, input: &[f32], out: &mut Vec<f32>, limit: u64) -> usize {
        let indexing =
            (input.len() < self.chunk_in).then(|| Indexing::new().partial_len(input.len()));
        let len_out = self.chunk_out.len();
        // Adapter and buffer sizes follow from the resampler's own chunk
        // sizes; a mismatch would be a bug here, not something input causes.
        let adapter_in = InterleavedSlice::new(input, 1, input.len()).expect("mono slice adapter");
        let mut adapter_out =
            InterleavedSlice::new_mut(&mut self.chunk_out, 1, len_out).expect("mono slice adapter");
        let (_, produced) = self
            .rubato
            .process_into_buffer(&adapter_in, &mut adapter_out, indexing.as_ref())
            .expect("buffers are sized by the resampler's chunk sizes");
        let trim = self.to_trim.min(produced);
        self.to_trim -= trim;
        let take = (produced - trim).min(usize::try_from(limit).unwrap_or(usize::MAX));
        out.extend_from_slice(&self.chunk_out[trim..trim + take]);
        take
    }
}

/// Input block length for rubato: a whole, even number of the shortest
/// blocks the rate pair allows, near 1 / [`BLOCKS_PER_SECOND`] s. Even, because the
/// FFT resampler's delay is half a block: on an odd block it falls between
/// output samples and could only be compensated to within half a sample.
fn block_len(from_hz: u32, to_hz: u32) -> usize {
    let (mut a, mut b) = (from_hz, to_hz);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let min_block = (from_hz / a) as usize;
    let target = ((from_hz / BLOCKS_PER_SECOND) as usize).max(MIN_BLOCK);
    target.div_ceil(min_block).next_multiple_of(2) * min_block
}

impl StreamResampler {
    /// Sets up conversion from `from_hz` to `to_hz`; equal rates pass samples
    /// through untouched.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, AudioError> {
        let refuse = |reason: &str| AudioError::Resample {
            from_hz,
            to_hz,
            reason: reason.to_owned(),
        };
        if from_hz == 0 || to_hz == 0 {
            return Err(refuse("sample rates must be > 0"));
        }
        let engine = if from_hz == to_hz {
            None
        } else {
            let chunk = block_len(from_hz, to_hz);
            let rubato =
                Fft::<f32>::new(from_hz as usize, to_hz as usize, chunk, 1, FixedSync::Both)
                    .map_err(|e| refuse(&e.to_string()))?;
            let delay = rubato.output_delay();
            Some(Engine {
                chunk_in: rubato.input_frames_next(),
                pending: Vec::with_capacity(rubato.input_frames_next()),
                chunk_out: vec![0.0; rubato.output_frames_max()],
                to_trim: delay,
                delay,
                rubato,
            })
        };
        Ok(Self {
            from_hz,
            to_hz,
            engine,
            samples_in: 0,
            samples_out: 0,
        })
    }

    /// Appends the output that `input` completes to `out`. Output comes in
    /// blocks (about 50 ms of input each), so a call may append nothing.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        self.samples_in += input.len() as u64;
        let Some(engine) = &mut self.engine else {
            out.extend_from_slice(input);
            self.samples_out += input.len() as u64;
            return;
        };
        let mut rest = input;
        if !engine.pending.is_empty() {
            let take = (engine.chunk_in - engine.pending.len()).min(rest.len());
            engine.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if engine.pending.len() < engine.chunk_in {
                return;
            }
            let chunk = std::mem::take(&mut engine.pending);
            self.samples_out += engine.run(&chunk, out, u64::MAX) as u64;
            engine.pending = chunk;
            engine.pending.clear();
        }
        // Whole chunks straight from the caller's slice, without a copy.
        let mut chunks = rest.chunks_exact(engine.chunk_in);
        for chunk in &mut chunks {
            self.samples_out += engine.run(chunk, out, u64::MAX) as u64;
        }
        engine.pending.extend_from_slice(chunks.remainder());
    }

    /// Ends the stream: appends the tail so that the total output is
    /// `round(n_in * to_hz / from_hz)` samples, then resets for a new stream.
    pub fn flush(&mut self, out: &mut Vec<f32>) {
        let wanted = (u128::from(self.samples_in) * u128::from(self.to_hz)
            + u128::from(self.from_hz / 2))
            / u128::from(self.from_hz);
        let wanted = u64::try_from(wanted).unwrap_or(u64::MAX);
        if let Some(engine) = &mut self.engine {
            let chunk = std::mem::take(&mut engine.pending);
            let mut left = wanted.saturating_sub(self.samples_out);
            left -= engine.run(&chunk, out, left) as u64;
            engine.pending = chunk;
            // Silence pushes the filter's delay line through to the output.
            while left > 0 {
                left -= engine.run(&[], out, left) as u64;
            }
            engine.pending.clear();
            engine.rubato.reset();
            engine.to_trim = engine.delay;
        }
        self.samples_in = 0;
        self.samples_out = 0;
    }

    /// How many output samples the output can lag behind the input (filter
    /// delay plus one block being collected), for live-latency accounting.
    /// Timestamps need no correction: the delay is already compensated.
    pub fn latency_samples(&self) -> usize {
        self.engine
            .as_ref()
            .map_or(0, |e| e.delay + e.chunk_out.len())
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
                // Even blocks put the delay on a whole output sample.
                assert!(
                    delay.abs() < 0.01,
                    "{from} Hz, {freq} Hz: delay {delay:.3} samples"
                );
            }
        }
    }

    #[test]
    fn flush_gives_rounded_length() {
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
            let expected = (n as u64 * 16_000 + u64::from(from) / 2) / u64::from(from);
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
