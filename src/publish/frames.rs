//! Per-frame probability CSV: the raw model output behind the events, for
//! tuning thresholds and plotting.

use std::io::{self, BufWriter, Write};

use crate::detect::StreamContext;

/// Writes `frame,time_s,<label>,...` and one row per model output frame.
/// Rows are buffered; dropping the writer flushes them.
pub struct FrameCsvWriter<W: Write> {
    out: BufWriter<W>,
    ctx: StreamContext,
}

impl<W: Write> FrameCsvWriter<W> {
    /// Writes the header; the columns are all of `ctx.labels`, background
    /// included, and times are stream times as in the call records.
    pub fn new(out: W, ctx: &StreamContext) -> io::Result<Self> {
        let mut out = BufWriter::new(out);
        write!(out, "frame,time_s")?;
        for label in &ctx.labels {
            write!(out, ",{}", csv_field(label))?;
        }
        writeln!(out)?;
        Ok(Self {
            out,
            ctx: ctx.clone(),
        })
    }

    /// Appends the row of `frame`.
    ///
    /// # Panics
    /// If `probs` does not hold one value per label: the model's output
    /// shape is validated at load, so this is a bug in the caller.
    pub fn write_frame(&mut self, frame: u64, probs: &[f32]) -> io::Result<()> {
        assert_eq!(
            probs.len(),
            self.ctx.labels.len(),
            "one probability per label"
        );
        write!(self.out, "{frame},{:.3}", self.ctx.offset_s(frame))?;
        for p in probs {
            write!(self.out, ",{p:.4}")?;
        }
        writeln!(self.out)
    }

    /// Writes out buffered rows, so a failure is reported rather than lost
    /// in a drop.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Quotes a label that would otherwise break the CSV.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::event::test_context;

    #[test]
    fn header_and_rows() {
        let ctx = StreamContext {
            offset_base_s: 1.0,
            ..test_context(&["not-call", "rumble", "odd, \"one\""])
        };
        let mut buf = Vec::new();
        let mut writer = FrameCsvWriter::new(&mut buf, &ctx).expect("header");
        writer.write_frame(0, &[0.9, 0.1, 0.0]).expect("row");
        writer
            .write_frame(3, &[0.25, 0.74999, 0.00006])
            .expect("row");
        writer.flush().expect("flush");
        drop(writer);
        assert_eq!(
            String::from_utf8(buf).expect("utf-8"),
            "frame,time_s,not-call,rumble,\"odd, \"\"one\"\"\"\n\
             0,1.000,0.9000,0.1000,0.0000\n\
             3,1.480,0.2500,0.7500,0.0001\n"
        );
    }
}
