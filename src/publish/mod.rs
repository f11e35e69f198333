//! Publishing: where call records and per-frame probabilities go.
//!
//! Call records go through [`EventSink`], so the pipeline can fan one event
//! stream out to JSONL, Raven tables and MQTT alike.

pub mod frames;
pub mod jsonl;
pub mod mqtt;
pub mod raven;
pub mod spool;

pub use frames::FrameCsvWriter;
pub use jsonl::JsonlSink;
pub use mqtt::{MqttError, MqttHandle, MqttPublisher, MqttSink, MqttStats, Role, StatusInfo};
pub use raven::{RavenError, RavenWriter, Selection, read_selection_table};
pub use spool::{SeqSource, SpoolError};

use crate::detect::CallRecord;

/// A destination for call records, so the pipeline need not know what is
/// behind it.
pub trait EventSink {
    /// Takes the next record, in event order.
    fn emit(&mut self, rec: &CallRecord) -> anyhow::Result<()>;
    /// Writes out whatever is buffered; call once at the end of the stream.
    fn close(&mut self) -> anyhow::Result<()>;
}
