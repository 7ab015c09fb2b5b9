//! Stage 4, record: the one writer of state and counts. Confirmed records advance state;
//! retryable failures wait in the retry queue; final failures are stored with their error.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::work::{Pending, RunShared, Sent};
use crate::contract::model::{ErrorCategory, ErrorCode, Outcome, RecordError, RecordResult};
use crate::fingerprint::Fingerprint;
use crate::sync::ledger::Ledger;
use crate::sync::progress::Progress;
use crate::sync::report::{Counts, FailedRecord};
use crate::sync::retry::RetryPolicy;

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
}

impl<'a> Recorder<'a> {
    pub fn new(ledger: &'a Ledger, retry: RetryPolicy, shared: &'a Arc<RunShared>, progress: &'a Progress) -> Self {
        Recorder { ledger, shared, progress, retry, counts: Counts::default(), failures: Vec::new(), retry_queue: Vec::new() }
    }

    /// A row rejected before any request (by the source or by the plugin's mapping).
    pub fn invalid_row(&mut self, key: &str, error: &RecordError) {
        self.counts.invalid += 1;
        self.failures.push(FailedRecord::new(key, error, 0, "invalid-row"));
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
                    failed.push((p.item.row.key, p.fingerprint, e));
                }
                _ => {
                    self.counts.add_outcome(r.outcome);
                    let mut r = r;
                    r.confirmed_payload.get_or_insert(p.payload);
                    confirmed.push((p.item.row.key, p.fingerprint, r));
                }
            }
        }
        if let Err(e) = self.ledger.record(&confirmed, &failed) {
            self.shared.abort(format!("cannot write sync state: {e}"));
        }
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
