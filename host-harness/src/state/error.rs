//! State errors: each names the file and what to do.

/// A state error; each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state directory cannot be created.
    #[error("cannot create the state directory {path}: {source}; check the path and its permissions")]
    CreateDir {
        /// The directory.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("state database {path}: {context}: {source}")]
    Sqlite {
        /// The file.
        path: String,
        /// What was being done.
        context: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer harness.
    #[error("state database {path} has schema version {found}, newer than this harness knows ({known}); use the newer harness or another state directory")]
    TooNew {
        /// The file.
        path: String,
        /// Its version.
        found: i64,
        /// Ours.
        known: i64,
    },
    /// The file is some other SQLite database.
    #[error("{path} is not a host-harness state database (application_id {found:#x}); point the state directory elsewhere")]
    Foreign {
        /// The file.
        path: String,
        /// Its application id.
        found: i32,
    },
    /// Another run of the same sync holds the run lock.
    #[error("another run of sync {sync_id} is in progress (it holds {path}); wait for it to finish or stop it, then run again")]
    Busy {
        /// The sync.
        sync_id: String,
        /// The lock file.
        path: String,
    },
    /// PostgreSQL failed.
    #[error("state database {server}: {context}: {source}")]
    Postgres {
        /// The server (without credentials).
        server: String,
        /// What was being done.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: postgres::Error,
    },
    /// This worker no longer holds the organization's lease: another worker took it over (this
    /// one was paused or cut off past the lease's expiry), so nothing it writes may land.
    #[error("the lease on organization {org} (token {token}) is no longer held by this worker; the write was refused and the organization's new owner carries on from the confirmed state")]
    Fenced {
        /// The organization.
        org: String,
        /// The token this worker held.
        token: i64,
    },
    /// The PostgreSQL state was written by a newer harness.
    #[error("state database {server} has schema version {found}, newer than this harness knows ({known}); use the newer harness")]
    PgTooNew {
        /// The server.
        server: String,
        /// Its version.
        found: i64,
        /// Ours.
        known: i64,
    },
    /// The caller asked for something impossible.
    #[error("state usage: {0}")]
    Usage(String),
}

