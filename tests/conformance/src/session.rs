//! One test's world: an emulator, a harness (engine, limiter registry) and a temp folder.

use gladly_emulator::{Emulator, EmulatorConfig, RecordedRequest};
use host_harness::job::JobConfig;
use host_harness::error::HostError;
use host_harness::sync::report::RunReport;
use host_harness::sandbox::RuntimeConfig;
use host_harness::sync::{Harness, RunOptions, Tenant};
use serde_json::Value;
use toml::Table;

use crate::checks;
use crate::component;
use crate::job::{JobSpec, ORG, limits_from, quick_limits};
use test_kit::TempDir;
use test_kit::profiles;

/// An emulator, a harness and a folder for job files and state.
pub struct Session {
    /// The emulator every tenant's traffic is redirected to.
    pub emulator: Emulator,
    /// The harness; tenants of one organization share its rate limiter.
    pub harness: Harness,
    /// The emulator's requests per second per organization (what the rate invariant checks).
    pub rate_limit: u32,
    limits: Table,
    dir: TempDir,
}

impl Session {
    /// A session with the suite's quick limits.
    pub async fn start(config: EmulatorConfig) -> Session {
        Session::with_limits(config, quick_limits()).await
    }

    /// A session whose harness and jobs use these `[limits]`.
    pub async fn with_limits(config: EmulatorConfig, limits: Table) -> Session {
        component::warm_up();
        let rate_limit = config.rate_limit_per_second;
        let emulator = Emulator::start(config).await.expect("the emulator starts on 127.0.0.1");
        let harness = Harness::new(RuntimeConfig {
            cache_dir: Some(component::cache_dir()),
            pooling: false,
            limits: limits_from(&limits),
        })
        .expect("the harness starts");
        Session { emulator, harness, rate_limit, limits, dir: TempDir::new("session") }
    }

    /// An emulator config with a raised rate (200/s): for tests where the rate is not the point.
    pub fn fast_emulator() -> EmulatorConfig {
        EmulatorConfig { rate_limit_per_second: 200, ..EmulatorConfig::default() }
    }

    /// The job of `spec`, in a folder named after its sync id: the same spec run twice shares
    /// its state, as consecutive runs of one sync do.
    pub fn job(&self, spec: &JobSpec) -> JobConfig {
        self.job_in(spec, &spec.sync_id)
    }

    /// The job of `spec` in the folder `folder` (a new folder means fresh state).
    pub fn job_in(&self, spec: &JobSpec, folder: &str) -> JobConfig {
        spec.materialize(&self.dir.path().join(folder), &self.limits)
    }

    /// Run options sending the tenant's traffic to the emulator.
    pub fn options(&self) -> RunOptions {
        RunOptions { endpoint: Some(self.emulator.base_url()), ..RunOptions::default() }
    }

    /// Validates the job and builds its tenant.
    pub async fn prepare(&self, job: &JobConfig) -> Result<Tenant, HostError> {
        self.harness.prepare(job, &self.options()).await
    }

    /// Prepares and runs one sync.
    pub async fn run(&self, job: &JobConfig) -> Result<RunReport, HostError> {
        let opts = self.options();
        let tenant = self.harness.prepare(job, &opts).await?;
        self.harness.run(&tenant, job, &opts).await
    }

    /// Runs a job that must get through validation; panics with the host error otherwise.
    pub async fn run_ok(&self, job: &JobConfig) -> RunReport {
        match self.run(job).await {
            Ok(r) => r,
            Err(e) => panic!("the run of {} failed as a whole: {e}", job.sync.id),
        }
    }

    /// Every request the emulator recorded so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.emulator.requests()
    }

    /// The profiles of [`ORG`].
    pub fn profiles(&self) -> Vec<Value> {
        self.emulator.profiles(ORG)
    }

    /// The one live profile of [`ORG`] holding `email` (panics when none or several do).
    pub fn profile_by_email(&self, email: &str) -> Value {
        let all = self.profiles();
        let hits = profiles::with_email(&all, email);
        assert_eq!(hits.len(), 1, "expected exactly one profile with {email}, found {}: {all:#?}", hits.len());
        hits[0].clone()
    }

    /// Seeds a profile into [`ORG`]; returns its id.
    pub fn seed(&self, profile: Value) -> String {
        self.emulator.insert_profile(ORG, profile)
    }

    /// Every invariant of [`checks::all`] over everything this session saw, for requests to
    /// `acme.gladly.com`; `before` is the organization's profiles before the runs.
    pub fn invariant_violations(&self, before: &[Value]) -> Vec<String> {
        self.invariant_violations_for(before, "acme.gladly.com")
    }

    /// [`Session::invariant_violations`] with another expected `Host`.
    pub fn invariant_violations_for(&self, before: &[Value], host: &str) -> Vec<String> {
        let requests = self.requests();
        let after = self.profiles();
        checks::all(&checks::Context { requests: &requests, before, after: &after, limit: self.rate_limit, host })
    }

    /// Panics listing every broken invariant (see [`Session::invariant_violations`]).
    pub fn assert_invariants(&self, before: &[Value]) {
        let v = self.invariant_violations(before);
        assert!(v.is_empty(), "{} invariant violation(s):\n  {}\n\nrequests:\n{}", v.len(), v.join("\n  "), self.transcript());
    }

    /// The recorded requests, one line each (for failure messages).
    pub fn transcript(&self) -> String {
        self.requests()
            .iter()
            .map(|r| {
                format!(
                    "  #{} {:>6}ms {} {} -> {:?}{}",
                    r.ordinal,
                    r.at.as_millis(),
                    r.method,
                    r.path,
                    r.status,
                    r.fault.as_ref().map(|f| format!(" [fault {f:?}]")).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
