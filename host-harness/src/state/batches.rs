//! Writing records: confirmed and failed outcomes of one sync, many per transaction.

use rusqlite::params;

use crate::contract::model::{Outcome, RecordError};
use crate::fingerprint::Fingerprint;
use crate::state::StateError;
use crate::state::postgres::{PgOp, PgState};
use crate::state::records::outcome_label;
use crate::state::schema::NOW;

/// What a confirmed write does to a record already in state (SQLite and PostgreSQL alike): the
/// new confirmed data, the known remote id kept when none came back, the last error cleared.
pub(crate) const ON_SUCCESS: &str = "ON CONFLICT (sync_id, record_key) DO UPDATE SET
    fingerprint = excluded.fingerprint, payload = excluded.payload,
    remote_id = COALESCE(excluded.remote_id, records.remote_id),
    last_outcome = excluded.last_outcome,
    error_code = NULL, error_message = NULL, error_field = NULL, error_status = NULL,
    error_retryable = NULL, failed_fingerprint = NULL, attempts = 0,
    last_synced = excluded.last_synced, updated_at = excluded.updated_at";

/// What a failed attempt does to a record already in state: the error recorded, one more
/// attempt counted, what was last confirmed kept.
pub(crate) const ON_FAILURE: &str = "ON CONFLICT (sync_id, record_key) DO UPDATE SET
    last_outcome = 'failed', error_code = excluded.error_code,
    error_message = excluded.error_message, error_field = excluded.error_field,
    error_status = excluded.error_status, error_retryable = excluded.error_retryable,
    failed_fingerprint = excluded.failed_fingerprint, attempts = records.attempts + 1,
    updated_at = excluded.updated_at";

/// Many writes for one sync in one transaction. Commit with [`SyncBatch::commit`]; dropped
/// uncommitted, it rolls back and state is as before it.
pub struct SyncBatch<'a> {
    pub(crate) inner: BatchInner<'a>,
    pub(crate) sync_id: &'a str,
    pub(crate) path: String,
}

/// The open SQLite transaction, or the PostgreSQL writes collected until the commit (sent as one
/// fenced transaction then; dropped uncommitted, nothing was sent).
pub(crate) enum BatchInner<'a> {
    Sqlite(rusqlite::Transaction<'a>),
    Postgres { pg: &'a PgState, ops: Vec<PgOp> },
}

pub(crate) fn sqlite_err<'p>(path: &'p str, context: &'static str) -> impl Fn(rusqlite::Error) -> StateError + 'p {
    move |source| StateError::Sqlite { path: path.to_string(), context, source }
}

impl SyncBatch<'_> {
    /// A confirmed write: the destination now holds `payload` (fingerprint `fingerprint`).
    /// Clears the last error and the attempt count; keeps the known remote id when `remote_id`
    /// is `None`. `Skipped` counts as handled: the same data will not be sent again.
    pub fn record_success(
        &mut self,
        key: &str,
        fingerprint: Fingerprint,
        payload: &str,
        remote_id: Option<&str>,
        outcome: Outcome,
    ) -> Result<(), StateError> {
        if outcome == Outcome::Failed {
            return Err(StateError::Usage(format!("record_success for `{key}` with outcome failed; use record_failure")));
        }
        let tx = match &mut self.inner {
            BatchInner::Sqlite(tx) => tx,
            BatchInner::Postgres { ops, .. } => {
                let (key, payload, remote_id) = (key.to_string(), payload.to_string(), remote_id.map(str::to_string));
                ops.push(PgOp::Success { key, fingerprint, payload, remote_id, outcome });
                return Ok(());
            }
        };
        let mut stmt = tx
            .prepare_cached(&format!(
                "INSERT INTO records (sync_id, record_key, fingerprint, payload, remote_id, last_outcome,
                    error_code, error_message, error_field, error_status, error_retryable, failed_fingerprint,
                    attempts, first_seen, last_synced, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, NULL, NULL, NULL, NULL, 0, {NOW}, {NOW}, {NOW})
                 {ON_SUCCESS}"
            ))
            .map_err(sqlite_err(&self.path, "preparing a success write"))?;
        stmt.execute(params![self.sync_id, key, &fingerprint.0[..], payload, remote_id, outcome_label(outcome)])
            .map(|_| ())
            .map_err(sqlite_err(&self.path, "writing a success"))
    }

    /// A failed attempt for the record with fingerprint `fingerprint`. Keeps what was last
    /// confirmed (fingerprint, payload, remote id); `retryable = false` marks a validation error
    /// that is not retried until the fingerprint changes.
    pub fn record_failure(&mut self, key: &str, fingerprint: Fingerprint, error: &RecordError, retryable: bool) -> Result<(), StateError> {
        let tx = match &mut self.inner {
            BatchInner::Sqlite(tx) => tx,
            BatchInner::Postgres { ops, .. } => {
                ops.push(PgOp::Failure { key: key.to_string(), fingerprint, error: error.clone(), retryable });
                return Ok(());
            }
        };
        let mut stmt = tx
            .prepare_cached(&format!(
                "INSERT INTO records (sync_id, record_key, fingerprint, payload, remote_id, last_outcome,
                    error_code, error_message, error_field, error_status, error_retryable, failed_fingerprint,
                    attempts, first_seen, last_synced, updated_at)
                 VALUES (?1, ?2, NULL, NULL, NULL, 'failed', ?3, ?4, ?5, ?6, ?7, ?8, 1, {NOW}, NULL, {NOW})
                 {ON_FAILURE}"
            ))
            .map_err(sqlite_err(&self.path, "preparing a failure write"))?;
        stmt.execute(params![
            self.sync_id,
            key,
            error.code.label(),
            error.message,
            error.field,
            error.http_status,
            retryable,
            &fingerprint.0[..]
        ])
        .map(|_| ())
        .map_err(sqlite_err(&self.path, "writing a failure"))
    }

    /// Deletes the state of the given keys (with PostgreSQL, when the batch commits; the count
    /// is then of the keys asked for).
    pub fn forget<K: AsRef<str>>(&mut self, keys: &[K]) -> Result<usize, StateError> {
        let tx = match &mut self.inner {
            BatchInner::Sqlite(tx) => tx,
            BatchInner::Postgres { ops, .. } => {
                ops.extend(keys.iter().map(|k| PgOp::Forget { key: k.as_ref().to_string() }));
                return Ok(keys.len());
            }
        };
        let mut stmt = tx
            .prepare_cached("DELETE FROM records WHERE sync_id = ?1 AND record_key = ?2")
            .map_err(sqlite_err(&self.path, "preparing a delete"))?;
        let mut n = 0;
        for k in keys {
            n += stmt.execute(params![self.sync_id, k.as_ref()]).map_err(sqlite_err(&self.path, "deleting a record"))?;
        }
        Ok(n)
    }

    /// Makes every write of the batch durable at once.
    pub fn commit(self) -> Result<(), StateError> {
        let path = self.path.clone();
        match self.inner {
            BatchInner::Sqlite(tx) => tx.commit().map_err(|source| StateError::Sqlite { path, context: "committing", source }),
            BatchInner::Postgres { pg, ops } => pg.commit_batch(self.sync_id, ops),
        }
    }
}
