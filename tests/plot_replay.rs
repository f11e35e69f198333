//! `rumbled replay --plot`: one PNG per recording, of the documented size,
//! and bounded memory however long the recording.

mod evidence_support;

use evidence_support::{demo, png_size, rumbled, s, stderr};
use rumbled::plot::{PLOT_WIDTH, RecordingPlot};

fn demo_labels() -> Vec<String> {
    ["not-call", "rumble", "roar", "cry", "trumpet"]
        .map(String::from)
        .to_vec()
}

#[test]
fn one_plot_per_recording_of_the_documented_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = RecordingPlot::new(16_000, &demo_labels(), Some(0), 0.16).image_size();
    assert_eq!(expected.0, PLOT_WIDTH);

    let single = dir.path().join("demo.png");
    let out = rumbled(&["replay", s(&demo()), "--plot", s(&single), "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(png_size(&single), expected);

    // Two recordings (one at another rate): NAME.<recording>.png each.
    let other = dir.path().join("other.wav");
    let mut reader = hound::WavReader::open(demo()).expect("demo");
    let spec = hound::WavSpec {
        sample_rate: 8000,
        ..reader.spec()
    };
    let mut writer = hound::WavWriter::create(&other, spec).expect("create");
    for sample in reader.samples::<i16>().step_by(2).take(8000 * 20) {
        writer.write_sample(sample.expect("sample")).expect("write");
    }
    writer.finalize().expect("finalize");
    let target = dir.path().join("plot.png");
    let out = rumbled(&["replay", s(&demo()), s(&other), "--plot", s(&target), "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(png_size(&dir.path().join("plot.demo.png")), expected);
    assert_eq!(png_size(&dir.path().join("plot.other.png")), expected);
}

#[test]
fn an_unwritable_plot_fails_that_file_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("missing-dir/plot.png");
    let events = dir.path().join("e.jsonl");
    let out = rumbled(&[
        "replay",
        s(&demo()),
        "--plot",
        s(&target),
        "--events",
        s(&events),
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1), "the file is reported as failed");
    let err = stderr(&out);
    assert!(err.contains("plot.png"), "{err}");
    assert!(
        std::fs::read_to_string(&events)
            .expect("events")
            .contains(r#""type":"end""#)
    );
}

#[test]
fn a_day_of_audio_plots_in_bounded_memory() {
    // Two kHz recorders run for days: push 24 h through the plot in
    // minutes-long chunks and check that what it keeps does not grow.
    let rate = 2000;
    let labels = demo_labels();
    let mut plot = RecordingPlot::new(rate, &labels, Some(0), 0.16);
    let chunk = vec![0.01f32; rate as usize * 60];
    let frames_per_minute = 375;
    let probs: Vec<f32> = (0..frames_per_minute * labels.len())
        .map(|i| (i % 7) as f32 / 7.0)
        .collect();
    let mut frame = 0u64;
    let size_after = |minutes: usize, plot: &mut RecordingPlot, frame: &mut u64| {
        for _ in 0..minutes {
            plot.push_samples(&chunk);
            plot.push_frames(*frame, &probs);
            *frame += frames_per_minute as u64;
        }
        plot.retained_values()
    };
    let after_hour = size_after(60, &mut plot, &mut frame);
    let after_day = size_after(23 * 60, &mut plot, &mut frame);
    assert!(after_day <= after_hour * 2, "{after_hour} -> {after_day}");
    let canvas = plot.render("day");
    assert_eq!((canvas.width(), canvas.height()), plot.image_size());
}
