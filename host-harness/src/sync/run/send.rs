//! Stage 3, send: sender tasks take batches while the concurrency target admits them, send each
//! in slices sized to the organization's rate, and hand the results to the recorder. Each sender
//! keeps its instance from one batch to the next of this run (the tenant's own; isolation is per
//! tenant), and starts a fresh one after a call that trapped, timed out or broke the contract.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::record::Recorder;
use super::work::{Pending, RunShared, Sent};
use crate::contract::model::{
    BatchContext, ErrorCategory, ErrorCode, FieldMapping, RecordError, RecordResult, Setting, SyncItem, SyncMode,
};
use crate::egress::EgressPolicy;
use crate::error::HostError;
use crate::sandbox::{Instance, Plugin};
use crate::sandbox::limits::Limits;
use crate::sync::Tenant;
use crate::sync::concurrency::Concurrency;

/// The senders of one run and the two channels around them.
pub(super) struct Senders {
    work: async_channel::Sender<Vec<Pending>>,
    sent: mpsc::UnboundedReceiver<Sent>,
    tasks: JoinSet<()>,
    conc: Arc<Concurrency>,
}

impl Senders {
    /// Start `limits.max_concurrency` senders (none for a dry run, which sends nothing).
    pub fn spawn(tenant: &Tenant, limits: &Limits, dry_run: bool, shared: &Arc<RunShared>) -> Senders {
        let slots = limits.max_concurrency.max(1);
        let (work, work_rx) = async_channel::bounded::<Vec<Pending>>(slots * 2);
        let (sent_tx, sent) = mpsc::unbounded_channel::<Sent>();
        let conc = Arc::new(Concurrency::new(tenant.spec.suggested_concurrency as usize, limits.max_concurrency));
        let mut tasks = JoinSet::new();
        if !dry_run {
            let handle = TenantHandle::of(tenant);
            for index in 0..slots {
                tasks.spawn(sender(index, handle.clone(), work_rx.clone(), sent_tx.clone(), conc.clone(), shared.clone()));
            }
        }
        Senders { work, sent, tasks, conc }
    }

    /// Queue a batch; while the queue is full, record results (so the recorder never blocks the
    /// senders and the planner never runs far ahead of them).
    pub async fn queue(&mut self, batch: Vec<Pending>, recorder: &mut Recorder<'_>) {
        let mut pending = Some(batch);
        while let Some(b) = pending.take() {
            match self.work.try_send(b) {
                Ok(()) => {}
                Err(async_channel::TrySendError::Full(b)) => {
                    pending = Some(b);
                    if let Some(sent) = self.sent.recv().await {
                        recorder.record(sent);
                    }
                }
                Err(async_channel::TrySendError::Closed(_)) => {}
            }
        }
    }

    /// Record whatever results already came back, without waiting.
    pub fn record_ready(&mut self, recorder: &mut Recorder<'_>) {
        while let Ok(sent) = self.sent.try_recv() {
            recorder.record(sent);
        }
    }

    /// Record results until everything queued came back.
    pub async fn record_in_flight(&mut self, recorder: &mut Recorder<'_>, shared: &RunShared) {
        while !shared.settled() {
            match self.sent.recv().await {
                Some(sent) => recorder.record(sent),
                None => break,
            }
        }
    }

    /// No more work: let the senders finish and record their last results.
    pub async fn close(mut self, recorder: &mut Recorder<'_>) {
        self.work.close();
        // Senders waiting for admission look again and leave once the queue is empty.
        self.conc.wake_all();
        while self.tasks.join_next().await.is_some() {}
        self.record_ready(recorder);
    }
}

/// What a sender needs of the tenant, cheap to clone into a task.
#[derive(Clone)]
struct TenantHandle {
    plugin: Arc<Plugin>,
    policy: Arc<EgressPolicy>,
    settings: Arc<Vec<Setting>>,
    mapping: Arc<Vec<FieldMapping>>,
    mode: SyncMode,
    sync_id: String,
    rate: u32,
}

impl TenantHandle {
    fn of(t: &Tenant) -> TenantHandle {
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
}

/// One `sync-batch` call in a task of its own, so that a panic anywhere under it (the host's
/// egress code included) fails this batch instead of losing it and leaving the run waiting. The
/// sender's kept instance goes into the task and comes back only if the call ended well.
async fn send_once(
    t: &TenantHandle,
    kept: &mut Option<Instance>,
    items: Vec<SyncItem>,
    attempt: u32,
) -> Result<Vec<RecordResult>, HostError> {
    let t = t.clone();
    let mut instance = kept.take();
    let task = tokio::spawn(async move {
        let ctx = BatchContext { sync_id: t.sync_id.clone(), attempt };
        let results = t.plugin.sync_batch(&mut instance, t.policy.clone(), ctx, &t.settings, t.mode, &t.mapping, items).await;
        (instance, results)
    });
    match task.await {
        Ok((instance, results)) => {
            *kept = instance;
            results
        }
        Err(e) => Err(HostError::HostTask { reason: if e.is_panic() { "it panicked".into() } else { e.to_string() } }),
    }
}

/// Send `items`; when the plugin traps or breaks the contract on the whole batch, send each half
/// again (fresh instances) until the record that causes it is alone. That record fails as a
/// plugin failure that is not retried; every other record gets its own outcome. Re-sending a
/// half is safe: the plugin's creates are idempotent and its updates set absolute values.
fn send_isolating<'a>(
    t: &'a TenantHandle,
    kept: &'a mut Option<Instance>,
    items: Vec<SyncItem>,
    attempt: u32,
) -> std::pin::Pin<Box<dyn Future<Output = Result<Vec<RecordResult>, HostError>> + Send + 'a>> {
    Box::pin(async move {
        match send_once(t, kept, items.clone(), attempt).await {
            Err(HostError::Plugin { reason, .. }) if items.len() == 1 => Ok(vec![poisoned(&items[0].row.key, &reason)]),
            Err(HostError::Plugin { .. }) => {
                let mut left = items;
                let right = left.split_off(left.len() / 2);
                let mut out = as_results(&left, send_isolating(t, kept, left.clone(), attempt).await);
                out.extend(as_results(&right, send_isolating(t, kept, right.clone(), attempt).await));
                Ok(out)
            }
            other => other,
        }
    })
}

/// A half's outcome as one result per record (a half that failed as a whole for another reason,
/// a deadline say, fails each of its records with that error).
fn as_results(items: &[SyncItem], r: Result<Vec<RecordResult>, HostError>) -> Vec<RecordResult> {
    match r {
        Ok(rs) => rs,
        Err(e) => {
            let err = e.to_record_error();
            items.iter().map(|i| RecordResult::failed(&i.row.key, err.clone())).collect()
        }
    }
}

/// The result of the one record a plugin fails on when sent alone (a skip-record error, so
/// not retryable).
fn poisoned(key: &str, reason: &str) -> RecordResult {
    let error = RecordError::host(
        ErrorCode::PluginFailure,
        ErrorCategory::SkipRecord,
        format!("row {key}: the plugin fails on this record even when it is sent alone ({reason}); it is not sent again until the row or the plugin changes"),
    );
    RecordResult::failed(key, error)
}

/// One sender: takes batches while the concurrency target admits it, in the instance it keeps
/// between batches (a fresh one after a failed call). A batch goes out in slices sized when each
/// is sent ([`Concurrency::batch_rows`]), each recorded as soon as it comes back, so the records
/// sent but not yet confirmed stay a few seconds of the organization's rate, whatever the target
/// was when the batch was planned. A sender the target no longer admits still finishes its batch
/// (handing the rest back cost about 1% of the rate at 150 ms latency: BENCHMARKS.md, `workers`).
async fn sender(
    index: usize,
    t: TenantHandle,
    work: async_channel::Receiver<Vec<Pending>>,
    sent: mpsc::UnboundedSender<Sent>,
    conc: Arc<Concurrency>,
    shared: Arc<RunShared>,
) {
    let mut throttled_seen = t.policy.stats.throttled.load(Ordering::Relaxed);
    let mut kept: Option<Instance> = None;
    let finished = || work.is_closed() && work.is_empty();
    loop {
        if !conc.admitted(index, finished).await {
            conc.wake_all();
            return;
        }
        let Ok(mut rest) = work.recv().await else {
            // The last batch is taken: whoever waits for admission can leave too.
            conc.wake_all();
            return;
        };
        while !rest.is_empty() {
            if shared.aborted() {
                let _ = sent.send(Sent { batch: std::mem::take(&mut rest), results: Err(HostError::RunStopped) });
                break;
            }
            let tail = rest.split_off(conc.batch_rows(t.rate, rest.len()));
            let batch = std::mem::replace(&mut rest, tail);
            let attempt = batch.first().map(|p| p.attempt).unwrap_or(0);
            let items: Vec<SyncItem> = batch.iter().map(|p| p.item.clone()).collect();
            let results = send_isolating(&t, &mut kept, items, attempt).await;
            let throttled_now = t.policy.stats.throttled.load(Ordering::Relaxed);
            conc.observe(t.rate, t.policy.stats.mean_latency(), throttled_now > throttled_seen);
            throttled_seen = throttled_now;
            if sent.send(Sent { batch, results }).is_err() {
                return;
            }
        }
    }
}
