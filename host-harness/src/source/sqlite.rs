//! SQLite: a database file (opened read-only) and one query, stepped on a worker thread.
//!
//! Types follow each value's storage class: NULL → NULL, INTEGER → integer, REAL → float,
//! TEXT → text, BLOB → an invalid row naming the column (cast it in the query, e.g. `hex(col)`).
//! The declared type of a result column refines that: `DATETIME`/`TIMESTAMP` → timestamp (text
//! normalized to RFC 3339, an integer read as Unix seconds, a real as a Julian day), `JSON` →
//! JSON (validated), `BOOL`/`BOOLEAN` → boolean (0/1 or true/false text). `DATE` stays text.
//!
//! Size caps: a value's size is read from SQLite's own buffer before it is copied, so a cell
//! over `max_cell_bytes` is never copied; the row (the sum of its values) is checked against
//! `max_row_bytes`. Either makes the row invalid, naming the record and, for a cell, the column.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::convert::{canonical_json, julian_day_to_rfc3339, normalize_timestamp, parse_bool, unix_seconds_to_rfc3339};
use super::budget::Origin;
use super::{cell_error, ChannelReader, RawRecord, SourceError, SqliteConfig, DEFAULT_BATCH_SIZE};
use crate::contract::model::{Cell, Column, ErrorCode};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Declared {
    Plain,
    Timestamp,
    Json,
    Boolean,
}

fn declared(decl: Option<&str>) -> Declared {
    let Some(d) = decl else { return Declared::Plain };
    let d = d.to_ascii_uppercase();
    if d.contains("DATETIME") || d.contains("TIMESTAMP") {
        Declared::Timestamp
    } else if d == "JSON" || d == "JSONB" {
        Declared::Json
    } else if d.starts_with("BOOL") {
        Declared::Boolean
    } else {
        Declared::Plain
    }
}

/// A value's size as the budget counts it, read without copying.
fn value_bytes(value: ValueRef<'_>) -> usize {
    match value {
        ValueRef::Null => 0,
        ValueRef::Integer(_) | ValueRef::Real(_) => 8,
        ValueRef::Text(b) | ValueRef::Blob(b) => b.len(),
    }
}

fn convert(value: ValueRef<'_>, declared: Declared) -> Result<Cell, String> {
    Ok(match (value, declared) {
        (ValueRef::Null, _) => Cell::Null,
        (ValueRef::Integer(i), Declared::Timestamp) => Cell::Timestamp(unix_seconds_to_rfc3339(i)?),
        (ValueRef::Integer(0), Declared::Boolean) => Cell::Boolean(false),
        (ValueRef::Integer(1), Declared::Boolean) => Cell::Boolean(true),
        (ValueRef::Integer(i), Declared::Boolean) => return Err(format!("{i} is not a boolean (expected 0 or 1)")),
        (ValueRef::Integer(i), _) => Cell::Integer(i),
        (ValueRef::Real(f), Declared::Timestamp) => Cell::Timestamp(julian_day_to_rfc3339(f)?),
        (ValueRef::Real(f), _) if !f.is_finite() => return Err(format!("{f} is not a finite number")),
        (ValueRef::Real(f), _) => Cell::Float(f),
        (ValueRef::Text(bytes), d) => {
            let s = std::str::from_utf8(bytes)
                .map_err(|_| "the text is not valid UTF-8; fix the stored value or cast it in the query".to_string())?;
            match d {
                Declared::Timestamp => Cell::Timestamp(normalize_timestamp(s)?),
                Declared::Json => Cell::Json(canonical_json(s)?),
                Declared::Boolean => Cell::Boolean(parse_bool(s)?),
                Declared::Plain => Cell::Text(s.to_string()),
            }
        }
        (ValueRef::Blob(_), _) => return Err(String::new()),
    })
}

/// Opens the database, prepares the query and starts streaming it.
pub(crate) fn open(cfg: &SqliteConfig) -> Result<ChannelReader, SourceError> {
    let describe = format!("query on {}", cfg.path.display());
    let path = cfg.path.clone();
    let query = cfg.query.clone();
    let batch = cfg.batch_size.unwrap_or(DEFAULT_BATCH_SIZE).max(1);
    let budget = cfg.budget;
    let what = format!("database {}", cfg.path.display());
    if !path.exists() {
        return Err(SourceError::Sqlite {
            what,
            message: "the file does not exist".into(),
            fix: "check `path` (the source never creates a database)".into(),
        });
    }
    ChannelReader::spawn(describe, move |ready, tx| {
        let fail = |message: String, fix: &str| SourceError::Sqlite { what: what.clone(), message, fix: fix.to_string() };
        let conn = match Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX) {
            Ok(c) => c,
            Err(e) => {
                let _ = ready.send(Err(fail(e.to_string(), "check `path` points to an SQLite database")));
                return;
            }
        };
        let _ = conn.busy_timeout(std::time::Duration::from_secs(10));
        let mut stmt = match conn.prepare(&query) {
            Ok(s) => s,
            Err(e) => {
                let _ = ready.send(Err(fail(e.to_string(), "fix `query`: one SELECT statement, tables and columns as in the database")));
                return;
            }
        };
        if stmt.parameter_count() > 0 {
            let _ = ready.send(Err(fail(
                format!("the query has {} parameter(s)", stmt.parameter_count()),
                "write the values into `query` instead of `?` placeholders",
            )));
            return;
        }
        let cols: Vec<(String, Declared)> = stmt.columns().iter().map(|c| (c.name().to_string(), declared(c.decl_type()))).collect();
        let mut seen = std::collections::HashSet::new();
        if let Some((dup, _)) = cols.iter().find(|(n, _)| !seen.insert(n.clone())) {
            let _ = ready.send(Err(fail(
                format!("the query returns two columns named `{dup}`"),
                "give every column a distinct name with `AS`",
            )));
            return;
        }
        if ready.send(Ok(cols.iter().map(|(n, _)| n.clone()).collect())).is_err() {
            return;
        }
        let mut rows = match stmt.query([]) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(vec![Err(fail(e.to_string(), "fix `query`"))]);
                return;
            }
        };
        let mut chunk = Vec::with_capacity(batch);
        let mut record = 0u64;
        loop {
            match rows.next() {
                Ok(Some(row)) => {
                    record += 1;
                    let mut columns = Vec::with_capacity(cols.len());
                    let mut error = None;
                    let mut row_bytes = 0usize;
                    let at = format!("record {record}");
                    for (i, (name, decl)) in cols.iter().enumerate() {
                        let value = match row.get_ref(i) {
                            Ok(v) => v,
                            Err(e) => {
                                let _ = tx.send(vec![Err(fail(e.to_string(), "this is unexpected; check the database"))]);
                                return;
                            }
                        };
                        let len = value_bytes(value);
                        row_bytes = row_bytes.saturating_add(len);
                        if let Some(e) = budget.check_cell(&at, name, len, Origin::Query) {
                            error = error.or(Some(e));
                            columns.push(Column { name: name.clone(), value: Cell::Null });
                            continue;
                        }
                        let is_blob = matches!(value, ValueRef::Blob(_));
                        let cell = match convert(value, *decl) {
                            Ok(c) => c,
                            Err(reason) => {
                                if error.is_none() {
                                    error = Some(if is_blob {
                                        cell_error(
                                            ErrorCode::WrongType,
                                            name,
                                            format!("record {record}, column `{name}`: holds a BLOB, which cannot be sent; cast it in the query, e.g. `hex({name}) AS {name}` or `CAST({name} AS TEXT) AS {name}`"),
                                        )
                                    } else {
                                        cell_error(ErrorCode::InvalidValue, name, format!("record {record}, column `{name}`: {reason}"))
                                    });
                                }
                                Cell::Null
                            }
                        };
                        columns.push(Column { name: name.clone(), value: cell });
                    }
                    let error = error.or_else(|| budget.check_row(&at, row_bytes, Origin::Query));
                    chunk.push(Ok(RawRecord { record, line: None, columns, error }));
                    if chunk.len() >= batch && tx.send(std::mem::replace(&mut chunk, Vec::with_capacity(batch))).is_err() {
                        return; // the consumer is gone
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    chunk.push(Err(fail(e.to_string(), "the query failed while running; check it in the sqlite3 shell")));
                    let _ = tx.send(chunk);
                    return;
                }
            }
        }
        if !chunk.is_empty() && tx.send(chunk).is_err() {
            return;
        }
        let _ = tx.send(Vec::new());
    })
}
