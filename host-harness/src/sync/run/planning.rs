//! Stage 2, plan: map each chunk of rows in the sandbox, fingerprint and diff it against state,
//! and queue only what is new, changed or to be retried. Runs in the run's own task,
//! interleaved with recording results as they arrive.

use super::read::Reader;
use super::record::Recorder;
use super::send::Senders;
use super::work::{Pending, RunShared};
use crate::contract::model::{ErrorCategory, ErrorCode, MappedRecord, RecordError, Row, RowError};
use crate::error::HostError;
use crate::sandbox::limits::Limits;
use crate::source::SourceItem;
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
    /// Plan every chunk the reader delivers; queue full batches as they fill.
    pub async fn run(mut self, reader: &mut Reader) -> PlanSummary {
        let mut summary = PlanSummary::default();
        let mut batch: Vec<Pending> = Vec::with_capacity(self.limits.batch_size);
        while let Some(chunk) = reader.chunks.recv().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    summary.source_error = Some(e);
                    break;
                }
            };
            if self.shared.aborted() {
                break;
            }
            let planned = match self.map_and_plan(chunk).await {
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

    /// Map one chunk in the sandbox and plan it against state. Rows the source or the plugin
    /// rejected are recorded here and go no further.
    async fn map_and_plan(&mut self, chunk: Vec<SourceItem>) -> Result<Vec<Planned>, HostError> {
        let mut rows: Vec<Row> = Vec::with_capacity(chunk.len());
        for item in chunk {
            self.recorder.counts.rows += 1;
            match item {
                SourceItem::Row(r) => rows.push(r),
                SourceItem::Invalid(inv) => {
                    let e = inv.into_row_error();
                    self.recorder.invalid_row(&e.key, &e.error);
                }
            }
        }
        let mapped = map_isolating(self.tenant, rows.clone()).await?;
        let mut pairs = Vec::with_capacity(rows.len());
        for (row, m) in rows.into_iter().zip(mapped) {
            match m {
                Ok(m) => pairs.push((row, m)),
                Err(e) => self.recorder.invalid_row(&e.key, &e.error),
            }
        }
        self.ledger.plan(pairs)
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

/// Map `rows`; when `map-rows` traps, breaks the contract or runs out of time on the whole
/// chunk, map each half again until the row that causes it is alone. That row becomes a
/// plugin-failure row error (not retried until it changes); every other row is mapped. Other
/// errors (the host's own) still end the run.
fn map_isolating<'a>(
    t: &'a Tenant,
    rows: Vec<Row>,
) -> std::pin::Pin<Box<dyn Future<Output = Result<Vec<Result<MappedRecord, RowError>>, HostError>> + Send + 'a>> {
    Box::pin(async move {
        match t.plugin.map_rows(&t.name, &t.settings, &t.mapping, rows.clone()).await {
            Err(e @ (HostError::Plugin { .. } | HostError::Deadline { .. })) if rows.len() == 1 => {
                let key = rows[0].key.clone();
                let error = RecordError::host(
                    ErrorCode::PluginFailure,
                    ErrorCategory::SkipRecord,
                    format!("row {key}: the plugin cannot map this row even alone ({e}); it is not sent until the row or the plugin changes"),
                );
                Ok(vec![Err(RowError { key, error })])
            }
            Err(HostError::Plugin { .. } | HostError::Deadline { .. }) if rows.len() > 1 => {
                let mut left = rows;
                let right = left.split_off(left.len() / 2);
                let mut out = map_isolating(t, left).await?;
                out.extend(map_isolating(t, right).await?);
                Ok(out)
            }
            other => other,
        }
    })
}
