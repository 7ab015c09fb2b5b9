//! What the sections measure with, besides wall clocks: memory and CPU time as `/proc` reports
//! them, and request rates read from the emulator's request log.

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

/// utime + stime of a `/proc/.../stat` file (`/proc/self/stat`, `/proc/<pid>/stat`), in seconds
/// (clock ticks of 1/100 s).
pub fn proc_cpu_secs(path: &str) -> f64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = text.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    (tick(11) + tick(12)) / 100.0
}

/// One organization's traffic in the emulator's log.
pub struct OrgFigures {
    pub requests: usize,
    /// Requests per second over its span of arrivals, and that as a share of `limit`.
    pub rate: f64,
    pub share: f64,
    /// Most arrivals in one of the emulator's whole seconds, and in any one second.
    pub max_fixed: u64,
    pub max_sliding: u64,
    pub throttled: usize,
}

/// The figures of organization `org` (its Host-header name) among `reqs`.
pub fn org_figures(reqs: &[RecordedRequest], org: &str, limit: u32) -> OrgFigures {
    let mine: Vec<&RecordedRequest> = reqs.iter().filter(|r| r.org == org).collect();
    let (rate, max_fixed, max_sliding) = rate_figures(&mine);
    OrgFigures {
        requests: mine.len(),
        rate,
        share: rate / f64::from(limit),
        max_fixed,
        max_sliding,
        throttled: mine.iter().filter(|r| r.status == Some(429)).count(),
    }
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
