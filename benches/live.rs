//! `rumbled run` live, paced in real time (`cargo bench --bench live`;
//! `LIVE_MINUTES=N` for another length, 5 by default; `LIVE_HOP=N` to try
//! another window hop; `LIVE_SCENE=x.wav` to play a recording whose calls
//! are in `x.selections.txt` (e.g. from `models/soundscape.py`) instead of
//! the generated one, and `LIVE_MODEL=manifest.json` to measure latency
//! with that model instead of the energy test model; `LIVE_CONFIG=x.toml`
//! for other `[endpoint]` rules in the offline mode; `LIVE_RECORDS=x.jsonl`
//! keeps every record with the time it came). With `LIVE_OFFLINE=1`
//! (and `LIVE_SCENE`) the latency part runs in-process without pacing,
//! over the daemon's own detector and early starts, in 50 ms chunks (the
//! processing thread's poll): latency in audio time, for long recordings.
//!
//! Two daemons play the same generated soundscape as their test input, in
//! real time, side by side:
//!
//! - **resources**, with the default model: CPU time over wall time (% of
//!   one core) and peak RSS, from the kernel's accounting of the process
//!   (targets: <= 2 %, <= 80 MB);
//! - **latency**, with the energy test model (a call is loud noise), so the
//!   numbers measure the pipeline (windows, endpointing, early starts), not
//!   how well a model is trained: for each call, the wall-clock time from
//!   its true onset to the first start event about it, as it appears in the
//!   events file; p50/p95 (target p95 <= 2 s), and the same for the final
//!   (confirmed) records, with the early path's retractions counted.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumbled::detect::{CallPhase, CallRecord, EndReason};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const RATE: f64 = 16_000.0;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("live: skipped (a real-time benchmark: cargo bench --bench live)");
        return;
    }
    let hop: Option<usize> = std::env::var("LIVE_HOP").ok().and_then(|h| h.parse().ok());
    let dir = tempfile::tempdir().expect("tempdir");
    let (wav, calls, minutes) = match std::env::var_os("LIVE_SCENE") {
        Some(scene) => {
            let wav = PathBuf::from(scene);
            let reader = hound::WavReader::open(&wav).expect("LIVE_SCENE wav");
            let minutes =
                f64::from(reader.duration()) / f64::from(reader.spec().sample_rate) / 60.0;
            (
                wav.clone(),
                truth(&wav.with_extension("selections.txt")),
                minutes,
            )
        }
        None => {
            let minutes = env_or("LIVE_MINUTES", 5.0);
            let (audio, calls) = soundscape(minutes * 60.0);
            let wav = dir.path().join("soundscape.wav");
            write_wav(&wav, &audio);
            (wav, calls, minutes)
        }
    };
    println!(
        "live: {minutes} min of real-time test input, {} calls, hop {}",
        calls.len(),
        hop.map_or("default".into(), |h| h.to_string())
    );

    let latency_model = std::env::var_os("LIVE_MODEL").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/models/ok_pool.json"),
        PathBuf::from,
    );
    println!("latency model: {}", latency_model.display());
    if std::env::var_os("LIVE_OFFLINE").is_some() {
        report_latency(&calls, &offline(&wav, &latency_model, hop));
        return;
    }
    let resources = start(dir.path(), "resources", &wav, minutes, None, hop);
    let latency = start(
        dir.path(),
        "latency",
        &wav,
        minutes,
        Some(&latency_model),
        hop,
    );
    let started = Instant::now();
    let arrivals = follow_events(&latency.events, &latency.child, minutes * 60.0 + 30.0);
    let wall_latency = started.elapsed();
    let (cpu_s, rss_mb) = wait_rusage(resources.child);
    let wall = started.elapsed();
    let _ = wait_rusage(latency.child);

    println!(
        "resources (default model): CPU {:.2} % of one core ({cpu_s:.2} s over {:.0} s), peak RSS {rss_mb:.1} MB",
        100.0 * cpu_s / wall.as_secs_f64(),
        wall.as_secs_f64()
    );
    if arrivals.is_empty() {
        println!("latency: no events in {:.0} s", wall_latency.as_secs_f64());
    }
    report_latency(&calls, &since_stream_start(&arrivals));
}

fn env_or(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Run {
    child: Child,
    events: PathBuf,
}

fn start(
    dir: &Path,
    name: &str,
    wav: &Path,
    minutes: f64,
    model: Option<&Path>,
    hop: Option<usize>,
) -> Run {
    let events = dir.join(format!("{name}.jsonl"));
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[input]\nkind = \"file\"\nfile = \"{}\"\n[output]\nevents = \"{}\"\n{}",
            wav.display(),
            events.display(),
            hop.map_or(String::new(), |h| format!("[model]\nhop_frames = {h}\n"))
        ),
    )
    .expect("config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rumbled"));
    cmd.args(["run", "-c"])
        .arg(&config)
        .args(["--duration", &(minutes * 60.0).to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    if let Some(model) = model {
        cmd.arg("--model").arg(model);
    }
    Run {
        child: cmd.spawn().expect("start rumbled"),
        events,
    }
}

/// Each new record of the events file with the wall-clock time it
/// appeared, until the daemon has exited (or `max_s`).
fn follow_events(path: &Path, child: &Child, max_s: f64) -> Vec<(OffsetDateTime, CallRecord)> {
    let pid = i32::try_from(child.id()).expect("pid");
    let until = Instant::now() + Duration::from_secs_f64(max_s);
    let mut got = Vec::new();
    let mut pos = 0;
    loop {
        let exited = has_exited(pid);
        if let Ok(mut file) = std::fs::File::open(path)
            && file.seek(SeekFrom::Start(pos)).is_ok()
        {
            let mut line = String::new();
            let mut reader = BufReader::new(file);
            // The daemon writes whole lines; a partial one is read next time.
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line.ends_with('\n') {
                pos += line.len() as u64;
                let rec: CallRecord = serde_json::from_str(line.trim()).expect("record");
                got.push((OffsetDateTime::now_utc(), rec));
                line.clear();
            }
        }
        if exited || Instant::now() >= until {
            return got;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether our child has exited, leaving it to be reaped by [`wait_rusage`].
fn has_exited(pid: i32) -> bool {
    // SAFETY: waitid(2) on our own child with a valid out-pointer; WNOWAIT
    // leaves it waitable.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        rc == 0 && info.si_pid() == pid
    }
}

/// CPU seconds and peak RSS (MB) of a child, reaped.
fn wait_rusage(child: Child) -> (f64, f64) {
    let pid = i32::try_from(child.id()).expect("pid");
    let mut status = 0;
    // SAFETY: plain wait4(2) on our own child with valid out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        secs(usage.ru_utime) + secs(usage.ru_stime),
        usage.ru_maxrss as f64 / 1024.0,
    )
}

/// Every record of the daemon's processing of `wav` with the audio time (s)
/// at which it was produced.
fn offline(wav: &Path, manifest: &Path, hop: Option<usize>) -> Vec<(f64, CallRecord)> {
    use rumbled::audio::{AudioFile, ChannelMode};
    use rumbled::daemon::early::EarlyStarts;
    use rumbled::detect::StreamContext;
    use rumbled::pipeline::{Detector, DetectorConfig, DetectorOutput};

    let mut config = std::env::var_os("LIVE_CONFIG")
        .map_or_else(rumbled::config::Config::default, |path| {
            rumbled::config::Config::load(Path::new(&path)).expect("LIVE_CONFIG")
        });
    config.model.manifest = Some(manifest.to_path_buf());
    if let Some(hop) = hop {
        config.model.hop_frames = hop;
    }
    let mut model = rumbled::replay::load_model(&config).expect("model");
    let m = model.manifest().clone();
    // As the daemon does: the model's recommended [endpoint] settings.
    let config = rumbled::replay::with_model_endpoint(&config, &m).expect("model endpoint");
    let cfg = DetectorConfig {
        input_rate: 16_000,
        gain: 1.0,
        hop_frames: config.model.hop_frames,
        centre_weighted: config.model.centre_weighted,
        endpoint: config.endpoint.clone(),
    };
    let mut detector = Detector::new(&m, &cfg).expect("detector");
    let ctx = StreamContext::new(&m, "bench", "file", "scene");
    let hop = (cfg.hop_frames * m.output.frames_per_output) as u64;
    let mut early = EarlyStarts::new(&cfg.endpoint, ctx.frame_s, hop);
    let mut audio = AudioFile::open(wav, ChannelMode::Mix).expect("scene");
    assert_eq!(audio.sample_rate(), 16_000, "LIVE_OFFLINE wants 16 kHz");
    let (mut chunk, mut out, mut records) = (Vec::new(), DetectorOutput::default(), Vec::new());
    let mut produced = Vec::new();
    let mut heard = 0usize;
    loop {
        chunk.clear();
        let n = audio.read(&mut chunk, 800).expect("read");
        out.clear();
        records.clear();
        if n == 0 {
            detector.finish(&mut model, &mut out).expect("finish");
            early.finish(&out.events, &ctx, &mut records);
        } else {
            detector.push(&chunk, &mut model, &mut out).expect("push");
            early
                .records(&mut detector, &mut model, &out.events, &ctx, &mut records)
                .expect("records");
        }
        heard += n;
        produced.extend(records.drain(..).map(|r| (heard as f64 / RATE, r)));
        if n == 0 {
            return produced;
        }
    }
}

/// Arrival times as seconds since the stream's first sample, using the
/// stream's anchor (a record's start time minus its offset).
fn since_stream_start(arrivals: &[(OffsetDateTime, CallRecord)]) -> Vec<(f64, CallRecord)> {
    let Some(anchor) = arrivals.iter().find_map(|(_, r)| {
        let start = OffsetDateTime::parse(r.start.as_deref()?, &Rfc3339).ok()?;
        Some(start - time::Duration::seconds_f64(r.offset_s))
    }) else {
        return Vec::new();
    };
    arrivals
        .iter()
        .map(|(t, r)| ((*t - anchor).as_seconds_f64(), r.clone()))
        .collect()
}

/// A true call: begin and end (s), and its in-band SNR (dB) where the
/// truth table says (infinite for the generated soundscape's loud calls).
type TrueCall = (f64, f64, f64);

fn report_latency(calls: &[TrueCall], arrivals: &[(f64, CallRecord)]) {
    if let Some(path) = std::env::var_os("LIVE_RECORDS") {
        let lines: String = arrivals
            .iter()
            .map(|(t, r)| {
                format!(
                    "{{\"at_s\":{t},\"record\":{}}}\n",
                    serde_json::to_string(r).expect("json")
                )
            })
            .collect();
        std::fs::write(path, lines).expect("LIVE_RECORDS");
    }
    let about = |r: &CallRecord, &(a, b, _): &TrueCall| r.offset_s >= a - 1.0 && r.offset_s < b;
    let mut first = Vec::new();
    let mut first_by_snr = Vec::new();
    let mut confirmed = Vec::new();
    for call in calls {
        let announce = arrivals
            .iter()
            .find(|(_, r)| r.phase == CallPhase::Start && about(r, call));
        if let Some((t, _)) = announce {
            first.push(t - call.0);
            first_by_snr.push((call.2, t - call.0));
        }
        let fin = arrivals.iter().find(|(_, r)| {
            !r.provisional
                && matches!(r.phase, CallPhase::Start | CallPhase::Update)
                && about(r, call)
        });
        if let Some((t, _)) = fin {
            confirmed.push(t - call.0);
        }
    }
    let retracted = arrivals
        .iter()
        .filter(|(_, r)| r.end_reason == Some(EndReason::Retracted))
        .count();
    // Announcements of calls that are not there: provisional starts, and
    // final ones (a final start, or the update confirming a provisional).
    let false_alarms = |provisional: bool| {
        arrivals
            .iter()
            .filter(|(_, r)| {
                r.provisional == provisional
                    && (r.phase == CallPhase::Start
                        || (!provisional && r.phase == CallPhase::Update && !r.provisional))
                    && !calls.iter().any(|c| about(r, c))
            })
            .map(|(_, r)| r.id.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    println!(
        "latency, onset -> first start event: {} of {} calls announced, p50 {:.2} s, p95 {:.2} s, max {:.2} s",
        first.len(),
        calls.len(),
        quantile(&mut first, 0.5),
        quantile(&mut first, 0.95),
        quantile(&mut first, 1.0)
    );
    for min_snr in [0.0, 10.0] {
        let n = calls.iter().filter(|c| c.2 >= min_snr).count();
        if n == calls.len() {
            continue;
        }
        let mut strong: Vec<f64> = first_by_snr
            .iter()
            .filter(|(snr, _)| *snr >= min_snr)
            .map(|(_, t)| *t)
            .collect();
        println!(
            "  calls at SNR >= {min_snr} dB: {} of {n} announced, p50 {:.2} s, p95 {:.2} s, max {:.2} s",
            strong.len(),
            quantile(&mut strong, 0.5),
            quantile(&mut strong, 0.95),
            quantile(&mut strong, 1.0)
        );
    }
    println!(
        "latency, onset -> final (confirmed) record: {} calls, p50 {:.2} s, p95 {:.2} s",
        confirmed.len(),
        quantile(&mut confirmed, 0.5),
        quantile(&mut confirmed, 0.95)
    );
    println!(
        "false alarms: {} provisional starts and {} final calls match no true call; {retracted} provisional starts retracted",
        false_alarms(true),
        false_alarms(false)
    );
}

/// The calls of a Raven table, overlapping ones merged (the endpointer is
/// class-agnostic: overlapping calls are one event, timed from the first).
/// The SNR comes from `models/soundscape.py`'s `SNR (dB)` column, read as
/// the "class" of a selection; infinite without one.
fn truth(table: &Path) -> Vec<TrueCall> {
    let read = |column| rumbled::publish::read_selection_table(table, column);
    let selections = read("SNR (dB)")
        .or_else(|_| read("Class"))
        .expect("truth table");
    let mut calls: Vec<TrueCall> = selections
        .iter()
        .map(|s| {
            let snr = s.class.as_deref().and_then(|c| c.parse().ok());
            (s.begin_s, s.end_s, snr.unwrap_or(f64::INFINITY))
        })
        .collect();
    calls.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<TrueCall> = Vec::new();
    for (a, b, snr) in calls {
        match merged.last_mut() {
            // The region's onset is its first call's: so is its SNR.
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b, snr)),
        }
    }
    merged
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Faint noise with calls of 1-6 s every 4-12 s from 12 s on: a harmonic
/// 17 Hz rumble stack under broadband noise loud enough for the energy
/// model.
fn soundscape(total_s: f64) -> (Vec<f32>, Vec<TrueCall>) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut calls = Vec::new();
    // No call in the first window (10 s): nothing can be announced before
    // a whole window has been heard, which is a start-up delay, not latency.
    let mut t = 12.0 + 4.0 * next();
    while t + 6.0 < total_s {
        let length = 1.0 + 5.0 * next();
        calls.push((t, t + length, f64::INFINITY));
        t += length + 4.0 + 8.0 * next();
    }
    let n = (total_s * RATE) as usize;
    let mut audio = Vec::with_capacity(n);
    let mut call = 0;
    for i in 0..n {
        let t = i as f64 / RATE;
        while call < calls.len() && t >= calls[call].1 {
            call += 1;
        }
        let noise = next() * 2.0 - 1.0;
        let inside = call < calls.len() && t >= calls[call].0;
        let x = if inside {
            let rumble: f64 = (1..6)
                .map(|h| (2.0 * std::f64::consts::PI * 17.0 * h as f64 * t).sin() / h as f64)
                .sum();
            0.3 * noise + 0.2 * rumble
        } else {
            1e-3 * noise
        };
        audio.push(x.clamp(-1.0, 1.0) as f32);
    }
    (audio, calls)
}

fn write_wav(path: &Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE as u32,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("wav");
    for &s in samples {
        w.write_sample((s * 32_767.0) as i16).expect("sample");
    }
    w.finalize().expect("finalize");
}
