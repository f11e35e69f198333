//! Call events over MQTT that are never lost.
//!
//! ```text
//! pipeline thread                      publisher thread (own tokio runtime)
//! MqttSink::emit ─► spool (fsync) ─wake─► read spool in order ─► rumqttc ─► broker
//!                                         PUBACK ─► delete from spool
//! ```
//!
//! [`MqttSink::emit`] waits only for the record to be durable in the
//! [spool](super::spool) (a local fsync, never the network) and wakes the
//! publisher. The publisher sends spooled records in order, at most
//! [`WINDOW`] awaiting their PUBACK, and deletes each when its PUBACK
//! arrives. After any disconnect it throws rumqttc's in-flight state away
//! (rumqttc drops it anyway when the broker has no session) and re-sends
//! every unacknowledged record from the spool, so delivery is at least once
//! whatever the broker or this process does; subscribers de-duplicate by the
//! record's `id`.
//!
//! If the spool cannot take a record (a full or failing disk, or another
//! process holding its write lock for over a second), the sink holds it in
//! memory instead, bounded by [`MAX_HELD`], and the publisher sends held
//! records after the spooled ones, dropping each at its PUBACK. Held
//! records survive reconnects; at a stop, what is still held gets one more
//! try at the spool (the disk may be back), and only what that fails to
//! take is lost to MQTT (it is in the log and events file). The failure is
//! logged (once per episode) and counted in [`MqttStats::held`].
//!
//! A record is sent with `historical: true` when it is delivered late: a
//! previous run of rumbled spooled it (and died or stopped before the broker
//! had it), or it was spooled while the broker was unreachable, or it is
//! re-sent after a reconnect. Records spooled while the first connection of
//! a run is still being set up are not late: a call heard in the first
//! seconds after a station boots is live news.
//!
//! # Topics (`<prefix>` = `[mqtt] topic_prefix`, default `rumbled/<station>`)
//!
//! | topic | QoS, retained | payload |
//! |---|---|---|
//! | `<prefix>/events` | 1, no | `rumbled.call/1` records |
//! | `<prefix>/status` | 1, yes | [`StatusPayload`]: `online` on connect, `offline` as the last will, `stopped` on [`MqttHandle::shutdown`] |
//! | `<prefix>/stats` | 0, no | whatever the daemon passes to [`MqttHandle::publish_stats`] |
//!
//! JSON Schemas of the event and status payloads are in `schemas/`.
//!
//! # Use
//!
//! ```no_run
//! # fn demo(config: &rumbled::config::Config, model: rumbled::detect::ModelInfo)
//! #     -> anyhow::Result<()> {
//! use std::time::Duration;
//! use rumbled::publish::{EventSink, MqttPublisher, Role, SeqSource, StatusInfo};
//! let status = StatusInfo::new(config, model);
//! let (mut sink, handle) = MqttPublisher::start(
//!     &config.mqtt, &config.station.name, Role::Daemon(status), &config.state.dir)?;
//! let mut seq = SeqSource::open(&config.state.dir, &config.station.name)?;
//! // per event: sink.emit(&CallRecord::from_event(&ev, &ctx, seq.next_seq()?))?;
//! // every stats interval: handle.publish_stats(&my_stats_including(handle.stats()));
//! handle.shutdown(Duration::from_secs(5)); // on SIGTERM: `stopped`, clean disconnect
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, LastWill, MqttOptions, Outgoing,
    Packet, QoS, TlsConfiguration, Transport,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc};

use super::EventSink;
use super::spool::{Spool, SpoolCounters, SpoolError, SpoolLimits};
use crate::clock::rfc3339_millis;
use crate::config::{Config, MqttConfig};
use crate::detect::{CallRecord, ModelInfo};

/// Schema tag of [`StatusPayload`].
pub const STATUS_SCHEMA: &str = "rumbled.status/1";

/// Most event publishes awaiting their PUBACK: enough to fill a slow link,
/// small enough that a reconnect re-sends little.
pub const WINDOW: usize = 64;

/// rumqttc's packet-id space. Far larger than [`WINDOW`], so a packet id is
/// never reused while an earlier publish with it still waits for its ack
/// (rumqttc would then stall on a "collision").
const PKID_SPACE: u16 = 1000;

/// Capacity of rumqttc's request channel: the window plus room for status
/// and stats publishes.
const REQUEST_CAP: usize = WINDOW + 64;

/// How often the publisher re-counts the spool, sheds expired records and
/// checkpoints the database log.
const MAINTENANCE: Duration = Duration::from_secs(5);

/// A publisher that could not start.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// The spool could not be opened.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// A credential or certificate file could not be used.
    #[error("`mqtt.{key}` {}: {message}", path.display())]
    File {
        /// Config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong (never the file's content).
        message: String,
    },
    /// The TLS settings are unusable.
    #[error("MQTT TLS setup: {0}")]
    Tls(String),
    /// The publisher thread or its runtime could not start.
    #[error("cannot start the MQTT publisher: {0}")]
    Start(std::io::Error),
}

/// What the `<prefix>/status` payload says about the process.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusInfo {
    /// rumbled's version.
    pub version: String,
    /// The loaded model.
    pub model: ModelInfo,
    /// First 16 hex digits of the SHA-256 of the effective configuration,
    /// so a fleet operator can see which stations run which settings.
    pub config_hash: String,
    /// When the process started (RFC 3339 UTC).
    pub started: String,
}

impl StatusInfo {
    /// Status of this process running `config` with `model`, started now.
    pub fn new(config: &Config, model: ModelInfo) -> Self {
        StatusInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            model,
            config_hash: config_hash(config),
            started: now_rfc3339(),
        }
    }
}

/// Hash of the effective configuration (as `check-config` prints it).
pub fn config_hash(config: &Config) -> String {
    let text = toml::to_string(config).unwrap_or_default();
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// Now, written like the event times.
fn now_rfc3339() -> String {
    rfc3339_millis(OffsetDateTime::now_utc())
}

/// Which process publishes, which decides client id, session and status.
#[derive(Clone, Debug, PartialEq)]
pub enum Role {
    /// The station daemon: client id `[mqtt] client_id`, persistent session,
    /// `online`/`offline`/`stopped` status, optional Home Assistant discovery.
    Daemon(StatusInfo),
    /// `rumbled replay --mqtt`: events only, under a client id of its own
    /// (`<client_id>-replay-<pid>`, clean session) so that it never takes
    /// the daemon's session or status over, with a spool queue of its own.
    Replay,
}

/// `state` of a [`StatusPayload`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusState {
    /// Connected and publishing.
    Online,
    /// Gone without saying goodbye (the broker's last will).
    Offline,
    /// Stopped cleanly.
    Stopped,
}

/// The retained `<prefix>/status` payload (`rumbled.status/1`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusPayload {
    /// Always [`STATUS_SCHEMA`].
    pub schema: String,
    /// Online, offline or stopped.
    pub state: StatusState,
    /// Station name.
    pub station: String,
    /// rumbled's version.
    pub version: String,
    /// The loaded model.
    pub model: ModelInfo,
    /// See [`StatusInfo::config_hash`].
    pub config_hash: String,
    /// When the process started.
    pub started: String,
    /// When this state began; null in the last will, which the broker sends
    /// at a time the process cannot know.
    pub since: Option<String>,
}

impl StatusPayload {
    /// The payload for `state` now; `since` is null for the last will.
    pub fn new(station: &str, info: &StatusInfo, state: StatusState) -> Self {
        StatusPayload {
            schema: STATUS_SCHEMA.to_owned(),
            state,
            station: station.to_owned(),
            version: info.version.clone(),
            model: info.model.clone(),
            config_hash: info.config_hash.clone(),
            started: info.started.clone(),
            since: (state != StatusState::Offline).then(now_rfc3339),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        // Plain strings and an enum: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The publisher's health, for the `<prefix>/stats` payload and logs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MqttStats {
    /// Connected to the broker now.
    pub connected: bool,
    /// Records in this process's spool queue, not yet acknowledged.
    pub spool_depth: u64,
    /// Their payload bytes.
    pub spool_bytes: u64,
    /// Records shed because a spool bound was reached (never silently: each
    /// shedding is also logged).
    pub shed: u64,
    /// Records made durable by the sink since start.
    pub spooled: u64,
    /// Event publishes sent (re-sends included).
    pub published: u64,
    /// Events acknowledged by the broker and removed from the spool.
    pub acked: u64,
    /// Successful connections since start.
    pub connections: u64,
    /// Records the spool could not take, held in memory until acknowledged.
    pub held: u64,
    /// Held records dropped because [`MAX_HELD`] were already held.
    pub held_shed: u64,
}

/// Most records held in memory while the spool cannot take them: days of a
/// station's calls, about 15 MB at most.
pub const MAX_HELD: usize = 10_000;

/// Records the spool could not take, oldest first, each under a key that
/// only grows.
#[derive(Debug, Default)]
struct Held {
    /// Key of the last record held.
    last: u64,
    records: VecDeque<(u64, Vec<u8>)>,
    shed: u64,
}

/// Counters shared between the sink, the handle and the publisher thread.
#[derive(Debug, Default)]
struct Shared {
    held: Mutex<Held>,
    connected: AtomicBool,
    spooled: AtomicU64,
    published: AtomicU64,
    acked: AtomicU64,
    connections: AtomicU64,
}

impl Shared {
    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        // Plain data: a holder that panicked left it consistent enough.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `payload` (of call `id`); returns how many are held now.
    fn hold(&self, id: &str, payload: Vec<u8>) -> usize {
        let mut held = self.held();
        if held.records.len() >= MAX_HELD {
            held.records.pop_front();
            held.shed += 1;
            tracing::error!(
                "MQTT: {MAX_HELD} calls already held in memory; the oldest is dropped for call {id} \
                 (it is in the log and the events file)"
            );
        }
        held.last += 1;
        let key = held.last;
        held.records.push_back((key, payload));
        held.records.len()
    }

    /// Up to `limit` held records after key `after`.
    fn held_after(&self, after: u64, limit: usize) -> Vec<(u64, Vec<u8>)> {
        let held = self.held();
        held.records
            .iter()
            .filter(|(key, _)| *key > after)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The broker acknowledged held record `key`.
    fn release(&self, key: u64) {
        self.held().records.retain(|(k, _)| *k != key);
    }
}

/// Starts MQTT publishing; see the module docs.
pub struct MqttPublisher;

impl MqttPublisher {
    /// Opens the spool in `state_dir`, starts the publisher thread and
    /// returns the sink the pipeline emits into and the handle the daemon
    /// keeps. Fails only on local problems (spool, password or certificate
    /// files); an unreachable broker is retried for ever, with backoff.
    pub fn start(
        config: &MqttConfig,
        station: &str,
        role: Role,
        state_dir: &Path,
    ) -> Result<(MqttSink, MqttHandle), MqttError> {
        let limits = SpoolLimits {
            max_events: config.spool_max_events,
            max_bytes: config.spool_max_mb.saturating_mul(1 << 20),
            max_age: Duration::from_secs(config.spool_max_age_days.saturating_mul(86_400)),
        };
        let queue = match role {
            Role::Daemon(_) => "daemon",
            Role::Replay => "replay",
        };
        let sink_spool = Spool::open(state_dir, queue, limits, true)?;
        let reader = sink_spool.reader()?;
        let keeper = sink_spool.writer()?;
        // What is in the spool now was spooled by an earlier run.
        let late_until = reader.watermark()?;
        let counters = sink_spool.counters();
        let prefix = config.topic_prefix(station);
        let options = mqtt_options(config, station, &role, &prefix)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(MqttError::Start)?;
        let shared = Arc::new(Shared::default());
        let wake = Arc::new(Notify::new());
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let publisher = Publisher {
            options,
            broker: format!("{}:{}", config.host, config.port),
            topics: Topics::new(&prefix),
            station: station.to_owned(),
            role,
            discovery_prefix: config
                .home_assistant
                .then(|| config.discovery_prefix.clone()),
            spool: reader,
            shared: Arc::clone(&shared),
            wake: Arc::clone(&wake),
            cmds: cmd_rx,
            backoff: Backoff::new(
                Duration::from_secs_f64(config.backoff_min_s),
                Duration::from_secs_f64(config.backoff_max_s),
            ),
            link: LinkState::Starting,
            late_until,
            late_held_until: 0,
        };
        let thread = std::thread::Builder::new()
            .name("rumbled-mqtt".into())
            .spawn(move || runtime.block_on(publisher.run()))
            .map_err(MqttError::Start)?;
        let sink = MqttSink {
            spool: sink_spool,
            wake,
            shared: Arc::clone(&shared),
            holding: false,
        };
        let handle = MqttHandle {
            cmds: cmd_tx,
            shared,
            counters,
            keeper,
            thread: Some(thread),
        };
        Ok((sink, handle))
    }
}

/// Client options for `role`: identity, session, will, credentials, TLS.
fn mqtt_options(
    config: &MqttConfig,
    station: &str,
    role: &Role,
    prefix: &str,
) -> Result<MqttOptions, MqttError> {
    let client_id = config.client_id(station);
    let mut options = match role {
        Role::Daemon(info) => {
            let mut o = MqttOptions::new(client_id, &config.host, config.port);
            // A persistent session keeps the broker's state for this station
            // across reconnects; the spool, not the session, guarantees
            // delivery.
            o.set_clean_session(false);
            let will = StatusPayload::new(station, info, StatusState::Offline);
            o.set_last_will(LastWill::new(
                format!("{prefix}/status"),
                will.to_bytes(),
                QoS::AtLeastOnce,
                true,
            ));
            o
        }
        Role::Replay => {
            let id = format!("{client_id}-replay-{}", std::process::id());
            let mut o = MqttOptions::new(id, &config.host, config.port);
            o.set_clean_session(true);
            o
        }
    };
    options.set_keep_alive(Duration::from_secs(config.keep_alive_s));
    options.set_inflight(PKID_SPACE);
    if let Some(user) = &config.username {
        let password = match &config.password_file {
            Some(path) => read_password(path)?,
            None => String::new(),
        };
        options.set_credentials(user, password);
    }
    if config.tls {
        options.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls_config(
            config,
        )?)));
    }
    Ok(options)
}

/// The password is the file's first line; its content never appears in an
/// error or log.
fn read_password(path: &Path) -> Result<String, MqttError> {
    let text = std::fs::read_to_string(path).map_err(|e| MqttError::File {
        key: "password_file",
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// rustls client settings: the configured CA only (not the system roots,
/// so a station trusts exactly its broker's CA), an optional client
/// certificate (mTLS) and an optional expected server name.
fn tls_config(config: &MqttConfig) -> Result<Arc<rustls::ClientConfig>, MqttError> {
    let file_err = |key: &'static str, path: &Path, message: String| MqttError::File {
        key,
        path: path.to_path_buf(),
        message,
    };
    let ca = config
        .ca_file
        .as_deref()
        .ok_or_else(|| MqttError::Tls("`mqtt.ca_file` must be set when `mqtt.tls` is on".into()))?;
    let mut roots = RootCertStore::empty();
    for cert in read_certs("ca_file", ca)? {
        roots
            .add(cert)
            .map_err(|e| file_err("ca_file", ca, e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| MqttError::Tls(e.to_string()))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MqttError::Tls(e.to_string()))?;
    let builder = match &config.server_name {
        Some(name) => {
            let name = ServerName::try_from(name.clone())
                .map_err(|e| MqttError::Tls(format!("`mqtt.server_name` {name:?}: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ExpectedName {
                    inner: verifier,
                    name,
                }))
        }
        None => builder.with_webpki_verifier(verifier),
    };
    let tls = match (&config.client_cert, &config.client_key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs("client_cert", cert)?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| file_err("client_key", key, format!("no usable private key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| file_err("client_key", key, e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(tls))
}

fn read_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, MqttError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| MqttError::File {
            key,
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(MqttError::File {
            key,
            path: path.to_path_buf(),
            message: "no PEM certificate in the file".into(),
        });
    }
    Ok(certs)
}

/// Full WebPKI verification against a fixed name (`mqtt.server_name`)
/// instead of the host dialled: for brokers reached by IP address or
/// through a tunnel whose certificate names their real host.
#[derive(Debug)]
struct ExpectedName {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for ExpectedName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _dialled: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The pipeline's end of MQTT publishing: [`EventSink::emit`] returns once
/// the record is durable in the spool.
pub struct MqttSink {
    spool: Spool,
    wake: Arc<Notify>,
    shared: Arc<Shared>,
    /// The spool failed and records are being held (logged once).
    holding: bool,
}

impl EventSink for MqttSink {
    fn emit(&mut self, rec: &CallRecord) -> anyhow::Result<()> {
        match self.spool.append(rec) {
            Ok(_) => {
                self.shared.spooled.fetch_add(1, Ordering::Relaxed);
                if self.holding {
                    self.holding = false;
                    tracing::info!("MQTT spool takes calls again");
                }
            }
            Err(e) => {
                let payload = serde_json::to_vec(rec)
                    .with_context(|| format!("encoding call {} for MQTT", rec.id))?;
                let held = self.shared.hold(&rec.id, payload);
                if self.holding {
                    tracing::debug!("MQTT spool still failing ({e}); {held} calls held");
                } else {
                    self.holding = true;
                    tracing::error!(
                        "MQTT spool cannot take call {}: {e}; it and later calls are held in \
                         memory until the broker takes them ({held} held; a stop tries the spool \
                         once more; they are in the log and the events file)",
                        rec.id
                    );
                }
            }
        }
        self.wake.notify_one();
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        // Every emit is already durable; the publisher carries on draining.
        Ok(())
    }
}

/// Requests from the handle to the publisher thread.
enum Command {
    /// Publish this payload on `<prefix>/stats`.
    Stats(Vec<u8>),
    /// Publish `stopped` (daemon), disconnect and end; the reply says
    /// whether the broker acknowledged everything that was in flight.
    Shutdown {
        deadline: Instant,
        done: std::sync::mpsc::Sender<bool>,
    },
}

/// The daemon's end of MQTT publishing: health, stats, shutdown.
pub struct MqttHandle {
    cmds: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    counters: Arc<SpoolCounters>,
    /// Spools what is still held at a stop.
    keeper: Spool,
    thread: Option<JoinHandle<()>>,
}

impl MqttHandle {
    /// The publisher's health now.
    pub fn stats(&self) -> MqttStats {
        let s = &self.shared;
        let held = s.held();
        MqttStats {
            connected: s.connected.load(Ordering::Relaxed),
            spool_depth: self.counters.depth(),
            spool_bytes: self.counters.bytes(),
            shed: self.counters.shed(),
            spooled: s.spooled.load(Ordering::Relaxed),
            published: s.published.load(Ordering::Relaxed),
            acked: s.acked.load(Ordering::Relaxed),
            connections: s.connections.load(Ordering::Relaxed),
            held: held.records.len() as u64,
            held_shed: held.shed,
        }
    }

    /// Publishes `payload` as JSON on `<prefix>/stats` (QoS 0, not retained).
    /// Stats are a snapshot: while the broker is away they are dropped, not
    /// spooled.
    pub fn publish_stats<T: Serialize>(&self, payload: &T) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(payload).context("encoding the stats payload")?;
        // A closed channel means the publisher has shut down: nothing to do.
        let _ = self.cmds.send(Command::Stats(bytes));
        Ok(())
    }

    /// Waits until every record spooled by this process's queue has been
    /// acknowledged by the broker, or `timeout` passes; true when drained.
    pub fn wait_drained(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.counters.depth() == 0 && self.shared.held().records.is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops publishing: within `timeout`, sends what is still spooled (a
    /// connected publisher), then publishes `stopped` (retained) and waits
    /// for the broker to acknowledge it and what was in flight, then
    /// disconnects cleanly so the broker does not send the `offline` will.
    /// Unacknowledged records stay in the spool for the next start. True
    /// when everything in flight was acknowledged.
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        self.stop(timeout)
    }

    fn stop(&mut self, timeout: Duration) -> bool {
        let Some(thread) = self.thread.take() else {
            return false;
        };
        let (done, reply) = std::sync::mpsc::channel();
        let deadline = Instant::now() + timeout;
        if self
            .cmds
            .send(Command::Shutdown { deadline, done })
            .is_err()
        {
            self.keep_held();
            return false;
        }
        // A little past the deadline for the disconnect itself.
        let clean = reply
            .recv_timeout(timeout + Duration::from_secs(1))
            .unwrap_or(false);
        if thread.is_finished() || clean {
            let _ = thread.join();
        }
        // Here rather than on the publisher thread, which may still be
        // stuck waiting for the very disk that made these calls held.
        self.keep_held() == 0 && clean
    }

    /// At a stop, one more try to spool what is still held in memory (the
    /// disk may have come back since), so the next start delivers it;
    /// returns how many calls are lost to MQTT after all.
    fn keep_held(&mut self) -> usize {
        let held: Vec<Vec<u8>> = std::mem::take(&mut self.shared.held().records)
            .into_iter()
            .map(|(_, payload)| payload)
            .collect();
        if held.is_empty() {
            return 0;
        }
        let mut kept = 0;
        for payload in &held {
            let spooled = serde_json::from_slice::<CallRecord>(payload)
                .map_err(|e| e.to_string())
                .and_then(|rec| self.keeper.append(&rec).map_err(|e| e.to_string()));
            if let Err(e) = spooled {
                // Each try may wait out the lock timeout: a disk that
                // fails one will fail the rest, and the stop must not hang.
                tracing::debug!("MQTT: held calls still cannot be spooled: {e}");
                break;
            }
            kept += 1;
        }
        if kept > 0 {
            tracing::info!(
                "MQTT: {kept} calls held in memory were spooled at stop; the next start sends them"
            );
        }
        let lost = held.len() - kept;
        if lost > 0 {
            tracing::error!(
                "MQTT: {lost} calls held in memory (the spool could not take them) were not \
                 delivered before stopping; they are in the log and the events file"
            );
        }
        lost
    }
}

impl Drop for MqttHandle {
    /// A handle dropped without [`MqttHandle::shutdown`] still disconnects
    /// cleanly, briefly.
    fn drop(&mut self) {
        self.stop(Duration::from_secs(1));
    }
}

/// Topic names under the prefix.
struct Topics {
    events: String,
    status: String,
    stats: String,
}

impl Topics {
    fn new(prefix: &str) -> Self {
        Topics {
            events: format!("{prefix}/events"),
            status: format!("{prefix}/status"),
            stats: format!("{prefix}/stats"),
        }
    }
}

/// Exponential backoff with "equal jitter": each wait is uniformly between
/// half and all of `min * 2^n` (capped at `max`), so stations that lost the
/// same broker do not all come back in the same second.
struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            failures: 0,
        }
    }

    fn next(&mut self) -> Duration {
        let ceiling = self
            .min
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        ceiling.mul_f64(0.5 + 0.5 * fastrand::f64())
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Connection state, for logging once per change rather than per retry.
#[derive(Clone, Debug, PartialEq)]
enum LinkState {
    Starting,
    Up,
    Down(String),
}

/// Where a published call record came from, so its PUBACK can release it.
#[derive(Clone, Copy, Debug)]
enum Delivery {
    /// Spool row.
    Spooled(i64),
    /// Key of a record held in memory.
    Held(u64),
}

/// What one published request was, matched to rumqttc's `Outgoing::Publish`
/// events, which come in request order.
enum Tag {
    /// A call record.
    Event(Delivery),
    /// The `stopped` status, whose PUBACK ends a shutdown.
    Stopped,
    /// Anything else (status, stats, discovery).
    Other,
}

/// State of one connection; dropped on disconnect, which is what makes
/// every unacknowledged record go out again on the next one.
struct Session {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Event, ConnectionError>>,
    driver: tokio::task::JoinHandle<()>,
    /// Requests sent to rumqttc whose `Outgoing::Publish` has not come yet.
    tags: VecDeque<Tag>,
    /// Each event publish awaiting its PUBACK, by packet id.
    by_pkid: HashMap<u16, Delivery>,
    /// Packet id of the `stopped` status, once sent.
    stopped_pkid: Option<u16>,
    stopped_acked: bool,
    /// Last spool row handed to rumqttc.
    cursor: i64,
    /// Key of the last held record handed to rumqttc.
    held_cursor: u64,
    /// Event publishes handed to rumqttc and not yet acknowledged.
    inflight: usize,
    /// Shutting down: no new records go out.
    closing: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Why a connection ended.
enum Ended {
    /// Lost or refused; the reason is the log line.
    Lost(String),
    /// Shut down on request.
    Shutdown,
}

/// The publisher thread's state.
struct Publisher {
    options: MqttOptions,
    broker: String,
    topics: Topics,
    station: String,
    role: Role,
    discovery_prefix: Option<String>,
    spool: Spool,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    cmds: mpsc::UnboundedReceiver<Command>,
    backoff: Backoff,
    link: LinkState,
    /// Spool rows up to this one are delivered as `historical`.
    late_until: i64,
    /// Held records up to this key are delivered as `historical`.
    late_held_until: u64,
}

impl Publisher {
    async fn run(mut self) {
        let mut maintenance = tokio::time::interval(MAINTENANCE);
        loop {
            let reason = match self.connect_and_publish(&mut maintenance).await {
                Ended::Shutdown => return,
                Ended::Lost(reason) => reason,
            };
            self.shared.connected.store(false, Ordering::Relaxed);
            let delay = self.backoff.next();
            self.link_down(reason, delay);
            let until = tokio::time::Instant::now() + delay;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    _ = maintenance.tick() => self.maintain(),
                    cmd = self.cmds.recv() => match cmd {
                        // Stats are a snapshot; with no broker they are dropped.
                        Some(Command::Stats(_)) => {}
                        Some(Command::Shutdown { done, .. }) => {
                            let _ = done.send(false);
                            return;
                        }
                        None => return,
                    },
                }
            }
        }
    }

    fn link_down(&mut self, reason: String, retry_in: Duration) {
        let depth = self.spool.counters().depth();
        let state = LinkState::Down(reason.clone());
        if self.link == state {
            tracing::debug!(broker = %self.broker, "MQTT: {reason}; retrying in {retry_in:.1?}");
            return;
        }
        if self.link == LinkState::Up {
            tracing::warn!(
                broker = %self.broker, spooled = depth,
                "MQTT connection to {} lost: {reason}; reconnecting with backoff, events are kept in the spool",
                self.broker
            );
        } else {
            tracing::warn!(
                broker = %self.broker, spooled = depth,
                "MQTT cannot connect to {}: {reason}; retrying with backoff (next in {retry_in:.1?}), events are kept in the spool",
                self.broker
            );
        }
        self.link = state;
    }

    /// Re-counts the spool, sheds expired records and checkpoints the log;
    /// failures are logged and retried at the next tick.
    fn maintain(&mut self) {
        let result = self
            .spool
            .shed_expired()
            .and_then(|_| self.spool.refresh_counters())
            .and_then(|()| self.spool.checkpoint());
        if let Err(e) = result {
            tracing::error!("MQTT spool maintenance: {e}");
        }
    }

    /// One connection: connect, then publish until it is lost or a
    /// shutdown is requested.
    async fn connect_and_publish(&mut self, maintenance: &mut tokio::time::Interval) -> Ended {
        let (client, mut eventloop) = AsyncClient::new(self.options.clone(), REQUEST_CAP);
        let (tx, events) = mpsc::unbounded_channel();
        // rumqttc's poll is not cancel-safe mid-write, so it gets a task of
        // its own rather than a branch in the select below.
        let driver = tokio::spawn(async move {
            loop {
                let event = eventloop.poll().await;
                let failed = event.is_err();
                if tx.send(event).is_err() || failed {
                    return;
                }
            }
        });
        let mut s = Session {
            client,
            events,
            driver,
            tags: VecDeque::new(),
            by_pkid: HashMap::new(),
            stopped_pkid: None,
            stopped_acked: false,
            cursor: 0,
            held_cursor: 0,
            inflight: 0,
            closing: false,
        };
        loop {
            tokio::select! {
                event = s.events.recv() => match event {
                    Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Ended::Lost(describe(&e)),
                    None => return Ended::Lost("the MQTT event loop ended".into()),
                },
                _ = maintenance.tick() => self.maintain(),
                cmd = self.cmds.recv() => match cmd {
                    Some(Command::Stats(_)) => {}
                    Some(Command::Shutdown { done, .. }) => {
                        let _ = done.send(false);
                        return Ended::Shutdown;
                    }
                    None => return Ended::Shutdown,
                },
            }
        }
        if let Err(e) = self.on_connected(&mut s) {
            return Ended::Lost(e);
        }
        loop {
            tokio::select! {
                event = s.events.recv() => match event {
                    Some(Ok(event)) => {
                        if let Err(e) = self.on_event(&mut s, event) {
                            return Ended::Lost(e);
                        }
                    }
                    Some(Err(e)) => return Ended::Lost(describe(&e)),
                    None => return Ended::Lost("the MQTT event loop ended".into()),
                },
                _ = self.wake.notified() => {
                    if let Err(e) = self.fill(&mut s) {
                        return Ended::Lost(e);
                    }
                }
                _ = maintenance.tick() => {
                    self.maintain();
                    // Also retries records rumqttc's full queue turned away while
                    // nothing was in flight to trigger a refill.
                    if let Err(e) = self.fill(&mut s) {
                        return Ended::Lost(e);
                    }
                }
                cmd = self.cmds.recv() => match cmd {
                    Some(Command::Stats(payload)) => {
                        if s.client.try_publish(&self.topics.stats, QoS::AtMostOnce, false, payload).is_ok() {
                            s.tags.push_back(Tag::Other);
                        }
                    }
                    Some(Command::Shutdown { deadline, done }) => {
                        let clean = self.stop(&mut s, deadline).await;
                        let _ = done.send(clean);
                        return Ended::Shutdown;
                    }
                    None => {
                        self.stop(&mut s, Instant::now() + Duration::from_secs(1)).await;
                        return Ended::Shutdown;
                    }
                },
            }
        }
    }

    fn on_connected(&mut self, s: &mut Session) -> Result<(), String> {
        self.backoff.reset();
        self.shared.connected.store(true, Ordering::Relaxed);
        self.shared.connections.fetch_add(1, Ordering::Relaxed);
        if self.link != LinkState::Starting {
            // Back after a failure: everything spooled until now is late.
            self.late_until = self.spool.watermark().map_err(|e| e.to_string())?;
            self.late_held_until = self.shared.held().last;
        }
        let depth = self.spool.counters().depth();
        tracing::info!(
            broker = %self.broker, spooled = depth,
            "MQTT connected to {}{}",
            self.broker,
            if depth > 0 { format!("; delivering {depth} spooled event(s)") } else { String::new() }
        );
        self.link = LinkState::Up;
        if let Role::Daemon(info) = &self.role {
            let online = StatusPayload::new(&self.station, info, StatusState::Online);
            let mut retained = vec![(self.topics.status.clone(), online.to_bytes())];
            if let Some(prefix) = &self.discovery_prefix {
                retained.extend(discovery_configs(prefix, &self.station, &self.topics, info));
            }
            for (topic, payload) in retained {
                s.client
                    .try_publish(topic, QoS::AtLeastOnce, true, payload)
                    .map_err(|e| e.to_string())?;
                s.tags.push_back(Tag::Other);
            }
        }
        self.fill(s)
    }

    fn on_event(&mut self, s: &mut Session, event: Event) -> Result<(), String> {
        match event {
            Event::Outgoing(Outgoing::Publish(pkid)) => match s.tags.pop_front() {
                Some(Tag::Event(delivery)) => {
                    s.by_pkid.insert(pkid, delivery);
                }
                Some(Tag::Stopped) => s.stopped_pkid = Some(pkid),
                Some(Tag::Other) | None => {}
            },
            Event::Incoming(Packet::PubAck(ack)) => {
                if s.stopped_pkid == Some(ack.pkid) {
                    s.stopped_acked = true;
                }
                if let Some(delivery) = s.by_pkid.remove(&ack.pkid) {
                    s.inflight = s.inflight.saturating_sub(1);
                    match delivery {
                        Delivery::Spooled(row) => {
                            self.spool.ack(row).map_err(|e| e.to_string())?;
                        }
                        Delivery::Held(key) => self.shared.release(key),
                    }
                    self.shared.acked.fetch_add(1, Ordering::Relaxed);
                    self.fill(s)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Hands spooled records after the cursor, then held ones, to rumqttc
    /// until the window is full or nothing is left.
    fn fill(&mut self, s: &mut Session) -> Result<(), String> {
        while !s.closing && s.inflight < WINDOW {
            let room = WINDOW - s.inflight;
            let spooled = self
                .spool
                .pending_after(s.cursor, room)
                .map_err(|e| e.to_string())?;
            let batch: Vec<(Delivery, Vec<u8>, bool)> = if spooled.is_empty() {
                self.shared
                    .held_after(s.held_cursor, room)
                    .into_iter()
                    .map(|(key, payload)| {
                        (Delivery::Held(key), payload, key <= self.late_held_until)
                    })
                    .collect()
            } else {
                spooled
                    .into_iter()
                    .map(|e| {
                        (
                            Delivery::Spooled(e.row),
                            e.payload,
                            e.row <= self.late_until,
                        )
                    })
                    .collect()
            };
            if batch.is_empty() {
                return Ok(());
            }
            for (delivery, payload, late) in batch {
                let payload = if late {
                    mark_historical(payload)
                } else {
                    payload
                };
                if s.client
                    .try_publish(&self.topics.events, QoS::AtLeastOnce, false, payload)
                    .is_err()
                {
                    // rumqttc's queue is full (a stalled link): the record
                    // stays after the cursor and goes at the next ack or wake.
                    return Ok(());
                }
                s.tags.push_back(Tag::Event(delivery));
                match delivery {
                    Delivery::Spooled(row) => s.cursor = row,
                    Delivery::Held(key) => s.held_cursor = key,
                }
                s.inflight += 1;
                self.shared.published.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Handles the connection's events until `done` holds, `deadline`
    /// passes or the link fails; returns whether `done` holds.
    async fn pump_until(
        &mut self,
        s: &mut Session,
        deadline: tokio::time::Instant,
        done: fn(&Session) -> bool,
    ) -> bool {
        while !done(s) {
            let event = tokio::select! {
                event = s.events.recv() => event,
                _ = tokio::time::sleep_until(deadline) => break,
            };
            let Some(Ok(event)) = event else { break };
            if self.on_event(s, event).is_err() {
                break;
            }
        }
        done(s)
    }

    /// Clean end of a connection: `stopped` (daemon), wait for the acks
    /// until `deadline`, DISCONNECT. True when nothing was left in flight.
    async fn stop(&mut self, s: &mut Session, deadline: Instant) -> bool {
        let deadline = tokio::time::Instant::from_std(deadline);
        // What the outputs handed over before the stop (the last calls'
        // ends) goes out before `stopped`, while there is time: a station
        // that stops for good would otherwise hold them until it starts
        // again. Each acknowledgement refills the window from the spool, so
        // nothing is left once nothing is in flight.
        if self.fill(s).is_ok() {
            self.pump_until(s, deadline, |s| s.inflight == 0).await;
        }
        // What is in flight may still be acknowledged; nothing new goes out.
        s.closing = true;
        if let Role::Daemon(info) = &self.role {
            let stopped = StatusPayload::new(&self.station, info, StatusState::Stopped);
            if s.client
                .try_publish(
                    &self.topics.status,
                    QoS::AtLeastOnce,
                    true,
                    stopped.to_bytes(),
                )
                .is_ok()
            {
                s.tags.push_back(Tag::Stopped);
            }
        } else {
            s.stopped_acked = true;
        }
        let clean = self
            .pump_until(s, deadline, |s| s.stopped_acked && s.inflight == 0)
            .await;
        if s.client.try_disconnect().is_ok() {
            // Wait for the DISCONNECT to be written, so the broker knows the
            // goodbye was deliberate and keeps the will to itself.
            let written = async {
                while let Some(Ok(event)) = s.events.recv().await {
                    if event == Event::Outgoing(Outgoing::Disconnect) {
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout_at(deadline + Duration::from_millis(500), written).await;
        }
        self.shared.connected.store(false, Ordering::Relaxed);
        tracing::info!(broker = %self.broker, spooled = self.spool.counters().depth(), "MQTT disconnected");
        clean
    }
}

/// The log line for a failed connection, in the operator's terms.
fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => match code {
            ConnectReturnCode::BadUserNamePassword => {
                "the broker refused the user name or password".into()
            }
            ConnectReturnCode::NotAuthorized => "the broker refused: not authorised".into(),
            ConnectReturnCode::BadClientId => "the broker refused the client id".into(),
            ConnectReturnCode::ServiceUnavailable => "the broker is unavailable".into(),
            other => format!("the broker refused the connection ({other:?})"),
        },
        other => other.to_string(),
    }
}

/// A spooled record's JSON with `historical` set; a record this version
/// cannot read (written by another) goes out as it was.
fn mark_historical(payload: Vec<u8>) -> Vec<u8> {
    match serde_json::from_slice::<CallRecord>(&payload) {
        Ok(mut rec) => {
            rec.historical = true;
            serde_json::to_vec(&rec).unwrap_or(payload)
        }
        Err(_) => payload,
    }
}

/// Home Assistant MQTT discovery: an "elephant call active" binary sensor
/// (on from a call's start to its end) and an event entity firing on every
/// call record, both unavailable unless the station is online.
fn discovery_configs(
    prefix: &str,
    station: &str,
    topics: &Topics,
    info: &StatusInfo,
) -> Vec<(String, Vec<u8>)> {
    let object = format!("rumbled_{station}");
    let device = serde_json::json!({
        "identifiers": [object],
        "name": format!("rumbled {station}"),
        "manufacturer": "rumbled",
        "model": info.model.name,
        "sw_version": info.version,
    });
    let availability = "{{ 'online' if value_json.state == 'online' else 'offline' }}";
    let sensor = serde_json::json!({
        "name": "Elephant call active",
        "unique_id": format!("{object}_call_active"),
        "device_class": "sound",
        "state_topic": topics.events,
        "value_template": "{{ 'OFF' if value_json.type == 'end' else 'ON' }}",
        "json_attributes_topic": topics.events,
        "availability_topic": topics.status,
        "availability_template": availability,
        "device": device,
    });
    let event = serde_json::json!({
        "name": "Elephant call",
        "unique_id": format!("{object}_call"),
        "state_topic": topics.events,
        "event_types": ["start", "update", "end"],
        "value_template": "{{ {'event_type': value_json.type, 'label': value_json.label, \
                           'confidence': value_json.confidence, 'id': value_json.id, \
                           'historical': value_json.historical} | to_json }}",
        "availability_topic": topics.status,
        "availability_template": availability,
        "device": device,
    });
    vec![
        (
            format!("{prefix}/binary_sensor/{object}/call_active/config"),
            sensor.to_string().into_bytes(),
        ),
        (
            format!("{prefix}/event/{object}/call/config"),
            event.to_string().into_bytes(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let waits: Vec<Duration> = (0..10).map(|_| b.next()).collect();
        for (n, w) in waits.iter().enumerate() {
            let ceiling = Duration::from_secs((1u64 << n).min(30));
            assert!(*w >= ceiling / 2 && *w <= ceiling, "{n}: {w:?}");
        }
        b.reset();
        assert!(b.next() <= Duration::from_secs(1));
    }

    #[test]
    fn historical_marking_keeps_field_order_and_passes_unknown_payloads() {
        let rec: CallRecord = serde_json::from_str(concat!(
            r#"{"schema":"rumbled.call/1","type":"start","id":"st-1","seq":1,"station":"st","#,
            r#""label":"rumble","confidence":0.9,"scores":{"rumble":0.9},"start":null,"#,
            r#""end":null,"duration_s":null,"offset_s":1.0,"source":{"kind":"file","name":"a"},"#,
            r#""model":{"name":"m","version":"1"},"historical":false,"end_reason":null,"truncated":false}"#
        ))
        .expect("record");
        let marked = mark_historical(serde_json::to_vec(&rec).expect("json"));
        let text = String::from_utf8(marked).expect("utf-8");
        assert!(text.contains(r#""historical":true,"end_reason""#), "{text}");
        assert_eq!(mark_historical(b"not json".to_vec()), b"not json");
    }

    #[test]
    fn refusals_are_described_in_plain_words() {
        let e = ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword);
        assert!(describe(&e).contains("user name or password"));
    }

    #[test]
    fn discovery_topics_follow_home_assistant_conventions() {
        let info = StatusInfo {
            version: "0.1.0".into(),
            model: ModelInfo {
                name: "m".into(),
                version: "1".into(),
            },
            config_hash: "00".into(),
            started: now_rfc3339(),
        };
        let configs =
            discovery_configs("homeassistant", "st03", &Topics::new("rumbled/st03"), &info);
        assert_eq!(
            configs[0].0,
            "homeassistant/binary_sensor/rumbled_st03/call_active/config"
        );
        assert_eq!(configs[1].0, "homeassistant/event/rumbled_st03/call/config");
        let sensor: serde_json::Value = serde_json::from_slice(&configs[0].1).expect("json");
        assert_eq!(sensor["state_topic"], "rumbled/st03/events");
        assert_eq!(sensor["availability_topic"], "rumbled/st03/status");
    }
}
