//! Per-organization fixed-window rate limiter.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::lock;

/// The limiter's verdict for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateState {
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests left in the current window.
    pub remaining: u32,
    /// Whether this request is within the limit.
    pub allowed: bool,
    /// Whole seconds until the next window starts (at least 1).
    pub retry_after_secs: u64,
}

/// Counts requests per organization in one-second windows aligned to the emulator's start.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    start: Instant,
    limit: AtomicU32,
    // org -> (window index, requests seen in that window)
    windows: Mutex<HashMap<String, (u64, u32)>>,
}

impl RateLimiter {
    pub(crate) fn new(start: Instant, limit: u32) -> Self {
        RateLimiter {
            start,
            limit: AtomicU32::new(limit),
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Counts one request for `org` (rejected ones count too) and says whether it is allowed.
    pub(crate) fn check(&self, org: &str, now: Instant) -> RateState {
        self.state(org, now, true)
    }

    /// The current state for `org` without counting a request.
    pub(crate) fn peek(&self, org: &str, now: Instant) -> RateState {
        self.state(org, now, false)
    }

    fn state(&self, org: &str, now: Instant, count: bool) -> RateState {
        let limit = self.limit.load(Ordering::Relaxed);
        let elapsed = now.saturating_duration_since(self.start);
        let window = elapsed.as_secs();
        let mut windows = lock(&self.windows);
        let entry = windows.entry(org.to_string()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if count {
            entry.1 = entry.1.saturating_add(1);
        }
        let used = entry.1;
        let next_window = Duration::from_secs(window + 1);
        let wait = next_window.saturating_sub(elapsed);
        // Round up: a client waiting this many whole seconds lands in a new window.
        let retry_after_secs = (wait.as_millis().div_ceil(1000) as u64).max(1);
        RateState {
            limit,
            remaining: limit.saturating_sub(used),
            allowed: used <= limit,
            retry_after_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_resets_and_orgs_are_separate() {
        let t0 = Instant::now();
        let rl = RateLimiter::new(t0, 2);
        assert!(rl.check("a", t0).allowed);
        let s = rl.check("a", t0);
        assert!(s.allowed);
        assert_eq!(s.remaining, 0);
        assert!(!rl.check("a", t0).allowed);
        assert!(rl.check("b", t0).allowed);
        let later = t0 + Duration::from_millis(1001);
        let s = rl.check("a", later);
        assert!(s.allowed);
        assert_eq!(s.remaining, 1);
        assert_eq!(rl.peek("a", later).remaining, 1);
        assert_eq!(s.retry_after_secs, 1);
    }
}
