//! When to try a retryable record again: exponential backoff with jitter (Gladly's advice),
//! never sooner than the server's `Retry-After`. The wait happens in the runner, outside any
//! instance, so a backoff never holds a plugin.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::sandbox::limits::Limits;
use crate::contract::model::RecordError;

/// The retry policy of one sync.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    base: Duration,
    max: Duration,
}

impl RetryPolicy {
    /// The policy the limits describe.
    pub fn from_limits(limits: &Limits) -> Self {
        RetryPolicy {
            max_retries: limits.max_retries,
            base: Duration::from_millis(limits.backoff_base_ms),
            max: Duration::from_millis(limits.backoff_max_ms),
        }
    }

    /// Whether a record that failed with `error` on attempt `attempt` (0 = first) is tried again.
    pub fn should_retry(&self, error: &RecordError, attempt: u32) -> bool {
        error.retryable && attempt < self.max_retries
    }

    /// How long to wait before retry number `retry` (1 = first retry): base × 2^(retry-1) plus
    /// up to as much again in jitter, capped at the maximum, and at least the server's ask as
    /// the plugin relays it, itself capped at the maximum (the plugin's `retry-after-ms` is
    /// untrusted: a huge value must not park a record for ever).
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(retry as usize)
            .build()
            .last()
            .unwrap_or(self.base)
            .min(self.max);
        backoff.max(retry_after.unwrap_or_default().min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::model::{ErrorCategory, ErrorCode};

    fn policy() -> RetryPolicy {
        RetryPolicy { max_retries: 3, base: Duration::from_millis(500), max: Duration::from_secs(30) }
    }

    #[test]
    fn delays_grow_exponentially_within_jitter_bounds() {
        let p = policy();
        for (retry, lo) in [(1, 500u64), (2, 1000), (3, 2000), (4, 4000)] {
            for _ in 0..50 {
                let d = p.delay(retry, None).as_millis() as u64;
                assert!(d >= lo && d <= 2 * lo, "retry {retry}: {d} ms not in [{lo}, {}]", 2 * lo);
            }
        }
    }

    #[test]
    fn capped_and_retry_after_wins_when_longer() {
        let p = policy();
        assert!(p.delay(20, None) <= Duration::from_secs(30));
        assert_eq!(p.delay(1, Some(Duration::from_secs(10))), Duration::from_secs(10));
    }

    #[test]
    fn a_plugins_huge_retry_after_is_capped_at_the_maximum() {
        let p = policy();
        assert_eq!(p.delay(1, Some(Duration::from_millis(u64::MAX))), Duration::from_secs(30));
    }

    #[test]
    fn a_plugins_huge_retry_after_ms_is_capped_at_the_maximum() {
        let p = policy();
        assert_eq!(p.delay(1, Some(Duration::from_millis(u64::MAX))), Duration::from_secs(30));
    }

    #[test]
    fn retries_only_retryable_errors_up_to_the_limit() {
        let p = policy();
        let mut e = RecordError::host(ErrorCode::ServerError, ErrorCategory::RetryLater, "503");
        assert!(p.should_retry(&e, 0) && p.should_retry(&e, 2));
        assert!(!p.should_retry(&e, 3));
        e.retryable = false;
        assert!(!p.should_retry(&e, 0));
    }
}
