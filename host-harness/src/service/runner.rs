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
use crate::sync::report::RunReport;
use crate::sync::{Harness, RunOptions};

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
        let started_at = Utc::now();
        let clock = Instant::now();
        let result = self.run_inner(job).await;
        let finished_at = Utc::now();
        let secs = clock.elapsed().as_secs_f64();
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
                if let Some(run_id) = report.run_id
                    && let Err(e) = write_report(&report_path(job, run_id), &report)
                {
                    tracing::warn!(sync = %id, "cannot keep the run report: {e}");
                }
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

    async fn run_inner(&self, job: &JobConfig) -> Result<RunReport, HostError> {
        let opts = RunOptions { stop: Some(self.stop.clone()), ..RunOptions::default() };
        let harness = self.harness(job)?;
        let tenant = harness.prepare(job, &opts).await?;
        let tracked = self.metrics.track(&tenant.resolved.rate_limit_key, tenant.rate_per_second, tenant.policy.stats.clone());
        let report = harness.run(&tenant, job, &opts).await;
        self.metrics.untrack(tracked);
        report
    }
}

fn write_report(path: &Path, report: &RunReport) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    report.write(path)
}
