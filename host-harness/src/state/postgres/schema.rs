//! The PostgreSQL schema: the SQLite ledger's tables, plus the coordinator's (leases and
//! schedule slots), in the schema `destination_host`, versioned by ordered migrations.
//!
//! Workers start together: each migration runs under a transaction-scoped advisory lock, so one
//! worker applies it and the others find it applied.

use crate::state::StateError;

/// The PostgreSQL schema (namespace) everything lives in.
pub const SCHEMA: &str = "destination_host";

/// Ordered migrations; `schema_version.version` = how many are applied. Append only.
pub const PG_MIGRATIONS: &[&str] = &[
    // 1: the ledger (same meaning as SQLite's version 3) and the coordination tables.
    r#"
    CREATE TABLE destination_host.syncs (
        sync_id TEXT PRIMARY KEY,
        mapping_fingerprint TEXT NOT NULL,
        component_version TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    -- record_key is BYTEA: a warehouse key may hold any character, NUL included, which TEXT refuses.
    CREATE TABLE destination_host.records (
        sync_id TEXT NOT NULL,
        record_key BYTEA NOT NULL,
        fingerprint BYTEA,
        payload TEXT,
        remote_id TEXT,
        last_outcome TEXT NOT NULL
            CHECK (last_outcome IN ('created','updated','unchanged','skipped','failed')),
        error_code TEXT,
        error_message TEXT,
        error_field TEXT,
        error_status INTEGER,
        error_retryable BOOLEAN,
        failed_fingerprint BYTEA,
        attempts INTEGER NOT NULL DEFAULT 0,
        first_seen TEXT NOT NULL,
        last_synced TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (sync_id, record_key)
    );
    CREATE TABLE destination_host.runs (
        run_id BIGSERIAL PRIMARY KEY,
        sync_id TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL CHECK (status IN ('running','succeeded','failed','interrupted')),
        counts TEXT NOT NULL DEFAULT '{}',
        message TEXT,
        report TEXT
    );
    CREATE INDEX runs_by_sync ON destination_host.runs (sync_id, run_id);
    CREATE TABLE destination_host.results_outbox (
        seq BIGSERIAL PRIMARY KEY,
        sync_id TEXT NOT NULL,
        result TEXT NOT NULL
    );
    CREATE INDEX results_outbox_by_sync ON destination_host.results_outbox (sync_id, seq);
    -- One row per organization: who drives it, until when, and the fencing token of that grant.
    CREATE TABLE destination_host.leases (
        org TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        token BIGINT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    );
    -- Every grant, for the admin API and the benchmark's spread figures.
    CREATE TABLE destination_host.lease_grants (
        org TEXT NOT NULL,
        token BIGINT NOT NULL,
        holder TEXT NOT NULL,
        granted_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (org, token)
    );
    -- The last schedule slot queued per sync: of all workers, the one that moves it queues the run.
    CREATE TABLE destination_host.schedule (
        sync_id TEXT PRIMARY KEY,
        last_slot TIMESTAMPTZ NOT NULL
    );
    "#,
];

/// PostgreSQL's current time as RFC 3339 UTC text with milliseconds (the SQLite ledger's format).
pub(crate) const PG_NOW: &str = r#"to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#;

/// Bring the database to the current schema, or refuse one from a newer harness.
pub(crate) fn migrate(client: &mut postgres::Client, server: &str) -> Result<i64, StateError> {
    let err = |context| move |source| StateError::Postgres { server: server.to_string(), context, source };
    let known = PG_MIGRATIONS.len() as i64;
    let mut tx = client.transaction().map_err(err("starting the migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtext('destination_host schema'))", &[]).map_err(err("waiting for the migration lock"))?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS destination_host;
         CREATE TABLE IF NOT EXISTS destination_host.schema_version (version BIGINT NOT NULL);",
    )
    .map_err(err("creating the schema"))?;
    let version: i64 = match tx.query_opt("SELECT version FROM destination_host.schema_version", &[]).map_err(err("reading the schema version"))? {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO destination_host.schema_version (version) VALUES (0)", &[]).map_err(err("recording the schema version"))?;
            0
        }
    };
    if version > known {
        return Err(StateError::PgTooNew { server: server.to_string(), found: version, known });
    }
    for (i, step) in PG_MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(step).map_err(err("applying a schema migration"))?;
        tx.execute("UPDATE destination_host.schema_version SET version = $1", &[&(i as i64 + 1)]).map_err(err("recording the schema version"))?;
    }
    tx.commit().map_err(err("committing the migration"))?;
    Ok(known)
}
