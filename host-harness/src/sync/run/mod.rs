//! One sync run: stream rows → map in the sandbox → fingerprint and diff against state → send
//! only what changed, spread over adaptive concurrent instances → check, retry, record.
//!
//! Stages run concurrently and talk through bounded channels, so rows are never held for the
//! whole table (only the source's key set grows, a 128-bit hash per key): the source reader (a
//! blocking thread), the planner (maps and diffs one chunk at a time), the senders (one instance
//! per batch), and the recorder (the only writer of state). State advances only for records the
//! destination confirmed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::sync::concurrency::Concurrency;
use crate::job::JobConfig;
use crate::error::HostError;
use crate::sync::ledger::{Ledger, estimate_requests};
use crate::fingerprint::Fingerprint;
use crate::sync::plan::{Decision, RetryReason};
use crate::contract::model::{BatchContext, ErrorCategory, Outcome, RecordError, RecordResult, Row, SyncItem};
use crate::sync::progress::Progress;
use crate::sync::report::{Counts, FailedRecord, RunReport};
use crate::sync::retry::RetryPolicy;
use crate::source::{self, SourceItem};
use crate::sync::{Harness, RunOptions, Tenant};

/// Rows read, mapped and diffed per planning step.
const PLAN_CHUNK: usize = 500;

/// One record on its way to the destination.
#[derive(Debug, Clone)]
struct Pending {
    item: SyncItem,
    fingerprint: Fingerprint,
    /// The mapped payload, stored as confirmed when the plugin does not echo one.
    payload: String,
    attempt: u32,
}

/// What a sender hands to the recorder.
struct Sent {
    batch: Vec<Pending>,
    results: Result<Vec<RecordResult>, HostError>,
}

/// Shared between the stages of one run.
struct RunShared {
    abort: AtomicBool,
    abort_reason: std::sync::Mutex<Option<String>>,
    queued: AtomicU64,
    done: AtomicU64,
}

impl RunShared {
    fn abort(&self, reason: String) {
        let mut r = self.abort_reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        self.abort.store(true, Ordering::SeqCst);
    }

    fn aborted(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
    }
}

impl Harness {
    /// Run (or, with `dry_run`, plan) one sync of `tenant`.
    pub async fn run(&self, tenant: &Tenant, job: &JobConfig, opts: &RunOptions) -> Result<RunReport, HostError> {
        if !opts.dry_run && !tenant.has_credentials {
            return Err(HostError::Config("no API token available for this tenant".into()));
        }
        let started = Instant::now();
        // The tenant's counters live as long as the tenant; a report counts this run only.
        let stats = &tenant.policy.stats;
        let requests_before = stats.requests.load(Ordering::Relaxed);
        let throttled_before = stats.throttled.load(Ordering::Relaxed);
        let denied_before = stats.denied.load(Ordering::Relaxed);
        let limits = tenant.plugin.limits().clone();
        let shared = Arc::new(RunShared {
            abort: AtomicBool::new(false),
            abort_reason: Default::default(),
            queued: AtomicU64::new(0),
            done: AtomicU64::new(0),
        });
        let progress = Progress::new(opts.progress, &tenant.name);
        let mut counts = Counts::default();
        let mut failures: Vec<FailedRecord> = Vec::new();
        let mut notes: Vec<String> = Vec::new();

        let ledger = Ledger::open(job, tenant, opts.dry_run)?;

        // Stage 1: the source, on a blocking thread.
        let (rows_tx, mut rows_rx) = mpsc::channel::<Result<Vec<SourceItem>, String>>(2);
        let source_cfg = job.source.clone();
        // It returns the source's key set once every row was read (for the disappeared count).
        let reader = tokio::task::spawn_blocking(move || {
            let mut src = match source::open(&source_cfg) {
                Ok(s) => s,
                Err(e) => {
                    let _ = rows_tx.blocking_send(Err(e.to_string()));
                    return None;
                }
            };
            for chunk in source::batches(&mut src, PLAN_CHUNK) {
                let msg = chunk.map_err(|e| e.to_string());
                let stop = msg.is_err();
                if rows_tx.blocking_send(msg).is_err() || stop {
                    return None;
                }
            }
            Some(src.into_keys())
        });

        // Stages 3 and 4: senders and their results.
        let (work_tx, work_rx) = async_channel::bounded::<Vec<Pending>>(limits.max_concurrency.max(1) * 2);
        let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<Sent>();
        let conc = Arc::new(Concurrency::new(tenant.spec.suggested_concurrency as usize, limits.max_concurrency));
        let mut senders = tokio::task::JoinSet::new();
        if !opts.dry_run {
            for index in 0..limits.max_concurrency.max(1) {
                senders.spawn(sender(
                    index,
                    tenant_handle(tenant),
                    work_rx.clone(),
                    sent_tx.clone(),
                    conc.clone(),
                    shared.clone(),
                ));
            }
        }
        drop(sent_tx);
        drop(work_rx);

        // Stage 2: plan, in this task, interleaved with recording results as they arrive.
        let mut batch: Vec<Pending> = Vec::with_capacity(limits.batch_size);
        let mut preview_left = opts.preview_rows;
        let mut estimate_requests_total: u64 = 0;
        let mut retry_queue: Vec<(Instant, Pending)> = Vec::new();
        let retry = RetryPolicy::from_limits(&limits);
        let mut recorder = Recorder { ledger: &ledger, counts: &mut counts, failures: &mut failures, retry, retry_queue: &mut retry_queue, shared: &shared, progress: &progress };

        let mut source_error: Option<String> = None;
        // An error that ends the run (a trap in map-rows, the state store failing): the work
        // already in flight is still recorded, and the run is stored as failed, not left running.
        let mut fatal: Option<HostError> = None;
        while let Some(chunk) = rows_rx.recv().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    source_error = Some(e);
                    break;
                }
            };
            if shared.aborted() {
                break;
            }
            let mut rows: Vec<Row> = Vec::with_capacity(chunk.len());
            for item in chunk {
                recorder.counts.rows += 1;
                match item {
                    SourceItem::Row(r) => rows.push(r),
                    SourceItem::Invalid(inv) => {
                        recorder.counts.invalid += 1;
                        let e = inv.into_row_error();
                        recorder.failures.push(FailedRecord::new(&e.key, &e.error, 0, "invalid-row"));
                    }
                }
            }
            let mapped = match tenant.plugin.map_rows(&tenant.name, &tenant.settings, &tenant.mapping, rows.clone()).await {
                Ok(m) => m,
                Err(e) => {
                    fatal = Some(e);
                    break;
                }
            };
            let mut pairs = Vec::with_capacity(rows.len());
            for (row, m) in rows.into_iter().zip(mapped) {
                match m {
                    Ok(m) => pairs.push((row, m)),
                    Err(e) => {
                        recorder.counts.invalid += 1;
                        recorder.failures.push(FailedRecord::new(&e.key, &e.error, 0, "invalid-row"));
                    }
                }
            }
            let planned_chunk = match ledger.plan(pairs) {
                Ok(p) => p,
                Err(e) => {
                    fatal = Some(e);
                    break;
                }
            };
            for planned in planned_chunk {
                if opts.dry_run && preview_left > 0 && planned.decision.sends() {
                    preview_left -= 1;
                    let pretty = serde_json::from_str::<serde_json::Value>(&planned.payload)
                        .and_then(|v| serde_json::to_string_pretty(&v))
                        .unwrap_or(planned.payload.clone());
                    println!("row {} ({}) would be sent as:\n{pretty}", planned.key, planned.decision.label());
                }
                match planned.decision {
                    Decision::Unchanged => recorder.counts.unchanged += 1,
                    Decision::StillInvalid => {
                        recorder.counts.still_invalid += 1;
                        if let Some(e) = &planned.last_error {
                            let err = RecordError::host(
                                e.error_code().unwrap_or(crate::contract::model::ErrorCode::Rejected),
                                ErrorCategory::SkipRecord,
                                format!("{} (unchanged since it was rejected; fix the row to send it again)", e.message),
                            );
                            recorder.failures.push(FailedRecord::new(&planned.key, &err, 0, "validation"));
                        }
                    }
                    _ => {
                        let Some(item) = planned.item else { continue };
                        if matches!(planned.decision, Decision::RetryFailed { reason: RetryReason::Retryable }) {
                            recorder.counts.retried_from_last_run += 1;
                        }
                        estimate_requests_total += estimate_requests(tenant.mode, item.known_id.is_some());
                        batch.push(Pending { item, fingerprint: planned.fingerprint, payload: planned.payload, attempt: 0 });
                        if batch.len() >= limits.batch_size {
                            shared.queued.fetch_add(batch.len() as u64, Ordering::Relaxed);
                            if !opts.dry_run {
                                send_or_record(&work_tx, std::mem::take(&mut batch), &mut sent_rx, &mut recorder).await;
                            } else {
                                batch.clear();
                            }
                        }
                    }
                }
            }
            // Record whatever results already came back, without waiting.
            while let Ok(sent) = sent_rx.try_recv() {
                recorder.record(sent);
            }
            progress.planned(recorder.counts.rows, shared.queued.load(Ordering::Relaxed));
        }
        drop(rows_rx);
        let source_keys = reader.await.ok().flatten();
        if let Some(e) = &fatal {
            shared.abort(e.to_string());
        }

        if !batch.is_empty() {
            shared.queued.fetch_add(batch.len() as u64, Ordering::Relaxed);
            if !opts.dry_run {
                send_or_record(&work_tx, std::mem::take(&mut batch), &mut sent_rx, &mut recorder).await;
            }
        }

        // Retry rounds: wait out each record's backoff outside any instance, then resend.
        if !opts.dry_run {
            loop {
                // Drain results of the work in flight until nothing is queued or running.
                while recorder.shared.done.load(Ordering::Relaxed) < recorder.shared.queued.load(Ordering::Relaxed) {
                    match sent_rx.recv().await {
                        Some(sent) => recorder.record(sent),
                        None => break,
                    }
                }
                if recorder.retry_queue.is_empty() || shared.aborted() {
                    break;
                }
                let due = recorder.retry_queue.iter().map(|(t, _)| *t).max().unwrap_or_else(Instant::now);
                tokio::time::sleep_until(due).await;
                let round: Vec<Pending> = std::mem::take(recorder.retry_queue).into_iter().map(|(_, p)| p).collect();
                recorder.counts.retry_attempts += round.len() as u64;
                for chunk in round.chunks(limits.batch_size.max(1)) {
                    shared.queued.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    send_or_record(&work_tx, chunk.to_vec(), &mut sent_rx, &mut recorder).await;
                }
            }
        }
        work_tx.close();
        while senders.join_next().await.is_some() {}
        while let Ok(sent) = sent_rx.try_recv() {
            recorder.record(sent);
        }
        progress.finish();

        if let Some(e) = source_error {
            shared.abort(format!("the source failed: {e}"));
        }
        let requests = stats.requests.load(Ordering::Relaxed).saturating_sub(requests_before);
        let elapsed = started.elapsed().as_secs_f64();
        if opts.dry_run {
            let secs = estimate_requests_total as f64 / f64::from(tenant.rate_per_second);
            notes.push(format!(
                "a sync would send {} record(s): about {estimate_requests_total} request(s), {:.0} s at {}/s",
                shared.queued.load(Ordering::Relaxed),
                secs.ceil(),
                tenant.rate_per_second
            ));
            // Issue 5: the preview says how many records would be created, updated, left
            // unchanged, retried and rejected (the counts alone do not split new from changed).
            let pc = ledger.plan_counts();
            notes.push(format!(
                "preview: {} new (would be created), {} changed (would be updated), {} unchanged, {} retried from the last run, {} rejected ({} invalid rows, {} still invalid)",
                pc.new,
                pc.changed,
                pc.unchanged,
                pc.retry_failed,
                counts.invalid + pc.still_invalid,
                counts.invalid,
                pc.still_invalid
            ));
        }
        let aborted = shared.abort_reason.lock().unwrap_or_else(|p| p.into_inner()).clone();
        notes.extend(ledger.notes());
        let finished = ledger.finish(&counts, requests, aborted.as_deref(), source_keys.as_ref());
        if let Some(e) = fatal {
            return Err(e);
        }
        let disappeared = finished?;
        counts.disappeared = disappeared;
        if disappeared > 0 {
            notes.push(format!(
                "{disappeared} record(s) synced before are no longer returned by the source; they were left as they are in the destination"
            ));
        }
        Ok(RunReport {
            sync_id: tenant.sync_id.clone(),
            tenant: tenant.name.clone(),
            mode: format!("{:?}", tenant.mode).to_lowercase(),
            plugin: format!("{} {}", tenant.spec.name, tenant.spec.version),
            component_sha256: tenant.plugin.hash().to_string(),
            dry_run: opts.dry_run,
            counts,
            requests,
            throttled: stats.throttled.load(Ordering::Relaxed).saturating_sub(throttled_before),
            denied: stats.denied.load(Ordering::Relaxed).saturating_sub(denied_before),
            elapsed_secs: elapsed,
            requests_per_second: if elapsed > 0.0 { requests as f64 / elapsed } else { 0.0 },
            rate_limit_per_second: tenant.rate_per_second,
            aborted,
            notes,
            failures,
        })
    }
}

/// What a sender needs of the tenant, cheap to clone into a task.
#[derive(Clone)]
struct TenantHandle {
    plugin: Arc<crate::sandbox::Plugin>,
    policy: Arc<crate::egress::EgressPolicy>,
    settings: Arc<Vec<crate::contract::model::Setting>>,
    mapping: Arc<Vec<crate::contract::model::FieldMapping>>,
    mode: crate::contract::model::SyncMode,
    sync_id: String,
    rate: u32,
}

fn tenant_handle(t: &Tenant) -> TenantHandle {
    TenantHandle {
        plugin: t.plugin.clone(),
        policy: t.policy.clone(),
        settings: Arc::new(t.settings.clone()),
        mapping: Arc::new(t.mapping.clone()),
        mode: t.mode,
        sync_id: t.sync_id.clone(),
        rate: t.rate_per_second,
    }
}

/// Queue a batch for the senders; while the queue is full, record results (so the recorder
/// never blocks the senders and the planner never runs far ahead of them).
async fn send_or_record(
    work: &async_channel::Sender<Vec<Pending>>,
    batch: Vec<Pending>,
    sent_rx: &mut mpsc::UnboundedReceiver<Sent>,
    recorder: &mut Recorder<'_>,
) {
    let mut pending = Some(batch);
    while let Some(b) = pending.take() {
        match work.try_send(b) {
            Ok(()) => {}
            Err(async_channel::TrySendError::Full(b)) => {
                pending = Some(b);
                if let Some(sent) = sent_rx.recv().await {
                    recorder.record(sent);
                }
            }
            Err(async_channel::TrySendError::Closed(_)) => {}
        }
    }
}

/// One sender: takes batches while the concurrency target admits it; one fresh instance per
/// batch.
async fn sender(
    index: usize,
    t: TenantHandle,
    work: async_channel::Receiver<Vec<Pending>>,
    sent: mpsc::UnboundedSender<Sent>,
    conc: Arc<Concurrency>,
    shared: Arc<RunShared>,
) {
    let mut throttled_seen = t.policy.stats.throttled.load(Ordering::Relaxed);
    loop {
        while !conc.admits(index) {
            if work.is_closed() && work.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let Ok(batch) = work.recv().await else { return };
        if shared.aborted() {
            let _ = sent.send(Sent { batch, results: Err(HostError::Config("run stopped".into())) });
            continue;
        }
        let attempt = batch.first().map(|p| p.attempt).unwrap_or(0);
        let items: Vec<SyncItem> = batch.iter().map(|p| p.item.clone()).collect();
        let ctx = BatchContext { sync_id: t.sync_id.clone(), attempt };
        let results = t.plugin.sync_batch(t.policy.clone(), ctx, &t.settings, t.mode, &t.mapping, items).await;
        let throttled_now = t.policy.stats.throttled.load(Ordering::Relaxed);
        conc.observe(t.rate, t.policy.stats.mean_latency(), throttled_now > throttled_seen);
        throttled_seen = throttled_now;
        if sent.send(Sent { batch, results }).is_err() {
            return;
        }
    }
}

/// The one writer of state and counts.
struct Recorder<'a> {
    ledger: &'a Ledger,
    counts: &'a mut Counts,
    failures: &'a mut Vec<FailedRecord>,
    retry: RetryPolicy,
    retry_queue: &'a mut Vec<(Instant, Pending)>,
    shared: &'a Arc<RunShared>,
    progress: &'a Progress,
}

impl Recorder<'_> {
    fn record(&mut self, sent: Sent) {
        let Sent { batch, results } = sent;
        self.shared.done.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let stopped = self.shared.aborted();
        let results: Vec<(Pending, RecordResult)> = match results {
            Ok(rs) => batch.into_iter().zip(rs).collect(),
            Err(e) => {
                if stopped {
                    return; // not attempted: nothing changes in state, nothing to report per record
                }
                let err = e.to_record_error();
                batch
                    .into_iter()
                    .map(|p| {
                        let r = RecordResult {
                            key: p.item.row.key.clone(),
                            outcome: Outcome::Failed,
                            remote_id: None,
                            confirmed_payload: None,
                            error: Some(err.clone()),
                            requests: 0,
                        };
                        (p, r)
                    })
                    .collect()
            }
        };
        let mut confirmed = Vec::new();
        let mut failed = Vec::new();
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
                    // A configuration failure (credentials, permission, egress policy) says
                    // nothing about the record: it is sent again on the next run, when the
                    // configuration may have been fixed, even if its data did not change.
                    let next_run = e.retryable || e.category == ErrorCategory::FixConfig;
                    let kind = if e.retryable {
                        "transient"
                    } else if e.category == ErrorCategory::FixConfig {
                        "config"
                    } else {
                        "validation"
                    };
                    let mut report = FailedRecord::new(&r.key, e, p.attempt + 1, kind);
                    report.retried_next_run = next_run;
                    self.failures.push(report);
                    let mut stored = e.clone();
                    stored.retryable = next_run;
                    failed.push((p, r.clone(), stored));
                }
                (Outcome::Failed, None) => {
                    let e = RecordError::host(
                        crate::contract::model::ErrorCode::UnexpectedResponse,
                        ErrorCategory::RetryLater,
                        format!("row {}: the plugin reported a failure without an error", r.key),
                    );
                    self.counts.add_outcome(Outcome::Failed);
                    self.failures.push(FailedRecord::new(&r.key, &e, p.attempt + 1, "transient"));
                    failed.push((p, r.clone(), e));
                }
                _ => {
                    self.counts.add_outcome(r.outcome);
                    confirmed.push((p, r));
                }
            }
        }
        let confirmed: Vec<(String, Fingerprint, RecordResult)> =
            confirmed
                .into_iter()
                .map(|(p, mut r)| {
                    r.confirmed_payload.get_or_insert(p.payload);
                    (p.item.row.key, p.fingerprint, r)
                })
                .collect();
        let failed: Vec<(String, Fingerprint, RecordError)> =
            failed.into_iter().map(|(p, _, e)| (p.item.row.key, p.fingerprint, e)).collect();
        if let Err(e) = self.ledger.record(&confirmed, &failed) {
            self.shared.abort(format!("cannot write sync state: {e}"));
        }
        self.progress.sent(self.shared.done.load(Ordering::Relaxed), self.counts);
    }
}

