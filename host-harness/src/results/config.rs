//! The job file's `[results]` section:
//!
//! ```toml
//! [results]
//! table = "gladly_sync_results"      # in the source database (a sqlite or postgres source)
//! # or
//! jsonl = "results/gladly.jsonl"     # a JSON Lines file, relative to the job file
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ResultsError;
use crate::source::{PostgresConfig, SourceConfig};

/// `[results]`: exactly one of `table` and `jsonl`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsConfig {
    /// A table in the source database: `name` or `schema.name` (PostgreSQL), created if missing.
    #[serde(default)]
    pub table: Option<String>,
    /// A JSON Lines file, appended to; created if missing.
    #[serde(default)]
    pub jsonl: Option<PathBuf>,
}

/// Where results go, checked against the job's source.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// A table in the source's SQLite file.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The table, as validated.
        table: TableName,
    },
    /// A table in the source's PostgreSQL database.
    Postgres {
        /// The source's connection settings.
        source: Box<PostgresConfig>,
        /// The table, as validated.
        table: TableName,
    },
    /// A JSON Lines file.
    Jsonl {
        /// The file.
        path: PathBuf,
    },
}

impl ResultsConfig {
    /// Make relative paths relative to the job file's folder.
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(p) = self.jsonl.as_mut().filter(|p| p.is_relative()) {
            *p = base.join(&*p);
        }
    }

    /// Where this section sends results for a job reading `source`.
    pub fn target(&self, source: &SourceConfig) -> Result<TargetSpec, ResultsError> {
        match (&self.table, &self.jsonl) {
            (Some(_), Some(_)) => Err(ResultsError::Config("set either `table` or `jsonl`, not both".into())),
            (None, None) => Err(ResultsError::Config(
                "say where results go: `table = \"gladly_sync_results\"` (in the source database) or `jsonl = \"results.jsonl\"`".into(),
            )),
            (None, Some(path)) => Ok(TargetSpec::Jsonl { path: path.clone() }),
            (Some(table), None) => {
                let table = TableName::parse(table)?;
                match source {
                    SourceConfig::Sqlite(c) => {
                        if table.schema.is_some() {
                            return Err(ResultsError::Config(format!(
                                "`table = \"{table}\"` names a schema; an SQLite results table is a plain name such as `gladly_sync_results`"
                            )));
                        }
                        Ok(TargetSpec::Sqlite { path: c.path.clone(), table })
                    }
                    SourceConfig::Postgres(c) => Ok(TargetSpec::Postgres { source: Box::new(c.clone()), table }),
                    other => Err(ResultsError::Config(format!(
                        "`table` writes into the source database, and this job reads a {} file; use `jsonl = \"results.jsonl\"` instead",
                        other.kind()
                    ))),
                }
            }
        }
    }
}

/// A table name the operator chose: `name` or `schema.name`, each part a plain SQL identifier
/// (letters, digits and `_`, not starting with a digit, at most 63 bytes). Always quoted when
/// used, so it is taken exactly as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// The schema, if named.
    pub schema: Option<String>,
    /// The table.
    pub name: String,
}

impl TableName {
    /// Check a table name from the job file.
    pub fn parse(s: &str) -> Result<TableName, ResultsError> {
        let parts: Vec<&str> = s.split('.').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.len() <= 63
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !p.as_bytes()[0].is_ascii_digit()
        };
        let bad = || {
            ResultsError::Config(format!(
                "`table = \"{s}\"` is not a plain table name; use letters, digits and `_` (not starting with a digit), optionally `schema.table`"
            ))
        };
        match parts.as_slice() {
            [name] if ok(name) => Ok(TableName { schema: None, name: name.to_string() }),
            [schema, name] if ok(schema) && ok(name) => Ok(TableName { schema: Some(schema.to_string()), name: name.to_string() }),
            _ => Err(bad()),
        }
    }

    /// The name quoted for SQL (`"schema"."name"`).
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(s) => format!("\"{s}\".\"{}\"", self.name),
            None => format!("\"{}\"", self.name),
        }
    }

    /// An index name derived from the table's.
    pub fn quoted_index(&self, suffix: &str) -> String {
        format!("\"{}_{suffix}\"", self.name)
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(toml_text: &str) -> SourceConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn sqlite() -> SourceConfig {
        source("kind = \"sqlite\"\npath = \"w.sqlite\"\nquery = \"SELECT 1\"\nprimary_key = \"id\"")
    }

    fn csv() -> SourceConfig {
        source("kind = \"csv\"\npath = \"w.csv\"\nprimary_key = \"id\"")
    }

    fn config(table: Option<&str>, jsonl: Option<&str>) -> ResultsConfig {
        ResultsConfig { table: table.map(str::to_string), jsonl: jsonl.map(PathBuf::from) }
    }

    #[test]
    fn a_table_goes_into_an_sqlite_source_and_a_file_goes_anywhere() {
        assert!(matches!(config(Some("sync_results"), None).target(&sqlite()), Ok(TargetSpec::Sqlite { .. })));
        assert!(matches!(config(None, Some("r.jsonl")).target(&csv()), Ok(TargetSpec::Jsonl { .. })));
    }

    #[test]
    fn a_table_for_a_file_source_is_refused_with_the_jsonl_fix() {
        let e = config(Some("sync_results"), None).target(&csv()).unwrap_err().to_string();
        assert_eq!(
            e,
            "[results]: `table` writes into the source database, and this job reads a csv file; use `jsonl = \"results.jsonl\"` instead"
        );
    }

    #[test]
    fn both_or_neither_target_is_refused() {
        assert_eq!(config(Some("t"), Some("r.jsonl")).target(&sqlite()).unwrap_err().to_string(), "[results]: set either `table` or `jsonl`, not both");
        assert!(config(None, None).target(&sqlite()).unwrap_err().to_string().starts_with("[results]: say where results go"));
    }

    #[test]
    fn table_names_are_plain_identifiers() {
        assert_eq!(TableName::parse("analytics.gladly_results").unwrap().quoted(), "\"analytics\".\"gladly_results\"");
        for bad in ["", "a b", "t;drop table x", "1table", "a.b.c", "x\"y", "a."] {
            assert!(TableName::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn an_sqlite_table_cannot_name_a_schema() {
        let e = config(Some("main.results"), None).target(&sqlite()).unwrap_err().to_string();
        assert!(e.contains("an SQLite results table is a plain name"), "{e}");
    }
}
