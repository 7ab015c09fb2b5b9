//! What a source yields: rows to map, rows that are reported and never sent, and the errors
//! that end a source.

use crate::contract::model::{RecordError, Row, RowError};

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
    /// The key set could not spill to or read its temporary run files.
    #[error(transparent)]
    KeySpill(#[from] crate::source::keys::SpillError),
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

