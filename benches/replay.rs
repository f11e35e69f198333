//! `rumbled replay` speed and memory on long recordings (a `--release`
//! bench binary: `cargo bench --bench replay`).
//!
//! - Speed: a 1 h recording through the whole chain in-process, one thread,
//!   with the time per stage (target: <= 8 s, >= 450x real time).
//! - Memory: peak RSS of the `rumbled replay` process on a 10 min and a 1 h
//!   recording (target: within 5 MB of each other: flat in file length).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rumbled::config::Config;
use rumbled::replay::{self, ReplayRequest};

const RATE: u32 = 16_000;

/// A deterministic soundscape: noise with a few harmonic rumble-like and
/// tonal bursts per minute, so the endpointer has work to do.
fn write_recording(path: &Path, minutes: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create wav");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..u64::from(minutes) * 60 * u64::from(RATE) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        let t = i as f32 / RATE as f32;
        let phase = t % 20.0;
        let call = if phase < 4.0 {
            (1..6)
                .map(|h| (2.0 * std::f32::consts::PI * 17.0 * h as f32 * t).sin() / h as f32)
                .sum::<f32>()
                * 0.3
        } else if (10.0..11.0).contains(&phase) {
            (2.0 * std::f32::consts::PI * 600.0 * t).sin() * 0.2
        } else {
            0.0
        };
        let x = (0.05 * noise + call).clamp(-1.0, 1.0);
        writer
            .write_sample((x * 32767.0) as i16)
            .expect("write sample");
    }
    writer.finalize().expect("finalize wav");
}

/// Peak RSS in MB over the `rumbled replay` processes run so far: the
/// kernel's ru_maxrss for waited-for children is the largest of them, so run
/// the shorter file first.
fn peak_rss_mb(file: &Path) -> f64 {
    let status = Command::new(env!("CARGO_BIN_EXE_rumbled"))
        .args(["replay", "-q"])
        .arg(file)
        .status()
        .expect("run rumbled");
    assert!(status.success(), "rumbled failed on {}", file.display());
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid out-pointer for getrusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    usage.ru_maxrss as f64 / 1024.0
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let short: PathBuf = dir.path().join("ten_minutes.wav");
    let long: PathBuf = dir.path().join("one_hour.wav");
    write_recording(&short, 10);
    write_recording(&long, 60);

    let config = Config::default();
    let request = ReplayRequest {
        files: vec![long.clone()],
        events: None,
        raven_dir: None,
        frames: None,
        start_time: None,
        print_calls: false,
    };
    let started = Instant::now();
    let report = replay::run(&config, &request).expect("replay");
    let wall = started.elapsed().as_secs_f64();
    let st = report.stages;
    println!(
        "replay 1 h (in-process, 1 thread): {wall:.2} s wall incl. model load, {:.0}x real time",
        3600.0 / wall
    );
    println!(
        "  stages: resample {:.2} s, fbank {:.2} s, windows+model {:.2} s, endpoint {:.3} s; calls {}",
        st.resample.as_secs_f64(),
        st.fbank.as_secs_f64(),
        st.model.as_secs_f64(),
        st.endpoint.as_secs_f64(),
        report.calls().values().sum::<usize>()
    );

    let rss_short = peak_rss_mb(&short);
    let rss_long = peak_rss_mb(&long);
    println!(
        "peak RSS: 10 min {rss_short:.1} MB, 10 min and 1 h {rss_long:.1} MB, difference {:.1} MB",
        rss_long - rss_short
    );
}
