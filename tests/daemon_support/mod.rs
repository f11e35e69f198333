//! Helpers for the `rumbled run` tests: the daemon as a child process whose
//! log is followed, a capture device served by ALSA's `file` plugin (no
//! sound card needed), a paced FIFO writer feeding it, and test audio.

#![allow(dead_code)] // each test binary uses a different part

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumbled::detect::{CallPhase, CallRecord};

/// The checkout's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped 60 s demo recording (16 kHz mono).
pub fn demo() -> PathBuf {
    root().join("models/demo/demo.wav")
}

/// A contract-shaped test model whose call probability rises with the
/// input's energy: loud noise is a call, quiet noise is not, whatever the
/// shipped model has learnt.
pub fn energy_model() -> PathBuf {
    root().join("tests/data/models/ok_pool.json")
}

/// A running `rumbled` whose standard error is collected.
pub struct Daemon {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Daemon {
    /// Starts `rumbled ARGS` with ALSA configured from `xdg` (if given).
    pub fn start(args: &[&str], xdg: Option<&Path>) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rumbled"));
        cmd.args(args)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(dir) = xdg {
            cmd.env("XDG_CONFIG_HOME", dir);
        }
        let mut child = cmd.spawn().expect("start rumbled");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        Daemon {
            child,
            log,
            reader: Some(reader),
        }
    }

    /// `rumbled run` on `config` with the energy test model, the file
    /// input played at `speed` times real time.
    pub fn run_energy_model(config: &Path, speed: &str) -> Daemon {
        let model = energy_model();
        Daemon::start(
            &[
                "run",
                "-c",
                config.to_str().expect("utf-8 path"),
                "--model",
                model.to_str().expect("utf-8 path"),
                "--speed",
                speed,
            ],
            None,
        )
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// Waits until the log contains `needle`; false on timeout.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sends a signal.
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the exit; `None` on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An ALSA configuration directory (for `XDG_CONFIG_HOME`) defining a
/// capture device "Replay test device" that reads raw samples from `infile`.
pub struct AlsaDevice {
    pub dir: tempfile::TempDir,
    pub infile: PathBuf,
}

impl AlsaDevice {
    /// Defines the device; `infile` is not created.
    pub fn new() -> AlsaDevice {
        let dir = tempfile::tempdir().expect("tempdir");
        let infile = dir.path().join("in.raw");
        std::fs::create_dir_all(dir.path().join("alsa")).expect("alsa dir");
        std::fs::write(
            dir.path().join("alsa/asoundrc"),
            format!(
                "pcm.replay {{\n  type file\n  slave.pcm \"null\"\n  file \"/dev/null\"\n  \
                 infile \"{}\"\n  format \"raw\"\n  hint {{ show on description \"Replay test device\" }}\n}}\n",
                infile.display()
            ),
        )
        .expect("asoundrc");
        AlsaDevice { dir, infile }
    }

    /// The directory to pass as `XDG_CONFIG_HOME`.
    pub fn xdg(&self) -> &Path {
        self.dir.path()
    }

    /// Makes `infile` a FIFO.
    pub fn make_fifo(&self) {
        let path = CString::new(self.infile.as_os_str().as_bytes()).expect("path");
        // SAFETY: mkfifo(3) with a valid NUL-terminated path.
        let rc = unsafe { libc::mkfifo(path.as_ptr(), 0o600) };
        assert_eq!(rc, 0, "mkfifo {}", self.infile.display());
    }

    /// Writes a config file next to the device; returns its path.
    pub fn config(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("rumbled.toml");
        std::fs::write(&path, text).expect("config");
        path
    }
}

/// Feeds f32 samples into a FIFO at a steady pace, in 20 ms buffers (at
/// 16 kHz), like a sound card would deliver them.
pub struct Feeder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<usize>>,
}

/// When the feeder pauses, and for how long.
#[derive(Clone, Copy)]
pub struct Pause {
    pub at_sample: usize,
    pub length: Duration,
}

impl Feeder {
    /// Starts writing `samples` to `fifo` at `speed` times real time
    /// (16 kHz), pausing once if asked. After the last sample it keeps the
    /// FIFO open without writing (a device that has gone quiet) until
    /// dropped. Writes that find no reader (the daemon is reopening the
    /// device) are retried.
    pub fn start(fifo: &Path, samples: Vec<f32>, speed: f64, pause: Option<Pause>) -> Feeder {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let fifo = fifo.to_path_buf();
        let thread = std::thread::spawn(move || {
            // Blocks until the daemon opens the device.
            let mut out = OpenOptions::new()
                .write(true)
                .open(&fifo)
                .expect("open fifo");
            let started = Instant::now();
            let mut paused = Duration::ZERO;
            let mut written = 0;
            for chunk in samples.chunks(320) {
                if flag.load(Ordering::Relaxed) {
                    return written;
                }
                if let Some(p) = pause
                    && written <= p.at_sample
                    && written + chunk.len() > p.at_sample
                {
                    std::thread::sleep(p.length);
                    paused += p.length;
                }
                let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
                while let Err(e) = out.write_all(&bytes) {
                    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
                    if flag.load(Ordering::Relaxed) {
                        return written;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                written += chunk.len();
                let due = Duration::from_secs_f64(written as f64 / 16_000.0 / speed) + paused;
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
            written
        });
        Feeder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // A writer still blocked opening the FIFO would never return: only
        // join one that has got past that.
        if let Some(thread) = self.thread.take()
            && thread.is_finished()
        {
            let _ = thread.join();
        }
    }
}

/// Deterministic white noise (xorshift), amplitude `amp`.
pub fn noise(n: usize, amp: f32, seed: u64) -> Vec<f32> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp
        })
        .collect()
}

/// `total_s` of faint noise at 16 kHz with loud noise (a "call" to the
/// energy model) over each `(start_s, end_s)`.
pub fn bursts(total_s: f64, calls: &[(f64, f64)]) -> Vec<f32> {
    let n = (total_s * 16_000.0) as usize;
    let mut x = noise(n, 1e-4, 7);
    let loud = noise(n, 0.3, 11);
    for &(a, b) in calls {
        let (a, b) = ((a * 16_000.0) as usize, ((b * 16_000.0) as usize).min(n));
        x[a..b].copy_from_slice(&loud[a..b]);
    }
    x
}

/// Writes 16 kHz mono float samples as a WAV file.
pub fn write_wav(path: &Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("wav");
    for &s in samples {
        w.write_sample(s).expect("sample");
    }
    w.finalize().expect("finalize");
}

/// The samples of a 16-bit WAV file as floats.
pub fn read_wav(path: &Path) -> Vec<f32> {
    let mut r = hound::WavReader::open(path).expect("wav");
    r.samples::<i16>()
        .map(|s| f32::from(s.expect("sample")) / 32_768.0)
        .collect()
}

/// The call records of a JSONL file (none if it does not exist yet).
pub fn read_events(path: &Path) -> Vec<CallRecord> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is a call record"))
        .collect()
}

/// Records of one phase.
pub fn phase(records: &[CallRecord], phase: CallPhase) -> Vec<&CallRecord> {
    records.iter().filter(|r| r.phase == phase).collect()
}

/// What must be equal between a live run and a replay of the same audio:
/// everything but the ids, sequence numbers, wall-clock times and source
/// names, which name the run rather than what was heard.
pub fn heard(rec: &CallRecord) -> String {
    let mut rec = rec.clone();
    rec.id = String::new();
    rec.seq = 0;
    rec.start = None;
    rec.end = None;
    rec.source.kind = String::new();
    rec.source.name = String::new();
    serde_json::to_string(&rec).expect("json")
}

/// The last stats line's value of `field` (e.g. "dropped"), as a number.
pub fn last_stat(log: &str, field: &str) -> Option<f64> {
    let line = log.lines().rev().find(|l| l.contains("stats: "))?;
    let rest = &line[line.find(&format!(" {field} "))? + field.len() + 2..];
    rest.split([' ', ',', '%']).next()?.parse().ok()
}
