//! Run history (one row per run) and per-sync metadata (the mapping fingerprint and component
//! version last used).

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::state::batches::{BatchInner, sqlite_err};
use crate::state::schema::NOW;
use crate::state::{State, StateError, SyncState};

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
    pub(crate) fn label(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
    pub(crate) fn parse(s: &str) -> RunStatus {
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

impl SyncState<'_> {
    /// The mapping fingerprint and component version this sync last used.
    pub fn meta(&self) -> Result<Option<SyncMeta>, StateError> {
        let db = self.db;
        let conn = match db.sqlite() {
            Ok(c) => c,
            Err(pg) => return pg.meta(self.id),
        };
        conn
            .query_row(
                "SELECT mapping_fingerprint, component_version, updated_at FROM syncs WHERE sync_id = ?1",
                [self.id],
                |r| Ok(SyncMeta { mapping_fingerprint: r.get(0)?, component_version: r.get(1)?, updated_at: r.get(2)? }),
            )
            .optional()
            .map_err(db.err("reading sync metadata"))
    }

    /// Sets the mapping fingerprint and component version of this sync (call when a run ends).
    pub fn set_meta(&self, mapping_fingerprint: &str, component_version: &str) -> Result<(), StateError> {
        let db = self.db;
        let conn = match db.sqlite() {
            Ok(c) => c,
            Err(pg) => return pg.set_meta(self.id, mapping_fingerprint, component_version),
        };
        conn
            .execute(
                &format!(
                    "INSERT INTO syncs (sync_id, mapping_fingerprint, component_version, updated_at) VALUES (?1, ?2, ?3, {NOW})
                     ON CONFLICT (sync_id) DO UPDATE SET mapping_fingerprint = excluded.mapping_fingerprint,
                       component_version = excluded.component_version, updated_at = excluded.updated_at"
                ),
                params![self.id, mapping_fingerprint, component_version],
            )
            .map(|_| ())
            .map_err(db.err("writing sync metadata"))
    }

    /// Starts a run; runs of this sync still marked running (their process died) become
    /// `interrupted`.
    pub fn start_run(&self) -> Result<RunId, StateError> {
        if let Err(pg) = self.db.sqlite() {
            return pg.start_run(self.id);
        }
        let b = self.batch()?;
        let BatchInner::Sqlite(tx) = &b.inner else { return Err(StateError::Usage("a SQLite batch was expected".into())) };
        tx.execute(
            &format!("UPDATE runs SET status = 'interrupted', finished_at = COALESCE(finished_at, {NOW}) WHERE sync_id = ?1 AND status = 'running'"),
            [self.id],
        )
        .map_err(sqlite_err(&b.path, "closing interrupted runs"))?;
        tx.execute(&format!("INSERT INTO runs (sync_id, started_at, status, counts) VALUES (?1, {NOW}, 'running', '{{}}')"), [self.id])
            .map_err(sqlite_err(&b.path, "starting a run"))?;
        let id = tx.last_insert_rowid();
        b.commit()?;
        Ok(id)
    }

    /// The latest runs of this sync, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        let db = self.db;
        let conn = match db.sqlite() {
            Ok(c) => c,
            Err(pg) => return pg.runs(self.id, limit),
        };
        let mut stmt = conn
            .prepare_cached(
                "SELECT run_id, sync_id, started_at, finished_at, status, counts, message FROM runs WHERE sync_id = ?1 ORDER BY run_id DESC LIMIT ?2",
            )
            .map_err(db.err("preparing the runs query"))?;
        let rows = stmt.query_map(params![self.id, limit as i64], run_from_row).map_err(db.err("listing runs"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db.err("listing runs"))
    }
}

impl State {
    /// Stores a run's progress counters without finishing it.
    pub fn update_run(&self, run_id: RunId, counts: &RunCounts) -> Result<(), StateError> {
        let conn = match self.sqlite() {
            Ok(c) => c,
            Err(pg) => return pg.update_run(run_id, counts),
        };
        let json = serde_json::to_string(counts).unwrap_or_else(|_| "{}".into());
        conn
            .execute("UPDATE runs SET counts = ?2 WHERE run_id = ?1", params![run_id, json])
            .map(|_| ())
            .map_err(self.err("updating a run"))
    }

    /// Finishes a run.
    pub fn finish_run(&self, run_id: RunId, status: RunStatus, counts: &RunCounts, message: Option<&str>) -> Result<(), StateError> {
        let conn = match self.sqlite() {
            Ok(c) => c,
            Err(pg) => return pg.finish_run(run_id, status, counts, message),
        };
        let json = serde_json::to_string(counts).unwrap_or_else(|_| "{}".into());
        let n = conn
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
        let conn = match self.sqlite() {
            Ok(c) => c,
            Err(pg) => return pg.run(run_id),
        };
        conn
            .query_row(
                "SELECT run_id, sync_id, started_at, finished_at, status, counts, message FROM runs WHERE run_id = ?1",
                [run_id],
                run_from_row,
            )
            .optional()
            .map_err(self.err("reading a run"))
    }
}
