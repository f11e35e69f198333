//! The hand-over from a live source to the processing thread: a lock-free
//! single-producer single-consumer ring of mono f32 samples, and the
//! test-input source that plays a recording into it in real time.
//!
//! The producer side ([`RingWriter`]) runs inside the audio device's
//! real-time callback, so it never allocates, locks, logs or blocks: when the
//! ring is full it drops the whole buffer and counts it. Each run of dropped
//! buffers is remembered as a [`Gap`] at an exact sample position (on a
//! second, small ring), so the processing thread knows where the stream was
//! cut and the stream clock stays exact.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

use super::{AudioError, AudioFile, ChannelMode};

/// Gap markers the ring can hold before the consumer takes them. Gaps come
/// from overruns, at most one per device callback; the consumer takes them
/// at every read, so a handful is plenty.
const GAP_SLOTS: usize = 64;

/// A run of samples the source could not deliver because the ring was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Samples delivered before the gap, counted from the ring's start.
    pub at: u64,
    /// Samples lost.
    pub len: u64,
}

/// Counters shared by every ring of one daemon, readable at any time
/// (stats). Plain atomics, so the real-time side can update them.
#[derive(Debug, Default)]
pub struct RingCounters {
    /// Samples delivered into rings.
    pub samples: AtomicU64,
    /// Samples dropped because a ring was full.
    pub dropped: AtomicU64,
    /// Highest ring occupancy seen, in samples.
    pub high_water: AtomicUsize,
    /// Capacity of the current ring, in samples (for the fill fraction).
    pub capacity: AtomicUsize,
}

/// Producer end: owned by the device callback or the test-input thread.
pub struct RingWriter {
    samples: HeapProd<f32>,
    gaps: HeapProd<Gap>,
    pushed: u64,
    /// Samples dropped since the last buffer that got through.
    dropping: u64,
    counters: Arc<RingCounters>,
}

/// Consumer end: owned by the processing thread.
pub struct RingReader {
    samples: HeapCons<f32>,
    gaps: HeapCons<Gap>,
    popped: u64,
}

/// One continuous stream of samples from a source: a capture stream from
/// open to loss, or a test-input file. A new segment starts a new stream
/// clock; the processing thread reads one segment at a time.
pub struct Segment {
    /// The samples.
    pub reader: RingReader,
    /// Their rate.
    pub rate: u32,
    /// `device` or `file`, for the events' `source.kind`.
    pub kind: &'static str,
    /// Device description or file name, for the events' `source.name`.
    pub name: String,
}

/// What one [`RingReader::read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many samples were appended.
    Samples(usize),
    /// The stream was cut here: everything before it has been read.
    Gap(Gap),
    /// Nothing to read yet.
    Empty,
    /// The producer is gone and everything has been read.
    Ended,
}

/// A ring of `capacity` samples; `counters` accumulate over every ring.
pub fn ring(capacity: usize, counters: Arc<RingCounters>) -> (RingWriter, RingReader) {
    let capacity = capacity.max(1);
    counters.capacity.store(capacity, Ordering::Relaxed);
    let (samples_w, samples_r) = HeapRb::<f32>::new(capacity).split();
    let (gaps_w, gaps_r) = HeapRb::<Gap>::new(GAP_SLOTS).split();
    (
        RingWriter {
            samples: samples_w,
            gaps: gaps_w,
            pushed: 0,
            dropping: 0,
            counters,
        },
        RingReader {
            samples: samples_r,
            gaps: gaps_r,
            popped: 0,
        },
    )
}

impl RingWriter {
    /// Delivers one buffer of mono samples, all or nothing: a buffer that
    /// does not fit is dropped whole and counted, so every gap starts and
    /// ends on a buffer boundary. Real-time safe. Returns whether it fitted.
    pub fn push<I: ExactSizeIterator<Item = f32>>(&mut self, buffer: I) -> bool {
        let n = buffer.len();
        if n == 0 {
            return true;
        }
        let fits = self.samples.vacant_len() >= n;
        // The gap is recorded before the samples that follow it; if even the
        // marker ring is full, stay deaf until the consumer catches up.
        if !fits
            || (self.dropping > 0
                && self
                    .gaps
                    .try_push(Gap {
                        at: self.pushed,
                        len: self.dropping,
                    })
                    .is_err())
        {
            self.dropping += n as u64;
            self.counters.dropped.fetch_add(n as u64, Ordering::Relaxed);
            return false;
        }
        self.dropping = 0;
        self.samples.push_iter(buffer);
        self.pushed += n as u64;
        self.counters.samples.fetch_add(n as u64, Ordering::Relaxed);
        self.counters
            .high_water
            .fetch_max(self.samples.occupied_len(), Ordering::Relaxed);
        true
    }
}

impl RingReader {
    /// Appends up to `max` samples to `out`, stopping at the next gap.
    pub fn read(&mut self, out: &mut Vec<f32>, max: usize) -> ReadOutcome {
        // Checked before reading: once the producer is gone, nothing new can
        // arrive, so an empty ring then means the stream has ended.
        let producer_alive = self.samples.write_is_held();
        let mut limit = max;
        if let Some(gap) = self.gaps.try_peek().copied() {
            if gap.at <= self.popped {
                self.gaps.try_pop();
                return ReadOutcome::Gap(gap);
            }
            limit = limit.min((gap.at - self.popped) as usize);
        }
        let start = out.len();
        out.resize(start + limit, 0.0);
        let n = self.samples.pop_slice(&mut out[start..]);
        out.truncate(start + n);
        self.popped += n as u64;
        match n {
            0 if !producer_alive && self.samples.is_empty() => ReadOutcome::Ended,
            0 => ReadOutcome::Empty,
            n => ReadOutcome::Samples(n),
        }
    }

    /// Samples waiting in the ring.
    pub fn available(&self) -> usize {
        self.samples.occupied_len()
    }
}

/// Settings of the test input: a recording played in real time.
#[derive(Debug, Clone)]
pub struct FileSourceConfig {
    /// The recording.
    pub path: PathBuf,
    /// Channel mix or pick.
    pub channel: ChannelMode,
    /// Start again at the end, forever.
    pub looped: bool,
    /// Playback speed relative to real time (1.0 = real time).
    pub speed: f64,
}

/// Pace of the test input: buffers of 20 ms, like a sound card's periods.
const FILE_BUFFERS_PER_SECOND: u32 = 50;

/// Plays `file` (opened from `cfg.path` by the caller, so that errors
/// surface at start-up) into `writer` at `cfg.speed` times real time until the end
/// (or forever when looped) or until `stop` is set. The writer is dropped at
/// the end, which the reader sees as the end of the stream.
pub fn spawn_file_source(
    cfg: FileSourceConfig,
    mut file: AudioFile,
    mut writer: RingWriter,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<Result<(), AudioError>>> {
    std::thread::Builder::new()
        .name("rumbled-test-input".into())
        .spawn(move || {
            let rate = file.sample_rate();
            let per_buffer = (rate / FILE_BUFFERS_PER_SECOND).max(1) as usize;
            let speed = if cfg.speed > 0.0 { cfg.speed } else { 1.0 };
            let started = Instant::now();
            let mut sent = 0u64;
            let mut buffer = Vec::with_capacity(per_buffer);
            while !stop.load(Ordering::Relaxed) {
                buffer.clear();
                if file.read(&mut buffer, per_buffer)? == 0 {
                    if !cfg.looped {
                        break;
                    }
                    file = AudioFile::open(&cfg.path, cfg.channel)?;
                    continue;
                }
                let due = Duration::from_secs_f64(sent as f64 / (f64::from(rate) * speed));
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
                writer.push(buffer.iter().copied());
                sent += buffer.len() as u64;
            }
            Ok(())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters() -> Arc<RingCounters> {
        Arc::new(RingCounters::default())
    }

    fn read_all(reader: &mut RingReader) -> (Vec<f32>, Vec<ReadOutcome>) {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        loop {
            match reader.read(&mut out, 1000) {
                ReadOutcome::Samples(_) => {}
                ReadOutcome::Empty => break,
                other => seen.push(other),
            }
        }
        (out, seen)
    }

    #[test]
    fn samples_pass_in_order() {
        let (mut w, mut r) = ring(100, counters());
        assert!(w.push([1.0, 2.0, 3.0].into_iter()));
        assert!(w.push([4.0].into_iter()));
        let (out, seen) = read_all(&mut r);
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0]);
        assert!(seen.is_empty());
    }

    #[test]
    fn a_full_ring_drops_whole_buffers_and_marks_the_gap() {
        let c = counters();
        let (mut w, mut r) = ring(10, c.clone());
        assert!(w.push((0..8).map(|i| i as f32)));
        // 4 do not fit in the 2 left: dropped whole, twice.
        assert!(!w.push([100.0; 4].into_iter()));
        assert!(!w.push([100.0; 3].into_iter()));
        assert_eq!(c.dropped.load(Ordering::Relaxed), 7);
        let mut out = Vec::new();
        assert_eq!(r.read(&mut out, 100), ReadOutcome::Samples(8));
        assert!(w.push([9.0, 10.0].into_iter()));
        assert_eq!(
            r.read(&mut out, 100),
            ReadOutcome::Gap(Gap { at: 8, len: 7 })
        );
        assert_eq!(r.read(&mut out, 100), ReadOutcome::Samples(2));
        assert_eq!(out[8..], [9.0, 10.0]);
        assert_eq!(c.samples.load(Ordering::Relaxed), 10);
        assert_eq!(c.high_water.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn reads_stop_at_a_gap_even_when_more_is_waiting() {
        let (mut w, mut r) = ring(10, counters());
        w.push([1.0; 6].into_iter());
        w.push([2.0; 6].into_iter()); // dropped
        let mut out = Vec::new();
        assert_eq!(r.read(&mut out, 4), ReadOutcome::Samples(4));
        w.push([3.0; 2].into_iter()); // closes the gap at 6
        w.push([4.0; 2].into_iter());
        assert_eq!(r.read(&mut out, 100), ReadOutcome::Samples(2));
        assert_eq!(
            r.read(&mut out, 100),
            ReadOutcome::Gap(Gap { at: 6, len: 6 })
        );
        assert_eq!(r.read(&mut out, 100), ReadOutcome::Samples(4));
        assert_eq!(out, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.0, 3.0, 4.0, 4.0]);
    }

    #[test]
    fn the_end_is_seen_only_after_everything_was_read() {
        let (mut w, mut r) = ring(10, counters());
        w.push([1.0; 3].into_iter());
        drop(w);
        let mut out = Vec::new();
        assert_eq!(r.read(&mut out, 2), ReadOutcome::Samples(2));
        assert_eq!(r.read(&mut out, 2), ReadOutcome::Samples(1));
        assert_eq!(r.read(&mut out, 2), ReadOutcome::Ended);
    }

    #[test]
    fn overrunning_from_another_thread_never_loses_count() {
        let c = counters();
        let (mut w, mut r) = ring(64, c.clone());
        let producer = std::thread::spawn(move || {
            for i in 0..20_000u32 {
                w.push(std::iter::repeat_n(i as f32, 7));
            }
        });
        let mut out = Vec::new();
        let mut gaps = 0u64;
        loop {
            match r.read(&mut out, 13) {
                ReadOutcome::Ended => break,
                ReadOutcome::Gap(g) => gaps += g.len,
                _ => std::thread::yield_now(),
            }
        }
        producer.join().expect("producer");
        let dropped = c.dropped.load(Ordering::Relaxed);
        assert_eq!(out.len() as u64 + dropped, 20_000 * 7);
        // Buffers arrive whole and in order.
        for chunk in out.chunks(7) {
            assert!(chunk.iter().all(|&x| x == chunk[0]));
        }
        assert!(gaps <= dropped);
    }
}
