//! Request-rate windows over server arrival times: how many requests fell into the busiest
//! window, and the assertion that a run kept a requests-per-second limit.

use std::time::Duration;

/// The largest number of `times` inside any window `[t, t + width)` starting at one of them.
pub fn max_in_window(times: &[Duration], width: Duration) -> usize {
    let mut t: Vec<Duration> = times.to_vec();
    t.sort();
    (0..t.len()).map(|i| t[i..].iter().take_while(|u| **u < t[i] + width).count()).max().unwrap_or(0)
}

/// Scheduling delay the rate checks forgive. Arrival times are taken at the server: a request
/// that reaches it late makes the next ones look closer together than the host sent them, and
/// these tests run beside CPU-bound ones (spinning guests) on a shared 2-core machine. A burst or
/// a sustained excess over the limit still fails.
pub const ARRIVAL_JITTER: Duration = Duration::from_millis(150);

/// Asserts that server arrival `times` respect `limit` requests per second: at most `limit` in
/// any window of one second less [`ARRIVAL_JITTER`], and the whole run no faster than `limit`.
pub fn assert_within_rate(times: &[Duration], limit: usize, what: &str) {
    let width = Duration::from_secs(1) - ARRIVAL_JITTER;
    let most = max_in_window(times, width);
    assert!(most <= limit, "{what}: {most} requests within {width:?} at a {limit}/s limit");
    let mut t = times.to_vec();
    t.sort();
    if let (Some(first), Some(last)) = (t.first(), t.last()) {
        let fastest = Duration::from_secs_f64(t.len().saturating_sub(1) as f64 / limit as f64).saturating_sub(ARRIVAL_JITTER);
        assert!(last.saturating_sub(*first) >= fastest, "{what}: {} requests in {:?}, faster than {limit}/s", t.len(), *last - *first);
    }
}
