//! Many workers, one PostgreSQL: shared state, a shared run queue, a lease per organization.
//!
//! | module | what |
//! |---|---|
//! | [`lease`] | per-organization leases with fencing tokens; the keeper that renews one during a run |
//! | [`queue`] | the shared run queue (graphile_worker) and its job, "run this sync" |
//!
//! Flow: every worker reads the same job folder. When a schedule slot comes, each worker tries
//! to claim it in `destination_host.schedule`; the one that moves it forward queues the run, in
//! the queue named after the sync's organization. A worker that takes the job takes the
//! organization's lease (waiting while a stale holder's lease runs out), runs the sync with its
//! state in PostgreSQL fenced by the lease, and hands the lease back.

pub mod lease;
pub mod queue;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use graphile_worker::WorkerUtils;

use self::lease::LeaseBook;
use crate::source::redact_connection_string;

/// How the workers meet.
#[derive(Clone)]
pub struct CoordinatorConfig {
    /// The PostgreSQL URL (it may hold a password: never shown).
    pub url: String,
    /// How long a lease lasts unrenewed (also how long before a silent worker's jobs move on).
    pub lease_ttl: Duration,
    /// This worker's id.
    pub worker_id: String,
}

impl std::fmt::Debug for CoordinatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorConfig")
            .field("server", &redact_connection_string(&self.url))
            .field("lease_ttl", &self.lease_ttl)
            .field("worker_id", &self.worker_id)
            .finish()
    }
}

/// The worker's link to the others.
pub struct Coordinator {
    /// Leases and schedule slots.
    pub book: Arc<LeaseBook>,
    /// Adds jobs to the queue (set once the queue worker is up).
    pub utils: OnceLock<WorkerUtils>,
    /// The configuration.
    pub config: CoordinatorConfig,
}

impl Coordinator {
    /// Connect the lease book (the queue's utils come from the queue worker, once it is up).
    pub async fn connect(config: CoordinatorConfig) -> Result<Coordinator, String> {
        let (client, connection) = tokio_postgres::connect(&config.url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("cannot reach the coordination database {}: {e}", redact_connection_string(&config.url)))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!("the coordination database connection ended: {e}");
            }
        });
        let book = Arc::new(LeaseBook::new(client, config.worker_id.clone(), config.lease_ttl));
        Ok(Coordinator { book, utils: OnceLock::new(), config })
    }
}

/// Start the shared queue's worker: it takes up to `slots` runs at once, beats its heart a few
/// times per lease length, and after one lease length of silence from another worker hands that
/// worker's jobs to the living. Runs until `stop` becomes true.
pub async fn start_queue(
    coordinator: Arc<Coordinator>,
    registry: Arc<crate::service::registry::Registry>,
    runner: Arc<crate::service::runner::Runner>,
    slots: usize,
    shutdown_grace: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let ttl = coordinator.config.lease_ttl;
    let context = queue::QueueContext { registry, runner, coordinator: coordinator.clone() };
    let worker = graphile_worker::WorkerOptions::default()
        .schema("destination_host_queue")
        .database_url(&coordinator.config.url)
        .max_pg_conn(4)
        .concurrency(slots.max(1))
        .poll_interval(Duration::from_millis(250))
        .define_job::<queue::RunSync>()
        .add_extension(context)
        .listen_os_shutdown_signals(false)
        .shutdown_signal(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        // Runs in progress hand their unsent batches back on the same signal; the queue waits
        // for them as long as the worker does.
        .shutdown_grace_period(shutdown_grace)
        .heartbeat_interval((ttl / 5).max(Duration::from_millis(200)))
        .sweep_interval((ttl / 2).max(Duration::from_millis(500)))
        .sweep_threshold(ttl)
        .recovery_delay(Duration::ZERO)
        .init()
        .await
        .map_err(|e| format!("cannot start the run queue in {}: {e}", redact_connection_string(&coordinator.config.url)))?;
    let _ = coordinator.utils.set(worker.create_utils());
    Ok(tokio::spawn(async move {
        if let Err(e) = worker.run().await {
            tracing::error!("the run queue stopped: {e}");
        }
    }))
}

/// Claim the due schedule slots and queue the runs this worker won, until `stop`.
pub async fn tick(
    coordinator: Arc<Coordinator>,
    registry: Arc<crate::service::registry::Registry>,
    runner: Arc<crate::service::runner::Runner>,
    metrics: Arc<crate::service::metrics::Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(crate::service::scheduler::TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        for (id, slot, job) in registry.take_due_slots(chrono::Utc::now()) {
            match coordinator.book.claim_slot(&id, slot).await {
                Ok(true) => {
                    if let Err(e) = queue_run(&coordinator, &runner, &id, &job).await {
                        tracing::warn!(sync = %id, "{e}");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(sync = %id, "{e}"),
            }
        }
        metrics.sample();
    }
}

/// Queue a run of `job` in its organization's queue.
pub async fn queue_run(
    coordinator: &Coordinator,
    runner: &crate::service::runner::Runner,
    id: &str,
    job: &crate::job::JobConfig,
) -> Result<(), String> {
    let org = runner.organization_of(job).await.map_err(|e| format!("cannot queue a run: {e}"))?;
    queue::enqueue(coordinator, id, &org).await
}
