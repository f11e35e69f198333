//! The spool's cost: durable appends per second, and the latency it adds to
//! a publish while connected (emit -> subscriber, against a plain rumqttc
//! QoS 1 publish of the same payload to the same local mosquitto).
//!
//! `cargo bench --bench spool` (needs mosquitto, as the tests do); under
//! `cargo test` it runs a few rounds only, as a smoke test.

#[path = "../tests/mqtt_support/mod.rs"]
mod mqtt_support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use mqtt_support::{Broker, BrokerOptions, call, mqtt_config};
use rumbled::publish::spool::{Spool, SpoolLimits};
use rumbled::publish::{EventSink, MqttPublisher, Role};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

/// Appends and round trips measured: full under `cargo bench`, a smoke
/// test under `cargo test`.
fn sizes() -> (usize, usize) {
    if std::env::args().any(|a| a == "--bench") {
        (2000, 300)
    } else {
        (40, 10)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(name: &str, mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let (p50, p95, p99) = (
        percentile(&ms, 0.5),
        percentile(&ms, 0.95),
        percentile(&ms, 0.99),
    );
    println!(
        "{name:<34} p50 {p50:6.2} ms  p95 {p95:6.2} ms  p99 {p99:6.2} ms  max {:6.2} ms",
        ms[ms.len() - 1]
    );
    (p50, p95)
}

/// Durable appends per second, fsync included.
fn throughput(appends: usize) {
    let dir = tempfile::tempdir().expect("dir");
    let limits = SpoolLimits {
        max_events: 1 << 30,
        max_bytes: 1 << 40,
        max_age: Duration::from_secs(86_400),
    };
    let mut spool = Spool::open(dir.path(), "bench", limits, true).expect("spool");
    let records: Vec<_> = (0..appends as u64 / 2).flat_map(call).collect();
    let mut each = Vec::with_capacity(records.len());
    let started = Instant::now();
    for rec in &records {
        let t = Instant::now();
        spool.append(rec).expect("append");
        each.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "spool append (fsync per record)    {:.0} records/s durable ({} records, {} bytes each)",
        records.len() as f64 / secs,
        records.len(),
        serde_json::to_vec(&records[0]).expect("json").len()
    );
    summary("  append latency", each);
}

/// What arrived, when.
type Arrival = (Vec<u8>, Instant);

/// A subscriber that reports each message with its arrival time.
fn subscriber(port: u16) -> (Client, mpsc::Receiver<Arrival>) {
    let mut options = MqttOptions::new("bench-sub", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut connection) = Client::new(options, 100);
    client
        .subscribe("bench/#", QoS::AtLeastOnce)
        .expect("subscribe");
    client
        .subscribe("rumbled/#", QoS::AtLeastOnce)
        .expect("subscribe");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send((p.payload.to_vec(), Instant::now())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    (client, rx)
}

/// Milliseconds from `sent` until the message with `seq` arrives; any
/// other arrival (none is expected) is skipped, not mistaken for it.
fn latency(arrivals: &mpsc::Receiver<Arrival>, seq: u64, sent: Instant) -> f64 {
    loop {
        let (payload, at) = arrivals
            .recv_timeout(Duration::from_secs(5))
            .expect("arrival");
        let got: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        if got["seq"] == seq {
            return (at - sent).as_secs_f64() * 1e3;
        }
    }
}

fn main() {
    let (appends, round_trips) = sizes();
    throughput(appends);

    let broker = Broker::start(&BrokerOptions::default());
    let (_sub, arrivals) = subscriber(broker.port);
    std::thread::sleep(Duration::from_millis(300));
    // Distinct seq numbers, so each arrival is matched to its publish.
    let payloads: Vec<_> = (0..round_trips as u64)
        .map(|n| call(n)[0].clone())
        .collect();

    // Baseline: the same payload straight through rumqttc.
    let mut options = MqttOptions::new("bench-direct", "127.0.0.1", broker.port);
    options.set_keep_alive(Duration::from_secs(30));
    let (direct, mut connection) = Client::new(options, 100);
    std::thread::spawn(move || for _ in connection.iter() {});
    std::thread::sleep(Duration::from_millis(300));
    let mut base = Vec::new();
    for rec in &payloads {
        let t = Instant::now();
        let bytes = serde_json::to_vec(rec).expect("json");
        direct
            .publish("bench/events", QoS::AtLeastOnce, false, bytes)
            .expect("publish");
        base.push(latency(&arrivals, rec.seq, t));
    }

    // Through the spool: emit (durable append) -> publisher thread -> broker.
    let state = tempfile::tempdir().expect("state");
    let (mut sink, handle) = MqttPublisher::start(
        &mqtt_config(broker.port),
        "st01",
        Role::Replay,
        state.path(),
    )
    .expect("start");
    while !handle.stats().connected {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut spooled = Vec::new();
    for rec in &payloads {
        let t = Instant::now();
        sink.emit(rec).expect("emit");
        spooled.push(latency(&arrivals, rec.seq, t));
    }
    println!("publish -> subscriber, {round_trips} one at a time, local mosquitto:");
    let (b50, b95) = summary("  rumqttc QoS 1 directly", base);
    let (s50, s95) = summary("  through the spool (MqttSink::emit)", spooled);
    println!(
        "  extra latency of the spool: p50 {:.2} ms, p95 {:.2} ms (target p95 <= 20 ms)",
        s50 - b50,
        s95 - b95
    );
    handle.shutdown(Duration::from_secs(2));
}
