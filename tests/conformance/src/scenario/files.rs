//! The scenario folder's input files: `job.toml` (the job over the suite's defaults) and
//! `emulator.json` (the emulator's limit, switches, faults and users), and what each becomes.

use std::time::Duration;

use gladly_emulator::{
    CustomAttributesPatch, EmulatorConfig, ErrorsShape, Fault, FaultRule, LimiterShape, Method,
    Switches, User,
};
use serde::Deserialize;
use toml::Table;

/// `job.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioJob {
    /// What the scenario shows (documentation only).
    #[serde(default)]
    pub description: Option<String>,
    /// Sync mode.
    pub mode: String,
    /// Sync id (default `conformance`).
    #[serde(default)]
    pub sync_id: Option<String>,
    /// Key column (default `id`).
    #[serde(default)]
    pub primary_key: Option<String>,
    /// Basic username (default the emulator's user).
    #[serde(default)]
    pub username: Option<String>,
    /// API token (default the emulator's token).
    #[serde(default)]
    pub token: Option<String>,
    /// Host-side rate (default: the emulator's).
    #[serde(default)]
    pub rate_limit_per_second: Option<u32>,
    /// Destination settings.
    #[serde(default)]
    pub settings: Table,
    /// Column → target, in file order.
    #[serde(default)]
    pub mapping: Table,
    /// Source type hints.
    #[serde(default)]
    pub types: Table,
    /// Limits over the quick defaults.
    #[serde(default)]
    pub limits: Table,
}

/// `emulator.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmulatorSpec {
    /// Requests per second per organization (default 200).
    #[serde(default)]
    pub rate_limit_per_second: Option<u32>,
    /// How the limit is counted: `leaky-bucket` (default), `sliding-window`, `fixed-window`.
    #[serde(default)]
    pub rate_limit_shape: Option<String>,
    /// Seed of fault draws and generated ids.
    #[serde(default)]
    pub seed: u64,
    /// Switches.
    #[serde(default)]
    pub switches: SwitchSpec,
    /// Fault rules.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Users (replace the default user when given).
    #[serde(default)]
    pub users: Option<Vec<UserSpec>>,
    /// Merges performed after seeding, before the run: `[from_id, into_id]` pairs (as an agent
    /// merging two profiles between two syncs).
    #[serde(default)]
    pub merges: Vec<[String; 2]>,
}

/// The undocumented-behaviour switches.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchSpec {
    /// `replace` (default, the stricter server) or `merge`.
    #[serde(default)]
    pub custom_attributes_patch: Option<String>,
    /// `array` (default) or `object`.
    #[serde(default)]
    pub errors_shape: Option<String>,
    /// Search-index lag of a create, in milliseconds.
    #[serde(default)]
    pub index_lag_ms: u64,
    /// Whether 429s carry `Retry-After`.
    #[serde(default)]
    pub retry_after_on_429: bool,
    /// When set, every 429 carries `Retry-After` with exactly this many seconds.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
    /// Whether a chunked body (no `Content-Length`) is accepted (default: refused with 411).
    #[serde(default)]
    pub accept_chunked_bodies: bool,
}

/// One fault rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// `status429`, `status5xx`, `slow`, `drop_before_apply`, `drop_after_apply`, `malformed_body`.
    pub fault: String,
    /// For `status5xx`.
    #[serde(default)]
    pub status: Option<u16>,
    /// For `slow`: milliseconds.
    #[serde(default)]
    pub ms: Option<u64>,
    /// Fire with this probability.
    #[serde(default)]
    pub probability: Option<f64>,
    /// Or on these 1-based positions among matching requests.
    #[serde(default)]
    pub on_requests: Option<Vec<u64>>,
    /// Only this method.
    #[serde(default)]
    pub method: Option<String>,
    /// Only paths starting with this.
    #[serde(default)]
    pub path_prefix: Option<String>,
}

/// One emulator user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// Basic username.
    pub email: String,
    /// Token.
    pub token: String,
    /// Whether the user has the API User permission (default true).
    #[serde(default = "yes")]
    pub api_permission: bool,
}

fn yes() -> bool {
    true
}

impl EmulatorSpec {
    /// The emulator configuration.
    pub fn config(&self) -> EmulatorConfig {
        let mut c = EmulatorConfig {
            rate_limit_per_second: self.rate_limit_per_second.unwrap_or(200),
            rate_limit_shape: match self.rate_limit_shape.as_deref() {
                None => LimiterShape::default(),
                Some(name) => name.parse().unwrap_or_else(|e| panic!("emulator.json: {e}")),
            },
            seed: self.seed,
            ..EmulatorConfig::default()
        };
        c.switches = Switches {
            custom_attributes_patch: match self.switches.custom_attributes_patch.as_deref() {
                Some("merge") => CustomAttributesPatch::Merge,
                None | Some("replace") => CustomAttributesPatch::Replace,
                Some(o) => panic!("custom_attributes_patch: merge or replace, not {o}"),
            },
            errors_shape: match self.switches.errors_shape.as_deref() {
                None | Some("array") => ErrorsShape::Array,
                Some("object") => ErrorsShape::Object,
                Some(o) => panic!("errors_shape: array or object, not {o}"),
            },
            index_lag: Duration::from_millis(self.switches.index_lag_ms),
            retry_after_on_429: self.switches.retry_after_on_429,
            accept_chunked_bodies: self.switches.accept_chunked_bodies,
            retry_after_secs: self.switches.retry_after_secs,
        };
        c.faults = self.faults.iter().map(FaultSpec::rule).collect();
        if let Some(users) = &self.users {
            c.users = users
                .iter()
                .map(|u| {
                    let user = User::new(u.email.clone(), u.token.clone());
                    if u.api_permission { user } else { user.without_api_permission() }
                })
                .collect();
        }
        c
    }
}

impl FaultSpec {
    /// The emulator rule.
    pub fn rule(&self) -> FaultRule {
        let fault = match self.fault.as_str() {
            "status429" => Fault::Status429,
            "status5xx" => Fault::Status5xx(self.status.unwrap_or(503)),
            "slow" => Fault::Slow(Duration::from_millis(self.ms.expect("a slow fault needs ms"))),
            "drop_before_apply" => Fault::DropBeforeApply,
            "drop_after_apply" => Fault::DropAfterApply,
            "malformed_body" => Fault::MalformedBody,
            other => panic!("unknown fault {other}"),
        };
        let mut rule = match (&self.probability, &self.on_requests) {
            (Some(p), None) => FaultRule::probability(fault, *p),
            (None, Some(list)) => FaultRule::on_requests(fault, list.clone()),
            _ => panic!("a fault needs exactly one of probability or on_requests"),
        };
        if let Some(m) = &self.method {
            rule = rule.method(Method::from_bytes(m.as_bytes()).expect("an HTTP method"));
        }
        if let Some(p) = &self.path_prefix {
            rule = rule.path_prefix(p.clone());
        }
        rule
    }
}

