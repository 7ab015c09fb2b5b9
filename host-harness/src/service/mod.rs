//! `destination-host serve`: a long-running worker that runs many tenants' syncs.
//!
//! | module | what |
//! |---|---|
//! | [`catalog`] | the job folder: one job per `*.toml` file, unusable files listed with their error |
//! | [`watch`] | rescanning the folder when it changes |
//! | [`schedule`] | `every`, `cron` or on demand |
//! | [`registry`] | each sync's phase, pause, next due time and last run |
//! | [`scheduler`] | due and triggered syncs into a fixed number of run slots |
//! | [`runner`] | one run: prepare, run, keep the report, count it |
//! | [`admin`] | the HTTP admin API, `/metrics`, `/healthz`, `/readyz` |
//! | [`auth`] | the admin token |
//! | [`metrics`] | the Prometheus counters |
//! | [`coordinator`] | many workers: state, run queue and per-organization leases in PostgreSQL |
//!
//! Shutdown (SIGTERM or Ctrl-C): `/readyz` turns 503, nothing new is taken, each run in
//! progress finishes the batches it has in flight and hands the rest back (not attempted, state
//! untouched, sent by the next run); then the API closes. State is written only in
//! transactions, so even a run cut off by the grace period leaves it consistent.

pub mod admin;
pub mod auth;
pub mod catalog;
pub mod coordinator;
pub mod metrics;
pub mod registry;
pub mod runner;
pub mod schedule;
pub mod scheduler;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch as signal};

use self::auth::AdminToken;
use self::metrics::Metrics;
use self::registry::{Refused, Registry};
use self::runner::Runner;

/// How a worker is set up (from the command line).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The job folder.
    pub jobs_dir: PathBuf,
    /// Where the worker keeps its own files (the set of paused syncs).
    pub data_dir: PathBuf,
    /// Where the admin API listens.
    pub listen: SocketAddr,
    /// The admin token.
    pub token: AdminToken,
    /// Syncs run at once.
    pub slots: usize,
    /// How long shutdown waits for runs to hand back their work before giving up on them.
    pub shutdown_grace: Duration,
    /// Share the work with other workers through PostgreSQL (`None`: this process alone, with
    /// SQLite state in each job's folder).
    pub coordinator: Option<coordinator::CoordinatorConfig>,
}

/// What the admin API reaches.
pub struct Service {
    /// The syncs.
    pub registry: Arc<Registry>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    queue: mpsc::UnboundedSender<String>,
    ready: AtomicBool,
    token: AdminToken,
    /// Set when the work is shared through PostgreSQL.
    pub coordinator: Option<Arc<coordinator::Coordinator>>,
    runner: Arc<Runner>,
}

impl Service {
    /// Queue a run of `id` now (with a coordinator, in the shared queue: any worker may run it).
    pub fn trigger(&self, id: &str) -> Result<(), Refused> {
        self.registry.trigger(id)?;
        match &self.coordinator {
            None => {
                if self.queue.send(id.to_string()).is_err() {
                    // The dispatcher is gone: the worker is shutting down.
                    self.registry.unqueue(id);
                }
            }
            Some(c) => {
                self.registry.unqueue(id);
                let (c, runner, id) = (c.clone(), self.runner.clone(), id.to_string());
                let Some(job) = self.registry.job(&id) else { return Err(Refused::NotFound(id)) };
                tokio::spawn(async move {
                    if let Err(e) = coordinator::queue_run(&c, &runner, &id, &job).await {
                        tracing::warn!(sync = %id, "{e}");
                    }
                });
            }
        }
        Ok(())
    }

    /// Whether the worker takes work.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// Run the worker until `shutdown` resolves; `on_listen` learns the admin API's address once it
/// is bound (port 0 picks a free one).
pub async fn serve(config: ServeConfig, shutdown: impl Future<Output = ()>, on_listen: impl FnOnce(SocketAddr)) -> Result<(), String> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| format!("cannot create the data folder {}: {e}", config.data_dir.display()))?;
    let mut registry = Registry::new(config.data_dir.join("paused.json"))?;
    if config.coordinator.is_some() {
        registry = registry.with_shared_slots();
    }
    let registry = Arc::new(registry);
    let first = catalog::scan(&config.jobs_dir)?;
    for p in &first.problems {
        tracing::warn!("{}: {}", p.file, p.error);
    }
    tracing::info!("{} job(s) in {}", first.jobs.len(), config.jobs_dir.display());
    registry.apply(first, Utc::now());
    let (_watcher, changes) = watch::watch_folder(&config.jobs_dir)?;

    let (stop_tx, stop) = signal::channel(false);
    let metrics = Arc::new(Metrics::new());
    let runner = Arc::new(Runner::new(metrics.clone(), stop.clone()));
    let (queue, queued) = mpsc::unbounded_channel();
    let coordinator = match &config.coordinator {
        None => None,
        Some(c) => Some(Arc::new(connect_coordinator(c.clone()).await?)),
    };
    let svc = Arc::new(Service {
        registry: registry.clone(),
        metrics: metrics.clone(),
        queue: queue.clone(),
        ready: AtomicBool::new(false),
        token: config.token.clone(),
        coordinator: coordinator.clone(),
        runner: runner.clone(),
    });

    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| format!("cannot read the listening address: {e}"))?;
    let (api_stop_tx, mut api_stop) = signal::channel(false);
    let api = tokio::spawn(axum::serve(listener, admin::router(svc.clone())).with_graceful_shutdown(async move {
        let _ = api_stop.wait_for(|s| *s).await;
    }).into_future());
    let rescans = tokio::spawn(watch::rescan_on_change(config.jobs_dir.clone(), registry.clone(), changes, stop.clone()));
    let (ticker, mut dispatcher) = match &coordinator {
        None => (
            tokio::spawn(scheduler::tick(registry.clone(), metrics.clone(), queue, stop.clone())),
            tokio::spawn(scheduler::dispatch(registry.clone(), runner, config.slots, queued, stop.clone())),
        ),
        Some(c) => {
            drop(queued);
            let dispatcher = coordinator::start_queue(c.clone(), registry.clone(), runner.clone(), config.slots, config.shutdown_grace, stop.clone()).await?;
            (tokio::spawn(coordinator::tick(c.clone(), registry.clone(), runner, metrics.clone(), stop.clone())), dispatcher)
        }
    };
    svc.ready.store(true, Ordering::SeqCst);
    on_listen(addr);

    shutdown.await;
    tracing::info!("shutting down: no new runs; runs in progress finish their batches in flight");
    svc.ready.store(false, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    let _ = ticker.await;
    let _ = rescans.await;
    if tokio::time::timeout(config.shutdown_grace, &mut dispatcher).await.is_err() {
        tracing::warn!("runs still going after {:?}; leaving them (state keeps only what was confirmed)", config.shutdown_grace);
        dispatcher.abort();
    }
    let _ = api_stop_tx.send(true);
    match api.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("the admin API failed: {e}")),
        Err(e) => Err(format!("the admin API task failed: {e}")),
    }
}

/// Migrate the coordination database (state and coordination tables) and connect the lease book.
async fn connect_coordinator(config: coordinator::CoordinatorConfig) -> Result<coordinator::Coordinator, String> {
    let url = config.url.clone();
    // The blocking client: off the async workers.
    tokio::task::spawn_blocking(move || crate::state::postgres::PgState::open(&url, None).map(drop))
        .await
        .map_err(|e| format!("the migration task failed: {e}"))?
        .map_err(|e| e.to_string())?;
    let c = coordinator::Coordinator::connect(config).await?;
    tracing::info!(worker = %c.config.worker_id, "sharing the work through {}", crate::source::redact_connection_string(&c.config.url));
    Ok(c)
}
