//! Per-call evidence for the live daemon (`[evidence] enabled = true`).
//!
//! The processing thread hands each stream's samples and call records to an
//! [`EvidenceWriter`] running on a thread of its own, so encoding a clip and
//! drawing its spectrogram (tens of milliseconds, more on a Pi, plus an SD
//! card write) never holds up listening. The hand-over is bounded: if the
//! writer falls behind (a stuck card), what does not fit is skipped and
//! counted, never queued without limit, and detection goes on. After a skip
//! the writer is restarted on the stream's clock at the next sample that
//! reaches it, so later clips stay sample-accurate.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::detect::CallRecord;
use crate::evidence::{EvidenceConfig, EvidenceReport, EvidenceWriter};

/// Messages the channel holds. The processing thread reads ~50 ms of audio
/// per turn when keeping up, so this is many seconds of backlog; its worst
/// case (full 8000-sample reads) is 16 MB.
const CHANNEL_MESSAGES: usize = 512;

/// What the evidence thread is told.
#[derive(Debug, PartialEq)]
enum Message {
    /// A new stream at `rate` Hz whose first sample is at `start_offset_s`.
    Stream { rate: u32, start_offset_s: f64 },
    /// The stream's next samples.
    Samples(Vec<f32>),
    /// A call record of the stream.
    Record(Box<CallRecord>),
}

/// The processing thread's end of the hand-over.
pub struct EvidenceFeed {
    tx: SyncSender<Message>,
    report: Arc<Mutex<EvidenceReport>>,
    /// The current stream's rate and the offset of its sample 0.
    rate: u32,
    start_offset_s: f64,
    /// Samples of the current stream seen so far, handed over or not.
    seen: u64,
    /// Set when something was skipped: the next samples start a new stream.
    resync: bool,
}

impl EvidenceFeed {
    /// Starts the evidence thread for calls reported up to
    /// `detection_delay_s` after they start. Returns the feed, the thread
    /// (it ends once the feed is dropped and the last clips are written)
    /// and the report the stats read.
    pub fn start(
        config: &EvidenceConfig,
        detection_delay_s: f64,
    ) -> std::io::Result<(Self, JoinHandle<()>, Arc<Mutex<EvidenceReport>>)> {
        let (tx, rx) = sync_channel(CHANNEL_MESSAGES);
        let report = Arc::new(Mutex::new(EvidenceReport::default()));
        let config = config.clone();
        let shared = Arc::clone(&report);
        let thread = std::thread::Builder::new()
            .name("rumbled-evidence".into())
            .spawn(move || run(&config, detection_delay_s, &rx, &shared))?;
        Ok((EvidenceFeed::new(tx, Arc::clone(&report)), thread, report))
    }

    fn new(tx: SyncSender<Message>, report: Arc<Mutex<EvidenceReport>>) -> Self {
        EvidenceFeed {
            tx,
            report,
            rate: 0,
            start_offset_s: 0.0,
            seen: 0,
            resync: false,
        }
    }

    /// A new stream: the first segment's samples, a device reopened, or the
    /// samples after a gap.
    pub fn new_stream(&mut self, rate: u32, start_offset_s: f64) {
        self.rate = rate;
        self.start_offset_s = start_offset_s;
        self.seen = 0;
        self.resync = !self.send(Message::Stream {
            rate,
            start_offset_s,
        });
    }

    /// The stream's next samples, before the detector sees them.
    pub fn samples(&mut self, samples: &[f32]) {
        let position_s = self.seen as f64 / f64::from(self.rate.max(1));
        self.seen += samples.len() as u64;
        if self.resync {
            let restart = Message::Stream {
                rate: self.rate,
                start_offset_s: self.start_offset_s + position_s,
            };
            if !self.send(restart) {
                self.skipped(0, samples.len());
                return;
            }
            self.resync = false;
        }
        if !self.send(Message::Samples(samples.to_vec())) {
            self.resync = true;
            self.skipped(0, samples.len());
        }
    }

    /// A call record of the stream (only ends lead to evidence).
    pub fn record(&mut self, record: &CallRecord) {
        if !self.send(Message::Record(Box::new(record.clone()))) {
            tracing::warn!("evidence writer behind: no evidence for call {}", record.id);
            self.skipped(1, 0);
        }
    }

    /// Whether the message was handed over; a writer that is gone (it
    /// panicked) or full takes nothing.
    fn send(&self, message: Message) -> bool {
        match self.tx.try_send(message) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    fn skipped(&self, calls: u64, samples: usize) {
        let mut report = lock(&self.report);
        report.skipped_calls += calls;
        report.skipped_audio_s += samples as f64 / f64::from(self.rate.max(1));
    }
}

/// The evidence thread: one writer for the daemon's life (one quota),
/// restarted on each stream's clock.
fn run(
    config: &EvidenceConfig,
    delay_s: f64,
    rx: &Receiver<Message>,
    report: &Mutex<EvidenceReport>,
) {
    let mut writer: Option<EvidenceWriter> = None;
    for message in rx {
        match message {
            Message::Stream {
                rate,
                start_offset_s,
            } => writer
                .get_or_insert_with(|| EvidenceWriter::new(config, rate, delay_s))
                .new_stream(rate, start_offset_s),
            Message::Samples(samples) => {
                if let Some(w) = writer.as_mut() {
                    w.push_samples(&samples);
                }
            }
            Message::Record(record) => {
                if let Some(w) = writer.as_mut() {
                    w.on_event(&record);
                }
            }
        }
        if let Some(w) = &writer {
            lock(report).writer = w.stats();
        }
    }
    // The daemon is stopping: calls still waiting for their post-roll get
    // the audio there is.
    if let Some(w) = writer.as_mut() {
        w.finish();
        lock(report).writer = w.stats();
    }
}

fn lock(report: &Mutex<EvidenceReport>) -> std::sync::MutexGuard<'_, EvidenceReport> {
    // Plain counters: a half-updated report is still worth reading.
    report.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::CallPhase;
    use crate::detect::event::test_record;

    #[test]
    fn a_full_hand_over_skips_and_restarts_the_writer_on_the_streams_clock() {
        let (tx, rx) = sync_channel(3);
        let report = Arc::new(Mutex::new(EvidenceReport::default()));
        let mut feed = EvidenceFeed::new(tx, Arc::clone(&report));
        feed.new_stream(1000, 10.0);
        feed.samples(&[0.1; 100]);
        feed.samples(&[0.2; 200]);
        // The writer is stuck: these find the channel full.
        feed.samples(&[0.3; 250]);
        feed.record(&test_record(CallPhase::End, 0, 1));
        let taken: Vec<Message> = rx.try_iter().collect();
        assert_eq!(
            taken,
            [
                Message::Stream {
                    rate: 1000,
                    start_offset_s: 10.0
                },
                Message::Samples(vec![0.1; 100]),
                Message::Samples(vec![0.2; 200]),
            ]
        );
        // The writer caught up: the next samples come as a new stream that
        // starts where they do, after the 550 samples seen before them.
        feed.samples(&[0.4; 50]);
        let taken: Vec<Message> = rx.try_iter().collect();
        assert_eq!(
            taken,
            [
                Message::Stream {
                    rate: 1000,
                    start_offset_s: 10.55
                },
                Message::Samples(vec![0.4; 50]),
            ]
        );
        let report = *report.lock().expect("report");
        assert_eq!(report.skipped_calls, 1);
        assert!((report.skipped_audio_s - 0.25).abs() < 1e-12);
    }
}
