//! Results write-back: one row per record a run decided on, delivered where the data team works
//! (a table in the source database, or a JSON Lines file), so "which customers failed and why"
//! is a query next to their models.
//!
//! The path of a result:
//! 1. the recorder builds a [`ResultRow`] for every record the run sent or rejected;
//! 2. the ledger writes it to the state's outbox **in the same transaction** as the record's
//!    state ([`crate::state::outbox`]): a result is never ahead of the state it reports;
//! 3. the [`shipper`] thread delivers committed outbox rows to the target ([`targets`]) and
//!    then deletes them. Each row carries a unique `result_id`, and the targets skip an id they
//!    already hold, so a process killed between delivering and deleting repeats nothing; the
//!    next run ships what a killed run left in the outbox before it sends anything.
//!
//! Rows the planner left alone (unchanged since the last confirmed sync, or still rejected with
//! the same data) get no new result: their latest result still says what happened to them.
//!
//! - [`config`]: the job file's `[results]` section and where it points;
//! - [`row`]: the result row and how the recorder stamps it;
//! - [`targets`]: the SQLite, PostgreSQL and JSON Lines writers;
//! - [`shipper`]: the thread that moves results from the outbox to the target.

pub mod config;
pub mod row;
pub mod shipper;
pub mod targets;

pub use self::config::{ResultsConfig, TargetSpec};
pub use self::row::{ResultRow, ResultStamp};
pub use self::shipper::Shipper;

/// What can go wrong writing results. Each message names the target and the fix; none holds a
/// password (connection strings are shown as `user@host:port/db`).
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The `[results]` section cannot work with this job: fix the job file.
    #[error("[results]: {0}")]
    Config(String),
    /// The target refused to open, to create the table or to take rows.
    #[error("results {target}: {message}; {fix}")]
    Target {
        /// The table or file.
        target: String,
        /// What went wrong.
        message: String,
        /// What to do.
        fix: String,
    },
    /// The state's outbox could not be read or cleared.
    #[error("results outbox: {0}")]
    State(#[from] crate::state::StateError),
}
