//! One run of one sync inside the service: prepare the tenant, run it with the worker's stop
//! signal, keep its report beside the sync state, count it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Utc;

use crate::egress::ratelimit::LimiterRegistry;
use crate::error::HostError;
use crate::job::JobConfig;
use crate::sandbox::RuntimeConfig;
use crate::service::metrics::Metrics;
use crate::service::registry::{LastRun, RunOutcome};
use crate::service::coordinator::{Coordinator, lease};
use crate::state::StateLocation;
use crate::state::postgres::PgState;
use crate::sync::report::RunReport;
use crate::sync::{Harness, RunOptions, Tenant};

/// The folder a sync's run reports are kept in.
pub fn reports_dir(job: &JobConfig) -> PathBuf {
    job.sync.state_dir.join("reports")
}

/// The report file of run `run_id` (run numbers are unique within one state folder).
pub fn report_path(job: &JobConfig, run_id: i64) -> PathBuf {
    reports_dir(job).join(format!("run-{run_id}.json"))
}

/// Runs syncs. Harnesses are shared by jobs with the same limits and cache folder; every
/// harness shares one limiter registry, so an organization has one limiter in this process
/// whichever jobs write to it.
pub struct Runner {
    limiters: Arc<LimiterRegistry>,
    harnesses: Mutex<HashMap<String, Arc<Harness>>>,
    metrics: Arc<Metrics>,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Runner {
    /// A runner whose runs stop when `stop` becomes true.
    pub fn new(metrics: Arc<Metrics>, stop: tokio::sync::watch::Receiver<bool>) -> Runner {
        Runner { limiters: Arc::new(LimiterRegistry::new()), harnesses: Mutex::default(), metrics, stop }
    }

    fn harness(&self, job: &JobConfig) -> Result<Arc<Harness>, HostError> {
        let key = format!("{:?}|{:?}", job.sync.cache_dir, job.limits);
        let mut map = self.harnesses.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = map.get(&key) {
            return Ok(h.clone());
        }
        let config = RuntimeConfig { cache_dir: job.sync.cache_dir.clone(), pooling: false, limits: job.limits.clone() };
        let h = Arc::new(Harness::with_limiters(config, self.limiters.clone())?);
        map.insert(key, h.clone());
        Ok(h)
    }

    /// Run `job` once; what the admin API shows of it afterwards.
    pub async fn run(&self, job: &JobConfig) -> LastRun {
        let (started_at, clock) = (Utc::now(), Instant::now());
        let result = self.run_inner(job, None).await;
        let (finished_at, secs) = (Utc::now(), clock.elapsed().as_secs_f64());
        if let Ok(report) = &result
            && let Some(run_id) = report.run_id
        {
            warn_if_unkept(job, write_report(&report_path(job, run_id), report).map_err(|e| e.to_string()));
        }
        self.account(job, result, started_at, finished_at, secs)
    }

    /// Run `job` once under its organization's lease, with its state in the coordinator's
    /// database (fenced by the lease); the report is kept there too.
    pub async fn run_leased(&self, job: &JobConfig, coordinator: &Arc<Coordinator>) -> LastRun {
        let (started_at, clock) = (Utc::now(), Instant::now());
        let result = self.run_inner(job, Some(coordinator)).await;
        let (finished_at, secs) = (Utc::now(), clock.elapsed().as_secs_f64());
        if let Ok(report) = &result
            && let Some(run_id) = report.run_id
        {
            warn_if_unkept(job, keep_report_in_database(&coordinator.config.url, run_id, report).await);
        }
        self.account(job, result, started_at, finished_at, secs)
    }

    /// Count a finished run and say what the admin API shows of it.
    fn account(
        &self,
        job: &JobConfig,
        result: Result<RunReport, HostError>,
        started_at: chrono::DateTime<Utc>,
        finished_at: chrono::DateTime<Utc>,
        secs: f64,
    ) -> LastRun {
        let id = &job.sync.id;
        match result {
            Ok(report) => {
                let outcome = if report.aborted.is_some() {
                    RunOutcome::Stopped
                } else if report.has_failures() {
                    RunOutcome::RecordsFailed
                } else {
                    RunOutcome::Succeeded
                };
                self.metrics.run_finished(id, outcome, Some(&report), secs);
                let message = report.aborted.clone();
                tracing::info!(sync = %id, "{}", report.summary());
                LastRun { run_id: report.run_id, outcome, started_at, finished_at, counts: Some(report.counts), message }
            }
            Err(e) => {
                self.metrics.run_finished(id, RunOutcome::Error, None, secs);
                tracing::warn!(sync = %id, "the run could not start: {e}");
                LastRun { run_id: None, outcome: RunOutcome::Error, started_at, finished_at, counts: None, message: Some(e.to_string()) }
            }
        }
    }

    async fn run_inner(&self, job: &JobConfig, coordinator: Option<&Arc<Coordinator>>) -> Result<RunReport, HostError> {
        let mut opts = RunOptions { stop: Some(self.stop.clone()), ..RunOptions::default() };
        let harness = self.harness(job)?;
        let tenant = harness.prepare(job, &opts).await?;
        let tracked = self.metrics.track(&tenant.resolved.rate_limit_key, tenant.rate_per_second, tenant.policy.stats.clone());
        let report = match coordinator {
            None => harness.run(&tenant, job, &opts).await,
            Some(c) => self.run_under_lease(&harness, &tenant, job, &mut opts, c).await,
        };
        self.metrics.untrack(tracked);
        report
    }

    /// Take the organization's lease, run with fenced state and the limiter held to the lease,
    /// stop the run if the lease is lost, hand the lease back.
    async fn run_under_lease(
        &self,
        harness: &Harness,
        tenant: &Tenant,
        job: &JobConfig,
        opts: &mut RunOptions,
        coordinator: &Arc<Coordinator>,
    ) -> Result<RunReport, HostError> {
        let org = tenant.resolved.rate_limit_key.clone();
        let limiter = tenant.policy.limiter.clone().ok_or_else(|| HostError::Config("a coordinated run needs the organization's limiter".into()))?;
        let mut worker_stop = self.stop.clone();
        let grant = coordinator.book.acquire(&org, &mut worker_stop).await?;
        tracing::info!(sync = %job.sync.id, org = %org, token = grant.fence.token, "lease taken");
        // The run stops when the worker stops or the lease is lost.
        let (run_stop, run_stop_rx) = tokio::sync::watch::channel(false);
        let (done, done_rx) = tokio::sync::watch::channel(false);
        let forward = {
            let (mut worker_stop, run_stop) = (self.stop.clone(), run_stop.clone());
            tokio::spawn(async move {
                if worker_stop.wait_for(|s| *s).await.is_ok() {
                    let _ = run_stop.send(true);
                }
            })
        };
        // Open the limiter before the first request (the keeper moves the deadline on).
        limiter.set_lease_deadline(Some(grant.deadline));
        let keeper = tokio::spawn(lease::keep(coordinator.book.clone(), grant.clone(), limiter.clone(), run_stop, done_rx));
        opts.stop = Some(run_stop_rx);
        opts.state = StateLocation::Postgres { url: coordinator.config.url.clone(), fence: Some(grant.fence.clone()) };
        let report = harness.run(tenant, job, opts).await;
        let _ = done.send(true);
        let _ = keeper.await;
        forward.abort();
        // No request from here on until the lease is taken again.
        limiter.set_lease_deadline(Some(tokio::time::Instant::now()));
        if let Err(e) = coordinator.book.release(&grant.fence, limiter.window()).await {
            tracing::warn!(org = %org, "cannot hand the lease back (it runs out by itself): {e}");
        }
        report
    }

    /// The organization a job writes to (its rate-limit key), from the plugin's own validation.
    pub async fn organization_of(&self, job: &JobConfig) -> Result<String, HostError> {
        let harness = self.harness(job)?;
        let tenant = harness.prepare(job, &RunOptions::default()).await?;
        Ok(tenant.resolved.rate_limit_key.clone())
    }
}

/// Keep a report in the coordination database (the blocking client: on the blocking pool).
async fn keep_report_in_database(url: &str, run_id: i64, report: &RunReport) -> Result<(), String> {
    let json = serde_json::to_string(report).map_err(|e| e.to_string())?;
    let url = url.to_string();
    tokio::task::spawn_blocking(move || PgState::open(&url, None).and_then(|pg| pg.set_report(run_id, &json)).map_err(|e| e.to_string()))
        .await
        .map_err(|e| format!("the report task failed: {e}"))?
}

fn warn_if_unkept(job: &JobConfig, kept: Result<(), String>) {
    if let Err(e) = kept {
        tracing::warn!(sync = %job.sync.id, "cannot keep the run report: {e}");
    }
}

fn write_report(path: &Path, report: &RunReport) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    report.write(path)
}
