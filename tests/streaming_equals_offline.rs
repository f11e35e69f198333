//! The invariant that matters most: feeding a recording in any chunking
//! gives exactly the per-frame probabilities of an offline computation over
//! the whole signal (features of the whole signal, windows cut from them,
//! outputs averaged), written here independently of the streaming code.

use std::path::Path;

use rumbled::detect::EndpointConfig;
use rumbled::dsp::fbank;
use rumbled::model::{Manifest, Model, ModelOptions, WindowModel};
use rumbled::pipeline::{Detector, DetectorConfig, DetectorOutput};

const RATE: usize = 16_000;
const HOP: usize = 13;

/// 75 s of deterministic "soundscape": noise, a slow 18 Hz harmonic rumble
/// and a few tone bursts, so the model's outputs vary from frame to frame.
fn recording() -> Vec<f32> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    (0..75 * RATE + 1234)
        .map(|i| {
            let t = i as f32 / RATE as f32;
            let rumble: f32 = (1..8)
                .map(|h| (2.0 * std::f32::consts::PI * 18.0 * h as f32 * t).sin() / h as f32)
                .sum();
            let envelope = ((t * 0.2).sin()).max(0.0);
            let burst = if (t as usize) % 7 == 3 {
                (2.0 * std::f32::consts::PI * 440.0 * t).sin() * 0.3
            } else {
                0.0
            };
            0.05 * noise() + 0.2 * envelope * rumble + burst
        })
        .collect()
}

fn load_default() -> Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/rumbled-edge-ev5.json");
    let manifest = Manifest::load(&path).expect("default manifest");
    Model::load(
        manifest,
        &ModelOptions {
            onnxruntime: None,
            threads: 1,
        },
    )
    .expect("default model")
}

fn streamed(model: &mut Model, samples: &[f32], chunk: usize) -> Vec<f32> {
    let manifest = model.manifest().clone();
    let cfg = DetectorConfig {
        input_rate: RATE as u32,
        gain: 1.0,
        hop_frames: HOP,
        centre_weighted: false,
        endpoint: EndpointConfig::default(),
    };
    let mut detector = Detector::new(&manifest, &cfg).expect("detector");
    let mut out = DetectorOutput::default();
    let mut probs = Vec::new();
    for piece in samples.chunks(chunk) {
        out.clear();
        detector.push(piece, model, &mut out).expect("push");
        assert_eq!(
            out.first_frame as usize * 5,
            probs.len(),
            "frames arrive in order, once"
        );
        probs.extend_from_slice(&out.probs);
    }
    out.clear();
    detector.finish(model, &mut out).expect("finish");
    probs.extend_from_slice(&out.probs);
    probs
}

/// The whole-signal reference.
fn offline(model: &mut Model, samples: &[f32]) -> Vec<f32> {
    let m = model.manifest().clone();
    let bins = m.features.num_mel_bins;
    let per = m.output.frames_per_output;
    let feats = fbank(samples, &m.fbank_config()).expect("fbank");
    let norm: Vec<f32> = feats
        .iter()
        .map(|x| (x - m.features.mean) / (2.0 * m.features.std))
        .collect();
    let n = feats.len() / bins;
    let total_out = n / per;
    let classes = m.labels.len();
    let mut sums = vec![0.0f32; total_out * classes];
    let mut counts = vec![0.0f32; total_out];
    let mut start = 0;
    let mut covered = 0;
    loop {
        let full = start + m.window_frames <= n;
        if !full && covered >= total_out {
            break;
        }
        let len = if full { m.window_frames } else { n - start };
        let mut out = Vec::new();
        model
            .infer(&norm[start * bins..(start + len) * bins], len, &mut out)
            .expect("infer");
        let first = start / per;
        for (j, row) in out.chunks(classes).enumerate() {
            counts[first + j] += 1.0;
            for (c, p) in row.iter().enumerate() {
                sums[(first + j) * classes + c] += p;
            }
        }
        covered = covered.max(first + out.len() / classes);
        if !full {
            break;
        }
        start += HOP * per;
    }
    sums.iter()
        .enumerate()
        .map(|(i, s)| s / counts[i / classes])
        .collect()
}

#[test]
fn streaming_in_any_chunking_equals_the_offline_computation() {
    let mut model = load_default();
    let samples = recording();
    let reference = offline(&mut model, &samples);
    let fbank_frames = (samples.len() - 400) / 160 + 1;
    assert_eq!(reference.len(), fbank_frames / 16 * 5);
    // The comparison means something only if the probabilities move.
    let rumble: Vec<f32> = reference.iter().skip(1).step_by(5).copied().collect();
    let spread = rumble.iter().fold(f32::MIN, |a, &b| a.max(b))
        - rumble.iter().fold(f32::MAX, |a, &b| a.min(b));
    assert!(
        spread > 1e-3,
        "probabilities barely vary ({spread}); the test would prove nothing"
    );
    for chunk in [1, 160, 1000, 16_000, samples.len()] {
        let got = streamed(&mut model, &samples, chunk);
        assert_eq!(got.len(), reference.len(), "chunk {chunk}: frame count");
        let worst = got
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "chunk {chunk}: max difference {worst}");
    }
}

#[test]
fn a_recording_shorter_than_one_window_is_still_scored() {
    let mut model = load_default();
    let samples: Vec<f32> = recording().into_iter().take(3 * RATE).collect();
    let reference = offline(&mut model, &samples);
    assert_eq!(reference.len(), 18 * 5); // 298 fbank frames -> 18 outputs
    let got = streamed(&mut model, &samples, 777);
    let worst = got
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert_eq!(got.len(), reference.len());
    assert!(worst <= 1e-5, "max difference {worst}");
}
