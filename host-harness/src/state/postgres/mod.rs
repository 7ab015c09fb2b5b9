//! Sync state in PostgreSQL, for workers that share the work (`serve --coordinator`).
//!
//! Same meaning as the SQLite ledger (confirmed fingerprints and payloads, remote ids, last
//! errors, runs, the results outbox), in the schema `destination_host` ([`schema`]). What differs:
//!
//! - **Fencing.** A state opened with a [`Fence`] (the organization's lease and the token of the
//!   grant this worker holds) checks, inside every write transaction and before anything else,
//!   that the lease row still carries that token and has not expired, and keeps the row share-
//!   locked until the commit. A worker that lost the lease (paused, partitioned, too slow to renew)
//!   gets [`StateError::Fenced`] and writes nothing; a worker taking the lease over waits for a
//!   write in progress to commit, so it plans against that write too.
//! - Reads run on one connection on its own thread ([`conn`]); a batch of record writes is
//!   collected in memory and sent as one transaction when it commits.
//! - Text from outside (error messages from the API) may hold NUL, which PostgreSQL text refuses:
//!   it is stored as U+FFFD. Record keys are stored as bytes, exactly.

pub mod conn;
mod ops;
pub mod schema;

pub use conn::PgThread;
pub(crate) use ops::PgOp;
pub use schema::{PG_MIGRATIONS, SCHEMA};

use crate::state::StateError;

/// The lease under which a worker writes: the organization and the token of its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The organization (its rate-limit key).
    pub org: String,
    /// The grant's token; every new grant of the organization's lease has a larger one.
    pub token: i64,
}

/// An open PostgreSQL state.
pub struct PgState {
    pub(crate) conn: PgThread,
    pub(crate) fence: Option<Fence>,
}

impl PgState {
    /// Connect and migrate; writes are checked against `fence` when one is given.
    pub fn open(url: &str, fence: Option<Fence>) -> Result<PgState, StateError> {
        let conn = PgThread::connect(url)?;
        let server = conn.label.clone();
        conn.call("migrating", move |c| schema::migrate(c, &server))?;
        Ok(PgState { conn, fence })
    }

    /// The server, without credentials.
    pub fn server(&self) -> &str {
        &self.conn.label
    }
}
