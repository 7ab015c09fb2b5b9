//! The results outbox: result rows written in the same transaction as the state they describe,
//! kept until the results shipper has delivered them to the operator's table and deletes them.
//! Rows are opaque JSON text here; their shape belongs to [`crate::results`].

use rusqlite::params;

use crate::state::batches::{BatchInner, sqlite_err};
use crate::state::postgres::PgOp;
use crate::state::{StateError, SyncBatch, SyncState};

impl SyncBatch<'_> {
    /// Queue one result row (JSON) with this batch's writes: it becomes visible to the shipper
    /// only when the batch commits, so a result is never ahead of the state it reports.
    pub fn queue_result(&mut self, result: &str) -> Result<(), StateError> {
        let tx = match &mut self.inner {
            BatchInner::Sqlite(tx) => tx,
            BatchInner::Postgres { ops, .. } => {
                ops.push(PgOp::Result { json: result.to_string() });
                return Ok(());
            }
        };
        let mut stmt = tx
            .prepare_cached("INSERT INTO results_outbox (sync_id, result) VALUES (?1, ?2)")
            .map_err(sqlite_err(&self.path, "preparing a result write"))?;
        stmt.execute(params![self.sync_id, result]).map(|_| ()).map_err(sqlite_err(&self.path, "queueing a result"))
    }
}

impl SyncState<'_> {
    /// The oldest `limit` queued results of this sync, as `(seq, json)` in queue order.
    pub fn outbox_peek(&self, limit: usize) -> Result<Vec<(i64, String)>, StateError> {
        self.outbox_peek_after(0, limit)
    }

    /// Like [`Self::outbox_peek`], starting after `seq` (to page through without removing).
    pub fn outbox_peek_after(&self, seq: i64, limit: usize) -> Result<Vec<(i64, String)>, StateError> {
        let conn = match self.db.sqlite() {
            Ok(c) => c,
            Err(pg) => return pg.outbox_peek_after(self.id, seq, limit),
        };
        let mut stmt = conn
            .prepare_cached("SELECT seq, result FROM results_outbox WHERE sync_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")
            .map_err(self.db.err("preparing an outbox read"))?;
        let rows = stmt
            .query_map(params![self.id, seq, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.db.err("reading the outbox"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.db.err("reading the outbox"))
    }

    /// Forget this sync's queued results up to and including `seq`: they were delivered.
    pub fn outbox_remove_through(&self, seq: i64) -> Result<usize, StateError> {
        if let Err(pg) = self.db.sqlite() {
            return pg.outbox_remove_through(self.id, seq);
        }
        let b = self.batch()?;
        let BatchInner::Sqlite(tx) = &b.inner else { return Err(StateError::Usage("a SQLite batch was expected".into())) };
        let n = tx
            .execute("DELETE FROM results_outbox WHERE sync_id = ?1 AND seq <= ?2", params![self.id, seq])
            .map_err(sqlite_err(&b.path, "removing delivered results"))?;
        b.commit()?;
        Ok(n)
    }

    /// How many results of this sync wait to be shipped.
    pub fn outbox_len(&self) -> Result<u64, StateError> {
        let conn = match self.db.sqlite() {
            Ok(c) => c,
            Err(pg) => return pg.outbox_len(self.id),
        };
        conn
            .query_row("SELECT count(*) FROM results_outbox WHERE sync_id = ?1", [self.id], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.db.err("counting the outbox"))
    }
}

#[cfg(test)]
mod tests {
    use crate::state::State;

    #[test]
    fn queued_results_appear_only_once_their_batch_commits_and_leave_once_removed() {
        let dir = test_kit::TempDir::new("outbox");
        let state = State::open(dir.path()).unwrap();
        let sync = state.sync("s1");
        let mut b = sync.batch().unwrap();
        b.queue_result(r#"{"row_key":"a"}"#).unwrap();
        drop(b); // rolled back
        assert_eq!(sync.outbox_len().unwrap(), 0);

        let mut b = sync.batch().unwrap();
        b.queue_result(r#"{"row_key":"a"}"#).unwrap();
        b.queue_result(r#"{"row_key":"b"}"#).unwrap();
        b.commit().unwrap();
        let mut other = state.sync("other").batch().unwrap();
        other.queue_result("{}").unwrap();
        other.commit().unwrap();

        let peeked = sync.outbox_peek(10).unwrap();
        assert_eq!(peeked.iter().map(|(_, j)| j.as_str()).collect::<Vec<_>>(), [r#"{"row_key":"a"}"#, r#"{"row_key":"b"}"#]);
        assert_eq!(sync.outbox_remove_through(peeked[0].0).unwrap(), 1);
        assert_eq!(sync.outbox_peek(10).unwrap().len(), 1);
        assert_eq!(state.sync("other").outbox_len().unwrap(), 1, "another sync's results are its own");
    }
}
