//! Detection: from per-frame class probabilities to call events.
//!
//! [`endpoint`] decides where calls start and end; [`event`] holds what it
//! says and the `rumbled.call/1` record the sinks publish.

pub mod endpoint;
pub mod event;

pub use endpoint::{CallScore, EndpointConfig, EndpointError, Endpointer, Recommended};
pub use event::{
    CALL_SCHEMA, CallEvent, CallPhase, CallRecord, EndReason, ModelInfo, Scores, SourceInfo,
    StreamContext,
};
