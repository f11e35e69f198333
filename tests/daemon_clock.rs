//! The sample clock against UTC: a test input played 5 % faster than real
//! time is a sound card whose clock runs 5 % fast; the daemon must notice
//! that its sample counter runs ahead of the wall clock and re-anchor the
//! event times.

mod daemon_support;

use std::time::Duration;

use daemon_support::{Daemon, bursts, last_stat, write_wav};

#[test]
fn a_fast_sample_clock_is_re_anchored_to_utc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wav = dir.path().join("calls.wav");
    // Calls with quiet between them: re-anchoring waits for no open call.
    write_wav(&wav, &bursts(20.0, &[(2.0, 3.0), (12.0, 13.0)]));
    let config = dir.path().join("rumbled.toml");
    std::fs::write(
        &config,
        format!(
            "[input]\nkind = \"file\"\nfile = \"{}\"\nloop = true\n\
             [daemon]\nstats_interval_s = 1.0\nmax_clock_drift_s = 0.2\n",
            wav.display()
        ),
    )
    .expect("config");
    let mut daemon = Daemon::run_energy_model(&config, "1.05");
    let noticed = daemon.wait_for("event times re-anchored", Duration::from_secs(30));
    daemon.signal(libc::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(5));
    let log = daemon.log();
    assert!(noticed, "no re-anchoring: {log}");
    assert!(status.is_some_and(|s| s.success()), "{log}");

    // 5 % fast: about 0.25 s ahead after the first 5 s estimate window
    // (more if a loaded machine delays samples past the first estimate),
    // and ahead, not behind, of the wall clock.
    let line = log
        .lines()
        .find(|l| l.contains("event times re-anchored"))
        .expect("the line");
    let ahead: f64 = line
        .split(" ran ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(" s ahead of UTC; event times re-anchored"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("ran N s ahead of UTC: {line}"));
    assert!((0.2..1.5).contains(&ahead), "{line}");
    assert!(
        last_stat(&log, "re-anchored").is_some_and(|n| n >= 1.0),
        "the stats count re-anchorings: {log}"
    );
}
