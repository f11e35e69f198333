//! One inference window through ONNX Runtime.
//!
//! ONNX Runtime is loaded at run time from a shared library (ort's
//! `load-dynamic`), so building rumbled never needs the native library and a
//! station can take it from the PyPI wheel (`deploy/fetch-onnxruntime.sh`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::value::{TensorRef, ValueType};

use crate::model::{Manifest, ModelError, manifest::Activation};

/// File name the loader looks for in its search directories.
const LIBRARY_NAME: &str = "libonnxruntime.so.1";

/// Process-wide ONNX Runtime environment: ONNX Runtime allows one per
/// process, and parallel tests load several models.
static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// How to load a model.
#[derive(Debug, Clone, Default)]
pub struct ModelOptions {
    /// Explicit path of `libonnxruntime.so`; otherwise searched (see
    /// [`onnxruntime_candidates`]).
    pub onnxruntime: Option<PathBuf>,
    /// Intra-op threads; 1 keeps a station's other core free.
    pub threads: usize,
}

/// Anything that turns one window of normalised fbank frames into per-frame
/// probabilities. [`Model`] is the real one; tests use simple fakes.
pub trait WindowModel {
    /// Number of classes per output frame.
    fn num_classes(&self) -> usize;
    /// Fbank frames per output frame.
    fn frames_per_output(&self) -> usize;
    /// Runs `frames` normalised fbank frames (row-major, `mel` wide) and
    /// appends `frames / frames_per_output` rows of probabilities to `out`.
    fn infer(
        &mut self,
        window: &[f32],
        frames: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), ModelError>;
}

/// A loaded, validated model, ready to run windows.
pub struct Model {
    manifest: Manifest,
    session: Session,
    onnx_path: PathBuf,
    /// Set when the graph's time axis is fixed: shorter windows are padded.
    fixed_frames: Option<usize>,
    padded: Vec<f32>,
}

/// Where the ONNX Runtime library is looked for, in order: the explicit
/// option, `RUMBLED_ONNXRUNTIME`, next to the executable, the packaged
/// location, and the checkout's `.onnxruntime/` (filled by
/// `deploy/fetch-onnxruntime.sh`) for development builds.
pub fn onnxruntime_candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(path) = explicit {
        return vec![path.to_path_buf()];
    }
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("RUMBLED_ONNXRUNTIME") {
        return vec![PathBuf::from(path)];
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join(LIBRARY_NAME));
        candidates.push(dir.join("../lib/rumbled").join(LIBRARY_NAME));
    }
    candidates.push(PathBuf::from("/usr/lib/rumbled").join(LIBRARY_NAME));
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".onnxruntime")
            .join(LIBRARY_NAME),
    );
    candidates
}

/// Loads ONNX Runtime once per process and returns its environment.
pub fn environment(explicit: Option<&Path>) -> Result<&'static Environment, ModelError> {
    ENVIRONMENT
        .get_or_init(|| init_environment(explicit))
        .as_ref()
        .map_err(|message| ModelError::Runtime(message.clone()))
}

fn init_environment(explicit: Option<&Path>) -> Result<Environment, String> {
    let candidates = onnxruntime_candidates(explicit);
    let Some(library) = candidates.iter().find(|p| p.exists()) else {
        let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        return Err(format!(
            "ONNX Runtime library not found (looked for {}); run deploy/fetch-onnxruntime.sh, \
             or set [model] onnxruntime in the config or RUMBLED_ONNXRUNTIME to its path",
            tried.join(", ")
        ));
    };
    let builder = ort::init_from(library).map_err(|e| describe_load_error(library, &e))?;
    builder
        .with_name("rumbled")
        .with_telemetry(false)
        .build()
        .map_err(|e| format!("cannot start ONNX Runtime from {}: {e}", library.display()))
}

fn describe_load_error(library: &Path, error: &ort::LoadDynamicError) -> String {
    // ort's own message for a dlopen failure hides the reason (missing
    // dependency, wrong architecture); the Debug form carries it.
    match error {
        ort::LoadDynamicError::Dlopen { error, .. } => format!(
            "cannot load ONNX Runtime library {}: {error:?}; is it a Linux build for this \
             machine's architecture? run deploy/fetch-onnxruntime.sh to get a fitting one",
            library.display()
        ),
        other => format!(
            "cannot use ONNX Runtime library {}: {other}; run deploy/fetch-onnxruntime.sh \
             to get version 1.31",
            library.display()
        ),
    }
}

impl Model {
    /// Loads the model a manifest describes, checks its sha256, and
    /// validates the graph against the manifest by name, rank, size and a
    /// probe run, so a misfit is refused at start-up rather than mid-stream.
    pub fn load(manifest: Manifest, options: &ModelOptions) -> Result<Self, ModelError> {
        let onnx_path = manifest.onnx_path();
        let bytes = manifest.read_verified_onnx()?;
        let env = environment(options.onnxruntime.as_deref())?;
        let incompatible = |message: String| ModelError::Incompatible {
            path: onnx_path.clone(),
            message,
        };
        let session = session_builder(env, options.threads)
            .map_err(&incompatible)?
            .commit_from_memory(&bytes)
            .map_err(|e| incompatible(format!("ONNX Runtime cannot load it: {e}")))?;
        let fixed_frames = check_graph(&session, &manifest).map_err(incompatible)?;
        let mut model = Model {
            manifest,
            session,
            onnx_path,
            fixed_frames,
            padded: Vec::new(),
        };
        model.probe()?;
        Ok(model)
    }

    /// The manifest this model was loaded from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Runs one full window of zeros and checks the output's shape, which
    /// catches graphs whose declared shapes are symbolic but wrong.
    fn probe(&mut self) -> Result<(), ModelError> {
        let frames = self.manifest.window_frames;
        let window = vec![0.0; frames * self.manifest.features.num_mel_bins];
        let mut out = Vec::new();
        self.infer(&window, frames, &mut out)?;
        if out.iter().any(|p| !p.is_finite()) {
            return Err(ModelError::Incompatible {
                path: self.onnx_path.clone(),
                message: "a probe window of silence gave non-finite outputs".into(),
            });
        }
        Ok(())
    }

    fn run(&mut self, input: &[f32], frames: usize) -> Result<(Vec<i64>, Vec<f32>), ModelError> {
        let mel = self.manifest.features.num_mel_bins;
        let fail = |e: ort::Error| ModelError::Inference {
            path: self.onnx_path.clone(),
            message: e.to_string(),
        };
        let tensor = TensorRef::from_array_view(([1usize, frames, mel], input)).map_err(fail)?;
        let outputs = self
            .session
            .run(ort::inputs![self.manifest.input.name.as_str() => tensor])
            .map_err(fail)?;
        let (shape, data) = outputs[self.manifest.output.name.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(fail)?;
        Ok((shape.to_vec(), data.to_vec()))
    }
}

impl WindowModel for Model {
    fn num_classes(&self) -> usize {
        self.manifest.labels.len()
    }

    fn frames_per_output(&self) -> usize {
        self.manifest.output.frames_per_output
    }

    fn infer(
        &mut self,
        window: &[f32],
        frames: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        let mel = self.manifest.features.num_mel_bins;
        let wanted = frames / self.frames_per_output();
        let (shape, data) = match self.fixed_frames {
            Some(fixed) if fixed != frames => {
                // A fixed-length graph sees the window padded with zeros
                // (the normalised mean); only the real frames' outputs count.
                let mut padded = std::mem::take(&mut self.padded);
                padded.clear();
                padded.extend_from_slice(&window[..frames * mel]);
                padded.resize(fixed * mel, 0.0);
                let result = self.run(&padded, fixed);
                self.padded = padded;
                result?
            }
            _ => self.run(&window[..frames * mel], frames)?,
        };
        let classes = self.num_classes();
        let got_frames = shape.get(1).copied().unwrap_or(-1);
        if shape.len() != 3 || shape[2] != classes as i64 || got_frames < wanted as i64 {
            return Err(ModelError::Incompatible {
                path: self.onnx_path.clone(),
                message: format!(
                    "output `{}` has shape {shape:?} for {frames} input frames; expected \
                     [1, {wanted}, {classes}] ({classes} labels in the manifest)",
                    self.manifest.output.name
                ),
            });
        }
        let values = &data[..wanted * classes];
        match self.manifest.output.activation {
            Activation::Sigmoid => out.extend(values.iter().map(|&x| sigmoid(x))),
            Activation::None => out.extend_from_slice(values),
        }
        Ok(())
    }
}

/// Session options: one inter-op thread, `threads` intra-op threads, and no
/// spinning, which would burn a core between bursty windows.
fn session_builder(env: &Environment, threads: usize) -> Result<SessionBuilder, String> {
    let text = |e: ort::Error<SessionBuilder>| e.to_string();
    Session::builder(env)
        .map_err(|e| e.to_string())?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(text)?
        .with_intra_threads(threads.max(1))
        .map_err(text)?
        .with_inter_threads(1)
        .map_err(text)?
        .with_intra_op_spinning(false)
        .map_err(text)
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Checks names, ranks, element types and fixed sizes of the graph's input
/// and output against the manifest; returns the fixed time length, if any.
fn check_graph(session: &Session, manifest: &Manifest) -> Result<Option<usize>, String> {
    let names = |outlets: &[ort::value::Outlet]| -> String {
        outlets
            .iter()
            .map(|o| o.name().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let input = session
        .inputs()
        .iter()
        .find(|o| o.name() == manifest.input.name)
        .ok_or_else(|| {
            format!(
                "the graph has no input `{}` (manifest `input.name`); its inputs are: {}",
                manifest.input.name,
                names(session.inputs())
            )
        })?;
    let output = session
        .outputs()
        .iter()
        .find(|o| o.name() == manifest.output.name)
        .ok_or_else(|| {
            format!(
                "the graph has no output `{}` (manifest `output.name`); its outputs are: {}",
                manifest.output.name,
                names(session.outputs())
            )
        })?;
    let input_shape = tensor_shape(input.dtype(), "input", &manifest.input.name)?;
    let output_shape = tensor_shape(output.dtype(), "output", &manifest.output.name)?;
    let mel = manifest.features.num_mel_bins as i64;
    if input_shape[2] >= 0 && input_shape[2] != mel {
        return Err(format!(
            "input `{}` takes {} mel bins but the manifest's features have {mel}",
            manifest.input.name, input_shape[2]
        ));
    }
    let classes = manifest.labels.len() as i64;
    if output_shape[2] >= 0 && output_shape[2] != classes {
        return Err(format!(
            "output `{}` has {} classes but the manifest lists {classes} labels",
            manifest.output.name, output_shape[2]
        ));
    }
    let fixed_frames = usize::try_from(input_shape[1]).ok();
    if let Some(fixed) = fixed_frames
        && fixed < manifest.window_frames
    {
        return Err(format!(
            "input `{}` has a fixed length of {fixed} frames, shorter than the manifest's \
             window_frames ({})",
            manifest.input.name, manifest.window_frames
        ));
    }
    Ok(fixed_frames)
}

fn tensor_shape(dtype: &ValueType, role: &str, name: &str) -> Result<Vec<i64>, String> {
    let ValueType::Tensor { ty, shape, .. } = dtype else {
        return Err(format!("{role} `{name}` is not a tensor"));
    };
    if *ty != ort::value::TensorElementType::Float32 {
        return Err(format!(
            "{role} `{name}` is {ty:?}; rumbled feeds and reads float32"
        ));
    }
    if shape.len() != 3 {
        return Err(format!(
            "{role} `{name}` has rank {} (shape {:?}); the contract needs rank 3",
            shape.len(),
            shape.to_vec()
        ));
    }
    Ok(shape.to_vec())
}
