//! Every limit the host enforces on a plugin, named, defaulted and documented in one place.

use std::time::Duration;

use serde::Deserialize;

/// Limits applied to each plugin call and instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Linear-memory cap per instance, in MiB. 64 MiB holds a batch of a few hundred mapped
    /// profiles many times over; a plugin that needs more is leaking.
    pub memory_mib: u64,
    /// Wall-clock budget of one `sync-batch` call, in seconds. A batch of 20 records at 3
    /// requests each and a 10/s organization needs ~6 s; 120 s leaves room for slow APIs while
    /// making sure a stuck plugin cannot hold a worker for long.
    pub call_deadline_secs: u64,
    /// Budget of the pure calls (`spec`, `validate-config`, `map-rows`), in seconds.
    pub pure_call_deadline_secs: u64,
    /// Per-request connect / first-byte / between-bytes timeout, in seconds (Gladly's integrations
    /// use 30 s). Never wasmtime's 600 s fallback; clamped to the call's remaining budget.
    pub request_timeout_secs: u64,
    /// Retries of a retryable record after its first attempt (the vendor page: up to 3).
    pub max_retries: u32,
    /// First backoff delay, in milliseconds; doubles per attempt, with full jitter.
    pub backoff_base_ms: u64,
    /// Longest backoff delay, in milliseconds.
    pub backoff_max_ms: u64,
    /// Records per `sync-batch` call. Small, so that one instance is short-lived and a failure
    /// costs little; large enough to amortize instantiation.
    pub batch_size: usize,
    /// Most instances of one sync running at once; the runner adapts below this to the
    /// observed latency and rate.
    pub max_concurrency: usize,
    /// Bytes of guest stdout/stderr kept per call (then logged with the tenant prefix).
    pub stdio_capture_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 64,
            call_deadline_secs: 120,
            pure_call_deadline_secs: 30,
            request_timeout_secs: 30,
            max_retries: 3,
            backoff_base_ms: 500,
            backoff_max_ms: 30_000,
            batch_size: 20,
            max_concurrency: 32,
            stdio_capture_bytes: 64 * 1024,
        }
    }
}

impl Limits {
    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }

    /// The `sync-batch` deadline.
    pub fn call_deadline(&self) -> Duration {
        Duration::from_secs(self.call_deadline_secs)
    }

    /// The pure-call deadline.
    pub fn pure_call_deadline(&self) -> Duration {
        Duration::from_secs(self.pure_call_deadline_secs)
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}
