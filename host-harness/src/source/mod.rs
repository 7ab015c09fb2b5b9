//! Warehouse sources: CSV, JSON Lines, SQLite and PostgreSQL, streamed row by row.
//!
//! Lifetime: a [`RowSource`] lives for one run's read stage, on its own blocking thread; its
//! key set is handed back when the source is read to the end.
//!
//! - [`config`]: the job file's `[source]` section;
//! - [`item`]: rows, invalid rows and source errors;
//! - [`reader`]: what the readers share; [`keyed`]: hints and key checks on their records;
//! - [`budget`]: size caps on cells, rows and planning chunks;
//! - [`batches`]: chunks for the planner; [`keys`]: the key set;
//! - one module per kind: `csv`, `jsonl`, `sqlite`, `postgres`, and `convert` for cells.
//!
//! One entry: [`open`] turns a [`SourceConfig`] into a [`RowSource`], an iterator of
//! `Result<SourceItem, SourceError>`:
//! - `Ok(SourceItem::Row(row))`: a typed row with its key, ready to map;
//! - `Ok(SourceItem::Invalid(invalid))`: a row that must not be sent (bad encoding, a value that
//!   does not parse as its declared type, a cell or row over the [`InputBudget`], a missing or
//!   repeated key), with where it is, its key
//!   when known and a [`RecordError`] naming the column and the fix. The rows after it still
//!   stream;
//! - `Err(SourceError)`: the source itself failed (file unreadable, connection lost); the
//!   iterator ends after it.
//!
//! Nothing is loaded whole: files are read record by record; SQLite and PostgreSQL are read on a
//! worker thread that hands over chunks of `batch_size` rows through a channel holding at most
//! two chunks, so memory is flat in the row count (plus the key set of [`keys`]: ~34 bytes per
//! key). The worker thread also keeps the `postgres` crate's own runtime off the caller's
//! (possibly async) thread. Memory is bounded in the row's size too: a JSON Lines line longer
//! than `max_row_bytes` is skipped without being held (see each module for what it can bound).
//!
//! Cell types: CSV cells are text unless `types` says otherwise; JSON Lines, SQLite and
//! PostgreSQL carry their own types (see each module), and a `types` entry converts any of them
//! (e.g. an SQLite `INTEGER` 0/1 column to `boolean`). Dates without a time (`DATE`) are text
//! `YYYY-MM-DD`; timestamps are RFC 3339 (`Cell::Timestamp`); a timestamp without a zone is read
//! as UTC.

pub mod batches;
pub mod budget;
pub mod config;
mod convert;
mod csv;
pub mod item;
mod jsonl;
mod keyed;
pub mod keys;
mod postgres;
mod reader;
mod sqlite;

pub use self::batches::{Batches, batches};
pub use self::budget::{InputBudget, DEFAULT_CHUNK_BYTES, DEFAULT_MAX_CELL_BYTES, DEFAULT_MAX_ROW_BYTES};
pub use self::config::{CsvConfig, DEFAULT_BATCH_SIZE, JsonlConfig, PostgresConfig, SourceConfig, SqliteConfig, TypeHint};
pub use self::item::{InvalidRow, SourceError, SourceItem};
pub use self::keys::KeyChecker;
pub use self::postgres::redact_connection_string;
pub(crate) use self::convert::unix_micros_to_rfc3339;
pub(crate) use self::postgres::connection as postgres_connection;
pub(crate) use self::reader::{ChannelReader, RawRecord, Reader, cell_error, open_input};

use self::keyed::Keyed;

/// A stream of rows from a warehouse. `Box<dyn RowSource>` is itself an iterator.
pub trait RowSource: Iterator<Item = Result<SourceItem, SourceError>> + Send {
    /// The source's columns, in order (for JSON Lines: the first object's fields).
    fn columns(&self) -> &[String];
    /// What the source is, for messages (`CSV file examples/customers.csv`); never a password.
    fn describe(&self) -> &str;
    /// The key column.
    fn primary_key(&self) -> &str;
    /// Distinct keys seen so far.
    fn keys_seen(&self) -> usize;
    /// The keys seen, once the source is read to the end: every key the source returned,
    /// including those of invalid rows, so a run can tell which synced keys disappeared.
    fn into_keys(self: Box<Self>) -> KeyChecker;
}

/// Opens the configured source and checks the key column (and the hinted columns) exist.
pub fn open(cfg: &SourceConfig) -> Result<Box<dyn RowSource>, SourceError> {
    cfg.budget().validate().map_err(SourceError::Config)?;
    let source: Box<dyn RowSource> = match cfg {
        SourceConfig::Csv(c) => Box::new(Keyed::new(csv::CsvReader::open(c)?, &c.primary_key, &c.types, true)?),
        SourceConfig::Jsonl(c) => Box::new(Keyed::new(jsonl::JsonlReader::open(c)?, &c.primary_key, &c.types, false)?),
        SourceConfig::Sqlite(c) => Box::new(Keyed::new(sqlite::open(c)?, &c.primary_key, &c.types, true)?),
        SourceConfig::Postgres(c) => Box::new(Keyed::new(postgres::open(c)?, &c.primary_key, &c.types, true)?),
    };
    Ok(source)
}

