//! Signal processing between resampled audio and the model: the feature
//! extractor whose output must match what the model was trained on.

pub mod fbank;

pub use fbank::{FbankConfig, FbankError, StreamingFbank, fbank};
