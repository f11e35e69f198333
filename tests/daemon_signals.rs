//! `rumbled run` and its signals: SIGTERM during a call ends the call
//! (truncated) and exits 0 within 2 s; SIGHUP applies a valid configuration
//! and keeps the running one when the new file is invalid. The input is the
//! test-input file, played faster than real time; the model is the energy
//! test model, so what counts as a call does not depend on training.

mod daemon_support;

use std::time::{Duration, Instant};

use daemon_support::{Daemon, bursts, phase, read_events, write_wav};
use rumbled::detect::{CallPhase, EndReason};

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Sends SIGHUP and waits for the daemon to log `outcome`.
fn reload(daemon: &Daemon, outcome: &str) {
    daemon.signal(libc::SIGHUP);
    assert!(
        daemon.wait_for(outcome, Duration::from_secs(5)),
        "{}",
        daemon.log()
    );
}

#[test]
fn sigterm_during_a_call_ends_it_truncated_and_exits_0_within_2_s() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wav = dir.path().join("call.wav");
    // A call from 2 s to the end of the recording.
    write_wav(&wav, &bursts(60.0, &[(2.0, 60.0)]));
    let events = dir.path().join("e.jsonl");
    let config = dir.path().join("rumbled.toml");
    std::fs::write(
        &config,
        format!(
            "[input]\nkind = \"file\"\nfile = \"{}\"\n[output]\nevents = \"{}\"\n",
            wav.display(),
            events.display()
        ),
    )
    .expect("config");
    let mut daemon = Daemon::run_energy_model(&config, "4");
    let started = wait_until(Duration::from_secs(30), || {
        !phase(&read_events(&events), CallPhase::Start).is_empty()
    });
    assert!(started, "{}", daemon.log());
    let asked = Instant::now();
    daemon.signal(libc::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(5));
    let took = asked.elapsed();
    let log = daemon.log();
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{log}");
    assert!(took < Duration::from_secs(2), "took {took:?}\n{log}");
    assert!(log.contains("SIGTERM received"), "{log}");

    let records = read_events(&events);
    let start = phase(&records, CallPhase::Start)[0].clone();
    let ends = phase(&records, CallPhase::End);
    assert_eq!(ends.len(), 1, "{records:?}");
    let end = ends[0];
    assert_eq!(end.id, start.id);
    assert!(end.truncated, "{end:?}");
    assert_eq!(end.end_reason, Some(EndReason::EndOfStream));
    assert!(end.duration_s.is_some_and(|d| d > 0.0), "{end:?}");
    // Every line was flushed whole before the exit.
    assert!(
        std::fs::read_to_string(&events)
            .expect("events")
            .ends_with('\n')
    );
}

#[test]
fn sighup_applies_new_thresholds_and_keeps_the_old_config_when_invalid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wav = dir.path().join("calls.wav");
    // A 2 s call every 6 s, looped.
    let calls: Vec<(f64, f64)> = (0..5)
        .map(|i| (1.0 + 6.0 * i as f64, 3.0 + 6.0 * i as f64))
        .collect();
    write_wav(&wav, &bursts(30.0, &calls));
    let events = dir.path().join("e.jsonl");
    let config = dir.path().join("rumbled.toml");
    let write_config = |endpoint: &str| {
        std::fs::write(
            &config,
            format!(
                "[input]\nkind = \"file\"\nfile = \"{}\"\nloop = true\n[output]\nevents = \"{}\"\n\
                 [endpoint]\n{endpoint}\n",
                wav.display(),
                events.display()
            ),
        )
        .expect("config");
    };
    write_config("onset = 0.5");
    let mut daemon = Daemon::run_energy_model(&config, "8");
    let calls_heard = || phase(&read_events(&events), CallPhase::Start).len();
    assert!(
        wait_until(Duration::from_secs(30), || calls_heard() >= 2),
        "{}",
        daemon.log()
    );

    // Invalid: refused, named, and nothing changes.
    write_config("onset = 1.5");
    reload(&daemon, "reload failed, keeping the running configuration");
    assert!(
        daemon.log().contains("`endpoint.onset`"),
        "{}",
        daemon.log()
    );
    let before = calls_heard();
    assert!(
        wait_until(Duration::from_secs(20), || calls_heard() > before),
        "still detecting with the old thresholds\n{}",
        daemon.log()
    );

    // Valid: an onset no frame reaches stops new calls.
    write_config("onset = 1.0\noffset = 1.0");
    reload(&daemon, "configuration reloaded: applied [endpoint]");
    // Frames already final were judged before; wait out what was in flight
    // (one window of audio, 10 s, is 1.25 s at 8x), then count.
    std::thread::sleep(Duration::from_secs(3));
    let settled = calls_heard();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(calls_heard(), settled, "{}", daemon.log());

    // A section that needs a restart is named, not applied.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .expect("config")
            .replace("loop = true", "loop = true\ngain = 2.0"),
    )
    .expect("config");
    reload(&daemon, "reload: [input] changed; restart rumbled to apply");
    daemon.signal(libc::SIGINT);
    let status = daemon.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        daemon.log()
    );
}
