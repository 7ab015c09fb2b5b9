//! A results table in the source's SQLite file.
//!
//! The source query streams through its own read transaction for the whole run. In a rollback
//! journal database a writer cannot commit while that reader is open, so results would wait for
//! the end of the read; in WAL mode readers and the writer do not block each other. The target
//! therefore requires WAL mode and refuses to open otherwise, naming the one-time fix: it does
//! not switch the operator's database itself.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, params};

use super::{Target, column_names, create_table, shape_fix};
use crate::results::config::TableName;
use crate::results::{ResultRow, ResultsError};

/// An open SQLite results table.
pub struct SqliteTarget {
    conn: Connection,
    table: TableName,
    what: String,
}

impl SqliteTarget {
    /// Open `path` read-write (never creating it), check WAL mode, create the table if missing.
    pub fn open(path: &Path, table: &TableName) -> Result<SqliteTarget, ResultsError> {
        let what = format!("table `{table}` in {}", path.display());
        let fail = |message: String, fix: &str| ResultsError::Target { target: what.clone(), message, fix: fix.to_string() };
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| fail(e.to_string(), "the results table lives in the source database: check that the file exists and is writable"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| fail(e.to_string(), "check the file"))?;
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(|e| fail(e.to_string(), "check the file"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(fail(
                format!("the database is in `{mode}` journal mode, where results cannot be written while the source query reads"),
                &format!(
                    "switch it to WAL once (`sqlite3 {} 'PRAGMA journal_mode=WAL'`), or write results to a file with `[results] jsonl = \"results.jsonl\"`",
                    path.display()
                ),
            ));
        }
        let t = table.quoted();
        conn.execute_batch(&create_table(&t, |c| c.sqlite))
            .map_err(|e| fail(e.to_string(), "check that the file is writable"))?;
        // The shape is checked before the index, which names the columns.
        conn.prepare(&format!("SELECT {} FROM {t} LIMIT 0", column_names()))
            .map_err(|e| fail(format!("the existing table does not fit: {e}"), &shape_fix(&table.to_string())))?;
        conn.execute_batch(&format!("CREATE INDEX IF NOT EXISTS {} ON {t} (sync_id, row_key, recorded_at)", table.quoted_index("by_row")))
            .map_err(|e| fail(e.to_string(), "check that the file is writable"))?;
        Ok(SqliteTarget { conn, table: table.clone(), what })
    }
}

impl Target for SqliteTarget {
    fn describe(&self) -> String {
        self.what.clone()
    }

    fn write(&mut self, rows: &[ResultRow]) -> Result<(), ResultsError> {
        let what = self.what.clone();
        let fail = |e: rusqlite::Error| ResultsError::Target { target: what.clone(), message: e.to_string(), fix: "check the database file and the disk".into() };
        let tx = self.conn.transaction().map_err(fail)?;
        {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "INSERT INTO {} ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                     ON CONFLICT (result_id) DO NOTHING",
                    self.table.quoted(),
                    column_names()
                ))
                .map_err(fail)?;
            for r in rows {
                stmt.execute(params![
                    r.result_id,
                    r.sync_id,
                    r.run_id,
                    r.row_key,
                    r.outcome,
                    r.gladly_id,
                    r.error_code,
                    r.category,
                    r.field,
                    r.message,
                    r.http_status,
                    r.attempts,
                    r.retried_next_run,
                    r.recorded_at
                ])
                .map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> TableName {
        TableName::parse("sync_results").unwrap()
    }

    #[test]
    fn a_database_outside_wal_mode_is_refused_with_the_fix() {
        let dir = test_kit::TempDir::new("results-sqlite");
        let path = dir.join("w.sqlite");
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE customers (id TEXT)").unwrap();
        let e = SqliteTarget::open(&path, &table()).err().unwrap().to_string();
        assert!(e.contains("is in `delete` journal mode") && e.contains("PRAGMA journal_mode=WAL"), "{e}");
    }

    #[test]
    fn a_table_of_another_shape_is_refused_and_left_alone() {
        let dir = test_kit::TempDir::new("results-sqlite");
        let path = dir.join("w.sqlite");
        let c = Connection::open(&path).unwrap();
        c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).unwrap();
        c.execute_batch("CREATE TABLE sync_results (id TEXT); INSERT INTO sync_results VALUES ('x');").unwrap();
        let e = SqliteTarget::open(&path, &table()).err().unwrap().to_string();
        assert!(e.contains("the existing table does not fit") && e.contains("drop or rename the existing `sync_results`"), "{e}");
        let kept: String = c.query_row("SELECT id FROM sync_results", [], |r| r.get(0)).unwrap();
        assert_eq!(kept, "x");
    }

    #[test]
    fn a_result_id_already_held_is_not_written_twice() {
        let dir = test_kit::TempDir::new("results-sqlite");
        let path = dir.join("w.sqlite");
        Connection::open(&path).unwrap().query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).unwrap();
        let mut t = SqliteTarget::open(&path, &table()).unwrap();
        let mut stamp = crate::results::ResultStamp::new("s", 1);
        let a = stamp.confirmed("k1", crate::contract::model::Outcome::Created, Some("g1"), 1);
        let b = stamp.confirmed("k2", crate::contract::model::Outcome::Created, Some("g2"), 1);
        t.write(std::slice::from_ref(&a)).unwrap();
        t.write(&[a, b]).unwrap();
        let keys: Vec<String> =
            t.conn.prepare("SELECT row_key FROM sync_results ORDER BY row_key").unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        assert_eq!(keys, ["k1", "k2"]);
    }
}
