//! Warehouse sources: CSV, JSON Lines, SQLite and PostgreSQL, streamed row by row.
//!
//! One entry: [`open`] turns a [`SourceConfig`] into a [`RowSource`], an iterator of
//! `Result<SourceItem, SourceError>`:
//! - `Ok(SourceItem::Row(row))`: a typed row with its key, ready to map;
//! - `Ok(SourceItem::Invalid(invalid))`: a row that must not be sent (bad encoding, a value that
//!   does not parse as its declared type, a missing or repeated key), with where it is, its key
//!   when known and a [`RecordError`] naming the column and the fix. The rows after it still
//!   stream;
//! - `Err(SourceError)`: the source itself failed (file unreadable, connection lost); the
//!   iterator ends after it.
//!
//! Nothing is loaded whole: files are read record by record; SQLite and PostgreSQL are read on a
//! worker thread that hands over chunks of `batch_size` rows through a channel holding at most
//! two chunks, so memory is flat in the row count (plus the key set of [`keys`]: ~34 bytes per
//! key). The worker thread also keeps the `postgres` crate's own runtime off the caller's
//! (possibly async) thread.
//!
//! Cell types: CSV cells are text unless `types` says otherwise; JSON Lines, SQLite and
//! PostgreSQL carry their own types (see each module), and a `types` entry converts any of them
//! (e.g. an SQLite `INTEGER` 0/1 column to `boolean`). Dates without a time (`DATE`) are text
//! `YYYY-MM-DD`; timestamps are RFC 3339 (`Cell::Timestamp`); a timestamp without a zone is read
//! as UTC.

mod convert;
mod csv;
mod jsonl;
pub mod keys;
mod postgres;
mod sqlite;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::contract::model::{Cell, Column, ErrorCategory, ErrorCode, RecordError, Row, RowError};

pub use self::keys::KeyChecker;
pub use self::postgres::redact_connection_string;

/// Default rows per chunk fetched from a database.
pub const DEFAULT_BATCH_SIZE: usize = 1000;

/// How a source column's cells are typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeHint {
    /// Text as is (any value is written as text).
    Text,
    /// A whole number (`42`, `-7`).
    Integer,
    /// A finite floating-point number.
    Float,
    /// `true/false`, `t/f`, `yes/no`, `y/n`, `1/0`, `on/off` (any case).
    Boolean,
    /// RFC 3339, `YYYY-MM-DD HH:MM[:SS]` (UTC) or `YYYY-MM-DD`; an integer is Unix seconds.
    Timestamp,
    /// A JSON document (validated, rewritten compactly).
    Json,
}

/// A CSV source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// File path, or `-` for standard input.
    pub path: PathBuf,
    /// The key column.
    pub primary_key: String,
    /// Per-column type hints; columns not listed are text.
    #[serde(default)]
    pub types: BTreeMap<String, TypeHint>,
    /// Field delimiter (one ASCII character), `,` by default.
    #[serde(default)]
    pub delimiter: Option<char>,
}

/// A JSON Lines source: one JSON object per line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// File path, or `-` for standard input.
    pub path: PathBuf,
    /// The key field.
    pub primary_key: String,
    /// Per-field type conversions.
    #[serde(default)]
    pub types: BTreeMap<String, TypeHint>,
}

/// An SQLite database file and a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// Database file (opened read-only).
    pub path: PathBuf,
    /// One `SELECT` statement, no parameters.
    pub query: String,
    /// The key column of the query's result.
    pub primary_key: String,
    /// Per-column type conversions.
    #[serde(default)]
    pub types: BTreeMap<String, TypeHint>,
    /// Rows per chunk handed from the reader thread (default 1000).
    #[serde(default)]
    pub batch_size: Option<usize>,
}

/// A PostgreSQL connection and a query.
///
/// Its `Debug` hides the connection string's password.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection string (`postgresql://user@host:5432/db` or `host=… user=… dbname=…`).
    /// Prefer `url_env` when it holds a password.
    #[serde(default)]
    pub url: Option<String>,
    /// Name of an environment variable holding the connection string.
    #[serde(default)]
    pub url_env: Option<String>,
    /// One `SELECT` statement, no parameters; run in a read-only transaction through a cursor.
    pub query: String,
    /// The key column of the query's result.
    pub primary_key: String,
    /// Per-column type conversions.
    #[serde(default)]
    pub types: BTreeMap<String, TypeHint>,
    /// Rows fetched per cursor round trip (default 1000).
    #[serde(default)]
    pub batch_size: Option<usize>,
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.url.as_deref().map(redact_connection_string))
            .field("url_env", &self.url_env)
            .field("query", &self.query)
            .field("primary_key", &self.primary_key)
            .field("types", &self.types)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

/// Where rows come from; deserializes from TOML/JSON tagged by `kind`.
///
/// ```toml
/// [source]
/// kind = "sqlite"            # "csv" | "jsonl" | "sqlite" | "postgres"
/// path = "examples/warehouse.sqlite"
/// query = "SELECT * FROM customers ORDER BY id"
/// primary_key = "id"
/// [source.types]
/// signup_date = "timestamp"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceConfig {
    /// CSV file or stdin.
    Csv(CsvConfig),
    /// JSON Lines file or stdin.
    Jsonl(JsonlConfig),
    /// SQLite query.
    Sqlite(SqliteConfig),
    /// PostgreSQL query.
    Postgres(PostgresConfig),
}

impl SourceConfig {
    /// The key column.
    pub fn primary_key(&self) -> &str {
        match self {
            SourceConfig::Csv(c) => &c.primary_key,
            SourceConfig::Jsonl(c) => &c.primary_key,
            SourceConfig::Sqlite(c) => &c.primary_key,
            SourceConfig::Postgres(c) => &c.primary_key,
        }
    }

    /// The type hints.
    pub fn types(&self) -> &BTreeMap<String, TypeHint> {
        match self {
            SourceConfig::Csv(c) => &c.types,
            SourceConfig::Jsonl(c) => &c.types,
            SourceConfig::Sqlite(c) => &c.types,
            SourceConfig::Postgres(c) => &c.types,
        }
    }

    /// `csv`, `jsonl`, `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Csv(_) => "csv",
            SourceConfig::Jsonl(_) => "jsonl",
            SourceConfig::Sqlite(_) => "sqlite",
            SourceConfig::Postgres(_) => "postgres",
        }
    }
}

/// A row that is not sent, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidRow {
    /// 1-based ordinal of the record in the source (header not counted).
    pub record: u64,
    /// 1-based line in the file, for CSV and JSON Lines.
    pub line: Option<u64>,
    /// The row's key, when it could be read.
    pub key: Option<String>,
    /// Why; `field` names the column, `category` is `skip-record`, never retryable.
    pub error: RecordError,
}

impl InvalidRow {
    /// Where the row is, for messages: `line 7` or `record 7`.
    pub fn location(&self) -> String {
        match self.line {
            Some(l) => format!("line {l}"),
            None => format!("record {}", self.record),
        }
    }

    /// As a model `RowError`; a row without a key is keyed `#line N` / `#record N`.
    pub fn into_row_error(self) -> RowError {
        let key = self.key.clone().unwrap_or_else(|| format!("#{}", self.location()));
        RowError { key, error: self.error }
    }
}

/// One item of a source.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceItem {
    /// A row to map and maybe send.
    Row(Row),
    /// A row that is reported, never sent.
    Invalid(InvalidRow),
}

/// The source failed as a whole; each message names what to fix. Connection strings appear
/// only without their password.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The configuration is incomplete or contradictory.
    #[error("source configuration: {0}")]
    Config(String),
    /// A file could not be opened.
    #[error("cannot open {path}: {source}; check that the file exists and is readable")]
    Open {
        /// The path.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading failed part-way (I/O error, broken CSV framing).
    #[error("reading {what} failed at {location}: {message}")]
    Read {
        /// The source.
        what: String,
        /// Line or record.
        location: String,
        /// The cause.
        message: String,
    },
    /// The CSV header is unusable.
    #[error("the header row of {what} {problem}")]
    Header {
        /// The source.
        what: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// The key column is not among the source's columns.
    #[error("primary key column `{column}` is not in {what}; its columns are: {available}. Set `primary_key` to one of them")]
    KeyColumnMissing {
        /// The configured key column.
        column: String,
        /// The source.
        what: String,
        /// Its columns.
        available: String,
    },
    /// A type hint names a column the source does not have.
    #[error("`types` names column `{column}`, which {what} does not have; its columns are: {available}. Fix or remove that entry")]
    HintColumnMissing {
        /// The hinted column.
        column: String,
        /// The source.
        what: String,
        /// Its columns.
        available: String,
    },
    /// SQLite refused the file or the query.
    #[error("SQLite {what}: {message}; {fix}")]
    Sqlite {
        /// Which database.
        what: String,
        /// SQLite's message.
        message: String,
        /// What to do.
        fix: String,
    },
    /// PostgreSQL refused the connection or the query.
    #[error("PostgreSQL {target}: {message}; {fix}")]
    Postgres {
        /// The server, without password.
        target: String,
        /// The server's or driver's message.
        message: String,
        /// What to do.
        fix: String,
    },
    /// A PostgreSQL column has a type the source cannot map.
    #[error("column `{column}` has PostgreSQL type `{type_name}`, which the source cannot map; cast it in the query, e.g. `SELECT {column}::text AS {column}` (supported: bool, int2/4/8, float4/8, numeric, text, varchar, char, name, enums, date, timestamp, timestamptz, json, jsonb, uuid)")]
    UnsupportedType {
        /// The column.
        column: String,
        /// PostgreSQL's type name.
        type_name: String,
    },
    /// The reader thread ended without a word (it panicked).
    #[error("the reader of {0} stopped unexpectedly; this is a bug, please report it")]
    Worker(String),
}

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
    let source: Box<dyn RowSource> = match cfg {
        SourceConfig::Csv(c) => Box::new(Keyed::new(csv::CsvReader::open(c)?, &c.primary_key, &c.types, true)?),
        SourceConfig::Jsonl(c) => Box::new(Keyed::new(jsonl::JsonlReader::open(c)?, &c.primary_key, &c.types, false)?),
        SourceConfig::Sqlite(c) => Box::new(Keyed::new(sqlite::open(c)?, &c.primary_key, &c.types, true)?),
        SourceConfig::Postgres(c) => Box::new(Keyed::new(postgres::open(c)?, &c.primary_key, &c.types, true)?),
    };
    Ok(source)
}

/// Groups a source's items into chunks of at most `size` (the last may be shorter). On a source
/// error the items read before it come first, then the error, then the end.
pub fn batches<S: Iterator<Item = Result<SourceItem, SourceError>>>(source: S, size: usize) -> Batches<S> {
    Batches { source, size: size.max(1), pending_error: None, done: false }
}

/// See [`batches`].
pub struct Batches<S> {
    source: S,
    size: usize,
    pending_error: Option<SourceError>,
    done: bool,
}

impl<S: Iterator<Item = Result<SourceItem, SourceError>>> Iterator for Batches<S> {
    type Item = Result<Vec<SourceItem>, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending_error.take() {
            self.done = true;
            return Some(Err(e));
        }
        if self.done {
            return None;
        }
        let mut out = Vec::with_capacity(self.size);
        while out.len() < self.size {
            match self.source.next() {
                Some(Ok(item)) => out.push(item),
                Some(Err(e)) => {
                    if out.is_empty() {
                        self.done = true;
                        return Some(Err(e));
                    }
                    self.pending_error = Some(e);
                    return Some(Ok(out));
                }
                None => {
                    self.done = true;
                    break;
                }
            }
        }
        if out.is_empty() {
            None
        } else {
            Some(Ok(out))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Internals shared by the readers.

/// A record as a reader produced it, before hints and key checks.
pub(crate) struct RawRecord {
    /// 1-based record ordinal.
    pub record: u64,
    /// 1-based file line, when there are lines.
    pub line: Option<u64>,
    /// Cells read (possibly partial when `error` is set).
    pub columns: Vec<Column>,
    /// Why the record cannot be used as read.
    pub error: Option<RecordError>,
}

/// A reader of one kind of source.
pub(crate) trait Reader: Send {
    /// Columns known when opened.
    fn columns(&self) -> &[String];
    /// For messages.
    fn describe(&self) -> &str;
    /// The next record; `None` at the end.
    fn next_record(&mut self) -> Option<Result<RawRecord, SourceError>>;
}

/// An invalid-row error for a column.
pub(crate) fn cell_error(code: ErrorCode, column: &str, message: impl Into<String>) -> RecordError {
    let mut e = RecordError::host(code, ErrorCategory::SkipRecord, message);
    e.field = Some(column.to_string());
    e
}

/// Applies hints and key checks to a reader's records.
struct Keyed<R: Reader> {
    reader: R,
    key_column: String,
    key_index: Option<usize>,
    hints: HashMap<String, TypeHint>,
    hints_by_index: Vec<Option<TypeHint>>,
    keys: KeyChecker,
    done: bool,
}

impl<R: Reader> Keyed<R> {
    fn new(reader: R, key: &str, types: &BTreeMap<String, TypeHint>, fixed_columns: bool) -> Result<Self, SourceError> {
        let cols = reader.columns();
        let available = || {
            if cols.is_empty() {
                "(none)".to_string()
            } else {
                cols.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
            }
        };
        let key_index = cols.iter().position(|c| c == key);
        // JSON Lines: checked against the first object only, and only if there is one.
        if key_index.is_none() && (fixed_columns || !cols.is_empty()) {
            return Err(SourceError::KeyColumnMissing {
                column: key.to_string(),
                what: reader.describe().to_string(),
                available: available(),
            });
        }
        if fixed_columns {
            if let Some(missing) = types.keys().find(|t| !cols.contains(t)) {
                return Err(SourceError::HintColumnMissing {
                    column: missing.clone(),
                    what: reader.describe().to_string(),
                    available: available(),
                });
            }
        }
        let hints_by_index = cols.iter().map(|c| types.get(c).copied()).collect();
        Ok(Keyed {
            key_column: key.to_string(),
            key_index,
            hints: types.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            hints_by_index,
            keys: KeyChecker::new(key),
            reader,
            done: false,
        })
    }

    fn hint(&self, index: usize, name: &str) -> Option<TypeHint> {
        if self.reader.columns().get(index).is_some_and(|c| c == name) {
            self.hints_by_index[index]
        } else {
            self.hints.get(name).copied()
        }
    }

    fn process(&mut self, raw: RawRecord) -> SourceItem {
        let RawRecord { record, line, mut columns, error } = raw;
        let invalid = |key: Option<String>, error: RecordError| SourceItem::Invalid(InvalidRow { record, line, key, error });
        let where_ = match line {
            Some(l) => format!("line {l}"),
            None => format!("record {record}"),
        };
        let key_pos = match self.key_index {
            Some(i) if columns.get(i).is_some_and(|c| c.name == self.key_column) => Some(i),
            _ => columns.iter().position(|c| c.name == self.key_column),
        };
        // 1. The key, typed by its hint.
        let key_cell = match key_pos {
            Some(i) => {
                let cell = std::mem::replace(&mut columns[i].value, Cell::Null);
                match self.hint(i, &self.key_column) {
                    Some(h) => convert::coerce(cell, h),
                    None => Ok(cell),
                }
            }
            None => Ok(Cell::Null),
        };
        let key_cell = match key_cell {
            Ok(c) => c,
            Err(reason) => {
                let e = error.unwrap_or_else(|| {
                    cell_error(ErrorCode::InvalidValue, &self.key_column, format!("{where_}, column `{}`: {reason}", self.key_column))
                });
                return invalid(None, e);
            }
        };
        let key = self.keys.key_text(&key_cell).ok();
        // 2. A reader error (bad encoding, bad line): report it with the key, and remember the key
        //    so a later row repeating it is still a duplicate.
        if let Some(e) = error {
            if let Some(k) = &key {
                let _ = self.keys.remember(k);
            }
            return invalid(key, e);
        }
        // 3. Missing and duplicate keys.
        let key = match self.keys.key_text(&key_cell) {
            Ok(k) => k,
            Err(mut e) => {
                e.message = format!("{where_}: {}", e.message);
                return invalid(None, e);
            }
        };
        if let Err(mut e) = self.keys.remember(&key) {
            e.message = format!("{where_}: {}", e.message);
            return invalid(Some(key), e);
        }
        if let Some(i) = key_pos {
            columns[i].value = key_cell;
        }
        // 4. Hints on the other columns.
        for (i, col) in columns.iter_mut().enumerate() {
            if Some(i) == key_pos {
                continue;
            }
            let hint = if self.reader.columns().get(i).is_some_and(|c| *c == col.name) {
                self.hints_by_index[i]
            } else {
                self.hints.get(&col.name).copied()
            };
            if let Some(h) = hint {
                let cell = std::mem::replace(&mut col.value, Cell::Null);
                match convert::coerce(cell, h) {
                    Ok(c) => col.value = c,
                    Err(reason) => {
                        let e = cell_error(
                            ErrorCode::InvalidValue,
                            &col.name,
                            format!("{where_}, column `{}`: {reason} (declared `{}` in `types`)", col.name, hint_name(h)),
                        );
                        return invalid(Some(key), e);
                    }
                }
            }
        }
        SourceItem::Row(Row { key, columns })
    }
}

fn hint_name(h: TypeHint) -> &'static str {
    match h {
        TypeHint::Text => "text",
        TypeHint::Integer => "integer",
        TypeHint::Float => "float",
        TypeHint::Boolean => "boolean",
        TypeHint::Timestamp => "timestamp",
        TypeHint::Json => "json",
    }
}

impl<R: Reader> Iterator for Keyed<R> {
    type Item = Result<SourceItem, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.reader.next_record() {
            None => {
                self.done = true;
                None
            }
            Some(Err(e)) => {
                self.done = true;
                Some(Err(e))
            }
            Some(Ok(raw)) => Some(Ok(self.process(raw))),
        }
    }
}

impl<R: Reader> RowSource for Keyed<R> {
    fn columns(&self) -> &[String] {
        self.reader.columns()
    }
    fn describe(&self) -> &str {
        self.reader.describe()
    }
    fn primary_key(&self) -> &str {
        &self.key_column
    }
    fn keys_seen(&self) -> usize {
        self.keys.len()
    }
    fn into_keys(self: Box<Self>) -> KeyChecker {
        self.keys
    }
}

/// A reader fed by a worker thread through a bounded channel of chunks.
pub(crate) struct ChannelReader {
    columns: Vec<String>,
    describe: String,
    rx: std::sync::mpsc::Receiver<Vec<Result<RawRecord, SourceError>>>,
    current: std::vec::IntoIter<Result<RawRecord, SourceError>>,
    finished: bool,
}

/// What a worker says first: its columns, or why it could not start.
pub(crate) type Ready = Result<Vec<String>, SourceError>;

impl ChannelReader {
    /// Starts `work` on a thread; it must send `Ready` on its first channel before any chunk.
    pub(crate) fn spawn<F>(describe: String, work: F) -> Result<Self, SourceError>
    where
        F: FnOnce(std::sync::mpsc::SyncSender<Ready>, std::sync::mpsc::SyncSender<Vec<Result<RawRecord, SourceError>>>)
            + Send
            + 'static,
    {
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        std::thread::Builder::new()
            .name("source-reader".into())
            .spawn(move || work(ready_tx, tx))
            .map_err(|e| SourceError::Config(format!("cannot start the reader thread: {e}")))?;
        let columns = match ready_rx.recv() {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(SourceError::Worker(describe)),
        };
        Ok(ChannelReader { columns, describe, rx, current: Vec::new().into_iter(), finished: false })
    }
}

impl Reader for ChannelReader {
    fn columns(&self) -> &[String] {
        &self.columns
    }
    fn describe(&self) -> &str {
        &self.describe
    }
    fn next_record(&mut self) -> Option<Result<RawRecord, SourceError>> {
        loop {
            if let Some(r) = self.current.next() {
                return Some(r);
            }
            if self.finished {
                return None;
            }
            match self.rx.recv() {
                Ok(chunk) if chunk.is_empty() => {
                    // An empty chunk is the worker's "done".
                    self.finished = true;
                    return None;
                }
                Ok(chunk) => self.current = chunk.into_iter(),
                Err(_) => {
                    self.finished = true;
                    return Some(Err(SourceError::Worker(self.describe.clone())));
                }
            }
        }
    }
}

/// Opens a file or, for `-`, standard input.
pub(crate) fn open_input(path: &std::path::Path) -> Result<Box<dyn std::io::Read + Send>, SourceError> {
    if path.as_os_str() == "-" {
        Ok(Box::new(std::io::stdin()))
    } else {
        std::fs::File::open(path)
            .map(|f| Box::new(f) as Box<dyn std::io::Read + Send>)
            .map_err(|source| SourceError::Open { path: path.display().to_string(), source })
    }
}
