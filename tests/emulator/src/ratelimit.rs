//! Per-organization rate limiter, in one of three shapes.
//!
//! Gladly documents the limit (10 requests per second per organization) but not how it is
//! counted; one source calls it a leaky bucket. A client tuned to one shape can break against
//! another, so the emulator can count each way, and every shape's clock starts at a phase drawn
//! from the run's seed, so no test can lean on where the emulator's seconds begin.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::faults::splitmix;
use crate::lock;

/// How the limiter counts requests against `limit` per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimiterShape {
    /// A bucket holding up to `limit` requests that leaks one every `1/limit` s, on a tick whose
    /// phase is random. A request that finds the bucket full is refused and does not enter it.
    /// Refuses any burst above `limit`, wherever it falls; absorbs jitter in an even pace.
    #[default]
    LeakyBucket,
    /// At most `limit` accepted requests in any one-second interval. The strictest shape: a
    /// paced client whose requests arrive bunched by network jitter is refused.
    SlidingWindow,
    /// Counts every request (refused ones too) in one-second windows whose boundaries fall at a
    /// random phase. Lets `2 × limit` through across a boundary.
    FixedWindow,
}

impl LimiterShape {
    /// Every shape, for tests that run against each.
    pub const ALL: [LimiterShape; 3] =
        [LimiterShape::LeakyBucket, LimiterShape::SlidingWindow, LimiterShape::FixedWindow];

    /// The shape's name in files and flags: `leaky-bucket`, `sliding-window`, `fixed-window`.
    pub fn name(self) -> &'static str {
        match self {
            LimiterShape::LeakyBucket => "leaky-bucket",
            LimiterShape::SlidingWindow => "sliding-window",
            LimiterShape::FixedWindow => "fixed-window",
        }
    }
}

impl std::str::FromStr for LimiterShape {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        LimiterShape::ALL
            .into_iter()
            .find(|shape| shape.name() == s)
            .ok_or_else(|| format!("unknown limiter shape {s:?}: use leaky-bucket, sliding-window or fixed-window"))
    }
}

/// The limiter's verdict for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateState {
    /// Requests allowed per second.
    pub limit: u32,
    /// Requests that would be allowed right now.
    pub remaining: u32,
    /// Whether this request is within the limit.
    pub allowed: bool,
    /// Whole seconds until a request would be allowed again (at least 1).
    pub retry_after_secs: u64,
}

/// What one organization has used, in the limiter's shape.
#[derive(Debug)]
enum Usage {
    /// Requests in the bucket and the index of the last leak tick applied.
    Bucket { level: u32, tick: u64 },
    /// Arrival times of the accepted requests of the last second.
    Sliding(VecDeque<Duration>),
    /// The window index and the requests counted in it.
    Window { index: u64, count: u32 },
}

/// Counts requests per organization in the configured shape.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    start: Instant,
    shape: LimiterShape,
    /// Where the shape's clock starts, as a fraction of its period (a leak tick or a window).
    phase: f64,
    limit: AtomicU32,
    usage: Mutex<HashMap<String, Usage>>,
}

const SECOND: Duration = Duration::from_secs(1);

impl RateLimiter {
    /// A limiter of `shape` allowing `limit` requests per second, its phase drawn from `seed`.
    pub(crate) fn new(start: Instant, limit: u32, shape: LimiterShape, seed: u64) -> Self {
        RateLimiter {
            start,
            shape,
            phase: phase_from(seed),
            limit: AtomicU32::new(limit),
            usage: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Counts one request for `org` and says whether it is allowed.
    pub(crate) fn check(&self, org: &str, now: Instant) -> RateState {
        self.state(org, now, true)
    }

    /// The current state for `org` without counting a request.
    pub(crate) fn peek(&self, org: &str, now: Instant) -> RateState {
        self.state(org, now, false)
    }

    fn state(&self, org: &str, now: Instant, count: bool) -> RateState {
        let limit = self.limit.load(Ordering::Relaxed).max(1);
        let elapsed = now.saturating_duration_since(self.start);
        let mut usage = lock(&self.usage);
        let entry = usage.entry(org.to_string()).or_insert_with(|| match self.shape {
            LimiterShape::LeakyBucket => Usage::Bucket { level: 0, tick: 0 },
            LimiterShape::SlidingWindow => Usage::Sliding(VecDeque::new()),
            LimiterShape::FixedWindow => Usage::Window { index: 0, count: 0 },
        });
        let (allowed, used, wait) = match entry {
            Usage::Bucket { level, tick } => {
                let interval = SECOND / limit;
                // Leak ticks fall at (k + phase) × interval after the start.
                let now_tick = ticks_at(elapsed, interval, self.phase);
                let leaked = now_tick.saturating_sub(*tick).min(u64::from(u32::MAX)) as u32;
                *level = level.saturating_sub(leaked);
                *tick = (*tick).max(now_tick);
                let allowed = *level < limit;
                if count && allowed {
                    *level += 1;
                }
                (allowed, *level, tick_time(now_tick, interval, self.phase).saturating_sub(elapsed))
            }
            Usage::Sliding(accepted) => {
                while accepted.front().is_some_and(|t| elapsed.saturating_sub(*t) >= SECOND) {
                    accepted.pop_front();
                }
                let allowed = (accepted.len() as u64) < u64::from(limit);
                if count && allowed {
                    accepted.push_back(elapsed);
                }
                let wait = accepted.front().map_or(Duration::ZERO, |t| (*t + SECOND).saturating_sub(elapsed));
                (allowed, accepted.len() as u32, wait)
            }
            Usage::Window { index, count: seen } => {
                let window = ticks_at(elapsed, SECOND, self.phase);
                if *index != window {
                    (*index, *seen) = (window, 0);
                }
                if count {
                    *seen = seen.saturating_add(1);
                }
                // Refused requests count too, so the verdict is whether this one fits.
                (*seen <= limit, *seen, tick_time(window, SECOND, self.phase).saturating_sub(elapsed))
            }
        };
        RateState {
            limit,
            remaining: limit.saturating_sub(used),
            allowed,
            // Round up: a client waiting this many whole seconds finds room.
            retry_after_secs: (wait.as_millis().div_ceil(1000) as u64).max(1),
        }
    }
}

/// How many period boundaries, at `(k + phase) × period`, lie at or before `elapsed`
/// (the first one, at `phase × period`, counts as one). Integer nanoseconds, so a request
/// exactly on a boundary is never put before it by rounding.
fn ticks_at(elapsed: Duration, period: Duration, phase: f64) -> u64 {
    let period = period.as_nanos().max(1);
    let offset = (period as f64 * phase) as u128;
    match elapsed.as_nanos().checked_sub(offset) {
        None => 0,
        Some(since_first) => (since_first / period) as u64 + 1,
    }
}

/// When boundary number `tick + 1` falls (see [`ticks_at`]), from the start.
fn tick_time(tick: u64, period: Duration, phase: f64) -> Duration {
    let offset = Duration::from_nanos((period.as_nanos() as f64 * phase) as u64);
    offset + period * u32::try_from(tick).unwrap_or(u32::MAX)
}

/// A fraction in [0, 1) that depends only on `seed`.
fn phase_from(seed: u64) -> f64 {
    (splitmix(seed) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(shape: LimiterShape, limit: u32, phase: f64) -> (RateLimiter, Instant) {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(t0, limit, shape, 0);
        rl.phase = phase;
        (rl, t0)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_phase_depends_on_the_seed_only() {
        assert_eq!(phase_from(7), phase_from(7));
        assert_ne!(phase_from(7), phase_from(8));
        assert!((0.0..1.0).contains(&phase_from(u64::MAX)));
    }

    #[test]
    fn fixed_windows_reset_at_their_phase_and_orgs_are_separate() {
        // Windows begin at 0.25 s, 1.25 s, …
        let (rl, t0) = limiter(LimiterShape::FixedWindow, 2, 0.25);
        let at = |m| t0 + ms(m);
        assert!(rl.check("a", at(300)).allowed);
        assert!(rl.check("a", at(400)).allowed);
        let refused = rl.check("a", at(1200));
        assert!(!refused.allowed, "still in the window that began at 0.25 s");
        assert_eq!(refused.retry_after_secs, 1);
        assert!(rl.check("b", at(1200)).allowed);
        let s = rl.check("a", at(1250));
        assert!(s.allowed, "a new window began at 1.25 s");
        assert_eq!(s.remaining, 1);
        assert_eq!(rl.peek("a", at(1250)).remaining, 1);
    }

    #[test]
    fn fixed_windows_let_twice_the_limit_through_across_a_boundary() {
        let (rl, t0) = limiter(LimiterShape::FixedWindow, 3, 0.5);
        let allowed = [400, 420, 440, 500, 520, 540].iter().filter(|m| rl.check("a", t0 + ms(**m)).allowed).count();
        assert_eq!(allowed, 6);
    }

    #[test]
    fn a_sliding_window_refuses_the_same_burst_across_a_boundary() {
        let (rl, t0) = limiter(LimiterShape::SlidingWindow, 3, 0.5);
        let verdicts: Vec<bool> = [400, 420, 440, 500, 520, 540].iter().map(|m| rl.check("a", t0 + ms(*m)).allowed).collect();
        assert_eq!(verdicts, [true, true, true, false, false, false]);
        // Room again one second after the first accepted request, not before.
        assert!(!rl.check("a", t0 + ms(1399)).allowed);
        assert!(rl.check("a", t0 + ms(1400)).allowed);
    }

    #[test]
    fn a_leaky_bucket_refuses_a_burst_above_the_limit_and_leaks_on_its_ticks() {
        // Limit 4: capacity 4, one leak every 250 ms at 100 ms, 350 ms, 600 ms, …
        let (rl, t0) = limiter(LimiterShape::LeakyBucket, 4, 0.4);
        let verdicts: Vec<bool> = (0..5).map(|i| rl.check("a", t0 + ms(50 + i)).allowed).collect();
        assert_eq!(verdicts, [true, true, true, true, false]);
        assert!(rl.check("a", t0 + ms(100)).allowed, "the tick at 100 ms leaked one");
        assert!(!rl.check("a", t0 + ms(349)).allowed);
        let s = rl.check("a", t0 + ms(350));
        assert!(s.allowed, "the tick at 350 ms leaked one");
        assert_eq!(s.remaining, 0);
    }

    #[test]
    fn a_leaky_bucket_absorbs_jitter_in_an_even_pace() {
        // 10/s paced at 102 ms, each arrival up to 40 ms late or early: never refused.
        let (rl, t0) = limiter(LimiterShape::LeakyBucket, 10, 0.7);
        let jitter = [0i64, 40, -40, 30, -40, 40, 0, -40, 40, -10];
        for i in 0..100u64 {
            let at = (i * 102) as i64 + 100 + jitter[(i % 10) as usize];
            assert!(rl.check("a", t0 + ms(at as u64)).allowed, "request {i} at {at} ms");
        }
    }
}
