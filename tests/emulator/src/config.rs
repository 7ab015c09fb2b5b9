//! Configuration of an emulator run.

use std::time::Duration;

use crate::faults::FaultRule;
use crate::ratelimit::LimiterShape;

/// An API user known to the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Basic-auth user name: the user's email.
    pub email: String,
    /// Basic-auth password: the API token.
    pub token: String,
    /// Whether the user holds the API User permission (without it: 403).
    pub has_api_permission: bool,
    /// Organizations the user belongs to; empty means every organization.
    pub orgs: Vec<String>,
}

impl User {
    /// A user with API permission, valid for every organization.
    pub fn new(email: impl Into<String>, token: impl Into<String>) -> Self {
        User {
            email: email.into(),
            token: token.into(),
            has_api_permission: true,
            orgs: Vec::new(),
        }
    }

    /// The same user without the API permission.
    pub fn without_api_permission(mut self) -> Self {
        self.has_api_permission = false;
        self
    }

    /// Restricts the user to the given organizations.
    pub fn in_orgs<I, S>(mut self, orgs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.orgs = orgs.into_iter().map(Into::into).collect();
        self
    }
}

/// Default user name of [`EmulatorConfig::default`].
pub const DEFAULT_USER: &str = "api@example.com";
/// Default token of [`EmulatorConfig::default`].
pub const DEFAULT_TOKEN: &str = "emulator-token";

/// How PATCH treats `customAttributes` (Gladly does not document it). The default is the
/// stricter server: a client that sends only its own keys loses everyone else's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CustomAttributesPatch {
    /// Keys in the body overwrite stored keys; other stored keys stay.
    Merge,
    /// The body's map replaces the stored map whole.
    #[default]
    Replace,
}

/// Shape of `errors` in error bodies (Gladly's examples show both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorsShape {
    /// `{"errors":[{...}]}`.
    #[default]
    Array,
    /// `{"errors":{...}}` (first error only).
    Object,
}

/// Switches for behaviour Gladly leaves undocumented.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Switches {
    /// PATCH of `customAttributes`: merge key by key or replace.
    pub custom_attributes_patch: CustomAttributesPatch,
    /// Error body `errors` as an array or as an object.
    pub errors_shape: ErrorsShape,
    /// How long a created profile stays invisible to find (search index lag).
    pub index_lag: Duration,
    /// Whether a request body sent without `Content-Length` (chunked) is accepted. Off by
    /// default: many API front ends and gateways answer `411 Length Required`, and Gladly does
    /// not document that it accepts chunked bodies, so the emulator is the stricter server.
    pub accept_chunked_bodies: bool,
    /// Whether a 429 carries `Retry-After` (seconds to the next window, at least 1).
    pub retry_after_on_429: bool,
    /// When set, every 429 carries `Retry-After` with exactly this many seconds (a server asking
    /// for longer than one window, so a test can tell the header was honoured).
    pub retry_after_secs: Option<u64>,
}

/// Everything an emulator run is started with.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Requests allowed per organization per second.
    pub rate_limit_per_second: u32,
    /// How the limit is counted (default: a leaky bucket, what Gladly is said to use).
    pub rate_limit_shape: LimiterShape,
    /// Delay added before answering each request.
    pub latency: Duration,
    /// Each request's delay is `latency` plus or minus up to this much, drawn from the seed
    /// per request (uniform), as a real network and server vary.
    pub latency_jitter: Duration,
    /// Known API users.
    pub users: Vec<User>,
    /// Undocumented-behaviour switches.
    pub switches: Switches,
    /// Fault-injection rules.
    pub faults: Vec<FaultRule>,
    /// Seed for fault draws and generated ids.
    pub seed: u64,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            rate_limit_per_second: 10,
            rate_limit_shape: LimiterShape::default(),
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            users: vec![User::new(DEFAULT_USER, DEFAULT_TOKEN)],
            switches: Switches::default(),
            faults: Vec::new(),
            seed: 0,
        }
    }
}
