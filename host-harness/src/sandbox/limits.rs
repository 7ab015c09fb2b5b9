//! Every limit the host enforces on a plugin, named, defaulted, bounded and documented in one
//! place.
//!
//! A job file is trusted, but a typo in it must not turn a limit off: every key has an allowed
//! range ([`RANGES`]), and zero, negative or absurd values are refused at load naming the key
//! and the range (a deadline near `u64::MAX` would otherwise overflow the clock).
//!
//! The caps on warehouse input (cell, row and planning-chunk bytes) belong to the source and
//! live in [`crate::source::InputBudget`] (`[source.budget]`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::egress::EgressCaps;

/// Limits applied to each plugin call and instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Linear-memory cap per memory, in MiB. 64 MiB holds a batch of a few hundred mapped
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
    /// Longest backoff delay, in milliseconds; also the most a plugin's `retry-after-ms` can ask.
    pub backoff_max_ms: u64,
    /// Most records per `sync-batch` call. Small, so that a failure costs little; large enough
    /// to amortize the call. A run puts fewer in a call when its organization's rate would make
    /// the call take more than about 2 s (`sync/concurrency.rs`).
    pub batch_size: usize,
    /// Most instances of one sync running at once; the runner adapts below this to the
    /// observed latency and rate.
    pub max_concurrency: usize,
    /// Bytes of guest stdout/stderr kept per call (then logged with the tenant prefix).
    pub stdio_capture_bytes: usize,
    /// Bytes of `host.log` messages accepted per call; the rest is dropped behind one marker.
    pub log_bytes_per_call: usize,
    /// Linear memories per instance (a Rust component has one).
    pub memories: usize,
    /// Tables per instance (a Rust component and its adapter shims use a handful).
    pub tables: usize,
    /// Core instances per component instance.
    pub instances: usize,
    /// Elements per table (function-pointer tables of a large Rust plugin hold a few thousand).
    pub table_elements: usize,
    /// Host resources (HTTP requests, bodies, streams, headers) one instance may hold at once.
    pub resources: usize,
    /// Bytes of one header map (request or response) in the host's representation.
    pub header_bytes: usize,
    /// Requests one instance may have in flight at once (the Gladly plugin sends one at a time).
    pub in_flight_requests: usize,
    /// Bytes of one request body.
    pub request_bytes: usize,
    /// Bytes of one response body.
    pub response_bytes: usize,
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
            log_bytes_per_call: 64 * 1024,
            memories: 2,
            tables: 16,
            instances: 32,
            table_elements: 20_000,
            resources: 10_000,
            header_bytes: 32 * 1024,
            in_flight_requests: 8,
            request_bytes: 4 * 1024 * 1024,
            response_bytes: 16 * 1024 * 1024,
        }
    }
}

/// The allowed range of each key: (key, lowest, highest, unit).
pub const RANGES: &[(&str, u64, u64, &str)] = &[
    ("memory_mib", 1, 4096, "MiB"),
    ("call_deadline_secs", 1, 3600, "seconds"),
    ("pure_call_deadline_secs", 1, 600, "seconds"),
    ("request_timeout_secs", 1, 300, "seconds"),
    ("max_retries", 0, 10, "retries"),
    ("backoff_base_ms", 1, 60_000, "ms"),
    ("backoff_max_ms", 1, 3_600_000, "ms"),
    ("batch_size", 1, 1000, "records"),
    ("max_concurrency", 1, 256, "instances"),
    ("stdio_capture_bytes", 0, 16 << 20, "bytes"),
    ("log_bytes_per_call", 0, 16 << 20, "bytes"),
    ("memories", 1, 16, "memories"),
    ("tables", 1, 64, "tables"),
    ("instances", 1, 256, "instances"),
    ("table_elements", 1, 10_000_000, "elements"),
    ("resources", 16, 1_000_000, "resources"),
    ("header_bytes", 1024, 1 << 20, "bytes"),
    ("in_flight_requests", 1, 256, "requests"),
    ("request_bytes", 1024, 64 << 20, "bytes"),
    ("response_bytes", 1024, 256 << 20, "bytes"),
];

impl Limits {
    /// Every key with its current value, in [`RANGES`] order.
    fn values(&self) -> [u64; 20] {
        let u = |v: usize| v as u64;
        [
            self.memory_mib,
            self.call_deadline_secs,
            self.pure_call_deadline_secs,
            self.request_timeout_secs,
            u64::from(self.max_retries),
            self.backoff_base_ms,
            self.backoff_max_ms,
            u(self.batch_size),
            u(self.max_concurrency),
            u(self.stdio_capture_bytes),
            u(self.log_bytes_per_call),
            u(self.memories),
            u(self.tables),
            u(self.instances),
            u(self.table_elements),
            u(self.resources),
            u(self.header_bytes),
            u(self.in_flight_requests),
            u(self.request_bytes),
            u(self.response_bytes),
        ]
    }

    fn set(&mut self, key: &str, v: u64) {
        // Every value was range-checked first, so the narrowing casts cannot truncate.
        let z = v as usize;
        match key {
            "memory_mib" => self.memory_mib = v,
            "call_deadline_secs" => self.call_deadline_secs = v,
            "pure_call_deadline_secs" => self.pure_call_deadline_secs = v,
            "request_timeout_secs" => self.request_timeout_secs = v,
            "max_retries" => self.max_retries = v as u32,
            "backoff_base_ms" => self.backoff_base_ms = v,
            "backoff_max_ms" => self.backoff_max_ms = v,
            "batch_size" => self.batch_size = z,
            "max_concurrency" => self.max_concurrency = z,
            "stdio_capture_bytes" => self.stdio_capture_bytes = z,
            "log_bytes_per_call" => self.log_bytes_per_call = z,
            "memories" => self.memories = z,
            "tables" => self.tables = z,
            "instances" => self.instances = z,
            "table_elements" => self.table_elements = z,
            "resources" => self.resources = z,
            "header_bytes" => self.header_bytes = z,
            "in_flight_requests" => self.in_flight_requests = z,
            "request_bytes" => self.request_bytes = z,
            "response_bytes" => self.response_bytes = z,
            _ => {}
        }
    }

    /// Every value outside its range, as one message per key naming the range; empty when all
    /// are valid.
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = RANGES
            .iter()
            .zip(self.values())
            .filter(|((_, lo, hi, _), v)| v < lo || v > hi)
            .map(|((key, lo, hi, unit), v)| out_of_range(key, &v.to_string(), *lo, *hi, unit))
            .collect();
        if self.backoff_max_ms < self.backoff_base_ms {
            out.push(format!(
                "[limits] backoff_max_ms = {} is below backoff_base_ms = {}; set it to at least the base delay",
                self.backoff_max_ms, self.backoff_base_ms
            ));
        }
        out
    }

    /// The per-instance caps the egress hook enforces.
    pub fn egress_caps(&self) -> EgressCaps {
        EgressCaps { in_flight: self.in_flight_requests, request_bytes: self.request_bytes, response_bytes: self.response_bytes }
    }

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

fn out_of_range(key: &str, value: &str, lo: u64, hi: u64, unit: &str) -> String {
    format!("[limits] {key} = {value} is out of range; allowed: {lo} to {hi} ({unit})")
}

impl<'de> Deserialize<'de> for Limits {
    /// Each key is read as a signed integer so that a negative value gets the same message as
    /// any other out-of-range value; unknown keys are refused with the list of known ones.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Limits, D::Error> {
        use serde::de::Error;
        let raw = BTreeMap::<String, i64>::deserialize(d)?;
        let mut limits = Limits::default();
        let mut problems = Vec::new();
        for (key, value) in raw {
            let Some((_, lo, hi, unit)) = RANGES.iter().find(|(k, ..)| *k == key) else {
                let known: Vec<&str> = RANGES.iter().map(|(k, ..)| *k).collect();
                return Err(D::Error::custom(format!("unknown key {key:?} in [limits]; known keys: {}", known.join(", "))));
            };
            match u64::try_from(value) {
                Ok(v) if (*lo..=*hi).contains(&v) => limits.set(&key, v),
                _ => problems.push(out_of_range(&key, &value.to_string(), *lo, *hi, unit)),
            }
        }
        problems.extend(limits.problems());
        if problems.is_empty() { Ok(limits) } else { Err(D::Error::custom(problems.join("; "))) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Limits, String> {
        toml::from_str::<Limits>(text).map_err(|e| e.message().to_string())
    }

    #[test]
    fn defaults_are_within_their_ranges() {
        assert_eq!(Limits::default().problems(), Vec::<String>::new());
        assert_eq!(parse("").unwrap(), Limits::default());
    }

    #[test]
    fn zero_is_refused_naming_the_key_and_range() {
        assert_eq!(
            parse("batch_size = 0").unwrap_err(),
            "[limits] batch_size = 0 is out of range; allowed: 1 to 1000 (records)"
        );
    }

    #[test]
    fn negative_is_refused_naming_the_key_and_range() {
        assert_eq!(
            parse("memory_mib = -1").unwrap_err(),
            "[limits] memory_mib = -1 is out of range; allowed: 1 to 4096 (MiB)"
        );
    }

    #[test]
    fn a_deadline_near_the_end_of_time_is_refused() {
        assert_eq!(
            parse("call_deadline_secs = 9223372036854775807").unwrap_err(),
            "[limits] call_deadline_secs = 9223372036854775807 is out of range; allowed: 1 to 3600 (seconds)"
        );
    }

    #[test]
    fn backoff_max_below_base_is_refused() {
        assert_eq!(
            parse("backoff_base_ms = 500\nbackoff_max_ms = 100").unwrap_err(),
            "[limits] backoff_max_ms = 100 is below backoff_base_ms = 500; set it to at least the base delay"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(parse("memory = 3").unwrap_err().starts_with("unknown key \"memory\" in [limits]; known keys: memory_mib,"));
    }

    #[test]
    fn valid_values_are_taken() {
        let l = parse("batch_size = 50\nresources = 500").unwrap();
        assert_eq!((l.batch_size, l.resources), (50, 500));
    }
}
