//! The shared run queue: graphile_worker's PostgreSQL job queue (jobs taken with `SKIP LOCKED`,
//! heartbeats, and a dead worker's jobs handed to the living).
//!
//! One job = one run of one sync. Its queue is the sync's organization, and graphile_worker runs
//! the jobs of one queue one at a time across all workers: so the tenants of an organization run
//! one after another on whichever worker holds its lease, and one sync never runs twice at once.
//! The job key is the sync id: a sync waits in the queue at most once.

use std::sync::Arc;

use chrono::Utc;
use graphile_worker::{IntoTaskHandlerResult, JobSpec, TaskHandler, WorkerContext};
use serde::{Deserialize, Serialize};

use crate::service::coordinator::Coordinator;
use crate::service::registry::{Registry, RunOutcome};
use crate::service::runner::Runner;

/// The job: run one sync.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSync {
    /// The sync.
    pub sync_id: String,
}

/// What a job needs from its worker.
#[derive(Clone)]
pub struct QueueContext {
    /// The worker's syncs.
    pub registry: Arc<Registry>,
    /// Runs syncs.
    pub runner: Arc<Runner>,
    /// Leases.
    pub coordinator: Arc<Coordinator>,
}

impl std::fmt::Debug for QueueContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueueContext")
    }
}

impl TaskHandler for RunSync {
    const IDENTIFIER: &'static str = "destination_host_run_sync";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let Some(q) = ctx.get_ext::<QueueContext>() else { return Err("the worker was set up without its queue context".to_string()) };
        let Some(job) = q.registry.start_now(&self.sync_id, Utc::now()) else {
            // Removed from this worker's job folder, or paused: nothing to run.
            tracing::info!(sync = %self.sync_id, "queued run skipped: the sync is paused or not in this worker's job folder");
            return Ok(());
        };
        let last = q.runner.run_leased(&job, &q.coordinator).await;
        let outcome = last.outcome;
        let message = last.message.clone();
        q.registry.finish(&self.sync_id, last, Utc::now());
        match outcome {
            // A run stopped early (shutdown, lost lease) or that could not start goes back to
            // the queue: another worker (or this one, later) carries on from the confirmed state.
            RunOutcome::Stopped | RunOutcome::Error => Err(message.unwrap_or_else(|| "the run stopped early".into())),
            _ => Ok(()),
        }
    }
}

/// Queue a run of `sync_id` for organization `org`.
pub async fn enqueue(coordinator: &Coordinator, sync_id: &str, org: &str) -> Result<(), String> {
    let spec = JobSpec { queue_name: Some(org.to_string()), job_key: Some(sync_id.to_string()), max_attempts: Some(25), ..JobSpec::default() };
    let utils = coordinator.utils.get().ok_or_else(|| "the run queue is not up yet".to_string())?;
    utils
        .add_job(RunSync { sync_id: sync_id.to_string() }, spec)
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot queue a run of {sync_id}: {e}"))
}
