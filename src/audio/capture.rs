//! Live capture from a sound device with cpal, kept alive for months.
//!
//! A device is named in the config by its cpal id (`alsa:hw:CARD=Mic,DEV=0`)
//! or by a case-insensitive part of its description, so a USB microphone is
//! found again after a reboot renumbers the cards. The stream runs in the
//! best format the device offers (see [`choose_format`]); its callback
//! converts each buffer to mono f32 and hands it to a [`RingWriter`], nothing
//! else. A supervisor thread watches the stream, and when the device fails,
//! vanishes or stalls it logs why, drops the stream and tries again with a
//! capped exponential backoff, handing each new stream to the processing
//! thread as a new [`Segment`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{
    BufferSize, FromSample, SampleFormat, SizedSample, StreamConfig, SupportedBufferSize,
    SupportedStreamConfigRange,
};

use super::source::{RingCounters, RingWriter, Segment, ring};
use crate::config::ChannelSelect;

/// Why a capture device could not be found or opened.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The audio system could not list its devices.
    #[error("cannot list audio devices: {0}")]
    Enumerate(cpal::Error),
    /// No device matches the configured name.
    #[error(
        "no input device matches `{spec}` (input.device); available: {}; run `rumbled devices`",
        if available.is_empty() { "none".to_owned() } else { available.join(", ") }
    )]
    NotFound {
        /// The configured name.
        spec: String,
        /// Ids of the devices that exist.
        available: Vec<String>,
    },
    /// The device exists but refused a request.
    #[error("input device `{device}`: {what}: {error}")]
    Device {
        /// The device's id or description.
        device: String,
        /// What was being done.
        what: &'static str,
        /// cpal's description.
        error: cpal::Error,
    },
    /// None of the device's formats can be used.
    #[error("input device `{device}` offers no usable format: {reason}")]
    NoFormat {
        /// The device.
        device: String,
        /// Why not.
        reason: String,
    },
}

/// An input device as `rumbled devices` shows it.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// cpal id, e.g. `alsa:hw:CARD=Mic,DEV=0`.
    pub id: String,
    /// Human-readable description.
    pub description: String,
    /// Supported formats, one line per sample format (channels, rates);
    /// empty when the device could not be asked.
    pub formats: Vec<String>,
    /// Why the formats are unknown, when they are.
    pub error: Option<String>,
}

/// Sample formats in order of preference: the most precise first, since
/// rumbles can be 40 dB below the loudest sounds a station hears.
const FORMAT_PREFERENCE: [SampleFormat; 6] = [
    SampleFormat::F32,
    SampleFormat::I32,
    SampleFormat::I16,
    SampleFormat::U16,
    SampleFormat::I8,
    SampleFormat::U8,
];

/// Device buffers per second to ask for (20 ms): short enough for smooth
/// pacing, long enough that callbacks cost nothing.
const BUFFERS_PER_SECOND: u32 = 50;

/// How long cpal may take to set a stream up.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Streams being dropped on their own threads that have not finished: a
/// wedged driver (or a test FIFO without a writer) can block a drop forever,
/// so past this many the supervisor waits instead of opening more.
const MAX_STUCK_RELEASES: usize = 4;

/// The format a stream is opened with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureFormat {
    /// Frames per second.
    pub sample_rate: u32,
    /// Channels per frame.
    pub channels: u16,
    /// Sample type.
    pub sample_format: SampleFormat,
    /// Frames per callback, when the device lets us choose.
    pub buffer_frames: Option<u32>,
}

/// Picks the format to capture in: the model's rate if the device has it
/// (no resampling), else the lowest rate above it (least work to resample),
/// else the highest below; the fewest channels that hold the one asked for;
/// the most precise sample type.
pub fn choose_format(
    ranges: &[SupportedStreamConfigRange],
    model_rate: u32,
    channel: ChannelSelect,
) -> Result<CaptureFormat, String> {
    let needed = match channel {
        ChannelSelect::Mix => 1,
        ChannelSelect::Index(i) => i + 1,
    };
    let usable: Vec<_> = ranges
        .iter()
        .filter(|r| usize::from(r.channels()) >= needed)
        .filter(|r| FORMAT_PREFERENCE.contains(&r.sample_format()))
        .collect();
    if usable.is_empty() {
        return Err(format!(
            "none has {needed} channel(s) in a sample format rumbled reads (f32, i32, i16, u16, i8, u8)"
        ));
    }
    // Rate cost: 0 for the model rate, then rates above it by distance, then
    // rates below it, highest first.
    let rate_in = |r: &SupportedStreamConfigRange| -> (u8, u64) {
        let (lo, hi) = (r.min_sample_rate(), r.max_sample_rate());
        if (lo..=hi).contains(&model_rate) {
            (0, 0)
        } else if lo > model_rate {
            (1, u64::from(lo - model_rate))
        } else {
            (2, u64::from(model_rate - hi))
        }
    };
    let best = usable
        .iter()
        .min_by_key(|r| {
            let format_rank = FORMAT_PREFERENCE
                .iter()
                .position(|f| *f == r.sample_format())
                .unwrap_or(FORMAT_PREFERENCE.len());
            (rate_in(r), r.channels(), format_rank)
        })
        .ok_or("no usable format")?;
    let sample_rate = model_rate.clamp(best.min_sample_rate(), best.max_sample_rate());
    let wanted = (sample_rate / BUFFERS_PER_SECOND).max(1);
    let buffer_frames = match best.buffer_size() {
        SupportedBufferSize::Range { min, max } => Some(wanted.clamp(*min, *max)),
        SupportedBufferSize::Unknown => None,
    };
    Ok(CaptureFormat {
        sample_rate,
        channels: best.channels(),
        sample_format: best.sample_format(),
        buffer_frames,
    })
}

/// Whether `spec` names this device: its exact id (with or without the
/// host prefix), or a case-insensitive part of its description.
pub fn device_matches(spec: &str, id: &str, description: &str) -> bool {
    let bare_id = id.split_once(':').map_or(id, |(_, rest)| rest);
    spec == id || spec == bare_id || description.to_lowercase().contains(&spec.to_lowercase())
}

/// Every device of the default host with its input formats, for
/// `rumbled devices`. Asking a device for its formats opens it, so a busy
/// or broken device shows its error instead.
pub fn list_input_devices() -> Result<Vec<DeviceInfo>, CaptureError> {
    let host = cpal::default_host();
    let devices = host.devices().map_err(CaptureError::Enumerate)?;
    let mut list = Vec::new();
    for device in devices {
        let (id, description) = identify(&device);
        let (formats, error) = match device.supported_input_configs() {
            Ok(ranges) => (describe_ranges(ranges), None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        if formats.is_empty() && error.is_none() {
            continue; // output only
        }
        list.push(DeviceInfo {
            id,
            description,
            formats,
            error,
        });
    }
    Ok(list)
}

/// The id of the device `spec` selects, for `rumbled devices`.
pub fn selected_device_id(spec: &str) -> Result<String, CaptureError> {
    find_device(spec).map(|(_, id, _)| id)
}

/// The device `spec` names, with its id and description; `default` is the
/// host's default input device.
fn find_device(spec: &str) -> Result<(cpal::Device, String, String), CaptureError> {
    let host = cpal::default_host();
    if spec == "default"
        && let Some(device) = host.default_input_device()
    {
        let (id, description) = identify(&device);
        return Ok((device, id, description));
    }
    let mut available = Vec::new();
    for device in host.devices().map_err(CaptureError::Enumerate)? {
        let (id, description) = identify(&device);
        if device_matches(spec, &id, &description) {
            return Ok((device, id, description));
        }
        available.push(id);
    }
    Err(CaptureError::NotFound {
        spec: spec.to_owned(),
        available,
    })
}

fn identify(device: &cpal::Device) -> (String, String) {
    let id = device
        .id()
        .map(|id| id.to_string())
        .unwrap_or_else(|_| device.to_string());
    let description = device
        .description()
        .map(|d| d.name().to_owned())
        .unwrap_or_else(|_| device.to_string());
    (id, description)
}

/// One line per sample format: its channel counts and rate range.
fn describe_ranges(ranges: impl Iterator<Item = SupportedStreamConfigRange>) -> Vec<String> {
    let mut by_format: Vec<(SampleFormat, u16, u16, u32, u32)> = Vec::new();
    for r in ranges {
        let (ch, lo, hi) = (r.channels(), r.min_sample_rate(), r.max_sample_rate());
        match by_format.iter_mut().find(|f| f.0 == r.sample_format()) {
            Some(f) => *f = (f.0, f.1.min(ch), f.2.max(ch), f.3.min(lo), f.4.max(hi)),
            None => by_format.push((r.sample_format(), ch, ch, lo, hi)),
        }
    }
    let span = |a: u64, b: u64| {
        if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        }
    };
    by_format
        .into_iter()
        .map(|(format, ch_lo, ch_hi, lo, hi)| {
            format!(
                "{format}: {} ch, {} Hz",
                span(ch_lo.into(), ch_hi.into()),
                span(lo.into(), hi.into())
            )
        })
        .collect()
}

/// What the stream's callbacks report to the supervisor.
#[derive(Debug, Default)]
struct StreamHealth {
    /// Data callbacks so far: a stall is this not moving.
    callbacks: AtomicU64,
    /// Set by the error callback when the stream must be rebuilt.
    failed: AtomicBool,
    /// Device-side overruns (samples lost before they reached us).
    xruns: AtomicU64,
    /// The first fatal error's text. cpal calls the error callback outside
    /// the data callback, and only when something broke, so a lock there
    /// cannot hold up audio.
    error: Mutex<Option<String>>,
}

impl StreamHealth {
    fn report(&self, error: &cpal::Error) {
        match error.kind() {
            cpal::ErrorKind::Xrun => {
                self.xruns.fetch_add(1, Ordering::Relaxed);
            }
            // The stream goes on after a reroute or a refused priority.
            cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied => {}
            _ => {
                if let Ok(mut slot) = self.error.lock() {
                    slot.get_or_insert_with(|| error.to_string());
                }
                self.failed.store(true, Ordering::Release);
            }
        }
    }
}

/// An open, playing capture stream.
struct Capture {
    stream: cpal::Stream,
    health: Arc<StreamHealth>,
}

/// Opens `spec` and starts capturing into a new ring; returns the stream
/// and the segment the processing thread reads.
fn open_capture(
    settings: &DeviceSourceConfig,
    counters: &Arc<RingCounters>,
) -> Result<(Capture, Segment), CaptureError> {
    let (device, id, description) = find_device(&settings.device)?;
    let name = format!("{description} ({id})");
    let err = |what, error| CaptureError::Device {
        device: name.clone(),
        what,
        error,
    };
    let ranges: Vec<_> = device
        .supported_input_configs()
        .map_err(|e| err("cannot open it", e))?
        .collect();
    let format =
        choose_format(&ranges, settings.model_rate, settings.channel).map_err(|reason| {
            CaptureError::NoFormat {
                device: name.clone(),
                reason,
            }
        })?;
    let config = StreamConfig {
        channels: format.channels,
        sample_rate: format.sample_rate,
        buffer_size: format
            .buffer_frames
            .map_or(BufferSize::Default, BufferSize::Fixed),
    };
    let capacity = (settings.ring_s * f64::from(format.sample_rate)).ceil() as usize;
    let (writer, reader) = ring(capacity, counters.clone());
    let health = Arc::new(StreamHealth::default());
    let stream = match format.sample_format {
        SampleFormat::F32 => build::<f32>(&device, config, settings.channel, writer, &health),
        SampleFormat::I32 => build::<i32>(&device, config, settings.channel, writer, &health),
        SampleFormat::I16 => build::<i16>(&device, config, settings.channel, writer, &health),
        SampleFormat::U16 => build::<u16>(&device, config, settings.channel, writer, &health),
        SampleFormat::I8 => build::<i8>(&device, config, settings.channel, writer, &health),
        _ => build::<u8>(&device, config, settings.channel, writer, &health),
    }
    .map_err(|e| err("cannot open a capture stream", e))?;
    stream
        .play()
        .map_err(|e| err("cannot start capturing", e))?;
    tracing::info!(
        "capturing from {name}: {} Hz, {} ch, {}, channel {}",
        format.sample_rate,
        format.channels,
        format.sample_format,
        settings.channel
    );
    let segment = Segment {
        reader,
        rate: format.sample_rate,
        kind: "device",
        name,
    };
    Ok((Capture { stream, health }, segment))
}

/// Builds the stream whose callback converts each buffer to mono and hands
/// it to the ring: no allocation, lock, log or system call in there.
fn build<T>(
    device: &cpal::Device,
    config: StreamConfig,
    channel: ChannelSelect,
    mut writer: RingWriter,
    health: &Arc<StreamHealth>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels).max(1);
    let data_health = health.clone();
    let error_health = health.clone();
    device.build_input_stream::<T, _, _>(
        config,
        move |data: &[T], _| {
            data_health.callbacks.fetch_add(1, Ordering::Relaxed);
            writer.push(
                data.chunks_exact(channels)
                    .map(|frame| to_mono(frame, channel)),
            );
        },
        move |error| error_health.report(&error),
        Some(OPEN_TIMEOUT),
    )
}

/// One frame of any sample type as one f32 sample in [-1, 1].
fn to_mono<T>(frame: &[T], channel: ChannelSelect) -> f32
where
    T: Copy,
    f32: FromSample<T>,
{
    match channel {
        // choose_format only opens streams that have this channel.
        ChannelSelect::Index(i) => frame.get(i).map_or(0.0, |&s| f32::from_sample_(s)),
        ChannelSelect::Mix => {
            frame.iter().map(|&s| f32::from_sample_(s)).sum::<f32>() / frame.len() as f32
        }
    }
}

/// Doubling retry delays, capped; back to the start once a stream works.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Delays from `initial` doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay before the next attempt; the one after is twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Starts again from the initial delay.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Settings of the device source and its supervisor.
#[derive(Debug, Clone)]
pub struct DeviceSourceConfig {
    /// Device id or part of its description.
    pub device: String,
    /// Channel to capture.
    pub channel: ChannelSelect,
    /// Rate the model wants (preferred capture rate).
    pub model_rate: u32,
    /// Ring length in seconds of audio.
    pub ring_s: f64,
    /// A stream that delivers nothing this long is treated as lost.
    pub stall_timeout: Duration,
    /// First retry delay.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
}

/// What the supervisor shares with stats.
#[derive(Debug, Default)]
pub struct CaptureCounters {
    /// Streams opened (the first one included).
    pub opened: AtomicU64,
    /// Streams lost to errors or stalls.
    pub lost: AtomicU64,
    /// Device-side overruns reported by the driver.
    pub xruns: AtomicU64,
}

impl CaptureCounters {
    /// Whether no stream is playing now: every stream opened so far was
    /// lost, and the supervisor is waiting to retry or opening the next.
    pub fn recovering(&self) -> bool {
        self.lost.load(Ordering::Relaxed) >= self.opened.load(Ordering::Relaxed)
    }
}

/// Runs the capture supervisor on its own thread until `stop` is set: opens
/// the device, sends each new stream's [`Segment`] to `segments`, and
/// replaces streams that fail or stall.
pub fn spawn_device_source(
    settings: DeviceSourceConfig,
    ring_counters: Arc<RingCounters>,
    counters: Arc<CaptureCounters>,
    segments: Sender<Segment>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("rumbled-capture".into())
        .spawn(move || supervise(&settings, &ring_counters, &counters, &segments, &stop))
}

fn supervise(
    settings: &DeviceSourceConfig,
    ring_counters: &Arc<RingCounters>,
    counters: &CaptureCounters,
    segments: &Sender<Segment>,
    stop: &AtomicBool,
) {
    let mut backoff = Backoff::new(settings.retry_initial, settings.retry_max);
    let stuck = Arc::new(AtomicUsize::new(0));
    let mut failures = 0u64;
    let mut lost_at: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let outcome = if stuck.load(Ordering::Relaxed) >= MAX_STUCK_RELEASES {
            Err(format!(
                "{MAX_STUCK_RELEASES} earlier streams are still closing; the driver seems wedged"
            ))
        } else {
            match open_capture(settings, ring_counters) {
                Ok((capture, segment)) => {
                    counters.opened.fetch_add(1, Ordering::Relaxed);
                    if segments.send(segment).is_err() {
                        return; // the processing thread is gone: shutting down
                    }
                    let result = watch(&capture, settings, stop, lost_at.take(), &mut backoff);
                    counters.xruns.fetch_add(
                        capture.health.xruns.load(Ordering::Relaxed),
                        Ordering::Relaxed,
                    );
                    release(capture.stream, &stuck);
                    result
                }
                Err(e) => Err(e.to_string()),
            }
        };
        let Err(reason) = outcome else { return };
        counters.lost.fetch_add(1, Ordering::Relaxed);
        lost_at.get_or_insert_with(Instant::now);
        failures += 1;
        let delay = backoff.next_delay();
        // The first failure of a run is an error; repeats are warnings, so a
        // station with its microphone unplugged for a week logs at a
        // bounded rate (one line per retry_max) without hiding it.
        if failures == 1 {
            tracing::error!(
                "capture: {reason}; retrying in {:.1} s",
                delay.as_secs_f64()
            );
        } else {
            tracing::warn!(
                "capture: {reason} (attempt {failures}); retrying in {:.1} s",
                delay.as_secs_f64()
            );
        }
        sleep_unless_stopped(delay, stop);
    }
}

/// Watches a playing stream until it fails, stalls or `stop` is set.
/// `Ok` means stopped on request; `Err` says why the stream was lost.
fn watch(
    capture: &Capture,
    settings: &DeviceSourceConfig,
    stop: &AtomicBool,
    lost_at: Option<Instant>,
    backoff: &mut Backoff,
) -> Result<(), String> {
    let poll =
        (settings.stall_timeout / 10).clamp(Duration::from_millis(10), Duration::from_millis(250));
    let mut seen = 0;
    let mut last_progress = Instant::now();
    let mut resumed = false;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(poll);
        if capture.health.failed.load(Ordering::Acquire) {
            let error = capture
                .health
                .error
                .lock()
                .ok()
                .and_then(|e| e.clone())
                .unwrap_or_else(|| "unknown error".into());
            return Err(format!("stream failed: {error}"));
        }
        let callbacks = capture.health.callbacks.load(Ordering::Relaxed);
        if callbacks != seen {
            seen = callbacks;
            last_progress = Instant::now();
            if !resumed {
                resumed = true;
                backoff.reset();
                if let Some(lost) = lost_at {
                    tracing::info!(
                        "capture resumed after {:.1} s without audio",
                        lost.elapsed().as_secs_f64()
                    );
                }
            }
        } else if last_progress.elapsed() >= settings.stall_timeout {
            return Err(format!(
                "no audio for {:.1} s (stream stalled)",
                last_progress.elapsed().as_secs_f64()
            ));
        }
    }
    Ok(())
}

/// Drops a stream on a thread of its own: closing a stalled device can block
/// until the device delivers again, which must not hold up the retries or
/// the daemon's shutdown.
fn release(stream: cpal::Stream, stuck: &Arc<AtomicUsize>) {
    stuck.fetch_add(1, Ordering::Relaxed);
    let counter = stuck.clone();
    let spawned = std::thread::Builder::new()
        .name("rumbled-release".into())
        .spawn(move || {
            drop(stream);
            counter.fetch_sub(1, Ordering::Relaxed);
        });
    if let Err(e) = spawned {
        // The stream went down with the failed spawn's closure already.
        stuck.fetch_sub(1, Ordering::Relaxed);
        tracing::warn!("capture: no thread to close the old stream on: {e}");
    }
}

fn sleep_unless_stopped(delay: Duration, stop: &AtomicBool) {
    let until = Instant::now() + delay;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(ch: u16, lo: u32, hi: u32, f: SampleFormat) -> SupportedStreamConfigRange {
        SupportedStreamConfigRange::new(
            ch,
            lo,
            hi,
            SupportedBufferSize::Range { min: 64, max: 4096 },
            f,
        )
    }

    #[test]
    fn prefers_the_model_rate_then_the_next_rate_above() {
        let ranges = [
            range(2, 44_100, 48_000, SampleFormat::I16),
            range(1, 8_000, 16_000, SampleFormat::I16),
        ];
        let f = choose_format(&ranges, 16_000, ChannelSelect::Mix).expect("format");
        assert_eq!((f.sample_rate, f.channels), (16_000, 1));
        assert_eq!(f.buffer_frames, Some(320));
        let ranges = [
            range(1, 48_000, 48_000, SampleFormat::I16),
            range(1, 22_050, 22_050, SampleFormat::I16),
            range(1, 8_000, 8_000, SampleFormat::I16),
        ];
        let f = choose_format(&ranges, 16_000, ChannelSelect::Mix).expect("format");
        assert_eq!(f.sample_rate, 22_050);
        let ranges = [
            range(1, 4_000, 4_000, SampleFormat::I16),
            range(1, 2_000, 8_000, SampleFormat::I16),
        ];
        let f = choose_format(&ranges, 16_000, ChannelSelect::Mix).expect("format");
        assert_eq!(f.sample_rate, 8_000);
    }

    #[test]
    fn prefers_precise_formats_and_few_channels_that_hold_the_pick() {
        let ranges = [
            range(2, 16_000, 16_000, SampleFormat::I16),
            range(2, 16_000, 16_000, SampleFormat::F32),
            range(4, 16_000, 16_000, SampleFormat::F32),
            range(1, 16_000, 16_000, SampleFormat::F32),
        ];
        let f = choose_format(&ranges, 16_000, ChannelSelect::Mix).expect("format");
        assert_eq!((f.channels, f.sample_format), (1, SampleFormat::F32));
        let f = choose_format(&ranges, 16_000, ChannelSelect::Index(1)).expect("format");
        assert_eq!((f.channels, f.sample_format), (2, SampleFormat::F32));
        let f = choose_format(&ranges, 16_000, ChannelSelect::Index(3)).expect("format");
        assert_eq!(f.channels, 4);
        let err = choose_format(&ranges, 16_000, ChannelSelect::Index(4)).unwrap_err();
        assert!(err.contains("5 channel(s)"), "{err}");
    }

    #[test]
    fn devices_match_by_id_or_description_part() {
        let id = "alsa:hw:CARD=Mic,DEV=0";
        let desc = "USB Audio Device, USB Audio";
        assert!(device_matches(id, id, desc));
        assert!(device_matches("hw:CARD=Mic,DEV=0", id, desc));
        assert!(device_matches("usb audio", id, desc));
        assert!(!device_matches("AudioMoth", id, desc));
        assert!(!device_matches("hw:CARD=Mic", id, desc));
    }

    #[test]
    fn mono_conversion_mixes_or_picks() {
        let frame = [i16::MAX, 0];
        assert!((to_mono(&frame, ChannelSelect::Mix) - 0.5).abs() < 1e-3);
        assert!((to_mono(&frame, ChannelSelect::Index(0)) - 1.0).abs() < 1e-3);
        assert_eq!(to_mono(&frame, ChannelSelect::Index(1)), 0.0);
        assert!((to_mono(&[0u8], ChannelSelect::Mix) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(3));
        let delays: Vec<_> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 3000, 3000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(500));
    }
}
