//! The write-ahead spool: call records on disk until the broker has them,
//! and the station's persisted sequence numbers.
//!
//! Both live in one SQLite database, `<state dir>/state.sqlite`, because
//! SQLite's write-ahead log is crash-safe against `kill -9` and power loss
//! (a hand-rolled file format would have to prove that), several processes
//! may share it safely (the daemon and a `replay --mqtt` on the same
//! station), and a technician can inspect it with the `sqlite3` shell.
//!
//! * [`Spool::append`] commits a record with `synchronous = FULL` (an fsync
//!   of the log): when it returns, the record survives a crash or a power cut.
//! * The publisher reads records in order ([`Spool::pending_after`]) and
//!   deletes each when its PUBACK arrives ([`Spool::ack`]). Deletes need no
//!   fsync: a delete lost to a power cut only means the record is sent again,
//!   and subscribers de-duplicate by `id`.
//! * The spool is bounded by count, bytes and age ([`SpoolLimits`]); past a
//!   bound it sheds the oldest records, counts them and logs a warning.
//! * Each process drains only its own *queue* (`daemon`, `replay`), so a test
//!   replay on a station does not steal or wait for the daemon's backlog.
//!
//! # Sequence numbers
//!
//! `seq` in [`CallRecord`] increases per station across restarts. Number
//! records with a [`SeqSource`] opened on the same state directory, once per
//! record, before handing it to any sink:
//!
//! ```no_run
//! # fn demo(ev: &rumbled::detect::CallEvent, ctx: &rumbled::detect::StreamContext)
//! #     -> anyhow::Result<()> {
//! use rumbled::publish::SeqSource;
//! let mut seq = SeqSource::open(std::path::Path::new("/var/lib/rumbled"), "st03")?;
//! let record = rumbled::detect::CallRecord::from_event(ev, ctx, seq.next_seq()?);
//! # let _ = record; Ok(()) }
//! ```
//!
//! A number is committed before it is returned (no fsync: it survives a
//! process crash, and the fsync of the record's spool append that follows
//! also makes the number durable against power loss), so a number is never
//! handed out twice, whichever processes share the station.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use crate::detect::CallRecord;

/// File name of the state database inside the state directory.
pub const STATE_DB: &str = "state.sqlite";

/// Layout version of the database, in SQLite's `user_version`.
const SCHEMA_VERSION: i64 = 1;

/// SQLite's `auto_vacuum` value for incremental mode.
const AUTO_VACUUM_INCREMENTAL: i64 = 2;

/// Free pages one maintenance pass returns to the file system at most
/// (16 MiB at 4 KiB pages): bounds how long it holds the write lock that
/// the detector's appends wait for.
const RECLAIM_PAGES: i64 = 4096;

/// 2024-01-01 in Unix milliseconds: a record stamped earlier was stamped by
/// an unset clock (a Raspberry Pi without a real-time clock boots in 1970
/// until NTP answers), so its age is unknown and it is never shed for age.
const PLAUSIBLE_MS: i64 = 1_704_067_200_000;

/// How long a statement waits for another connection's write lock before
/// failing; writes are short, so this is only reached when something hangs.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The same for the statements the detector waits on (appends, `seq`
/// numbers): past this an append fails and the MQTT sink holds the record
/// in memory instead (see `publish::mqtt`), and a number comes from memory.
const DETECTOR_BUSY_TIMEOUT: Duration = Duration::from_secs(1);

/// A spool or sequence-store failure.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The state directory could not be created.
    #[error("cannot create state directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be opened or set up.
    #[error("cannot open spool database {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The database was written by a newer rumbled.
    #[error(
        "spool database {} has layout version {found}, this rumbled knows {SCHEMA_VERSION}: \
         use a newer rumbled or move the file away",
        path.display()
    )]
    Version {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
    },
    /// A damaged database could not be moved out of the way.
    #[error("spool database {} is damaged and cannot be moved aside: {source}", path.display())]
    MoveAside {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A read or write failed (disk full, I/O error, corruption).
    #[error("spool database {}: {source}", path.display())]
    Db {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// A record could not be encoded.
    #[error("cannot encode call {id}: {source}")]
    Encode {
        /// The record's id.
        id: String,
        /// Why.
        source: serde_json::Error,
    },
}

/// Bounds of the spool; past any of them the oldest records are shed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpoolLimits {
    /// Most records kept.
    pub max_events: u64,
    /// Most payload bytes kept.
    pub max_bytes: u64,
    /// Oldest record kept.
    pub max_age: Duration,
}

/// Counters shared by the connections of one process to one queue, so the
/// handle can report them without touching the database.
#[derive(Debug, Default)]
pub struct SpoolCounters {
    depth: AtomicU64,
    bytes: AtomicU64,
    shed: AtomicU64,
    /// Held across each database change and its counter update (and across
    /// a re-count), so a re-count never lands between the two.
    sync: Mutex<()>,
}

impl SpoolCounters {
    fn lock(&self) -> MutexGuard<'_, ()> {
        // The guarded data is (); a panic elsewhere leaves nothing broken.
        self.sync.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records waiting in the queue.
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }

    /// Payload bytes waiting in the queue.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Records shed by this process because a bound was reached.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    fn removed(&self, count: u64, bytes: u64) {
        // Saturating: another process sharing the queue may have removed
        // rows this process still counted; the next refresh corrects it.
        let sub = |a: &AtomicU64, n: u64| {
            let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
        };
        sub(&self.depth, count);
        sub(&self.bytes, bytes);
    }
}

/// One spooled record, as the publisher reads it back.
#[derive(Debug, Clone, PartialEq)]
pub struct SpooledEvent {
    /// Spool row id: increases with every append and is never reused.
    pub row: i64,
    /// The record's `id`.
    pub event_id: String,
    /// The record's JSON, as it was appended.
    pub payload: Vec<u8>,
}

/// One connection to the spool of one queue. The sink appends through one
/// (opened durable), the publisher reads and acknowledges through another.
pub struct Spool {
    conn: Connection,
    path: PathBuf,
    queue: String,
    limits: SpoolLimits,
    counters: Arc<SpoolCounters>,
}

/// Opens (creating if needed) the state database in `dir`, with the
/// pragmas every connection needs. `durable` makes each commit fsync;
/// `busy` is how long a statement waits for another's write lock.
///
/// A damaged database (an SD card that lost power mid-write) must not keep
/// a station from starting: it is moved aside as
/// `state.sqlite.damaged-<unix time>` and an empty one takes its place. The
/// events it still held are not delivered over MQTT (they are in the log
/// and the events file), and `seq` jumps ahead to the time in milliseconds
/// so that it still only increases for subscribers.
fn open_db(dir: &Path, durable: bool, busy: Duration) -> Result<(Connection, PathBuf), SpoolError> {
    std::fs::create_dir_all(dir).map_err(|source| SpoolError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(STATE_DB);
    match set_up_db(&path, durable, busy) {
        Err(SpoolError::Open { source, .. }) if is_damage(&source) => {
            let aside = move_aside(&path)?;
            tracing::error!(
                "spool database {} is damaged ({source}); moved it to {} and started an empty \
                 one: events it still held are not sent over MQTT (they are in the log and the \
                 events file), and seq jumps ahead",
                path.display(),
                aside.display()
            );
            let (conn, path) = set_up_db(&path, durable, busy)?;
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('seq_floor', ?1)",
                params![now_ms()],
            )
            .map_err(|source| SpoolError::Open {
                path: path.clone(),
                source,
            })?;
            Ok((conn, path))
        }
        other => other,
    }
}

fn set_up_db(
    path: &Path,
    durable: bool,
    busy: Duration,
) -> Result<(Connection, PathBuf), SpoolError> {
    let open_err = |source| SpoolError::Open {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(busy).map_err(open_err)?;
    // WAL: readers never block the writer, and a commit is one append to
    // the log (plus an fsync when durable) rather than a rewrite of pages.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_err)?;
    conn.pragma_update(None, "synchronous", if durable { "FULL" } else { "NORMAL" })
        .map_err(open_err)?;
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(open_err)?;
    if found > SCHEMA_VERSION {
        return Err(SpoolError::Version {
            path: path.to_owned(),
            found,
        });
    }
    // Damage that the header does not show: a page cut short by a power
    // loss. Cheap at spool sizes, and only at start-up.
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(open_err)?;
    if check != "ok" {
        return Err(open_err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(check),
        )));
    }
    use_incremental_vacuum(&conn, path);
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         CREATE TABLE IF NOT EXISTS events (
             row        INTEGER PRIMARY KEY AUTOINCREMENT,
             queue      TEXT    NOT NULL,
             event_id   TEXT    NOT NULL,
             seq        INTEGER NOT NULL,
             created_ms INTEGER NOT NULL,
             payload    BLOB    NOT NULL
         );
         CREATE INDEX IF NOT EXISTS events_by_queue ON events (queue, row);
         CREATE TABLE IF NOT EXISTS sequence (
             station TEXT PRIMARY KEY,
             last    INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS meta (
             key   TEXT PRIMARY KEY,
             value INTEGER NOT NULL
         );
         PRAGMA user_version = 1;
         COMMIT;",
    )
    .map_err(open_err)?;
    Ok((conn, path.to_owned()))
}

/// SQLite keeps the pages of deleted rows for reuse, so without this a
/// spool that once held a week-long broker outage would keep that size on
/// the SD card for good. Incremental auto-vacuum lets
/// [`Spool::checkpoint`] hand free pages back to the file system a batch at
/// a time. A new database only needs the pragma before its first table; an
/// older one (made before this) is rewritten once by `VACUUM`. Failing that
/// (another process holds the database) costs only disk space, so it is a
/// warning and the next start tries again.
fn use_incremental_vacuum(conn: &Connection, path: &Path) {
    let mode: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .unwrap_or(AUTO_VACUUM_INCREMENTAL);
    if mode == AUTO_VACUUM_INCREMENTAL {
        return;
    }
    let converted = conn
        .pragma_update(None, "auto_vacuum", AUTO_VACUUM_INCREMENTAL)
        .and_then(|()| conn.execute_batch("VACUUM"));
    if let Err(e) = converted {
        tracing::warn!(
            "spool database {}: cannot switch on incremental vacuum ({e}); space of delivered \
             events is reused but not returned to the disk",
            path.display()
        );
    }
}

/// Whether SQLite says the file is damaged or not a database at all.
fn is_damage(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// Moves a damaged database (and its write-ahead log) out of the way;
/// returns where it went.
fn move_aside(path: &Path) -> Result<PathBuf, SpoolError> {
    let stamp = now_ms() / 1000;
    let aside = path.with_file_name(format!("{STATE_DB}.damaged-{stamp}"));
    let failed = |source| SpoolError::MoveAside {
        path: path.to_owned(),
        source,
    };
    std::fs::rename(path, &aside).map_err(failed)?;
    let wal = path.with_file_name(format!("{STATE_DB}-wal"));
    if wal.exists() {
        std::fs::rename(
            &wal,
            aside.with_file_name(format!("{STATE_DB}.damaged-{stamp}-wal")),
        )
        .map_err(failed)?;
    }
    // The shared-memory index is rebuilt from the log; a stale one must go.
    let _ = std::fs::remove_file(path.with_file_name(format!("{STATE_DB}-shm")));
    Ok(aside)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Spool {
    /// Opens the spool of `queue` in the state directory `dir`, creating
    /// both if needed. Appends through a `durable` connection are fsynced.
    pub fn open(
        dir: &Path,
        queue: &str,
        limits: SpoolLimits,
        durable: bool,
    ) -> Result<Self, SpoolError> {
        let (conn, path) = open_db(dir, durable, DETECTOR_BUSY_TIMEOUT)?;
        let spool = Spool {
            conn,
            path,
            queue: queue.to_owned(),
            limits,
            counters: Arc::new(SpoolCounters::default()),
        };
        spool.refresh_counters()?;
        Ok(spool)
    }

    /// A second connection to the same queue sharing this one's counters;
    /// its commits are not fsynced (for reading and acknowledging).
    pub fn reader(&self) -> Result<Self, SpoolError> {
        self.another(false, BUSY_TIMEOUT)
    }

    /// A second durable connection to the same queue sharing this one's
    /// counters, for appends from another thread.
    pub fn writer(&self) -> Result<Self, SpoolError> {
        self.another(true, DETECTOR_BUSY_TIMEOUT)
    }

    fn another(&self, durable: bool, busy: Duration) -> Result<Self, SpoolError> {
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        let (conn, path) = open_db(dir, durable, busy)?;
        Ok(Spool {
            conn,
            path,
            queue: self.queue.clone(),
            limits: self.limits,
            counters: Arc::clone(&self.counters),
        })
    }

    /// The counters of this queue, shared by all connections of this process.
    pub fn counters(&self) -> Arc<SpoolCounters> {
        Arc::clone(&self.counters)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> SpoolError + '_ {
        |source| SpoolError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// Re-reads depth and bytes from the database (another process may
    /// share the queue, and counting rows is cheap with the index).
    pub fn refresh_counters(&self) -> Result<(), SpoolError> {
        let _sync = self.counters.lock();
        let (depth, bytes): (i64, i64) = self
            .conn
            .query_row(
                "SELECT count(*), coalesce(sum(length(payload)), 0) FROM events WHERE queue = ?1",
                params![self.queue],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(self.db())?;
        self.counters.depth.store(depth as u64, Ordering::Relaxed);
        self.counters.bytes.store(bytes as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Makes `rec` durable at the end of the queue and returns its row.
    /// Sheds the oldest records first when a bound would be passed.
    pub fn append(&mut self, rec: &CallRecord) -> Result<i64, SpoolError> {
        let payload = serde_json::to_vec(rec).map_err(|source| SpoolError::Encode {
            id: rec.id.clone(),
            source,
        })?;
        let len = payload.len() as u64;
        let path = self.path.clone();
        let db = |source| SpoolError::Db {
            path: path.clone(),
            source,
        };
        let counters = Arc::clone(&self.counters);
        let _sync = counters.lock();
        // IMMEDIATE takes the write lock up front (waiting on the busy
        // timeout), rather than failing mid-transaction on an upgrade.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        tx.execute(
            "INSERT INTO events (queue, event_id, seq, created_ms, payload)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![self.queue, rec.id, rec.seq as i64, now_ms(), payload],
        )
        .map_err(db)?;
        let row = tx.last_insert_rowid();
        let depth = self.counters.depth() + 1;
        let bytes = self.counters.bytes() + len;
        let shed = if depth > self.limits.max_events || bytes > self.limits.max_bytes {
            shed_oldest(&tx, &self.queue, depth, bytes, &self.limits).map_err(db)?
        } else {
            Shed::default()
        };
        tx.commit().map_err(db)?;
        self.counters.depth.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(len, Ordering::Relaxed);
        self.note_shed(&shed, "the spool is full");
        Ok(row)
    }

    fn note_shed(&self, shed: &Shed, why: &str) {
        if shed.count == 0 {
            return;
        }
        self.counters.removed(shed.count, shed.bytes);
        let total = self.counters.shed.fetch_add(shed.count, Ordering::Relaxed) + shed.count;
        tracing::warn!(
            queue = %self.queue,
            shed = shed.count,
            shed_total = total,
            oldest = %shed.first_id,
            newest = %shed.last_id,
            "{why}: dropped the {} oldest undelivered call event(s), {} to {}",
            shed.count,
            shed.first_id,
            shed.last_id
        );
    }

    /// Sheds records older than the age bound; returns how many. Records
    /// stamped by an unset clock are kept (a time before 2024 means the clock was unset).
    pub fn shed_expired(&mut self) -> Result<u64, SpoolError> {
        let cutoff = now_ms().saturating_sub(self.limits.max_age.as_millis() as i64);
        let counters = Arc::clone(&self.counters);
        let _sync = counters.lock();
        let mut stmt = self
            .conn
            .prepare_cached(
                "DELETE FROM events WHERE queue = ?1 AND created_ms < ?2 AND created_ms >= ?3
                 RETURNING row, event_id, length(payload)",
            )
            .map_err(self.db())?;
        let removed = stmt
            .query_map(params![self.queue, cutoff, PLAUSIBLE_MS], |r| {
                Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get::<_, i64>(2)?))
            })
            .map_err(self.db())?
            .collect::<Result<Vec<(i64, String, i64)>, _>>()
            .map_err(self.db())?;
        drop(stmt);
        let shed = Shed::from_rows(removed);
        self.note_shed(&shed, "the spool age limit was reached");
        Ok(shed.count)
    }

    /// Up to `limit` records after row `after`, oldest first.
    pub fn pending_after(&self, after: i64, limit: usize) -> Result<Vec<SpooledEvent>, SpoolError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT row, event_id, payload FROM events
                 WHERE queue = ?1 AND row > ?2 ORDER BY row LIMIT ?3",
            )
            .map_err(self.db())?;
        stmt.query_map(params![self.queue, after, limit as i64], |r| {
            Ok(SpooledEvent {
                row: r.get(0)?,
                event_id: r.get(1)?,
                payload: r.get(2)?,
            })
        })
        .map_err(self.db())?
        .collect::<Result<_, _>>()
        .map_err(self.db())
    }

    /// Removes a delivered record; false when it was already gone (shed,
    /// or removed by another process sharing the queue).
    pub fn ack(&self, row: i64) -> Result<bool, SpoolError> {
        let _sync = self.counters.lock();
        let mut stmt = self
            .conn
            .prepare_cached("DELETE FROM events WHERE row = ?1 RETURNING length(payload)")
            .map_err(self.db())?;
        let len: Option<i64> = stmt
            .query_row(params![row], |r| r.get(0))
            .optional()
            .map_err(self.db())?;
        if let Some(len) = len {
            self.counters.removed(1, len as u64);
        }
        Ok(len.is_some())
    }

    /// The highest row ever appended (by any queue): records at or below it
    /// existed before this moment, which is how the publisher tells a late
    /// (`historical`) delivery from a live one.
    pub fn watermark(&self) -> Result<i64, SpoolError> {
        self.conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(self.db())
    }

    /// Returns up to [`RECLAIM_PAGES`] free pages (left by delivered or
    /// shed records) to the file system, then folds the write-ahead log
    /// back into the database so neither file keeps growing while nothing
    /// else checkpoints; never waits for readers.
    pub fn checkpoint(&self) -> Result<(), SpoolError> {
        let free: i64 = self
            .conn
            .pragma_query_value(None, "freelist_count", |r| r.get(0))
            .map_err(self.db())?;
        if free > 0 {
            // The pragma returns a row per step; stepping them all is
            // what does the work.
            let mut vacuum = self
                .conn
                .prepare(&format!("PRAGMA incremental_vacuum({RECLAIM_PAGES})"))
                .map_err(self.db())?;
            let mut rows = vacuum.query([]).map_err(self.db())?;
            while rows.next().map_err(self.db())?.is_some() {}
        }
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(self.db())
    }
}

/// What one shedding pass removed.
#[derive(Debug, Default)]
struct Shed {
    count: u64,
    bytes: u64,
    first_id: String,
    last_id: String,
}

impl Shed {
    /// Summarises deleted `(row, event_id, bytes)` rows.
    fn from_rows(mut rows: Vec<(i64, String, i64)>) -> Self {
        rows.sort_by_key(|r| r.0);
        Shed {
            count: rows.len() as u64,
            bytes: rows.iter().map(|r| r.2 as u64).sum(),
            first_id: rows.first().map(|r| r.1.clone()).unwrap_or_default(),
            last_id: rows.last().map(|r| r.1.clone()).unwrap_or_default(),
        }
    }
}

/// Deletes the oldest records of `queue` until `depth` and `bytes` (the
/// totals after the append in progress) are within the limits.
fn shed_oldest(
    tx: &rusqlite::Transaction<'_>,
    queue: &str,
    depth: u64,
    bytes: u64,
    limits: &SpoolLimits,
) -> rusqlite::Result<Shed> {
    let mut over_count = depth.saturating_sub(limits.max_events);
    let mut over_bytes = bytes.saturating_sub(limits.max_bytes);
    let mut removed = Vec::new();
    let mut stmt = tx.prepare_cached(
        "SELECT row, event_id, length(payload) FROM events WHERE queue = ?1 ORDER BY row",
    )?;
    let mut rows = stmt.query(params![queue])?;
    // Never shed the record just appended (the last row): keeping the newest
    // call is the point of shedding the oldest.
    let mut candidates = Vec::new();
    while over_count > 0 || over_bytes > 0 {
        let Some(r) = rows.next()? else { break };
        let entry: (i64, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        over_count = over_count.saturating_sub(1);
        over_bytes = over_bytes.saturating_sub(entry.2 as u64);
        candidates.push(entry);
    }
    drop(rows);
    drop(stmt);
    let newest = tx.last_insert_rowid();
    let mut delete = tx.prepare_cached("DELETE FROM events WHERE row = ?1")?;
    for entry in candidates.into_iter().filter(|e| e.0 != newest) {
        delete.execute(params![entry.0])?;
        removed.push(entry);
    }
    Ok(Shed::from_rows(removed))
}

/// The station's persisted `seq` numbers (see the module docs).
pub struct SeqSource {
    store: Option<(Connection, PathBuf)>,
    station: String,
    last: u64,
}

impl SeqSource {
    /// Numbers for `station`, persisted in the state database in `dir`,
    /// continuing after the last number any process handed out.
    pub fn open(dir: &Path, station: &str) -> Result<Self, SpoolError> {
        let (conn, path) = open_db(dir, false, DETECTOR_BUSY_TIMEOUT)?;
        Ok(SeqSource {
            store: Some((conn, path)),
            station: station.to_owned(),
            last: 0,
        })
    }

    /// Numbers from 1 that live only as long as this value: for batch runs
    /// whose output is not a station's stream (a replay without `--mqtt`).
    pub fn in_memory() -> Self {
        SeqSource {
            store: None,
            station: String::new(),
            last: 0,
        }
    }

    /// The next number; committed before it is returned.
    pub fn next_seq(&mut self) -> Result<u64, SpoolError> {
        let Some((conn, path)) = &self.store else {
            self.last += 1;
            return Ok(self.last);
        };
        let next: i64 = conn
            .prepare_cached(
                "INSERT INTO sequence (station, last)
                 VALUES (?1, 1 + COALESCE((SELECT value FROM meta WHERE key = 'seq_floor'), 0))
                 ON CONFLICT (station) DO UPDATE SET last = last + 1
                 RETURNING last",
            )
            .and_then(|mut stmt| stmt.query_row(params![self.station], |r| r.get(0)))
            .map_err(|source| SpoolError::Db {
                path: path.clone(),
                source,
            })?;
        self.last = next as u64;
        Ok(self.last)
    }

    /// The last number handed out by this source (0 before the first).
    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::CallPhase;
    use crate::detect::event::test_record;

    fn record(seq: u64) -> CallRecord {
        test_record(CallPhase::Start, seq, seq)
    }

    const BIG: SpoolLimits = SpoolLimits {
        max_events: 1_000,
        max_bytes: 1 << 30,
        max_age: Duration::from_secs(3600),
    };

    #[test]
    fn appended_records_come_back_in_order_and_leave_on_ack() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::open(dir.path(), "daemon", BIG, true).expect("open");
        let reader = spool.reader().expect("reader");
        let rows: Vec<i64> = (1..=5)
            .map(|i| spool.append(&record(i)).expect("append"))
            .collect();
        assert!(rows.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(reader.counters().depth(), 5);
        let pending = reader.pending_after(0, 3).expect("read");
        assert_eq!(pending.len(), 3);
        assert_eq!(pending[0].event_id, record(1).id);
        let back: CallRecord = serde_json::from_slice(&pending[0].payload).expect("json");
        assert_eq!(back, record(1));
        assert!(reader.ack(rows[0]).expect("ack"));
        assert!(!reader.ack(rows[0]).expect("ack twice"));
        assert_eq!(spool.counters().depth(), 4);
        let rest = reader.pending_after(rows[2], 10).expect("read");
        assert_eq!(rest.iter().map(|e| e.row).collect::<Vec<_>>(), &rows[3..]);
        assert_eq!(reader.watermark().expect("watermark"), rows[4]);
    }

    #[test]
    fn records_survive_reopening_and_queues_are_separate() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut daemon = Spool::open(dir.path(), "daemon", BIG, true).expect("open");
            daemon.append(&record(1)).expect("append");
            let mut replay = Spool::open(dir.path(), "replay", BIG, true).expect("open");
            replay.append(&record(2)).expect("append");
        }
        let daemon = Spool::open(dir.path(), "daemon", BIG, true).expect("reopen");
        assert_eq!(daemon.counters().depth(), 1);
        let pending = daemon.pending_after(0, 10).expect("read");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].event_id, record(1).id);
    }

    #[test]
    fn a_full_spool_sheds_the_oldest_and_counts_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = SpoolLimits {
            max_events: 3,
            ..BIG
        };
        let mut spool = Spool::open(dir.path(), "daemon", limits, true).expect("open");
        for i in 1..=5 {
            spool.append(&record(i)).expect("append");
        }
        let ids: Vec<String> = spool
            .pending_after(0, 10)
            .expect("read")
            .into_iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(ids, [3, 4, 5].map(|i| record(i).id));
        assert_eq!(spool.counters().shed(), 2);
        assert_eq!(spool.counters().depth(), 3);

        let one = serde_json::to_vec(&record(1)).expect("json").len() as u64;
        let limits = SpoolLimits {
            max_bytes: one * 2 + one / 2,
            ..BIG
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::open(dir.path(), "daemon", limits, true).expect("open");
        for i in 1..=4 {
            spool.append(&record(i)).expect("append");
        }
        assert_eq!(spool.counters().depth(), 2);
        assert!(spool.counters().bytes() <= limits.max_bytes);
    }

    #[test]
    fn records_past_the_age_limit_are_shed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = SpoolLimits {
            max_age: Duration::ZERO,
            ..BIG
        };
        let mut spool = Spool::open(dir.path(), "daemon", limits, true).expect("open");
        spool.append(&record(1)).expect("append");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(spool.shed_expired().expect("shed"), 1);
        assert_eq!(spool.counters().depth(), 0);
        // A record stamped by an unset clock (1970) has no known age.
        spool.append(&record(2)).expect("append");
        spool
            .conn
            .execute("UPDATE events SET created_ms = 1000", [])
            .expect("backdate");
        assert_eq!(spool.shed_expired().expect("shed"), 0);
        spool.checkpoint().expect("checkpoint");
    }

    fn file_bytes(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    fn fill_and_drain(spool: &mut Spool, reader: &Spool, n: u64) {
        let rows: Vec<i64> = (1..=n)
            .map(|i| spool.append(&record(i)).expect("append"))
            .collect();
        spool.checkpoint().expect("checkpoint");
        for row in rows {
            assert!(reader.ack(row).expect("ack"));
        }
    }

    #[test]
    fn space_of_delivered_records_goes_back_to_the_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::open(dir.path(), "daemon", BIG, false).expect("open");
        let reader = spool.reader().expect("reader");
        fill_and_drain(&mut spool, &reader, 900);
        let full = file_bytes(spool.path());
        assert!(
            full > 200_000,
            "900 records should take room, file is {full} B"
        );
        // One pass is bounded; the backlog here fits in one.
        reader.checkpoint().expect("checkpoint");
        let after = file_bytes(spool.path());
        assert!(
            after * 4 < full,
            "file {after} B after draining, {full} B full"
        );
    }

    #[test]
    fn a_database_from_before_incremental_vacuum_is_converted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(STATE_DB);
        let conn = Connection::open(&path).expect("create");
        conn.execute_batch("PRAGMA auto_vacuum = NONE; CREATE TABLE old (x INTEGER);")
            .expect("old layout");
        drop(conn);
        let mut spool = Spool::open(dir.path(), "daemon", BIG, false).expect("open");
        let mode: i64 = spool
            .conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .expect("pragma");
        assert_eq!(mode, AUTO_VACUUM_INCREMENTAL);
        let reader = spool.reader().expect("reader");
        fill_and_drain(&mut spool, &reader, 300);
        let full = file_bytes(&path);
        reader.checkpoint().expect("checkpoint");
        assert!(file_bytes(&path) * 2 < full);
    }

    #[test]
    fn sequence_numbers_continue_across_sources_and_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = SeqSource::open(dir.path(), "st01").expect("open");
        assert_eq!(a.next_seq().expect("next"), 1);
        assert_eq!(a.next_seq().expect("next"), 2);
        let mut b = SeqSource::open(dir.path(), "st01").expect("open");
        assert_eq!(b.next_seq().expect("next"), 3);
        assert_eq!(a.next_seq().expect("next"), 4);
        let mut other = SeqSource::open(dir.path(), "st02").expect("open");
        assert_eq!(other.next_seq().expect("next"), 1);
        drop((a, b));
        let mut again = SeqSource::open(dir.path(), "st01").expect("reopen");
        assert_eq!(again.next_seq().expect("next"), 5);
        assert_eq!(again.last(), 5);
        let mut mem = SeqSource::in_memory();
        assert_eq!(
            (mem.next_seq().expect("1"), mem.next_seq().expect("2")),
            (1, 2)
        );
    }

    #[test]
    fn a_newer_layout_is_refused_with_the_file_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = Connection::open(dir.path().join(STATE_DB)).expect("create");
        conn.pragma_update(None, "user_version", 9).expect("pragma");
        drop(conn);
        let err = Spool::open(dir.path(), "daemon", BIG, true)
            .err()
            .expect("refused");
        assert!(err.to_string().contains(STATE_DB), "{err}");
        assert!(matches!(err, SpoolError::Version { found: 9, .. }));
    }

    /// Files in `dir` whose name starts with `prefix`.
    fn named(dir: &Path, prefix: &str) -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(prefix))
            .collect()
    }

    #[test]
    fn a_file_that_is_no_database_is_moved_aside_and_seq_jumps_ahead() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(STATE_DB), vec![0x5a; 8192]).expect("garbage");
        let before_ms = now_ms() as u64;
        let mut seq = SeqSource::open(dir.path(), "st01").expect("recovered");
        let first = seq.next_seq().expect("next");
        assert!(first > before_ms, "{first} jumps past {before_ms}");
        assert_eq!(seq.next_seq().expect("next"), first + 1);
        assert_eq!(named(dir.path(), "state.sqlite.damaged-").len(), 1);
        // The fresh database works for the spool too, and stays fresh.
        let mut spool = Spool::open(dir.path(), "daemon", BIG, true).expect("open");
        spool.append(&record(1)).expect("append");
        assert_eq!(named(dir.path(), "state.sqlite.damaged-").len(), 1);
    }

    #[test]
    fn damaged_pages_are_found_at_start_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut spool = Spool::open(dir.path(), "daemon", BIG, true).expect("open");
            for i in 0..200 {
                spool.append(&record(i)).expect("append");
            }
            let conn = Connection::open(dir.path().join(STATE_DB)).expect("open");
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .expect("checkpoint");
        }
        // A power loss tore the pages after the first few: the header
        // still reads as a database.
        let path = dir.path().join(STATE_DB);
        let mut bytes = std::fs::read(&path).expect("read");
        assert!(bytes.len() > 5 * 4096, "{} bytes", bytes.len());
        for b in &mut bytes[3 * 4096..] {
            *b = 0xa5;
        }
        std::fs::write(&path, bytes).expect("write");
        let mut spool = Spool::open(dir.path(), "daemon", BIG, true).expect("recovered");
        assert_eq!(named(dir.path(), "state.sqlite.damaged-").len(), 1);
        assert!(spool.pending_after(0, 10).expect("pending").is_empty());
        spool.append(&record(1)).expect("append");
        assert_eq!(spool.pending_after(0, 10).expect("pending").len(), 1);
    }
}
