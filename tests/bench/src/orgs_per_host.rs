//! Organizations per host (issue 14 item 6): how many organizations of 10 requests/s one host
//! process drives at ≥ 95% of their limit each with no 429 of its own.
//!
//! For each N of `--host-orgs`: N tenants, one per organization, each upserting
//! `--host-org-records` generated new customers (one POST each with create-first), all started
//! at once in this process's harness. The emulator runs as a process of its own (the
//! `gladly-emulator` binary, release build), limiting each organization to 10/s (Gladly's) with
//! `--host-latency-ms` latency, and writes its request log when stopped. Per organization its
//! share of the limit is requests/s over its span of arrivals. Where the time goes: the CPU
//! seconds of this process (host) and of the emulator's, over the wall time of the runs.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gladly_emulator::RecordedRequest;
use serde_json::{Value, json};

use crate::cli::Args;
use crate::fixtures::{Tenants, generated_source, job, org_tenant, target_dir};
use crate::measure::{org_figures, proc_cpu_secs};
use crate::report::round;

/// Each organization's limit: Gladly's documented 10 requests per second.
const ORG_RATE: u32 = 10;

/// The share of its limit every organization must get.
const TARGET_SHARE: f64 = 0.95;

pub async fn orgs_per_host(a: &Args) -> Result<Value> {
    let mut runs = Vec::new();
    let mut largest_ok = 0usize;
    for &n in &a.host_orgs {
        let run = one_size(a, n).await?;
        let ok = run["min_share_of_limit"].as_f64().unwrap_or(0.0) >= TARGET_SHARE
            && run["throttled_429"].as_u64() == Some(0)
            && run["failed"].as_u64() == Some(0);
        if ok {
            largest_ok = largest_ok.max(n);
        }
        runs.push(run);
    }
    Ok(json!({
        "latency_ms": a.host_latency_ms,
        "limit_per_org": ORG_RATE,
        "records_per_org": a.host_org_records,
        "largest_n_at_95pct_without_429": largest_ok,
        "target_at_least_300": largest_ok >= 300,
        "runs": runs,
    }))
}

/// The emulator as a child process, and where it writes its log.
pub struct EmulatorProcess {
    child: Child,
    pub base_url: String,
    log: PathBuf,
}

impl EmulatorProcess {
    fn start(a: &Args, log: PathBuf) -> Result<EmulatorProcess> {
        Self::start_with(ORG_RATE, a.host_latency_ms, log)
    }

    /// The emulator limiting each organization to `rate` per second, answering after `latency_ms`.
    pub fn start_with(rate: u32, latency_ms: u64, log: PathBuf) -> Result<EmulatorProcess> {
        let bin = target_dir().join("release/gladly-emulator");
        if !bin.exists() {
            bail!("{} is missing: run `cargo build --release -p gladly-emulator` (cargo xtask bench does)", bin.display());
        }
        let mut child = Command::new(&bin)
            .args(["--port", "0", "--rate-limit", &rate.to_string(), "--latency-ms", &latency_ms.to_string()])
            .arg("--request-log")
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("the emulator's stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let base_url = line.trim().rsplit(' ').next().unwrap_or_default().to_string();
        if !base_url.starts_with("http://127.0.0.1:") {
            bail!("the emulator did not say where it listens: {line:?}");
        }
        Ok(EmulatorProcess { child, base_url, log })
    }

    /// CPU seconds the emulator used so far (user + system, from `/proc`).
    fn cpu_secs(&self) -> f64 {
        proc_cpu_secs(&format!("/proc/{}/stat", self.child.id()))
    }

    /// Stop it (SIGINT, so it writes its log) and read the log.
    pub fn stop(mut self) -> Result<Vec<RecordedRequest>> {
        Command::new("kill").args(["-INT", &self.child.id().to_string()]).status()?;
        self.child.wait()?;
        let text = std::fs::read_to_string(&self.log).with_context(|| format!("reading {}", self.log.display()))?;
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let v: Value = serde_json::from_str(line)?;
            out.push(RecordedRequest {
                ordinal: i as u64 + 1,
                at: Duration::from_micros(v["at_us"].as_u64().unwrap_or(0)),
                method: v["method"].as_str().unwrap_or_default().into(),
                path: v["path"].as_str().unwrap_or_default().into(),
                org: v["org"].as_str().unwrap_or_default().into(),
                status: v["status"].as_u64().map(|s| s as u16),
                body: None,
                headers: Vec::new(),
                fault: None,
            });
        }
        Ok(out)
    }
}

async fn one_size(a: &Args, n: usize) -> Result<Value> {
    let per_org = a.host_org_records;
    let (dir, db) = generated_source(&format!("orgs-{n}"), n * per_org, n)?;
    let emulator = EmulatorProcess::start(a, dir.0.join("requests.jsonl"))?;
    let mut jobs = Vec::new();
    for t in 0..n {
        jobs.push(job(&org_tenant(&dir.0, &db, t, ORG_RATE, &emulator.base_url))?);
    }
    let prepared = Tenants::prepare(jobs).await?;
    let (host_cpu0, emu_cpu0) = (proc_cpu_secs("/proc/self/stat"), emulator.cpu_secs());
    let t0 = Instant::now();
    let mut set = prepared.spawn_all();
    let (mut created, mut failed) = (0u64, 0u64);
    while let Some(r) = set.join_next().await {
        let (_, r) = r?;
        let r = r?;
        created += r.counts.created;
        failed += r.counts.failed;
    }
    let wall = t0.elapsed().as_secs_f64();
    let (host_cpu, emu_cpu) = (proc_cpu_secs("/proc/self/stat") - host_cpu0, emulator.cpu_secs() - emu_cpu0);
    let reqs = emulator.stop()?;
    let (mut min_share, mut max_share, mut max_any_second, mut throttled) = (f64::MAX, 0f64, 0u64, 0usize);
    let mut lowest = String::new();
    for t in 0..n {
        let org = org_figures(&reqs, &format!("org{t}"), ORG_RATE);
        if org.share < min_share {
            lowest = format!("org{t}");
        }
        min_share = min_share.min(org.share);
        max_share = max_share.max(org.share);
        max_any_second = max_any_second.max(org.max_sliding);
        throttled += org.throttled;
    }
    Ok(json!({
        "organizations": n,
        "requests": reqs.len(),
        "created": created,
        "failed": failed,
        "min_share_of_limit": round(min_share, 4),
        "max_share_of_limit": round(max_share, 4),
        "max_requests_in_any_1s": max_any_second,
        "throttled_429": throttled,
        "lowest_organization": stalls(&reqs, &lowest),
        "wall_secs": round(wall, 2),
        "host_cpu_secs": round(host_cpu, 2),
        "emulator_cpu_secs": round(emu_cpu, 2),
        "host_cpu_us_per_request": round(host_cpu * 1e6 / reqs.len().max(1) as f64, 1),
        "host_cores_busy": round(host_cpu / wall, 2),
        "emulator_cores_busy": round(emu_cpu / wall, 2),
    }))
}

/// Where the organization with the lowest share lost time: when its first request arrived after
/// the run's first, and its longest gaps between arrivals (each at its offset from the first).
fn stalls(reqs: &[RecordedRequest], org: &str) -> Value {
    let start = reqs.iter().map(|r| r.at).min().unwrap_or_default();
    let mut at: Vec<Duration> = reqs.iter().filter(|r| r.org == org).map(|r| r.at).collect();
    at.sort();
    let Some(&first) = at.first() else { return json!({ "organization": org }) };
    let mut gaps: Vec<(Duration, Duration)> = at.windows(2).map(|w| (w[1] - w[0], w[0] - first)).collect();
    gaps.sort_by(|a, b| b.0.cmp(&a.0));
    let longest: Vec<Value> = gaps
        .iter()
        .take(3)
        .map(|(gap, offset)| json!({ "gap_ms": gap.as_millis() as u64, "after_secs": round(offset.as_secs_f64(), 2) }))
        .collect();
    json!({
        "organization": org,
        "first_request_after_secs": round((first - start).as_secs_f64(), 2),
        "span_secs": round((at[at.len() - 1] - first).as_secs_f64(), 2),
        "longest_gaps": longest,
    })
}
