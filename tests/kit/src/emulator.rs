//! The Gladly emulator as the tests start it: with the default user or with a test user whose
//! token is unique to the test (so a test can prove that token never shows up anywhere), and the
//! few facts about its API the tests share.

use std::time::Duration;

use gladly_emulator::{Emulator, EmulatorConfig, RecordedRequest, User};

use crate::temp::unique;

/// The customer-profile collection's path.
pub const PROFILES: &str = "/api/v1/customer-profiles";

/// The path of one profile.
pub fn profile_path(id: &str) -> String {
    format!("{PROFILES}/{id}")
}

/// An API user known to the emulator, with a token unique to the test.
#[derive(Clone, Debug)]
pub struct Creds {
    /// The API user (an email).
    pub user: String,
    /// Its token.
    pub token: String,
}

impl Default for Creds {
    fn default() -> Self {
        Creds::new()
    }
}

impl Creds {
    /// `api@example.com` with a fresh token.
    pub fn new() -> Creds {
        Creds { user: "api@example.com".into(), token: unique("tok-S3CRET-") }
    }

    /// `Basic base64(user:token)`, the exact `Authorization` value the host must attach.
    pub fn basic(&self) -> String {
        basic_auth(&self.user, &self.token)
    }

    /// The strings that must never appear in any output: the token and the header forms.
    pub fn forbidden_strings(&self) -> Vec<String> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let basic = self.basic();
        let encoded = basic.trim_start_matches("Basic ").to_string();
        vec![self.token.clone(), encoded, b64.encode(&self.token)]
    }
}

/// The `Authorization` value of HTTP Basic auth.
pub fn basic_auth(user: &str, token: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}")))
}

/// Asserts that `text` (named `what`) contains none of the credential's forms.
pub fn assert_no_secret(creds: &Creds, what: &str, text: &str) {
    for s in creds.forbidden_strings() {
        assert!(!text.contains(&s), "{what} contains the secret {s:?}:\n{text}");
    }
}

/// An emulator config whose rate limit (100 000/s) stays out of the way.
pub fn fast() -> EmulatorConfig {
    EmulatorConfig { rate_limit_per_second: 100_000, ..EmulatorConfig::default() }
}

/// Starts an emulator with `config` on 127.0.0.1.
pub async fn start_with(config: EmulatorConfig) -> Emulator {
    Emulator::start(config).await.expect("start the emulator")
}

/// Starts an emulator with [`fast`] settings and the default user.
pub async fn start() -> Emulator {
    start_with(fast()).await
}

/// An emulator with `creds` as its only user, no latency and a high rate limit (10 000/s; tests
/// where the rate is the subject lower it).
pub async fn with_user(creds: &Creds) -> Emulator {
    start_with(EmulatorConfig {
        rate_limit_per_second: 10_000,
        latency: Duration::ZERO,
        users: vec![User::new(creds.user.clone(), creds.token.clone())],
        ..EmulatorConfig::default()
    })
    .await
}

/// Requests of one organization, in arrival order.
pub fn requests_of(emu: &Emulator, org: &str) -> Vec<RecordedRequest> {
    emu.requests().into_iter().filter(|r| r.org == org).collect()
}

/// `f`'s output, or `None` when it takes longer than `ms` milliseconds.
pub async fn timeout<F: std::future::Future>(ms: u64, f: F) -> Option<F::Output> {
    tokio::time::timeout(Duration::from_millis(ms), f).await.ok()
}
