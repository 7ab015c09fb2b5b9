//! Opening the state file, and the handle through which everything about one sync is read and
//! written.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, TransactionBehavior};

use crate::state::batches::SyncBatch;
use crate::state::{StateError, schema};

/// The state database.
pub struct State {
    pub(crate) conn: Connection,
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
        Ok(State { conn, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn err(&self, context: &'static str) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        move |source| StateError::Sqlite { path: self.path.display().to_string(), context, source }
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, StateError> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(self.err("reading the schema version"))
    }

    /// Runs `PRAGMA integrity_check` and returns its verdict (`ok` when sound).
    pub fn integrity_check(&self) -> Result<String, StateError> {
        self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(self.err("checking integrity"))
    }

    /// The handle on one sync's records, runs and metadata.
    pub fn sync<'a>(&'a self, sync_id: &'a str) -> SyncState<'a> {
        SyncState { db: self, id: sync_id }
    }

    /// Starts an `IMMEDIATE` write transaction. The connection is used from one thread at a time
    /// (`State` is not `Sync`); a nested write fails with SQLite's own error.
    pub(crate) fn write(&self, context: &'static str) -> Result<rusqlite::Transaction<'_>, StateError> {
        rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate).map_err(self.err(context))
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
        Ok(SyncBatch { tx: self.db.write("starting a write")?, sync_id: self.id, path: self.db.path().display().to_string() })
    }
}
