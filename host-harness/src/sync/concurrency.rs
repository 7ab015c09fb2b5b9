//! How many instances of one sync run at once.
//!
//! Inside one instance the plugin's requests are sequential, so the requests in flight equal
//! the instances running. To keep an organization's budget of `rate` requests per second busy
//! at a latency of `L` seconds, about `rate × L` must be in flight (Little's law); we aim a
//! little above that so the limiter, not the latency, sets the pace. A 429 halves the target
//! (the organization's budget is shared with others); it then grows back one step per
//! completed batch.
//!
//! What one `sync-batch` call holds is sized from the same target ([`Concurrency::batch_rows`]):
//! a call's records are confirmed (written to state) only when its last one is, so the records
//! sent but not yet confirmed, which a killed host sends again, are all the calls in flight.
//! Sizing each call to about [`BATCH_SECONDS`] of the organization's rate over the senders keeps
//! that to a few seconds of requests, however many senders run.
//!
//! A worker the target does not admit waits to be woken, never on a timer: a host drives
//! hundreds of organizations with up to 32 workers each, mostly waiting, and a 50 ms poll per
//! waiting worker was tens of thousands of wake-ups a second (BENCHMARKS.md, `orgs_per_host`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Headroom over Little's law.
const HEADROOM: f64 = 1.5;

/// About how long one `sync-batch` call should take at the organization's rate: at 10/s and a
/// 50 ms latency (2 senders) a call holds 10 records, and about 20 are out once the target has
/// settled. The smaller calls cost no share of the rate and no host CPU that shows
/// (BENCHMARKS.md, `workers`).
pub const BATCH_SECONDS: f64 = 2.0;

/// The adaptive target, shared by the workers of one sync.
#[derive(Debug)]
pub struct Concurrency {
    target: AtomicUsize,
    ceiling: AtomicUsize,
    max: usize,
    /// Woken whenever the target grows or the work ends.
    changed: Notify,
}

impl Concurrency {
    /// Start at `initial` (the plugin's suggestion), never above `max`.
    pub fn new(initial: usize, max: usize) -> Self {
        let max = max.max(1);
        let initial = initial.clamp(1, max);
        Concurrency { target: AtomicUsize::new(initial), ceiling: AtomicUsize::new(max), max, changed: Notify::new() }
    }

    /// The number of workers that may run now.
    pub fn target(&self) -> usize {
        self.target.load(Ordering::Relaxed)
    }

    /// Whether worker number `index` (0-based) may take work now.
    pub fn admits(&self, index: usize) -> bool {
        index < self.target()
    }

    /// Wait until worker `index` is admitted, or until `done()` holds (then `false`). `done` is
    /// checked again after every [`Concurrency::wake_all`], so whoever makes it true must call that.
    pub async fn admitted(&self, index: usize, done: impl Fn() -> bool) -> bool {
        loop {
            // Registered before the checks, so a change between a check and the wait still wakes.
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if self.admits(index) {
                return true;
            }
            if done() {
                return false;
            }
            changed.await;
        }
    }

    /// Wake every waiting worker to look again (the target grew, or the work ended).
    pub fn wake_all(&self) {
        self.changed.notify_waiters();
    }

    /// Records per `sync-batch` call now: what the admitted senders together confirm in about
    /// [`BATCH_SECONDS`] at `rate_per_second` (a record costs one request or more), at least one
    /// and never more than `max_rows` (what is left of the planned batch).
    pub fn batch_rows(&self, rate_per_second: u32, max_rows: usize) -> usize {
        let rows = f64::from(rate_per_second) * BATCH_SECONDS / self.target() as f64;
        (rows.floor() as usize).clamp(1, max_rows.max(1))
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
        let target = needed.clamp(1, ceiling);
        let before = self.target.swap(target, Ordering::Relaxed);
        if target > before {
            self.wake_all();
        }
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

    #[tokio::test(start_paused = true)]
    async fn a_waiting_worker_starts_as_soon_as_the_target_admits_it() {
        let c = std::sync::Arc::new(Concurrency::new(1, 8));
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.admitted(3, || false).await }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiter.is_finished(), "worker 3 is not admitted at a target of 1");
        c.observe(10, Some(Duration::from_millis(300)), false); // 10 × 0.3 × 1.5 → 5, + 1 = 6
        // No time passes: the growth itself wakes the worker.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(waiter.is_finished(), "admitted without waiting for a timer");
        assert!(waiter.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_worker_leaves_when_the_work_ends() {
        let c = std::sync::Arc::new(Concurrency::new(1, 8));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let waiter = tokio::spawn({
            let (c, done) = (c.clone(), done.clone());
            async move { c.admitted(3, || done.load(Ordering::Relaxed)).await }
        });
        tokio::task::yield_now().await;
        done.store(true, Ordering::Relaxed);
        c.wake_all();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(waiter.is_finished());
        assert!(!waiter.await.unwrap(), "not admitted: the work ended");
    }

    #[test]
    fn a_call_holds_about_two_seconds_of_the_rate_across_the_admitted_senders() {
        let c = Concurrency::new(5, 32);
        assert_eq!(c.batch_rows(10, 20), 4, "10/s × 2 s over 5 senders");
        c.observe(10, Some(Duration::from_millis(50)), false); // 10 × 0.05 × 1.5 → 1, + 1 = 2
        assert_eq!(c.batch_rows(10, 20), 10, "10/s × 2 s over 2 senders");
        assert_eq!(c.batch_rows(10, 6), 6, "never more than what is left of the batch");
        assert_eq!(c.batch_rows(1_000_000, 20), 20, "a fast organization keeps the configured size");
        c.observe(10, Some(Duration::from_secs(20)), false); // the 32 senders a slow server needs
        assert_eq!(c.batch_rows(10, 20), 1, "never below one record");
    }

    #[test]
    fn never_below_one() {
        let c = Concurrency::new(0, 0);
        assert_eq!(c.target(), 1);
        c.observe(10, None, true);
        assert_eq!(c.target(), 1);
    }
}
