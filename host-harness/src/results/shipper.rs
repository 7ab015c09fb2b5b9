//! The results shipper: one thread per run that moves committed rows from the state's outbox
//! to the target, then deletes them from the outbox.
//!
//! Started before the run sends anything: it opens the target (so a target that cannot work
//! fails the run up front) and delivers what a killed run left in the outbox. During the run the
//! recorder nudges it after each committed batch; [`Shipper::finish`] delivers the rest and
//! says how many rows went out. The first failure stops the thread and is kept for the recorder,
//! which stops the run: nothing more is sent without its result being deliverable, and
//! undelivered rows stay in the outbox for the next run.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use super::targets::{self, Target};
use super::{ResultRow, ResultsError, TargetSpec};
use crate::state::{State, StateLocation};

/// Outbox rows delivered per target write.
const ROWS_PER_WRITE: usize = 1000;

/// The running shipper of one run.
pub struct Shipper {
    nudge: Option<SyncSender<()>>,
    thread: Option<JoinHandle<Result<u64, ResultsError>>>,
    failure: Arc<OnceLock<String>>,
    target: String,
}

impl Shipper {
    /// Open the target, deliver what earlier runs left in the outbox of `sync_id`, and start
    /// waiting for nudges.
    pub fn start(spec: TargetSpec, location: StateLocation, state_dir: PathBuf, sync_id: String) -> Result<Shipper, ResultsError> {
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(String, u64), ResultsError>>(1);
        let (nudge, nudged) = mpsc::sync_channel::<()>(1);
        let failure = Arc::new(OnceLock::new());
        let failed = failure.clone();
        let thread = std::thread::Builder::new()
            .name("results-shipper".into())
            .spawn(move || {
                let mut worker = match Worker::open(&spec, &location, &state_dir, sync_id) {
                    Ok(w) => w,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return Ok(0);
                    }
                };
                match worker.replay_leftovers() {
                    Ok(n) => {
                        let _ = ready_tx.send(Ok((worker.target.describe(), n)));
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return Ok(0);
                    }
                }
                let result = worker.serve(&nudged);
                if let Err(e) = &result {
                    let _ = failed.set(e.to_string());
                }
                result
            })
            .map_err(|e| ResultsError::Config(format!("cannot start the results thread: {e}")))?;
        let (target, replayed) = match ready_rx.recv() {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => return Err(ResultsError::Config("the results thread stopped before it was ready".into())),
        };
        if replayed > 0 {
            tracing::info!(target = %target, rows = replayed, "delivered results an earlier, interrupted run left in the outbox");
        }
        Ok(Shipper { nudge: Some(nudge), thread: Some(thread), failure, target })
    }

    /// The table or file results go to.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// New rows were committed to the outbox: deliver them soon. Never blocks.
    pub fn nudge(&self) {
        if let Some(n) = &self.nudge {
            // Full: a nudge is already pending. Disconnected: the thread stopped on a failure,
            // which `failure` reports.
            let _ = n.try_send(());
        }
    }

    /// Why delivery stopped, once it has.
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    /// Deliver everything committed so far and stop; how many rows this run delivered.
    pub fn finish(mut self) -> Result<u64, ResultsError> {
        self.nudge.take();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(ResultsError::Config("the results thread panicked".into())),
            None => Ok(0),
        }
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        // A run that ends without `finish` (an error) still lets the thread deliver and stop.
        self.nudge.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The shipper thread's own state.
struct Worker {
    target: Box<dyn Target>,
    state: State,
    sync_id: String,
}

impl Worker {
    fn open(spec: &TargetSpec, location: &StateLocation, state_dir: &std::path::Path, sync_id: String) -> Result<Worker, ResultsError> {
        let target = targets::open(spec)?;
        let state = location.open(state_dir)?;
        Ok(Worker { target, state, sync_id })
    }

    /// Rows an interrupted run committed but did not deliver (some may already be in the
    /// target): tell the target which, then deliver them.
    fn replay_leftovers(&mut self) -> Result<u64, ResultsError> {
        let sync = self.state.sync(&self.sync_id);
        if sync.outbox_len()? == 0 {
            return Ok(0);
        }
        let mut ids = HashSet::new();
        let mut after = 0;
        loop {
            // Read ids in pages without removing anything.
            let page = sync.outbox_peek_after(after, ROWS_PER_WRITE)?;
            let Some((last, _)) = page.last() else { break };
            after = *last;
            for (_, json) in &page {
                ids.insert(parse(json)?.result_id);
            }
        }
        self.target.prepare_replay(&ids)?;
        self.drain()
    }

    /// Deliver whenever nudged; when the run is over, deliver the rest and stop.
    fn serve(&mut self, nudged: &Receiver<()>) -> Result<u64, ResultsError> {
        let mut delivered = 0;
        while nudged.recv().is_ok() {
            delivered += self.drain()?;
        }
        delivered += self.drain()?;
        Ok(delivered)
    }

    /// Deliver every committed outbox row, oldest first; each page is removed from the outbox
    /// only after the target has it.
    fn drain(&mut self) -> Result<u64, ResultsError> {
        let mut delivered = 0;
        loop {
            let page = self.state.sync(&self.sync_id).outbox_peek(ROWS_PER_WRITE)?;
            let Some((last, _)) = page.last() else { return Ok(delivered) };
            let last = *last;
            let rows = page.iter().map(|(_, json)| parse(json)).collect::<Result<Vec<_>, _>>()?;
            self.target.write(&rows)?;
            self.state.sync(&self.sync_id).outbox_remove_through(last)?;
            delivered += rows.len() as u64;
        }
    }
}

fn parse(json: &str) -> Result<ResultRow, ResultsError> {
    serde_json::from_str(json).map_err(|e| ResultsError::Config(format!("a queued result does not parse ({e}); the state file is damaged")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::model::Outcome;
    use crate::results::ResultStamp;
    use crate::results::config::TableName;

    /// Rows a killed run committed to the outbox, one of which it had already delivered, go
    /// out once each when the next run's shipper starts, and leave the outbox.
    #[test]
    fn leftovers_are_delivered_at_start_once_each() {
        let dir = test_kit::TempDir::new("shipper");
        let db = dir.join("w.sqlite");
        rusqlite::Connection::open(&db).unwrap().query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).unwrap();
        let table = TableName::parse("results").unwrap();
        let spec = TargetSpec::Sqlite { path: db.clone(), table: table.clone() };
        let mut stamp = ResultStamp::new("s", 1);
        let rows: Vec<ResultRow> = ["k1", "k2", "k3"].iter().map(|k| stamp.confirmed(k, Outcome::Created, Some("g"), 1)).collect();
        // Delivered before the kill, but not yet removed from the outbox.
        targets::open(&spec).unwrap().write(&rows[..1]).unwrap();
        {
            let state = State::open(dir.join("state")).unwrap();
            let mut b = state.sync("s").batch().unwrap();
            for r in &rows {
                b.queue_result(&serde_json::to_string(r).unwrap()).unwrap();
            }
            b.commit().unwrap();
        }

        let shipper = Shipper::start(spec, StateLocation::JobFolder, dir.join("state"), "s".into()).unwrap();
        assert_eq!(shipper.finish().unwrap(), 0, "nothing new in this run");
        let c = rusqlite::Connection::open(&db).unwrap();
        let keys: Vec<String> = c.prepare("SELECT row_key FROM results ORDER BY row_key").unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        assert_eq!(keys, ["k1", "k2", "k3"]);
        assert_eq!(State::open(dir.join("state")).unwrap().sync("s").outbox_len().unwrap(), 0);
    }

    /// A target that stops working stops the shipper; its rows stay in the outbox.
    #[test]
    fn a_failing_target_keeps_the_rows_in_the_outbox() {
        let dir = test_kit::TempDir::new("shipper");
        let db = dir.join("w.sqlite");
        rusqlite::Connection::open(&db).unwrap().query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).unwrap();
        let spec = TargetSpec::Sqlite { path: db.clone(), table: TableName::parse("results").unwrap() };
        let shipper = Shipper::start(spec, StateLocation::JobFolder, dir.join("state"), "s".into()).unwrap();
        // The operator drops the table under the running sync.
        rusqlite::Connection::open(&db).unwrap().execute_batch("DROP TABLE results").unwrap();
        let state = State::open(dir.join("state")).unwrap();
        let mut b = state.sync("s").batch().unwrap();
        b.queue_result(&serde_json::to_string(&ResultStamp::new("s", 1).confirmed("k1", Outcome::Created, None, 1)).unwrap()).unwrap();
        b.commit().unwrap();
        shipper.nudge();
        let e = shipper.finish().unwrap_err().to_string();
        assert!(e.contains("no such table"), "{e}");
        assert_eq!(state.sync("s").outbox_len().unwrap(), 1);
    }
}
