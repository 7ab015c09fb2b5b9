//! The command line: the sections and their size flags, which sections a run selects, and the
//! flags the parent passes on to each section's child process.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Parser;

/// Every section, in the order a full run runs them.
pub const SECTIONS: &[&str] =
    &["requests", "matching", "create_first", "overhead", "instantiate", "planning", "fairness", "orgs_per_host", "workers", "rate"];

#[derive(Parser, Debug, Clone)]
#[command(name = "bench", about = "Benchmarks of the Gladly destination component and its host")]
pub struct Args {
    /// Sections to run, comma separated (default: all): requests, matching, create_first, overhead,
    /// instantiate, planning, fairness, orgs_per_host, workers, rate.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Rate use: records of the upsert at 150 ms latency and 10/s (≈ 2 requests each).
    #[arg(long, default_value_t = 2000)]
    pub records: usize,
    /// Rate use: records of the sequential baseline (max_concurrency = 1).
    #[arg(long, default_value_t = 2000)]
    pub baseline_records: usize,
    /// Requests per row: rows synced.
    #[arg(long, default_value_t = 1000)]
    pub request_rows: usize,
    /// Requests per row: emulator latency (ms) for the host and the naive baseline alike.
    #[arg(long, default_value_t = 20)]
    pub request_latency_ms: u64,
    /// Host overhead: record counts sent by each client, comma separated (the per-record cost
    /// is the slope between the smallest and the largest).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1000usize, 10_000])]
    pub overhead_sizes: Vec<usize>,
    /// Host overhead: runs per size and side (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub overhead_runs: usize,
    /// Host overhead: concurrent instances (host) and connections (native client).
    #[arg(long, default_value_t = 8)]
    pub overhead_concurrency: usize,
    /// Instantiation: iterations averaged.
    #[arg(long, default_value_t = 2000)]
    pub iterations: usize,
    /// Planning: row counts, comma separated (issue 14 item 4 compares 10M with 100k; the 10M
    /// size takes about 5 minutes, most of it the bench filling the state).
    #[arg(long, value_delimiter = ',', default_values_t = vec![100_000usize, 1_000_000, 10_000_000])]
    pub plan_rows: Vec<usize>,
    /// Fairness: tenants.
    #[arg(long, default_value_t = 100)]
    pub tenants: usize,
    /// Fairness: organizations the tenants are spread over.
    #[arg(long, default_value_t = 20)]
    pub orgs: usize,
    /// Fairness: records per tenant.
    #[arg(long, default_value_t = 100)]
    pub tenant_records: usize,
    /// Fairness: each organization's requests per second.
    #[arg(long, default_value_t = 20)]
    pub org_rate: u32,
    /// Organizations per host: the organization counts tried, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![100usize, 200, 300, 400])]
    pub host_orgs: Vec<usize>,
    /// Organizations per host: new customers upserted per organization (one request each).
    #[arg(long, default_value_t = 100)]
    pub host_org_records: usize,
    /// Organizations per host: emulator latency (ms).
    #[arg(long, default_value_t = 50)]
    pub host_latency_ms: u64,
    /// Workers: worker counts tried, comma separated (each a run of its own).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 2, 3])]
    pub worker_counts: Vec<usize>,
    /// Workers: organizations, one sync each.
    #[arg(long, default_value_t = 60)]
    pub worker_orgs: usize,
    /// Workers: new customers per organization (one request each).
    #[arg(long, default_value_t = 150)]
    pub worker_org_records: usize,
    /// Workers: the lease length given to the workers.
    #[arg(long, default_value_t = 5)]
    pub worker_lease_secs: u64,
    /// Where to write the JSON results.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Internal: run one section in this process and print its result.
    #[arg(long, hide = true)]
    pub child: Option<String>,
    /// Internal: the row count of a planning child.
    #[arg(long, hide = true)]
    pub rows: Option<usize>,
    /// Internal: the SQLite file of a planning child.
    #[arg(long, hide = true)]
    pub db: Option<PathBuf>,
    /// Internal: the phase a planning child runs.
    #[arg(long, hide = true)]
    pub phase: Option<String>,
    /// Internal: the folder a planning size's children share (job file, state).
    #[arg(long, hide = true)]
    pub work_dir: Option<PathBuf>,
}

/// The sections this run selects (`--only`, or all of them), each checked to be known.
pub fn selected_sections(args: &Args) -> Result<Vec<String>> {
    let sections: Vec<String> = if args.only.is_empty() {
        SECTIONS.iter().map(|s| s.to_string()).collect()
    } else {
        args.only.clone()
    };
    for s in &sections {
        if !SECTIONS.contains(&s.as_str()) {
            bail!("unknown section {s:?}; known: {}", SECTIONS.join(", "));
        }
    }
    Ok(sections)
}

/// The options a child needs, as arguments.
pub fn pass_through(a: &Args) -> Vec<String> {
    let mut v = Vec::new();
    let mut push = |k: &str, val: String| {
        v.push(format!("--{k}"));
        v.push(val);
    };
    push("records", a.records.to_string());
    push("baseline-records", a.baseline_records.to_string());
    push("request-rows", a.request_rows.to_string());
    push("request-latency-ms", a.request_latency_ms.to_string());
    push("overhead-sizes", a.overhead_sizes.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(","));
    push("overhead-runs", a.overhead_runs.to_string());
    push("overhead-concurrency", a.overhead_concurrency.to_string());
    push("iterations", a.iterations.to_string());
    push("tenants", a.tenants.to_string());
    push("orgs", a.orgs.to_string());
    push("tenant-records", a.tenant_records.to_string());
    push("org-rate", a.org_rate.to_string());
    push("host-orgs", a.host_orgs.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(","));
    push("host-org-records", a.host_org_records.to_string());
    push("host-latency-ms", a.host_latency_ms.to_string());
    push("worker-counts", a.worker_counts.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(","));
    push("worker-orgs", a.worker_orgs.to_string());
    push("worker-org-records", a.worker_org_records.to_string());
    push("worker-lease-secs", a.worker_lease_secs.to_string());
    v
}
