//! Shared by the eval, evidence and plot tests: running the binary, the
//! demo recording, call records and PNG sizes. Each test binary uses a
//! different part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rumbled::detect::{CallEvent, CallPhase, CallRecord, EndReason, StreamContext};

/// Runs `rumbled` with `args`, RUST_LOG unset so logs are the config's.
pub fn rumbled(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rumbled"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run rumbled")
}

/// Standard error of a run, for assertion messages.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The shipped 60 s demo recording (16 kHz, 16-bit).
pub fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo/demo.wav")
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Width and height of a PNG file, which must decode.
pub fn png_size(path: &Path) -> (u32, u32) {
    let file = std::fs::File::open(path).expect("png");
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let reader = decoder.read_info().expect("a valid PNG");
    (reader.info().width, reader.info().height)
}

/// The end record of a `label` call from `begin` to `end` seconds into
/// `source`, with id `st01-<code>` (`code`: 12 Crockford characters). Built
/// through the detector's own constructor, then placed and named.
pub fn end_record(source: &str, begin: f64, end: f64, label: &str, code: &str) -> CallRecord {
    let ctx = StreamContext {
        station: "st01".into(),
        source_kind: "file".into(),
        source_name: source.into(),
        model_name: "m".into(),
        model_version: "1".into(),
        labels: vec!["not-call".into(), "rumble".into(), "trumpet".into()],
        background: Some(0),
        frame_s: 0.16,
        anchor: None,
        offset_base_s: 0.0,
    };
    let event = CallEvent {
        phase: CallPhase::End,
        call: 0,
        track: None,
        label: 1,
        confidence: 0.8,
        scores: vec![0.1, 0.8, 0.1],
        start_frame: 0,
        end_frame: Some(1),
        end_reason: Some(EndReason::Quiet),
    };
    let mut record = CallRecord::from_event(&event, &ctx, 1);
    record.id = format!("st01-{code}");
    record.label = label.into();
    record.offset_s = begin;
    record.duration_s = Some(end - begin);
    record
}
