//! The job file: one TOML file describing a sync (source, component, destination settings,
//! mapping, mode, policy and limits). Secrets appear only by reference.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::HostError;
use crate::sandbox::limits::Limits;
use crate::contract::model::{FieldMapping, Setting, SyncMode};
use crate::egress::credentials::SecretRef;
use crate::results::ResultsConfig;
use crate::source::SourceConfig;

/// A whole job file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// What to sync and how.
    pub sync: SyncSection,
    /// Where rows come from.
    pub source: SourceConfig,
    /// The destination's non-secret settings and its secret references.
    pub destination: DestinationSection,
    /// Column → destination field, in order (the first of a repeatable field is primary).
    pub mapping: indexmap::IndexMap<String, String>,
    /// The operator's policy for this tenant.
    #[serde(default)]
    pub policy: PolicySection,
    /// Limits.
    #[serde(default)]
    pub limits: Limits,
    /// Where each record's outcome is written back (opt-in).
    #[serde(default)]
    pub results: Option<ResultsConfig>,
    /// When `destination-host serve` runs this job; the one-shot commands ignore it.
    #[serde(default)]
    pub schedule: Option<ScheduleSection>,
}

/// `[schedule]`: one of `every` (a duration such as `"15m"`) or `cron` (five fields, UTC).
/// Without it, `serve` runs the job only when asked through the admin API.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    /// Run again this long after the previous run started (`"30s"`, `"15m"`, `"1h"`).
    pub every: Option<String>,
    /// A cron expression (`"*/10 * * * *"`), evaluated in UTC.
    pub cron: Option<String>,
}

/// `[sync]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSection {
    /// Stable id of this sync: keys the state and derives idempotent create ids. Never reuse
    /// one id for two different models.
    pub id: String,
    /// upsert, insert or update.
    pub mode: SyncMode,
    /// The destination component (.wasm), relative to the job file.
    pub component: PathBuf,
    /// Where sync state lives, relative to the job file.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Where compiled components are cached, relative to the job file.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(".state")
}

/// `[destination]`: settings passed to the plugin, plus `[destination.secrets]`.
#[derive(Debug, Clone, Deserialize)]
pub struct DestinationSection {
    /// Secrets by reference: `token = { env = "GLADLY_API_TOKEN" }` or `{ file = "…" }`.
    #[serde(default)]
    pub secrets: indexmap::IndexMap<String, SecretRef>,
    /// Every other key is a plugin setting (values as strings, numbers or booleans).
    #[serde(flatten)]
    pub settings: indexmap::IndexMap<String, toml::Value>,
}

/// `[policy]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// Hosts the operator grants (exact or `*.suffix`); empty = exactly what the plugin declares.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Requests per second for the organization; default: the plugin's suggestion.
    pub rate_limit_per_second: Option<u32>,
    /// Send this tenant's API traffic to a loopback emulator instead (after the allow-list check).
    pub endpoint: Option<String>,
    /// Tenant name in logs; default: the sync id.
    pub tenant: Option<String>,
}

impl JobConfig {
    /// Read and parse a job file; relative paths become relative to its folder.
    pub fn load(path: &Path) -> Result<JobConfig, HostError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| HostError::JobRead { path: path.display().to_string(), source })?;
        let mut job: JobConfig = toml::from_str(&text)
            .map_err(|source| HostError::JobParse { path: path.display().to_string(), source })?;
        let base = path.parent().unwrap_or(Path::new("."));
        job.resolve_paths(base);
        Ok(job)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.sync.component);
        fix(&mut self.sync.state_dir);
        if let Some(c) = self.sync.cache_dir.as_mut() {
            fix(c);
        }
        if let Some(r) = self.results.as_mut() {
            r.resolve_paths(base);
        }
        // `-` means stdin for the file sources and stays as it is.
        match &mut self.source {
            SourceConfig::Csv(c) if c.path.as_os_str() != "-" => fix(&mut c.path),
            SourceConfig::Jsonl(c) if c.path.as_os_str() != "-" => fix(&mut c.path),
            SourceConfig::Sqlite(c) => fix(&mut c.path),
            _ => {}
        }
    }

    /// The plugin settings as strings.
    pub fn settings(&self) -> Vec<Setting> {
        self.destination
            .settings
            .iter()
            .map(|(k, v)| Setting {
                key: k.clone(),
                value: match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            })
            .collect()
    }

    /// The mapping in file order.
    pub fn mapping(&self) -> Vec<FieldMapping> {
        self.mapping.iter().map(|(s, t)| FieldMapping { source: s.clone(), target: t.clone() }).collect()
    }

    /// The tenant's name for logs.
    pub fn tenant(&self) -> String {
        self.policy.tenant.clone().unwrap_or_else(|| self.sync.id.clone())
    }
}
