//! `rumbled run` publishes over MQTT: call events on `<prefix>/events`
//! (start before end, same id), retained status `online` then `stopped`,
//! periodic stats, and `seq` that continues across restarts (persisted in
//! the state directory).

mod daemon_support;
mod mqtt_support;

use std::path::Path;
use std::time::Duration;

use daemon_support::{Daemon, bursts, write_wav};
use mqtt_support::{Broker, BrokerOptions, Subscriber};
use rumbled::detect::CallPhase;

fn run_once(config: &Path) {
    let mut daemon = Daemon::run_energy_model(config, "8");
    let status = daemon.wait_exit(Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        daemon.log()
    );
}

#[test]
fn the_daemon_publishes_events_status_and_stats_with_persistent_seq() {
    let broker = Broker::start(&BrokerOptions::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let wav = dir.path().join("calls.wav");
    write_wav(&wav, &bursts(24.0, &[(3.0, 6.0), (12.0, 15.0)]));
    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("state dir");
    let config = dir.path().join("rumbled.toml");
    std::fs::write(
        &config,
        format!(
            "[station]\nname = \"st09\"\n[input]\nkind = \"file\"\nfile = \"{}\"\n\
             [daemon]\nstats_interval_s = 0.5\n\
             [mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = {}\n[state]\ndir = \"{}\"\n",
            wav.display(),
            broker.port,
            state.display()
        ),
    )
    .expect("config");
    let sub = Subscriber::start(broker.plain_port, "rumbled/st09/#", "test-sub");

    run_once(&config);
    let stopped = |msgs: &[mqtt_support::Received]| {
        msgs.iter()
            .filter(|m| m.topic == "rumbled/st09/status" && m.json()["state"] == "stopped")
            .count()
    };
    sub.wait_for(
        "`stopped` after the first run",
        Duration::from_secs(10),
        |m| stopped(m) >= 1,
    );
    let first = sub.records("rumbled/st09/events");
    let ends: Vec<_> = first
        .iter()
        .filter(|r| r.phase == CallPhase::End && r.end_reason.is_some())
        .collect();
    assert!(ends.len() >= 2, "two calls published: {first:?}");
    for end in &ends {
        let start = first
            .iter()
            .position(|r| r.id == end.id && r.phase == CallPhase::Start);
        let end_at = first.iter().position(|r| std::ptr::eq(r, *end));
        assert!(
            start < end_at && start.is_some(),
            "start before end for {}",
            end.id
        );
    }
    let status: Vec<String> = sub
        .on("rumbled/st09/status")
        .iter()
        .map(|m| m.json()["state"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        status.first().is_some_and(|s| s == "online")
            && status.last().is_some_and(|s| s == "stopped"),
        "{status:?}"
    );
    assert!(!sub.on("rumbled/st09/stats").is_empty(), "stats published");

    let last_seq = first.iter().map(|r| r.seq).max().expect("seq");
    run_once(&config);
    sub.wait_for(
        "`stopped` after the second run",
        Duration::from_secs(10),
        |m| stopped(m) >= 2,
    );
    let all = sub.records("rumbled/st09/events");
    let second = &all[first.len()..];
    assert!(!second.is_empty(), "second run published");
    assert!(
        second.iter().all(|r| r.seq > last_seq),
        "seq continues across restarts: {last_seq} then {second:?}"
    );
}
