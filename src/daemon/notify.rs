//! Telling systemd how the daemon is doing (`Type=notify`, `WatchdogSec=`).
//!
//! READY is sent once audio has gone through the pipeline, not when the
//! process starts; WATCHDOG pings come from the processing loop itself, so a
//! loop stuck in inference or a dead device driver stops them and systemd
//! restarts the service. Without `NOTIFY_SOCKET` (not under systemd) every
//! call is a no-op.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// The processing loop's side of the systemd protocol.
pub struct Notifier {
    ready: bool,
    /// Half the watchdog interval systemd asked for, if it asked.
    ping_every: Option<Duration>,
    last_ping: Instant,
}

impl Notifier {
    /// Reads the watchdog interval systemd passed in the environment.
    pub fn from_env() -> Self {
        Notifier {
            ready: false,
            ping_every: sd_notify::watchdog_enabled().map(|d| d / 2),
            last_ping: Instant::now(),
        }
    }

    /// Called after samples went through the detector: the first time, the
    /// service is ready.
    pub fn audio_flowed(&mut self) {
        if !self.ready {
            self.ready = true;
            send(&[NotifyState::Ready, NotifyState::Status("listening")]);
        }
    }

    /// Called on every turn of the processing loop; pings the watchdog at
    /// half its interval.
    pub fn alive(&mut self) {
        if let Some(every) = self.ping_every
            && self.last_ping.elapsed() >= every
        {
            self.last_ping = Instant::now();
            send(&[NotifyState::Watchdog]);
        }
    }
}

/// Tells systemd the service is shutting down (on SIGTERM/SIGINT).
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}
