//! MQTT publishing against real mosquitto brokers: payloads, broker
//! restarts during a fast stream, a broker that is away for the whole run,
//! TLS and mutual TLS. Events lost must be 0; duplicates are counted.

mod mqtt_support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mqtt_support::{
    Broker, BrokerOptions, Subscriber, call, check_calls, make_certs, mqtt_config, wait_calls,
};
use rumbled::config::MqttConfig;
use rumbled::detect::{CALL_SCHEMA, CallRecord, ModelInfo};
use rumbled::publish::{EventSink, MqttHandle, MqttPublisher, MqttSink, Role, StatusInfo};

fn daemon_role() -> Role {
    Role::Daemon(StatusInfo {
        version: "0.1.0".into(),
        model: ModelInfo {
            name: "rumbled-edge-ev5".into(),
            version: "0.1.0".into(),
        },
        config_hash: "0123456789abcdef".into(),
        started: "2026-11-26T21:00:00.000Z".into(),
    })
}

/// The station daemon's publisher for `st01`, spooling in `state`.
fn daemon_publisher(config: &MqttConfig, state: &Path) -> (MqttSink, MqttHandle) {
    MqttPublisher::start(config, "st01", daemon_role(), state).expect("start")
}

/// Takes the spool's write lock from another connection, as a full or
/// failing disk would refuse writes; `ROLLBACK` on it gives the lock back.
fn lock_spool(state: &Path) -> rusqlite::Connection {
    let locker = rusqlite::Connection::open(state.join("state.sqlite")).expect("open");
    locker.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    locker
}

#[test]
fn events_status_and_stats_reach_a_subscriber_as_documented() {
    let broker = Broker::start(&BrokerOptions::default());
    let sub = Subscriber::start(broker.port, "rumbled/st01/#", "sub-payloads");
    let state = tempfile::tempdir().expect("state dir");
    let (mut sink, handle) = daemon_publisher(&mqtt_config(broker.port), state.path());
    // Records spooled before the first connection are late (historical);
    // these are meant to go out live.
    wait_connected(&handle);
    for n in 0..3 {
        for rec in call(n) {
            sink.emit(&rec).expect("emit");
        }
    }
    sub.wait_for("6 events", Duration::from_secs(10), |r| {
        r.iter()
            .filter(|m| m.topic == "rumbled/st01/events")
            .count()
            >= 6
    });
    let events = sub.on("rumbled/st01/events");
    let sent: Vec<_> = (0..3).flat_map(call).collect();
    for (got, want) in events.iter().zip(&sent) {
        assert!(!got.retain);
        // Byte for byte what the JSONL sink writes.
        assert_eq!(got.payload, serde_json::to_vec(want).expect("json"));
        assert_eq!(got.json()["schema"], CALL_SCHEMA);
        assert_eq!(got.json()["historical"], false);
    }

    let status = sub.on("rumbled/st01/status");
    let online = status.first().expect("online status").json();
    assert_eq!(online["schema"], "rumbled.status/1");
    assert_eq!(online["state"], "online");
    assert_eq!(online["station"], "st01");
    assert_eq!(online["model"]["name"], "rumbled-edge-ev5");
    assert_eq!(online["config_hash"], "0123456789abcdef");
    assert!(online["since"].is_string());

    handle
        .publish_stats(&serde_json::json!({"uptime_s": 1, "mqtt": handle.stats()}))
        .expect("stats");
    sub.wait_for("stats", Duration::from_secs(5), |r| {
        r.iter().any(|m| m.topic == "rumbled/st01/stats")
    });
    let stats = sub.on("rumbled/st01/stats")[0].json();
    assert_eq!(stats["mqtt"]["connected"], true);
    assert_eq!(stats["mqtt"]["spooled"], 6);

    assert!(handle.wait_drained(Duration::from_secs(5)));
    let s = handle.stats();
    assert_eq!((s.spool_depth, s.acked, s.shed), (0, 6, 0));
    assert!(handle.shutdown(Duration::from_secs(5)), "clean shutdown");
    sub.wait_for("stopped", Duration::from_secs(5), |r| {
        r.iter().any(|m| {
            m.topic == "rumbled/st01/status" && m.payload.windows(9).any(|w| w == b"\"stopped\"")
        })
    });

    // A late subscriber sees the retained status: stopped, not the will.
    let late = Subscriber::start(broker.port, "rumbled/st01/status", "sub-late");
    late.wait_for("retained status", Duration::from_secs(5), |r| !r.is_empty());
    let retained = &late.on("rumbled/st01/status")[0];
    assert!(retained.retain);
    assert_eq!(retained.json()["state"], "stopped");
}

fn wait_connected(handle: &MqttHandle) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !handle.stats().connected {
        assert!(Instant::now() < deadline, "never connected");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for the publisher's spool to empty, then for every call in
/// `0..calls` on the events topic: the records received and how many were
/// duplicates.
fn drained_and_received(
    handle: &MqttHandle,
    sub: &Subscriber,
    calls: u64,
    drain_timeout: Duration,
    tag: &str,
) -> (Vec<CallRecord>, usize) {
    assert!(
        handle.wait_drained(drain_timeout),
        "{tag}: spool not drained: {:?}",
        handle.stats()
    );
    wait_calls(
        sub,
        "rumbled/st01/events",
        0..calls,
        Duration::from_secs(10),
    )
}

/// Freezes the broker with every event the station saw acknowledged
/// delivered to the subscriber, for a kill that loses only what the
/// station must still send. Acknowledged events can sit in the broker's
/// socket buffers, which a kill resets, and while the broker runs it
/// acknowledges more: so it is frozen first, and thawed for a moment
/// whenever it had not yet passed some of them on.
fn deliver_acknowledged(broker: &Broker, handle: &MqttHandle, sub: &Subscriber, tag: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        broker.freeze(true);
        // PUBACKs already on their way still reach the station.
        let mut acked = handle.stats().acked;
        loop {
            std::thread::sleep(Duration::from_millis(20));
            let now = handle.stats().acked;
            if now == acked {
                break;
            }
            acked = now;
        }
        if sub.wait_until(Duration::from_millis(500), |r| r.len() as u64 >= acked) {
            return;
        }
        broker.freeze(false);
        assert!(
            Instant::now() < deadline,
            "{tag}: the subscriber never caught up with {acked} acknowledged events"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Streams calls (start and end) at a fast steady pace while the broker is
/// killed and restarted four times, then checks that a subscriber with a
/// persistent session got every one, each start before its end.
fn publish_through_restarts(persistence: bool, tag: &str) {
    const MIN_CALLS: u64 = 250;
    let mut broker = Broker::start(&BrokerOptions {
        persistence,
        ..BrokerOptions::default()
    });
    let sub = Subscriber::start(broker.port, "rumbled/st01/events", &format!("sub-{tag}"));
    let state = tempfile::tempdir().expect("state dir");
    // A volatile broker forgets the subscription: the subscriber (retrying
    // every 20 ms) must be back before the station, or what the station
    // sends in between is lost at the broker. A first retry of 1-2 s keeps
    // that true on a loaded machine.
    let config = MqttConfig {
        backoff_min_s: 2.0,
        backoff_max_s: 4.0,
        ..mqtt_config(broker.port)
    };
    let (mut sink, handle) = daemon_publisher(&config, state.path());
    // The stream runs on its own thread at a steady fast pace, as the
    // detector would, never pausing for the broker, and goes on until every
    // restart is done, however slow the machine.
    let restarts_done = Arc::new(AtomicBool::new(false));
    let producer = std::thread::spawn({
        let restarts_done = Arc::clone(&restarts_done);
        move || {
            let started = Instant::now();
            let mut n = 0;
            while n < MIN_CALLS || !restarts_done.load(Ordering::Relaxed) {
                for rec in call(n) {
                    sink.emit(&rec).expect("emit");
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(12));
            }
            (n, started.elapsed())
        }
    });
    // Kill the broker (SIGKILL) at a random moment while the publisher is
    // connected and delivering, bring it back 300 ms later; four times over.
    // (Not while it still owes the subscriber an event it acknowledged: it
    // would lose that event whatever the publisher does; MQTT's guarantee
    // to a publisher ends at the PUBACK.)
    let mut restarts = 0;
    while restarts < 4 {
        let published = handle.stats().published;
        let deadline = Instant::now() + Duration::from_secs(15);
        while !(handle.stats().connected && handle.stats().published > published) {
            assert!(Instant::now() < deadline, "{tag}: never reconnected");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_micros(fastrand::u64(0..20_000)));
        let subscriptions = sub.subscriptions();
        deliver_acknowledged(&broker, &handle, &sub, tag);
        broker.kill();
        std::thread::sleep(Duration::from_millis(300));
        broker.restart();
        if !persistence {
            sub.wait_resubscribed(subscriptions);
        }
        restarts += 1;
    }
    restarts_done.store(true, Ordering::Relaxed);
    let (calls, emitted_in) = producer.join().expect("producer");
    let (records, duplicates) =
        drained_and_received(&handle, &sub, calls, Duration::from_secs(30), tag);
    let historical = records.iter().filter(|r| r.historical).count();
    let stats = handle.stats();
    eprintln!(
        "{tag}: {} calls ({} events) emitted in {emitted_in:.2?} across {restarts} broker restarts: \
         0 lost, {duplicates} duplicates, {historical} delivered as historical, {} connections, {} publishes",
        calls,
        2 * calls,
        stats.connections,
        stats.published
    );
    assert_eq!(stats.shed, 0);
    assert!(stats.connections > restarts as u64);
    assert!(handle.shutdown(Duration::from_secs(5)));
}

#[test]
fn broker_restarts_during_a_fast_stream_lose_nothing_with_persistence() {
    publish_through_restarts(true, "persistent-broker");
}

#[test]
fn broker_restarts_during_a_fast_stream_lose_nothing_without_persistence() {
    publish_through_restarts(false, "volatile-broker");
}

#[test]
fn an_absent_broker_does_not_slow_the_pipeline_and_the_spool_drains_later() {
    const CALLS: u64 = 200;
    // A ranger's subscriber with a persistent session is known to the
    // broker, which then goes away (saving its sessions) for the whole run.
    let mut broker = Broker::start(&BrokerOptions {
        persistence: true,
        ..BrokerOptions::default()
    });
    let sub = Subscriber::start(broker.port, "rumbled/st01/events", "sub-absent");
    broker.stop();
    let port = broker.port;
    let state = tempfile::tempdir().expect("state dir");
    let config = MqttConfig {
        backoff_min_s: 0.2,
        backoff_max_s: 0.5,
        ..mqtt_config(port)
    };
    let (mut sink, handle) = daemon_publisher(&config, state.path());
    let mut emit_ms = Vec::new();
    for n in 0..CALLS {
        for rec in call(n) {
            let t = Instant::now();
            sink.emit(&rec).expect("emit");
            emit_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    emit_ms.sort_by(f64::total_cmp);
    let p99 = emit_ms[emit_ms.len() * 99 / 100];
    let stats = handle.stats();
    eprintln!(
        "broker away: {} events spooled, emit p50 {:.2} ms p99 {p99:.2} ms max {:.2} ms",
        stats.spool_depth,
        emit_ms[emit_ms.len() / 2],
        emit_ms[emit_ms.len() - 1]
    );
    assert_eq!(stats.spool_depth, 2 * CALLS);
    assert!(!stats.connected);
    // A local fsync, never a network timeout: a connect attempt alone
    // would take longer than this.
    assert!(p99 < 100.0, "emit p99 {p99} ms");

    // The broker comes back and queues everything for the subscriber,
    // whoever reconnects first.
    broker.restart();
    let (records, _) =
        drained_and_received(&handle, &sub, CALLS, Duration::from_secs(20), "broker away");
    assert!(
        records.iter().all(|r| r.historical),
        "spooled while the broker was away = delivered late"
    );
}

#[test]
fn calls_still_held_at_a_stop_are_spooled_for_the_next_start() {
    let port = mqtt_support::free_port();
    let state = tempfile::tempdir().expect("state dir");
    {
        let (mut sink, handle) = daemon_publisher(&mqtt_config(port), state.path());
        let locker = lock_spool(state.path());
        for rec in call(0) {
            sink.emit(&rec).expect("held, not an error");
        }
        assert_eq!(handle.stats().held, 2);
        // The disk is back, but no broker has taken the calls yet.
        locker.execute_batch("ROLLBACK").expect("unlock");
        assert!(
            !handle.shutdown(Duration::from_secs(1)),
            "no broker, not clean"
        );
    }
    let broker = Broker::start_on(port, &BrokerOptions::default());
    let sub = Subscriber::start(broker.port, "rumbled/st01/events", "sub-kept");
    let (_sink, handle) = daemon_publisher(&mqtt_config(port), state.path());
    let (records, _) = wait_calls(&sub, "rumbled/st01/events", 0..1, Duration::from_secs(10));
    assert!(records.iter().all(|r| r.historical), "from an earlier run");
    assert!(handle.wait_drained(Duration::from_secs(5)));
}

#[test]
fn records_spooled_by_an_earlier_run_are_delivered_flagged_historical() {
    let port = mqtt_support::free_port();
    let state = tempfile::tempdir().expect("state dir");
    {
        let (mut sink, handle) = daemon_publisher(&mqtt_config(port), state.path());
        for rec in call(0) {
            sink.emit(&rec).expect("emit");
        }
        assert_eq!(handle.stats().spool_depth, 2);
    }
    let broker = Broker::start_on(port, &BrokerOptions::default());
    let sub = Subscriber::start(broker.port, "rumbled/st01/events", "sub-restart");
    let (mut sink, handle) = daemon_publisher(&mqtt_config(port), state.path());
    sub.wait_for("the earlier run's call", Duration::from_secs(10), |r| {
        r.len() >= 2
    });
    wait_connected(&handle);
    for rec in call(1) {
        sink.emit(&rec).expect("emit");
    }
    sub.wait_for("the new call", Duration::from_secs(10), |r| r.len() >= 4);
    let records = sub.records("rumbled/st01/events");
    check_calls(&records, 0..2);
    let flags: Vec<bool> = records.iter().map(|r| r.historical).collect();
    assert_eq!(flags, [true, true, false, false]);
    assert!(handle.wait_drained(Duration::from_secs(5)));
}

fn tls_config(port: u16, certs: &mqtt_support::TlsFiles, ca: &Path) -> MqttConfig {
    MqttConfig {
        tls: true,
        ca_file: Some(ca.to_path_buf()),
        server_name: Some("broker.test".into()),
        ..mqtt_config(port)
    }
    .with_client(certs, false)
}

trait WithClient {
    fn with_client(self, certs: &mqtt_support::TlsFiles, on: bool) -> Self;
}

impl WithClient for MqttConfig {
    fn with_client(self, certs: &mqtt_support::TlsFiles, on: bool) -> Self {
        MqttConfig {
            client_cert: on.then(|| certs.client_cert.clone()),
            client_key: on.then(|| certs.client_key.clone()),
            ..self
        }
    }
}

/// Publishes one call through `config` and says whether it arrived.
fn delivers(config: &MqttConfig, sub: &Subscriber, n: u64) -> bool {
    let state = tempfile::tempdir().expect("state dir");
    let (mut sink, handle) =
        MqttPublisher::start(config, "st01", Role::Replay, state.path()).expect("start");
    let [start, _] = call(n);
    sink.emit(&start).expect("emit");
    let drained = handle.wait_drained(Duration::from_secs(4));
    if drained {
        sub.wait_for("the call", Duration::from_secs(5), |r| {
            r.iter().any(|m| {
                m.payload
                    .windows(start.id.len())
                    .any(|w| w == start.id.as_bytes())
            })
        });
    }
    drained
}

#[test]
fn tls_and_mutual_tls_with_certificates_made_at_test_time() {
    let dir = tempfile::tempdir().expect("cert dir");
    let certs = make_certs(dir.path());

    let tls = Broker::start(&BrokerOptions {
        tls: Some(certs.clone()),
        ..BrokerOptions::default()
    });
    // The subscriber listens on the broker's plain loopback listener.
    let sub = Subscriber::start(tls.plain_port, "rumbled/st01/events", "sub-tls");
    let config = tls_config(tls.port, &certs, &certs.ca);
    assert!(
        delivers(&config, &sub, 0),
        "TLS with the right CA and server name"
    );
    let wrong_ca = tls_config(tls.port, &certs, &certs.other_ca);
    assert!(!delivers(&wrong_ca, &sub, 1), "a wrong CA must not connect");
    let wrong_name = MqttConfig {
        server_name: Some("not-the-broker.test".into()),
        ..config.clone()
    };
    assert!(
        !delivers(&wrong_name, &sub, 2),
        "a wrong server name must not connect"
    );

    let mtls = Broker::start(&BrokerOptions {
        tls: Some(certs.clone()),
        require_client_cert: true,
        ..BrokerOptions::default()
    });
    let sub = Subscriber::start(mtls.plain_port, "rumbled/st01/events", "sub-mtls");
    let with_cert = tls_config(mtls.port, &certs, &certs.ca).with_client(&certs, true);
    assert!(
        delivers(&with_cert, &sub, 3),
        "mutual TLS with a client certificate"
    );
    let without = tls_config(mtls.port, &certs, &certs.ca);
    assert!(
        !delivers(&without, &sub, 4),
        "an mTLS broker refuses a client without a certificate"
    );
}

#[test]
fn home_assistant_discovery_configs_are_retained_when_enabled() {
    let broker = Broker::start(&BrokerOptions::default());
    let state = tempfile::tempdir().expect("state dir");
    let config = MqttConfig {
        home_assistant: true,
        ..mqtt_config(broker.port)
    };
    let (_sink, handle) = daemon_publisher(&config, state.path());
    wait_connected(&handle);
    // A late subscriber, as Home Assistant restarting: the configs are retained.
    std::thread::sleep(Duration::from_millis(200));
    let ha = Subscriber::start(broker.port, "homeassistant/#", "sub-ha");
    ha.wait_for("two discovery configs", Duration::from_secs(5), |r| {
        r.len() >= 2
    });
    let sensor = &ha.on("homeassistant/binary_sensor/rumbled_st01/call_active/config")[0];
    assert!(sensor.retain);
    assert_eq!(sensor.json()["state_topic"], "rumbled/st01/events");
    let event = &ha.on("homeassistant/event/rumbled_st01/call/config")[0];
    assert_eq!(event.json()["event_types"][0], "start");
}

#[test]
fn calls_the_spool_cannot_take_are_held_in_memory_and_still_delivered() {
    let broker = Broker::start(&BrokerOptions::default());
    let sub = Subscriber::start(broker.port, "rumbled/st01/events", "sub-held");
    let state = tempfile::tempdir().expect("state dir");
    let (mut sink, handle) = daemon_publisher(&mqtt_config(broker.port), state.path());
    wait_connected(&handle);
    // Another process holds the spool's write lock: every append fails
    // (after a second), as on a full or failing disk.
    let locker = lock_spool(state.path());
    for n in 0..2 {
        for rec in call(n) {
            sink.emit(&rec).expect("held, not an error");
        }
    }
    assert_eq!(handle.stats().spooled, 0, "nothing reached the spool");
    // Delivered from memory while the lock is still held (the publisher's
    // spool maintenance may wait out its own timeout first).
    let (records, _) = wait_calls(&sub, "rumbled/st01/events", 0..2, Duration::from_secs(30));
    assert!(records.iter().all(|r| !r.historical), "live news");
    let deadline = Instant::now() + Duration::from_secs(10);
    while handle.stats().held > 0 {
        assert!(Instant::now() < deadline, "held records never acknowledged");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The spool works again: back to durable records.
    locker.execute_batch("ROLLBACK").expect("unlock");
    for rec in call(2) {
        sink.emit(&rec).expect("emit");
    }
    assert_eq!(handle.stats().spooled, 2);
    wait_calls(&sub, "rumbled/st01/events", 0..3, Duration::from_secs(10));
    assert!(handle.wait_drained(Duration::from_secs(10)));
    let stats = handle.stats();
    assert_eq!((stats.held, stats.held_shed, stats.shed), (0, 0, 0));
    assert!(handle.shutdown(Duration::from_secs(5)), "clean shutdown");
}
