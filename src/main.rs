//! The `rumbled` command line: `replay` recordings, `eval` detections
//! against annotations, `check-config`, inspect a `model`. Errors are
//! printed as one plain sentence chain, never a panic.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use rumbled::config::{ChannelSelect, Config, LogFormat};
use rumbled::eval::{self, DetectionSource, EvalRequest, EvalSettings, LabelMap};
use rumbled::evidence::ReplayEvidence;
use rumbled::plot::PlotFiles;
use rumbled::replay::{self, ReplayObserver, ReplayRequest};

/// Listens for elephant calls, finds where each starts and stops, labels it.
#[derive(Parser)]
#[command(name = "rumbled", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run recordings through the detector as fast as the CPU allows and
    /// write the calls found (JSONL events, Raven tables, frame probabilities).
    Replay(ReplayArgs),
    /// Check a configuration file and print the effective configuration.
    CheckConfig {
        /// Config file [default: /etc/rumbled/rumbled.toml].
        file: Option<PathBuf>,
    },
    /// Load a model, validate it against its manifest and show what it is.
    Model(ModelArgs),
    /// Measure detections against annotated Raven selection tables: event
    /// precision/recall/F1, labels, boundary errors, false alarms per hour,
    /// framewise AP and ROC AUC.
    Eval(EvalArgs),
    /// Listen to the configured input (a sound device, or the test-input
    /// recording in real time) and report calls until SIGTERM or SIGINT;
    /// SIGHUP reloads the configuration.
    Run(RunArgs),
    /// List sound input devices and show which one the configuration selects.
    Devices {
        /// Config file [default: /etc/rumbled/rumbled.toml if it exists].
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Stop after this many seconds of audio (e.g. to check a station).
    #[arg(long)]
    duration: Option<f64>,
    /// Play the test input (input.kind = "file") this many times faster
    /// than real time.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
}

/// Settings shared by commands that load a model.
#[derive(Args, Clone)]
struct ModelArgs {
    /// Config file [default: /etc/rumbled/rumbled.toml if it exists].
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Model manifest (.json), overriding [model] manifest.
    #[arg(long)]
    model: Option<PathBuf>,
    /// ONNX Runtime library, overriding [model] onnxruntime.
    #[arg(long)]
    onnxruntime: Option<PathBuf>,
    /// ONNX Runtime threads, overriding [model] threads.
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct ReplayArgs {
    /// WAV or FLAC recordings.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Write events as JSON lines here (`-` = standard output).
    #[arg(long)]
    events: Option<PathBuf>,
    /// Write one Raven selection table per recording into this directory.
    #[arg(long)]
    raven: Option<PathBuf>,
    /// Write per-frame class probabilities as CSV (one file per recording
    /// when several are given: NAME.<recording>.csv).
    #[arg(long)]
    frames: Option<PathBuf>,
    /// Wall-clock time of the first sample (RFC 3339), when the file name
    /// has no YYYYMMDD_HHMMSS stamp.
    #[arg(long)]
    start_time: Option<String>,
    /// Channel to analyse: `mix` or a 0-based number, overriding [input] channel.
    #[arg(long)]
    channel: Option<ChannelSelect>,
    /// Window hop in 160 ms frames, overriding [model] hop_frames.
    #[arg(long)]
    hop: Option<usize>,
    /// Station name in events, overriding [station] name.
    #[arg(long)]
    station: Option<String>,
    /// Onset threshold, overriding [endpoint] onset.
    #[arg(long)]
    onset: Option<f32>,
    /// Offset threshold, overriding [endpoint] offset.
    #[arg(long)]
    offset: Option<f32>,
    /// Do not print calls as they are found.
    #[arg(long, short)]
    quiet: bool,
    /// Also publish the events over MQTT ([mqtt] section), numbered in the
    /// station's sequence, and wait for the broker to acknowledge them.
    #[arg(long)]
    mqtt: bool,
    /// Draw each recording's spectrogram, class probabilities and calls into
    /// this PNG (NAME.<recording>.png when several are given).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write each call's evidence (audio clip, spectrogram PNG, JSON) into
    /// this directory, as [evidence] describes; overrides [evidence] dir and
    /// enabled.
    #[arg(long)]
    clips: Option<PathBuf>,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["detections", "replay"])))]
struct EvalArgs {
    /// Raven selection table of the annotated calls of one recording
    /// (repeat for several, named <recording>.*.txt).
    #[arg(long, required = true)]
    truth: Vec<PathBuf>,
    /// rumbled JSONL events to evaluate (their end records).
    #[arg(long)]
    detections: Option<PathBuf>,
    /// Frame probabilities CSV from `replay --frames`, for the framewise
    /// metrics with --detections (repeat per recording).
    #[arg(long, requires = "detections")]
    frames: Vec<PathBuf>,
    /// Replay these recordings and evaluate what is detected, framewise
    /// metrics included; detection settings come from the config.
    #[arg(long, num_args = 1..)]
    replay: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Column of the truth tables that holds the class.
    #[arg(long, default_value = "Class")]
    class_column: String,
    /// Label mapping FROM=TO, e.g. ru=rumble (case never matters; bird=
    /// leaves bird out); repeatable.
    #[arg(long = "map", value_name = "FROM=TO")]
    map: Vec<String>,
    /// Least temporal IoU for a detection to match an annotated call.
    #[arg(long, default_value_t = 0.5)]
    iou: f64,
    /// Column of the frame CSVs holding the no-call class.
    #[arg(long, default_value = "not-call")]
    background: String,
    /// Total seconds of audio, for false alarms per hour when the inputs do
    /// not tell.
    #[arg(long)]
    duration_s: Option<f64>,
    /// Also write the report as JSON to this file (`-`: standard output,
    /// instead of the table).
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Replay(args) => replay_command(args),
        Command::CheckConfig { file } => check_config(file),
        Command::Model(args) => model_command(args),
        Command::Eval(args) => eval_command(args),
        Command::Run(args) => run_command(args),
        Command::Devices { config } => devices_command(config),
    }
}

/// Loads the config and applies the model flags over it.
fn load_config(args: &ModelArgs) -> Result<(Config, PathBuf)> {
    let mut config = Config::load_or_default(args.config.as_deref())?;
    if let Some(model) = &args.model {
        config.model.manifest = Some(model.clone());
    }
    if let Some(lib) = &args.onnxruntime {
        config.model.onnxruntime = Some(lib.clone());
    }
    if let Some(threads) = args.threads {
        config.model.threads = threads;
    }
    let source = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("<command line>"));
    Ok((config, source))
}

fn init_logging(config: &Config) {
    // ONNX Runtime narrates every graph optimisation at info level; keep it
    // to warnings unless the filter asks for it by name.
    let mut level = config.log.level.clone();
    if !level.contains("ort") {
        level.push_str(",ort=warn");
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Under systemd, journald stamps every line itself: a second timestamp
    // and colour codes would only clutter `journalctl`.
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let _ = match (config.log.format, journald) {
        (LogFormat::Json, _) => builder.json().try_init(),
        (LogFormat::Text, true) => builder.without_time().with_ansi(false).try_init(),
        (LogFormat::Text, false) => builder.try_init(),
    };
}

fn replay_command(args: ReplayArgs) -> Result<ExitCode> {
    let (mut config, source) = load_config(&args.model)?;
    if let Some(channel) = args.channel {
        config.input.channel = channel;
    }
    if let Some(hop) = args.hop {
        config.model.hop_frames = hop;
    }
    if let Some(station) = &args.station {
        config.station.name = station.clone();
    }
    if let Some(onset) = args.onset {
        config.endpoint.onset = onset;
        config.endpoint_set.insert("onset".to_owned());
    }
    if let Some(offset) = args.offset {
        config.endpoint.offset = offset;
        config.endpoint_set.insert("offset".to_owned());
    }
    // Only the flag publishes a replay, whatever the station's config says.
    config.mqtt.enabled = args.mqtt;
    config.validate(&source)?;
    init_logging(&config);
    let start_time = args
        .start_time
        .as_deref()
        .map(rumbled::clock::parse_rfc3339)
        .transpose()
        .map_err(anyhow::Error::msg)
        .context("--start-time")?;
    let request = ReplayRequest {
        files: args.files,
        events: args.events.or(config.output.events.clone()),
        raven_dir: args.raven.or(config.output.raven_dir.clone()),
        frames: args.frames,
        start_time,
        print_calls: !args.quiet,
    };
    let several = request.files.len() > 1;
    let mut plot = args.plot.map(|target| PlotFiles::new(&target, several));
    let mut evidence_config = config.evidence.clone();
    if let Some(dir) = args.clips {
        evidence_config.dir = dir;
        evidence_config.enabled = true;
    }
    let mut evidence = evidence_config
        .enabled
        .then(|| ReplayEvidence::new(&evidence_config, &config.endpoint, config.model.hop_frames));
    let mut observers: Vec<&mut dyn ReplayObserver> = Vec::new();
    if let Some(plot) = plot.as_mut() {
        observers.push(plot);
    }
    if let Some(evidence) = evidence.as_mut() {
        observers.push(evidence);
    }
    let report = replay::run_observed(&config, &request, &mut observers)?;
    eprintln!("{}", report.summary_line());
    if let Some(evidence) = &evidence {
        let stats = evidence.stats();
        eprintln!(
            "evidence: {} call{} written to {}{}",
            stats.written,
            if stats.written == 1 { "" } else { "s" },
            evidence_config.dir.display(),
            if stats.failed > 0 {
                format!(", {} could not be written (see the log)", stats.failed)
            } else {
                String::new()
            }
        );
    }
    Ok(if report.failed_files() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn eval_command(args: EvalArgs) -> Result<ExitCode> {
    let (config, source) = load_config(&args.model)?;
    config.validate(&source)?;
    init_logging(&config);
    let labels = LabelMap::parse(&args.map)
        .map_err(anyhow::Error::msg)
        .context("--map")?;
    let source = match args.detections {
        Some(events) => DetectionSource::Files {
            events,
            frames: args.frames,
        },
        None => DetectionSource::Replay(args.replay),
    };
    let request = EvalRequest {
        truth: args.truth,
        class_column: args.class_column,
        source,
        background: args.background,
        settings: EvalSettings {
            min_iou: args.iou,
            labels,
            call_score: config.endpoint.call_score,
            duration_s: args.duration_s,
        },
    };
    let report = eval::run(&config, &request)?;
    let json_to_stdout = args.json.as_deref() == Some(std::path::Path::new("-"));
    if !json_to_stdout {
        print!("{report}");
    }
    if let Some(path) = &args.json {
        eval::write_json(&report, path)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn check_config(file: Option<PathBuf>) -> Result<ExitCode> {
    let path = file.unwrap_or_else(|| PathBuf::from(rumbled::config::DEFAULT_PATH));
    let config = Config::load(&path)?;
    println!("# {} is valid; effective configuration:", path.display());
    print!(
        "{}",
        toml::to_string_pretty(&config).context("printing the configuration")?
    );
    Ok(ExitCode::SUCCESS)
}

fn model_command(args: ModelArgs) -> Result<ExitCode> {
    let (config, _) = load_config(&args)?;
    init_logging(&config);
    let model = replay::load_model(&config)?;
    let m = model.manifest();
    println!("model      {} {}", m.name, m.version);
    println!("manifest   {}", m.path.display());
    println!("onnx       {} (sha256 verified)", m.onnx_path().display());
    println!("labels     {}", m.labels.join(", "));
    println!(
        "window     {} fbank frames, {} outputs of {:.0} ms",
        m.window_frames,
        m.window_outputs(),
        m.output_frame_seconds() * 1000.0
    );
    if let Some(min) = m.min_input_rate {
        println!(
            "recorders  {min} Hz and up (the lowest rate it was trained on; lower ones get a warning)"
        );
    }
    if !m.endpoint.is_empty() {
        println!(
            "endpoint   {} (recommended; keys set in [endpoint] or by flags win)",
            serde_json::to_string(&m.endpoint)?
        );
    }
    println!(
        "provenance {}",
        serde_json::to_string_pretty(&m.provenance)?
    );
    Ok(ExitCode::SUCCESS)
}

fn run_command(args: RunArgs) -> Result<ExitCode> {
    let load = move || -> Result<Config> {
        let (config, source) = load_config(&args.model)?;
        config.validate(&source)?;
        Ok(config)
    };
    let config = load()?;
    init_logging(&config);
    if let Some(duration) = args.duration
        && !(duration.is_finite() && duration > 0.0)
    {
        anyhow::bail!("--duration {duration}: must be a positive number of seconds");
    }
    if !(args.speed.is_finite() && args.speed > 0.0) {
        anyhow::bail!("--speed {}: must be a positive number", args.speed);
    }
    let options = rumbled::daemon::RunOptions {
        max_audio_s: args.duration,
        speed: args.speed,
        reload: Box::new(load),
    };
    rumbled::daemon::run(config, options)?;
    Ok(ExitCode::SUCCESS)
}

fn devices_command(config: Option<PathBuf>) -> Result<ExitCode> {
    let config = Config::load_or_default(config.as_deref())?;
    init_logging(&config);
    let devices = rumbled::audio::capture::list_input_devices()?;
    let selected = rumbled::audio::capture::selected_device_id(&config.input.device);
    for device in &devices {
        let mark = if selected.as_ref().is_ok_and(|id| *id == device.id) {
            "*"
        } else {
            " "
        };
        println!("{mark} {}\t{}", device.id, device.description);
        for format in &device.formats {
            println!("      {format}");
        }
        if let Some(error) = &device.error {
            println!("      cannot be opened now: {error}");
        }
    }
    match selected {
        Ok(id) => println!(
            "input.device = \"{}\" selects {id} (*)",
            config.input.device
        ),
        Err(e) => println!("input.device: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}
