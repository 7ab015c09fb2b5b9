//! The ledger's reads and writes in PostgreSQL: the same statements as the SQLite ones, with
//! every write transaction opened by the fence check.

use std::collections::HashMap;

use postgres::Transaction;
use postgres::types::ToSql;

use crate::contract::model::{Outcome, RecordError};
use crate::fingerprint::Fingerprint;
use crate::state::batches::{ON_FAILURE, ON_SUCCESS};
use crate::state::postgres::schema::PG_NOW;
use crate::state::postgres::{Fence, PgState};
use crate::state::records::{LastError, RecordState, outcome_label, parse_outcome};
use crate::state::runs::{RunCounts, RunId, RunRecord, RunStatus, SyncMeta};
use crate::state::StateError;

/// Keys fetched per page by [`PgState::for_each_key`].
const KEY_PAGE: i64 = 10_000;

/// One write of a batch, kept until the batch commits.
#[derive(Debug, Clone)]
pub(crate) enum PgOp {
    /// A confirmed write.
    Success { key: String, fingerprint: Fingerprint, payload: String, remote_id: Option<String>, outcome: Outcome },
    /// A failed attempt.
    Failure { key: String, fingerprint: Fingerprint, error: RecordError, retryable: bool },
    /// Forget a key.
    Forget { key: String },
    /// Queue a result row.
    Result { json: String },
}

/// PostgreSQL text cannot hold NUL; text from outside keeps everything else.
fn clean(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

const RECORD_COLUMNS: &str = "record_key, fingerprint, payload, remote_id, last_outcome, error_code, error_message, \
     error_field, error_status, error_retryable, failed_fingerprint, attempts, first_seen, last_synced, updated_at";

fn record_from_row(r: &postgres::Row) -> RecordState {
    let fp = |v: Option<Vec<u8>>| v.and_then(|b| Fingerprint::from_slice(&b));
    let code: Option<String> = r.get(5);
    let failed_fp = fp(r.get(10));
    let last_error = match (code, failed_fp) {
        (Some(code), Some(fingerprint)) => Some(LastError {
            code,
            message: r.get::<_, Option<String>>(6).unwrap_or_default(),
            field: r.get(7),
            http_status: r.get::<_, Option<i32>>(8).and_then(|s| u16::try_from(s).ok()),
            retryable: r.get::<_, Option<bool>>(9).unwrap_or(true),
            fingerprint,
        }),
        _ => None,
    };
    RecordState {
        key: String::from_utf8_lossy(r.get::<_, &[u8]>(0)).into_owned(),
        fingerprint: fp(r.get(1)),
        payload: r.get(2),
        remote_id: r.get(3),
        last_outcome: parse_outcome(r.get::<_, &str>(4)),
        last_error,
        attempts: u32::try_from(r.get::<_, i32>(11)).unwrap_or(0),
        first_seen: r.get(12),
        last_synced: r.get(13),
        updated_at: r.get(14),
    }
}

fn run_from_row(r: &postgres::Row) -> RunRecord {
    let counts: String = r.get(5);
    RunRecord {
        run_id: r.get(0),
        sync_id: r.get(1),
        started_at: r.get(2),
        finished_at: r.get(3),
        status: RunStatus::parse(r.get::<_, &str>(4)),
        counts: serde_json::from_str(&counts).unwrap_or_default(),
        message: r.get(6),
    }
}

type PgResult<T> = Result<T, StateError>;

fn pg_err<'s>(server: &'s str, context: &'static str) -> impl Fn(postgres::Error) -> StateError + 's {
    move |source| StateError::Postgres { server: server.to_string(), context, source }
}

/// The first statement of every write: the lease row must carry our token and not have expired;
/// it stays share-locked until commit, so a takeover (which updates it) waits for this write.
fn check_fence(tx: &mut Transaction<'_>, fence: &Option<Fence>, server: &str) -> PgResult<()> {
    let Some(f) = fence else { return Ok(()) };
    let held = tx
        .query_opt(
            "SELECT 1 FROM destination_host.leases WHERE org = $1 AND token = $2 AND expires_at > clock_timestamp() FOR SHARE",
            &[&f.org, &f.token],
        )
        .map_err(pg_err(server, "checking the organization's lease"))?;
    match held {
        Some(_) => Ok(()),
        None => Err(StateError::Fenced { org: f.org.clone(), token: f.token }),
    }
}

impl PgState {
    /// A fenced write transaction running `f` on the connection's thread.
    fn write<R: Send + 'static>(
        &self,
        context: &'static str,
        f: impl FnOnce(&mut Transaction<'_>, &str) -> PgResult<R> + Send + 'static,
    ) -> PgResult<R> {
        let fence = self.fence.clone();
        let server = self.conn.label.clone();
        self.conn.call(context, move |c| {
            let mut tx = c.transaction().map_err(pg_err(&server, "starting a write"))?;
            check_fence(&mut tx, &fence, &server)?;
            let out = f(&mut tx, &server)?;
            tx.commit().map_err(pg_err(&server, "committing"))?;
            Ok(out)
        })
    }

    /// A read on the connection's thread.
    fn read<R: Send + 'static>(
        &self,
        context: &'static str,
        f: impl FnOnce(&mut postgres::Client) -> Result<R, postgres::Error> + Send + 'static,
    ) -> PgResult<R> {
        let server = self.conn.label.clone();
        self.conn.call(context, move |c| f(c).map_err(pg_err(&server, context)))
    }

    pub(crate) fn get_many(&self, sync: &str, keys: Vec<Vec<u8>>) -> PgResult<HashMap<String, RecordState>> {
        let sync = sync.to_string();
        self.read("looking up records", move |c| {
            let rows = c.query(
                &format!("SELECT {RECORD_COLUMNS} FROM destination_host.records WHERE sync_id = $1 AND record_key = ANY($2)"),
                &[&sync, &keys],
            )?;
            Ok(rows.iter().map(record_from_row).map(|r| (r.key.clone(), r)).collect())
        })
    }

    pub(crate) fn for_each_key<E: From<StateError>>(&self, sync: &str, mut f: impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let (s, from) = (sync.to_string(), after.clone());
            let page: Vec<Vec<u8>> = self.read("scanning the keys", move |c| {
                let rows = c.query(
                    "SELECT record_key FROM destination_host.records WHERE sync_id = $1 AND ($2::bytea IS NULL OR record_key > $2)
                     ORDER BY record_key LIMIT $3",
                    &[&s, &from, &KEY_PAGE],
                )?;
                Ok(rows.iter().map(|r| r.get::<_, Vec<u8>>(0)).collect())
            })?;
            for k in &page {
                f(&String::from_utf8_lossy(k))?;
            }
            if (page.len() as i64) < KEY_PAGE {
                return Ok(());
            }
            after = page.into_iter().last();
        }
    }

    pub(crate) fn record_count(&self, sync: &str) -> PgResult<u64> {
        let sync = sync.to_string();
        self.read("counting records", move |c| {
            Ok(c.query_one("SELECT count(*) FROM destination_host.records WHERE sync_id = $1", &[&sync])?.get::<_, i64>(0) as u64)
        })
    }

    pub(crate) fn failures(&self, sync: &str, limit: usize) -> PgResult<Vec<RecordState>> {
        let sync = sync.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("listing failures", move |c| {
            let rows = c.query(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM destination_host.records WHERE sync_id = $1 AND last_outcome = 'failed'
                     ORDER BY updated_at DESC, record_key LIMIT $2"
                ),
                &[&sync, &limit],
            )?;
            Ok(rows.iter().map(record_from_row).collect())
        })
    }

    pub(crate) fn commit_batch(&self, sync: &str, ops: Vec<PgOp>) -> PgResult<()> {
        let sync = sync.to_string();
        self.write("writing a batch", move |tx, server| {
            let mut prepared = HashMap::new();
            for op in &ops {
                apply(tx, server, &mut prepared, &sync, op)?;
            }
            Ok(())
        })
    }

    pub(crate) fn meta(&self, sync: &str) -> PgResult<Option<SyncMeta>> {
        let sync = sync.to_string();
        self.read("reading sync metadata", move |c| {
            Ok(c.query_opt("SELECT mapping_fingerprint, component_version, updated_at FROM destination_host.syncs WHERE sync_id = $1", &[&sync])?
                .map(|r| SyncMeta { mapping_fingerprint: r.get(0), component_version: r.get(1), updated_at: r.get(2) }))
        })
    }

    pub(crate) fn set_meta(&self, sync: &str, mapping_fingerprint: &str, component_version: &str) -> PgResult<()> {
        let (sync, m, v) = (sync.to_string(), mapping_fingerprint.to_string(), component_version.to_string());
        self.write("writing sync metadata", move |tx, server| {
            tx.execute(
                &format!(
                    "INSERT INTO destination_host.syncs (sync_id, mapping_fingerprint, component_version, updated_at) VALUES ($1, $2, $3, {PG_NOW})
                     ON CONFLICT (sync_id) DO UPDATE SET mapping_fingerprint = excluded.mapping_fingerprint,
                       component_version = excluded.component_version, updated_at = excluded.updated_at"
                ),
                &[&sync, &m, &v],
            )
            .map_err(pg_err(server, "writing sync metadata"))?;
            Ok(())
        })
    }

    pub(crate) fn start_run(&self, sync: &str) -> PgResult<RunId> {
        let sync = sync.to_string();
        self.write("starting a run", move |tx, server| {
            tx.execute(
                &format!(
                    "UPDATE destination_host.runs SET status = 'interrupted', finished_at = COALESCE(finished_at, {PG_NOW})
                     WHERE sync_id = $1 AND status = 'running'"
                ),
                &[&sync],
            )
            .map_err(pg_err(server, "closing interrupted runs"))?;
            let row = tx
                .query_one(
                    &format!("INSERT INTO destination_host.runs (sync_id, started_at, status, counts) VALUES ($1, {PG_NOW}, 'running', '{{}}') RETURNING run_id"),
                    &[&sync],
                )
                .map_err(pg_err(server, "starting a run"))?;
            Ok(row.get(0))
        })
    }

    pub(crate) fn runs(&self, sync: &str, limit: usize) -> PgResult<Vec<RunRecord>> {
        let sync = sync.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("listing runs", move |c| {
            let rows = c.query(
                "SELECT run_id, sync_id, started_at, finished_at, status, counts, message FROM destination_host.runs
                 WHERE sync_id = $1 ORDER BY run_id DESC LIMIT $2",
                &[&sync, &limit],
            )?;
            Ok(rows.iter().map(run_from_row).collect())
        })
    }

    pub(crate) fn run(&self, run_id: RunId) -> PgResult<Option<RunRecord>> {
        self.read("reading a run", move |c| {
            Ok(c.query_opt(
                "SELECT run_id, sync_id, started_at, finished_at, status, counts, message FROM destination_host.runs WHERE run_id = $1",
                &[&run_id],
            )?
            .map(|r| run_from_row(&r)))
        })
    }

    pub(crate) fn update_run(&self, run_id: RunId, counts: &RunCounts) -> PgResult<()> {
        let json = serde_json::to_string(counts).unwrap_or_else(|_| "{}".into());
        self.write("updating a run", move |tx, server| {
            tx.execute("UPDATE destination_host.runs SET counts = $2 WHERE run_id = $1", &[&run_id, &json]).map_err(pg_err(server, "updating a run"))?;
            Ok(())
        })
    }

    pub(crate) fn finish_run(&self, run_id: RunId, status: RunStatus, counts: &RunCounts, message: Option<&str>) -> PgResult<()> {
        let json = serde_json::to_string(counts).unwrap_or_else(|_| "{}".into());
        let message = message.map(clean);
        let label = status.label();
        self.write("finishing a run", move |tx, server| {
            let n = tx
                .execute(
                    &format!("UPDATE destination_host.runs SET status = $2, counts = $3, message = $4, finished_at = {PG_NOW} WHERE run_id = $1"),
                    &[&run_id, &label, &json, &message],
                )
                .map_err(pg_err(server, "finishing a run"))?;
            if n == 0 {
                return Err(StateError::Usage(format!("there is no run {run_id}")));
            }
            Ok(())
        })
    }

    /// Keep a finished run's report (JSON) with the run, where every worker's admin API finds it.
    pub fn set_report(&self, run_id: RunId, report: &str) -> PgResult<()> {
        let report = clean(report);
        self.read("keeping a run report", move |c| {
            c.execute("UPDATE destination_host.runs SET report = $2 WHERE run_id = $1", &[&run_id, &report])?;
            Ok(())
        })
    }

    /// A run's report, when one was kept.
    pub fn report(&self, sync: &str, run_id: RunId) -> PgResult<Option<String>> {
        let sync = sync.to_string();
        self.read("reading a run report", move |c| {
            Ok(c.query_opt("SELECT report FROM destination_host.runs WHERE run_id = $1 AND sync_id = $2", &[&run_id, &sync])?
                .and_then(|r| r.get::<_, Option<String>>(0)))
        })
    }

    pub(crate) fn outbox_peek_after(&self, sync: &str, seq: i64, limit: usize) -> PgResult<Vec<(i64, String)>> {
        let sync = sync.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("reading the outbox", move |c| {
            let rows = c.query(
                "SELECT seq, result FROM destination_host.results_outbox WHERE sync_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&sync, &seq, &limit],
            )?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    pub(crate) fn outbox_remove_through(&self, sync: &str, seq: i64) -> PgResult<usize> {
        let sync = sync.to_string();
        self.write("removing delivered results", move |tx, server| {
            let n = tx
                .execute("DELETE FROM destination_host.results_outbox WHERE sync_id = $1 AND seq <= $2", &[&sync, &seq])
                .map_err(pg_err(server, "removing delivered results"))?;
            Ok(n as usize)
        })
    }

    pub(crate) fn outbox_len(&self, sync: &str) -> PgResult<u64> {
        let sync = sync.to_string();
        self.read("counting the outbox", move |c| {
            Ok(c.query_one("SELECT count(*) FROM destination_host.results_outbox WHERE sync_id = $1", &[&sync])?.get::<_, i64>(0) as u64)
        })
    }
}

/// One op of a batch; each kind of statement is prepared once per batch.
fn apply(
    tx: &mut Transaction<'_>,
    server: &str,
    prepared: &mut HashMap<&'static str, postgres::Statement>,
    sync: &str,
    op: &PgOp,
) -> PgResult<()> {
    let params: Vec<Box<dyn ToSql + Sync>>;
    let (kind, sql) = match op {
        PgOp::Success { key, fingerprint, payload, remote_id, outcome } => {
            params = vec![
                Box::new(sync.to_string()),
                Box::new(key.as_bytes().to_vec()),
                Box::new(fingerprint.0.to_vec()),
                Box::new(clean(payload)),
                Box::new(remote_id.as_deref().map(clean)),
                Box::new(outcome_label(*outcome)),
            ];
            ("success", format!(
                "INSERT INTO destination_host.records (sync_id, record_key, fingerprint, payload, remote_id, last_outcome,
                    attempts, first_seen, last_synced, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 0, {PG_NOW}, {PG_NOW}, {PG_NOW})
                 {ON_SUCCESS}"
            ))
        }
        PgOp::Failure { key, fingerprint, error, retryable } => {
            params = vec![
                Box::new(sync.to_string()),
                Box::new(key.as_bytes().to_vec()),
                Box::new(error.code.label()),
                Box::new(clean(&error.message)),
                Box::new(error.field.as_deref().map(clean)),
                Box::new(error.http_status.map(i32::from)),
                Box::new(*retryable),
                Box::new(fingerprint.0.to_vec()),
            ];
            ("failure", format!(
                "INSERT INTO destination_host.records (sync_id, record_key, last_outcome,
                    error_code, error_message, error_field, error_status, error_retryable, failed_fingerprint,
                    attempts, first_seen, updated_at)
                 VALUES ($1, $2, 'failed', $3, $4, $5, $6, $7, $8, 1, {PG_NOW}, {PG_NOW})
                 {ON_FAILURE}"
            ))
        }
        PgOp::Forget { key } => {
            params = vec![Box::new(sync.to_string()), Box::new(key.as_bytes().to_vec())];
            ("forget", "DELETE FROM destination_host.records WHERE sync_id = $1 AND record_key = $2".to_string())
        }
        PgOp::Result { json } => {
            params = vec![Box::new(sync.to_string()), Box::new(clean(json))];
            ("result", "INSERT INTO destination_host.results_outbox (sync_id, result) VALUES ($1, $2)".to_string())
        }
    };
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
    let stmt = match prepared.get(kind) {
        Some(s) => s.clone(),
        None => {
            let s = tx.prepare(&sql).map_err(pg_err(server, "preparing a record write"))?;
            prepared.insert(kind, s.clone());
            s
        }
    };
    tx.execute(&stmt, &refs).map_err(pg_err(server, "writing a record"))?;
    Ok(())
}
