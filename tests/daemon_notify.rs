//! `rumbled run` under systemd's notify protocol, with this test playing
//! systemd: READY only once audio flows, WATCHDOG pings from the processing
//! loop at half the interval, STOPPING on SIGTERM.

mod daemon_support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use daemon_support::{bursts, energy_model, write_wav};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// What the daemon told "systemd", with when it said it.
type Messages = Vec<(Duration, String)>;

/// Runs `rumbled run` on `wav` as the looped test input (at `speed` times
/// real time) with a notify socket and a 0.4 s watchdog, for `listen`,
/// then SIGTERM; returns every message and asserts a clean exit.
fn run_under_systemd(wav: &Path, speed: f64, listen: Duration) -> Messages {
    let dir = wav.parent().expect("dir");
    let config = dir.join("rumbled.toml");
    std::fs::write(
        &config,
        format!(
            "[input]\nkind = \"file\"\nfile = \"{}\"\nloop = true\n",
            wav.display()
        ),
    )
    .expect("config");
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");

    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rumbled"))
        .args(["run", "-c", s(&config), "--model", s(&energy_model())])
        .args(["--speed", &speed.to_string()])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rumbled");
    let mut messages = Vec::new();
    let mut buf = [0u8; 512];
    let mut receive = |messages: &mut Messages| {
        if let Ok(n) = socket.recv(&mut buf) {
            messages.push((
                started.elapsed(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            ));
        }
    };
    while started.elapsed() < listen {
        receive(&mut messages);
    }
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        receive(&mut messages);
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}: {messages:?}");
    messages
}

/// When each message containing `what` came.
fn times_of(messages: &Messages, what: &str) -> Vec<Duration> {
    messages
        .iter()
        .filter(|(_, m)| m.contains(what))
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn ready_after_audio_watchdog_pings_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wav = dir.path().join("calls.wav");
    write_wav(&wav, &bursts(30.0, &[(3.0, 6.0)]));
    let messages = run_under_systemd(&wav, 1.0, Duration::from_secs(4));

    assert_eq!(
        times_of(&messages, "READY=1").len(),
        1,
        "exactly one READY: {messages:?}"
    );
    let pings = times_of(&messages, "WATCHDOG=1").len();
    // 4 s at one ping per 0.2 s: about 20; demand clearly more than one.
    assert!(
        pings >= 10,
        "watchdog pings from the loop: {pings} in {messages:?}"
    );
    let stopping = messages.iter().position(|(_, m)| m.contains("STOPPING=1"));
    let ready_at = messages.iter().position(|(_, m)| m.contains("READY=1"));
    assert!(
        stopping.is_some() && stopping > ready_at,
        "STOPPING after READY: {messages:?}"
    );
}

#[test]
fn watchdog_pings_stop_while_the_source_delivers_nothing() {
    // At 0.02 x real time the test input hands over one 20 ms buffer per
    // second: between buffers the processing loop keeps turning but has
    // nothing to process, which is a stalled pipeline to the watchdog
    // (0.4 s here; it would expire in each gap).
    let dir = tempfile::tempdir().expect("tempdir");
    let wav = dir.path().join("calls.wav");
    write_wav(&wav, &bursts(30.0, &[(3.0, 6.0)]));
    let messages = run_under_systemd(&wav, 0.02, Duration::from_secs(5));

    let ready = times_of(&messages, "READY=1");
    assert_eq!(ready.len(), 1, "READY on the first buffer: {messages:?}");
    let pings = times_of(&messages, "WATCHDOG=1");
    // The loop itself is alive: each buffer that arrives is worth a ping.
    assert!(
        pings.len() >= 2,
        "a ping per buffer that went through: {messages:?}"
    );
    for pair in pings.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(700),
            "pinged without audio in between: {messages:?}"
        );
    }
    assert!(
        pings.len() <= 6,
        "at most one ping per buffer in 5 s: {messages:?}"
    );
}
