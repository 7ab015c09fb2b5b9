//! Where result rows are delivered. Every target takes rows in batches, holds each
//! `result_id` at most once, and is opened (table created, shape checked) before the run sends
//! anything, so a target that cannot work fails the run up front.
//!
//! - [`sqlite`]: a table in the source's SQLite file (which must be in WAL mode);
//! - [`postgres`]: a table in the source's PostgreSQL database;
//! - [`jsonl`]: a JSON Lines file.

pub mod jsonl;
pub mod postgres;
pub mod sqlite;

use std::collections::HashSet;

use super::{ResultRow, ResultsError, TargetSpec};

/// One column of a results table: its name and its type in each database.
pub struct Column {
    /// The name (also the key of a JSON Lines object).
    pub name: &'static str,
    /// Its declaration in SQLite.
    pub sqlite: &'static str,
    /// Its declaration in PostgreSQL.
    pub postgres: &'static str,
}

const fn column(name: &'static str, sqlite: &'static str, postgres: &'static str) -> Column {
    Column { name, sqlite, postgres }
}

/// The columns of a results table, in order: the one list both databases' tables, their shape
/// check and their inserts are built from.
pub const COLUMNS: [Column; 14] = [
    column("result_id", "TEXT PRIMARY KEY NOT NULL", "TEXT PRIMARY KEY"),
    column("sync_id", "TEXT NOT NULL", "TEXT NOT NULL"),
    column("run_id", "INTEGER NOT NULL", "BIGINT NOT NULL"),
    column("row_key", "TEXT NOT NULL", "TEXT NOT NULL"),
    column("outcome", "TEXT NOT NULL", "TEXT NOT NULL"),
    column("gladly_id", "TEXT", "TEXT"),
    column("error_code", "TEXT", "TEXT"),
    column("category", "TEXT", "TEXT"),
    column("field", "TEXT", "TEXT"),
    column("message", "TEXT", "TEXT"),
    column("http_status", "INTEGER", "INTEGER"),
    column("attempts", "INTEGER NOT NULL", "INTEGER NOT NULL"),
    column("retried_next_run", "INTEGER NOT NULL", "BOOLEAN NOT NULL"),
    column("recorded_at", "TEXT NOT NULL", "TIMESTAMPTZ NOT NULL"),
];

/// The column names, comma-separated (for `SELECT` and `INSERT`).
pub fn column_names() -> String {
    COLUMNS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
}

/// `CREATE TABLE IF NOT EXISTS` for `table` (already quoted), each column declared by `decl`.
pub fn create_table(table: &str, decl: fn(&Column) -> &'static str) -> String {
    let columns: Vec<String> = COLUMNS.iter().map(|c| format!("{} {}", c.name, decl(c))).collect();
    format!("CREATE TABLE IF NOT EXISTS {table} ({})", columns.join(", "))
}

/// A place results are written to.
pub trait Target: Send {
    /// The table or file, for messages.
    fn describe(&self) -> String;

    /// Write `rows` durably, skipping any `result_id` the target already holds.
    fn write(&mut self, rows: &[ResultRow]) -> Result<(), ResultsError>;

    /// Called once before rows a killed run left behind are delivered again: `ids` may already
    /// be in the target. Tables skip held ids on their own; a file learns which it holds.
    fn prepare_replay(&mut self, _ids: &HashSet<String>) -> Result<(), ResultsError> {
        Ok(())
    }
}

/// Open the target `spec` names: create the table or file if missing, check its shape.
pub fn open(spec: &TargetSpec) -> Result<Box<dyn Target>, ResultsError> {
    Ok(match spec {
        TargetSpec::Sqlite { path, table } => Box::new(sqlite::SqliteTarget::open(path, table)?),
        TargetSpec::Postgres { source, table } => Box::new(postgres::PostgresTarget::open(source, table)?),
        TargetSpec::Jsonl { path } => Box::new(jsonl::JsonlTarget::open(path)?),
    })
}

/// The fix for a table that exists with another shape.
pub(crate) fn shape_fix(table: &str) -> String {
    format!(
        "the table must have the columns {}; drop or rename the existing `{table}`, or set `[results] table` to another name",
        column_names()
    )
}
