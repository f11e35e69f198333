//! Where the daemon's call events go. Every sink gets every event, in
//! order, on a thread of its own, so a slow sink (a full disk, a stuck
//! network) never holds up listening; events are queued for it instead,
//! and an event that cannot be delivered is logged in full, never dropped
//! silently.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use crate::config::Config;
use crate::detect::CallRecord;
use crate::publish::{EventSink, JsonlSink};

/// A sink the sink thread can own.
pub type BoxedSink = Box<dyn EventSink + Send>;

/// Events the channel to the sink thread holds before the processing
/// thread keeps them in its own backlog instead.
const CHANNEL_EVENTS: usize = 1024;

/// Most events held back while the sinks are stuck; past this the oldest
/// are shed, each logged in full. Calls are minutes apart, so this is days
/// of a station's events.
const MAX_BACKLOG: usize = 100_000;

/// The outputs `config` asks for, each event also logged at info level.
/// Adding an output is one `push` here.
pub fn build_sinks(config: &Config) -> Result<Vec<BoxedSink>> {
    let mut sinks: Vec<BoxedSink> = vec![Box::new(LogSink)];
    if let Some(path) = &config.output.events {
        sinks.push(Box::new(open_jsonl(path)?));
    }
    Ok(sinks)
}

/// Whether a reload must rebuild the sinks.
pub fn sinks_changed(old: &Config, new: &Config) -> bool {
    old.output != new.output
}

/// Appends to the events file (a restarted daemon must not truncate what
/// the previous run wrote), each event as soon as it happens.
fn open_jsonl(path: &Path) -> Result<JsonlSink<std::fs::File>> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open events file {} (output.events)", path.display()))?;
    Ok(JsonlSink::new(file, path.display().to_string()).flush_every_event())
}

/// Logs every event as its JSON record, so the journal alone tells what a
/// station heard.
pub struct LogSink;

impl EventSink for LogSink {
    fn emit(&mut self, rec: &CallRecord) -> Result<()> {
        let json = serde_json::to_string(rec).context("serialising an event")?;
        tracing::info!(target: "rumbled::event", "{json}");
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A message to the sink thread.
pub enum SinkMessage {
    /// Deliver this event to every sink.
    Event(Box<CallRecord>),
    /// Close the current sinks and use these from now on (reload).
    Replace(Vec<BoxedSink>),
}

/// Starts the sink thread. It runs until every sender is dropped, then
/// closes the sinks and ends.
pub fn spawn_sink_thread(
    sinks: Vec<BoxedSink>,
) -> std::io::Result<(SyncSender<SinkMessage>, JoinHandle<()>)> {
    let (tx, rx) = sync_channel(CHANNEL_EVENTS);
    let thread = std::thread::Builder::new()
        .name("rumbled-sinks".into())
        .spawn(move || deliver_all(sinks, &rx))?;
    Ok((tx, thread))
}

fn deliver_all(mut sinks: Vec<BoxedSink>, rx: &Receiver<SinkMessage>) {
    for message in rx {
        match message {
            SinkMessage::Event(rec) => {
                for sink in &mut sinks {
                    if let Err(e) = sink.emit(&rec) {
                        tracing::error!("{e:#}; the event was: {}", to_json(&rec));
                    }
                }
            }
            SinkMessage::Replace(new) => {
                close_all(&mut sinks);
                sinks = new;
            }
        }
    }
    close_all(&mut sinks);
}

fn close_all(sinks: &mut [BoxedSink]) {
    for sink in sinks {
        if let Err(e) = sink.close() {
            tracing::error!("closing an output: {e:#}");
        }
    }
}

fn to_json(rec: &CallRecord) -> String {
    serde_json::to_string(rec).unwrap_or_else(|e| format!("{rec:?} ({e})"))
}

/// The processing thread's end of the sink channel: never blocks, keeps
/// what the channel cannot take in a bounded backlog.
pub struct SinkFeeder {
    tx: SyncSender<SinkMessage>,
    backlog: VecDeque<Box<CallRecord>>,
    warned: bool,
}

impl SinkFeeder {
    /// Feeds the sink thread behind `tx`.
    pub fn new(tx: SyncSender<SinkMessage>) -> Self {
        SinkFeeder {
            tx,
            backlog: VecDeque::new(),
            warned: false,
        }
    }

    /// Queues an event without waiting.
    pub fn send(&mut self, rec: CallRecord) {
        self.backlog.push_back(Box::new(rec));
        self.pump();
        if self.backlog.len() > MAX_BACKLOG
            && let Some(shed) = self.backlog.pop_front()
        {
            tracing::error!(
                "outputs stuck with {MAX_BACKLOG} events waiting; shedding the oldest: {}",
                to_json(&shed)
            );
        }
    }

    /// Hands the backlog to the channel as far as it has room.
    pub fn pump(&mut self) {
        while let Some(rec) = self.backlog.pop_front() {
            match self.tx.try_send(SinkMessage::Event(rec)) {
                Ok(()) => {}
                Err(TrySendError::Full(SinkMessage::Event(rec))) => {
                    self.backlog.push_front(rec);
                    if !self.warned {
                        self.warned = true;
                        tracing::warn!("outputs are slow; holding events back until they catch up");
                    }
                    return;
                }
                Err(TrySendError::Full(_)) => return,
                Err(TrySendError::Disconnected(message)) => {
                    if let SinkMessage::Event(rec) = message {
                        tracing::error!("outputs are gone; the event was: {}", to_json(&rec));
                    }
                }
            }
        }
        self.warned = false;
    }

    /// Events waiting in the backlog.
    pub fn backlog(&self) -> usize {
        self.backlog.len()
    }

    /// Delivers the whole backlog, waiting for the sinks (at shutdown).
    pub fn drain(&mut self) {
        while let Some(rec) = self.backlog.pop_front() {
            if let Err(e) = self.tx.send(SinkMessage::Event(rec))
                && let SinkMessage::Event(rec) = e.0
            {
                tracing::error!("outputs are gone; the event was: {}", to_json(&rec));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records what it got; can be made slow.
    #[derive(Clone, Default)]
    struct Recorder {
        got: Arc<Mutex<Vec<u64>>>,
        closed: Arc<Mutex<bool>>,
        delay_ms: u64,
    }

    impl EventSink for Recorder {
        fn emit(&mut self, rec: &CallRecord) -> Result<()> {
            std::thread::sleep(std::time::Duration::from_millis(self.delay_ms));
            self.got.lock().expect("lock").push(rec.seq);
            Ok(())
        }
        fn close(&mut self) -> Result<()> {
            *self.closed.lock().expect("lock") = true;
            Ok(())
        }
    }

    fn record(seq: u64) -> CallRecord {
        let line = format!(
            r#"{{"schema":"rumbled.call/1","type":"start","id":"s-1","seq":{seq},"station":"s",
            "label":"rumble","confidence":0.9,"scores":{{"rumble":0.9}},"start":null,"end":null,
            "duration_s":null,"offset_s":1.0,"source":{{"kind":"file","name":"a"}},
            "model":{{"name":"m","version":"1"}},"historical":false,"end_reason":null}}"#
        );
        serde_json::from_str(&line).expect("record")
    }

    #[test]
    fn a_slow_sink_never_blocks_the_sender_and_loses_nothing() {
        let slow = Recorder {
            delay_ms: 2,
            ..Recorder::default()
        };
        let (tx, thread) = spawn_sink_thread(vec![Box::new(slow.clone())]).expect("thread");
        let mut feeder = SinkFeeder::new(tx);
        let started = std::time::Instant::now();
        for seq in 1..=(CHANNEL_EVENTS as u64 + 200) {
            feeder.send(record(seq));
        }
        // 1224 events at 2 ms each take 2.4 s to write; sending took none.
        assert!(started.elapsed() < std::time::Duration::from_millis(500));
        assert!(feeder.backlog() > 0);
        feeder.drain();
        drop(feeder);
        thread.join().expect("sink thread");
        let got = slow.got.lock().expect("lock").clone();
        assert_eq!(got, (1..=(CHANNEL_EVENTS as u64 + 200)).collect::<Vec<_>>());
        assert!(*slow.closed.lock().expect("lock"));
    }

    #[test]
    fn replacing_sinks_closes_the_old_ones_in_order() {
        let (old, new) = (Recorder::default(), Recorder::default());
        let (tx, thread) = spawn_sink_thread(vec![Box::new(old.clone())]).expect("thread");
        tx.send(SinkMessage::Event(Box::new(record(1))))
            .expect("send");
        tx.send(SinkMessage::Replace(vec![Box::new(new.clone())]))
            .expect("send");
        tx.send(SinkMessage::Event(Box::new(record(2))))
            .expect("send");
        drop(tx);
        thread.join().expect("sink thread");
        assert_eq!(*old.got.lock().expect("lock"), [1]);
        assert!(*old.closed.lock().expect("lock"));
        assert_eq!(*new.got.lock().expect("lock"), [2]);
    }
}
