//! The state shared by the server, the routes and the [`crate::Emulator`] handle.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::config::{EmulatorConfig, Switches, User};
use crate::faults::FaultEngine;
use crate::lock;
use crate::ratelimit::RateLimiter;
use crate::recorder::Recorder;
use crate::store::OrgStore;

/// Everything one emulator run holds.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) users: Vec<User>,
    pub(crate) limiter: RateLimiter,
    pub(crate) faults: Mutex<FaultEngine>,
    pub(crate) recorder: Recorder,
    switches: Mutex<Switches>,
    latency: Mutex<Duration>,
    orgs: Mutex<HashMap<String, OrgStore>>,
    id_rng: Mutex<StdRng>,
    ordinal: AtomicU64,
}

impl Shared {
    pub(crate) fn new(config: EmulatorConfig) -> Self {
        let start = Instant::now();
        Shared {
            users: config.users,
            limiter: RateLimiter::new(start, config.rate_limit_per_second, config.rate_limit_shape, config.seed),
            faults: Mutex::new(FaultEngine::new(config.faults, config.seed)),
            recorder: Recorder::new(start),
            switches: Mutex::new(config.switches),
            latency: Mutex::new(config.latency),
            orgs: Mutex::new(HashMap::new()),
            // Generated ids follow the seed too, so a rerun produces the same ids.
            id_rng: Mutex::new(StdRng::seed_from_u64(config.seed ^ 0x1D5E_ED00)),
            ordinal: AtomicU64::new(0),
        }
    }

    pub(crate) fn next_ordinal(&self) -> u64 {
        self.ordinal.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn switches(&self) -> Switches {
        lock(&self.switches).clone()
    }

    pub(crate) fn set_switches(&self, switches: Switches) {
        *lock(&self.switches) = switches;
    }

    pub(crate) fn latency(&self) -> Duration {
        *lock(&self.latency)
    }

    pub(crate) fn set_latency(&self, latency: Duration) {
        *lock(&self.latency) = latency;
    }

    /// Runs `f` on an organization's store (created empty on first use).
    pub(crate) fn with_org<R>(&self, org: &str, f: impl FnOnce(&mut OrgStore) -> R) -> R {
        let mut orgs = lock(&self.orgs);
        f(orgs.entry(org.to_string()).or_default())
    }

    /// A fresh 22-character URL-safe id not used in `store`.
    pub(crate) fn generate_id(&self, store: &OrgStore) -> String {
        let mut rng = lock(&self.id_rng);
        loop {
            let mut bytes = [0u8; 16];
            rng.fill_bytes(&mut bytes);
            let id = URL_SAFE_NO_PAD.encode(bytes);
            if !store.id_in_use(&id) {
                return id;
            }
        }
    }
}
