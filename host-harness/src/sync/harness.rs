//! The harness: loads plugins, prepares tenants (validated config, egress policy, shared rate
//! limiter) and runs syncs. One `Harness` can run many tenants at once; tenants of the same
//! organization share one rate limiter.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::job::JobConfig;
use crate::egress::connections::ConnectionPool;
use crate::egress::address::PublicOnlyResolver;
use crate::egress::credentials::{HostCredential, Redactor};
use crate::egress::{
    ALLOW_EMULATOR_ENV, EgressPolicy, EgressStats, Redirect, Timeouts, check_grants, credential_host,
    emulator_allowed, intersect_hosts,
};
use crate::error::HostError;
use crate::contract::model::{FieldMapping, Setting, SyncMode};
use crate::egress::ratelimit::LimiterRegistry;
use crate::sandbox::{Plugin, Runtime, RuntimeConfig};
use crate::egress::credentials::BasicCredential;
use crate::contract::spec::{ConnectionInfo, Credential, ResolvedConfig, Spec};

/// Options of one run, from the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Plan only: map, diff and estimate; send and write nothing.
    pub dry_run: bool,
    /// Mapped profiles to print in a dry run.
    pub preview_rows: usize,
    /// Destination settings that override the job file's.
    pub overrides: Vec<Setting>,
    /// Loopback emulator standing in for the API host.
    pub endpoint: Option<String>,
    /// Show a progress bar (a terminal) instead of periodic log lines.
    pub progress: bool,
    /// Send only the records whose last attempt failed (every kind of failure), nothing else.
    pub only_failed: bool,
    /// Becomes `true` when the host shuts down: the run stops taking work, finishes the batches
    /// in flight and hands the rest back (not attempted, state untouched) for the next run.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// Where state is kept (the job folder unless a coordinator says otherwise).
    pub state: crate::state::StateLocation,
}

/// A tenant ready to run: validated configuration, resolved hosts, its egress policy.
pub struct Tenant {
    /// Tenant name (logs).
    pub name: String,
    /// Sync id (state, idempotent ids).
    pub sync_id: String,
    /// The plugin.
    pub plugin: Arc<Plugin>,
    /// What the plugin said about itself.
    pub spec: Spec,
    /// Settings sent with every call.
    pub settings: Vec<Setting>,
    /// The mapping.
    pub mapping: Vec<FieldMapping>,
    /// The mode.
    pub mode: SyncMode,
    /// What validation resolved.
    pub resolved: ResolvedConfig,
    /// Egress policy shared by the tenant's instances.
    pub policy: Arc<EgressPolicy>,
    /// The organization's requests per second.
    pub rate_per_second: u32,
    /// Whether credentials were found.
    pub has_credentials: bool,
}

/// Loads plugins once and runs tenants.
pub struct Harness {
    runtime: Runtime,
    limiters: Arc<LimiterRegistry>,
    plugins: Mutex<HashMap<PathBuf, Arc<Plugin>>>,
}

impl Harness {
    /// A harness with its own engine and limiter registry.
    pub fn new(config: RuntimeConfig) -> Result<Harness, HostError> {
        Ok(Harness { runtime: Runtime::new(config)?, limiters: Arc::new(LimiterRegistry::new()), plugins: Mutex::default() })
    }

    /// A harness whose organizations share `limiters` with other harnesses (a service runs one
    /// harness per distinct set of limits, and an organization must have one limiter whatever
    /// the limits of the jobs writing to it).
    pub fn with_limiters(config: RuntimeConfig, limiters: Arc<LimiterRegistry>) -> Result<Harness, HostError> {
        Ok(Harness { runtime: Runtime::new(config)?, limiters, plugins: Mutex::default() })
    }

    /// A harness configured from a job file (cache folder and limits).
    pub fn for_job(job: &JobConfig) -> Result<Harness, HostError> {
        Harness::new(RuntimeConfig { cache_dir: job.sync.cache_dir.clone(), pooling: false, limits: job.limits.clone() })
    }

    /// The shared limiter registry (tests and benchmarks inspect it).
    pub fn limiters(&self) -> &Arc<LimiterRegistry> {
        &self.limiters
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Load (once) the component at `path`.
    pub fn plugin(&self, path: &Path) -> Result<Arc<Plugin>, HostError> {
        let mut cache = self.plugins.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.get(path) {
            return Ok(p.clone());
        }
        let plugin = Arc::new(self.runtime.load(path)?);
        cache.insert(path.to_path_buf(), plugin.clone());
        Ok(plugin)
    }

    /// The capabilities of the component at `path`.
    pub async fn spec(&self, path: &Path) -> Result<Spec, HostError> {
        self.plugin(path)?.spec().await
    }

    /// Validate the job against the plugin and build the tenant's policy. Every configuration
    /// problem is reported at once.
    pub async fn prepare(&self, job: &JobConfig, opts: &RunOptions) -> Result<Tenant, HostError> {
        let name = job.tenant();
        let plugin = self.plugin(&job.sync.component)?;
        let spec = plugin.spec().await?;
        let mut settings = job.settings();
        for o in &opts.overrides {
            match settings.iter_mut().find(|s| s.key == o.key) {
                Some(s) => s.value = o.value.clone(),
                None => settings.push(o.clone()),
            }
        }
        let mapping = job.mapping();
        let mode = job.sync.mode;
        let resolved = match plugin.validate_config(&name, &settings, mode, &mapping).await? {
            Ok(r) => r,
            Err(problems) => {
                let lines: Vec<String> = problems
                    .iter()
                    .map(|p| format!("  - {}: {}. Fix: {}", p.key, p.message, p.fix))
                    .collect();
                return Err(HostError::Config(format!(
                    "the job {} is not valid for {} ({} problem{}):\n{}",
                    job.sync.id,
                    spec.title,
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" },
                    lines.join("\n")
                )));
            }
        };

        if let Some(results) = &job.results {
            // Where results go is checked with the rest of the job; the target itself is opened
            // when a run starts.
            results.target(&job.source)?;
        }
        check_grants(&job.policy.allow_hosts, &resolved.egress_hosts).map_err(HostError::Config)?;
        let allowed = intersect_hosts(&resolved.egress_hosts, &job.policy.allow_hosts);
        if allowed.is_empty() {
            return Err(HostError::Config(format!(
                "policy.allow_hosts ({}) does not grant the host the destination needs ({}); add it or a wildcard covering it",
                job.policy.allow_hosts.join(", "),
                resolved.egress_hosts.join(", ")
            )));
        }
        let endpoint = opts.endpoint.as_ref().or(job.policy.endpoint.as_ref());
        let redirect = endpoint.map(|e| Redirect::parse(e)).transpose().map_err(HostError::Config)?;
        if let (Some(e), false) = (endpoint, emulator_allowed()) {
            return Err(HostError::Config(format!(
                "the job sends its API traffic to the emulator at {e}, which is for development only (it would send the real credential over plain http to whatever listens there); remove policy.endpoint and --endpoint, or set {ALLOW_EMULATOR_ENV}=1 in a development environment"
            )));
        }

        let credential = match &spec.credential {
            Credential::None => None,
            Credential::Basic { username_key, .. } => {
                let username = resolved
                    .username
                    .clone()
                    .or_else(|| settings.iter().find(|s| &s.key == username_key).map(|s| s.value.clone()))
                    .ok_or_else(|| HostError::Config(format!("destination.{username_key} is required")))?;
                let host = credential_host(&resolved.base_url, &allowed).map_err(HostError::Config)?;
                let secret_ref = job.destination.secrets.get("token").ok_or_else(|| {
                    HostError::Config(
                        "the job names no API token: add [destination.secrets] token = { env = \"GLADLY_API_TOKEN\" } (or { file = \"…\" })".into(),
                    )
                })?;
                match secret_ref.read() {
                    Ok(token) => Some(HostCredential { host, basic: BasicCredential { username, token } }),
                    Err(e) if opts.dry_run => {
                        tracing::debug!("no token for a dry run: {e}");
                        None
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let rate = job.policy.rate_limit_per_second.unwrap_or(spec.suggested_rate_per_second).max(1);
        let limiter = self.limiters.get(&resolved.rate_limit_key, rate);
        let has_credentials = credential.is_some() || matches!(spec.credential, Credential::None);
        let redactor = credential.as_ref().map(|c| Redactor::of(&c.basic)).unwrap_or_default();
        let stats = Arc::new(EgressStats::default());
        let l = &job.limits;
        let policy = Arc::new(EgressPolicy {
            tenant: name.clone(),
            allowed_hosts: allowed,
            credential,
            redactor,
            redirect,
            limiter: Some(limiter),
            timeouts: Timeouts { request: l.request_timeout() },
            caps: l.egress_caps(),
            stats: stats.clone(),
            connections: ConnectionPool::new(l.request_timeout(), PublicOnlyResolver::new(name.as_str().into(), stats)),
        });
        Ok(Tenant {
            name,
            sync_id: job.sync.id.clone(),
            plugin,
            spec,
            settings,
            mapping,
            mode,
            resolved,
            policy,
            rate_per_second: rate,
            has_credentials,
        })
    }

    /// One live authenticated call.
    pub async fn check(&self, tenant: &Tenant) -> Result<ConnectionInfo, HostError> {
        tenant.plugin.check_connection(tenant.policy.clone(), &tenant.settings).await
    }
}
