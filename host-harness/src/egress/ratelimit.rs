//! One request budget per destination organization, shared by every tenant and instance that
//! writes to it.
//!
//! Gladly does not document how it counts its limit (fixed one-second windows, a sliding
//! second, a leaky bucket). The pacing holds against all three:
//! - **even spacing**: a GCRA bucket (the `governor` crate) hands out one permit every
//!   `window / limit` (104 ms at 10/s). Its schedule is kept in theoretical times, so a waiter
//!   woken late on a busy machine takes the permit it was due without pushing the next one back;
//!   after a quiet spell it holds up to [`CATCH_UP_PERMITS`];
//! - **the window rule**: never more than `limit` permits within any `window` (1.04 s at
//!   first), whatever the bucket allows. Any one-second count the server keeps, fixed or
//!   sliding, then sees at most the limit, with 40 ms to spare for arrival jitter; a bucket of
//!   `limit` requests leaking `limit` per second never overflows either.
//!
//! The server's signals adjust it: a 429 stretches the window by a quarter (up to twice the
//! nominal one) and it shrinks back a little after every `limit` permits without a 429, so a
//! stricter server costs a slightly slower pace, not a pause per refusal. A 429's
//! `Retry-After` closes a gate for exactly that long (capped at [`MAX_SERVER_PAUSE`]); a 429
//! without one closes nothing. `Ratelimit-Remaining-Second: 0` not explained by our own use
//! holds back one spacing interval. Waiting callers wait, in turn; nobody fails.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// The nominal window the limit is spread over: 40 ms more than a second, so arrivals that
/// shift by up to 40 ms (scheduling, the network) never put `limit + 1` into one server second.
/// The pace is `limit / 1.04 s`, 96.2% of the limit.
pub const WINDOW: Duration = Duration::from_millis(1040);

/// The longest the window stretches after 429s: half the nominal pace.
const MAX_WINDOW: Duration = Duration::from_millis(2080);

/// How much one 429 stretches the window.
const STRETCH_ON_429: f64 = 1.25;

/// How much the window shrinks back (toward [`WINDOW`]) after `limit` permits without a 429,
/// as a share of the nominal window.
const SHRINK_STEP: f64 = 0.02;

/// Permits the bucket may hold to make up for late timers; the window rule still applies.
const CATCH_UP_PERMITS: u32 = 3;

/// The bucket always holds at least this long's worth of permits: tokio's timers fire on whole
/// milliseconds, so a fast budget (thousands a second) must hand out several per wake.
const MIN_CATCH_UP: Duration = Duration::from_millis(10);

/// Share of the limit our own permits of the last second must reach for a
/// `Ratelimit-Remaining-Second: 0` to be explained by our own pacing (then no pause is needed).
const OWN_USE_EXPLAINS_ZERO: f64 = 0.9;

/// The longest a server's `Retry-After` can hold back an organization. A server's answer is
/// untrusted: `Retry-After: 1e20` must not freeze every tenant of the organization for ever.
/// Gladly's limiter windows are one second long; a minute is far beyond any honest ask, and a
/// server that keeps answering 429 simply keeps the gate closed a minute at a time.
pub const MAX_SERVER_PAUSE: Duration = Duration::from_secs(60);

/// The even-spacing bucket, on the runtime's clock.
type Bucket = RateLimiter<NotKeyed, InMemoryState, RuntimeClock, NoOpMiddleware<std::time::Instant>>;

/// Tokio's clock as the bucket reads it: the same time the window rule and the sleeps use (and,
/// in tests, the paused clock).
#[derive(Debug, Clone, Copy)]
struct RuntimeClock;

impl Clock for RuntimeClock {
    type Instant = std::time::Instant;

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

/// The budget of one organization.
#[derive(Debug)]
pub struct OrgLimiter {
    key: String,
    per_second: u32,
    bucket: Bucket,
    /// One caller at a time applies the window rule, in arrival order.
    turn: tokio::sync::Mutex<()>,
    paused_until: Mutex<Option<Instant>>,
    window: Mutex<Window>,
    /// With a coordinator: the local deadline of this worker's lease on the organization. No
    /// permit is handed out past it, so a worker that lost the lease (paused, cut off) cannot
    /// send next to the new owner. `None`: no coordinator, the process owns the organization.
    lease_until: Mutex<Option<Instant>>,
}

/// A permit refused because this worker's lease on the organization has lapsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this worker's lease on organization {org} has lapsed; the request was not sent")]
pub struct LeaseLapsed {
    /// The organization.
    pub org: String,
}

/// The window rule's state.
#[derive(Debug)]
struct Window {
    /// The current window (from [`WINDOW`] up to [`MAX_WINDOW`]).
    length: Duration,
    /// Our last `per_second` permits, oldest first.
    grants: VecDeque<Instant>,
    /// Permits since the window last changed.
    since_change: u32,
}

impl OrgLimiter {
    /// A limiter allowing `per_second` requests per second (at least 1).
    pub fn new(key: impl Into<String>, per_second: u32) -> Self {
        let per_second = per_second.max(1);
        let interval = WINDOW / per_second;
        let burst = CATCH_UP_PERMITS.max((MIN_CATCH_UP.as_nanos() / interval.as_nanos().max(1)) as u32 + 1);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        // A zero interval (a limit beyond a billion a second) is held to the fastest quota.
        let quota = Quota::with_period(interval).unwrap_or(Quota::per_second(NonZeroU32::MAX)).allow_burst(burst);
        let bucket = RateLimiter::direct_with_clock(quota, RuntimeClock);
        // A new bucket is full; start it with one permit, so an organization used as soon as it
        // is made is paced from its first request. Like any quiet spell, time before the first
        // use earns the catch-up permits back (the window rule still bounds them).
        if let Some(held) = NonZeroU32::new(burst.get() - 1) {
            let _ = bucket.check_n(held);
        }
        OrgLimiter {
            key: key.into(),
            per_second,
            bucket,
            turn: tokio::sync::Mutex::new(()),
            paused_until: Mutex::new(None),
            window: Mutex::new(Window { length: WINDOW, grants: VecDeque::new(), since_change: 0 }),
            lease_until: Mutex::new(None),
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

    /// The current window (longer than [`WINDOW`] after 429s).
    pub fn window(&self) -> Duration {
        self.window.lock().unwrap_or_else(|p| p.into_inner()).length
    }

    /// Wait for a permit to send one request.
    pub async fn acquire(&self) {
        let _turn = self.turn.lock().await;
        self.wait_pause().await;
        while let Err(not_until) = self.bucket.check() {
            tokio::time::sleep(not_until.wait_time_from(RuntimeClock.now())).await;
        }
        loop {
            // A 429 may have arrived while we queued; honour it before sending.
            self.wait_pause().await;
            let now = Instant::now();
            let free_at = {
                let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
                match w.grants.front() {
                    Some(&oldest) if w.grants.len() >= self.per_second as usize && oldest + w.length > now => oldest + w.length,
                    _ => {
                        w.grant(now, self.per_second);
                        return;
                    }
                }
            };
            tokio::time::sleep_until(free_at).await;
        }
    }

    /// Wait for a permit, then refuse it if this worker's lease on the organization has lapsed
    /// meanwhile (checked last: the wait itself may outlast the lease).
    pub async fn acquire_leased(&self) -> Result<(), LeaseLapsed> {
        self.acquire().await;
        match *self.lease_until.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(until) if Instant::now() >= until => Err(LeaseLapsed { org: self.key.clone() }),
            _ => Ok(()),
        }
    }

    /// Set (or, with `None`, lift) the local deadline of this worker's lease on the organization.
    pub fn set_lease_deadline(&self, until: Option<Instant>) {
        *self.lease_until.lock().unwrap_or_else(|p| p.into_inner()) = until;
    }

    /// Whether our own permits of the last second come close to the whole limit.
    fn own_use_explains_zero(&self) -> bool {
        let now = Instant::now();
        let w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let last_second = w.grants.iter().filter(|t| now.duration_since(**t) < Duration::from_secs(1)).count();
        last_second as f64 >= f64::from(self.per_second) * OWN_USE_EXPLAINS_ZERO
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
            self.window.lock().unwrap_or_else(|p| p.into_inner()).stretch();
            if let Some(wait) = retry_after {
                self.pause_for(wait);
            }
        } else if remaining == Some(0) && !self.own_use_explains_zero() {
            // Someone else (another integration of the same organization) is using the budget:
            // hold back for one pacing interval. When our own pacing used up the window (as it
            // does at the end of every window under full load) the zero says nothing new, and
            // pausing would only waste budget.
            self.pause_for(Duration::from_secs_f64(1.0 / f64::from(self.per_second)));
        }
    }
}

impl Window {
    /// Record a permit at `now`; after `per_second` permits without a 429, shrink back a step.
    fn grant(&mut self, now: Instant, per_second: u32) {
        self.grants.push_back(now);
        // Only the last `per_second` permits of the current window can hold the next one back:
        // older ones go, so a very large limit does not keep every permit ever granted.
        while self.grants.len() > per_second as usize
            || self.grants.front().is_some_and(|t| now.duration_since(*t) >= self.length)
        {
            self.grants.pop_front();
        }
        self.since_change += 1;
        if self.since_change >= per_second && self.length > WINDOW {
            self.length = self.length.saturating_sub(WINDOW.mul_f64(SHRINK_STEP)).max(WINDOW);
            self.since_change = 0;
        }
    }

    /// A 429: slow down by a quarter, up to half the nominal pace.
    fn stretch(&mut self) {
        self.length = self.length.mul_f64(STRETCH_ON_429).min(MAX_WINDOW);
        self.since_change = 0;
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
        // 10/s spread over 1.04 s: one permit every 104 ms (a whole number of milliseconds, so
        // tokio's rounding of sleeps takes nothing off), the first at once: 96.2% of the limit.
        let times = permit_times(&OrgLimiter::new("acme", 10), 21).await;
        assert_eq!(times[0], Duration::ZERO);
        for (i, pair) in times.windows(2).enumerate() {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(104), "gap {i}");
        }
    }

    /// With a coordinator, a permit is refused once the lease's local deadline has passed, even
    /// when the wait for it began before; lifting the deadline (no coordinator) admits again.
    #[tokio::test(start_paused = true)]
    async fn no_permit_past_the_lease_deadline() {
        let limiter = OrgLimiter::new("acme.gladly.com", 10);
        limiter.set_lease_deadline(Some(Instant::now() + Duration::from_millis(250)));
        assert_eq!(limiter.acquire_leased().await, Ok(()), "at 0 ms");
        assert_eq!(limiter.acquire_leased().await, Ok(()), "at 104 ms");
        assert_eq!(limiter.acquire_leased().await, Ok(()), "at 208 ms");
        assert_eq!(limiter.acquire_leased().await, Err(LeaseLapsed { org: "acme.gladly.com".into() }), "at 312 ms, past the deadline");
        limiter.set_lease_deadline(None);
        assert_eq!(limiter.acquire_leased().await, Ok(()));
    }

    /// A waiter whose timer fires late (a busy runtime) takes the permit it was due, and the
    /// next one still comes on the original schedule: lateness is not carried forward, so a
    /// loaded host does not fall below its pace one late wake at a time.
    #[tokio::test(start_paused = true)]
    async fn a_late_wake_does_not_push_the_next_permit_back() {
        let limiter = Arc::new(OrgLimiter::new("acme", 10));
        let start = Instant::now();
        let waiter = tokio::spawn({
            let limiter = limiter.clone();
            async move {
                let mut times = Vec::new();
                for _ in 0..3 {
                    limiter.acquire().await;
                    times.push(start.elapsed());
                }
                times
            }
        });
        // The waiter takes its first permit and sleeps until the second is due at 104 ms; the
        // runtime then gets to it 30 ms late.
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_millis(134)).await;
        let ms = |v: u64| Duration::from_millis(v);
        assert_eq!(waiter.await.unwrap(), [ms(0), ms(134), ms(208)]);
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_in_any_second() {
        let times = permit_times(&OrgLimiter::new("acme", 10), 50).await;
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|u| **u < *t + Duration::from_secs(1)).count();
            assert!(in_window <= 10, "{in_window} permits within one second from {t:?}");
        }
    }

    /// After a quiet spell (or a late timer on a busy machine) the bucket makes up three
    /// permits at once, but the window rule still keeps the eleventh permit 1.04 s after the
    /// first: the burst costs nothing a server could count.
    #[tokio::test(start_paused = true)]
    async fn a_burst_after_a_quiet_spell_stays_within_the_window() {
        let limiter = OrgLimiter::new("acme", 10);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let times = permit_times(&limiter, 11).await;
        assert_eq!(times[..3], [Duration::ZERO; 3]);
        assert!(times[9] < Duration::from_millis(1040), "the bucket alone would go on: {times:?}");
        assert_eq!(times[10], Duration::from_millis(1040));
    }

    /// Permits older than the window are forgotten: a very large limit keeps only what one
    /// window granted.
    #[tokio::test(start_paused = true)]
    async fn only_the_current_windows_permits_are_kept() {
        let limiter = OrgLimiter::new("fast", 1_000_000);
        permit_times(&limiter, 500).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        limiter.acquire().await;
        assert_eq!(limiter.window.lock().unwrap().grants.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_everyone_for_retry_after() {
        let limiter = Arc::new(OrgLimiter::new("acme", 10));
        limiter.acquire().await;
        limiter.observe(429, Some(Duration::from_secs(3)), None);
        let start = Instant::now();
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    /// A 429 without `Retry-After` costs no pause: the next permit comes at the usual spacing,
    /// and the pace slows by a quarter (the limit spread over 1.3 s instead of 1.04 s).
    #[tokio::test(start_paused = true)]
    async fn a_429_without_retry_after_slows_the_pace_without_a_pause() {
        let limiter = OrgLimiter::new("acme", 10);
        limiter.acquire().await;
        limiter.observe(429, None, None);
        assert_eq!(limiter.window(), Duration::from_millis(1300));
        let start = Instant::now();
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_millis(104));
        // Ten permits from the one at 0: the eleventh waits for the stretched window.
        let times = permit_times(&limiter, 9).await;
        assert_eq!(times.last().copied(), Some(Duration::from_millis(1300 - 104)));
    }

    /// The pace comes back: every ten permits without a 429 shrink the window by 20.8 ms, down
    /// to the nominal 1.04 s; stretches stop at twice the nominal window.
    #[tokio::test(start_paused = true)]
    async fn the_window_shrinks_back_after_clean_permits_and_stretches_at_most_twofold() {
        let limiter = OrgLimiter::new("acme", 10);
        limiter.observe(429, None, None);
        permit_times(&limiter, 10).await;
        assert_eq!(limiter.window(), Duration::from_micros(1_279_200));
        for _ in 0..10 {
            limiter.observe(429, None, None);
        }
        assert_eq!(limiter.window(), Duration::from_millis(2080));
        permit_times(&limiter, 2000).await;
        assert_eq!(limiter.window(), WINDOW);
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
        // Tokio's timers fire on whole milliseconds: the bucket hands out several per wake.
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
