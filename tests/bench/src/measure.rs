//! What the sections measure with, besides wall clocks: the process's memory as `/proc` reports
//! it, and request rates read from the emulator's request log.

use std::collections::BTreeMap;
use std::time::Duration;

use gladly_emulator::RecordedRequest;

/// A `/proc/self/status` field in KiB.
pub fn proc_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Requests per second over a span of requests (first arrival to last), the largest number of
/// arrivals in one whole second since the emulator started, and in any one second (sliding).
pub fn rate_figures(reqs: &[&RecordedRequest]) -> (f64, u64, u64) {
    if reqs.len() < 2 {
        return (0.0, reqs.len() as u64, reqs.len() as u64);
    }
    let first = reqs.iter().map(|r| r.at).min().unwrap_or_default();
    let last = reqs.iter().map(|r| r.at).max().unwrap_or_default();
    let span = (last - first).as_secs_f64();
    let rate = if span > 0.0 { (reqs.len() - 1) as f64 / span } else { 0.0 };
    let mut windows: BTreeMap<u64, u64> = BTreeMap::new();
    for r in reqs {
        *windows.entry(r.at.as_secs()).or_default() += 1;
    }
    let max_fixed = windows.values().copied().max().unwrap_or(0);
    // Sliding one-second window over arrival times.
    let mut at: Vec<Duration> = reqs.iter().map(|r| r.at).collect();
    at.sort();
    let mut max_sliding = 0u64;
    let mut j = 0;
    for i in 0..at.len() {
        while at[i] - at[j] >= Duration::from_secs(1) {
            j += 1;
        }
        max_sliding = max_sliding.max((i - j + 1) as u64);
    }
    (rate, max_fixed, max_sliding)
}
