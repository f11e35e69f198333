//! Configuration: one TOML file holding every knob, with defaults.
//!
//! Every section is optional; a missing key takes its default, an unknown key
//! is an error (a typo must not silently fall back to a default on a station
//! nobody visits). Errors name the file and the key.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::detect::{EndpointConfig, EndpointError, Recommended};
use crate::evidence::EvidenceConfig;

/// Where the daemon looks for its configuration unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/rumbled/rumbled.toml";

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Station identity and stream options.
    pub station: StationConfig,
    /// Where audio comes from and how it is turned into one channel.
    pub input: InputConfig,
    /// Which model to run and how.
    pub model: ModelConfig,
    /// How per-frame probabilities become calls (`[endpoint]`).
    pub endpoint: EndpointConfig,
    /// Files the detections are written to.
    pub output: OutputConfig,
    /// Logging.
    pub log: LogConfig,
    /// The live daemon: health checks, retries, stats (`[daemon]`).
    pub daemon: DaemonConfig,
    /// Per-call evidence clips and spectrograms.
    pub evidence: EvidenceConfig,
    /// MQTT publishing and its spool.
    pub mqtt: MqttConfig,
    /// Where the daemon keeps state across restarts.
    pub state: StateConfig,
    /// `[endpoint]` keys the file or the command line set; a model's
    /// recommended settings apply to the others
    /// ([`Config::adopt_recommended_endpoint`]).
    #[serde(skip)]
    pub endpoint_set: BTreeSet<String>,
}

/// Station identity.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StationConfig {
    /// Station name: in every event, the event ids and the MQTT topics.
    pub name: String,
}

impl Default for StationConfig {
    fn default() -> Self {
        StationConfig {
            name: "station".into(),
        }
    }
}

/// Audio input.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// `device` (live capture) or `file` (a WAV played in real time, the
    /// "test input" for checking a station end to end).
    pub kind: InputKind,
    /// Capture device: cpal id or a case-insensitive part of its description.
    pub device: String,
    /// Test-input file for `kind = "file"`.
    pub file: Option<PathBuf>,
    /// Replay the test-input file forever.
    #[serde(rename = "loop")]
    pub looped: bool,
    /// `mix` (mean of all channels) or a 0-based channel number.
    pub channel: ChannelSelect,
    /// Linear gain applied before features.
    pub gain: f32,
}

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig {
            kind: InputKind::Device,
            device: "default".into(),
            file: None,
            looped: false,
            channel: ChannelSelect::Mix,
            gain: 1.0,
        }
    }
}

/// Kind of live input.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// A capture device.
    Device,
    /// A file played at real-time pace.
    File,
}

/// Which channel of a multi-channel recording to analyse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelSelect {
    /// The mean of all channels.
    Mix,
    /// One channel, 0-based.
    Index(usize),
}

impl Serialize for ChannelSelect {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ChannelSelect::Mix => s.serialize_str("mix"),
            ChannelSelect::Index(i) => s.serialize_u64(*i as u64),
        }
    }
}

impl<'de> Deserialize<'de> for ChannelSelect {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Index(usize),
        }
        match Raw::deserialize(d)? {
            Raw::Index(i) => Ok(ChannelSelect::Index(i)),
            Raw::Name(name) if name == "mix" => Ok(ChannelSelect::Mix),
            Raw::Name(name) => name.parse().map(ChannelSelect::Index).map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{name}` is not a channel: use \"mix\" or a 0-based channel number"
                ))
            }),
        }
    }
}

impl fmt::Display for ChannelSelect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelSelect::Mix => f.write_str("mix"),
            ChannelSelect::Index(i) => write!(f, "{i}"),
        }
    }
}

impl std::str::FromStr for ChannelSelect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "mix" {
            return Ok(ChannelSelect::Mix);
        }
        s.parse()
            .map(ChannelSelect::Index)
            .map_err(|_| format!("`{s}` is not a channel: use \"mix\" or a 0-based number"))
    }
}

/// Model selection and inference settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Manifest (`<name>.json`) of the model; unset = the shipped default.
    pub manifest: Option<PathBuf>,
    /// Path of `libonnxruntime.so`; unset = searched (next to the binary,
    /// /usr/lib/rumbled, the checkout's .onnxruntime/).
    pub onnxruntime: Option<PathBuf>,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
    /// Window advance in output frames (160 ms each): smaller = lower latency
    /// and smoother probabilities, more CPU.
    pub hop_frames: usize,
    /// Weight overlapping windows towards their centre.
    pub centre_weighted: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            manifest: None,
            onnxruntime: None,
            threads: 1,
            hop_frames: 13,
            centre_weighted: false,
        }
    }
}

/// File outputs (the daemon's and replay's defaults; replay flags override).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Append events as JSON lines to this file.
    pub events: Option<PathBuf>,
    /// Write a Raven selection table per input file into this directory.
    pub raven_dir: Option<PathBuf>,
}

/// Logging.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// tracing filter (`info`, `rumbled=debug`, ...); RUST_LOG wins if set.
    pub level: String,
    /// `text` or `json` lines.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// MQTT publishing (`[mqtt]`); see `deploy/rumbled.toml` for each key.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// The daemon publishes when on (`replay --mqtt` publishes regardless).
    pub enabled: bool,
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id; unset = `rumbled-<station>`.
    pub client_id: Option<String>,
    /// Topic prefix; unset = `rumbled/<station>`.
    pub topic_prefix: Option<String>,
    /// MQTT keep-alive, seconds.
    pub keep_alive_s: u64,
    /// User name; unset = anonymous.
    pub username: Option<String>,
    /// File whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// Connect with TLS.
    pub tls: bool,
    /// PEM CA certificate(s) the broker's certificate must chain to.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (mutual TLS).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Name the broker's certificate must carry, when not `host`.
    pub server_name: Option<String>,
    /// First reconnect delay, seconds.
    pub backoff_min_s: f64,
    /// Longest reconnect delay, seconds.
    pub backoff_max_s: f64,
    /// Most undelivered events kept in the spool.
    pub spool_max_events: u64,
    /// Most spool payload, MiB.
    pub spool_max_mb: u64,
    /// Oldest undelivered event kept, days.
    pub spool_max_age_days: u64,
    /// Publish Home Assistant MQTT discovery configs.
    pub home_assistant: bool,
    /// Home Assistant's discovery prefix.
    pub discovery_prefix: String,
    /// How long `replay --mqtt` waits at its end for the broker to
    /// acknowledge the spool, and a stopping daemon for its `stopped`, seconds.
    pub drain_timeout_s: f64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            enabled: false,
            host: "localhost".into(),
            port: 1883,
            client_id: None,
            topic_prefix: None,
            keep_alive_s: 30,
            username: None,
            password_file: None,
            tls: false,
            ca_file: None,
            client_cert: None,
            client_key: None,
            server_name: None,
            backoff_min_s: 1.0,
            backoff_max_s: 60.0,
            spool_max_events: 100_000,
            spool_max_mb: 64,
            spool_max_age_days: 30,
            home_assistant: false,
            discovery_prefix: "homeassistant".into(),
            drain_timeout_s: 10.0,
        }
    }
}

impl MqttConfig {
    /// The effective client id of `station`.
    pub fn client_id(&self, station: &str) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| format!("rumbled-{station}"))
    }

    /// The effective topic prefix of `station`.
    pub fn topic_prefix(&self, station: &str) -> String {
        self.topic_prefix
            .clone()
            .unwrap_or_else(|| format!("rumbled/{station}"))
    }

    /// Range and consistency checks; `Err((key, message))` names the key
    /// under `[mqtt]`.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        let topic_ok = |t: &str| {
            !t.is_empty()
                && !t.contains(['+', '#', '\0'])
                && !t.starts_with('/')
                && !t.ends_with('/')
        };
        if self.host.trim().is_empty() {
            return Err(("host", "must not be empty".into()));
        }
        if self.port == 0 {
            return Err(("port", "must be between 1 and 65535".into()));
        }
        if self.client_id.as_deref().is_some_and(|id| id.is_empty()) {
            return Err((
                "client_id",
                "must not be empty (leave it unset for rumbled-<station>)".into(),
            ));
        }
        if let Some(prefix) = self.topic_prefix.as_deref().filter(|p| !topic_ok(p)) {
            return Err((
                "topic_prefix",
                format!(
                    "`{prefix}` must be a non-empty topic without `+`, `#` or a leading/trailing `/`"
                ),
            ));
        }
        if !(5..=65_535).contains(&self.keep_alive_s) {
            return Err((
                "keep_alive_s",
                format!("{} must be between 5 and 65535", self.keep_alive_s),
            ));
        }
        if self.password_file.is_some() && self.username.is_none() {
            return Err(("username", "must be set when mqtt.password_file is".into()));
        }
        if self.tls && self.ca_file.is_none() {
            return Err((
                "ca_file",
                "must be set when mqtt.tls = true (for a public CA: /etc/ssl/certs/ca-certificates.crt)".into(),
            ));
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err((
                "client_key",
                "mqtt.client_cert and mqtt.client_key go together".into(),
            ));
        }
        if !self.tls {
            for (key, set) in [
                ("ca_file", self.ca_file.is_some()),
                ("client_cert", self.client_cert.is_some()),
                ("server_name", self.server_name.is_some()),
            ] {
                if set {
                    return Err((key, "only applies with mqtt.tls = true".into()));
                }
            }
        }
        if !(self.backoff_min_s.is_finite() && self.backoff_min_s > 0.0) {
            return Err((
                "backoff_min_s",
                format!("{} must be a positive number", self.backoff_min_s),
            ));
        }
        if !(self.backoff_max_s.is_finite() && self.backoff_max_s >= self.backoff_min_s) {
            return Err((
                "backoff_max_s",
                format!(
                    "{} must be at least mqtt.backoff_min_s ({})",
                    self.backoff_max_s, self.backoff_min_s
                ),
            ));
        }
        for (key, value) in [
            ("spool_max_events", self.spool_max_events),
            ("spool_max_mb", self.spool_max_mb),
            ("spool_max_age_days", self.spool_max_age_days),
        ] {
            if value == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        if !(self.drain_timeout_s.is_finite() && self.drain_timeout_s >= 0.0) {
            return Err((
                "drain_timeout_s",
                format!("{} must be a number of seconds >= 0", self.drain_timeout_s),
            ));
        }
        if !topic_ok(&self.discovery_prefix) {
            return Err((
                "discovery_prefix",
                format!(
                    "`{}` must be a non-empty topic without `+` or `#`",
                    self.discovery_prefix
                ),
            ));
        }
        Ok(())
    }
}

/// Persistent state (`[state]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Directory of the state database (MQTT spool, event sequence numbers).
    pub dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: PathBuf::from("/var/lib/rumbled"),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// The live daemon (`rumbled run`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Seconds between stats lines in the log.
    pub stats_interval_s: f64,
    /// A capture stream that delivers no audio this long is reopened.
    pub stall_timeout_s: f64,
    /// First delay before reopening a lost device; doubles per failure.
    pub retry_initial_s: f64,
    /// Longest delay between reopening attempts.
    pub retry_max_s: f64,
    /// Seconds of audio the buffer between capture and processing holds.
    pub ring_s: f64,
    /// Announce calls from provisional frames, about half a hop after their
    /// onset, instead of a window's length later (marked `provisional`,
    /// then confirmed or retracted).
    pub early_start: bool,
    /// Event times are re-anchored to UTC (between calls) when the sample
    /// clock has drifted this far from it.
    pub max_clock_drift_s: f64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            stats_interval_s: 60.0,
            stall_timeout_s: 5.0,
            retry_initial_s: 1.0,
            retry_max_s: 30.0,
            ring_s: 10.0,
            early_start: true,
            max_clock_drift_s: 0.5,
        }
    }
}

/// A configuration problem, naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("config file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message, which names the key and shows the line.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("config file {}: `{key}`: {message}", path.display())]
    Invalid {
        /// The file (or `<defaults>`/`<command line>`).
        path: PathBuf,
        /// Dotted key, e.g. `detect.offset`.
        key: String,
        /// What is wrong and what would be right.
        message: String,
    },
}

/// The keys of the `[endpoint]` table of config text that already parsed.
fn endpoint_keys(text: &str) -> BTreeSet<String> {
    let table: toml::Table = toml::from_str(text).unwrap_or_default();
    table
        .get("endpoint")
        .and_then(toml::Value::as_table)
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates TOML text; `path` is only used in messages and
    /// to resolve relative paths against the file's directory.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.endpoint_set = endpoint_keys(text);
        config.resolve_paths(path.parent().unwrap_or_else(|| Path::new(".")));
        config.validate(path)?;
        Ok(config)
    }

    /// Takes a model's recommended `[endpoint]` settings (its manifest's
    /// `endpoint`) for every key neither the file nor the command line set,
    /// so a model ships with the operating point it was tuned for while the
    /// station keeps the last word.
    pub fn adopt_recommended_endpoint(
        &mut self,
        recommended: &Recommended,
    ) -> Result<(), EndpointError> {
        self.endpoint = self
            .endpoint
            .with_recommended(&self.endpoint_set, recommended)?;
        Ok(())
    }

    /// Reads `path` if given; otherwise the default file if it exists;
    /// otherwise the built-in defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(path) => Self::load(path),
            None if Path::new(DEFAULT_PATH).exists() => Self::load(Path::new(DEFAULT_PATH)),
            None => Ok(Config::default()),
        }
    }

    /// Relative paths in a config file are relative to that file, not to
    /// whatever directory the daemon was started from.
    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(path) = p
                && path.is_relative()
            {
                *path = base.join(&*path);
            }
        };
        fix(&mut self.input.file);
        fix(&mut self.model.manifest);
        fix(&mut self.model.onnxruntime);
        fix(&mut self.output.events);
        fix(&mut self.output.raven_dir);
        if self.evidence.dir.is_relative() {
            self.evidence.dir = base.join(&self.evidence.dir);
        }
        fix(&mut self.mqtt.password_file);
        fix(&mut self.mqtt.ca_file);
        fix(&mut self.mqtt.client_cert);
        fix(&mut self.mqtt.client_key);
        if !self.state.dir.as_os_str().is_empty() && self.state.dir.is_relative() {
            self.state.dir = base.join(&self.state.dir);
        }
    }

    /// Checks ranges and cross-field rules; `path` names the source in errors.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.into(),
            message,
        };
        let name = &self.station.name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                "station.name",
                format!(
                    "`{name}` must be non-empty ASCII letters, digits, `-` or `_` \
                     (it becomes part of MQTT topics and event ids)"
                ),
            ));
        }
        if !(self.input.gain.is_finite() && self.input.gain > 0.0) {
            return Err(invalid(
                "input.gain",
                format!("{} must be a positive number", self.input.gain),
            ));
        }
        if self.input.kind == InputKind::File && self.input.file.is_none() {
            return Err(invalid(
                "input.file",
                "must be set when input.kind = \"file\"".into(),
            ));
        }
        if self.model.threads == 0 || self.model.threads > 64 {
            return Err(invalid(
                "model.threads",
                format!("{} must be between 1 and 64", self.model.threads),
            ));
        }
        if self.model.hop_frames == 0 {
            return Err(invalid("model.hop_frames", "must be at least 1".into()));
        }
        self.endpoint.validate().map_err(|e| match e {
            EndpointError::Invalid { key, problem } => invalid(&format!("endpoint.{key}"), problem),
            other => invalid("endpoint", other.to_string()),
        })?;
        self.mqtt
            .validate()
            .map_err(|(key, message)| invalid(&format!("mqtt.{key}"), message))?;
        if self.state.dir.as_os_str().is_empty() {
            return Err(invalid("state.dir", "must not be empty".into()));
        }
        self.evidence
            .validate()
            .map_err(|(key, message)| invalid(&format!("evidence.{key}"), message))?;
        let d = &self.daemon;
        for (key, seconds) in [
            ("daemon.stats_interval_s", d.stats_interval_s),
            ("daemon.stall_timeout_s", d.stall_timeout_s),
            ("daemon.retry_initial_s", d.retry_initial_s),
            ("daemon.retry_max_s", d.retry_max_s),
            ("daemon.ring_s", d.ring_s),
            ("daemon.max_clock_drift_s", d.max_clock_drift_s),
        ] {
            if !(seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0) {
                return Err(invalid(
                    key,
                    format!("{seconds} must be a time in seconds > 0 and <= 86400"),
                ));
            }
        }
        if d.retry_max_s < d.retry_initial_s {
            return Err(invalid(
                "daemon.retry_max_s",
                format!(
                    "{} must be >= daemon.retry_initial_s ({})",
                    d.retry_max_s, d.retry_initial_s
                ),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid(
                "log.level",
                format!(
                    "`{}` is not a log filter (try info, debug, rumbled=debug)",
                    self.log.level
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/rumbled/test.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_documented_example_holds_exactly_the_defaults() {
        // deploy/rumbled.toml shows every key with its default value; if a
        // default changes, the documentation must change with it.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rumbled.toml");
        let example = Config::load(&path).expect("example config is valid");
        assert_eq!(example, Config::default());
        let text = std::fs::read_to_string(&path).expect("read example");
        let printed = toml::to_string(&Config::default()).expect("serialise");
        for line in printed.lines().filter(|l| l.contains(" = ")) {
            let key = line.split(" = ").next().unwrap_or_default();
            assert!(
                text.contains(&format!("{key} = ")),
                "example does not document `{key}`"
            );
        }
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        assert_eq!(parse(""), Ok(Config::default()));
    }

    #[test]
    fn endpoint_keys_the_file_sets_are_known_and_win_over_the_model() {
        let mut config = parse("[endpoint]\nonset = 0.7\noffset = 0.5\n").expect("valid");
        assert_eq!(
            config.endpoint_set.iter().collect::<Vec<_>>(),
            ["offset", "onset"]
        );
        let model: Recommended =
            serde_json::from_str(r#"{"onset": 0.5, "offset": 0.15, "min_onset_s": 0.16}"#)
                .expect("test JSON");
        config.adopt_recommended_endpoint(&model).expect("valid");
        assert_eq!(
            (
                config.endpoint.onset,
                config.endpoint.offset,
                config.endpoint.min_onset_s
            ),
            (0.7, 0.5, 0.16)
        );
    }

    #[test]
    fn label_minimums_set_in_the_file_replace_the_model_s() {
        let mut config =
            parse("[endpoint]\nlabel_min_duration_s = { cry = 0.5 }\n").expect("valid");
        let model: Recommended =
            serde_json::from_str(r#"{"label_min_duration_s": {"rumble": 0.96}}"#)
                .expect("test JSON");
        config.adopt_recommended_endpoint(&model).expect("valid");
        assert_eq!(
            config.endpoint.label_min_duration_s,
            [("cry".to_owned(), 0.5)].into()
        );
        let mut config = parse("").expect("valid");
        config.adopt_recommended_endpoint(&model).expect("valid");
        assert_eq!(
            config.endpoint.label_min_duration_s,
            [("rumble".to_owned(), 0.96)].into()
        );
    }

    #[test]
    fn unknown_keys_are_named_with_the_file() {
        let err = parse("[endpoint]\nonsett = 0.4\n").unwrap_err();
        assert!(err.contains("test.toml") && err.contains("onsett"), "{err}");
    }

    #[test]
    fn wrong_types_are_named_with_the_file() {
        let err = parse("[model]\nthreads = \"two\"\n").unwrap_err();
        assert!(
            err.contains("test.toml") && err.contains("threads"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        let cases = [
            ("[endpoint]\noffset = 0.9\n", "endpoint.offset"),
            ("[endpoint]\nonset = 1.5\n", "endpoint.onset"),
            ("[model]\nthreads = 0\n", "model.threads"),
            ("[model]\nhop_frames = 0\n", "model.hop_frames"),
            ("[input]\ngain = -1.0\n", "input.gain"),
            ("[input]\nkind = \"file\"\n", "input.file"),
            ("[station]\nname = \"st 03/#\"\n", "station.name"),
            ("[log]\nlevel = \"=[\"\n", "log.level"),
            ("[evidence]\npre_roll_s = -1.0\n", "evidence.pre_roll_s"),
            ("[evidence]\nmax_disk_mb = 0\n", "evidence.max_disk_mb"),
            ("[daemon]\nring_s = 0.0\n", "daemon.ring_s"),
            ("[daemon]\nretry_max_s = 0.5\n", "daemon.retry_max_s"),
            ("[mqtt]\nport = 0\n", "mqtt.port"),
            ("[mqtt]\ntls = true\n", "mqtt.ca_file"),
            ("[mqtt]\nca_file = \"ca.pem\"\n", "mqtt.ca_file"),
            ("[mqtt]\npassword_file = \"pw\"\n", "mqtt.username"),
            (
                "[mqtt]\ntls = true\nca_file = \"c\"\nclient_cert = \"x\"\n",
                "mqtt.client_key",
            ),
            ("[mqtt]\ntopic_prefix = \"a/#\"\n", "mqtt.topic_prefix"),
            ("[mqtt]\nbackoff_max_s = 0.5\n", "mqtt.backoff_max_s"),
            ("[mqtt]\nkeep_alive_s = 1\n", "mqtt.keep_alive_s"),
            ("[mqtt]\nspool_max_events = 0\n", "mqtt.spool_max_events"),
            ("[state]\ndir = \"\"\n", "state.dir"),
        ];
        for (text, key) in cases {
            let err = parse(text).unwrap_err();
            assert!(
                err.contains(&format!("`{key}`")) && err.contains("test.toml"),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn channels_are_mix_or_a_number() {
        assert_eq!(
            parse("[input]\nchannel = 2\n").map(|c| c.input.channel),
            Ok(ChannelSelect::Index(2))
        );
        assert_eq!(
            parse("[input]\nchannel = \"1\"\n").map(|c| c.input.channel),
            Ok(ChannelSelect::Index(1))
        );
        assert!(
            parse("[input]\nchannel = \"left\"\n")
                .unwrap_err()
                .contains("left")
        );
    }

    #[test]
    fn relative_paths_are_relative_to_the_file() {
        let config = parse("[model]\nmanifest = \"models/x.json\"\n").expect("valid");
        assert_eq!(
            config.model.manifest,
            Some(PathBuf::from("/etc/rumbled/models/x.json"))
        );
    }
}
