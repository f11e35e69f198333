//! `rumbled replay` from the outside: outputs, anchoring, and bad input in a
//! batch (each failure named, the other files still processed, exit code 1).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rumbled::detect::{CallPhase, CallRecord};

fn rumbled(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rumbled"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run rumbled")
}

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo/demo.wav")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read_events(path: &Path) -> Vec<CallRecord> {
    std::fs::read_to_string(path)
        .expect("events file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is a call record"))
        .collect()
}

/// Samples of the demo, for building variants of it.
fn demo_samples() -> (hound::WavSpec, Vec<i16>) {
    let mut reader = hound::WavReader::open(demo()).expect("demo");
    let spec = reader.spec();
    let samples = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .expect("demo samples");
    (spec, samples)
}

#[test]
fn replay_writes_events_raven_and_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("e.jsonl");
    let frames = dir.path().join("f.csv");
    let out = rumbled(&[
        "replay",
        s(&demo()),
        "--events",
        s(&events),
        "--raven",
        s(dir.path()),
        "--frames",
        s(&frames),
        "--station",
        "st07",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stderr(&out);
    assert!(
        summary.contains("1 file") && summary.contains("real time"),
        "{summary}"
    );

    let records = read_events(&events);
    let ends: Vec<&CallRecord> = records
        .iter()
        .filter(|r| r.phase == CallPhase::End)
        .collect();
    let starts = records
        .iter()
        .filter(|r| r.phase == CallPhase::Start)
        .count();
    assert_eq!(starts, ends.len(), "every start has an end");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.schema, "rumbled.call/1");
        assert_eq!(r.seq, i as u64 + 1);
        assert_eq!(r.station, "st07");
        assert!(r.id.starts_with("st07-"));
        assert_eq!(r.source.name, "demo.wav");
        assert!(r.start.is_none(), "demo.wav has no time stamp in its name");
    }

    let table = std::fs::read_to_string(dir.path().join("demo.rumbled.selections.txt"))
        .expect("raven table");
    let mut lines = table.lines();
    assert_eq!(
        lines.next(),
        Some(
            "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tClass\tConfidence\tBegin Path\tFile Offset (s)"
        )
    );
    assert_eq!(lines.count(), ends.len(), "one selection per call");

    let csv = std::fs::read_to_string(&frames).expect("frames csv");
    let (spec, samples) = demo_samples();
    assert_eq!(spec.sample_rate, 16_000);
    let expected_frames = ((samples.len() - 400) / 160 + 1) / 16;
    assert_eq!(csv.lines().count(), expected_frames + 1);
    assert!(csv.starts_with("frame,time_s,not-call,rumble,roar,cry,trumpet\n"));
}

#[test]
fn audiomoth_names_and_start_time_anchor_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let named = dir.path().join("20240312_183000.WAV");
    std::fs::copy(demo(), &named).expect("copy");
    let events = dir.path().join("e.jsonl");
    let out = rumbled(&["replay", s(&named), "--events", s(&events), "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let records = read_events(&events);
    assert!(!records.is_empty(), "the demo has calls");
    for r in &records {
        let start = r.start.as_deref().expect("anchored start");
        assert!(
            start.starts_with("2024-03-12T18:3") && start.ends_with('Z'),
            "{start}"
        );
    }

    let plain = dir.path().join("plain.wav");
    std::fs::copy(demo(), &plain).expect("copy");
    let out = rumbled(&[
        "replay",
        s(&plain),
        "--events",
        s(&events),
        "-q",
        "--start-time",
        "2026-01-02T03:04:05Z",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = &read_events(&events)[0];
    let expected = format!("2026-01-02T03:04:{:06.3}Z", 5.0 + first.offset_s);
    assert_eq!(first.start.as_deref(), Some(expected.as_str()));

    let out = rumbled(&["replay", s(&plain), "--start-time", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--start-time"), "{}", stderr(&out));
}

#[test]
fn a_picked_channel_gives_the_same_calls_as_the_mono_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, samples) = demo_samples();
    let stereo = dir.path().join("stereo.wav");
    let mut writer = hound::WavWriter::create(
        &stereo,
        hound::WavSpec {
            channels: 2,
            ..spec
        },
    )
    .expect("create");
    for &x in &samples {
        writer.write_sample(x / 7).expect("write"); // channel 0: something else
        writer.write_sample(x).expect("write"); // channel 1: the demo
    }
    writer.finalize().expect("finalize");
    let mono_events = dir.path().join("mono.jsonl");
    let picked_events = dir.path().join("picked.jsonl");
    assert!(
        rumbled(&["replay", s(&demo()), "--events", s(&mono_events), "-q"])
            .status
            .success()
    );
    let out = rumbled(&[
        "replay",
        s(&stereo),
        "--channel",
        "1",
        "--events",
        s(&picked_events),
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = |r: &CallRecord| {
        (
            r.phase,
            r.label.clone(),
            r.offset_s,
            r.duration_s,
            r.confidence,
        )
    };
    let mono: Vec<_> = read_events(&mono_events).iter().map(key).collect();
    let picked: Vec<_> = read_events(&picked_events).iter().map(key).collect();
    assert_eq!(mono, picked);

    let out = rumbled(&["replay", s(&stereo), "--channel", "2", "-q"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("stereo.wav"), "{}", stderr(&out));
}

/// A WAV header claiming `channels` channels, with a little data.
fn wav_with_channels(path: &Path, channels: u16) {
    let mut bytes = Vec::new();
    let data_len: u32 = 64;
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&channels.to_le_bytes());
    bytes.extend_from_slice(&16_000u32.to_le_bytes());
    bytes.extend_from_slice(&(16_000u32 * 2 * u32::from(channels)).to_le_bytes());
    bytes.extend_from_slice(&(2 * channels).to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    bytes.extend(std::iter::repeat_n(0u8, data_len as usize));
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn bad_files_in_a_batch_are_named_and_the_rest_still_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let missing = d.join("missing.wav");
    let text = d.join("notes.wav");
    std::fs::write(&text, "field notes, not audio\n").expect("write");
    let empty = d.join("empty.wav");
    std::fs::write(&empty, b"").expect("write");
    let truncated = d.join("truncated.wav");
    let demo_bytes = std::fs::read(demo()).expect("demo");
    std::fs::write(&truncated, &demo_bytes[..demo_bytes.len() / 2 + 1]).expect("write");
    let nan = d.join("nan.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(&nan, spec).expect("create");
    for i in 0..32_000 {
        w.write_sample(if i == 20_000 { f32::NAN } else { 0.01 })
            .expect("write");
    }
    w.finalize().expect("finalize");
    let many = d.join("many_channels.wav");
    wav_with_channels(&many, 1000);
    let events = d.join("e.jsonl");

    let files = [&missing, &text, &empty, &truncated, &nan, &many, &demo()];
    let mut args = vec!["replay", "-q", "--events", s(&events)];
    args.extend(files.iter().map(|p| s(p)));
    let out = rumbled(&args);
    assert_eq!(out.status.code(), Some(1), "some files failed: exit 1");
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    for name in [
        "missing.wav",
        "notes.wav",
        "empty.wav",
        "truncated.wav",
        "nan.wav",
        "many_channels.wav",
    ] {
        assert!(err.contains(name), "no message names {name}:\n{err}");
    }
    assert!(err.contains("7 files (6 failed)"), "{err}");
    let records = read_events(&events);
    assert!(
        records.iter().any(|r| r.source.name == "demo.wav"),
        "the good file was still processed"
    );
    // Calls heard before the damage in the truncated copy are kept and closed.
    let cut: Vec<_> = records
        .iter()
        .filter(|r| r.source.name == "truncated.wav")
        .collect();
    let cut_starts = cut.iter().filter(|r| r.phase == CallPhase::Start).count();
    let cut_ends = cut.iter().filter(|r| r.phase == CallPhase::End).count();
    assert_eq!(cut_starts, cut_ends);
}

#[test]
fn setup_errors_exit_2_with_a_reason() {
    let out = rumbled(&["replay", s(&demo()), "--model", "/nonexistent/model.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/model.json"),
        "{}",
        stderr(&out)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("libonnxruntime.so.1");
    std::fs::write(&fake, b"not a shared library").expect("write");
    let out = rumbled(&["replay", s(&demo()), "--onnxruntime", s(&fake)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(s(&fake)) && err.contains("fetch-onnxruntime.sh"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let bad_config = dir.path().join("bad.toml");
    std::fs::write(&bad_config, "[endpoint]\noffset = 0.9\n").expect("write");
    let out = rumbled(&["replay", s(&demo()), "--config", s(&bad_config)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("bad.toml") && err.contains("endpoint.offset"),
        "{err}"
    );
}

#[test]
fn check_config_validates_and_prints() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rumbled.toml");
    let out = rumbled(&["check-config", s(&example)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("hop_frames = 13"));

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("typo.toml");
    std::fs::write(&bad, "[model]\nthreds = 2\n").expect("write");
    let out = rumbled(&["check-config", s(&bad)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("typo.toml") && stderr(&out).contains("threds"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn model_command_describes_the_default_model() {
    let out = rumbled(&["model"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rumbled-edge-ev5")
            && text.contains("sha256 verified")
            && text.contains("2000 Hz and up"),
        "{text}"
    );
}

/// The first 12 s of the demo with `gain` applied in 16 bits, so whatever
/// goes past full scale is clipped as a recorder would clip it.
fn demo_with_gain(path: &Path, gain: f32) {
    let (spec, samples) = demo_samples();
    let mut writer = hound::WavWriter::create(path, spec).expect("create wav");
    for &x in samples.iter().take((spec.sample_rate * 12) as usize) {
        let y = (f32::from(x) * gain).clamp(-32768.0, 32767.0);
        writer.write_sample(y as i16).expect("write sample");
    }
    writer.finalize().expect("finalize");
}

#[test]
fn clipped_recordings_are_warned_about_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hot, ok) = (dir.path().join("hot.wav"), dir.path().join("ok.wav"));
    // The demo's first 12 s peak at a fifth of full scale: +46 dB puts
    // most of their samples there, the original none.
    demo_with_gain(&hot, 200.0);
    demo_with_gain(&ok, 1.0);
    let warning = the_one_warning(&hot, &ok, "at full scale");
    assert!(
        warning.contains("hot.wav") && warning.contains("lower the recorder's input gain"),
        "{warning}"
    );
}

/// Replays `warned` and `clean` in one batch; the one warning line that
/// contains `needle`, after checking the summary counts one file warned.
fn the_one_warning(warned: &Path, clean: &Path, needle: &str) -> String {
    let out = rumbled(&["replay", s(warned), s(clean), "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(needle)).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(log.contains("2 files (1 with warnings)"), "{log}");
    warnings[0].to_owned()
}

/// `seconds` of the demo, decimated (without a filter: only the rate
/// matters here) to `rate` Hz.
fn demo_at_rate(path: &Path, rate: u32, seconds: u32) {
    let (spec, samples) = demo_samples();
    let step = (spec.sample_rate / rate) as usize;
    let spec = hound::WavSpec {
        sample_rate: rate,
        ..spec
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create wav");
    for &x in samples.iter().step_by(step).take((rate * seconds) as usize) {
        writer.write_sample(x).expect("write sample");
    }
    writer.finalize().expect("finalize");
}

#[test]
fn recordings_below_the_models_training_rates_are_warned_about_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (low, ok) = (dir.path().join("low-1k.wav"), dir.path().join("ok-2k.wav"));
    demo_at_rate(&low, 1000, 12);
    demo_at_rate(&ok, 2000, 12);
    let warning = the_one_warning(&low, &ok, "lowest recorder rate");
    assert!(
        warning.contains("low-1k.wav") && warning.contains("1000 Hz is below 2000 Hz"),
        "{warning}"
    );
}

/// Calls `rumbled replay` finds in the demo with `args` added.
fn demo_calls(dir: &Path, args: &[&str]) -> usize {
    let (events, demo) = (dir.join("calls.jsonl"), demo());
    let mut all = vec!["replay", s(&demo), "-q", "--events", s(&events)];
    all.extend_from_slice(args);
    let out = rumbled(&all);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    read_events(&events)
        .iter()
        .filter(|r| r.phase == CallPhase::End)
        .count()
}

#[test]
fn a_models_recommended_endpoint_applies_where_the_station_sets_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let text = std::fs::read_to_string(models.join("rumbled-edge-ev5.json")).expect("manifest");
    let mut manifest: serde_json::Value = serde_json::from_str(&text).expect("json");
    manifest["onnx"] = s(&models.join("rumbled-edge-ev5.onnx")).into();
    // A model that wants near-certainty before it starts a call.
    manifest["endpoint"] = serde_json::json!({"onset": 0.999, "offset": 0.998});
    let strict = dir.path().join("strict.json");
    std::fs::write(&strict, manifest.to_string()).expect("write");

    let flags = demo_calls(
        dir.path(),
        &["--model", s(&strict), "--onset", "0.5", "--offset", "0.35"],
    );
    let recommended = demo_calls(dir.path(), &["--model", s(&strict)]);
    assert!(flags >= 5, "the demo holds 12 calls; found {flags}");
    assert!(
        recommended < flags,
        "the model's onset 0.999 found {recommended} calls, the flags' 0.5 {flags}"
    );
    // A config file that sets the thresholds wins over the model too.
    let config = dir.path().join("station.toml");
    std::fs::write(&config, "[endpoint]\nonset = 0.5\noffset = 0.35\n").expect("write");
    let configured = demo_calls(dir.path(), &["--model", s(&strict), "--config", s(&config)]);
    assert_eq!(configured, flags);

    let out = rumbled(&["model", "--model", s(&strict)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(r#"endpoint   {"offset":0.998,"onset":0.999}"#),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
