//! Stage 2b, plan: fingerprint each mapped chunk ([`super::map`]) and diff it against state,
//! and queue only what is new, changed or to be retried. Runs in the run's own task,
//! interleaved with recording results as they arrive.

use super::map::{MappedChunk, Mapper};
use super::record::Recorder;
use super::send::Senders;
use super::work::{Pending, RunShared};
use crate::contract::model::{ErrorCategory, ErrorCode, MappedRecord, RecordError, Row, RowError};
use crate::error::HostError;
use crate::sandbox::limits::Limits;
use crate::sync::ledger::{Ledger, estimate_requests};
use crate::sync::plan::{Decision, Planned, RetryReason};
use crate::sync::progress::Progress;
use crate::sync::report::{FailedRecord, PreviewRecord};
use crate::sync::{RunOptions, Tenant};

/// What planning the whole source left behind.
#[derive(Default)]
pub(super) struct PlanSummary {
    /// The source failed part way.
    pub source_error: Option<String>,
    /// An error that ends the run (a trap in `map-rows`, the state store failing); the work
    /// already in flight is still recorded.
    pub fatal: Option<HostError>,
    /// About how many requests the records to send cost (for the preview's estimate).
    pub estimated_requests: u64,
    /// Mapped records a preview shows.
    pub preview: Vec<PreviewRecord>,
}

/// Everything the planning stage reads or feeds.
pub(super) struct Planning<'r, 'a> {
    pub tenant: &'r Tenant,
    pub ledger: &'r Ledger,
    pub opts: &'r RunOptions,
    pub limits: &'r Limits,
    pub shared: &'r RunShared,
    pub progress: &'r Progress,
    pub senders: &'r mut Senders,
    pub recorder: &'r mut Recorder<'a>,
}

impl Planning<'_, '_> {
    /// Plan every chunk the mapper delivers; queue full batches as they fill. The mapper is
    /// dropped (and so stopped) on return.
    pub async fn run(mut self, mut mapper: Mapper) -> PlanSummary {
        let mut summary = PlanSummary::default();
        let mut batch: Vec<Pending> = Vec::with_capacity(self.limits.batch_size);
        while let Some(chunk) = mapper.chunks.recv().await {
            let (read, invalid, rows, mapped) = match chunk {
                MappedChunk::SourceFailed(e) => {
                    summary.source_error = Some(e);
                    break;
                }
                _ if self.shared.aborted() => break,
                MappedChunk::Fatal { read, invalid, error } => {
                    self.count_read(read, &invalid);
                    summary.fatal = Some(error);
                    break;
                }
                MappedChunk::Mapped { read, invalid, rows, mapped } => (read, invalid, rows, mapped),
            };
            let planned = match self.plan_chunk(read, &invalid, rows, mapped) {
                Ok(p) => p,
                Err(e) => {
                    summary.fatal = Some(e);
                    break;
                }
            };
            for planned in planned {
                if let Some(p) = self.decide(planned, &mut summary) {
                    batch.push(p);
                    if batch.len() >= self.limits.batch_size {
                        self.queue(std::mem::take(&mut batch)).await;
                    }
                }
            }
            self.senders.record_ready(self.recorder);
            self.progress.planned(self.recorder.counts.rows, self.shared.queued.load(std::sync::atomic::Ordering::Relaxed));
        }
        if let Some(e) = &summary.fatal {
            // Stop before the last partial batch: the senders answer it as not attempted.
            self.shared.abort(e.to_string());
        }
        if !batch.is_empty() {
            self.queue(batch).await;
        }
        summary
    }

    /// Record the rows the source or the plugin rejected (they go no further) and plan the rest
    /// against state.
    fn plan_chunk(
        &mut self,
        read: usize,
        invalid: &[RowError],
        rows: Vec<Row>,
        mapped: Vec<Result<MappedRecord, RowError>>,
    ) -> Result<Vec<Planned>, HostError> {
        self.count_read(read, invalid);
        let mut pairs: Vec<(Row, MappedRecord)> = Vec::with_capacity(rows.len());
        for (row, m) in rows.into_iter().zip(mapped) {
            match m {
                Ok(m) => pairs.push((row, m)),
                Err(e) => self.recorder.invalid_row(&e.key, &e.error),
            }
        }
        self.ledger.plan(pairs)
    }

    /// Count a chunk's rows as read, and record those the source rejected.
    fn count_read(&mut self, read: usize, invalid: &[RowError]) {
        self.recorder.counts.rows += read as u64;
        for e in invalid {
            self.recorder.invalid_row(&e.key, &e.error);
        }
    }

    /// Count one planned record; the record to send, if it is sent.
    fn decide(&mut self, planned: Planned, summary: &mut PlanSummary) -> Option<Pending> {
        if self.opts.dry_run && summary.preview.len() < self.opts.preview_rows && planned.decision.sends() {
            summary.preview.push(PreviewRecord::new(&planned.key, planned.decision.label(), &planned.payload));
        }
        let counts = &mut self.recorder.counts;
        match planned.decision {
            Decision::Unchanged => counts.unchanged += 1,
            Decision::NotSelected => counts.not_selected += 1,
            Decision::StillInvalid => {
                counts.still_invalid += 1;
                if let Some(e) = &planned.last_error {
                    let err = RecordError::host(
                        e.error_code().unwrap_or(ErrorCode::Rejected),
                        ErrorCategory::SkipRecord,
                        format!("{} (unchanged since it was rejected; fix the row to send it again)", e.message),
                    );
                    self.recorder.failures.push(FailedRecord::new(&planned.key, &err, 0, "validation"));
                }
            }
            _ => {
                let item = planned.item?;
                if matches!(planned.decision, Decision::RetryFailed { reason: RetryReason::Retryable }) {
                    counts.retried_from_last_run += 1;
                }
                summary.estimated_requests += estimate_requests(self.tenant.mode, item.known_id.is_some());
                return Some(Pending { item, fingerprint: planned.fingerprint, payload: planned.payload, attempt: 0 });
            }
        }
        None
    }

    /// Hand a full batch to the senders (a dry run only counts it).
    async fn queue(&mut self, batch: Vec<Pending>) {
        self.shared.add_queued(batch.len());
        if !self.opts.dry_run {
            self.senders.queue(batch, self.recorder).await;
        }
    }
}
