//! JSON Lines output: one `rumbled.call/1` record per line, for files,
//! stdout and `eval`.

use std::io::{self, BufWriter, Write};

use anyhow::Context;

use super::EventSink;
use crate::detect::{CallPhase, CallRecord};

/// Writes call records as JSON Lines. Output is buffered and flushed at
/// every call end, so a reader following the file sees whole calls without
/// a syscall per event; dropping the sink flushes what is left.
pub struct JsonlSink<W: Write> {
    out: BufWriter<W>,
    name: String,
    flush_every_event: bool,
}

impl<W: Write> JsonlSink<W> {
    /// Wraps `out`; `name` (a path, or "stdout") appears in error messages.
    pub fn new(out: W, name: impl Into<String>) -> Self {
        Self {
            out: BufWriter::new(out),
            name: name.into(),
            flush_every_event: false,
        }
    }

    /// Flushes after every record, not only at call ends: for live
    /// output, where a start event waiting in a buffer is a late alarm.
    pub fn flush_every_event(mut self) -> Self {
        self.flush_every_event = true;
        self
    }

    fn write_line(&mut self, rec: &CallRecord) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, rec)?;
        self.out.write_all(b"\n")?;
        if rec.phase == CallPhase::End || self.flush_every_event {
            self.out.flush()?;
        }
        Ok(())
    }
}

impl<W: Write> EventSink for JsonlSink<W> {
    fn emit(&mut self, rec: &CallRecord) -> anyhow::Result<()> {
        self.write_line(rec)
            .with_context(|| format!("writing call {} to {}", rec.id, self.name))
    }

    fn close(&mut self) -> anyhow::Result<()> {
        self.out
            .flush()
            .with_context(|| format!("flushing {}", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::CallRecord;
    use crate::detect::event::test_record;

    fn record(phase: CallPhase, seq: u64) -> CallRecord {
        test_record(phase, 0, seq)
    }

    /// Shares its buffer so the test can look while the sink is alive.
    #[derive(Clone, Default)]
    struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_record_per_line_flushed_at_call_end() {
        let buf = Shared::default();
        let mut sink = JsonlSink::new(buf.clone(), "test");
        let start = record(CallPhase::Start, 1);
        let end = record(CallPhase::End, 2);
        sink.emit(&start).expect("emit");
        assert!(buf.0.borrow().is_empty(), "start is buffered");
        sink.emit(&end).expect("emit");
        let text = String::from_utf8(buf.0.borrow().clone()).expect("utf-8");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let back: Vec<CallRecord> = lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("parses"))
            .collect();
        assert_eq!(back, [start, end]);
    }

    #[test]
    fn live_output_flushes_every_record() {
        let buf = Shared::default();
        let mut sink = JsonlSink::new(buf.clone(), "test").flush_every_event();
        sink.emit(&record(CallPhase::Start, 1)).expect("emit");
        assert!(buf.0.borrow().ends_with(b"}\n"));
    }

    #[test]
    fn drop_flushes() {
        let buf = Shared::default();
        let mut sink = JsonlSink::new(buf.clone(), "test");
        sink.emit(&record(CallPhase::Start, 1)).expect("emit");
        drop(sink);
        assert!(buf.0.borrow().ends_with(b"}\n"));
    }
}
