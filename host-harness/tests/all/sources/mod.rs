//! Sources against real files, a real SQLite database and a real PostgreSQL server
//! (`HOST_HARNESS_PG_URL`, default `postgresql://postgres@127.0.0.1:5432/test`; each test makes
//! and drops its own schema).
//!
//! One module per kind of source (and for the configuration, the key checks and the sample
//! warehouse); the helpers below are shared by all of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use host_harness::contract::model::{Cell, ErrorCode, Row};
use host_harness::source::{
    self, batches, CsvConfig, InputBudget, InvalidRow, JsonlConfig, PostgresConfig, SourceConfig, SourceError, SourceItem, SqliteConfig,
    TypeHint,
};
use test_kit::TempDir;
use test_kit::postgres::url as pg_url;

mod config;
mod csv;
mod jsonl;
mod keys;
mod postgres;
mod sqlite;
mod warehouse;

// ---------------------------------------------------------------------------------------------
// helpers

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn types(pairs: &[(&str, TypeHint)]) -> BTreeMap<String, TypeHint> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn csv_cfg(path: &Path, key: &str, hints: &[(&str, TypeHint)]) -> SourceConfig {
    SourceConfig::Csv(CsvConfig { path: path.to_path_buf(), primary_key: key.into(), types: types(hints), delimiter: None, budget: InputBudget::default() })
}

fn jsonl_cfg(path: &Path, key: &str, hints: &[(&str, TypeHint)]) -> SourceConfig {
    SourceConfig::Jsonl(JsonlConfig { path: path.to_path_buf(), primary_key: key.into(), types: types(hints), budget: InputBudget::default() })
}

fn sqlite_cfg(path: &Path, query: &str, key: &str, hints: &[(&str, TypeHint)]) -> SourceConfig {
    SourceConfig::Sqlite(SqliteConfig {
        path: path.to_path_buf(),
        query: query.into(),
        primary_key: key.into(),
        types: types(hints),
        batch_size: None,
        budget: InputBudget::default(),
    })
}

fn all(cfg: &SourceConfig) -> Vec<SourceItem> {
    source::open(cfg).unwrap_or_else(|e| panic!("open failed: {e}")).map(|r| r.unwrap_or_else(|e| panic!("source error: {e}"))).collect()
}

fn rows(items: &[SourceItem]) -> Vec<&Row> {
    items.iter().filter_map(|i| if let SourceItem::Row(r) = i { Some(r) } else { None }).collect()
}

fn invalid(items: &[SourceItem]) -> Vec<&InvalidRow> {
    items.iter().filter_map(|i| if let SourceItem::Invalid(r) = i { Some(r) } else { None }).collect()
}

fn cell<'a>(row: &'a Row, col: &str) -> &'a Cell {
    &row.columns.iter().find(|c| c.name == col).unwrap_or_else(|| panic!("no column {col} in {row:?}")).value
}

fn open_err(cfg: &SourceConfig) -> SourceError {
    match source::open(cfg) {
        Ok(_) => panic!("open should fail"),
        Err(e) => e,
    }
}

/// The hints that make every sample file type its cells like the SQLite warehouse does.
const SAMPLE_HINTS: &[(&str, TypeHint)] = &[
    ("id", TypeHint::Integer),
    ("lifetime_value", TypeHint::Float),
    ("is_vip", TypeHint::Boolean),
    ("last_order_at", TypeHint::Timestamp),
    ("preferences", TypeHint::Json),
];


/// `cfg` with its size caps set (the chunk size left at its default).
fn with_budget(mut cfg: SourceConfig, max_cell_bytes: usize, max_row_bytes: usize) -> SourceConfig {
    *cfg.budget_mut() = InputBudget { max_cell_bytes, max_row_bytes, ..InputBudget::default() };
    cfg
}

/// The keys of the rows, in order.
fn keys<'a>(items: &'a [SourceItem]) -> Vec<&'a str> {
    rows(items).iter().map(|r| r.key.as_str()).collect()
}

/// 65 KiB of text: one KiB over the default 64 KiB cell cap.
fn over_default_cell() -> String {
    "x".repeat(65 * 1024)
}
