//! `rumbled eval` on hand-built cases whose every number is known exactly,
//! and on a replay of the demo recording against its annotations.

mod evidence_support;

use std::path::{Path, PathBuf};

use evidence_support::{rumbled, s, stderr};
use rumbled::detect::{CallPhase, CallRecord};
use serde_json::Value;

/// An end record of a call in `source` from `begin` to `end` seconds.
fn end_record(source: &str, begin: f64, end: f64, label: &str) -> CallRecord {
    let code = format!("{:012}", (begin * 1000.0) as u64);
    evidence_support::end_record(source, begin, end, label, &code)
}

/// A JSONL file of `records`, each preceded by a start record the
/// evaluation must skip.
fn write_events(path: &Path, records: &[CallRecord]) {
    let mut text = String::new();
    for r in records {
        let start = CallRecord {
            phase: CallPhase::Start,
            duration_s: None,
            ..r.clone()
        };
        for rec in [start, r.clone()] {
            text.push_str(&serde_json::to_string(&rec).expect("serialise"));
            text.push('\n');
        }
    }
    std::fs::write(path, text).expect("write events");
}

/// A Raven table with the class in a "Call Type" column, one row per
/// (begin, end, class), each repeated in a second view as Raven does.
fn write_truth(path: &Path, rows: &[(f64, f64, &str)]) {
    let mut text =
        String::from("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tCall Type\n");
    for (i, (b, e, c)) in rows.iter().enumerate() {
        for view in ["Waveform 1", "Spectrogram 1"] {
            text.push_str(&format!("{}\t{view}\t1\t{b}\t{e}\t{c}\n", i + 1));
        }
    }
    std::fs::write(path, text).expect("write truth");
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(v: &Value, expected: f64) {
    assert!((num(v) - expected).abs() < 1e-9, "{v} != {expected}");
}

/// The entry for class `name` in a report's list of per-class results.
fn class_entry(classes: &Value, name: &str) -> Value {
    classes
        .as_array()
        .expect("classes")
        .iter()
        .find(|c| c["class"] == name)
        .unwrap_or_else(|| panic!("no class {name}"))
        .clone()
}

/// Runs `rumbled eval` with `args` and `--json -`, expecting success and
/// nothing on standard output but the report.
fn eval_json(args: &[&str]) -> (Value, String) {
    let out = rumbled(&[&["eval"], args, &["--json", "-"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let report = serde_json::from_slice(&out.stdout).expect("stdout is only the JSON");
    (report, stderr(&out))
}

/// Runs `rumbled eval` with `args`, expecting the usage error (exit 2)
/// that mentions `message`.
fn eval_fails(args: &[&str], message: &str) {
    let out = rumbled(&[&["eval"], args].concat());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(message), "{}", stderr(&out));
}

/// The hand-built case: four annotated calls (a fifth, "bird", mapped
/// out) and five detections.
///
/// | truth             | detection           | IoU   | outcome                    |
/// |-------------------|---------------------|-------|----------------------------|
/// | 1-3 Rumble        | 1.2-3 rumble        | 0.9   | match, label right         |
/// | 5-6 ru (rumble)   | 5-6.5 trumpet       | 0.667 | match, label wrong         |
/// | 8-9 Trumpet       | 8.5-9 trumpet       | 0.5   | match (threshold inclusive)|
/// | 12-14 rumble      |                     |       | missed                     |
/// | 15-16 bird        | 15-16 roar          |       | false alarm (bird dropped) |
/// |                   | 20-21 rumble        |       | false alarm                |
fn hand_built(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let truth = dir.join("rec1.Table.1.selections.txt");
    write_truth(
        &truth,
        &[
            (1.0, 3.0, "Rumble"),
            (5.0, 6.0, "ru"),
            (8.0, 9.0, "Trumpet"),
            (12.0, 14.0, "rumble"),
            (15.0, 16.0, "bird"),
        ],
    );
    let events = dir.join("e.jsonl");
    write_events(
        &events,
        &[
            end_record("rec1.wav", 1.2, 3.0, "rumble"),
            end_record("rec1.wav", 5.0, 6.5, "trumpet"),
            end_record("rec1.wav", 8.5, 9.0, "trumpet"),
            end_record("rec1.wav", 15.0, 16.0, "roar"),
            end_record("rec1.wav", 20.0, 21.0, "rumble"),
        ],
    );
    // 25 frames of 1 s. Positives by frame centre: rumble {1,2,5,12,13},
    // trumpet {8}; frame 15 (bird) is a negative.
    let frames = dir.join("f.csv");
    let mut csv = String::from("frame,time_s,not-call,rumble,trumpet\n");
    for g in 0..25 {
        let rumble = match g {
            1 | 2 | 5 | 12 => 0.9,
            13 | 15 => 0.3,
            20 => 0.6,
            _ => 0.1,
        };
        let trumpet = match g {
            8 => 0.7,
            3 => 0.8,
            _ => 0.2,
        };
        csv.push_str(&format!("{g},{g}.000,0.5,{rumble},{trumpet}\n"));
    }
    std::fs::write(&frames, csv).expect("write frames");
    (truth, events, frames)
}

#[test]
fn hand_built_case_gives_the_known_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (truth, events, frames) = hand_built(dir.path());
    let json = dir.path().join("report.json");
    let out = rumbled(&[
        "eval",
        "--truth",
        s(&truth),
        "--detections",
        s(&events),
        "--frames",
        s(&frames),
        "--class-column",
        "Call Type",
        "--map",
        "ru=rumble",
        "--map",
        "bird=",
        "--duration-s",
        "3600",
        "--json",
        s(&json),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parses");
    assert_eq!(r["schema"], "rumbled.eval/1");

    let e = &r["events"];
    assert_eq!(
        (e["truth"].as_u64(), e["detections"].as_u64()),
        (Some(4), Some(5))
    );
    assert_eq!(
        (
            e["matched"].as_u64(),
            e["missed"].as_u64(),
            e["false_alarms"].as_u64()
        ),
        (Some(3), Some(1), Some(2))
    );
    close(&e["precision"], 0.6);
    close(&e["recall"], 0.75);
    close(&e["f1"], 2.0 / 3.0);
    close(&e["false_alarms_per_hour"], 2.0);

    let labels = &r["labels"];
    assert_eq!(labels["matched_labelled"], 3);
    close(&labels["accuracy"], 2.0 / 3.0);
    assert_eq!(
        labels["confusion_labels"],
        serde_json::json!(["roar", "rumble", "trumpet", "(none)"])
    );
    assert_eq!(
        labels["confusion"],
        serde_json::json!([[0, 0, 0, 0], [0, 1, 1, 1], [0, 0, 1, 0], [1, 1, 0, 0]])
    );

    let class = |name: &str| class_entry(&r["classes"], name);
    let rumble = class("rumble");
    assert_eq!(
        (
            rumble["truth"].as_u64(),
            rumble["detected"].as_u64(),
            rumble["correct"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    close(&rumble["precision"], 0.5);
    close(&rumble["recall"], 1.0 / 3.0);
    let trumpet = class("trumpet");
    close(&trumpet["precision"], 0.5);
    close(&trumpet["recall"], 1.0);
    assert!(class("roar")["recall"].is_null(), "no roar was annotated");

    let onset = &r["timing"]["onset"];
    assert_eq!(onset["n"], 3);
    close(&onset["mean"], 0.7 / 3.0);
    close(&onset["median"], 0.2);
    close(&onset["min"], 0.0);
    close(&onset["max"], 0.5);
    let offset = &r["timing"]["offset"];
    close(&offset["median"], 0.0);
    close(&offset["mean_abs"], 0.5 / 3.0);

    let fw = &r["framewise"];
    assert_eq!(fw["frames"], 25);
    close(&fw["frame_s"], 1.0);
    let frame_class = |name: &str| class_entry(&fw["classes"], name);
    // Worked out in the table above: see the comments in hand_built.
    let call = frame_class("call");
    assert_eq!(call["positives"], 6);
    close(&call["ap"], 33.0 / 36.0);
    close(&call["auc"], 110.5 / 114.0);
    let rumble = frame_class("rumble");
    assert_eq!(rumble["positives"], 5);
    close(&rumble["ap"], 0.8 + 1.0 / 7.0);
    close(&rumble["auc"], 0.985);
    let trumpet = frame_class("trumpet");
    close(&trumpet["ap"], 0.5);
    close(&trumpet["auc"], 23.0 / 24.0);

    // The same numbers in the table on standard output.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("precision 0.600  recall 0.750  F1 0.667"),
        "{text}"
    );
    assert!(text.contains("false alarms 2 (2.00 per hour)"), "{text}");
    assert!(
        text.contains("accuracy 0.667 on 3 matched labelled calls"),
        "{text}"
    );
}

#[test]
fn iou_threshold_and_json_on_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (truth, events, _) = hand_built(dir.path());
    // Above 0.5 the trumpet at IoU 0.5 no longer matches; without --map,
    // "ru" and "bird" are classes of their own and the bird call is
    // matched by the roar detection.
    let (r, _) = eval_json(&[
        "--truth",
        s(&truth),
        "--detections",
        s(&events),
        "--class-column",
        "Call Type",
        "--iou",
        "0.6",
    ]);
    assert_eq!(r["events"]["truth"], 5);
    assert_eq!(r["events"]["matched"], 3);
    assert!(
        r["events"]["false_alarms_per_hour"].is_null(),
        "duration unknown"
    );
    assert!(r["framewise"].is_null());
    let confusion_labels = r["labels"]["confusion_labels"]
        .as_array()
        .expect("labels")
        .clone();
    for name in ["bird", "ru", "rumble"] {
        assert!(confusion_labels.contains(&Value::from(name)), "{name}");
    }
}

#[test]
fn several_recordings_pair_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("20240312_183000.Table.1.selections.txt");
    let b = dir.path().join("site2.rumbled.selections.txt");
    let c = dir.path().join("quiet.Table.1.selections.txt");
    write_truth(&a, &[(1.0, 2.0, "rumble")]);
    write_truth(&b, &[(3.0, 4.0, "trumpet"), (6.0, 7.0, "trumpet")]);
    write_truth(&c, &[(1.0, 2.0, "rumble")]);
    let events = dir.path().join("e.jsonl");
    write_events(
        &events,
        &[
            end_record("20240312_183000.WAV", 1.0, 2.0, "rumble"),
            end_record("site2.flac", 3.0, 4.0, "trumpet"),
            end_record("unannotated.wav", 3.0, 4.0, "trumpet"),
        ],
    );
    let (r, err) = eval_json(&[
        "--truth",
        s(&a),
        "--truth",
        s(&b),
        "--truth",
        s(&c),
        "--detections",
        s(&events),
        "--class-column",
        "Call Type",
    ]);
    let names: Vec<&str> = r["recordings"]
        .as_array()
        .expect("recordings")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["20240312_183000", "site2", "quiet"]);
    assert_eq!(r["events"]["truth"], 4);
    assert_eq!(
        r["events"]["detections"], 2,
        "the unannotated recording is left out"
    );
    assert_eq!(r["events"]["matched"], 2);
    assert!(
        err.contains("unannotated") && err.contains("quiet"),
        "both are warned about: {err}"
    );

    // Two tables for one recording is a mistake, not a guess.
    let a2 = dir.path().join("20240312_183000.Table.2.selections.txt");
    write_truth(&a2, &[]);
    eval_fails(
        &[
            "--truth",
            s(&a),
            "--truth",
            s(&a2),
            "--detections",
            s(&events),
            "--class-column",
            "Call Type",
        ],
        "two truth tables",
    );
}

#[test]
fn bad_inputs_name_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (truth, events, _) = hand_built(dir.path());
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"not\": \"a record\"}\n").expect("write");
    eval_fails(
        &["--truth", s(&truth), "--detections", s(&bad)],
        "bad.jsonl:1:",
    );
    eval_fails(
        &[
            "--truth",
            s(&truth),
            "--detections",
            s(&events),
            "--class-column",
            "Species",
        ],
        "no column \"Species\"",
    );
    eval_fails(
        &[
            "--truth",
            s(&truth),
            "--detections",
            s(&events),
            "--map",
            "rumble",
        ],
        "FROM=TO",
    );

    let out = rumbled(&["eval", "--truth", s(&truth)]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "detections or a replay are required"
    );
}

#[test]
fn replay_mode_runs_the_detector_and_scores_frames() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo");
    let (r, _) = eval_json(&[
        "--truth",
        s(&demo.join("demo.selections.txt")),
        "--replay",
        s(&demo.join("demo.wav")),
    ]);
    assert_eq!(r["recordings"][0]["name"], "demo");
    close(&r["audio_s"], 60.0);
    assert_eq!(r["events"]["truth"], 12, "the demo's annotations");
    let fw = &r["framewise"];
    assert_eq!(fw["frames"], 374, "every 160 ms output frame of 60 s");
    for c in fw["classes"].as_array().expect("classes") {
        for key in ["ap", "auc"] {
            let v = num(&c[key]);
            assert!((0.0..=1.0).contains(&v), "{c}");
        }
    }
}
