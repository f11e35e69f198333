//! MQTT from the outside of a station process: last will after SIGKILL,
//! `stopped` after SIGTERM, spooled events delivered after a restart,
//! connection failures logged once per state change with backoff, and
//! `rumbled replay --mqtt` end to end.
//!
//! The station is this test binary re-run as a child that executes only
//! `station_child`, which drives the library exactly as the daemon does
//! (`MqttPublisher::start` with `Role::Daemon`, a persisted `SeqSource`),
//! emitting synthetic calls, until SIGTERM.

mod mqtt_support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mqtt_support::{Broker, BrokerOptions, Subscriber, call, check_calls, make_certs};
use rumbled::config::Config;
use rumbled::detect::{CallRecord, ModelInfo};
use rumbled::publish::{EventSink, MqttPublisher, Role, SeqSource, StatusInfo};

const CHILD_ENV: &str = "RUMBLED_TEST_STATION_CONFIG";

/// The station process; does nothing unless started by [`Station::spawn`].
/// Prints `emitted N` once synthetic call N (start and end) is durable, `done` when
/// all are, and stops cleanly on SIGTERM.
#[test]
fn station_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let config = Config::load(Path::new(&path)).expect("station config");
    let env = |name: &str| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (first, calls) = (env("STATION_FIRST_CALL"), env("STATION_CALLS"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log.level))
        .init();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).expect("signal handler");
    }
    let model = ModelInfo {
        name: "rumbled-edge-ev5".into(),
        version: "0.1.0".into(),
    };
    let status = StatusInfo::new(&config, model);
    let station = &config.station.name;
    let (mut sink, handle) = MqttPublisher::start(
        &config.mqtt,
        station,
        Role::Daemon(status),
        &config.state.dir,
    )
    .expect("start publishing");
    let mut seq = SeqSource::open(&config.state.dir, station).expect("sequence");
    for n in first..first + calls {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        for template in call(n) {
            let rec = CallRecord {
                seq: seq.next_seq().expect("seq"),
                ..template
            };
            sink.emit(&rec).expect("emit");
        }
        println!("emitted {n}");
        std::thread::sleep(Duration::from_millis(4));
    }
    println!("done");
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let clean = handle.shutdown(Duration::from_secs_f64(config.mqtt.drain_timeout_s));
    println!("stopped clean={clean}");
}

/// A station child process with its stdout lines and stderr collected.
struct Station {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Station {
    /// Emits the synthetic calls `first..first + calls`.
    fn spawn(config: &Path, first: u64, calls: u64) -> Station {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "station_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, config)
            .env("STATION_FIRST_CALL", first.to_string())
            .env("STATION_CALLS", calls.to_string())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the station");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (out, pipe) = (Arc::clone(&stdout), child.stdout.take().expect("stdout"));
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                out.lock().expect("lock").push(line);
            }
        });
        let (err, mut pipe) = (Arc::clone(&stderr), child.stderr.take().expect("stderr"));
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                err.lock()
                    .expect("lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Station {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits until a stdout line satisfies `f`.
    fn wait_line(&self, what: &str, f: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.stdout.lock().expect("lock").iter().any(|l| f(l)) {
            assert!(
                Instant::now() < deadline,
                "station never printed {what}; stderr:\n{}",
                self.stderr.lock().expect("lock")
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// How many calls the station reported durable so far.
    fn emitted(&self) -> u64 {
        self.stdout
            .lock()
            .expect("lock")
            .iter()
            .filter(|l| l.starts_with("emitted "))
            .count() as u64
    }

    fn sigterm(&self) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM");
    }

    /// Waits for the process to end; returns its success and stderr.
    fn wait(mut self) -> (bool, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                std::thread::sleep(Duration::from_millis(50)); // drain pipes
                return (status.success(), self.stderr.lock().expect("lock").clone());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("station did not exit");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Station {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a station config to `dir` and returns its path.
fn station_config(dir: &Path, port: u16, extra_mqtt: &str, log: &str) -> PathBuf {
    let path = dir.join("rumbled.toml");
    let extra_mqtt = if extra_mqtt.contains("drain_timeout_s") {
        extra_mqtt.to_owned()
    } else {
        format!("drain_timeout_s = 5.0\n{extra_mqtt}")
    };
    let text = format!(
        "[station]\nname = \"st01\"\n\
         [log]\nlevel = \"{log}\"\n\
         [mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = {port}\nkeep_alive_s = 5\n\
         backoff_min_s = 0.2\nbackoff_max_s = 0.5\n{extra_mqtt}\n\
         [state]\ndir = \"{}\"\n",
        dir.join("state").display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

fn last_status(sub: &Subscriber) -> Option<serde_json::Value> {
    sub.on("rumbled/st01/status").last().map(|m| m.json())
}

fn wait_status(sub: &Subscriber, state: &str) {
    sub.wait_for(&format!("status {state}"), Duration::from_secs(15), |r| {
        r.iter()
            .rev()
            .find(|m| m.topic == "rumbled/st01/status")
            .is_some_and(|m| m.json()["state"] == state)
    });
}

#[test]
fn sigkill_leaves_the_will_and_a_restart_delivers_the_spool_as_historical() {
    let mut broker = Broker::start(&BrokerOptions::default());
    let sub = Subscriber::start(broker.port, "rumbled/st01/#", "sub-kill");
    let dir = tempfile::tempdir().expect("dir");
    let config = station_config(dir.path(), broker.port, "", "info");

    // Run 1 (calls 0..): connected; killed mid-stream.
    let station = Station::spawn(&config, 0, 100_000);
    wait_status(&sub, "online");
    station.wait_line("20 calls", |l| l == "emitted 20");
    drop(station); // SIGKILL
    wait_status(&sub, "offline");
    let will = last_status(&sub).expect("will");
    assert!(will["since"].is_null(), "the will cannot know its time");

    // Run 2 (calls 1000..): the broker is away while the station spools;
    // killed too.
    broker.kill();
    let station = Station::spawn(&config, 1000, 100_000);
    station.wait_line("30 calls", |l| l == "emitted 1030");
    let emitted = station.emitted();
    drop(station);

    // Run 3: broker back, the station restarted with nothing new to say.
    let subscriptions = sub.subscriptions();
    broker.restart();
    sub.wait_resubscribed(subscriptions);
    let before = sub.records("rumbled/st01/events").len();
    let station = Station::spawn(&config, 0, 0);
    wait_status(&sub, "online");
    // Every id run 2 could have emitted (it ran on a little after the last
    // line read above): the known-durable ones are 1000..1000 + emitted.
    let run2: HashSet<String> = (1000..2000).flat_map(call).map(|r| r.id).collect();
    sub.wait_for("the spooled calls", Duration::from_secs(15), |r| {
        count_ids(r, &run2) >= 2 * emitted as usize
    });
    let late = &sub.records("rumbled/st01/events")[before..];
    assert!(
        late.iter().all(|r| r.historical),
        "spooled before a restart = historical"
    );
    check_calls(late, 1000..1000 + emitted);
    // seq survived both kills: run 2 continues after everything run 1
    // numbered, and the redelivery keeps spool order.
    let all = sub.records("rumbled/st01/events");
    let run1_max = all
        .iter()
        .filter(|r| !run2.contains(&r.id))
        .map(|r| r.seq)
        .max();
    let run2_seqs: Vec<u64> = late
        .iter()
        .filter(|r| run2.contains(&r.id))
        .map(|r| r.seq)
        .collect();
    assert!(run2_seqs.windows(2).all(|w| w[0] < w[1]), "{run2_seqs:?}");
    assert!(
        Some(run2_seqs[0]) > run1_max,
        "seq continues after a restart"
    );
    station.sigterm();
    assert!(station.wait().0);
}

/// Event records among `received` whose id is in `ids`.
fn count_ids(received: &[mqtt_support::Received], ids: &HashSet<String>) -> usize {
    received
        .iter()
        .filter(|m| m.topic == "rumbled/st01/events")
        .filter(|m| m.json()["id"].as_str().is_some_and(|id| ids.contains(id)))
        .count()
}

#[test]
fn sigterm_publishes_stopped_and_the_broker_keeps_the_will() {
    let broker = Broker::start(&BrokerOptions::default());
    let sub = Subscriber::start(broker.port, "rumbled/st01/#", "sub-term");
    let dir = tempfile::tempdir().expect("dir");
    let config = station_config(dir.path(), broker.port, "", "info");
    let station = Station::spawn(&config, 0, 50);
    station.wait_line("done", |l| l == "done");
    wait_status(&sub, "online");
    station.sigterm();
    let (ok, stderr) = station.wait();
    assert!(ok, "clean exit; stderr:\n{stderr}");
    wait_status(&sub, "stopped");
    // No will after a clean goodbye.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(last_status(&sub).expect("status")["state"], "stopped");
    let records = sub.records("rumbled/st01/events");
    check_calls(&records, 0..50);
    assert!(
        records.iter().all(|r| !r.historical),
        "spooled during the first connect: live, not late"
    );
}

/// Runs a station that cannot connect for `secs`, then SIGTERM; returns
/// its stderr (debug level for the publisher).
fn failing_station(port: u16, extra_mqtt: &str, secs: f64, dir: &Path) -> String {
    let config = station_config(dir, port, extra_mqtt, "info,rumbled::publish=debug");
    let station = Station::spawn(&config, 0, 3);
    station.wait_line("done", |l| l == "done");
    std::thread::sleep(Duration::from_secs_f64(secs));
    station.sigterm();
    let (ok, stderr) = station.wait();
    assert!(ok, "no crash; stderr:\n{stderr}");
    stderr
}

/// One warning for the state change, debug lines for the retries, which
/// are spaced by the backoff.
fn check_failure_log(stderr: &str, reason: &str) {
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("MQTT"))
        .collect();
    assert_eq!(warnings.len(), 1, "one line per state change:\n{stderr}");
    assert!(warnings[0].contains(reason), "{}", warnings[0]);
    let retries = stderr.lines().filter(|l| l.contains("retrying in")).count();
    // 2.5 s at 0.1-0.5 s per wait: a handful, never a busy loop.
    assert!((2..=25).contains(&retries), "{retries} retries:\n{stderr}");
}

#[test]
fn a_wrong_password_is_logged_once_retried_with_backoff_and_never_printed() {
    let broker = Broker::start(&BrokerOptions {
        password: Some(("st01".into(), "right-password".into())),
        ..BrokerOptions::default()
    });
    let dir = tempfile::tempdir().expect("dir");
    let secret = "wrong-secret-7f3a";
    std::fs::write(dir.path().join("pw"), format!("{secret}\n")).expect("password file");
    let extra = format!(
        "username = \"st01\"\npassword_file = \"{}\"",
        dir.path().join("pw").display()
    );
    let stderr = failing_station(broker.port, &extra, 2.5, dir.path());
    check_failure_log(&stderr, "refused");
    assert!(
        !stderr.contains(secret),
        "the password must never be logged"
    );
    let attempts = broker.log().matches("New connection from").count();
    assert!((2..=25).contains(&attempts), "{attempts} attempts");
}

#[test]
fn a_broker_that_is_not_there_is_logged_once_and_retried_with_backoff() {
    let port = mqtt_support::free_port();
    let dir = tempfile::tempdir().expect("dir");
    let stderr = failing_station(port, "", 2.5, dir.path());
    check_failure_log(&stderr, "Connection refused");
}

#[test]
fn a_wrong_ca_is_logged_once_and_retried_with_backoff() {
    let certs_dir = tempfile::tempdir().expect("cert dir");
    let certs = make_certs(certs_dir.path());
    let broker = Broker::start(&BrokerOptions {
        tls: Some(certs.clone()),
        ..BrokerOptions::default()
    });
    let dir = tempfile::tempdir().expect("dir");
    let extra = format!(
        "tls = true\nca_file = \"{}\"\nserver_name = \"broker.test\"",
        certs.other_ca.display()
    );
    let stderr = failing_station(broker.port, &extra, 2.5, dir.path());
    check_failure_log(&stderr, "certificate");
}

/// A 1 s silent 16 kHz WAV: a replay with nothing to say.
fn silent_wav(path: &Path) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("wav");
    for _ in 0..16_000 {
        w.write_sample(0i16).expect("sample");
    }
    w.finalize().expect("finalize");
}

fn rumbled(config: &Path, wav: &Path, events: Option<&Path>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rumbled"));
    cmd.args(["replay", "--mqtt", "-q", "--config"])
        .arg(config)
        .arg(wav)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(events) = events {
        cmd.arg("--events").arg(events);
    }
    cmd
}

#[test]
fn replay_mqtt_killed_while_the_broker_is_away_delivers_on_the_next_run() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo/demo.wav");
    let port = mqtt_support::free_port();
    let dir = tempfile::tempdir().expect("dir");
    // A long drain timeout: the first run would wait for the broker, and is
    // killed while it waits.
    let config = station_config(dir.path(), port, "drain_timeout_s = 600.0", "info");
    let events = dir.path().join("events.jsonl");
    let mut first = rumbled(&config, &demo, Some(&events))
        .spawn()
        .expect("rumbled");
    // The replay of the 60 s demo takes a fraction of a second; then it
    // waits for the broker, and is killed while it waits.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&events).map_or(0, |m| m.len()) == 0 {
        if first.try_wait().expect("wait").is_some() {
            let mut err = String::new();
            let _ = first.stderr.take().map(|mut e| e.read_to_string(&mut err));
            panic!("replay ended early: {err}");
        }
        assert!(Instant::now() < deadline, "replay wrote no events");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        first.try_wait().expect("wait").is_none(),
        "still waiting for the broker"
    );
    let written = std::fs::read_to_string(&events).expect("events");
    let spooled: i64 = rusqlite::Connection::open(dir.path().join("state/state.sqlite"))
        .and_then(|c| c.query_row("SELECT count(*) FROM events", [], |r| r.get(0)))
        .expect("spool");
    assert_eq!(spooled as usize, written.lines().count());
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    let sent: Vec<CallRecord> = written
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();

    let broker = Broker::start_on(port, &BrokerOptions::default());
    let sub = Subscriber::start(broker.port, "rumbled/st01/events", "sub-replay");
    let silent = dir.path().join("silence.wav");
    silent_wav(&silent);
    // (The untrained demo model may hear a "call" even in silence.)
    let silent_events = dir.path().join("silent.jsonl");
    let out = rumbled(&config, &silent, Some(&silent_events))
        .output()
        .expect("rumbled");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n_silent = std::fs::read_to_string(&silent_events)
        .expect("events")
        .lines()
        .count();
    sub.wait_for("the killed run's events", Duration::from_secs(10), |r| {
        r.len() >= sent.len() + n_silent
    });
    let got = sub.records("rumbled/st01/events");
    for (got, sent) in got.iter().zip(&sent) {
        assert_eq!(
            *got,
            CallRecord {
                historical: true,
                ..sent.clone()
            }
        );
    }

    // And live: a replay with the broker up publishes as it goes.
    let out = rumbled(&config, &demo, None).output().expect("rumbled");
    assert!(out.status.success());
    let total = 2 * sent.len() + n_silent;
    sub.wait_for("the live replay", Duration::from_secs(10), |r| {
        r.len() >= total
    });
    let live = &sub.records("rumbled/st01/events")[total - sent.len()..];
    assert_eq!(
        live.iter().map(|r| &r.id).collect::<Vec<_>>(),
        sent.iter().map(|r| &r.id).collect::<Vec<_>>(),
        "the same audio gives the same ids"
    );
    assert!(live.iter().all(|r| !r.historical));
    assert!(live[0].seq > sent[sent.len() - 1].seq, "seq continues");
}
