//! A results table in the source's PostgreSQL database, written through its own connection
//! (the source reads through another, in a read-only transaction). Rows go in one multi-row
//! `INSERT … ON CONFLICT (result_id) DO NOTHING` per batch, in one transaction.
//!
//! The `postgres` crate runs its own runtime: a target lives on the shipper's thread, never on
//! the host's async threads.

use postgres::types::ToSql;
use postgres::{Client, NoTls};

use super::{Target, column_names, create_table, shape_fix};
use crate::results::config::TableName;
use crate::results::{ResultRow, ResultsError};
use crate::source::PostgresConfig;

/// Rows per `INSERT` statement (14 parameters each, under PostgreSQL's 65,535).
const ROWS_PER_STATEMENT: usize = 500;

/// An open PostgreSQL results table.
pub struct PostgresTarget {
    client: Client,
    table: TableName,
    what: String,
}

impl PostgresTarget {
    /// Connect with the source's connection string and create the table if missing.
    pub fn open(source: &PostgresConfig, table: &TableName) -> Result<PostgresTarget, ResultsError> {
        let (pg, server) = crate::source::postgres_connection(source).map_err(|e| ResultsError::Config(e.to_string()))?;
        let what = format!("table `{table}` on {server}");
        let fail = |message: String, fix: &str| ResultsError::Target { target: what.clone(), message, fix: fix.to_string() };
        let mut client = pg
            .connect(NoTls)
            .map_err(|e| fail(e.to_string(), "the results table lives in the source database: check that the server accepts the connection"))?;
        let t = table.quoted();
        client
            .batch_execute(&create_table(&t, |c| c.postgres))
            .map_err(|e| fail(db_message(&e), "grant the source's user CREATE on the schema, or create the table yourself with the documented columns"))?;
        // The shape is checked before the index, which names the columns.
        client
            .prepare(&format!("SELECT {} FROM {t} LIMIT 0", column_names()))
            .map_err(|e| fail(format!("the existing table does not fit: {}", db_message(&e)), &shape_fix(&table.to_string())))?;
        client
            .batch_execute(&format!("CREATE INDEX IF NOT EXISTS {} ON {t} (sync_id, row_key, recorded_at)", table.quoted_index("by_row")))
            .map_err(|e| fail(db_message(&e), "grant the source's user CREATE on the schema"))?;
        Ok(PostgresTarget { client, table: table.clone(), what })
    }
}

/// The server's own message when there is one (the driver's `Display` says only "db error").
fn db_message(e: &postgres::Error) -> String {
    e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string())
}

impl Target for PostgresTarget {
    fn describe(&self) -> String {
        self.what.clone()
    }

    fn write(&mut self, rows: &[ResultRow]) -> Result<(), ResultsError> {
        let what = self.what.clone();
        let fail = |e: postgres::Error| ResultsError::Target { target: what.clone(), message: db_message(&e), fix: "check the server and the table".into() };
        let mut tx = self.client.transaction().map_err(fail)?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            // Owned parameter values per row, in column order.
            let values: Vec<[Box<dyn ToSql + Sync>; 14]> = chunk
                .iter()
                .map(|r| -> [Box<dyn ToSql + Sync>; 14] {
                    [
                        Box::new(r.result_id.clone()),
                        Box::new(r.sync_id.clone()),
                        Box::new(r.run_id),
                        Box::new(r.row_key.clone()),
                        Box::new(r.outcome.clone()),
                        Box::new(r.gladly_id.clone()),
                        Box::new(r.error_code.clone()),
                        Box::new(r.category.clone()),
                        Box::new(r.field.clone()),
                        Box::new(r.message.clone()),
                        Box::new(r.http_status.map(i32::from)),
                        Box::new(i32::try_from(r.attempts).unwrap_or(i32::MAX)),
                        Box::new(r.retried_next_run),
                        Box::new(r.recorded_at.clone()),
                    ]
                })
                .collect();
            let tuples: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p: Vec<String> = (1..=14)
                        .map(|c| {
                            let n = i * 14 + c;
                            // recorded_at travels as text and is read as a timestamp by the server.
                            if c == 14 { format!("${n}::text::timestamptz") } else { format!("${n}") }
                        })
                        .collect();
                    format!("({})", p.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {} ON CONFLICT (result_id) DO NOTHING",
                self.table.quoted(),
                column_names(),
                tuples.join(", ")
            );
            let params: Vec<&(dyn ToSql + Sync)> = values.iter().flat_map(|row| row.iter().map(|b| b.as_ref())).collect();
            tx.execute(&sql, &params).map_err(fail)?;
        }
        tx.commit().map_err(fail)
    }
}
