//! Model stage: normalised fbank frames in, per-frame class probabilities out.
//!
//! [`manifest`] describes a model, [`session`] runs one window through ONNX
//! Runtime, and [`window`] schedules overlapping windows over the stream and
//! stitches their outputs onto one global frame grid.

pub mod manifest;
pub mod session;
pub mod window;

use std::path::PathBuf;

pub use manifest::Manifest;
pub use session::{Model, ModelOptions, WindowModel};
pub use window::{Windower, WindowerConfig};

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The manifest is malformed or violates the contract.
    #[error("model manifest {}: {message}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The ONNX file is not the one the manifest describes.
    #[error(
        "model file {} does not match its manifest (sha256 {actual}, manifest says {expected}); \
         the file is corrupt or was replaced: copy it again or fix the manifest's `sha256`",
        path.display()
    )]
    Checksum {
        /// The ONNX file.
        path: PathBuf,
        /// sha256 in the manifest.
        expected: String,
        /// sha256 of the file.
        actual: String,
    },
    /// The ONNX Runtime shared library could not be loaded.
    #[error("{0}")]
    Runtime(String),
    /// The graph does not fit its manifest (names, ranks, sizes).
    #[error("model {}: {message}; re-export the model or fix its manifest", path.display())]
    Incompatible {
        /// The ONNX file.
        path: PathBuf,
        /// What does not fit.
        message: String,
    },
    /// ONNX Runtime failed while running a window.
    #[error("inference failed for model {}: {message}", path.display())]
    Inference {
        /// The ONNX file.
        path: PathBuf,
        /// ONNX Runtime's message.
        message: String,
    },
}
