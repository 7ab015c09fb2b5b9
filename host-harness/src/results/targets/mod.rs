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

/// The columns of a results table, in order.
pub const COLUMNS: [&str; 14] = [
    "result_id",
    "sync_id",
    "run_id",
    "row_key",
    "outcome",
    "gladly_id",
    "error_code",
    "category",
    "field",
    "message",
    "http_status",
    "attempts",
    "retried_next_run",
    "recorded_at",
];

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
        COLUMNS.join(", ")
    )
}
