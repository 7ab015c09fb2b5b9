//! How many instances of one sync run at once.
//!
//! Inside one instance the plugin's requests are sequential, so the requests in flight equal
//! the instances running. To keep an organization's budget of `rate` requests per second busy
//! at a latency of `L` seconds, about `rate × L` must be in flight (Little's law); we aim a
//! little above that so the limiter, not the latency, sets the pace. A 429 halves the target
//! (the organization's budget is shared with others); it then grows back one step per
//! completed batch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Headroom over Little's law.
const HEADROOM: f64 = 1.5;

/// The adaptive target, shared by the workers of one sync.
#[derive(Debug)]
pub struct Concurrency {
    target: AtomicUsize,
    ceiling: AtomicUsize,
    max: usize,
}

impl Concurrency {
    /// Start at `initial` (the plugin's suggestion), never above `max`.
    pub fn new(initial: usize, max: usize) -> Self {
        let max = max.max(1);
        let initial = initial.clamp(1, max);
        Concurrency { target: AtomicUsize::new(initial), ceiling: AtomicUsize::new(max), max }
    }

    /// The number of workers that may run now.
    pub fn target(&self) -> usize {
        self.target.load(Ordering::Relaxed)
    }

    /// Whether worker number `index` (0-based) may take work now.
    pub fn admits(&self, index: usize) -> bool {
        index < self.target()
    }

    /// Re-aim after a batch: from the mean latency and the rate, and whether new 429s arrived.
    pub fn observe(&self, rate_per_second: u32, mean_latency: Option<Duration>, throttled_since_last: bool) {
        if throttled_since_last {
            let halved = (self.target() / 2).max(1);
            self.ceiling.store(halved.max(2).min(self.max), Ordering::Relaxed);
            self.target.store(halved, Ordering::Relaxed);
            return;
        }
        // Recover the ceiling slowly after throttling.
        let ceiling = (self.ceiling.load(Ordering::Relaxed) + 1).min(self.max);
        self.ceiling.store(ceiling, Ordering::Relaxed);
        let Some(latency) = mean_latency else { return };
        let needed = (f64::from(rate_per_second) * latency.as_secs_f64() * HEADROOM).ceil() as usize + 1;
        self.target.store(needed.clamp(1, ceiling), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_littles_law_with_headroom() {
        let c = Concurrency::new(5, 32);
        c.observe(10, Some(Duration::from_millis(150)), false);
        assert_eq!(c.target(), 4); // 10 × 0.15 × 1.5 = 2.25 → 3, + 1
        c.observe(10, Some(Duration::from_secs(2)), false);
        assert_eq!(c.target(), 31);
        c.observe(10, Some(Duration::from_secs(20)), false);
        assert_eq!(c.target(), 32);
    }

    #[test]
    fn halves_on_429_and_recovers_gradually() {
        let c = Concurrency::new(16, 32);
        c.observe(10, None, true);
        assert_eq!(c.target(), 8);
        c.observe(10, Some(Duration::from_secs(5)), false);
        assert_eq!(c.target(), 9, "bounded by the recovering ceiling");
        assert!(c.admits(8) && !c.admits(9));
    }

    #[test]
    fn never_below_one() {
        let c = Concurrency::new(0, 0);
        assert_eq!(c.target(), 1);
        c.observe(10, None, true);
        assert_eq!(c.target(), 1);
    }
}
