//! Raven Pro selection tables: the format bioacousticians open next to the
//! spectrogram to review detections, and the format ground truth comes in.

use std::collections::HashSet;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::EventSink;
use crate::detect::{CallPhase, CallRecord};

/// Columns this writer produces, in order.
const HEADER: &str = "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\t\
                      High Freq (Hz)\tClass\tConfidence\tBegin Path\tFile Offset (s)";

const BEGIN_COLUMN: &str = "Begin Time (s)";
const END_COLUMN: &str = "End Time (s)";
const LOW_COLUMN: &str = "Low Freq (Hz)";
const HIGH_COLUMN: &str = "High Freq (Hz)";
const SELECTION_COLUMN: &str = "Selection";

/// Typical frequency band of each call type, so the selection box frames
/// the call on the spectrogram; other labels get the whole band.
const BANDS_HZ: &[(&str, f64, f64)] = &[
    ("rumble", 5.0, 500.0),
    ("roar", 100.0, 3000.0),
    ("cry", 200.0, 2000.0),
    ("trumpet", 300.0, 8000.0),
];

/// Writes one selection table per audio file: a row for every finished
/// call. Rows are buffered; dropping the writer flushes them.
pub struct RavenWriter<W: Write> {
    out: BufWriter<W>,
    name: String,
    begin_path: String,
    nyquist_hz: f64,
    selections: u64,
}

impl<W: Write> RavenWriter<W> {
    /// Starts the table for `audio_path`, whose Nyquist frequency caps the
    /// bands; `name` (the table's path) appears in error messages. Raven
    /// needs an absolute Begin Path, so a relative one is made absolute.
    pub fn new(
        out: W,
        name: impl Into<String>,
        audio_path: &Path,
        nyquist_hz: f64,
    ) -> io::Result<Self> {
        let mut out = BufWriter::new(out);
        writeln!(out, "{HEADER}")?;
        Ok(Self {
            out,
            name: name.into(),
            begin_path: cell(&std::path::absolute(audio_path)?.to_string_lossy()),
            nyquist_hz,
            selections: 0,
        })
    }

    fn band(&self, label: &str) -> (f64, f64) {
        let (low, high) = BANDS_HZ
            .iter()
            .find(|(name, _, _)| *name == label)
            .map_or((0.0, self.nyquist_hz), |&(_, low, high)| (low, high));
        let high = high.min(self.nyquist_hz);
        (low.min(high), high)
    }

    fn write_row(&mut self, rec: &CallRecord) -> anyhow::Result<()> {
        let duration = rec.duration_s.context("end record without duration_s")?;
        let begin = rec.offset_s;
        let (low, high) = self.band(&rec.label);
        self.selections += 1;
        writeln!(
            self.out,
            "{}\tSpectrogram 1\t1\t{begin:.3}\t{:.3}\t{low:.1}\t{high:.1}\t{}\t{:.4}\t{}\t{begin:.3}",
            self.selections,
            begin + duration,
            cell(&rec.label),
            rec.confidence,
            self.begin_path,
        )?;
        Ok(())
    }
}

impl<W: Write> EventSink for RavenWriter<W> {
    /// Only end records make rows: a selection needs both ends.
    fn emit(&mut self, rec: &CallRecord) -> anyhow::Result<()> {
        if rec.phase != CallPhase::End {
            return Ok(());
        }
        self.write_row(rec)
            .with_context(|| format!("writing call {} to {}", rec.id, self.name))
    }

    fn close(&mut self) -> anyhow::Result<()> {
        self.out
            .flush()
            .with_context(|| format!("flushing {}", self.name))
    }
}

/// A tab or line break inside a value would shift every later column.
fn cell(text: &str) -> String {
    text.replace(['\t', '\r', '\n'], " ")
}

/// One row of a selection table, as ground truth for evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// Begin time in seconds from the file start.
    pub begin_s: f64,
    /// End time in seconds from the file start.
    pub end_s: f64,
    /// Lower band edge, when the table has one.
    pub low_hz: Option<f64>,
    /// Upper band edge, when the table has one.
    pub high_hz: Option<f64>,
    /// The class column's value; `None` when empty.
    pub class: Option<String>,
}

/// Why a selection table could not be read; every variant names the file,
/// and row problems the line.
#[derive(Debug, thiserror::Error)]
pub enum RavenError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The table.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The header lacks a column the caller needs.
    #[error("{}:1: no column {column:?} in the header", path.display())]
    MissingColumn {
        /// The table.
        path: PathBuf,
        /// The column looked for.
        column: String,
    },
    /// A row is malformed.
    #[error("{}:{line}: {problem}", path.display())]
    Row {
        /// The table.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
}

/// Reads the selections of a Raven table, taking the class from
/// `class_column`. Tolerates a BOM, CRLF line ends, extra columns, missing
/// frequency columns, blank lines and Raven's duplicate rows of one
/// selection in several views (the first is kept).
pub fn read_selection_table(path: &Path, class_column: &str) -> Result<Vec<Selection>, RavenError> {
    let bytes = std::fs::read(path).map_err(|source| RavenError::Io {
        path: path.to_owned(),
        source,
    })?;
    // Tables written on Windows may hold non-UTF-8 class names; the numbers
    // are ASCII either way.
    let text = String::from_utf8_lossy(&bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines = text.lines().enumerate().map(|(i, line)| (i + 1, line));
    let header: Vec<&str> = lines
        .next()
        .map(|(_, line)| line.split('\t').map(str::trim).collect())
        .unwrap_or_default();
    let find = |column: &str| header.iter().position(|&name| name == column);
    let require = |column: &str| {
        find(column).ok_or_else(|| RavenError::MissingColumn {
            path: path.to_owned(),
            column: column.to_owned(),
        })
    };
    let begin = require(BEGIN_COLUMN)?;
    let end = require(END_COLUMN)?;
    let class = require(class_column)?;
    let low = find(LOW_COLUMN);
    let high = find(HIGH_COLUMN);
    let selection = find(SELECTION_COLUMN);

    let mut seen = HashSet::new();
    let mut selections = Vec::new();
    for (line, text) in lines {
        if text.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = text.split('\t').map(str::trim).collect();
        let row_error = |problem: String| RavenError::Row {
            path: path.to_owned(),
            line,
            problem,
        };
        let get = |column: Option<usize>| column.and_then(|i| cells.get(i).copied());
        if let Some(id) = get(selection)
            && !seen.insert(id.to_owned())
        {
            continue;
        }
        let number = |column: Option<usize>, name: &str| -> Result<Option<f64>, RavenError> {
            match get(column) {
                None | Some("") => Ok(None),
                Some(value) => value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(Some)
                    .ok_or_else(|| row_error(format!("{name} {value:?} is not a number"))),
            }
        };
        let required = |column: usize, name: &str| {
            number(Some(column), name)?.ok_or_else(|| row_error(format!("{name} is missing")))
        };
        let begin_s = required(begin, BEGIN_COLUMN)?;
        let end_s = required(end, END_COLUMN)?;
        if end_s < begin_s {
            return Err(row_error(format!(
                "{END_COLUMN} {end_s} is before {BEGIN_COLUMN} {begin_s}"
            )));
        }
        selections.push(Selection {
            begin_s,
            end_s,
            low_hz: number(low, LOW_COLUMN)?,
            high_hz: number(high, HIGH_COLUMN)?,
            class: get(Some(class))
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
        });
    }
    Ok(selections)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::event::test_context;
    use crate::detect::{CallEvent, EndReason};

    fn record(phase: CallPhase, label: usize, start_frame: u64, end_frame: u64) -> CallRecord {
        let ctx = test_context(&["bg", "rumble", "trumpet", "growl"]);
        let ev = CallEvent {
            phase,
            call: 0,
            track: None,
            label,
            confidence: 0.87654,
            scores: vec![0.1, 0.87654, 0.0, 0.0],
            start_frame,
            end_frame: Some(end_frame),
            end_reason: Some(EndReason::Quiet),
        };
        CallRecord::from_event(&ev, &ctx, 0)
    }

    fn write_table(dir: &Path, records: &[CallRecord]) -> PathBuf {
        let table = dir.join("a.Table.1.selections.txt");
        let file = std::fs::File::create(&table).expect("create");
        let mut writer = RavenWriter::new(
            file,
            table.display().to_string(),
            Path::new("/data/a.wav"),
            4000.0,
        )
        .expect("header");
        for rec in records {
            writer.emit(rec).expect("emit");
        }
        writer.close().expect("close");
        table
    }

    #[test]
    fn writes_one_row_per_end_with_capped_bands() {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = write_table(
            dir.path(),
            &[
                record(CallPhase::Start, 1, 10, 20),
                record(CallPhase::End, 1, 10, 20),
                record(CallPhase::End, 2, 100, 103),
                record(CallPhase::End, 3, 200, 210),
            ],
        );
        let text = std::fs::read_to_string(&table).expect("read");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], HEADER);
        assert_eq!(
            lines[1],
            "1\tSpectrogram 1\t1\t1.600\t3.200\t5.0\t500.0\trumble\t0.8765\t/data/a.wav\t1.600"
        );
        assert_eq!(
            lines[2],
            "2\tSpectrogram 1\t1\t16.000\t16.480\t300.0\t4000.0\ttrumpet\t0.8765\t/data/a.wav\t16.000"
        );
        assert!(lines[3].contains("\t0.0\t4000.0\tgrowl\t"), "{}", lines[3]);
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = write_table(
            dir.path(),
            &[
                record(CallPhase::End, 1, 10, 20),
                record(CallPhase::End, 2, 100, 103),
            ],
        );
        let read = read_selection_table(&table, "Class").expect("reads");
        assert_eq!(
            read,
            [
                Selection {
                    begin_s: 1.6,
                    end_s: 3.2,
                    low_hz: Some(5.0),
                    high_hz: Some(500.0),
                    class: Some("rumble".into()),
                },
                Selection {
                    begin_s: 16.0,
                    end_s: 16.48,
                    low_hz: Some(300.0),
                    high_hz: Some(4000.0),
                    class: Some("trumpet".into()),
                },
            ]
        );
    }

    #[test]
    fn reader_tolerates_bom_crlf_extra_columns_views_and_no_bands() {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = dir.path().join("truth.txt");
        let text = "\u{feff}Selection\tView\tBegin Time (s)\tEnd Time (s)\tNotes\tCall Type\r\n\
                    1\tWaveform 1\t1.5\t2.5\tloud\trumble\r\n\
                    1\tSpectrogram 1\t1.5\t2.5\tloud\trumble\r\n\
                    \r\n\
                    2\tSpectrogram 1\t4\t6\t\t\r\n";
        std::fs::write(&table, text).expect("write");
        let read = read_selection_table(&table, "Call Type").expect("reads");
        assert_eq!(
            read,
            [
                Selection {
                    begin_s: 1.5,
                    end_s: 2.5,
                    low_hz: None,
                    high_hz: None,
                    class: Some("rumble".into()),
                },
                Selection {
                    begin_s: 4.0,
                    end_s: 6.0,
                    low_hz: None,
                    high_hz: None,
                    class: None,
                },
            ]
        );
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = dir.path().join("bad.txt");
        std::fs::write(
            &table,
            "Begin Time (s)\tEnd Time (s)\tClass\n1\t2\tx\n3\tsoon\tx\n",
        )
        .expect("write");
        let err = read_selection_table(&table, "Class")
            .expect_err("bad number")
            .to_string();
        assert!(
            err.starts_with(&format!("{}:3: ", table.display())),
            "{err}"
        );
        assert!(err.contains("End Time (s) \"soon\""), "{err}");

        let err = read_selection_table(&table, "Species")
            .expect_err("no column")
            .to_string();
        assert!(err.contains(":1: no column \"Species\""), "{err}");

        let missing = dir.path().join("missing.txt");
        let err = read_selection_table(&missing, "Class").expect_err("no file");
        assert!(matches!(err, RavenError::Io { .. }));
        assert!(err.to_string().contains("missing.txt"));
    }
}
