//! Shared by the MQTT tests: private mosquitto brokers on free loopback
//! ports, test certificates, a recording subscriber, synthetic call records.
//! Each test binary uses a different part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumbled::config::MqttConfig;
use rumbled::detect::{CallEvent, CallPhase, CallRecord, EndReason, StreamContext};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use tempfile::TempDir;

/// How a test broker is set up.
#[derive(Clone, Default)]
pub struct BrokerOptions {
    /// Keep sessions and queued messages across restarts.
    pub persistence: bool,
    /// Require this user name and password.
    pub password: Option<(String, String)>,
    /// Listen with TLS using these files.
    pub tls: Option<TlsFiles>,
    /// Demand a client certificate signed by the CA.
    pub require_client_cert: bool,
}

/// A private mosquitto on a free loopback port; killed and reaped on drop.
pub struct Broker {
    child: Option<Child>,
    /// The port clients under test use (TLS when the broker has TLS).
    pub port: u16,
    /// A plain listener for test subscribers (the same as `port` without TLS).
    pub plain_port: u16,
    dir: TempDir,
    conf: PathBuf,
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

impl Broker {
    /// Starts a broker and waits until it accepts connections.
    pub fn start(options: &BrokerOptions) -> Broker {
        Self::start_on(free_port(), options)
    }

    /// Starts a broker on `port` (for a test that first ran without one).
    pub fn start_on(port: u16, options: &BrokerOptions) -> Broker {
        let dir = tempfile::tempdir().expect("broker dir");
        let mut conf = format!(
            "listener {port} 127.0.0.1\n\
             max_queued_messages 0\n\
             max_inflight_messages 0\n\
             user root\n"
        );
        if options.persistence {
            conf += &format!(
                "persistence true\npersistence_location {}/\n\
                 autosave_interval 1\nautosave_on_changes true\n",
                dir.path().display()
            );
        } else {
            conf += "persistence false\n";
        }
        match &options.password {
            Some((user, pass)) => {
                let file = dir.path().join("passwd");
                let status = Command::new("mosquitto_passwd")
                    .args(["-c", "-b"])
                    .arg(&file)
                    .args([user, pass])
                    .stdout(Stdio::null())
                    .status()
                    .expect("run mosquitto_passwd");
                assert!(status.success(), "mosquitto_passwd failed");
                conf += &format!("allow_anonymous false\npassword_file {}\n", file.display());
            }
            None => conf += "allow_anonymous true\n",
        }
        let mut plain_port = port;
        if let Some(tls) = &options.tls {
            // TLS settings belong to the listener above them; the second,
            // plain listener is for the test's own subscriber.
            plain_port = free_port();
            conf += &format!(
                "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {}\n\
                 listener {plain_port} 127.0.0.1\n",
                tls.ca.display(),
                tls.server_cert.display(),
                tls.server_key.display(),
                options.require_client_cert
            );
        }
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).expect("write broker config");
        let mut broker = Broker {
            child: None,
            port,
            plain_port,
            dir,
            conf: conf_path,
        };
        broker.restart();
        broker
    }

    /// Kills the broker with SIGKILL (no goodbye to anyone) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the broker. A frozen broker
    /// acknowledges nothing more, while the kernel still delivers what it
    /// had already written to its clients' sockets.
    pub fn freeze(&self, frozen: bool) {
        if let Some(child) = &self.child {
            let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
            // SAFETY: kill(2) on our own child's pid has no memory effects.
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        }
    }

    /// Stops the broker with SIGTERM: it saves its sessions and queued
    /// messages first (with persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid has no memory effects.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
        }
    }

    /// Starts the broker again with the same port and config (and, with
    /// persistence, the same saved state).
    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::File::create(self.dir.path().join("mosquitto.log")).expect("log");
        // Debian puts it in /usr/sbin, which a non-root PATH may lack.
        let program = ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("mosquitto");
        let child = Command::new(program)
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mosquitto (deploy/dev.sh setup installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.plain_port)).is_err()
            || TcpStream::connect(("127.0.0.1", self.port)).is_err()
        {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Certificates made with the openssl CLI at test time.
#[derive(Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed nothing here ("wrong CA").
    pub other_ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1, localhost and broker.test, a
/// client certificate, and an unrelated CA, in `dir`.
pub fn make_certs(dir: &Path) -> TlsFiles {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (name, cn) in [("ca", "rumbled test CA"), ("other-ca", "someone else's CA")] {
        let mut args = vec!["req", "-x509", "-days", "2", "-subj"];
        let subj = format!("/CN={cn}");
        args.push(&subj);
        args.extend(ec);
        let key = format!("{name}.key");
        let pem = format!("{name}.pem");
        args.extend(["-keyout", &key, "-out", &pem]);
        openssl(dir, &args);
    }
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:broker.test\n",
    )
    .expect("ext file");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext file");
    for (name, cn) in [("server", "broker.test"), ("client", "st01")] {
        let subj = format!("/CN={cn}");
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let pem = format!("{name}.pem");
        let ext = format!("{name}.ext");
        let mut args = vec!["req", "-new", "-subj", &subj];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &csr]);
        openssl(dir, &args);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ],
        );
    }
    TlsFiles {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
        other_ca: dir.join("other-ca.pem"),
    }
}

/// One message as a subscriber got it.
#[derive(Clone, Debug)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).expect("payload is JSON")
    }
}

/// A subscriber with a persistent session that re-subscribes whenever the
/// broker has forgotten it, recording everything it receives.
pub struct Subscriber {
    pub received: Arc<Mutex<Vec<Received>>>,
    subscribed: Arc<Mutex<u32>>,
    client: Client,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    /// Subscribes to `filter` (QoS 1) on the broker at `port` and waits
    /// for the first SUBACK.
    pub fn start(port: u16, filter: &str, id: &str) -> Subscriber {
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_clean_session(false);
        options.set_keep_alive(Duration::from_secs(5));
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut connection) = Client::new(options, 1000);
        let received = Arc::new(Mutex::new(Vec::new()));
        let subscribed = Arc::new(Mutex::new(0));
        let (rec, sub, cl, filter) = (
            Arc::clone(&received),
            Arc::clone(&subscribed),
            client.clone(),
            filter.to_owned(),
        );
        let thread = std::thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) if !ack.session_present => {
                        let _ = cl.try_subscribe(&filter, QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        *sub.lock().expect("lock") += 1;
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        rec.lock().expect("lock").push(Received {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        });
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
                    Ok(_) => {}
                    // Reconnect quickly: the station backs off for at least
                    // half a second, so the subscription is back first.
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        let s = Subscriber {
            received,
            subscribed,
            client,
            thread: Some(thread),
        };
        s.wait_resubscribed(0);
        s
    }

    /// How many SUBACKs so far: one per (re-)subscription.
    pub fn subscriptions(&self) -> u32 {
        *self.subscribed.lock().expect("lock")
    }

    /// Waits until the subscription is back after a broker that forgot it
    /// (restarted without persistence): `before` is [`Self::subscriptions`]
    /// from before the restart. Without this, a publisher that reconnects
    /// first sends into a topic nobody listens to yet.
    pub fn wait_resubscribed(&self, before: u32) {
        self.wait_for("the re-subscription", Duration::from_secs(15), |_| {
            self.subscriptions() > before
        });
    }

    /// Waits until `done` holds for what was received, or panics naming
    /// `what`.
    pub fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&[Received]) -> bool) {
        assert!(
            self.wait_until(timeout, done),
            "timed out waiting for {what}"
        );
    }

    /// Waits until `done` holds of everything received, or `timeout`
    /// passes; whether it held.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&[Received]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.received.lock().expect("lock")) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything received on `topic`.
    pub fn on(&self, topic: &str) -> Vec<Received> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.topic == topic)
            .cloned()
            .collect()
    }

    /// Call records received on `topic`, in arrival order.
    pub fn records(&self, topic: &str) -> Vec<CallRecord> {
        self.on(topic)
            .iter()
            .map(|r| serde_json::from_slice(&r.payload).expect("a rumbled.call/1 record"))
            .collect()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.client.try_disconnect();
        if let Some(t) = self.thread.take() {
            // The thread ends on the DISCONNECT, or soon after a dead broker.
            let deadline = Instant::now() + Duration::from_secs(2);
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// `[mqtt]` settings for a plain broker on `port`, with quick backoff.
pub fn mqtt_config(port: u16) -> MqttConfig {
    MqttConfig {
        enabled: true,
        host: "127.0.0.1".into(),
        port,
        keep_alive_s: 5,
        backoff_min_s: 1.0,
        backoff_max_s: 2.0,
        ..MqttConfig::default()
    }
}

/// The `n`-th synthetic call of station `st01`: its start (odd seq) and end.
pub fn call(n: u64) -> [CallRecord; 2] {
    let ctx = StreamContext {
        station: "st01".into(),
        source_kind: "device".into(),
        source_name: "synthetic".into(),
        model_name: "rumbled-edge-ev5".into(),
        model_version: "0.1.0".into(),
        labels: ["not-call", "rumble", "roar", "cry", "trumpet"]
            .map(String::from)
            .to_vec(),
        background: Some(0),
        frame_s: 0.16,
        anchor: None,
        offset_base_s: 0.0,
    };
    let start = CallEvent {
        phase: CallPhase::Start,
        call: n,
        track: None,
        label: 1 + (n as usize % 4),
        confidence: 0.9,
        scores: vec![0.1, 0.6, 0.1, 0.1, 0.1],
        start_frame: n * 100,
        end_frame: None,
        end_reason: None,
    };
    let end = CallEvent {
        phase: CallPhase::End,
        end_frame: Some(n * 100 + 20),
        end_reason: Some(EndReason::Quiet),
        ..start.clone()
    };
    [
        CallRecord::from_event(&start, &ctx, 2 * n + 1),
        CallRecord::from_event(&end, &ctx, 2 * n + 2),
    ]
}

/// Waits until the subscriber has every synthetic call of `calls` on
/// `topic` (start and end), then checks them with [`check_calls`]; returns
/// the records and the number of duplicates.
pub fn wait_calls(
    sub: &Subscriber,
    topic: &str,
    calls: std::ops::Range<u64>,
    timeout: Duration,
) -> (Vec<CallRecord>, usize) {
    let wanted: std::collections::HashSet<(String, bool)> = calls
        .clone()
        .flat_map(call)
        .map(|r| (r.id, r.phase == CallPhase::End))
        .collect();
    let deadline = Instant::now() + timeout;
    loop {
        let records = sub.records(topic);
        let got = records
            .iter()
            .filter(|r| wanted.contains(&(r.id.clone(), r.phase == CallPhase::End)))
            .map(|r| (r.id.clone(), r.phase == CallPhase::End))
            .collect::<std::collections::HashSet<_>>()
            .len();
        if got == wanted.len() || Instant::now() > deadline {
            // Past the deadline this names the first call missing.
            let duplicates = check_calls(&records, calls);
            return (records, duplicates);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks a subscriber's view of the synthetic calls `calls`: every id's
/// start and end arrived, the first start before the first end. Returns the
/// number of duplicate deliveries.
pub fn check_calls(records: &[CallRecord], calls: std::ops::Range<u64>) -> usize {
    // Keyed by (id, is end): one entry per record kind of each call.
    let mut first: HashMap<(String, bool), usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        first
            .entry((r.id.clone(), r.phase == CallPhase::End))
            .or_insert(i);
    }
    for n in calls {
        let [start, end] = call(n);
        let s = first.get(&(start.id.clone(), false));
        let e = first.get(&(end.id.clone(), true));
        match (s, e) {
            (Some(s), Some(e)) => assert!(s < e, "call {n}: end arrived before start"),
            _ => panic!("call {n} ({}) lost: start {s:?}, end {e:?}", start.id),
        }
    }
    records.len() - first.len()
}
