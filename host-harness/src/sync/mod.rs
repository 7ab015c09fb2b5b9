//! The sync engine: from a job to a run report.
//!
//! Lifetimes: a [`Harness`] lives as long as the process (it owns the runtime and the
//! organization limiters); a [`Tenant`] (validated configuration, egress policy) lives as long as
//! the job it was prepared from; everything in [`run`] lives for one run.
//!
//! - [`harness`]: loads plugins once, prepares tenants, checks connections.
//! - [`run`]: one run as a pipeline of named stages (read → plan → send → record → retry).
//! - [`plan`]: decides per record whether it is new, changed, unchanged or to be retried.
//! - [`ledger`]: the run's view of state: plans chunks and records confirmed outcomes.
//! - [`retry`]: backoff with jitter, never sooner than the server asks.
//! - [`concurrency`]: how many instances of one sync run at once.
//! - [`report`]: the counts and the JSON run report.
//! - [`progress`]: a live bar or periodic log lines.
//! - [`triage`]: the failing records of a sync, grouped by error code with their fix.

mod blocking;
pub mod concurrency;
pub mod harness;
pub mod ledger;
pub mod plan;
pub mod progress;
pub mod report;
pub mod retry;
pub mod run;
pub mod triage;

pub use harness::{Harness, RunOptions, Tenant};
