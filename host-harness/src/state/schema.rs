//! The state file: its name, its pragmas, and the ordered schema migrations.
//!
//! The schema is versioned by `PRAGMA user_version`; each migration is applied in its own
//! transaction together with the version bump; a file from a newer harness is refused rather than
//! guessed at, and `PRAGMA application_id` marks the file as ours.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::state::StateError;

/// File name of the state database inside the state directory.
pub const STATE_FILE: &str = "state.sqlite3";

/// `PRAGMA application_id` of a state database ("GDLY").
pub const APPLICATION_ID: i32 = 0x4744_4C59;

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
    // 3: the results outbox. A record's result is written here in the same transaction as its
    // state, then shipped to the operator's results table and deleted: results are never ahead
    // of state, and a killed run's unshipped results go out at the start of the next run.
    r#"
    CREATE TABLE results_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sync_id TEXT NOT NULL,
        result TEXT NOT NULL
    );
    CREATE INDEX results_outbox_by_sync ON results_outbox (sync_id, seq);
    "#,
];

/// SQLite's current time as RFC 3339 UTC text with milliseconds.
pub(crate) const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ','now')";

fn sql_err<'a>(path: &'a Path, context: &'static str) -> impl Fn(rusqlite::Error) -> StateError + 'a {
    move |source| StateError::Sqlite { path: path.display().to_string(), context, source }
}

/// WAL mode (a killed process leaves the last committed state), `synchronous = NORMAL`, a busy
/// timeout and a statement cache.
pub(crate) fn configure(conn: &Connection, path: &Path) -> Result<(), StateError> {
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(sql_err(path, "setting the busy timeout"))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(sql_err(path, "enabling WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StateError::Usage(format!(
            "{}: the file system refused WAL mode (got `{mode}`); put the state directory on a local disk",
            path.display()
        )));
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;").map_err(sql_err(path, "setting pragmas"))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Brings the file to the current schema, or refuses a file that is not ours or is newer.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StateError> {
    let known = MIGRATIONS.len() as i64;
    let shown = path.display().to_string();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err(path, "starting the migration"))?;
    let app_id: i32 = tx.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(sql_err(path, "reading the application id"))?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql_err(path, "reading the schema version"))?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(StateError::Foreign { path: shown, found: app_id });
    }
    if app_id == 0 && version == 0 {
        let tables: i64 =
            tx.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).map_err(sql_err(path, "inspecting the file"))?;
        if tables > 0 {
            return Err(StateError::Foreign { path: shown, found: 0 });
        }
    }
    if version > known {
        return Err(StateError::TooNew { path: shown, found: version, known });
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(step).map_err(sql_err(path, "applying a schema migration"))?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1)).map_err(sql_err(path, "recording the schema version"))?;
    }
    tx.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}")).map_err(sql_err(path, "marking the file"))?;
    tx.commit().map_err(sql_err(path, "committing the migration"))
}
