//! Reading what is evaluated: rumbled's JSONL events and per-frame
//! probability CSV, and pairing files with recordings by name.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::detect::CallRecord;

/// Why an input file could not be read; every variant names the file,
/// and row problems the line.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A line is malformed.
    #[error("{}:{line}: {problem}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
}

/// A recording's name as files refer to it: the file name without its
/// last extension (`20240312_183000.WAV` -> `20240312_183000`).
pub fn recording_key(file_name: &str) -> String {
    let name = Path::new(file_name).file_name().map_or_else(
        || file_name.to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_owned(),
        _ => name,
    }
}

/// Which of `keys` the file `path` belongs to: its name is the key, starts
/// with `key.` (Raven's `KEY.Table.1.selections.txt`, rumbled's
/// `KEY.rumbled.selections.txt`) or holds `.key.` (replay's per-recording
/// `frames.KEY.csv`). The longest such key wins, so `a.b` beats `a`.
pub fn pair_by_name(keys: &[String], path: &Path) -> Option<usize> {
    let name = path.file_name()?.to_string_lossy();
    keys.iter()
        .enumerate()
        .filter(|(_, key)| {
            *name == **key
                || name.starts_with(&format!("{key}."))
                || name.contains(&format!(".{key}."))
        })
        .max_by_key(|(_, key)| key.len())
        .map(|(i, _)| i)
}

/// The end records of a rumbled JSONL file, grouped by recording key in
/// the order they appear. Start and update records are skipped: an end
/// record carries the whole call.
pub fn read_detections(path: &Path) -> Result<BTreeMap<String, Vec<CallRecord>>, InputError> {
    let file = std::fs::File::open(path).map_err(|source| InputError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut by_recording: BTreeMap<String, Vec<CallRecord>> = BTreeMap::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| InputError::Io {
            path: path.to_owned(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let record: CallRecord = serde_json::from_str(&line).map_err(|e| InputError::Line {
            path: path.to_owned(),
            line: i + 1,
            problem: format!("not a rumbled.call/1 record: {e}"),
        })?;
        if !super::is_call_end(&record) {
            continue;
        }
        if record.duration_s.is_none() {
            return Err(InputError::Line {
                path: path.to_owned(),
                line: i + 1,
                problem: "end record without duration_s".into(),
            });
        }
        by_recording
            .entry(recording_key(&record.source.name))
            .or_default()
            .push(record);
    }
    Ok(by_recording)
}

/// Per-frame class probabilities of one recording.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameTrack {
    /// Class names, in column order.
    pub labels: Vec<String>,
    /// Column of the no-call class, if any.
    pub background: Option<usize>,
    /// Seconds per frame.
    pub frame_s: f64,
    /// Time of the first frame's start, seconds from the recording start.
    pub start_s: f64,
    /// `labels.len()` values per frame, frames in order without gaps.
    pub probs: Vec<f32>,
}

impl FrameTrack {
    /// Frames held.
    pub fn frames(&self) -> usize {
        self.probs.len().checked_div(self.labels.len()).unwrap_or(0)
    }
}

/// Reads a frame CSV written by `rumbled replay --frames`
/// (`frame,time_s,<label>,...`); the column named `background` (if there
/// is one) is the no-call class. Frame duration and the time of the first
/// frame come from the frame and time columns.
pub fn read_frames(path: &Path, background: &str) -> Result<FrameTrack, InputError> {
    let text = std::fs::read_to_string(path).map_err(|source| InputError::Io {
        path: path.to_owned(),
        source,
    })?;
    let line_error = |line: usize, problem: String| InputError::Line {
        path: path.to_owned(),
        line,
        problem,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header = lines.next().map(|(_, l)| split_csv(l)).ok_or_else(|| {
        line_error(
            1,
            "empty file; expected a header frame,time_s,<labels>".into(),
        )
    })?;
    if header.len() < 3 || header[0] != "frame" || header[1] != "time_s" {
        return Err(line_error(
            1,
            "header must be frame,time_s,<label>,... as `rumbled replay --frames` writes".into(),
        ));
    }
    let labels = header[2..].to_vec();
    let mut probs = Vec::new();
    let mut first: Option<(u64, f64)> = None;
    let mut last: Option<(u64, f64)> = None;
    for (i, line) in lines {
        let cells = split_csv(line);
        if cells.len() != header.len() {
            return Err(line_error(
                i + 1,
                format!("{} columns, the header has {}", cells.len(), header.len()),
            ));
        }
        let frame: u64 = cells[0].parse().map_err(|_| {
            line_error(i + 1, format!("frame {:?} is not a frame number", cells[0]))
        })?;
        let time: f64 = number(&cells[1])
            .ok_or_else(|| line_error(i + 1, format!("time_s {:?} is not a number", cells[1])))?;
        if let Some((previous, _)) = last
            && frame != previous + 1
        {
            return Err(line_error(
                i + 1,
                format!("frame {frame} follows frame {previous}; frames must be consecutive"),
            ));
        }
        for cell in &cells[2..] {
            let p = number(cell).ok_or_else(|| {
                line_error(i + 1, format!("probability {cell:?} is not a number"))
            })?;
            probs.push(p as f32);
        }
        first.get_or_insert((frame, time));
        last = Some((frame, time));
    }
    let (Some((f0, t0)), Some((f1, t1))) = (first, last) else {
        return Err(line_error(2, "no frames".into()));
    };
    if f1 == f0 {
        return Err(line_error(
            2,
            "a single frame: its duration cannot be told".into(),
        ));
    }
    let frame_s = (t1 - t0) / (f1 - f0) as f64;
    if frame_s <= 0.0 {
        return Err(line_error(2, "time_s does not increase with frame".into()));
    }
    Ok(FrameTrack {
        background: labels.iter().position(|l| l == background),
        labels,
        frame_s,
        start_s: t0,
        probs,
    })
}

fn number(cell: &str) -> Option<f64> {
    cell.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Splits one CSV line; fields may be quoted, with `""` for a quote.
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_pairing_by_name() {
        assert_eq!(recording_key("20240312_183000.WAV"), "20240312_183000");
        assert_eq!(recording_key("/data/a.b.flac"), "a.b");
        assert_eq!(recording_key("noext"), "noext");
        let keys = vec!["a".to_owned(), "a.b".to_owned(), "demo".to_owned()];
        let pair = |name: &str| pair_by_name(&keys, Path::new(name));
        assert_eq!(pair("a.Table.1.selections.txt"), Some(0));
        assert_eq!(pair("a.b.Table.1.selections.txt"), Some(1));
        assert_eq!(pair("/x/probs.demo.csv"), Some(2));
        assert_eq!(pair("demo"), Some(2));
        assert_eq!(pair("demonstration.txt"), None);
    }

    #[test]
    fn detections_are_end_records_of_heard_calls() {
        use crate::detect::event::test_context;
        use crate::detect::{CallEvent, CallPhase, EndReason};
        let ctx = test_context(&["not-call", "rumble"]);
        let event = |phase, start_frame, end_reason| CallEvent {
            phase,
            call: 0,
            track: None,
            label: 1,
            confidence: 0.9,
            scores: vec![0.1, 0.9],
            start_frame,
            end_frame: (phase == CallPhase::End).then_some(start_frame + 10),
            end_reason,
        };
        let lines: Vec<String> = [
            event(CallPhase::Start, 0, None),
            event(CallPhase::End, 0, Some(EndReason::Quiet)),
            event(CallPhase::Start, 50, None),
            event(CallPhase::End, 50, Some(EndReason::Retracted)),
        ]
        .iter()
        .map(|e| serde_json::to_string(&CallRecord::from_event(e, &ctx, 1)).expect("json"))
        .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("e.jsonl");
        std::fs::write(&path, lines.join("\n")).expect("write");
        let read = read_detections(&path).expect("reads");
        assert_eq!(read["a"].len(), 1, "the retracted start is no call");
        assert_eq!(read["a"][0].offset_s, 0.0);
    }

    #[test]
    fn csv_fields_may_be_quoted() {
        assert_eq!(split_csv(r#"a,"b, ""c""",d"#), ["a", "b, \"c\"", "d"]);
        assert_eq!(split_csv("1,2\r"), ["1", "2"]);
    }

    #[test]
    fn frames_csv_gives_labels_duration_and_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.csv");
        std::fs::write(
            &path,
            "frame,time_s,not-call,\"odd, one\"\n3,0.480,0.9,0.1\n4,0.640,0.8,0.2\n5,0.800,0.7,0.3\n",
        )
        .expect("write");
        let track = read_frames(&path, "not-call").expect("reads");
        assert_eq!(track.labels, ["not-call", "odd, one"]);
        assert_eq!(track.background, Some(0));
        assert!((track.frame_s - 0.16).abs() < 1e-9);
        assert!((track.start_s - 0.48).abs() < 1e-9);
        assert_eq!(track.frames(), 3);
        assert_eq!(track.probs, [0.9, 0.1, 0.8, 0.2, 0.7, 0.3]);

        std::fs::write(&path, "frame,time_s,a\n0,0.0,0.1\n2,0.32,0.2\n").expect("write");
        let err = read_frames(&path, "not-call").expect_err("gap").to_string();
        assert!(
            err.contains("f.csv:3:") && err.contains("consecutive"),
            "{err}"
        );
    }
}
