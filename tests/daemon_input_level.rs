//! A station whose recorder gain is set too high clips, and misses calls in
//! the clipped sound: the daemon must say so, naming the input, and count
//! it in the stats, while a clean input stays quiet.

mod daemon_support;

use std::path::Path;
use std::time::Duration;

use daemon_support::{Daemon, last_stat, noise, write_wav};

/// Runs the daemon on `samples` (looped) until `needle` is logged or
/// `timeout` passes; returns whether it was, and the whole log.
fn run_until(dir: &Path, samples: &[f32], needle: &str, timeout: Duration) -> (bool, String) {
    let wav = dir.join("input.wav");
    write_wav(&wav, samples);
    let config = dir.join("rumbled.toml");
    std::fs::write(
        &config,
        format!(
            "[input]\nkind = \"file\"\nfile = \"{}\"\nloop = true\n\
             [daemon]\nstats_interval_s = 0.5\n",
            wav.display()
        ),
    )
    .expect("config");
    let mut daemon = Daemon::run_energy_model(&config, "4");
    let seen = daemon.wait_for(needle, timeout);
    daemon.signal(libc::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(5));
    let log = daemon.log();
    assert!(status.is_some_and(|s| s.success()), "{log}");
    (seen, log)
}

#[test]
fn a_clipping_input_is_warned_about_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Noise ten times too loud for the converter: most of it at the rails.
    let clipped: Vec<f32> = noise(4 * 16_000, 10.0, 3)
        .into_iter()
        .map(|x| x.clamp(-1.0, 1.0))
        .collect();
    let (warned, log) = run_until(
        dir.path(),
        &clipped,
        "lower the recorder's input gain",
        Duration::from_secs(30),
    );
    assert!(warned, "no clipping warning: {log}");
    let warning = log
        .lines()
        .find(|l| l.contains("lower the recorder's input gain"))
        .expect("the line");
    assert!(
        warning.contains("input.wav") && warning.contains("% of the samples are at full scale"),
        "{warning}"
    );
    assert!(
        last_stat(&log, "clipped").is_some_and(|p| p > 80.0),
        "the stats count the clipped share: {log}"
    );
}

#[test]
fn a_clean_input_is_not_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clean = noise(4 * 16_000, 0.5, 3);
    // Several stats intervals' worth (about 12 s of audio at 4x).
    let (_, log) = run_until(dir.path(), &clean, "at full scale", Duration::from_secs(3));
    assert_eq!(last_stat(&log, "clipped"), Some(0.0), "{log}");
    assert!(!log.contains("at full scale"), "{log}");
}
