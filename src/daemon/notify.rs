//! Telling systemd how the daemon is doing (`Type=notify`, `WatchdogSec=`).
//!
//! READY is sent once audio has gone through the pipeline, not when the
//! process starts; WATCHDOG pings come from the processing loop and only
//! when audio went through it since the last ping, so a loop stuck in
//! inference or a source that stopped delivering stops them and systemd
//! restarts the service. (A capture device that is lost and being retried
//! is not a stall: the capture supervisor logs it and reopens the device
//! itself, which a restart would not do any better.) Without `NOTIFY_SOCKET` (not under systemd) every
//! call is a no-op.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// The processing loop's side of the systemd protocol.
pub struct Notifier {
    ready: bool,
    /// Half the watchdog interval systemd asked for, if it asked.
    ping_every: Option<Duration>,
    last_ping: Instant,
    /// Whether the pipeline moved since the last ping.
    progressed: bool,
}

impl Notifier {
    /// Reads the watchdog interval systemd passed in the environment.
    pub fn from_env() -> Self {
        Notifier {
            ready: false,
            ping_every: sd_notify::watchdog_enabled().map(|d| d / 2),
            last_ping: Instant::now(),
            progressed: false,
        }
    }

    /// Called after samples went through the detector: the first time, the
    /// service is ready.
    pub fn audio_flowed(&mut self) {
        self.progressed = true;
        if !self.ready {
            self.ready = true;
            send(&[NotifyState::Ready, NotifyState::Status("listening")]);
        }
    }

    /// Called while the capture device is being reopened after a loss: the
    /// loop is waiting for a reason it already logged, and a restart of the
    /// service would not bring the microphone back sooner.
    pub fn source_recovering(&mut self) {
        self.progressed = true;
    }

    /// Called on every turn of the processing loop; pings the watchdog at
    /// half its interval, but only if the pipeline moved since the last
    /// ping. A loop that turns without audio (a source that stopped
    /// delivering) lets the watchdog expire, as does one stuck in a call.
    pub fn tick(&mut self) {
        if let Some(every) = self.ping_every
            && self.progressed
            && self.last_ping.elapsed() >= every
        {
            self.last_ping = Instant::now();
            self.progressed = false;
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
