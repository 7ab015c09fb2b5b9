//! What state knows about each record of a sync, and reading it.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params, params_from_iter};
use serde::{Deserialize, Serialize};

use crate::contract::model::{ErrorCode, Outcome, RecordError};
use crate::fingerprint::Fingerprint;
use crate::state::{StateError, SyncState};

/// Keys looked up per statement in [`SyncState::get_many`].
const LOOKUP_CHUNK: usize = 256;

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

pub(crate) fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Created => "created",
        Outcome::Updated => "updated",
        Outcome::Unchanged => "unchanged",
        Outcome::Skipped => "skipped",
        Outcome::Failed => "failed",
    }
}

pub(crate) fn parse_outcome(s: &str) -> Outcome {
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

impl SyncState<'_> {
    /// The state of one record.
    pub fn get(&self, key: &str) -> Result<Option<RecordState>, StateError> {
        let db = self.db;
        let conn = match db.sqlite() {
            Ok(c) => c,
            Err(pg) => return Ok(pg.get_many(self.id, vec![key.as_bytes().to_vec()])?.remove(key)),
        };
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM records WHERE sync_id = ?1 AND record_key = ?2"))
            .map_err(db.err("preparing a lookup"))?;
        stmt.query_row(params![self.id, key], record_from_row).optional().map_err(db.err("looking up a record"))
    }

    /// The states of many records, keyed by record key (keys without state are absent). Looks
    /// keys up 256 per statement.
    pub fn get_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<HashMap<String, RecordState>, StateError> {
        let db = self.db;
        let mut out = HashMap::with_capacity(keys.len());
        if keys.is_empty() {
            return Ok(out);
        }
        let conn = match db.sqlite() {
            Ok(c) => c,
            Err(pg) => return pg.get_many(self.id, keys.iter().map(|k| k.as_ref().as_bytes().to_vec()).collect()),
        };
        let placeholders = (0..LOOKUP_CHUNK).map(|i| format!("?{}", i + 2)).collect::<Vec<_>>().join(",");
        let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE sync_id = ?1 AND record_key IN ({placeholders})");
        let mut stmt = conn.prepare_cached(&sql).map_err(db.err("preparing a batched lookup"))?;
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            // Pad the last chunk with its first key so one statement serves every chunk.
            let padded = chunk.iter().map(|k| k.as_ref()).chain(std::iter::repeat(chunk[0].as_ref())).take(LOOKUP_CHUNK);
            let params = std::iter::once(self.id).chain(padded);
            let rows = stmt.query_map(params_from_iter(params), record_from_row).map_err(db.err("looking up records"))?;
            for r in rows {
                let r = r.map_err(db.err("reading a record"))?;
                out.insert(r.key.clone(), r);
            }
        }
        Ok(out)
    }

    /// Calls `f` with every key state holds for this sync, in key order (one scan, nothing
    /// written, no key kept); stops at `f`'s first error.
    pub fn for_each_key<E: From<StateError>>(&self, mut f: impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        let db = self.db;
        let conn = match db.sqlite() {
            Ok(c) => c,
            Err(pg) => return pg.for_each_key(self.id, f),
        };
        let mut stmt = conn
            .prepare_cached("SELECT record_key FROM records WHERE sync_id = ?1")
            .map_err(db.err("preparing the key scan"))?;
        let mut rows = stmt.query(params![self.id]).map_err(db.err("scanning the keys"))?;
        while let Some(row) = rows.next().map_err(db.err("scanning the keys"))? {
            let key = row
                .get_ref(0)
                .and_then(|v| v.as_str().map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, v.data_type(), Box::new(e))))
                .map_err(db.err("reading a record key"))?;
            f(key)?;
        }
        Ok(())
    }

    /// How many keys state holds for this sync that `present` says are not in the source (the
    /// ledger counts disappeared rows with a merge-join instead: see `KeyChecker::count_missing`).
    pub fn count_keys_absent(&self, present: impl Fn(&str) -> bool) -> Result<u64, StateError> {
        let mut absent = 0;
        self.for_each_key(|k| {
            absent += u64::from(!present(k));
            Ok::<(), StateError>(())
        })?;
        Ok(absent)
    }

    /// Records in state for this sync.
    pub fn record_count(&self) -> Result<u64, StateError> {
        let db = self.db;
        let conn = match db.sqlite() {
            Ok(c) => c,
            Err(pg) => return pg.record_count(self.id),
        };
        conn
            .query_row("SELECT count(*) FROM records WHERE sync_id = ?1", [self.id], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(db.err("counting records"))
    }

    /// Records whose last attempt failed, most recent first.
    pub fn failures(&self, limit: usize) -> Result<Vec<RecordState>, StateError> {
        let db = self.db;
        let conn = match db.sqlite() {
            Ok(c) => c,
            Err(pg) => return pg.failures(self.id, limit),
        };
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM records WHERE sync_id = ?1 AND last_outcome = 'failed' ORDER BY updated_at DESC, record_key LIMIT ?2"
            ))
            .map_err(db.err("preparing the failures query"))?;
        let rows = stmt.query_map(params![self.id, limit as i64], record_from_row).map_err(db.err("listing failures"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db.err("listing failures"))
    }

    /// Records a confirmed write (its own transaction; use [`SyncState::batch`] for many).
    pub fn record_success(
        &self,
        key: &str,
        fingerprint: Fingerprint,
        payload: &str,
        remote_id: Option<&str>,
        outcome: Outcome,
    ) -> Result<(), StateError> {
        let mut b = self.batch()?;
        b.record_success(key, fingerprint, payload, remote_id, outcome)?;
        b.commit()
    }

    /// Records a failed attempt (its own transaction; use [`SyncState::batch`] for many).
    pub fn record_failure(&self, key: &str, fingerprint: Fingerprint, error: &RecordError, retryable: bool) -> Result<(), StateError> {
        let mut b = self.batch()?;
        b.record_failure(key, fingerprint, error, retryable)?;
        b.commit()
    }

    /// Deletes the state of the given keys (e.g. after handling disappeared rows).
    pub fn forget<K: AsRef<str>>(&self, keys: &[K]) -> Result<usize, StateError> {
        let mut b = self.batch()?;
        let n = b.forget(keys)?;
        b.commit()?;
        Ok(n)
    }
}
