//! rumbled: a streaming elephant-call detector.
//!
//! Data flows one way through plain types, one module per pipeline stage:
//!
//! ```text
//! audio (samples) -> dsp (fbank frames) -> model (per-frame probabilities)
//!     -> detect (call events) -> publish (JSONL, Raven tables, MQTT)
//! ```
//!
//! [`pipeline`] wires the stages together; [`config`] holds every knob.

pub mod audio;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod detect;
pub mod dsp;
pub mod eval;
pub mod evidence;
pub mod model;
pub mod pipeline;
pub mod plot;
pub mod publish;
pub mod replay;
pub mod stats;
