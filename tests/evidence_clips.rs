//! Per-call evidence: clips cut to the sample, pictures of the right size,
//! the disk quota (oldest first, foreign files untouched), and detection
//! going on when the evidence directory cannot be written.

mod evidence_support;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use evidence_support::{demo, end_record, png_size, rumbled, s, stderr};
use rumbled::detect::{CallPhase, CallRecord, EndReason};
use rumbled::evidence::{ClipFormat, EvidenceConfig, EvidenceWriter};
use serde_json::Value;

/// The end record of a call heard `begin..end` seconds into the stream of
/// the microphone `mic`.
fn mic_call(begin: f64, end: f64, label: &str, code: &str) -> CallRecord {
    end_record("mic", begin, end, label, code)
}

fn config(dir: &Path) -> EvidenceConfig {
    EvidenceConfig {
        enabled: true,
        dir: dir.to_owned(),
        pre_roll_s: 1.0,
        post_roll_s: 0.5,
        format: ClipFormat::Wav,
        spectrogram: true,
        max_disk_mb: 100,
    }
}

/// Sample i of the ramp decodes (as 16-bit) to i mod 32768, so a clip's
/// samples say exactly where they came from.
fn ramp(range: std::ops::Range<usize>) -> Vec<f32> {
    range.map(|i| (i % 32_768) as f32 / 32_768.0).collect()
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == ext));
    files.sort();
    files
}

fn read_clip(path: &Path) -> (u32, Vec<i16>) {
    let bytes = std::fs::read(path).expect("clip");
    if path.extension().is_some_and(|e| e == "flac") {
        let mut reader = claxon::FlacReader::new(Cursor::new(bytes)).expect("flac");
        let rate = reader.streaminfo().sample_rate;
        let samples = reader
            .samples()
            .map(|s| s.expect("sample") as i16)
            .collect();
        (rate, samples)
    } else {
        let mut reader = hound::WavReader::new(Cursor::new(bytes)).expect("wav");
        let rate = reader.spec().sample_rate;
        let samples = reader
            .samples::<i16>()
            .map(|s| s.expect("sample"))
            .collect();
        (rate, samples)
    }
}

#[test]
fn clips_are_cut_to_the_sample_in_both_formats() {
    for (format, rate) in [(ClipFormat::Wav, 16_000usize), (ClipFormat::Flac, 44_100)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = EvidenceConfig {
            format,
            ..config(dir.path())
        };
        let mut writer = EvidenceWriter::new(&cfg, rate as u32, 5.0);
        // Call 2.5 s .. 3.75 s; clip from 1.5 s (pre-roll 1 s) to 4.25 s
        // (post-roll 0.5 s).
        let (first, end) = (rate * 3 / 2, rate * 17 / 4);
        let audio = ramp(0..rate * 6);
        let mut pushed = 0;
        for (i, chunk) in audio[..end - 1]
            .chunks(1 + 997 * (rate / 16_000))
            .enumerate()
        {
            writer.push_samples(chunk);
            pushed += chunk.len();
            if i == 2 {
                writer.on_event(&mic_call(2.5, 3.75, "rumble", "0000000000AB"));
            }
        }
        assert_eq!(pushed, end - 1);
        let ext = format.extension();
        assert!(
            files_with(dir.path(), ext).is_empty(),
            "waits for the last post-roll sample"
        );
        writer.push_samples(&audio[end - 1..end]);
        let clips = files_with(dir.path(), ext);
        assert_eq!(clips.len(), 1, "{format:?}");
        let (clip_rate, samples) = read_clip(&clips[0]);
        assert_eq!(clip_rate as usize, rate);
        assert_eq!(samples.len(), end - first);
        assert_eq!(samples[0] as usize, first % 32_768);
        assert_eq!(
            *samples.last().expect("samples") as usize,
            (end - 1) % 32_768
        );

        let pngs = files_with(dir.path(), "png");
        assert_eq!(pngs.len(), 1);
        assert_eq!(png_size(&pngs[0]), rumbled::plot::CALL_IMAGE_SIZE);
        let description: Value = serde_json::from_str(
            &std::fs::read_to_string(&files_with(dir.path(), "json")[0]).expect("json"),
        )
        .expect("parses");
        assert_eq!(description["schema"], "rumbled.evidence/1");
        assert_eq!(description["call"]["id"], "st01-0000000000AB");
        assert_eq!(
            description["call_in_clip_s"],
            serde_json::json!([1.0, 2.25])
        );
        assert_eq!(description["clip_offset_s"], 1.5);
        assert_eq!(writer.stats().written, 1);
    }
}

#[test]
fn stream_end_cuts_the_post_roll_and_a_call_near_the_start_its_pre_roll() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut writer = EvidenceWriter::new(&config(dir.path()), 8000, 5.0);
    writer.push_samples(&ramp(0..8000 * 3));
    writer.on_event(&mic_call(0.25, 1.0, "trumpet", "0000000000AA"));
    writer.on_event(&mic_call(2.5, 2.9, "trumpet", "0000000000AB"));
    writer.finish();
    let clips = files_with(dir.path(), "wav");
    assert_eq!(clips.len(), 2);
    let (_, early) = read_clip(&clips[0]);
    assert_eq!((early[0], early.len()), (0, 8000 * 3 / 2), "0 s .. 1.5 s");
    let (_, late) = read_clip(&clips[1]);
    assert_eq!(
        (late[0] as usize, late.len()),
        (12_000, 12_000),
        "1.5 s .. the end at 3 s"
    );
}

#[test]
fn the_quota_deletes_the_oldest_evidence_first_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Evidence from an earlier run, older than anything written now, and
    // files that are not evidence at all.
    let old = dir.path().join("old_rumble_st01-0000000000ZZ.wav");
    std::fs::write(&old, vec![0u8; 100_000]).expect("write");
    let file = std::fs::File::options()
        .write(true)
        .open(&old)
        .expect("open");
    file.set_modified(SystemTime::now() - Duration::from_secs(86_400))
        .expect("mtime");
    let spool = dir.path().join("spool.sqlite");
    let notes = dir.path().join("notes.wav");
    std::fs::write(&spool, vec![0u8; 2_000_000]).expect("write");
    std::fs::write(&notes, b"mine").expect("write");

    // 1 MB quota; each call is a 10 s clip at 16 kHz (320 044 bytes) and a
    // small JSON: three calls fit, a fourth does not.
    let cfg = EvidenceConfig {
        spectrogram: false,
        max_disk_mb: 1,
        pre_roll_s: 0.0,
        post_roll_s: 0.0,
        ..config(dir.path())
    };
    let mut writer = EvidenceWriter::new(&cfg, 16_000, 60.0);
    let codes = [
        "000000000001",
        "000000000002",
        "000000000003",
        "000000000004",
        "000000000005",
    ];
    for (i, code) in codes.iter().enumerate() {
        writer.push_samples(&vec![0.1; 16_000 * 10]);
        let begin = i as f64 * 10.0;
        writer.on_event(&mic_call(begin, begin + 10.0, "rumble", code));
        let used: u64 = files_with(dir.path(), "wav")
            .iter()
            .chain(&files_with(dir.path(), "json"))
            .filter(|p| *p != &notes)
            .map(|p| std::fs::metadata(p).expect("meta").len())
            .sum();
        assert!(used <= 1_000_000, "after call {i}: {used} bytes");
    }
    let kept: Vec<String> = files_with(dir.path(), "wav")
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(
        kept,
        [
            "mic+20.000s_rumble_st01-000000000003.wav",
            "mic+30.000s_rumble_st01-000000000004.wav",
            "mic+40.000s_rumble_st01-000000000005.wav",
            "notes.wav",
        ]
    );
    assert!(!old.exists(), "the earlier run's evidence went first");
    assert_eq!(
        std::fs::metadata(&spool).expect("spool").len(),
        2_000_000,
        "not evidence: untouched"
    );
    let stats = writer.stats();
    assert_eq!((stats.written, stats.failed, stats.deleted), (5, 0, 3));
    assert!(stats.used_bytes <= 1_000_000);

    // A call larger than the whole quota is refused, and nothing is lost
    // to make room for it.
    writer.push_samples(&vec![0.1; 16_000 * 40]);
    writer.on_event(&mic_call(50.0, 90.0, "rumble", "000000000006"));
    assert_eq!(writer.stats().failed, 1);
    assert_eq!(files_with(dir.path(), "wav").len(), 4);
}

#[test]
fn a_retracted_start_leaves_no_evidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut writer = EvidenceWriter::new(&config(dir.path()), 8000, 5.0);
    writer.push_samples(&ramp(0..8000 * 4));
    let mut retracted = mic_call(1.0, 2.0, "rumble", "0000000000AB");
    retracted.end_reason = Some(EndReason::Retracted);
    writer.on_event(&retracted);
    writer.finish();
    assert_eq!(writer.stats(), Default::default());
    assert!(files_with(dir.path(), "json").is_empty());
}

#[test]
fn an_unwritable_directory_is_survived() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A directory under a regular file cannot be created, even by root.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"").expect("write");
    let mut writer = EvidenceWriter::new(&config(&blocker.join("evidence")), 8000, 5.0);
    writer.push_samples(&ramp(0..8000 * 4));
    writer.on_event(&mic_call(1.0, 2.0, "rumble", "0000000000AB"));
    writer.on_event(&mic_call(2.0, 3.0, "rumble", "0000000000AC"));
    writer.finish();
    assert_eq!(writer.stats().failed, 2);
    assert_eq!(writer.stats().written, 0);
}

// --- through `rumbled replay` ---

/// Checks that `clips` holds one FLAC clip (and picture) per call ended in
/// `events` (early starts that were retracted are no calls), each exactly the demo's samples from `pre_s` before the call
/// to `post_s` after it; returns how many calls there were.
fn check_demo_clips(clips: &Path, events: &Path, pre_s: f64, post_s: f64) -> usize {
    let source: Vec<i16> = hound::WavReader::open(demo())
        .expect("demo")
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let ends: Vec<CallRecord> = std::fs::read_to_string(events)
        .expect("events")
        .lines()
        .map(|l| serde_json::from_str::<CallRecord>(l).expect("record"))
        // A retracted early start was never a call.
        .filter(|r| r.phase == CallPhase::End && r.end_reason != Some(EndReason::Retracted))
        .collect();
    assert!(!ends.is_empty(), "the demo has calls");
    let flacs = files_with(clips, "flac");
    assert_eq!(flacs.len(), ends.len(), "one clip per call");
    for rec in &ends {
        let clip = flacs
            .iter()
            .find(|p| p.to_string_lossy().contains(&rec.id))
            .unwrap_or_else(|| panic!("no clip for {}", rec.id));
        let to_sample = |t: f64| ((t * 16_000.0).round().max(0.0) as usize).min(source.len());
        let first = to_sample(rec.offset_s - pre_s);
        let end = to_sample(rec.offset_s + rec.duration_s.expect("end record") + post_s);
        let (rate, samples) = read_clip(clip);
        assert_eq!(rate, 16_000);
        assert_eq!(samples, source[first..end], "{}", rec.id);
        assert_eq!(
            png_size(&clip.with_extension("png")),
            rumbled::plot::CALL_IMAGE_SIZE
        );
    }
    ends.len()
}

const EVIDENCE_CONFIG: &str =
    "[evidence]\nformat = \"flac\"\npre_roll_s = 1.5\npost_roll_s = 0.75\n";

#[test]
fn replay_clips_hold_exactly_the_recordings_samples() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clips = dir.path().join("clips");
    let events = dir.path().join("e.jsonl");
    let config = dir.path().join("rumbled.toml");
    std::fs::write(&config, EVIDENCE_CONFIG).expect("config");
    let out = rumbled(&[
        "replay",
        s(&demo()),
        "--config",
        s(&config),
        "--clips",
        s(&clips),
        "--events",
        s(&events),
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let calls = check_demo_clips(&clips, &events, 1.5, 0.75);
    assert!(stderr(&out).contains(&format!("evidence: {calls} call")));
}

#[test]
fn the_daemon_writes_the_same_clips_from_its_live_input() {
    // `rumbled run` with the demo as its test input (played 20 times real
    // time, to the end): the live path (ring, processing thread, evidence
    // thread) must cut the clips as exactly as replay does.
    let dir = tempfile::tempdir().expect("tempdir");
    let clips = dir.path().join("clips");
    let events = dir.path().join("e.jsonl");
    let config = dir.path().join("rumbled.toml");
    std::fs::write(
        &config,
        format!(
            "{EVIDENCE_CONFIG}enabled = true\ndir = \"{}\"\n\
             [input]\nkind = \"file\"\nfile = \"{}\"\n\
             [output]\nevents = \"{}\"\n\
",
            clips.display(),
            demo().display(),
            events.display()
        ),
    )
    .expect("config");
    let out = rumbled(&["run", "--config", s(&config), "--speed", "20"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let calls = check_demo_clips(&clips, &events, 1.5, 0.75);
    assert!(
        err.contains("evidence written"),
        "the stats line reports evidence: {err}"
    );
    eprintln!("{calls} calls' evidence written by the daemon");
}

#[test]
fn replay_goes_on_when_evidence_cannot_be_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"").expect("write");
    let events = dir.path().join("e.jsonl");
    let out = rumbled(&[
        "replay",
        s(&demo()),
        "--clips",
        s(&blocker.join("clips")),
        "--events",
        s(&events),
        "-q",
    ]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("evidence") && err.contains("ERROR"),
        "the failure is logged: {err}"
    );
    assert!(err.contains("could not be written"), "{err}");
    let ends = std::fs::read_to_string(&events)
        .expect("events")
        .lines()
        .filter(|l| l.contains(r#""type":"end""#))
        .count();
    assert!(ends > 0, "detection went on");
}
