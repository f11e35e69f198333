//! The `rumbled` command line: `replay` recordings, `check-config`, inspect a
//! `model`. Errors are printed as one plain sentence chain, never a panic.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use rumbled::config::{ChannelSelect, Config, LogFormat};
use rumbled::replay::{self, ReplayRequest};

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
    /// Onset threshold, overriding [detect] onset.
    #[arg(long)]
    onset: Option<f32>,
    /// Offset threshold, overriding [detect] offset.
    #[arg(long)]
    offset: Option<f32>,
    /// Do not print calls as they are found.
    #[arg(long, short)]
    quiet: bool,
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
    }
    if let Some(offset) = args.offset {
        config.endpoint.offset = offset;
    }
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
    let report = replay::run(&config, &request)?;
    eprintln!("{}", report.summary_line());
    Ok(if report.failed_files() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
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
