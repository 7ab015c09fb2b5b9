//! One request budget per destination organization, shared by every tenant and instance that
//! writes to it.
//!
//! Pacing is a leaky bucket (one token per request, refilled evenly, no burst), so requests are
//! spread across each second instead of bunched at its start: a server that counts fixed
//! one-second windows then never sees more than the limit. On top of it sits a pause gate fed by
//! the server's own signals: a 429 (with its `Retry-After`, when given) or a
//! `Ratelimit-Remaining-Second: 0` closes the gate for a while; waiting callers wait, nobody fails.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leaky_bucket::RateLimiter;
use tokio::time::Instant;

/// Headroom under the nominal limit, so that arrival jitter on the network cannot push two
/// requests ten apart into one server window.
const PACING_HEADROOM: f64 = 0.98;

/// The shortest refill interval: leaky-bucket refuses intervals under a millisecond, so fast
/// budgets refill several permits per interval instead.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Share of the limit our own permits of the last second must reach for a
/// `Ratelimit-Remaining-Second: 0` to be explained by our own pacing (then no pause is needed).
const OWN_USE_EXPLAINS_ZERO: f64 = 0.9;

/// How long to hold back after a 429 that carried no `Retry-After`: one server window.
const DEFAULT_429_PAUSE: Duration = Duration::from_secs(1);

/// The longest a server's `Retry-After` can hold back an organization. A server's answer is
/// untrusted: `Retry-After: 1e20` must not freeze every tenant of the organization for ever.
/// Gladly's limiter windows are one second long; a minute is far beyond any honest ask, and a
/// server that keeps answering 429 simply keeps the gate closed a minute at a time.
pub const MAX_SERVER_PAUSE: Duration = Duration::from_secs(60);

/// The budget of one organization.
#[derive(Debug)]
pub struct OrgLimiter {
    key: String,
    per_second: u32,
    bucket: RateLimiter,
    paused_until: Mutex<Option<Instant>>,
    /// When our permits of the last second were granted.
    recent: Mutex<VecDeque<Instant>>,
}

impl OrgLimiter {
    /// A limiter allowing `per_second` requests per second (at least 1).
    pub fn new(key: impl Into<String>, per_second: u32) -> Self {
        let per_second = per_second.max(1);
        let paced = f64::from(per_second) * PACING_HEADROOM;
        let mut interval = Duration::from_secs_f64(1.0 / paced);
        let mut refill = 1;
        if interval < MIN_INTERVAL {
            // Several permits per 10 ms: the same average, a burst of at most 1% of the limit.
            refill = (paced * MIN_INTERVAL.as_secs_f64()).floor().max(1.0) as usize;
            interval = Duration::from_secs_f64(refill as f64 / paced);
        }
        let bucket = RateLimiter::builder()
            .initial(refill)
            .max(refill)
            .refill(refill)
            .interval(interval)
            .fair(true)
            .build();
        OrgLimiter {
            key: key.into(),
            per_second,
            bucket,
            paused_until: Mutex::new(None),
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// The organization key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The configured requests per second.
    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// Wait for a permit to send one request.
    pub async fn acquire(&self) {
        self.wait_pause().await;
        self.bucket.acquire_one().await;
        // A 429 may have arrived while we queued; honour it before sending.
        self.wait_pause().await;
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_back(now);
        forget_older_than_a_second(&mut recent, now);
    }

    /// Whether our own permits of the last second come close to the whole limit.
    fn own_use_explains_zero(&self) -> bool {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        forget_older_than_a_second(&mut recent, now);
        recent.len() as f64 >= f64::from(self.per_second) * OWN_USE_EXPLAINS_ZERO
    }

    async fn wait_pause(&self) {
        loop {
            let until = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    /// Close the gate for `pause` from now (never shortening a longer pause already set).
    pub fn pause_for(&self, pause: Duration) {
        let until = Instant::now() + pause;
        let mut guard = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none_or(|t| t < until) {
            *guard = Some(until);
        }
    }

    /// Feed what a response said: its status, `Retry-After` and `Ratelimit-Remaining-Second`.
    pub fn observe(&self, status: u16, retry_after: Option<Duration>, remaining: Option<u64>) {
        if status == 429 {
            self.pause_for(retry_after.unwrap_or(DEFAULT_429_PAUSE));
        } else if remaining == Some(0) && !self.own_use_explains_zero() {
            // Someone else (another integration of the same organization) is using the budget:
            // hold back for one pacing interval. When our own pacing used up the window (as it
            // does at the end of every window under full load) the zero says nothing new, and
            // pausing would only waste budget.
            self.pause_for(Duration::from_secs_f64(1.0 / f64::from(self.per_second)));
        }
    }
}

fn forget_older_than_a_second(recent: &mut VecDeque<Instant>, now: Instant) {
    while recent.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
        recent.pop_front();
    }
}

/// Every organization's limiter, created on first use.
#[derive(Debug, Default)]
pub struct LimiterRegistry {
    limiters: Mutex<HashMap<String, Arc<OrgLimiter>>>,
}

impl LimiterRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The limiter of organization `key`, created with `per_second` if it does not exist yet
    /// (an existing one keeps the rate it was created with: the first tenant's setting wins).
    pub fn get(&self, key: &str, per_second: u32) -> Arc<OrgLimiter> {
        let mut map = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key.to_string())
            .or_insert_with(|| Arc::new(OrgLimiter::new(key, per_second)))
            .clone()
    }
}

/// Parse `Retry-After`, in seconds or as an HTTP date, capped at [`MAX_SERVER_PAUSE`]. Never
/// panics: negative, non-finite and unparsable values read as absent.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    parse_retry_after_at(value, std::time::SystemTime::now())
}

fn parse_retry_after_at(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    let wait = match v.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::try_from_secs_f64(secs).unwrap_or(MAX_SERVER_PAUSE),
        Ok(_) => return None,
        Err(_) => httpdate::parse_http_date(v).ok()?.duration_since(now).unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_SERVER_PAUSE))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The times at which `n` permits of `limiter` are granted, from the first call (paused
    /// clock: exact, not subject to the machine's load).
    async fn permit_times(limiter: &OrgLimiter, n: usize) -> Vec<Duration> {
        let start = Instant::now();
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        times
    }

    #[tokio::test(start_paused = true)]
    async fn paces_evenly_at_the_limit() {
        // 10/s with 2% headroom asks for one permit every 1 / 9.8 s = 102.04 ms, the first at
        // once. Tokio's timers round a sleep up to the next millisecond, so every gap is 103 ms
        // and the real pace is 9.71/s, 97.1% of the limit.
        let times = permit_times(&OrgLimiter::new("acme", 10), 21).await;
        assert_eq!(times[0], Duration::ZERO);
        for (i, pair) in times.windows(2).enumerate() {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(103), "gap {i}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_in_any_second() {
        let times = permit_times(&OrgLimiter::new("acme", 10), 50).await;
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|u| **u < *t + Duration::from_secs(1)).count();
            assert!(in_window <= 10, "{in_window} permits within one second from {t:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_everyone_for_retry_after() {
        let limiter = Arc::new(OrgLimiter::new("acme", 10));
        limiter.acquire().await;
        limiter.observe(429, Some(Duration::from_secs(3)), None);
        let start = Instant::now();
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(3));
        assert!(start.elapsed() < Duration::from_millis(3200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_without_retry_after_pauses_one_window() {
        let limiter = OrgLimiter::new("acme", 10);
        limiter.acquire().await;
        limiter.observe(429, None, None);
        let start = Instant::now();
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn remaining_zero_after_our_own_full_window_does_not_pause() {
        let limiter = OrgLimiter::new("acme", 10);
        for _ in 0..10 {
            limiter.acquire().await;
        }
        // Our ten permits of the last second explain the zero: the next permit comes at the
        // normal pacing interval, not after an extra pause.
        limiter.observe(200, None, Some(0));
        let start = Instant::now();
        limiter.acquire().await;
        assert!(start.elapsed() < Duration::from_millis(110), "{:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn budgets_above_a_thousand_per_second_pace_without_panicking() {
        // leaky-bucket refuses sub-millisecond intervals; the limiter refills in groups instead.
        let limiter = OrgLimiter::new("fast", 5000);
        let start = Instant::now();
        for _ in 0..5000 {
            limiter.acquire().await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        assert!((0.95..1.1).contains(&elapsed), "5000 permits at 5000/s took {elapsed} s");
    }

    #[tokio::test(start_paused = true)]
    async fn remaining_zero_slows_down_briefly() {
        let limiter = OrgLimiter::new("acme", 10);
        limiter.acquire().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        limiter.observe(200, None, Some(0));
        let start = Instant::now();
        limiter.acquire().await;
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(100) && waited < Duration::from_millis(300), "{waited:?}");
    }

    #[test]
    fn registry_shares_one_limiter_per_org() {
        let reg = LimiterRegistry::new();
        let a = reg.get("acme.gladly.com", 10);
        let b = reg.get("acme.gladly.com", 50);
        let c = reg.get("other.gladly.com", 10);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(b.per_second(), 10);
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn huge_retry_after_is_capped_without_panicking() {
        assert_eq!(parse_retry_after("1e20"), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("18446744073709551616"), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("3600"), Some(Duration::from_secs(60)));
    }

    #[test]
    fn retry_after_as_an_http_date() {
        let now = httpdate::parse_http_date("Wed, 02 Dec 2026 06:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after_at("Wed, 02 Dec 2026 06:00:07 GMT", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after_at("Wed, 02 Dec 2026 05:59:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after_at("Fri, 31 Dec 9999 23:59:59 GMT", now), Some(Duration::from_secs(60)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_huge_retry_after_pauses_the_organization_one_minute_at_most() {
        let limiter = OrgLimiter::new("acme", 10);
        limiter.acquire().await;
        limiter.observe(429, parse_retry_after("1e20"), None);
        let start = Instant::now();
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(60), "{:?}", start.elapsed());
        assert!(start.elapsed() < Duration::from_secs(61), "{:?}", start.elapsed());
    }
}
