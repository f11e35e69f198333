//! A "Learning to rumble" (aerd) checkpoint exported by
//! `models/export_aerd.py` runs in rumbled unchanged and gives aerd's own
//! probabilities.
//!
//! `tests/data/aerd/aerd-random-small.*` is a randomly initialised
//! AERDClassifier with a reduced BEATs configuration (same architecture, two
//! layers), and `aerd-random-small.reference.json` holds what aerd's PyTorch
//! `predict` gives on `clip.wav` when run over exactly rumbled's windows and
//! averaged uniformly. rumbled computes everything itself here (Kaldi fbank,
//! normalisation, the BEATs graph in ONNX Runtime, windows, stitching), so
//! agreement within 1e-4 proves the whole chain without Python.
//!
//! The full-size model (90 M parameters, not committed) gets the same check
//! through `rumbled replay --frames` in models/bench_aerd.py.

use std::path::{Path, PathBuf};
use std::process::Command;

use rumbled::detect::EndpointConfig;
use rumbled::model::{Manifest, Model, ModelError, ModelOptions, WindowModel};
use rumbled::pipeline::{Detector, DetectorConfig, DetectorOutput};

const TOLERANCE: f32 = 1e-4;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/aerd")
}

/// aerd's per-frame probabilities and how they were computed.
struct Reference {
    wav: PathBuf,
    hop_outputs: usize,
    window_frames: usize,
    /// `(start, frames)` of each window, in fbank frames.
    windows: Vec<(usize, usize)>,
    labels: Vec<String>,
    mean: f32,
    std: f32,
    /// `labels.len()` values per output frame.
    probs: Vec<f32>,
    frames: usize,
}

fn load_reference(path: &Path) -> Reference {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).expect("reference JSON");
    let usize_of = |key: &str| v[key].as_u64().unwrap_or_else(|| panic!("{key}")) as usize;
    let rows = v["probs"].as_array().expect("probs");
    let probs: Vec<f32> = rows
        .iter()
        .flat_map(|row| row.as_array().expect("row").iter())
        .map(|p| p.as_f64().expect("probability") as f32)
        .collect();
    let wav = Path::new(v["wav"].as_str().expect("wav"));
    Reference {
        wav: path.parent().expect("reference dir").join(wav),
        hop_outputs: usize_of("hop_outputs"),
        window_frames: usize_of("window_frames"),
        windows: v["windows"]
            .as_array()
            .expect("windows")
            .iter()
            .map(|w| {
                (
                    w[0].as_u64().expect("start") as usize,
                    w[1].as_u64().expect("frames") as usize,
                )
            })
            .collect(),
        labels: v["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .map(|l| l.as_str().expect("label").to_owned())
            .collect(),
        mean: v["fbank_mean"].as_f64().expect("fbank_mean") as f32,
        std: v["fbank_std"].as_f64().expect("fbank_std") as f32,
        frames: rows.len(),
        probs,
    }
}

fn read_wav(path: &Path) -> Vec<f32> {
    let mut reader =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16_000, 1, 16),
        "{}: the reference was computed on 16 kHz mono 16-bit audio",
        path.display()
    );
    reader
        .samples::<i16>()
        .map(|s| f32::from(s.expect("sample")) / 32_768.0)
        .collect()
}

fn load_model(manifest: &Path) -> Model {
    let manifest = Manifest::load(manifest).expect("manifest");
    Model::load(
        manifest,
        &ModelOptions {
            onnxruntime: None,
            threads: 1,
        },
    )
    .expect("model")
}

/// The model, recording the length of every window rumbled runs.
struct Recording<'a> {
    model: &'a mut Model,
    windows: Vec<usize>,
}

impl WindowModel for Recording<'_> {
    fn num_classes(&self) -> usize {
        self.model.num_classes()
    }
    fn frames_per_output(&self) -> usize {
        self.model.frames_per_output()
    }
    fn infer(
        &mut self,
        window: &[f32],
        frames: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        self.windows.push(frames);
        self.model.infer(window, frames, out)
    }
}

/// rumbled's per-frame probabilities for `samples`, pushed in `chunk`s, and
/// the lengths of the windows it ran.
fn rumbled_probs(
    model: &mut Model,
    samples: &[f32],
    hop: usize,
    chunk: usize,
) -> (Vec<f32>, Vec<usize>) {
    let manifest = model.manifest().clone();
    let cfg = DetectorConfig {
        input_rate: 16_000,
        gain: 1.0,
        hop_frames: hop,
        centre_weighted: false,
        endpoint: EndpointConfig::default(),
    };
    let mut detector = Detector::new(&manifest, &cfg).expect("detector");
    let mut recording = Recording {
        model,
        windows: Vec::new(),
    };
    let mut out = DetectorOutput::default();
    let mut probs = Vec::new();
    for piece in samples.chunks(chunk) {
        out.clear();
        detector
            .push(piece, &mut recording, &mut out)
            .expect("push");
        probs.extend_from_slice(&out.probs);
    }
    out.clear();
    detector.finish(&mut recording, &mut out).expect("finish");
    probs.extend_from_slice(&out.probs);
    (probs, recording.windows)
}

fn max_difference(got: &[f32], want: &[f32]) -> (f32, usize) {
    got.iter()
        .zip(want)
        .enumerate()
        .map(|(i, (a, b))| ((a - b).abs(), i))
        .fold((0.0, 0), |best, x| if x.0 > best.0 { x } else { best })
}

/// Runs the exported model over the reference recording and checks it
/// against aerd's probabilities.
fn check_against_aerd(manifest_path: &Path, reference_path: &Path) {
    let reference = load_reference(reference_path);
    let mut model = load_model(manifest_path);
    let m = model.manifest().clone();
    assert_eq!(m.labels, reference.labels, "labels in aerd's order");
    assert_eq!(m.background.as_deref(), Some("not-call"));
    assert_eq!(
        (m.features.mean, m.features.std),
        (reference.mean, reference.std),
        "aerd's fbank normalisation"
    );
    assert_eq!(m.window_frames, reference.window_frames);
    assert_eq!(m.output.frames_per_output, 16);

    let samples = read_wav(&reference.wav);
    let classes = reference.labels.len();
    // The comparison means something only if aerd's probabilities move.
    let spread = reference.probs.iter().fold(f32::MIN, |a, &b| a.max(b))
        - reference.probs.iter().fold(f32::MAX, |a, &b| a.min(b));
    assert!(
        spread > 0.05,
        "reference probabilities barely vary ({spread})"
    );

    for chunk in [4_000, samples.len()] {
        let (got, windows) = rumbled_probs(&mut model, &samples, reference.hop_outputs, chunk);
        let expected_windows: Vec<usize> = reference.windows.iter().map(|w| w.1).collect();
        assert_eq!(
            windows, expected_windows,
            "rumbled ran the reference's windows"
        );
        assert_eq!(got.len(), reference.frames * classes, "output frame count");
        let (worst, at) = max_difference(&got, &reference.probs);
        eprintln!(
            "{}: {} frames x {classes} classes, {} windows, chunk {chunk}: \
             max |rumbled - aerd| = {worst:.2e} (frame {}, {})",
            m.name,
            reference.frames,
            windows.len(),
            at / classes,
            reference.labels[at % classes],
        );
        assert!(
            worst <= TOLERANCE,
            "max difference {worst} at frame {} class {}",
            at / classes,
            reference.labels[at % classes]
        );
    }
}

#[test]
fn small_aerd_model_gives_aerd_probabilities() {
    check_against_aerd(
        &data_dir().join("aerd-random-small.json"),
        &data_dir().join("aerd-random-small.reference.json"),
    );
}

/// The same through `rumbled replay --model ... --frames`: the exported
/// model needs nothing but the manifest. The CSV has 4 decimals, so the
/// tolerance grows by half a unit of the last digit.
#[test]
fn replay_runs_the_exported_model() {
    let reference_path = data_dir().join("aerd-random-small.reference.json");
    let reference = load_reference(&reference_path);
    let dir = tempfile::tempdir().expect("tempdir");
    let frames = dir.path().join("frames.csv");
    let manifest = data_dir().join("aerd-random-small.json");
    let out = Command::new(env!("CARGO_BIN_EXE_rumbled"))
        .args([
            "replay".as_ref(),
            reference.wav.as_os_str(),
            "--model".as_ref(),
            manifest.as_os_str(),
            "--threads".as_ref(),
            "1".as_ref(),
            "--hop".as_ref(),
            reference.hop_outputs.to_string().as_ref(),
            "--frames".as_ref(),
            frames.as_os_str(),
            "--quiet".as_ref(),
        ])
        .env_remove("RUST_LOG")
        .output()
        .expect("run rumbled");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(&frames).expect("frames CSV");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    assert_eq!(header[..2], ["frame", "time_s"]);
    assert_eq!(header[2..], reference.labels[..]);
    let got: Vec<f32> = lines
        .flat_map(|l| {
            l.split(',')
                .skip(2)
                .map(|p| p.parse::<f32>().expect("number"))
        })
        .collect();
    assert_eq!(got.len(), reference.probs.len(), "frame count");
    let (worst, _) = max_difference(&got, &reference.probs);
    assert!(worst <= TOLERANCE + 5e-5, "max difference {worst}");
}
