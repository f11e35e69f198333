//! The model manifest: the contract between a trained model and rumbled.
//!
//! A model is `<name>.onnx` plus `<name>.json`. The manifest says how the
//! features were computed during training, how to call the graph and what the
//! outputs mean, so any model that honours it (the shipped edge model, a
//! user's own, an exported "Learning to rumble" checkpoint) runs unchanged.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::detect::{EndpointConfig, Recommended};
use crate::dsp::FbankConfig;
use crate::model::ModelError;

/// The manifest schema version this build understands.
pub const SCHEMA_VERSION: u32 = 1;

/// A parsed and validated model manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest schema version; must equal [`SCHEMA_VERSION`].
    pub schema: u32,
    /// Model name, shown in every event.
    pub name: String,
    /// Model version, shown in every event.
    pub version: String,
    /// Hex SHA-256 of the ONNX file, checked at load so a half-copied or
    /// swapped model is refused instead of producing nonsense.
    pub sha256: String,
    /// ONNX file name, relative to the manifest; defaults to `<name>.onnx`.
    #[serde(default)]
    pub onnx: Option<String>,
    /// Sample rate the features were computed at (16000).
    pub sample_rate: u32,
    /// How the training features were computed.
    pub features: Features,
    /// The graph's input tensor.
    pub input: TensorSpec,
    /// The graph's output tensor.
    pub output: OutputSpec,
    /// Fbank frames per inference window (998 = 10 s).
    pub window_frames: usize,
    /// Class names in output order.
    pub labels: Vec<String>,
    /// The label of the no-call class, if the model has one.
    #[serde(default)]
    pub background: Option<String>,
    /// Where the model came from and how well it did; free-form, kept so
    /// `rumbled model` can show it.
    #[serde(default)]
    pub provenance: serde_json::Value,
    /// `[endpoint]` settings this model was tuned for (optional); they
    /// replace rumbled's built-in defaults, never what the station's config
    /// or command line set.
    #[serde(default)]
    pub endpoint: Recommended,
    /// Lowest recorder sample rate in the model's training data (optional).
    /// A recording below it holds a narrower band than the model ever saw,
    /// so it may miss calls there; rumbled warns instead of staying silent.
    #[serde(default)]
    pub min_input_rate: Option<u32>,
    /// Path of the manifest itself, filled in at load.
    #[serde(skip)]
    pub path: PathBuf,
}

/// Feature parameters; they must match what the model was trained on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Features {
    /// Only `kaldi_fbank` exists today.
    pub kind: String,
    /// Mel bins per frame (128).
    pub num_mel_bins: usize,
    /// Samples per frame (400 = 25 ms).
    pub frame_length: usize,
    /// Samples between frames (160 = 10 ms).
    pub frame_shift: usize,
    /// Lowest mel edge in Hz.
    pub low_freq: f32,
    /// Highest mel edge in Hz; 0 or negative counts back from Nyquist.
    pub high_freq: f32,
    /// Pre-emphasis coefficient.
    pub preemphasis: f32,
    /// Factor applied to [-1, 1] samples before features (32768).
    pub scale: f32,
    /// Normalisation: `(fbank - mean) / (2 * std)`.
    pub mean: f32,
    /// Normalisation: `(fbank - mean) / (2 * std)`.
    pub std: f32,
}

/// Name and layout of the input tensor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    /// Tensor name in the graph.
    pub name: String,
    /// Axis names; must be `[batch, frames, mel]`.
    pub layout: Vec<String>,
}

/// Name, layout and meaning of the output tensor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Tensor name in the graph.
    pub name: String,
    /// `sigmoid` (the graph gives logits) or `none` (already probabilities).
    pub activation: Activation,
    /// Fbank frames per output frame (16 = 160 ms).
    pub frames_per_output: usize,
    /// Axis names; must be `[batch, frames, classes]`.
    #[serde(default = "default_output_layout")]
    pub layout: Vec<String>,
}

/// What turns the graph's output into probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// The graph outputs logits; apply the logistic function.
    Sigmoid,
    /// The graph outputs probabilities already.
    None,
}

fn default_output_layout() -> Vec<String> {
    vec!["batch".into(), "frames".into(), "classes".into()]
}

impl Manifest {
    /// Reads, parses and validates a manifest; does not touch the ONNX file.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = fs::read_to_string(path).map_err(|error| ModelError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let mut manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| ModelError::Manifest {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        manifest.path = path.to_path_buf();
        manifest.validate()?;
        Ok(manifest)
    }

    /// Path of the ONNX graph this manifest describes.
    pub fn onnx_path(&self) -> PathBuf {
        let file = self
            .onnx
            .clone()
            .unwrap_or_else(|| format!("{}.onnx", self.name));
        self.path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(file)
    }

    /// Index of the background (no-call) class in `labels`, if any.
    pub fn background_index(&self) -> Option<usize> {
        let background = self.background.as_ref()?;
        self.labels.iter().position(|l| l == background)
    }

    /// Seconds per output frame (0.16 for the contract's defaults).
    pub fn output_frame_seconds(&self) -> f64 {
        (self.features.frame_shift * self.output.frames_per_output) as f64
            / f64::from(self.sample_rate)
    }

    /// Output frames one full window yields.
    pub fn window_outputs(&self) -> usize {
        self.window_frames / self.output.frames_per_output
    }

    /// The fbank configuration the model was trained with.
    pub fn fbank_config(&self) -> FbankConfig {
        let f = &self.features;
        FbankConfig {
            sample_rate: self.sample_rate,
            num_mel_bins: f.num_mel_bins,
            frame_length: f.frame_length,
            frame_shift: f.frame_shift,
            low_freq: f.low_freq,
            high_freq: f.high_freq,
            preemphasis: f.preemphasis,
            scale: f.scale,
        }
    }

    /// A warning when recordings at `input_rate` Hz are below the lowest
    /// recorder rate the model was trained on (`min_input_rate`): the model
    /// runs, but never saw so narrow a band and may miss calls.
    pub fn input_rate_warning(&self, input_rate: u32) -> Option<String> {
        let min = self.min_input_rate?;
        (input_rate < min).then(|| {
            format!(
                "{input_rate} Hz is below {min} Hz, the lowest recorder rate model {} {} was \
                 trained on; it may miss calls here (record at {min} Hz or more, or train a \
                 model on such recordings: models/README.md)",
                self.name, self.version
            )
        })
    }

    /// Reads the ONNX file and checks it against `sha256`.
    pub fn read_verified_onnx(&self) -> Result<Vec<u8>, ModelError> {
        let path = self.onnx_path();
        let bytes = fs::read(&path).map_err(|error| ModelError::Io {
            path: path.clone(),
            error,
        })?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(self.sha256.trim()) {
            return Err(ModelError::Checksum {
                path,
                expected: self.sha256.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    fn validate(&self) -> Result<(), ModelError> {
        let bad = |field: &str, why: String| ModelError::Manifest {
            path: self.path.clone(),
            message: format!("field `{field}`: {why}"),
        };
        if self.schema != SCHEMA_VERSION {
            return Err(bad(
                "schema",
                format!(
                    "version {} is not supported; this rumbled reads version {SCHEMA_VERSION}",
                    self.schema
                ),
            ));
        }
        if self.features.kind != "kaldi_fbank" {
            return Err(bad(
                "features.kind",
                format!(
                    "`{}` is unknown; expected `kaldi_fbank`",
                    self.features.kind
                ),
            ));
        }
        if !(self.features.std.is_finite() && self.features.std > 0.0) {
            return Err(bad("features.std", "must be a positive number".into()));
        }
        if !self.features.mean.is_finite() {
            return Err(bad("features.mean", "must be a finite number".into()));
        }
        if self.sample_rate == 0 {
            return Err(bad("sample_rate", "must be positive".into()));
        }
        if self.min_input_rate == Some(0) {
            return Err(bad(
                "min_input_rate",
                "must be a positive rate in Hz".into(),
            ));
        }
        if self.output.frames_per_output == 0 {
            return Err(bad("output.frames_per_output", "must be positive".into()));
        }
        if self.window_frames < self.output.frames_per_output {
            return Err(bad(
                "window_frames",
                format!(
                    "{} is shorter than one output frame ({} fbank frames)",
                    self.window_frames, self.output.frames_per_output
                ),
            ));
        }
        if self.labels.is_empty() {
            return Err(bad("labels", "must name at least one class".into()));
        }
        if let Some(background) = &self.background
            && self.background_index().is_none()
        {
            return Err(bad(
                "background",
                format!("`{background}` is not one of `labels`"),
            ));
        }
        if self.input.layout != ["batch", "frames", "mel"] {
            return Err(bad(
                "input.layout",
                "only [\"batch\", \"frames\", \"mel\"] is supported".into(),
            ));
        }
        if self.output.layout != ["batch", "frames", "classes"] {
            return Err(bad(
                "output.layout",
                "only [\"batch\", \"frames\", \"classes\"] is supported".into(),
            ));
        }
        // Checked against the built-in defaults here, so a bad value is
        // refused when the model loads, not when some config meets it.
        EndpointConfig::default()
            .with_recommended(&Default::default(), &self.endpoint)
            .map_err(|e| bad("endpoint", e.to_string()))?;
        Ok(())
    }
}
