//! Health numbers of the live daemon: what the station heard, what it
//! missed, and what listening cost. Logged periodically now; the same
//! [`StatsReport`] is the payload of the MQTT stats topic.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::audio::ClipMeter;
use crate::evidence::EvidenceReport;
use crate::model::{ModelError, WindowModel};

/// Totals since start plus figures over the last interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatsReport {
    /// Seconds since the daemon started.
    pub uptime_s: f64,
    /// Audio samples received from the source (at its own rate).
    pub samples_in: u64,
    /// Seconds of audio analysed.
    pub audio_s: f64,
    /// Samples lost because processing fell behind (ring full).
    pub dropped_samples: u64,
    /// Seconds the station could not listen: drops, device loss, restarts.
    pub deaf_s: f64,
    /// Capture streams lost (errors and stalls) since start.
    pub device_restarts: u64,
    /// Overruns the sound driver reported (samples lost in the driver).
    pub device_xruns: u64,
    /// Highest ring occupancy over the interval, as a fraction of its size.
    pub ring_fill_max: f64,
    /// Share of the interval's samples at full scale: from 0.01 on, the
    /// recorder's gain is too high and calls are being missed.
    pub clipped_fraction: f64,
    /// Processing time per second of audio over the interval (< 1 keeps up).
    pub real_time_factor: f64,
    /// Inference windows run over the interval.
    pub windows: u64,
    /// Median inference time per window over the interval, ms.
    pub inference_ms_p50: f64,
    /// 95th percentile of inference time per window over the interval, ms.
    pub inference_ms_p95: f64,
    /// Calls open right now.
    pub open_calls: usize,
    /// Call events emitted since start.
    pub events: u64,
    /// The sample clock's lead over UTC at the last estimate, seconds
    /// (before the re-anchoring it may have led to).
    pub clock_drift_s: f64,
    /// Times event times were re-anchored to UTC since start.
    pub reanchors: u64,
    /// Per-call evidence written, failed and skipped, when `[evidence]` is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceReport>,
}

impl StatsReport {
    /// The report as one log line.
    pub fn log_line(&self) -> String {
        let mut line = format!(
            "stats: up {:.0} s, audio {:.1} s, dropped {} samples, deaf {:.1} s, \
             device restarts {}, xruns {}, ring max {:.0}%, clipped {:.1}%, real-time factor {:.4}, \
             {} windows, inference p50 {:.2} ms p95 {:.2} ms, open calls {}, events {}, \
             clock drift {:.3} s, re-anchored {}",
            self.uptime_s,
            self.audio_s,
            self.dropped_samples,
            self.deaf_s,
            self.device_restarts,
            self.device_xruns,
            self.ring_fill_max * 100.0,
            self.clipped_fraction * 100.0,
            self.real_time_factor,
            self.windows,
            self.inference_ms_p50,
            self.inference_ms_p95,
            self.open_calls,
            self.events,
            self.clock_drift_s,
            self.reanchors
        );
        if let Some(e) = &self.evidence {
            line += &format!(
                ", evidence written {} failed {} deleted {} ({:.1} MB), skipped {} calls {:.1} s",
                e.writer.written,
                e.writer.failed,
                e.writer.deleted,
                e.writer.used_bytes as f64 / 1e6,
                e.skipped_calls,
                e.skipped_audio_s
            );
        }
        line
    }
}

/// What the processing thread accumulates between reports.
#[derive(Debug, Clone, Default)]
pub struct ProcessingStats {
    /// Seconds of audio analysed since start.
    pub audio_s: f64,
    /// Seconds deaf since start (drops and gaps between streams).
    pub deaf_s: f64,
    /// Calls open right now.
    pub open_calls: usize,
    /// Events emitted since start.
    pub events: u64,
    /// The sample clock's lead over UTC at the last estimate, seconds.
    pub clock_drift_s: f64,
    /// Re-anchorings since start.
    pub reanchors: u64,
    /// Audio analysed in this interval, seconds.
    pub interval_audio_s: f64,
    /// Time spent processing in this interval.
    pub interval_busy: Duration,
    /// Per-window inference times of this interval, ms.
    pub interval_inference_ms: Vec<f32>,
    /// Samples at full scale in this interval.
    pub interval_clipping: ClipMeter,
    /// The input being analysed (`device NAME`, `file PATH`), for warnings.
    pub input: String,
}

impl ProcessingStats {
    /// Real-time factor, inference count and percentiles of the interval,
    /// then starts a new interval.
    pub fn take_interval(&mut self) -> (f64, u64, f64, f64) {
        let rtf = if self.interval_audio_s > 0.0 {
            self.interval_busy.as_secs_f64() / self.interval_audio_s
        } else {
            0.0
        };
        let times = &mut self.interval_inference_ms;
        times.sort_by(f32::total_cmp);
        let result = (
            rtf,
            times.len() as u64,
            percentile(times, 0.50),
            percentile(times, 0.95),
        );
        self.interval_audio_s = 0.0;
        self.interval_busy = Duration::ZERO;
        times.clear();
        result
    }
}

/// The `q` quantile (0..=1) of sorted values, nearest rank; 0 when empty.
pub fn percentile(sorted: &[f32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1])
}

/// A [`WindowModel`] that times every window it runs.
pub struct TimedModel<'a, M: WindowModel + ?Sized> {
    inner: &'a mut M,
    times_ms: &'a mut Vec<f32>,
}

impl<'a, M: WindowModel + ?Sized> TimedModel<'a, M> {
    /// Times `inner`, appending each window's milliseconds to `times_ms`.
    pub fn new(inner: &'a mut M, times_ms: &'a mut Vec<f32>) -> Self {
        TimedModel { inner, times_ms }
    }
}

impl<M: WindowModel + ?Sized> WindowModel for TimedModel<'_, M> {
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }

    fn frames_per_output(&self) -> usize {
        self.inner.frames_per_output()
    }

    fn infer(
        &mut self,
        window: &[f32],
        frames: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        let started = Instant::now();
        let result = self.inner.infer(window, frames, out);
        self.times_ms.push(started.elapsed().as_secs_f32() * 1000.0);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f32> = (1..=100).map(|x| x as f32).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&[3.0], 0.95), 3.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn an_interval_is_taken_once() {
        let mut s = ProcessingStats {
            interval_audio_s: 10.0,
            interval_busy: Duration::from_millis(100),
            interval_inference_ms: vec![4.0, 2.0, 3.0],
            ..ProcessingStats::default()
        };
        let (rtf, n, p50, p95) = s.take_interval();
        assert!((rtf - 0.01).abs() < 1e-9);
        assert_eq!((n, p50, p95), (3, 3.0, 4.0));
        assert_eq!(s.take_interval(), (0.0, 0, 0.0, 0.0));
    }

    #[test]
    fn the_log_line_names_the_health_figures() {
        let line = StatsReport {
            dropped_samples: 7,
            deaf_s: 1.5,
            ..StatsReport::default()
        }
        .log_line();
        assert!(line.contains("dropped 7 samples, deaf 1.5 s"), "{line}");
    }
}
