//! One sync run as a pipeline of named stages:
//!
//! 1. [`read`]: the source streams rows on a blocking thread;
//! 2. [`map`]: each chunk is mapped in the sandbox, in a task of its own, one chunk ahead of
//!    [`planning`], which fingerprints and diffs it against state; only new, changed and
//!    retryable records go on;
//! 3. [`send`]: adaptive concurrent senders, each keeping its instance between batches of the run;
//! 4. [`record`]: the one writer of state and counts; state advances only for records the
//!    destination confirmed;
//! 5. [`retry_rounds`]: retryable records wait out their backoff outside any instance and go
//!    again;
//! 6. the run is closed in the ledger and its [`RunReport`] assembled.
//!
//! Stages talk through bounded channels ([`work`] holds what flows between them), so rows are
//! never held for the whole table (only the source's key set grows, a 128-bit hash per key).
//! Lifetime: everything here lives for one run.

mod map;
mod planning;
mod read;
mod record;
mod retry_rounds;
mod send;
mod work;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::Instant;

use self::map::Mapper;
use self::planning::{PlanSummary, Planning};
use self::read::Reader;
use self::record::Recorder;
use self::send::Senders;
use self::work::RunShared;
use crate::error::HostError;
use crate::job::JobConfig;
use crate::results::{ResultsError, Shipper};
use crate::sync::ledger::Ledger;
use crate::sync::progress::Progress;
use crate::sync::report::{Counts, RunReport};
use crate::sync::retry::RetryPolicy;
use crate::sync::{Harness, RunOptions, Tenant};

impl Harness {
    /// Run (or, with `dry_run`, plan) one sync of `tenant`.
    pub async fn run(&self, tenant: &Tenant, job: &JobConfig, opts: &RunOptions) -> Result<RunReport, HostError> {
        if !opts.dry_run && !tenant.has_credentials {
            return Err(HostError::MissingCredentials { tenant: tenant.name.clone() });
        }
        if tenant.policy.redirect.is_some() {
            tracing::warn!(
                tenant = %tenant.name,
                "this run sends its API traffic to a local emulator ({}=1): for development only, never with a real token",
                crate::egress::ALLOW_EMULATOR_ENV
            );
        }
        let meter = Meter::start(tenant);
        let limits = tenant.plugin.limits().clone();
        // A results target that cannot work is found before the run starts.
        let results_target = match (&job.results, opts.dry_run) {
            (Some(r), false) => Some(r.target(&job.source)?),
            _ => None,
        };
        let ledger = Ledger::open(job, tenant, &opts.state, opts.dry_run, opts.only_failed)?;
        let shipper = match results_target {
            Some(spec) => {
                // Opening the target (a database connection) and delivering leftovers block.
                let (location, dir, sync_id) = (opts.state.clone(), job.sync.state_dir.clone(), tenant.sync_id.clone());
                let started = tokio::task::spawn_blocking(move || Shipper::start(spec, location, dir, sync_id))
                    .await
                    .unwrap_or_else(|e| Err(ResultsError::Config(format!("the results thread failed to start: {e}"))));
                match started {
                    Ok(s) => Some(s),
                    Err(e) => {
                        let message = e.to_string();
                        let _ = ledger.finish(&Counts::default(), 0, Some(&message), None);
                        return Err(e.into());
                    }
                }
            }
            None => None,
        };
        let shared = Arc::new(RunShared::default());
        let _stop_watch = opts.stop.clone().map(|stop| StopWatch::spawn(stop, shared.clone()));
        let progress = Progress::new(opts.progress, &tenant.name);

        let mut reader = Reader::spawn(job.source.clone());
        let mapper = Mapper::spawn(tenant, &mut reader);
        let mut senders = Senders::spawn(tenant, &limits, opts.dry_run, &shared);
        let mut recorder = Recorder::new(&ledger, RetryPolicy::from_limits(&limits), &shared, &progress, shipper.as_ref());
        let plan = Planning {
            tenant,
            ledger: &ledger,
            opts,
            limits: &limits,
            shared: &shared,
            progress: &progress,
            senders: &mut senders,
            recorder: &mut recorder,
        }
        .run(mapper)
        .await;
        let source_keys = reader.finish().await;
        if !opts.dry_run {
            retry_rounds::run(&mut senders, &mut recorder, &shared, limits.batch_size).await;
        }
        senders.close(&mut recorder).await;
        recorder.flush_results();
        progress.finish();
        if let Some(e) = &plan.source_error {
            shared.abort(format!("the source failed: {e}"));
        }

        let Recorder { mut counts, failures, .. } = recorder;
        let mut notes = if opts.dry_run { preview_notes(tenant, &ledger, &shared, &plan, &counts) } else { Vec::new() };
        if let Some(shipper) = shipper {
            let target = shipper.target().to_string();
            match tokio::task::spawn_blocking(move || shipper.finish()).await {
                Ok(Ok(rows)) => notes.push(format!("{rows} result row(s) written to {target}")),
                Ok(Err(e)) => shared.abort(format!("{e} (results not yet written stay in the sync state and go out with the next run)")),
                Err(e) => shared.abort(format!("the results thread failed: {e}")),
            }
        }
        notes.extend(ledger.notes());
        let aborted = shared.abort_reason();
        let egress = meter.since_start(tenant);
        let requests = egress.requests;
        let finished = ledger.finish(&counts, requests, aborted.as_deref(), source_keys.as_ref());
        if let Some(e) = plan.fatal {
            return Err(e);
        }
        counts.disappeared = finished?;
        if counts.disappeared > 0 {
            notes.push(format!(
                "{} record(s) synced before are no longer returned by the source; they were left as they are in the destination",
                counts.disappeared
            ));
        }
        let elapsed = meter.started.elapsed().as_secs_f64();
        Ok(RunReport {
            sync_id: tenant.sync_id.clone(),
            run_id: ledger.run_id(),
            tenant: tenant.name.clone(),
            mode: format!("{:?}", tenant.mode).to_lowercase(),
            plugin: format!("{} {}", tenant.spec.name, tenant.spec.version),
            component_sha256: tenant.plugin.hash().to_string(),
            dry_run: opts.dry_run,
            counts,
            requests,
            throttled: egress.throttled,
            denied: egress.denied,
            elapsed_secs: elapsed,
            requests_per_second: if elapsed > 0.0 { requests as f64 / elapsed } else { 0.0 },
            rate_limit_per_second: tenant.rate_per_second,
            aborted,
            notes,
            preview: plan.preview,
            failures,
        })
    }
}

/// Stops the run when the host shuts down; ends with the run (dropping it ends the watch).
struct StopWatch(tokio::task::JoinHandle<()>);

impl StopWatch {
    fn spawn(mut stop: tokio::sync::watch::Receiver<bool>, shared: Arc<RunShared>) -> StopWatch {
        StopWatch(tokio::spawn(async move {
            if stop.wait_for(|s| *s).await.is_ok() {
                shared.abort("the host is shutting down: the batches in flight were finished, the rest goes with the next run".into());
            }
        }))
    }
}

impl Drop for StopWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The tenant's egress counters when the run started: they live as long as the tenant, and a
/// report counts this run only.
struct Meter {
    started: Instant,
    at_start: EgressCounts,
}

/// Requests sent, 429s received and requests the policy refused.
#[derive(Clone, Copy)]
struct EgressCounts {
    requests: u64,
    throttled: u64,
    denied: u64,
}

impl EgressCounts {
    fn of(tenant: &Tenant) -> EgressCounts {
        let s = &tenant.policy.stats;
        EgressCounts {
            requests: s.requests.load(Ordering::Relaxed),
            throttled: s.throttled.load(Ordering::Relaxed),
            denied: s.denied.load(Ordering::Relaxed),
        }
    }
}

impl Meter {
    fn start(tenant: &Tenant) -> Meter {
        Meter { started: Instant::now(), at_start: EgressCounts::of(tenant) }
    }

    /// What this run added to the tenant's counters (read once every sender has finished).
    fn since_start(&self, tenant: &Tenant) -> EgressCounts {
        let now = EgressCounts::of(tenant);
        EgressCounts {
            requests: now.requests.saturating_sub(self.at_start.requests),
            throttled: now.throttled.saturating_sub(self.at_start.throttled),
            denied: now.denied.saturating_sub(self.at_start.denied),
        }
    }
}

/// What a dry run would cost, and how its records split into new, changed, unchanged, retried
/// and rejected.
fn preview_notes(tenant: &Tenant, ledger: &Ledger, shared: &RunShared, plan: &PlanSummary, counts: &Counts) -> Vec<String> {
    let secs = plan.estimated_requests as f64 / f64::from(tenant.rate_per_second);
    let pc = ledger.plan_counts();
    vec![
        format!(
            "a sync would send {} record(s): about {} request(s), {:.0} s at {}/s",
            shared.queued.load(Ordering::Relaxed),
            plan.estimated_requests,
            secs.ceil(),
            tenant.rate_per_second
        ),
        format!(
            "preview: {} new (would be created), {} changed (would be updated), {} unchanged, {} retried from the last run, {} rejected ({} invalid rows, {} still invalid)",
            pc.new,
            pc.changed,
            pc.unchanged,
            pc.retry_failed,
            counts.invalid + pc.still_invalid,
            counts.invalid,
            pc.still_invalid
        ),
    ]
}
