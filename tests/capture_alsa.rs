//! `rumbled run` capturing from a sound device, with no sound card: ALSA's
//! `file` plugin serves a capture device from a FIFO (or a plain file) that
//! the test feeds, and cpal opens it like any microphone.

mod daemon_support;

use std::time::Duration;

use daemon_support::{
    AlsaDevice, Daemon, Feeder, Pause, bursts, demo, energy_model, heard, last_stat, noise, phase,
    read_events, read_wav,
};
use rumbled::detect::CallPhase;

fn s(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn captured_audio_gives_the_same_events_as_replay_of_it() {
    let device = AlsaDevice::new();
    device.make_fifo();
    let live = device.dir.path().join("live.jsonl");
    let config = device.config(&format!(
        // Only final starts: exactly the records replay writes.
        "[input]\ndevice = \"replay test\"\n[output]\nevents = \"{}\"\n[daemon]\nearly_start = false\n",
        live.display()
    ));
    let samples = read_wav(&demo());
    let seconds = samples.len() as f64 / 16_000.0;
    // 8 times real time: the FIFO paces the device like a sound card would.
    let _feeder = Feeder::start(&device.infile, samples, 8.0, None);
    let mut daemon = Daemon::start(
        &["run", "-c", s(&config), "--duration", &seconds.to_string()],
        Some(device.xdg()),
    );
    let status = daemon.wait_exit(Duration::from_secs(90));
    let log = daemon.log();
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{log}");
    assert!(
        log.contains("capturing from Replay test device (alsa:replay): 16000 Hz, 1 ch, f32"),
        "{log}"
    );
    assert_eq!(last_stat(&log, "dropped"), Some(0.0), "{log}");

    let replayed = device.dir.path().join("replay.jsonl");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rumbled"))
        .args(["replay", s(&demo()), "--events", s(&replayed), "--quiet"])
        .output()
        .expect("replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (live, replayed) = (read_events(&live), read_events(&replayed));
    assert!(!replayed.is_empty(), "the demo has calls");
    let live_heard: Vec<_> = live.iter().map(heard).collect();
    let replay_heard: Vec<_> = replayed.iter().map(heard).collect();
    assert_eq!(live_heard, replay_heard);
    assert!(
        live.iter()
            .all(|r| r.source.kind == "device" && r.start.is_some())
    );
}

#[test]
fn a_consumer_that_cannot_keep_up_counts_drops_and_keeps_running() {
    let device = AlsaDevice::new();
    // A plain file is read as fast as the reader pulls, millions of samples
    // a second: far more than any processing thread keeps up with, into a
    // ring of 50 ms.
    let bytes: Vec<u8> = noise(160_000, 0.3, 3)
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    std::fs::write(&device.infile, bytes).expect("raw file");
    let config = device.config(
        "[input]\ndevice = \"replay test\"\n[daemon]\nring_s = 0.05\nstats_interval_s = 0.5\n",
    );
    let mut daemon = Daemon::start(
        &["run", "-c", s(&config), "--model", s(&energy_model())],
        Some(device.xdg()),
    );
    assert!(
        daemon.wait_for("processing fell behind", Duration::from_secs(20)),
        "{}",
        daemon.log()
    );
    assert!(daemon.wait_for("stats: ", Duration::from_secs(5)));
    std::thread::sleep(Duration::from_secs(1));
    assert!(daemon.wait_exit(Duration::ZERO).is_none(), "still running");
    daemon.signal(libc::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(5));
    let log = daemon.log();
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    let dropped = last_stat(&log, "dropped").expect("stats line");
    let deaf = last_stat(&log, "deaf").expect("stats line");
    assert!(dropped > 0.0 && deaf > 0.0, "{log}");
}

#[test]
fn a_missing_device_is_retried_until_it_appears() {
    let device = AlsaDevice::new();
    let events = device.dir.path().join("e.jsonl");
    let config = device.config(&format!(
        "[input]\ndevice = \"replay test\"\n[output]\nevents = \"{}\"\n\
         [daemon]\nretry_initial_s = 0.1\nretry_max_s = 0.4\n",
        events.display()
    ));
    let mut daemon = Daemon::start(
        &["run", "-c", s(&config), "--model", s(&energy_model())],
        Some(device.xdg()),
    );
    // The device is defined but its data source does not exist yet.
    assert!(
        daemon.wait_for(
            "capture: input device `Replay test device",
            Duration::from_secs(20)
        ),
        "{}",
        daemon.log()
    );
    assert!(
        daemon.wait_for("(attempt 3)", Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    let log = daemon.log();
    assert!(
        log.contains("retrying in 0.1 s") && log.contains("retrying in 0.4 s"),
        "{log}"
    );
    assert!(
        !log.contains("retrying in 0.8 s"),
        "backoff is capped: {log}"
    );

    device.make_fifo();
    let _feeder = Feeder::start(&device.infile, bursts(20.0, &[(3.0, 6.0)]), 4.0, None);
    assert!(
        daemon.wait_for("capture resumed after", Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    let heard_call = wait_until(Duration::from_secs(20), || {
        !phase(&read_events(&events), CallPhase::End).is_empty()
    });
    assert!(heard_call, "{}", daemon.log());
    daemon.signal(libc::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        daemon.log()
    );
}

#[test]
fn a_device_that_stalls_is_reopened_and_listening_resumes() {
    let device = AlsaDevice::new();
    device.make_fifo();
    let events = device.dir.path().join("e.jsonl");
    let config = device.config(&format!(
        "[input]\ndevice = \"replay test\"\n[output]\nevents = \"{}\"\n\
         [daemon]\nstall_timeout_s = 0.5\nretry_initial_s = 0.1\nretry_max_s = 0.4\nstats_interval_s = 0.5\n",
        events.display()
    ));
    // 40 s of audio at 4x, silent on the wire for 2.5 s after 3 s of audio,
    // with a call after the pause.
    let _feeder = Feeder::start(
        &device.infile,
        bursts(40.0, &[(20.0, 24.0)]),
        4.0,
        Some(Pause {
            at_sample: 48_000,
            length: Duration::from_millis(2500),
        }),
    );
    let mut daemon = Daemon::start(
        &["run", "-c", s(&config), "--model", s(&energy_model())],
        Some(device.xdg()),
    );
    assert!(
        daemon.wait_for("stream stalled", Duration::from_secs(20)),
        "{}",
        daemon.log()
    );
    assert!(
        daemon.wait_for("capture resumed after", Duration::from_secs(20)),
        "{}",
        daemon.log()
    );
    assert!(
        daemon.wait_for(
            "listening again on Replay test device",
            Duration::from_secs(10)
        ),
        "{}",
        daemon.log()
    );
    let heard_call = wait_until(Duration::from_secs(30), || {
        !phase(&read_events(&events), CallPhase::End).is_empty()
    });
    assert!(heard_call, "{}", daemon.log());
    daemon.signal(libc::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(5));
    let log = daemon.log();
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{log}");
    // The feeder runs 4x faster than real time, so the stream clock (which
    // counts samples) had run ahead of the wall clock: the deaf time is
    // positive but shorter than the 2.5 s pause.
    assert!(last_stat(&log, "deaf").is_some_and(|d| d > 0.0), "{log}");
    assert!(
        last_stat(&log, "restarts").is_some_and(|n| n >= 1.0),
        "{log}"
    );
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
