//! Call events: what the endpointer says about a call, and the
//! `rumbled.call/1` wire record every sink (MQTT, JSONL, logs) carries.
//!
//! The endpointer knows only frame indices and class indices; turning them
//! into wall-clock times, label names and a stable id needs the stream's
//! context, which is why the two types are separate.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::clock::rfc3339_millis;
use crate::model::Manifest;

/// Schema tag of [`CallRecord`], so subscribers can refuse records they do
/// not understand.
pub const CALL_SCHEMA: &str = "rumbled.call/1";

/// Where in its life a call is; also the record's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallPhase {
    /// The call is confirmed; announced once.
    Start,
    /// The label or confidence of an open call changed materially.
    Update,
    /// The call is over; carries its end frame and why it ended.
    End,
}

/// Why a call ended, so consumers can tell a natural end from an artefact
/// of segmentation or of the stream stopping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The call probability stayed below the offset threshold for the
    /// hang-over time.
    Quiet,
    /// The call reached the maximum duration; a new call starts at its end.
    Split,
    /// The stream ended while the call was still sounding.
    EndOfStream,
    /// A provisional start (see [`CallRecord::provisional`]) that the final
    /// frames did not confirm: there was no call after all.
    Retracted,
}

/// One endpointer decision about one call, in stream frames.
#[derive(Clone, Debug, PartialEq)]
pub struct CallEvent {
    /// Start, update or end.
    pub phase: CallPhase,
    /// Per-endpointer index of the call, shared by its start, updates and end.
    pub call: u64,
    /// Class followed in per-class mode; `None` in class-agnostic mode.
    pub track: Option<usize>,
    /// Winning class index.
    pub label: usize,
    /// Mean probability of the winning class over the call so far.
    pub confidence: f32,
    /// Mean probability of every class (background included) over the call
    /// so far, in model label order.
    pub scores: Vec<f32>,
    /// First frame of the call.
    pub start_frame: u64,
    /// Exclusive end frame; `End` events only.
    pub end_frame: Option<u64>,
    /// Why the call ended; `End` events only.
    pub end_reason: Option<EndReason>,
}

/// What a [`CallEvent`] needs from the stream to become a [`CallRecord`].
#[derive(Clone, Debug, PartialEq)]
pub struct StreamContext {
    /// Station name, the id prefix and MQTT topic part.
    pub station: String,
    /// `device` or `file`.
    pub source_kind: String,
    /// Device name or audio file name.
    pub source_name: String,
    /// Model manifest name.
    pub model_name: String,
    /// Model manifest version.
    pub model_version: String,
    /// Class names in model output order.
    pub labels: Vec<String>,
    /// Index of the no-call class, left out of the record's scores.
    pub background: Option<usize>,
    /// Seconds per endpointer frame.
    pub frame_s: f64,
    /// UTC time of the stream (or file) start, when known.
    pub anchor: Option<OffsetDateTime>,
    /// Time of frame 0 relative to the stream (or file) start, usually 0.
    pub offset_base_s: f64,
}

/// Name of the source in a [`CallRecord`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `device` or `file`.
    pub kind: String,
    /// Device or file name.
    pub name: String,
}

/// The model that produced a [`CallRecord`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Manifest name.
    pub name: String,
    /// Manifest version.
    pub version: String,
}

/// Per-class scores as a JSON object whose key order is the model's label
/// order; a plain map would sort or shuffle the keys.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores(pub Vec<(String, f32)>);

impl Serialize for Scores {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (label, score) in &self.0 {
            map.serialize_entry(label, score)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Scores {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedScores;
        impl<'de> Visitor<'de> for OrderedScores {
            type Value = Scores;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of label to score")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scores, A::Error> {
                let mut scores = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry()? {
                    scores.push(entry);
                }
                Ok(Scores(scores))
            }
        }
        deserializer.deserialize_map(OrderedScores)
    }
}

/// A call event on the wire (`rumbled.call/1`): the same JSON in MQTT,
/// JSONL files and logs. Field order is part of the contract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Always [`CALL_SCHEMA`] when written by this version.
    pub schema: String,
    /// `start`, `update` or `end`.
    #[serde(rename = "type")]
    pub phase: CallPhase,
    /// `<station>-<12 Crockford base32 chars>`, stable across replays.
    pub id: String,
    /// Per-station sequence number, assigned by the caller.
    pub seq: u64,
    /// Station name.
    pub station: String,
    /// Winning label.
    pub label: String,
    /// Mean probability of the winning label, 4 decimals.
    pub confidence: f32,
    /// Mean probability per call class (background left out), label order.
    pub scores: Scores,
    /// RFC 3339 UTC start with milliseconds, when the stream has a clock.
    pub start: Option<String>,
    /// RFC 3339 UTC end, on `end` records of a stream with a clock.
    pub end: Option<String>,
    /// Call duration in seconds, on `end` records.
    pub duration_s: Option<f64>,
    /// Start in seconds from the stream (or file) start, millisecond precision.
    pub offset_s: f64,
    /// Where the audio came from.
    pub source: SourceInfo,
    /// Which model heard the call.
    pub model: ModelInfo,
    /// True when delivered late from the spool; set by the spool.
    pub historical: bool,
    /// Why the call ended, on `end` records.
    pub end_reason: Option<EndReason>,
    /// True when the stream stopped before the call did.
    #[serde(default)]
    pub truncated: bool,
    /// True on a start sent early, from frames that are not final yet (the
    /// live daemon's low-latency alarm). Later records of the call carry the
    /// same id: an `update` with `provisional` false once the final frames
    /// confirm it, or an `end` with reason `retracted` if they do not.
    /// Absent when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub provisional: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl CallRecord {
    /// Builds the wire record of `ev`; `seq` comes from the caller because it
    /// is per station and survives restarts.
    pub fn from_event(ev: &CallEvent, ctx: &StreamContext, seq: u64) -> Self {
        let scores = ev
            .scores
            .iter()
            .enumerate()
            .filter(|&(class, _)| Some(class) != ctx.background)
            .map(|(class, &score)| (ctx.label_name(class), round4(score)))
            .collect();
        let duration_s = ev
            .end_frame
            .map(|end| round_ms(end.saturating_sub(ev.start_frame) as f64 * ctx.frame_s));
        Self {
            schema: CALL_SCHEMA.to_owned(),
            phase: ev.phase,
            id: call_id(ctx, ev.track, ev.start_frame),
            seq,
            station: ctx.station.clone(),
            label: ctx.label_name(ev.label),
            confidence: round4(ev.confidence),
            scores: Scores(scores),
            start: ctx.wall_clock(ev.start_frame),
            end: ev.end_frame.and_then(|end| ctx.wall_clock(end)),
            duration_s,
            offset_s: round_ms(ctx.offset_s(ev.start_frame)),
            source: SourceInfo {
                kind: ctx.source_kind.clone(),
                name: ctx.source_name.clone(),
            },
            model: ModelInfo {
                name: ctx.model_name.clone(),
                version: ctx.model_version.clone(),
            },
            historical: false,
            end_reason: ev.end_reason,
            truncated: ev.end_reason == Some(EndReason::EndOfStream),
            provisional: false,
        }
    }
}

impl StreamContext {
    /// The context of a stream from `source_kind` `source_name` at
    /// `station`, endpointed on `manifest`'s output frames; not anchored,
    /// frame 0 at offset 0.
    pub fn new(manifest: &Manifest, station: &str, source_kind: &str, source_name: &str) -> Self {
        StreamContext {
            station: station.to_owned(),
            source_kind: source_kind.to_owned(),
            source_name: source_name.to_owned(),
            model_name: manifest.name.clone(),
            model_version: manifest.version.clone(),
            labels: manifest.labels.clone(),
            background: manifest.background_index(),
            frame_s: manifest.output_frame_seconds(),
            anchor: None,
            offset_base_s: 0.0,
        }
    }

    /// Label names come from the validated manifest; a stray index still
    /// gets a readable name rather than taking the daemon down.
    fn label_name(&self, class: usize) -> String {
        self.labels
            .get(class)
            .cloned()
            .unwrap_or_else(|| format!("class{class}"))
    }

    /// Seconds from the stream (or file) start to the start of `frame`:
    /// the one place frame indices become stream time.
    pub fn offset_s(&self, frame: u64) -> f64 {
        self.offset_base_s + frame as f64 * self.frame_s
    }

    /// RFC 3339 UTC time of `frame`, rounded to the millisecond; `None`
    /// without an anchor or outside the years RFC 3339 can write.
    fn wall_clock(&self, frame: u64) -> Option<String> {
        let since_anchor = Duration::checked_seconds_f64(self.offset_s(frame))?;
        // Adding half a millisecond and then truncating rounds to nearest,
        // carrying into the seconds when needed.
        let t = self
            .anchor?
            .checked_add(since_anchor)?
            .checked_add(Duration::microseconds(500))?
            .checked_to_offset(UtcOffset::UTC)?;
        (0..=9999).contains(&t.year()).then(|| rfc3339_millis(t))
    }
}

/// Crockford's base32 alphabet: no I, L, O or U, so ids survive being read
/// aloud or retyped.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Id of the call starting at `start_frame` on `track`: hashing what
/// identifies the audio (not the run) makes it stable across retries and
/// replays, and start frame plus track make it unique per call.
fn call_id(ctx: &StreamContext, track: Option<usize>, start_frame: u64) -> String {
    let mut hash = Sha256::new();
    // Length prefixes keep ("ab","c") and ("a","bc") apart.
    for field in [&ctx.station, &ctx.source_name] {
        hash.update((field.len() as u64).to_le_bytes());
        hash.update(field.as_bytes());
    }
    match ctx.anchor {
        Some(anchor) => {
            hash.update([1]);
            hash.update(anchor.unix_timestamp_nanos().to_le_bytes());
        }
        None => hash.update([0]),
    }
    hash.update(((ctx.offset_base_s * 1000.0).round() as i64).to_le_bytes());
    match track {
        Some(class) => {
            hash.update([1]);
            hash.update((class as u64).to_le_bytes());
        }
        None => hash.update([0]),
    }
    hash.update(start_frame.to_le_bytes());
    let digest = hash.finalize();
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&digest[..8]);
    let bits = u64::from_be_bytes(prefix);
    // 12 characters of 5 bits: the top 60 bits of the digest.
    let code: String = (0..12)
        .map(|i| char::from(CROCKFORD[((bits >> (59 - 5 * i)) & 0x1f) as usize]))
        .collect();
    format!("{}-{code}", ctx.station)
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// Four decimals are more than any threshold needs and keep records short.
fn round4(p: f32) -> f32 {
    (p * 10_000.0).round() / 10_000.0
}

/// A plain file stream for other modules' unit tests: `a.wav` on station
/// `st01`, no clock, 0.16 s frames over `labels`, the first the background.
#[cfg(test)]
pub(crate) fn test_context(labels: &[&str]) -> StreamContext {
    StreamContext {
        station: "st01".into(),
        source_kind: "file".into(),
        source_name: "a.wav".into(),
        model_name: "m".into(),
        model_version: "1".into(),
        labels: labels.iter().map(|&l| l.to_owned()).collect(),
        background: Some(0),
        frame_s: 0.16,
        anchor: None,
        offset_base_s: 0.0,
    }
}

/// A plain record for other modules' unit tests: call `call` of a
/// two-class file stream, from frame `10 * (call + 1)`, ten frames long.
#[cfg(test)]
pub(crate) fn test_record(phase: CallPhase, call: u64, seq: u64) -> CallRecord {
    let ctx = test_context(&["bg", "rumble"]);
    let start_frame = 10 * (call + 1);
    let end = phase == CallPhase::End;
    let ev = CallEvent {
        phase,
        call,
        track: None,
        label: 1,
        confidence: 0.8,
        scores: vec![0.2, 0.8],
        start_frame,
        end_frame: end.then_some(start_frame + 10),
        end_reason: end.then_some(EndReason::Quiet),
    };
    CallRecord::from_event(&ev, &ctx, seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn ctx() -> StreamContext {
        StreamContext {
            station: "st03".into(),
            source_kind: "device".into(),
            source_name: "usb-AudioMoth".into(),
            model_name: "rumbled-edge-ev5".into(),
            model_version: "1.0.0".into(),
            labels: ["not-call", "rumble", "roar", "cry", "trumpet"]
                .map(String::from)
                .to_vec(),
            background: Some(0),
            frame_s: 0.16,
            anchor: Some(datetime!(2026-11-26 19:40:00 UTC)),
            offset_base_s: 0.0,
        }
    }

    fn start_event() -> CallEvent {
        CallEvent {
            phase: CallPhase::Start,
            call: 7,
            track: None,
            label: 1,
            confidence: 0.91,
            scores: vec![0.05, 0.91, 0.03, 0.01, 0.02],
            start_frame: 31572, // 5051.52 s
            end_frame: None,
            end_reason: None,
        }
    }

    #[test]
    fn start_record_matches_the_contract_example() {
        let rec = CallRecord::from_event(&start_event(), &ctx(), 418);
        let json = serde_json::to_string(&rec).expect("serialises");
        let expected = format!(
            concat!(
                r#"{{"schema":"rumbled.call/1","type":"start","id":"{}","seq":418,"#,
                r#""station":"st03","label":"rumble","confidence":0.91,"#,
                r#""scores":{{"rumble":0.91,"roar":0.03,"cry":0.01,"trumpet":0.02}},"#,
                r#""start":"2026-11-26T21:04:11.520Z","end":null,"duration_s":null,"#,
                r#""offset_s":5051.52,"source":{{"kind":"device","name":"usb-AudioMoth"}},"#,
                r#""model":{{"name":"rumbled-edge-ev5","version":"1.0.0"}},"historical":false,"#,
                r#""end_reason":null,"truncated":false}}"#
            ),
            rec.id
        );
        assert_eq!(json, expected);
        let back: CallRecord = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, rec);
    }

    #[test]
    fn end_record_has_end_time_duration_and_reason() {
        let ev = CallEvent {
            phase: CallPhase::End,
            end_frame: Some(31572 + 20),
            end_reason: Some(EndReason::EndOfStream),
            ..start_event()
        };
        let rec = CallRecord::from_event(&ev, &ctx(), 1);
        assert_eq!(rec.end.as_deref(), Some("2026-11-26T21:04:14.720Z"));
        assert_eq!(rec.duration_s, Some(3.2));
        assert!(rec.truncated);
        let json = serde_json::to_string(&rec).expect("serialises");
        assert!(json.contains(r#""type":"end""#), "{json}");
        assert!(json.contains(r#""end_reason":"end_of_stream","truncated":true"#));
    }

    #[test]
    fn without_anchor_times_are_null_and_offset_uses_base() {
        let ctx = StreamContext {
            anchor: None,
            offset_base_s: 1.5,
            ..ctx()
        };
        let rec = CallRecord::from_event(&start_event(), &ctx, 0);
        assert_eq!(rec.start, None);
        assert_eq!(rec.offset_s, 5053.02);
        let json = serde_json::to_string(&rec).expect("serialises");
        assert!(json.contains(r#""start":null,"end":null"#), "{json}");
    }

    #[test]
    fn wall_clock_rounds_to_nearest_millisecond() {
        let ctx = StreamContext {
            anchor: Some(datetime!(2026-01-01 23:59:59.9996 UTC)),
            ..ctx()
        };
        assert_eq!(
            ctx.wall_clock(0).as_deref(),
            Some("2026-01-02T00:00:00.000Z")
        );
        let ctx = StreamContext {
            anchor: Some(datetime!(2026-01-01 12:00:00 +02:00)),
            ..ctx
        };
        assert_eq!(
            ctx.wall_clock(1).as_deref(),
            Some("2026-01-01T10:00:00.160Z")
        );
    }

    #[test]
    fn without_background_every_class_is_scored() {
        let ctx = StreamContext {
            background: None,
            ..ctx()
        };
        let rec = CallRecord::from_event(&start_event(), &ctx, 0);
        assert_eq!(rec.scores.0.len(), 5);
        assert_eq!(rec.scores.0[0], ("not-call".to_owned(), 0.05));
    }

    #[test]
    fn id_is_stable_and_distinguishes_calls() {
        let ctx = ctx();
        let id = call_id(&ctx, None, 100);
        assert_eq!(id, call_id(&ctx, None, 100));
        assert!(id.starts_with("st03-"));
        let code = &id["st03-".len()..];
        assert_eq!(code.len(), 12);
        assert!(code.bytes().all(|b| CROCKFORD.contains(&b)), "{id}");

        let mut others = vec![
            call_id(&ctx, None, 101),
            call_id(&ctx, Some(1), 100),
            call_id(&ctx, Some(2), 100),
            call_id(
                &StreamContext {
                    anchor: None,
                    ..ctx.clone()
                },
                None,
                100,
            ),
            call_id(
                &StreamContext {
                    source_name: "other".into(),
                    ..ctx.clone()
                },
                None,
                100,
            ),
        ];
        others.extend((0..1000).map(|frame| call_id(&ctx, None, 10_000 + frame)));
        others.push(id);
        let count = others.len();
        others.sort();
        others.dedup();
        assert_eq!(others.len(), count);
    }

    #[test]
    fn the_same_event_always_gets_the_same_id_and_all_phases_share_it() {
        let start = CallRecord::from_event(&start_event(), &ctx(), 1);
        let end = CallRecord::from_event(
            &CallEvent {
                phase: CallPhase::End,
                end_frame: Some(31600),
                end_reason: Some(EndReason::Quiet),
                ..start_event()
            },
            &ctx(),
            2,
        );
        assert_eq!(start.id, end.id);
    }
}
