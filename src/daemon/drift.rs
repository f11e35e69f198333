//! The sample clock against UTC.
//!
//! A live stream is timed by its sample counter from a UTC anchor taken
//! when its first samples arrive. A sound card's crystal is some tens of
//! ppm off (USB audio on a Pi: up to about 100 ppm, 9 s a day), so a stream
//! that runs for weeks would stamp its events seconds to minutes off the
//! wall clock. The processing thread therefore compares, after each read,
//! where the counter puts the newest sample with where the wall clock puts
//! it, and moves the anchor when the two part by more than
//! `[daemon] max_clock_drift_s`. Offsets (`offset_s`) stay on the sample
//! clock; only the UTC times follow the wall clock.
//!
//! Samples reach the processing thread some milliseconds after they were
//! captured (a device period, the thread's poll), which makes the wall
//! clock's view look later than it is. The largest difference seen over a
//! window of observations is the one least blurred by that delay, so that
//! is the estimate.

use std::time::{Duration, Instant};

/// How long observations are gathered for one estimate.
pub const DRIFT_WINDOW: Duration = Duration::from_secs(5);

/// Gathers observations of the sample clock's lead over the wall clock.
#[derive(Debug)]
pub struct DriftWatch {
    window: Duration,
    since: Option<Instant>,
    best: f64,
}

impl DriftWatch {
    /// Estimates over windows of `window`.
    pub fn new(window: Duration) -> Self {
        DriftWatch {
            window,
            since: None,
            best: f64::NEG_INFINITY,
        }
    }

    /// One observation at `now`: `lead_s` = the newest sample's time by the
    /// counter minus its time by the wall clock. Returns the estimate (in
    /// seconds; positive: the sample clock runs ahead) when a window
    /// completes.
    pub fn observe(&mut self, lead_s: f64, now: Instant) -> Option<f64> {
        let since = *self.since.get_or_insert(now);
        self.best = self.best.max(lead_s);
        if now.duration_since(since) < self.window {
            return None;
        }
        let estimate = self.best;
        self.since = Some(now);
        self.best = f64::NEG_INFINITY;
        Some(estimate)
    }

    /// Starts over: the anchor moved, earlier observations no longer apply.
    pub fn reset(&mut self) {
        self.since = None;
        self.best = f64::NEG_INFINITY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_the_least_delayed_observation_of_each_window() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut watch = DriftWatch::new(Duration::from_secs(1));
        // A clock 0.3 s ahead, seen through delivery delays of 0-80 ms.
        assert_eq!(watch.observe(0.3 - 0.05, at(0)), None);
        assert_eq!(watch.observe(0.3 - 0.08, at(400)), None);
        assert_eq!(watch.observe(0.3 - 0.001, at(800)), None);
        let estimate = watch.observe(0.3 - 0.06, at(1000)).expect("a window");
        assert!((estimate - 0.299).abs() < 1e-12, "{estimate}");
        // The next window starts afresh.
        assert_eq!(watch.observe(-0.5, at(1500)), None);
        assert_eq!(watch.observe(-0.6, at(2000)), Some(-0.5));
    }

    #[test]
    fn a_reset_forgets_the_window() {
        let t0 = Instant::now();
        let mut watch = DriftWatch::new(Duration::from_secs(1));
        watch.observe(2.0, t0);
        watch.reset();
        assert_eq!(watch.observe(0.1, t0 + Duration::from_millis(1500)), None);
        assert_eq!(
            watch.observe(0.0, t0 + Duration::from_millis(2500)),
            Some(0.1)
        );
    }
}
