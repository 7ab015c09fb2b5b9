//! What a destination says about itself (`spec`) and about a configuration (`validate-config`),
//! as plain host types.

use serde::{Deserialize, Serialize};

use crate::contract::model::{Setting, SyncMode};

/// A configuration entry the host collects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigField {
    /// Key.
    pub key: String,
    /// Form label.
    pub label: String,
    /// Meaning.
    pub description: String,
    /// Must be given.
    pub required: bool,
    /// Default.
    pub default_value: Option<String>,
    /// Example.
    pub example: Option<String>,
}

/// A field a mapping may target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetField {
    /// Name.
    pub name: String,
    /// Kind label (`text`, `email`, `phone`, `url`, `record-id`, `object`).
    pub kind: String,
    /// Meaning.
    pub description: String,
    /// Every mapping must include it.
    pub required: bool,
    /// Records can be looked up by it.
    pub matchable: bool,
    /// Several columns may map to it.
    pub repeatable: bool,
}

/// Whether a mode is supported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeSupport {
    /// Mode.
    pub mode: SyncMode,
    /// Supported.
    pub supported: bool,
    /// Why not.
    pub reason: String,
}

/// The credential the host attaches at egress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Credential {
    /// None.
    None,
    /// HTTP Basic; the username comes from a config key, the secret from the host.
    Basic {
        /// Config key holding the username.
        username_key: String,
        /// What the secret is.
        secret_description: String,
    },
}

/// A destination's capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// Machine name.
    pub name: String,
    /// Human name.
    pub title: String,
    /// Plugin version.
    pub version: String,
    /// About it.
    pub description: String,
    /// Configuration entries.
    pub config_fields: Vec<ConfigField>,
    /// Mapping targets.
    pub target_fields: Vec<TargetField>,
    /// Unlisted targets accepted as custom fields.
    pub accepts_custom_fields: bool,
    /// Can list its own schema.
    pub schema_introspection: bool,
    /// Every mode with support and reason.
    pub modes: Vec<ModeSupport>,
    /// Credential to attach.
    pub credential: Credential,
    /// Default requests per second.
    pub suggested_rate_per_second: u32,
    /// Per-request timeout, ms.
    pub suggested_timeout_ms: u32,
    /// Retries per record.
    pub suggested_max_retries: u32,
    /// Requests in flight the API serves well.
    pub suggested_concurrency: u32,
}

/// What `validate-config` resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedConfig {
    /// Hosts the plugin needs.
    pub egress_hosts: Vec<String>,
    /// API base URL.
    pub base_url: String,
    /// Key of the shared rate limit (the organization).
    pub rate_limit_key: String,
    /// Username for the Basic credential.
    pub username: Option<String>,
    /// Settings with defaults.
    pub settings: Vec<Setting>,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigProblem {
    /// Key or target at fault.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// What to change.
    pub fix: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({})", self.key, self.message, self.fix)
    }
}

/// What `check-connection` learned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// Account or organization name.
    pub account: Option<String>,
}
