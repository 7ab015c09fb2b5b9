//! The `[source]` section of a job file: which warehouse, which query or file, the key column
//! and the type hints.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::source::{redact_connection_string, InputBudget};

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
    /// Size caps on cells, rows and planning chunks (`[source.budget]`); defaults when left out.
    #[serde(default, skip_serializing_if = "InputBudget::is_default")]
    pub budget: InputBudget,
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
    /// Size caps on cells, rows and planning chunks (`[source.budget]`); defaults when left out.
    #[serde(default, skip_serializing_if = "InputBudget::is_default")]
    pub budget: InputBudget,
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
    /// Size caps on cells, rows and planning chunks (`[source.budget]`); defaults when left out.
    #[serde(default, skip_serializing_if = "InputBudget::is_default")]
    pub budget: InputBudget,
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
    /// Size caps on cells, rows and planning chunks (`[source.budget]`); defaults when left out.
    #[serde(default, skip_serializing_if = "InputBudget::is_default")]
    pub budget: InputBudget,
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
            .field("budget", &self.budget)
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
/// [source.budget]           # optional size caps, see `InputBudget`
/// max_cell_bytes = 65536
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

    /// The size caps on cells, rows and planning chunks.
    pub fn budget(&self) -> &InputBudget {
        match self {
            SourceConfig::Csv(c) => &c.budget,
            SourceConfig::Jsonl(c) => &c.budget,
            SourceConfig::Sqlite(c) => &c.budget,
            SourceConfig::Postgres(c) => &c.budget,
        }
    }

    /// The size caps, to change (e.g. from settings outside `[source]`).
    pub fn budget_mut(&mut self) -> &mut InputBudget {
        match self {
            SourceConfig::Csv(c) => &mut c.budget,
            SourceConfig::Jsonl(c) => &mut c.budget,
            SourceConfig::Sqlite(c) => &mut c.budget,
            SourceConfig::Postgres(c) => &mut c.budget,
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

