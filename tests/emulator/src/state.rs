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
    latency_jitter: Duration,
    seed: u64,
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
            latency_jitter: config.latency_jitter,
            seed: config.seed,
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

    /// The delay before answering request `ordinal`: the latency, moved by up to the jitter
    /// either way (a draw from the seed and the ordinal, so a rerun delays alike).
    pub(crate) fn latency(&self, ordinal: u64) -> Duration {
        let base = *lock(&self.latency);
        if self.latency_jitter.is_zero() {
            return base;
        }
        let unit = (crate::faults::splitmix(self.seed ^ ordinal.wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 11) as f64 / (1u64 << 53) as f64;
        let offset = self.latency_jitter.as_secs_f64() * (2.0 * unit - 1.0);
        Duration::from_secs_f64((base.as_secs_f64() + offset).max(0.0))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// With 100 ± 50 ms configured, every delay lies in [50, 150] ms, they spread over most of
    /// that range, and the same seed gives the same delays.
    #[test]
    fn jittered_latency_stays_in_its_range_and_follows_the_seed() {
        let config = |seed| EmulatorConfig {
            latency: Duration::from_millis(100),
            latency_jitter: Duration::from_millis(50),
            seed,
            ..EmulatorConfig::default()
        };
        let a = Shared::new(config(4));
        let delays: Vec<Duration> = (1..=1000).map(|n| a.latency(n)).collect();
        let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        assert!(*min >= Duration::from_millis(50) && *max <= Duration::from_millis(150), "{min:?}..{max:?}");
        assert!(*min < Duration::from_millis(55) && *max > Duration::from_millis(145), "{min:?}..{max:?}");
        let b = Shared::new(config(4));
        assert_eq!(delays, (1..=1000).map(|n| b.latency(n)).collect::<Vec<_>>());
    }
}
