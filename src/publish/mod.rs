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
pub use mqtt::{
    MqttError, MqttHandle, MqttPublisher, MqttSink, MqttStats, Role, StatusInfo, StatusPayload,
    StatusState,
};
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

/// Several sinks as one: every record goes to every sink, in order, even
/// when an earlier one fails (the first error is returned), so a full disk
/// under a JSONL file does not keep a call from the MQTT spool.
pub struct FanOut(pub Vec<Box<dyn EventSink>>);

impl EventSink for FanOut {
    fn emit(&mut self, rec: &CallRecord) -> anyhow::Result<()> {
        let mut first = Ok(());
        for sink in &mut self.0 {
            let result = sink.emit(rec);
            if first.is_ok() {
                first = result;
            }
        }
        first
    }

    fn close(&mut self) -> anyhow::Result<()> {
        let mut first = Ok(());
        for sink in &mut self.0 {
            let result = sink.close();
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}
