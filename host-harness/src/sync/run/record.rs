//! Stage 4, record: the one writer of state and counts. Confirmed records advance state;
//! retryable failures wait in the retry queue; final failures are stored with their error.
//! With results write-back on, every final outcome also becomes a result row, queued in the
//! same transaction as its state and then handed to the results shipper.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::work::{Pending, RunShared, Sent};
use crate::contract::model::{ErrorCategory, ErrorCode, Outcome, RecordError, RecordResult};
use crate::fingerprint::Fingerprint;
use crate::results::{ResultRow, ResultStamp, Shipper};
use crate::sync::ledger::Ledger;
use crate::sync::progress::Progress;
use crate::sync::report::{Counts, FailedRecord};
use crate::sync::retry::RetryPolicy;

/// Result rows of rejected rows held before they are committed on their own.
const PENDING_RESULTS_MAX: usize = 1000;

/// The recorder of one run, and what it has counted so far.
pub(super) struct Recorder<'a> {
    ledger: &'a Ledger,
    shared: &'a Arc<RunShared>,
    progress: &'a Progress,
    retry: RetryPolicy,
    /// Counts of the run.
    pub counts: Counts,
    /// Every record that failed or was rejected.
    pub failures: Vec<FailedRecord>,
    /// Records to send again, each with the time it may go.
    pub retry_queue: Vec<(Instant, Pending)>,
    /// Results write-back, when the job asks for it.
    results: Option<Results<'a>>,
}

/// The recorder's side of results write-back.
struct Results<'a> {
    stamp: ResultStamp,
    shipper: &'a Shipper,
    /// Result rows (JSON) waiting for the next state transaction: rows rejected before sending
    /// have no state write of their own.
    pending: Vec<String>,
}

impl<'a> Recorder<'a> {
    pub fn new(
        ledger: &'a Ledger,
        retry: RetryPolicy,
        shared: &'a Arc<RunShared>,
        progress: &'a Progress,
        shipper: Option<&'a Shipper>,
    ) -> Self {
        let results = match (shipper, ledger.run_id()) {
            (Some(shipper), Some(run)) => Some(Results { stamp: ResultStamp::new(ledger.sync_id(), run), shipper, pending: Vec::new() }),
            _ => None,
        };
        Recorder { ledger, shared, progress, retry, counts: Counts::default(), failures: Vec::new(), retry_queue: Vec::new(), results }
    }

    /// A row rejected before any request (by the source or by the plugin's mapping).
    pub fn invalid_row(&mut self, key: &str, error: &RecordError) {
        self.counts.invalid += 1;
        self.failures.push(FailedRecord::new(key, error, 0, "invalid-row"));
        self.result(|stamp| stamp.rejected(key, error));
        // A source full of invalid rows sends nothing to carry their results: commit them in
        // batches of their own rather than hold them all.
        if self.results.as_ref().is_some_and(|r| r.pending.len() >= PENDING_RESULTS_MAX) {
            self.commit(&[], &[]);
        }
    }

    /// Queue a result row for the next state transaction (when write-back is on).
    fn result(&mut self, build: impl FnOnce(&mut ResultStamp) -> ResultRow) {
        if let Some(r) = self.results.as_mut() {
            let row = build(&mut r.stamp);
            // A result row is plain strings and numbers: it always serializes.
            r.pending.push(serde_json::to_string(&row).unwrap_or_default());
        }
    }

    /// Commit the result rows still waiting (rows rejected after the last sent batch).
    pub fn flush_results(&mut self) {
        if self.results.as_ref().is_some_and(|r| !r.pending.is_empty()) {
            self.commit(&[], &[]);
        }
    }

    /// Write one transaction of state and queued results; then let the shipper deliver them.
    fn commit(&mut self, confirmed: &[(String, Fingerprint, RecordResult)], failed: &[(String, Fingerprint, RecordError)]) {
        let pending = self.results.as_mut().map(|r| std::mem::take(&mut r.pending)).unwrap_or_default();
        if let Err(e) = self.ledger.record(confirmed, failed, &pending) {
            self.shared.abort(format!("cannot write sync state: {e}"));
            return;
        }
        if let Some(r) = &self.results {
            r.shipper.nudge();
            if let Some(why) = r.shipper.failure() {
                self.shared.abort(format!("{why} (the run stops; results not yet written stay in the sync state and go out with the next run)"));
            }
        }
    }

    /// Record what came back for one batch.
    pub fn record(&mut self, sent: Sent) {
        let Sent { batch, results } = sent;
        self.shared.done.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let results: Vec<(Pending, RecordResult)> = match results {
            Ok(rs) => batch.into_iter().zip(rs).collect(),
            // Not attempted after the run stopped: nothing changes in state, nothing to report.
            Err(_) if self.shared.aborted() => return,
            Err(e) => {
                let err = e.to_record_error();
                batch
                    .into_iter()
                    .map(|p| {
                        let r = RecordResult::failed(&p.item.row.key, err.clone());
                        (p, r)
                    })
                    .collect()
            }
        };
        let mut confirmed: Vec<(String, Fingerprint, RecordResult)> = Vec::new();
        let mut failed: Vec<(String, Fingerprint, RecordError)> = Vec::new();
        for (p, r) in results {
            match (&r.outcome, &r.error) {
                (Outcome::Failed, Some(e)) | (Outcome::Skipped, Some(e)) => {
                    if e.category == ErrorCategory::FixConfig && r.outcome == Outcome::Failed {
                        self.shared.abort(format!("{} (row {})", e.message, p.item.row.key));
                    }
                    if r.outcome == Outcome::Failed && self.retry.should_retry(e, p.attempt) && !self.shared.aborted() {
                        let delay = self.retry.delay(p.attempt + 1, e.retry_after_ms.map(Duration::from_millis));
                        let next = Pending { attempt: p.attempt + 1, ..p };
                        self.retry_queue.push((Instant::now() + delay, next));
                        continue;
                    }
                    self.counts.add_outcome(r.outcome);
                    let stored = self.final_failure(&r.key, e, p.attempt + 1);
                    self.result(|s| s.failed(&p.item.row.key, r.outcome, &stored, p.attempt + 1, p.item.known_id.as_deref()));
                    failed.push((p.item.row.key, p.fingerprint, stored));
                }
                (Outcome::Failed, None) => {
                    let e = RecordError::host(
                        ErrorCode::UnexpectedResponse,
                        ErrorCategory::RetryLater,
                        format!("row {}: the plugin reported a failure without an error", r.key),
                    );
                    self.counts.add_outcome(Outcome::Failed);
                    self.failures.push(FailedRecord::new(&r.key, &e, p.attempt + 1, "transient"));
                    self.result(|s| s.failed(&p.item.row.key, Outcome::Failed, &e, p.attempt + 1, p.item.known_id.as_deref()));
                    failed.push((p.item.row.key, p.fingerprint, e));
                }
                _ => {
                    self.counts.add_outcome(r.outcome);
                    let mut r = r;
                    r.confirmed_payload.get_or_insert(p.payload);
                    let gladly_id = r.remote_id.as_deref().or(p.item.known_id.as_deref());
                    self.result(|s| s.confirmed(&p.item.row.key, r.outcome, gladly_id, p.attempt + 1));
                    confirmed.push((p.item.row.key, p.fingerprint, r));
                }
            }
        }
        self.commit(&confirmed, &failed);
        self.progress.sent(self.shared.done.load(std::sync::atomic::Ordering::Relaxed), &self.counts);
    }

    /// Report a record that failed for good in this run; returns the error to store, whose
    /// `retryable` says whether the next run sends it again.
    fn final_failure(&mut self, key: &str, e: &RecordError, attempts: u32) -> RecordError {
        // A configuration failure (credentials, permission, egress policy) says nothing about
        // the record: it is sent again on the next run, when the configuration may have been
        // fixed, even if its data did not change.
        let next_run = e.retryable || e.category == ErrorCategory::FixConfig;
        let kind = if e.retryable {
            "transient"
        } else if e.category == ErrorCategory::FixConfig {
            "config"
        } else {
            "validation"
        };
        let mut report = FailedRecord::new(key, e, attempts, kind);
        report.retried_next_run = next_run;
        self.failures.push(report);
        let mut stored = e.clone();
        stored.retryable = next_run;
        stored
    }
}
