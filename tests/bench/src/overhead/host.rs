//! The component side of `overhead`: one tenant prepared, its state opened and `C` instances
//! made (the fixed costs, timed apart), then the pre-planned items sent in batches of the
//! tenant's batch size through the host's real per-request path: `Plugin::sync_batch` on a kept
//! instance (sandbox, deadline), the egress hook (allow-list, credential, in-flight cap, rate
//! permit, timeouts) and the tenant's `ConnectionPool`, `C` batches at once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Result, bail};
use gladly_emulator::Emulator;
use host_harness::contract::model::{BatchContext, Outcome, SyncItem};
use host_harness::state::StateLocation;
use host_harness::sync::ledger::Ledger;
use host_harness::sync::{Harness, RunOptions, Tenant};

use crate::fixtures::{HOST_MAX_RATE, TempDir, customers_job, generated_source};
use crate::measure::proc_cpu_secs;

/// What one component run cost: the fixed part and the sending.
pub struct HostRun {
    /// `Harness::prepare`: spec, configuration check, egress policy.
    pub prepare_secs: f64,
    /// Opening the sync state (and starting a run record), as a sync does.
    pub state_open_secs: f64,
    /// Making the `C` instances the senders keep.
    pub instantiate_secs: f64,
    /// Sending every item: wall-clock seconds, and CPU seconds of the whole process (the
    /// emulator's included).
    pub send_secs: f64,
    pub send_cpu_secs: f64,
    /// The tenant's batch size (`[limits] batch_size`).
    pub batch_size: usize,
}

/// Sends `items` to `emulator` as tenant `acme` with `c` kept instances.
pub async fn run(emulator: &Emulator, items: &[SyncItem], c: usize) -> Result<HostRun> {
    let (dir, db): (TempDir, _) = generated_source("overhead", 0, 1)?;
    let mut job = customers_job(&dir.0, "overhead", &db, HOST_MAX_RATE, emulator.base_url(), c)?;
    // A lookup, then a create, for every record: the native client makes the same two calls.
    job.destination.settings.insert("create-first".into(), toml::Value::String("off".into()));
    let harness = Harness::for_job(&job)?;
    // Loading (from the compile cache) is per process, not per tenant: outside the figures.
    harness.plugin(&job.sync.component)?;

    let t = Instant::now();
    let tenant = harness.prepare(&job, &RunOptions::default()).await?;
    let prepare_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ledger = Ledger::open(&job, &tenant, &StateLocation::JobFolder, false, false)?;
    let state_open_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let budget = tenant.plugin.limits().call_deadline();
    let mut kept = Vec::new();
    for _ in 0..c {
        kept.push(tenant.plugin.instantiate(tenant.policy.clone(), budget).await?);
    }
    let instantiate_secs = t.elapsed().as_secs_f64();

    let batch = tenant.plugin.limits().batch_size.max(1);
    let queue: VecDeque<Vec<SyncItem>> = items.chunks(batch).map(<[SyncItem]>::to_vec).collect();
    let queue = Arc::new(Mutex::new(queue));
    let tenant = Arc::new(tenant);
    let (t, cpu) = (Instant::now(), proc_cpu_secs("/proc/self/stat"));
    let mut senders = tokio::task::JoinSet::new();
    for instance in kept {
        senders.spawn(sender(tenant.clone(), queue.clone(), instance));
    }
    let mut created = 0;
    while let Some(r) = senders.join_next().await {
        created += r??;
    }
    let send_secs = t.elapsed().as_secs_f64();
    let send_cpu_secs = proc_cpu_secs("/proc/self/stat") - cpu;
    drop(ledger);
    if created != items.len() {
        bail!("the component created {created} of {}", items.len());
    }
    Ok(HostRun { prepare_secs, state_open_secs, instantiate_secs, send_secs, send_cpu_secs, batch_size: batch })
}

/// One sender: takes batches until none is left, in the instance it keeps; the records created.
async fn sender(tenant: Arc<Tenant>, queue: Arc<Mutex<VecDeque<Vec<SyncItem>>>>, instance: host_harness::sandbox::Instance) -> Result<usize> {
    let mut kept = Some(instance);
    let mut created = 0;
    loop {
        let Some(items) = queue.lock().unwrap().pop_front() else { return Ok(created) };
        let ctx = BatchContext { sync_id: tenant.sync_id.clone(), attempt: 0 };
        let t = &tenant;
        let results = t.plugin.sync_batch(&mut kept, t.policy.clone(), ctx, &t.settings, t.mode, &t.mapping, items).await?;
        created += results.iter().filter(|r| r.outcome == Outcome::Created).count();
        if kept.is_none() {
            bail!("the instance was not kept: {:?}", results.first());
        }
    }
}
