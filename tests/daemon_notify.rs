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

#[test]
fn ready_after_audio_watchdog_pings_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wav = dir.path().join("calls.wav");
    write_wav(&wav, &bursts(30.0, &[(3.0, 6.0)]));
    let config = dir.path().join("rumbled.toml");
    std::fs::write(
        &config,
        format!(
            "[input]\nkind = \"file\"\nfile = \"{}\"\nloop = true\n",
            wav.display()
        ),
    )
    .expect("config");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");

    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rumbled"))
        .args(["run", "-c", s(&config), "--model", s(&energy_model())])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rumbled");
    let mut messages: Vec<(Duration, String)> = Vec::new();
    let mut buf = [0u8; 512];
    while started.elapsed() < Duration::from_secs(4) {
        if let Ok(n) = socket.recv(&mut buf) {
            messages.push((
                started.elapsed(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            ));
        }
    }
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        if let Ok(n) = socket.recv(&mut buf) {
            messages.push((
                started.elapsed(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            ));
        }
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}: {messages:?}");

    let ready: Vec<_> = messages
        .iter()
        .filter(|(_, m)| m.contains("READY=1"))
        .collect();
    assert_eq!(ready.len(), 1, "exactly one READY: {messages:?}");
    let pings = messages
        .iter()
        .filter(|(_, m)| m.contains("WATCHDOG=1"))
        .count();
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
