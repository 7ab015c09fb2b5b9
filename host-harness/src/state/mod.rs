//! Sync state: one SQLite file (`state.sqlite3`) per state directory, or one PostgreSQL database
//! shared by every worker ([`postgres`]).
//!
//! Lifetime: a [`State`] is one open database (one per run, or per test); a [`SyncState`] is a
//! borrowed handle on one sync's rows in it; a [`SyncBatch`] is one write transaction.
//!
//! - [`schema`]: the file, its pragmas and the ordered migrations.
//! - [`database`]: opening the file; the handle per sync.
//! - [`records`]: what is known per record, and reading it.
//! - [`batches`]: writing confirmed and failed records, many per transaction.
//! - [`runs`]: one row per run, and per-sync metadata.
//! - [`outbox`]: results waiting to be shipped to the operator's results table.
//! - [`lock`]: one run per sync at a time.
//! - [`postgres`]: the same state in PostgreSQL, for workers that share the work, with every
//!   write fenced by the organization's lease.
//! - [`error`]: what can go wrong, naming the file and the fix.
//!
//! Per `(sync_id, record_key)` it keeps what the destination last **confirmed** (fingerprint,
//! canonical payload, remote id), the last outcome and, after a failure, the error and the
//! fingerprint it failed with; per sync the mapping fingerprint and component version last
//! used; and one row per run.
//!
//! # Consistency
//! - State advances only on confirmation: the engine writes a [`SyncBatch`] after the
//!   destination answered, never before sending.
//! - Every write is in a transaction (`BEGIN IMMEDIATE`); a batch of many records is one
//!   transaction. The database is in WAL mode: a transaction is durable once its commit frame is
//!   in the WAL, and a process killed at any point (SIGKILL included) leaves the last committed
//!   state: frames of an unfinished transaction have no commit frame and are ignored on the next
//!   open. `synchronous = NORMAL`: after a power loss (not a process kill) the last few
//!   commits may be lost, never half-applied; that only means re-sending those records, which
//!   the guest's idempotent create handles.
//! - The schema is versioned by `PRAGMA user_version` with ordered migrations ([`MIGRATIONS`]),
//!   each applied in its own transaction together with the version bump ([`schema`]); a file from a newer
//!   harness is refused rather than guessed at. `PRAGMA application_id` marks the file as ours.
//!
//! # Schema (version 3)
//! ```sql
//! syncs(sync_id TEXT PRIMARY KEY, mapping_fingerprint TEXT NOT NULL,
//!       component_version TEXT NOT NULL, updated_at TEXT NOT NULL)
//! records(sync_id, record_key,                 -- PRIMARY KEY, WITHOUT ROWID
//!         fingerprint BLOB,                    -- 16 bytes, of the confirmed payload
//!         payload TEXT,                        -- confirmed canonical JSON
//!         remote_id TEXT,
//!         last_outcome TEXT NOT NULL,          -- created|updated|unchanged|skipped|failed
//!         error_code TEXT, error_message TEXT, error_field TEXT, error_status INTEGER,
//!         error_retryable INTEGER,             -- 0 = validation error (not retried unchanged)
//!         failed_fingerprint BLOB,             -- the fingerprint the last failure was for
//!         attempts INTEGER NOT NULL,           -- failed attempts since the last success
//!         first_seen TEXT NOT NULL, last_synced TEXT, updated_at TEXT NOT NULL)
//! runs(run_id INTEGER PRIMARY KEY AUTOINCREMENT, sync_id TEXT NOT NULL,
//!      started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,
//!      counts TEXT NOT NULL,                   -- RunCounts as JSON
//!      message TEXT)
//! results_outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, sync_id TEXT NOT NULL,
//!      result TEXT NOT NULL)                   -- a result row as JSON, until it is shipped
//! ```
//! Times are RFC 3339 UTC text with milliseconds.
//!
//! Which keys left the source is not stored: a finished run compares the state's keys
//! ([`SyncState::for_each_key`]) with the run's own set of source keys, sorted and merge-joined on
//! disk (`source::keys`), so an unchanged row costs one lookup and no write. (Version 1 wrote a `last_seen_run` per row per run; migration 2 drops it.)

pub mod batches;
pub mod database;
pub mod error;
pub mod lock;
pub mod outbox;
pub mod postgres;
pub mod records;
pub mod runs;
pub mod schema;

pub use batches::SyncBatch;
pub use database::{State, SyncState};
pub use error::StateError;
pub use lock::{RunLock, lock_run};
pub use records::{LastError, RecordState};
pub use runs::{RunCounts, RunId, RunRecord, RunStatus, SyncMeta};
pub use schema::{APPLICATION_ID, MIGRATIONS, STATE_FILE};

/// Where a run keeps its state.
#[derive(Clone, Default)]
pub enum StateLocation {
    /// `state.sqlite3` in the job's state folder (one machine; the run holds the file lock).
    #[default]
    JobFolder,
    /// The coordinator's PostgreSQL database; writes are fenced by the organization's lease.
    Postgres {
        /// The connection URL (it may hold a password: never shown).
        url: String,
        /// The lease this run writes under.
        fence: Option<postgres::Fence>,
    },
}

impl std::fmt::Debug for StateLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateLocation::JobFolder => f.write_str("JobFolder"),
            StateLocation::Postgres { url, fence } => {
                f.debug_struct("Postgres").field("server", &crate::source::redact_connection_string(url)).field("fence", fence).finish()
            }
        }
    }
}

impl StateLocation {
    /// Open the state: the job folder's file, or the PostgreSQL database.
    pub fn open(&self, state_dir: &std::path::Path) -> Result<State, StateError> {
        match self {
            StateLocation::JobFolder => State::open(state_dir),
            StateLocation::Postgres { url, fence } => State::open_postgres(url, fence.clone()),
        }
    }

    /// Whether runs need the job folder's run lock (PostgreSQL runs are kept apart by the lease).
    pub fn needs_file_lock(&self) -> bool {
        matches!(self, StateLocation::JobFolder)
    }
}
