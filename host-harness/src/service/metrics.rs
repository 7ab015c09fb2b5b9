//! `GET /metrics`: the worker's counters in the Prometheus text format (`prometheus-client`).
//!
//! Records and runs are counted when a run ends, from its report. Requests and 429s are counted
//! per organization while runs go on: each running tenant's egress counters are sampled at every
//! scheduler tick, 500 ms ([`Metrics::sample`]) and what grew since the last sample is added, so a scrape in the
//! middle of a long run sees it progress. The share of the limit is the organization's requests
//! over the last [`SHARE_WINDOW`] divided by what its limit allows in that time.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::egress::EgressStats;
use crate::service::registry::RunOutcome;
use crate::sync::report::RunReport;

/// The window the share of the limit is measured over.
pub const SHARE_WINDOW: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabel {
    sync: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    sync: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    sync: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OrgLabel {
    organization: String,
}

fn run_duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.5, 2.0, 14))
}

/// A running tenant whose egress counters are sampled.
struct Tracked {
    org: String,
    limit: u32,
    stats: Arc<EgressStats>,
    requests_seen: u64,
    throttled_seen: u64,
}

/// Requests per organization over time, for the share of the limit.
#[derive(Default)]
struct OrgWindow {
    limit: u32,
    total: u64,
    samples: VecDeque<(Instant, u64)>,
}

/// The worker's metrics.
pub struct Metrics {
    registry: Registry,
    records: Family<OutcomeLabels, Counter>,
    record_errors: Family<CodeLabels, Counter>,
    runs: Family<OutcomeLabels, Counter>,
    run_seconds: Family<SyncLabel, Histogram, fn() -> Histogram>,
    requests: Family<OrgLabel, Counter>,
    throttled: Family<OrgLabel, Counter>,
    share: Family<OrgLabel, Gauge<f64, AtomicU64>>,
    queue_depth: Gauge,
    running: Gauge,
    instances: Gauge,
    tracked: Mutex<(u64, HashMap<u64, Tracked>)>,
    windows: Mutex<HashMap<String, OrgWindow>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric registered, all at zero.
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("destination"),
            records: Family::default(),
            record_errors: Family::default(),
            runs: Family::default(),
            run_seconds: Family::new_with_constructor(run_duration_histogram as fn() -> Histogram),
            requests: Family::default(),
            throttled: Family::default(),
            share: Family::default(),
            queue_depth: Gauge::default(),
            running: Gauge::default(),
            instances: Gauge::default(),
            tracked: Mutex::default(),
            windows: Mutex::default(),
        };
        m.registry.register("records", "Records by final outcome of their run (created, updated, unchanged, skipped, failed, invalid)", m.records.clone());
        m.registry.register("record_errors", "Records that failed, by error code", m.record_errors.clone());
        m.registry.register("runs", "Runs by how they ended", m.runs.clone());
        m.registry.register("run_duration_seconds", "Run durations", m.run_seconds.clone());
        m.registry.register("requests", "Requests sent to the organization's API", m.requests.clone());
        m.registry.register("throttled", "429 answers from the organization's API", m.throttled.clone());
        m.registry.register("organization_limit_share", "Requests over the last 10 s as a share of what the organization's limit allows", m.share.clone());
        m.registry.register("queue_depth", "Syncs waiting for a run slot", m.queue_depth.clone());
        m.registry.register("runs_in_progress", "Syncs running", m.running.clone());
        m.registry.register("instances_alive", "Plugin instances alive in this process", m.instances.clone());
        m
    }

    /// Start sampling a running tenant's egress counters; stop with [`Metrics::untrack`].
    pub fn track(&self, org: &str, limit: u32, stats: Arc<EgressStats>) -> u64 {
        let mut t = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        t.0 += 1;
        let id = t.0;
        let (requests_seen, throttled_seen) = (stats.requests.load(Ordering::Relaxed), stats.throttled.load(Ordering::Relaxed));
        t.1.insert(id, Tracked { org: org.to_string(), limit, stats, requests_seen, throttled_seen });
        id
    }

    /// Take the tenant's last counts and stop sampling it.
    pub fn untrack(&self, id: u64) {
        self.sample();
        self.tracked.lock().unwrap_or_else(|p| p.into_inner()).1.remove(&id);
    }

    /// Add what every running tenant sent since the last sample; update the shares.
    pub fn sample(&self) {
        let now = Instant::now();
        let mut grown: HashMap<String, (u32, u64)> = HashMap::new();
        {
            let mut t = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
            for tr in t.1.values_mut() {
                let (r, th) = (tr.stats.requests.load(Ordering::Relaxed), tr.stats.throttled.load(Ordering::Relaxed));
                let label = OrgLabel { organization: tr.org.clone() };
                let dr = r.saturating_sub(tr.requests_seen);
                self.requests.get_or_create(&label).inc_by(dr);
                self.throttled.get_or_create(&label).inc_by(th.saturating_sub(tr.throttled_seen));
                tr.requests_seen = r;
                tr.throttled_seen = th;
                let g = grown.entry(tr.org.clone()).or_default();
                g.0 = g.0.max(tr.limit);
                g.1 += dr;
            }
        }
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        for (org, (limit, dr)) in grown {
            let w = windows.entry(org).or_default();
            w.limit = limit;
            w.total += dr;
        }
        for (org, w) in windows.iter_mut() {
            w.samples.push_back((now, w.total));
            while w.samples.front().is_some_and(|(t, _)| now.duration_since(*t) > SHARE_WINDOW) {
                w.samples.pop_front();
            }
            let (t0, n0) = *w.samples.front().expect("just pushed");
            let secs = now.duration_since(t0).as_secs_f64();
            let share = if secs > 0.0 && w.limit > 0 { (w.total - n0) as f64 / (secs * f64::from(w.limit)) } else { 0.0 };
            self.share.get_or_create(&OrgLabel { organization: org.clone() }).set(share);
        }
    }

    /// Count a finished run from its report.
    pub fn run_finished(&self, sync: &str, outcome: RunOutcome, report: Option<&RunReport>, secs: f64) {
        self.runs.get_or_create(&OutcomeLabels { sync: sync.into(), outcome: outcome.label().into() }).inc();
        self.run_seconds.get_or_create(&SyncLabel { sync: sync.into() }).observe(secs);
        let Some(r) = report else { return };
        let c = &r.counts;
        for (outcome, n) in [
            ("created", c.created),
            ("updated", c.updated),
            ("unchanged", c.unchanged + c.confirmed_unchanged),
            ("skipped", c.skipped),
            ("failed", c.failed),
            ("invalid", c.invalid + c.still_invalid),
        ] {
            self.records.get_or_create(&OutcomeLabels { sync: sync.into(), outcome: outcome.into() }).inc_by(n);
        }
        for f in &r.failures {
            self.record_errors.get_or_create(&CodeLabels { sync: sync.into(), code: f.code.label().into() }).inc();
        }
    }

    /// The text exposition, with the gauges read now.
    pub fn render(&self, queued: usize, running: usize) -> String {
        self.sample();
        self.queue_depth.set(queued as i64);
        self.running.set(running as i64);
        self.instances.set(crate::sandbox::instance::live_instances() as i64);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_per_organization_as_they_grow() {
        let m = Metrics::new();
        let stats = Arc::new(EgressStats::default());
        stats.requests.store(5, Ordering::Relaxed);
        let id = m.track("acme.gladly.com", 10, stats.clone());
        stats.requests.store(12, Ordering::Relaxed);
        stats.throttled.store(1, Ordering::Relaxed);
        m.sample();
        stats.requests.store(20, Ordering::Relaxed);
        m.untrack(id);
        stats.requests.store(99, Ordering::Relaxed);
        let text = m.render(2, 1);
        assert!(text.contains("destination_requests_total{organization=\"acme.gladly.com\"} 15\n"), "{text}");
        assert!(text.contains("destination_throttled_total{organization=\"acme.gladly.com\"} 1\n"), "{text}");
        assert!(text.contains("destination_queue_depth 2\n"), "{text}");
        assert!(text.contains("destination_runs_in_progress 1\n"), "{text}");
    }
}
