//! The wire contract: every payload rumbled publishes validates against the
//! committed JSON Schema of its version (`schemas/`), and a committed
//! schema is frozen, so a payload cannot change without a version bump.
//!
//! To change a payload: add `schemas/<name>-<n+1>.schema.json`, bump the
//! version constant in the code (`CALL_SCHEMA`, `STATUS_SCHEMA`), and pin
//! the new schema's hash in `PINNED` below (the failure message prints it).

mod mqtt_support;

use std::path::Path;
use std::time::{Duration, Instant};

use mqtt_support::{Broker, BrokerOptions, Subscriber, mqtt_config};
use rumbled::detect::{
    CALL_SCHEMA, CallEvent, CallPhase, CallRecord, EndReason, ModelInfo, StreamContext,
};
use rumbled::publish::mqtt::STATUS_SCHEMA;
use rumbled::publish::{EventSink, MqttPublisher, Role, StatusInfo, StatusPayload, StatusState};
use sha2::{Digest, Sha256};
use time::macros::datetime;

/// SHA-256 of each published schema (canonical JSON, so whitespace does not
/// count). A version's schema never changes once pinned.
const PINNED: &[(&str, &str)] = &[
    (
        "rumbled.call/1",
        "e161187a69638f1ac81fbbfd152aa400126d5557547a37be056aded7d275f68a",
    ),
    (
        "rumbled.status/1",
        "3dd7a2b5602905582e000bc60cbe59e3013419595cf41af3cefeeecb96182d78",
    ),
];

/// `rumbled.call/1` -> `schemas/rumbled.call-1.schema.json`.
fn schema_path(version: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(format!("{}.schema.json", version.replace('/', "-")))
}

fn load(version: &str) -> serde_json::Value {
    let path = schema_path(version);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{version} has no committed schema at {}: {e}",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("schema is JSON")
}

/// Validates payloads against one schema version, naming what failed.
struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
    version: String,
}

impl Validator {
    fn new(version: &str) -> Self {
        let schema = load(version);
        assert_eq!(
            schema["properties"]["schema"]["const"], version,
            "the schema file of {version} must pin its own version"
        );
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        let url = format!("urn:test:{}", version.replace('/', "-"));
        compiler.add_resource(&url, schema).expect("add schema");
        let index = compiler
            .compile(&url, &mut schemas)
            .expect("schema compiles");
        Validator {
            schemas,
            index,
            version: version.to_owned(),
        }
    }

    fn check(&self, payload: &[u8]) {
        let value: serde_json::Value = serde_json::from_slice(payload).expect("payload is JSON");
        if let Err(e) = self.schemas.validate(&value, self.index) {
            panic!(
                "payload does not match the committed {} schema (a payload change needs a new \
                 schema version, see tests/mqtt_contract.rs):\n{e:#}\npayload: {value}",
                self.version
            );
        }
    }
}

/// Compact JSON with object keys sorted, whatever serde_json's map keeps.
fn canonical(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::Value::from(k.as_str()),
                        canonical(&map[k])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

#[test]
fn committed_schemas_are_frozen_per_version() {
    for (version, pinned) in PINNED {
        let canonical = canonical(&load(version));
        let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
        assert_eq!(
            &hash,
            pinned,
            "schemas/{}.schema.json changed, but {version} is published: add a new version \
             instead (or, for a new version, pin this hash)",
            version.replace('/', "-")
        );
    }
    let versions: Vec<&str> = PINNED.iter().map(|p| p.0).collect();
    assert!(
        versions.contains(&CALL_SCHEMA),
        "pin the schema of {CALL_SCHEMA}"
    );
    assert!(
        versions.contains(&STATUS_SCHEMA),
        "pin the schema of {STATUS_SCHEMA}"
    );
}

fn context(anchored: bool) -> StreamContext {
    StreamContext {
        station: "st-03_b".into(),
        source_kind: if anchored { "file" } else { "device" }.into(),
        source_name: "20261126_194000.WAV".into(),
        model_name: "rumbled-edge-ev5".into(),
        model_version: "1.0.0".into(),
        labels: ["not-call", "rumble", "roar", "cry", "trumpet"]
            .map(String::from)
            .to_vec(),
        background: Some(0),
        frame_s: 0.16,
        anchor: anchored.then_some(datetime!(2026-11-26 19:40:00 UTC)),
        offset_base_s: 0.0,
    }
}

/// Every kind of record the code can write: each phase and end reason,
/// with and without a clock, per-class tracks, late and provisional ones.
fn all_kinds_of_record() -> Vec<CallRecord> {
    let start = CallEvent {
        phase: CallPhase::Start,
        call: 3,
        track: None,
        label: 1,
        confidence: 0.91,
        scores: vec![0.05, 0.91, 0.03, 0.01, 0.0],
        start_frame: 31_572,
        end_frame: None,
        end_reason: None,
    };
    let mut events = vec![
        start.clone(),
        CallEvent {
            phase: CallPhase::Update,
            label: 2,
            ..start.clone()
        },
        CallEvent {
            track: Some(4),
            ..start.clone()
        },
    ];
    for reason in [
        EndReason::Quiet,
        EndReason::Split,
        EndReason::EndOfStream,
        EndReason::Retracted,
    ] {
        events.push(CallEvent {
            phase: CallPhase::End,
            end_frame: Some(31_600),
            end_reason: Some(reason),
            ..start.clone()
        });
    }
    let mut records = Vec::new();
    for anchored in [true, false] {
        for (i, ev) in events.iter().enumerate() {
            records.push(CallRecord::from_event(ev, &context(anchored), 1 + i as u64));
        }
    }
    let late = CallRecord {
        historical: true,
        ..records[0].clone()
    };
    let provisional = CallRecord {
        provisional: true,
        ..records[0].clone()
    };
    records.extend([late, provisional]);
    records
}

#[test]
fn every_kind_of_call_record_matches_its_schema() {
    let validator = Validator::new(CALL_SCHEMA);
    for record in all_kinds_of_record() {
        assert_eq!(record.schema, CALL_SCHEMA);
        validator.check(&serde_json::to_vec(&record).expect("json"));
    }
}

#[test]
fn the_schema_rejects_what_the_contract_forbids() {
    let validator = Validator::new(CALL_SCHEMA);
    let good = serde_json::to_value(&all_kinds_of_record()[0]).expect("json");
    let mut bad = Vec::new();
    let mut extra = good.clone();
    extra["colour"] = "grey".into();
    bad.push(("an unknown field", extra));
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("seq");
    bad.push(("a missing field", missing));
    let mut ended = good.clone();
    ended["type"] = "end".into();
    bad.push(("an end without reason and duration", ended));
    let mut version = good.clone();
    version["schema"] = "rumbled.call/2".into();
    bad.push(("another version", version));
    for (what, value) in bad {
        assert!(
            validator.schemas.validate(&value, validator.index).is_err(),
            "{what} must be refused"
        );
    }
}

fn status_info() -> StatusInfo {
    StatusInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        model: ModelInfo {
            name: "rumbled-edge-ev5".into(),
            version: "1.0.0".into(),
        },
        config_hash: rumbled::publish::mqtt::config_hash(&rumbled::config::Config::default()),
        started: "2026-11-26T21:00:00.000Z".into(),
    }
}

#[test]
fn published_payloads_match_their_schemas() {
    let calls = Validator::new(CALL_SCHEMA);
    let status = Validator::new(STATUS_SCHEMA);
    // The will is fixed at connect time; it is built by the same function.
    let will = StatusPayload::new("st01", &status_info(), StatusState::Offline);
    status.check(&serde_json::to_vec(&will).expect("json"));

    let broker = Broker::start(&BrokerOptions::default());
    let sub = Subscriber::start(broker.port, "rumbled/st01/#", "sub-contract");
    let state = tempfile::tempdir().expect("state dir");
    let (mut sink, handle) = MqttPublisher::start(
        &mqtt_config(broker.port),
        "st01",
        Role::Daemon(status_info()),
        state.path(),
    )
    .expect("start");
    let records = all_kinds_of_record();
    for record in &records {
        sink.emit(record).expect("emit");
    }
    assert!(handle.wait_drained(Duration::from_secs(10)));
    assert!(handle.shutdown(Duration::from_secs(5)));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status_msgs = sub.on("rumbled/st01/status");
        let events = sub.on("rumbled/st01/events");
        if events.len() >= records.len() && status_msgs.len() >= 2 {
            for m in &events {
                calls.check(&m.payload);
            }
            for m in &status_msgs {
                status.check(&m.payload);
            }
            break;
        }
        assert!(Instant::now() < deadline, "payloads did not all arrive");
        std::thread::sleep(Duration::from_millis(20));
    }
}
