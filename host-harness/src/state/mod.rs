//! Sync state: one SQLite file (`state.sqlite3`) per state directory.
//!
//! Per `(sync_id, record_key)` it keeps what the destination last **confirmed** (fingerprint,
//! canonical payload, remote id), the last outcome and, after a failure, the error and the
//! fingerprint it failed with; per sync the mapping fingerprint and component version last
//! used; and one row per run.
//!
//! # Consistency
//! - State advances only on confirmation: the engine calls [`State::record_success`] (or a
//!   [`StateBatch`]) after the destination answered, never before sending.
//! - Every write is in a transaction (`BEGIN IMMEDIATE`); a batch of many records is one
//!   transaction. The database is in WAL mode: a transaction is durable once its commit frame is
//!   in the WAL, and a process killed at any point (SIGKILL included) leaves the last committed
//!   state: frames of an unfinished transaction have no commit frame and are ignored on the next
//!   open. `synchronous = NORMAL`: after a power loss (not a process kill) the last few
//!   commits may be lost, never half-applied; that only means re-sending those records, which
//!   the guest's idempotent create handles.
//! - The schema is versioned by `PRAGMA user_version` with ordered migrations ([`MIGRATIONS`]),
//!   each applied in its own transaction together with the version bump; a file from a newer
//!   harness is refused rather than guessed at. `PRAGMA application_id` marks the file as ours.
//!
//! # Schema (version 2)
//! ```sql
//! syncs(sync_id TEXT PRIMARY KEY, mapping_fingerprint TEXT NOT NULL,
//!       component_version TEXT NOT NULL, updated_at TEXT NOT NULL)
//! records(sync_id, record_key,                 -- PRIMARY KEY, WITHOUT ROWID
//!         fingerprint BLOB,                    -- 16 bytes, of the confirmed payload
//!         payload TEXT,                        -- confirmed canonical JSON
//!         remote_id TEXT,
//!         last_outcome TEXT NOT NULL,          -- created|updated|unchanged|skipped|failed
//!         error_code TEXT, error_message TEXT, error_field TEXT, error_status INTEGER,
//!         error_retryable INTEGER,             -- 0 = validation error (not retried unchanged)
//!         failed_fingerprint BLOB,             -- the fingerprint the last failure was for
//!         attempts INTEGER NOT NULL,           -- failed attempts since the last success
//!         first_seen TEXT NOT NULL, last_synced TEXT, updated_at TEXT NOT NULL)
//! runs(run_id INTEGER PRIMARY KEY AUTOINCREMENT, sync_id TEXT NOT NULL,
//!      started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,
//!      counts TEXT NOT NULL,                   -- RunCounts as JSON
//!      message TEXT)
//! ```
//! Times are RFC 3339 UTC text with milliseconds.
//!
//! Which keys left the source is not stored: a finished run compares the state's keys with the
//! run's own set of source keys ([`State::count_keys_absent`]), so an unchanged row costs one
//! lookup and no write. (Version 1 wrote a `last_seen_run` per row per run; migration 2 drops it.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::contract::model::{ErrorCode, Outcome, RecordError};
use crate::fingerprint::Fingerprint;

/// File name of the state database inside the state directory.
pub const STATE_FILE: &str = "state.sqlite3";

/// `PRAGMA application_id` of a state database ("GDLY").
pub const APPLICATION_ID: i32 = 0x4744_4C59;

/// Keys looked up per statement in [`State::get_many`].
const LOOKUP_CHUNK: usize = 256;

/// Ordered schema migrations; `user_version` = how many are applied. Append only.
pub const MIGRATIONS: &[&str] = &[
    // 1: initial schema
    r#"
    CREATE TABLE syncs (
        sync_id TEXT PRIMARY KEY NOT NULL,
        mapping_fingerprint TEXT NOT NULL,
        component_version TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE records (
        sync_id TEXT NOT NULL,
        record_key TEXT NOT NULL,
        fingerprint BLOB,
        payload TEXT,
        remote_id TEXT,
        last_outcome TEXT NOT NULL
            CHECK (last_outcome IN ('created','updated','unchanged','skipped','failed')),
        error_code TEXT,
        error_message TEXT,
        error_field TEXT,
        error_status INTEGER,
        error_retryable INTEGER,
        failed_fingerprint BLOB,
        attempts INTEGER NOT NULL DEFAULT 0,
        first_seen TEXT NOT NULL,
        last_synced TEXT,
        updated_at TEXT NOT NULL,
        last_seen_run INTEGER,
        PRIMARY KEY (sync_id, record_key)
    ) WITHOUT ROWID;
    CREATE INDEX records_by_seen ON records (sync_id, last_seen_run);
    CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY AUTOINCREMENT,
        sync_id TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL CHECK (status IN ('running','succeeded','failed','interrupted')),
        counts TEXT NOT NULL DEFAULT '{}',
        message TEXT
    );
    CREATE INDEX runs_by_sync ON runs (sync_id, run_id);
    "#,
    // 2: no per-row "seen in run N" mark. Writing it rewrote every record (payload included) on
    // every run, a quarter of a no-change run's time; disappeared keys are now found by comparing
    // the state's keys with the run's key set.
    r#"
    DROP INDEX records_by_seen;
    ALTER TABLE records DROP COLUMN last_seen_run;
    "#,
];

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ','now')";

/// A state error; each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state directory cannot be created.
    #[error("cannot create the state directory {path}: {source}; check the path and its permissions")]
    CreateDir {
        /// The directory.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("state database {path}: {context}: {source}")]
    Sqlite {
        /// The file.
        path: String,
        /// What was being done.
        context: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer harness.
    #[error("state database {path} has schema version {found}, newer than this harness knows ({known}); use the newer harness or another state directory")]
    TooNew {
        /// The file.
        path: String,
        /// Its version.
        found: i64,
        /// Ours.
        known: i64,
    },
    /// The file is some other SQLite database.
    #[error("{path} is not a host-harness state database (application_id {found:#x}); point the state directory elsewhere")]
    Foreign {
        /// The file.
        path: String,
        /// Its application id.
        found: i32,
    },
    /// The caller asked for something impossible.
    #[error("state usage: {0}")]
    Usage(String),
}

/// The last failure of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    /// Stable code label (`rejected`, `rate-limited`, …).
    pub code: String,
    /// Human message.
    pub message: String,
    /// Field at fault.
    pub field: Option<String>,
    /// HTTP status.
    pub http_status: Option<u16>,
    /// Whether it was retryable; `false` = a validation error, not retried until the data
    /// (or the mapping, or the component version) changes.
    pub retryable: bool,
    /// Fingerprint of the record that failed.
    pub fingerprint: Fingerprint,
}

impl LastError {
    /// The code as an [`ErrorCode`], when it is one this build knows.
    pub fn error_code(&self) -> Option<ErrorCode> {
        serde_json::from_value(serde_json::Value::String(self.code.clone())).ok()
    }
}

/// What state knows about one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordState {
    /// Record key.
    pub key: String,
    /// Fingerprint of the last confirmed payload.
    pub fingerprint: Option<Fingerprint>,
    /// Last confirmed payload (canonical JSON).
    pub payload: Option<String>,
    /// Destination id.
    pub remote_id: Option<String>,
    /// Last outcome.
    pub last_outcome: Outcome,
    /// The error of the last attempt, when it failed.
    pub last_error: Option<LastError>,
    /// Failed attempts since the last success.
    pub attempts: u32,
    /// When the key was first written.
    pub first_seen: String,
    /// Last confirmation.
    pub last_synced: Option<String>,
    /// Last write.
    pub updated_at: String,
}

/// Per-sync metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncMeta {
    /// Fingerprint of the mapping and non-secret settings last used.
    pub mapping_fingerprint: String,
    /// Component version last used.
    pub component_version: String,
    /// When it was set.
    pub updated_at: String,
}

/// A run id (increasing across the file).
pub type RunId = i64;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Not finished (or the process died; see `Interrupted`).
    Running,
    /// Finished; individual records may still have failed (see the counts).
    Succeeded,
    /// Stopped by a batch-level error.
    Failed,
    /// Found still running when a later run started: the process died.
    Interrupted,
}

impl RunStatus {
    fn label(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
    fn parse(s: &str) -> RunStatus {
        match s {
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "interrupted" => RunStatus::Interrupted,
            _ => RunStatus::Running,
        }
    }
}

/// Counters of a run (stored as JSON; unknown or missing fields read as 0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunCounts {
    /// Rows read from the source (valid and invalid).
    pub rows_read: u64,
    /// Rows the source rejected (encoding, types, missing/duplicate key).
    pub invalid_rows: u64,
    /// Rows the plugin could not map.
    pub mapping_errors: u64,
    /// Planned: no state.
    pub planned_new: u64,
    /// Planned: fingerprint changed.
    pub planned_changed: u64,
    /// Planned: nothing to send.
    pub planned_unchanged: u64,
    /// Planned: retry of a failure.
    pub planned_retry: u64,
    /// Planned: validation failure, data unchanged, not sent.
    pub planned_still_invalid: u64,
    /// Outcome created.
    pub created: u64,
    /// Outcome updated.
    pub updated: u64,
    /// Outcome unchanged (the destination already matched).
    pub unchanged: u64,
    /// Outcome skipped.
    pub skipped: u64,
    /// Outcome failed.
    pub failed: u64,
    /// Requests made.
    pub requests: u64,
    /// Keys in state that the source no longer has.
    pub disappeared: u64,
}

/// One run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Id.
    pub run_id: RunId,
    /// Sync.
    pub sync_id: String,
    /// Start.
    pub started_at: String,
    /// End.
    pub finished_at: Option<String>,
    /// Status.
    pub status: RunStatus,
    /// Counters.
    pub counts: RunCounts,
    /// Batch-level error or note.
    pub message: Option<String>,
}

/// The state database.
pub struct State {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("path", &self.path).finish()
    }
}

fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Created => "created",
        Outcome::Updated => "updated",
        Outcome::Unchanged => "unchanged",
        Outcome::Skipped => "skipped",
        Outcome::Failed => "failed",
    }
}

fn parse_outcome(s: &str) -> Outcome {
    match s {
        "created" => Outcome::Created,
        "updated" => Outcome::Updated,
        "unchanged" => Outcome::Unchanged,
        "skipped" => Outcome::Skipped,
        _ => Outcome::Failed,
    }
}

const RECORD_COLUMNS: &str = "record_key, fingerprint, payload, remote_id, last_outcome, error_code, error_message, \
     error_field, error_status, error_retryable, failed_fingerprint, attempts, first_seen, last_synced, updated_at";

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordState> {
    let fp = |v: Option<Vec<u8>>| v.and_then(|b| Fingerprint::from_slice(&b));
    let code: Option<String> = r.get(5)?;
    let failed_fp = fp(r.get(10)?);
    let last_error = match (code, failed_fp) {
        (Some(code), Some(fingerprint)) => Some(LastError {
            code,
            message: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
            field: r.get(7)?,
            http_status: r.get::<_, Option<i64>>(8)?.and_then(|s| u16::try_from(s).ok()),
            retryable: r.get::<_, Option<bool>>(9)?.unwrap_or(true),
            fingerprint,
        }),
        _ => None,
    };
    Ok(RecordState {
        key: r.get(0)?,
        fingerprint: fp(r.get(1)?),
        payload: r.get(2)?,
        remote_id: r.get(3)?,
        last_outcome: parse_outcome(&r.get::<_, String>(4)?),
        last_error,
        attempts: u32::try_from(r.get::<_, i64>(11)?).unwrap_or(0),
        first_seen: r.get(12)?,
        last_synced: r.get(13)?,
        updated_at: r.get(14)?,
    })
}

impl State {
    /// Opens (creating if needed) `dir/state.sqlite3`, migrating it to the current schema.
    pub fn open(dir: impl AsRef<Path>) -> Result<State, StateError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| StateError::CreateDir { path: dir.display().to_string(), source })?;
        Self::open_file(dir.join(STATE_FILE))
    }

    /// Opens (creating if needed) a state database at an explicit file path.
    pub fn open_file(path: impl AsRef<Path>) -> Result<State, StateError> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path).map_err(|source| StateError::Sqlite {
            path: path.display().to_string(),
            context: "opening",
            source,
        })?;
        let mut state = State { conn, path };
        state.configure()?;
        state.migrate()?;
        Ok(state)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, context: &'static str) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        move |source| StateError::Sqlite { path: self.path.display().to_string(), context, source }
    }

    fn configure(&mut self) -> Result<(), StateError> {
        self.conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(self.err("setting the busy timeout"))?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(self.err("enabling WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StateError::Usage(format!(
                "{}: the file system refused WAL mode (got `{mode}`); put the state directory on a local disk",
                self.path.display()
            )));
        }
        self.conn
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(self.err("setting pragmas"))?;
        self.conn.set_prepared_statement_cache_capacity(64);
        Ok(())
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, StateError> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(self.err("reading the schema version"))
    }

    fn migrate(&mut self) -> Result<(), StateError> {
        let known = MIGRATIONS.len() as i64;
        let path = self.path.display().to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| StateError::Sqlite { path: path.clone(), context: "starting the migration", source })?;
        let sql_err = |context: &'static str| {
            let path = path.clone();
            move |source| StateError::Sqlite { path: path.clone(), context, source }
        };
        let app_id: i32 = tx.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(sql_err("reading the application id"))?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql_err("reading the schema version"))?;
        if app_id != 0 && app_id != APPLICATION_ID {
            return Err(StateError::Foreign { path, found: app_id });
        }
        if app_id == 0 && version == 0 {
            let tables: i64 = tx
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                .map_err(sql_err("inspecting the file"))?;
            if tables > 0 {
                return Err(StateError::Foreign { path, found: 0 });
            }
        }
        if version > known {
            return Err(StateError::TooNew { path, found: version, known });
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(step).map_err(sql_err("applying a schema migration"))?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1)).map_err(sql_err("recording the schema version"))?;
        }
        tx.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}")).map_err(sql_err("marking the file"))?;
        tx.commit().map_err(sql_err("committing the migration"))
    }

    /// The state of one record.
    pub fn get(&self, sync_id: &str, key: &str) -> Result<Option<RecordState>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM records WHERE sync_id = ?1 AND record_key = ?2"))
            .map_err(self.err("preparing a lookup"))?;
        stmt.query_row(params![sync_id, key], record_from_row).optional().map_err(self.err("looking up a record"))
    }

    /// The states of many records, keyed by record key (keys without state are absent). Looks
    /// keys up 256 per statement.
    pub fn get_many<K: AsRef<str>>(&self, sync_id: &str, keys: &[K]) -> Result<HashMap<String, RecordState>, StateError> {
        let mut out = HashMap::with_capacity(keys.len());
        if keys.is_empty() {
            return Ok(out);
        }
        let placeholders = (0..LOOKUP_CHUNK).map(|i| format!("?{}", i + 2)).collect::<Vec<_>>().join(",");
        let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE sync_id = ?1 AND record_key IN ({placeholders})");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.err("preparing a batched lookup"))?;
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            // Pad the last chunk with its first key so one statement serves every chunk.
            let padded = chunk.iter().map(|k| k.as_ref()).chain(std::iter::repeat(chunk[0].as_ref())).take(LOOKUP_CHUNK);
            let params = std::iter::once(sync_id).chain(padded);
            let rows = stmt.query_map(params_from_iter(params), record_from_row).map_err(self.err("looking up records"))?;
            for r in rows {
                let r = r.map_err(self.err("reading a record"))?;
                out.insert(r.key.clone(), r);
            }
        }
        Ok(out)
    }

    /// Starts a write transaction for many records; nothing is visible until
    /// [`StateBatch::commit`], and dropping the batch rolls it back.
    pub fn batch(&mut self) -> Result<StateBatch<'_>, StateError> {
        let path = self.path.display().to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| StateError::Sqlite { path: path.clone(), context: "starting a write", source })?;
        Ok(StateBatch { tx, path })
    }

    /// Records a confirmed write (its own transaction; use [`State::batch`] for many).
    pub fn record_success(
        &mut self,
        sync_id: &str,
        key: &str,
        fingerprint: Fingerprint,
        payload: &str,
        remote_id: Option<&str>,
        outcome: Outcome,
    ) -> Result<(), StateError> {
        let mut b = self.batch()?;
        b.record_success(sync_id, key, fingerprint, payload, remote_id, outcome)?;
        b.commit()
    }

    /// Records a failed attempt (its own transaction; use [`State::batch`] for many).
    pub fn record_failure(
        &mut self,
        sync_id: &str,
        key: &str,
        fingerprint: Fingerprint,
        error: &RecordError,
        retryable: bool,
    ) -> Result<(), StateError> {
        let mut b = self.batch()?;
        b.record_failure(sync_id, key, fingerprint, error, retryable)?;
        b.commit()
    }

    /// How many keys state holds for `sync_id` that `present` says are not in the source: the
    /// rows that disappeared, when `present` answers from a finished run's key set. One ordered
    /// scan of the sync's keys; nothing is written.
    pub fn count_keys_absent(&self, sync_id: &str, present: impl Fn(&str) -> bool) -> Result<u64, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record_key FROM records WHERE sync_id = ?1")
            .map_err(self.err("preparing the disappeared-keys scan"))?;
        let mut rows = stmt.query(params![sync_id]).map_err(self.err("scanning for disappeared keys"))?;
        let mut absent = 0;
        while let Some(row) = rows.next().map_err(self.err("scanning for disappeared keys"))? {
            let key: String = row.get(0).map_err(self.err("reading a record key"))?;
            if !present(&key) {
                absent += 1;
            }
        }
        Ok(absent)
    }

    /// Deletes the state of the given keys (e.g. after handling disappeared rows).
    pub fn forget<K: AsRef<str>>(&mut self, sync_id: &str, keys: &[K]) -> Result<usize, StateError> {
        let mut b = self.batch()?;
        let n = b.forget(sync_id, keys)?;
        b.commit()?;
        Ok(n)
    }

    /// Records in state for a sync.
    pub fn record_count(&self, sync_id: &str) -> Result<u64, StateError> {
        self.conn
            .query_row("SELECT count(*) FROM records WHERE sync_id = ?1", [sync_id], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.err("counting records"))
    }

    /// Records whose last attempt failed, most recent first.
    pub fn failures(&self, sync_id: &str, limit: usize) -> Result<Vec<RecordState>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM records WHERE sync_id = ?1 AND last_outcome = 'failed' ORDER BY updated_at DESC, record_key LIMIT ?2"
            ))
            .map_err(self.err("preparing the failures query"))?;
        let rows = stmt
            .query_map(params![sync_id, limit as i64], record_from_row)
            .map_err(self.err("listing failures"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err("listing failures"))
    }

    /// The mapping fingerprint and component version last used by a sync.
    pub fn sync_meta(&self, sync_id: &str) -> Result<Option<SyncMeta>, StateError> {
        self.conn
            .query_row(
                "SELECT mapping_fingerprint, component_version, updated_at FROM syncs WHERE sync_id = ?1",
                [sync_id],
                |r| Ok(SyncMeta { mapping_fingerprint: r.get(0)?, component_version: r.get(1)?, updated_at: r.get(2)? }),
            )
            .optional()
            .map_err(self.err("reading sync metadata"))
    }

    /// Sets the mapping fingerprint and component version of a sync (call when a run ends).
    pub fn set_sync_meta(&mut self, sync_id: &str, mapping_fingerprint: &str, component_version: &str) -> Result<(), StateError> {
        self.conn
            .execute(
                &format!(
                    "INSERT INTO syncs (sync_id, mapping_fingerprint, component_version, updated_at) VALUES (?1, ?2, ?3, {NOW})
                     ON CONFLICT (sync_id) DO UPDATE SET mapping_fingerprint = excluded.mapping_fingerprint,
                       component_version = excluded.component_version, updated_at = excluded.updated_at"
                ),
                params![sync_id, mapping_fingerprint, component_version],
            )
            .map(|_| ())
            .map_err(self.err("writing sync metadata"))
    }

    /// Starts a run; runs of this sync still marked running (their process died) become
    /// `interrupted`.
    pub fn start_run(&mut self, sync_id: &str) -> Result<RunId, StateError> {
        let b = self.batch()?;
        b.tx.execute(
            &format!("UPDATE runs SET status = 'interrupted', finished_at = COALESCE(finished_at, {NOW}) WHERE sync_id = ?1 AND status = 'running'"),
            [sync_id],
        )
        .map_err(b.err("closing interrupted runs"))?;
        b.tx.execute(&format!("INSERT INTO runs (sync_id, started_at, status, counts) VALUES (?1, {NOW}, 'running', '{{}}')"), [sync_id])
            .map_err(b.err("starting a run"))?;
        let id = b.tx.last_insert_rowid();
        b.commit()?;
        Ok(id)
    }

    /// Stores a run's progress counters without finishing it.
    pub fn update_run(&mut self, run_id: RunId, counts: &RunCounts) -> Result<(), StateError> {
        let json = serde_json::to_string(counts).unwrap_or_else(|_| "{}".into());
        self.conn
            .execute("UPDATE runs SET counts = ?2 WHERE run_id = ?1", params![run_id, json])
            .map(|_| ())
            .map_err(self.err("updating a run"))
    }

    /// Finishes a run.
    pub fn finish_run(&mut self, run_id: RunId, status: RunStatus, counts: &RunCounts, message: Option<&str>) -> Result<(), StateError> {
        let json = serde_json::to_string(counts).unwrap_or_else(|_| "{}".into());
        let n = self
            .conn
            .execute(
                &format!("UPDATE runs SET status = ?2, counts = ?3, message = ?4, finished_at = {NOW} WHERE run_id = ?1"),
                params![run_id, status.label(), json, message],
            )
            .map_err(self.err("finishing a run"))?;
        if n == 0 {
            return Err(StateError::Usage(format!("there is no run {run_id}")));
        }
        Ok(())
    }

    /// One run.
    pub fn run(&self, run_id: RunId) -> Result<Option<RunRecord>, StateError> {
        self.conn
            .query_row(
                "SELECT run_id, sync_id, started_at, finished_at, status, counts, message FROM runs WHERE run_id = ?1",
                [run_id],
                run_from_row,
            )
            .optional()
            .map_err(self.err("reading a run"))
    }

    /// The latest runs of a sync, newest first.
    pub fn runs(&self, sync_id: &str, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT run_id, sync_id, started_at, finished_at, status, counts, message FROM runs WHERE sync_id = ?1 ORDER BY run_id DESC LIMIT ?2",
            )
            .map_err(self.err("preparing the runs query"))?;
        let rows = stmt.query_map(params![sync_id, limit as i64], run_from_row).map_err(self.err("listing runs"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err("listing runs"))
    }

    /// Runs `PRAGMA integrity_check` and returns its verdict (`ok` when sound).
    pub fn integrity_check(&self) -> Result<String, StateError> {
        self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(self.err("checking integrity"))
    }
}

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let counts: String = r.get(5)?;
    Ok(RunRecord {
        run_id: r.get(0)?,
        sync_id: r.get(1)?,
        started_at: r.get(2)?,
        finished_at: r.get(3)?,
        status: RunStatus::parse(&r.get::<_, String>(4)?),
        counts: serde_json::from_str(&counts).unwrap_or_default(),
        message: r.get(6)?,
    })
}

/// Many writes in one transaction. Commit with [`StateBatch::commit`]; dropped uncommitted, it
/// rolls back and state is as before it.
pub struct StateBatch<'a> {
    tx: rusqlite::Transaction<'a>,
    path: String,
}

impl StateBatch<'_> {
    fn err(&self, context: &'static str) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        move |source| StateError::Sqlite { path: self.path.clone(), context, source }
    }

    /// A confirmed write: the destination now holds `payload` (fingerprint `fingerprint`).
    /// Clears the last error and the attempt count; keeps the known remote id when `remote_id`
    /// is `None`. `Skipped` counts as handled: the same data will not be sent again.
    pub fn record_success(
        &mut self,
        sync_id: &str,
        key: &str,
        fingerprint: Fingerprint,
        payload: &str,
        remote_id: Option<&str>,
        outcome: Outcome,
    ) -> Result<(), StateError> {
        if outcome == Outcome::Failed {
            return Err(StateError::Usage(format!("record_success for `{key}` with outcome failed; use record_failure")));
        }
        let mut stmt = self
            .tx
            .prepare_cached(&format!(
                "INSERT INTO records (sync_id, record_key, fingerprint, payload, remote_id, last_outcome,
                    error_code, error_message, error_field, error_status, error_retryable, failed_fingerprint,
                    attempts, first_seen, last_synced, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, NULL, NULL, NULL, NULL, 0, {NOW}, {NOW}, {NOW})
                 ON CONFLICT (sync_id, record_key) DO UPDATE SET
                    fingerprint = excluded.fingerprint, payload = excluded.payload,
                    remote_id = COALESCE(excluded.remote_id, records.remote_id),
                    last_outcome = excluded.last_outcome,
                    error_code = NULL, error_message = NULL, error_field = NULL, error_status = NULL,
                    error_retryable = NULL, failed_fingerprint = NULL, attempts = 0,
                    last_synced = excluded.last_synced, updated_at = excluded.updated_at"
            ))
            .map_err(self.err("preparing a success write"))?;
        stmt.execute(params![sync_id, key, &fingerprint.0[..], payload, remote_id, outcome_label(outcome)])
            .map(|_| ())
            .map_err(self.err("writing a success"))
    }

    /// A failed attempt for the record with fingerprint `fingerprint`. Keeps what was last
    /// confirmed (fingerprint, payload, remote id); `retryable = false` marks a validation error
    /// that is not retried until the fingerprint changes.
    pub fn record_failure(
        &mut self,
        sync_id: &str,
        key: &str,
        fingerprint: Fingerprint,
        error: &RecordError,
        retryable: bool,
    ) -> Result<(), StateError> {
        let mut stmt = self
            .tx
            .prepare_cached(&format!(
                "INSERT INTO records (sync_id, record_key, fingerprint, payload, remote_id, last_outcome,
                    error_code, error_message, error_field, error_status, error_retryable, failed_fingerprint,
                    attempts, first_seen, last_synced, updated_at)
                 VALUES (?1, ?2, NULL, NULL, NULL, 'failed', ?3, ?4, ?5, ?6, ?7, ?8, 1, {NOW}, NULL, {NOW})
                 ON CONFLICT (sync_id, record_key) DO UPDATE SET
                    last_outcome = 'failed', error_code = excluded.error_code,
                    error_message = excluded.error_message, error_field = excluded.error_field,
                    error_status = excluded.error_status, error_retryable = excluded.error_retryable,
                    failed_fingerprint = excluded.failed_fingerprint, attempts = records.attempts + 1,
                    updated_at = excluded.updated_at"
            ))
            .map_err(self.err("preparing a failure write"))?;
        stmt.execute(params![
            sync_id,
            key,
            error.code.label(),
            error.message,
            error.field,
            error.http_status,
            retryable,
            &fingerprint.0[..]
        ])
        .map(|_| ())
        .map_err(self.err("writing a failure"))
    }

    /// See [`State::forget`].
    pub fn forget<K: AsRef<str>>(&mut self, sync_id: &str, keys: &[K]) -> Result<usize, StateError> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM records WHERE sync_id = ?1 AND record_key = ?2")
            .map_err(self.err("preparing a delete"))?;
        let mut n = 0;
        for k in keys {
            n += stmt.execute(params![sync_id, k.as_ref()]).map_err(self.err("deleting a record"))?;
        }
        Ok(n)
    }

    /// Makes every write of the batch durable at once.
    pub fn commit(self) -> Result<(), StateError> {
        let path = self.path.clone();
        self.tx.commit().map_err(|source| StateError::Sqlite { path, context: "committing", source })
    }
}
