//! Opening the state file, and the handle through which everything about one sync is read and
//! written.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, TransactionBehavior};

use crate::state::batches::{BatchInner, SyncBatch};
use crate::state::postgres::{Fence, PgState};
use crate::state::{StateError, schema};

/// Where state is kept: a SQLite file (one machine), or PostgreSQL (workers sharing the work).
pub(crate) enum Backend {
    Sqlite(Connection),
    Postgres(PgState),
}

/// The state database.
pub struct State {
    pub(crate) backend: Backend,
    /// The SQLite file, or the PostgreSQL server without credentials.
    path: PathBuf,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("path", &self.path).finish()
    }
}

impl State {
    /// Opens (creating if needed) `dir/state.sqlite3`, migrating it to the current schema.
    pub fn open(dir: impl AsRef<Path>) -> Result<State, StateError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| StateError::CreateDir { path: dir.display().to_string(), source })?;
        Self::open_file(dir.join(schema::STATE_FILE))
    }

    /// Opens (creating if needed) a state database at an explicit file path.
    pub fn open_file(path: impl AsRef<Path>) -> Result<State, StateError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path).map_err(|source| StateError::Sqlite {
            path: path.display().to_string(),
            context: "opening",
            source,
        })?;
        schema::configure(&conn, &path)?;
        schema::migrate(&mut conn, &path)?;
        Ok(State { backend: Backend::Sqlite(conn), path })
    }

    /// Opens the PostgreSQL state at `url` (migrating it); with a `fence`, every write checks
    /// that this worker still holds that organization's lease.
    pub fn open_postgres(url: &str, fence: Option<Fence>) -> Result<State, StateError> {
        let pg = PgState::open(url, fence)?;
        let path = PathBuf::from(pg.server());
        Ok(State { backend: Backend::Postgres(pg), path })
    }

    /// The PostgreSQL state, when this is one.
    pub fn postgres(&self) -> Option<&PgState> {
        match &self.backend {
            Backend::Postgres(pg) => Some(pg),
            Backend::Sqlite(_) => None,
        }
    }

    /// The database file (for PostgreSQL, the server without credentials).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn err(&self, context: &'static str) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        move |source| StateError::Sqlite { path: self.path.display().to_string(), context, source }
    }

    /// The SQLite connection, or the PostgreSQL state for the caller to use instead.
    pub(crate) fn sqlite(&self) -> Result<&Connection, &PgState> {
        match &self.backend {
            Backend::Sqlite(c) => Ok(c),
            Backend::Postgres(pg) => Err(pg),
        }
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, StateError> {
        let conn = self.sqlite().map_err(|_| StateError::Usage("the schema version is a SQLite file's; PostgreSQL keeps destination_host.schema_version".into()))?;
        conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(self.err("reading the schema version"))
    }

    /// Runs `PRAGMA integrity_check` and returns its verdict (`ok` when sound).
    pub fn integrity_check(&self) -> Result<String, StateError> {
        let conn = self.sqlite().map_err(|_| StateError::Usage("the integrity check is for a SQLite state file".into()))?;
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(self.err("checking integrity"))
    }

    /// The handle on one sync's records, runs and metadata.
    pub fn sync<'a>(&'a self, sync_id: &'a str) -> SyncState<'a> {
        SyncState { db: self, id: sync_id }
    }

    /// Starts an `IMMEDIATE` write transaction. The connection is used from one thread at a time
    /// (`State` is not `Sync`); a nested write fails with SQLite's own error.
    pub(crate) fn write(&self, context: &'static str) -> Result<BatchInner<'_>, StateError> {
        match &self.backend {
            Backend::Sqlite(conn) => Ok(BatchInner::Sqlite(
                rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(self.err(context))?,
            )),
            Backend::Postgres(pg) => Ok(BatchInner::Postgres { pg, ops: Vec::new() }),
        }
    }
}

/// Everything state keeps about one sync, without repeating its id on every call. Reads are
/// in [`crate::state::records`] and [`crate::state::runs`]; writes go through [`SyncBatch`].
#[derive(Clone, Copy)]
pub struct SyncState<'a> {
    pub(crate) db: &'a State,
    pub(crate) id: &'a str,
}

impl<'a> SyncState<'a> {
    /// The sync id.
    pub fn id(&self) -> &'a str {
        self.id
    }

    /// The database.
    pub fn database(&self) -> &'a State {
        self.db
    }

    /// Starts a write transaction for many records of this sync; nothing is visible until
    /// [`SyncBatch::commit`], and dropping the batch rolls it back.
    pub fn batch(&self) -> Result<SyncBatch<'a>, StateError> {
        Ok(SyncBatch { inner: self.db.write("starting a write")?, sync_id: self.id, path: self.db.path().display().to_string() })
    }
}
