//! Workers sharing the work (issue 15): 1, 2 and 3 `destination-host serve` processes (release
//! build) coordinated through PostgreSQL on 60 organizations, each organization's limit binding.
//!
//! Each run: a database of its own on the local PostgreSQL, the emulator as a process of its own
//! (10 requests/s per organization, `--host-latency-ms`), one job file per organization (one sync
//! of `--worker-org-records` new customers: one request each), `--worker-counts` workers started
//! with the same job folder, and every sync triggered through the first worker's admin API. The
//! figures, from the emulator's request log and the coordination tables:
//!
//! - **share of the limit**: requests per second while every organization had work (from the
//!   moment the last organization sent its first request to the moment the first one sent its
//!   last), over 60 × 10/s;
//! - **lease spread**: how many organizations each worker was granted;
//! - **failover** (runs with a SIGKILL, 2 and 3 workers): the last worker is killed half way
//!   through; the time from the kill to the last of its organizations being granted to another
//!   worker (the database's clock on both ends), and the requests sent twice (sent by the killed
//!   worker, never confirmed, sent again).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use test_kit::postgres::FreshDatabase;

use crate::cli::Args;
use crate::fixtures::{generated_source, job_text, org_tenant, target_dir};
use crate::orgs_per_host::EmulatorProcess;
use crate::report::round;

/// Each organization's limit: Gladly's documented 10 requests per second.
const ORG_RATE: u32 = 10;

/// The share of 60 × the limit the workers must reach together.
const TARGET_SHARE: f64 = 0.95;

/// Longest a run may take before the bench gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(600);

pub async fn workers(a: &Args) -> Result<Value> {
    let a = a.clone();
    tokio::task::spawn_blocking(move || workers_blocking(&a)).await?
}

fn workers_blocking(a: &Args) -> Result<Value> {
    let mut runs = Vec::new();
    for &n in &a.worker_counts {
        runs.push(one_run(a, n, false)?);
    }
    let mut failovers = Vec::new();
    for &n in a.worker_counts.iter().filter(|n| **n >= 2) {
        failovers.push(one_run(a, n, true)?);
    }
    let met = runs.iter().all(|r| r["share_of_limit_while_all_busy"].as_f64().unwrap_or(0.0) >= TARGET_SHARE);
    Ok(json!({
        "organizations": a.worker_orgs,
        "records_per_org": a.worker_org_records,
        "limit_per_org": ORG_RATE,
        "latency_ms": a.host_latency_ms,
        "lease_secs": a.worker_lease_secs,
        "target_share": TARGET_SHARE,
        "target_met_with_every_count": met,
        "runs": runs,
        "failovers": failovers,
    }))
}

/// One `serve` process.
struct Worker {
    child: Child,
    addr: SocketAddr,
}

impl Worker {
    fn start(jobs: &Path, db: &FreshDatabase, id: &str, a: &Args, log: PathBuf) -> Result<Worker> {
        let bin = target_dir().join("release/destination-host");
        if !bin.exists() {
            bail!("{} is missing: run `cargo build --release -p host-harness --bin destination-host` (cargo xtask bench does)", bin.display());
        }
        let mut child = Command::new(&bin)
            .arg("serve")
            .arg("--jobs")
            .arg(jobs)
            .args(["--listen", "127.0.0.1:0", "--worker-id", id])
            .args(["--lease-ttl", &format!("{}s", a.worker_lease_secs)])
            .args(["--max-parallel-runs", &a.worker_orgs.to_string()])
            .env("DESTINATION_HOST_COORDINATOR_URL", db.url())
            .env("DESTINATION_HOST_ALLOW_EMULATOR", "1")
            .env("DESTINATION_HOST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut lines = BufReader::new(child.stdout.take().context("the worker's stdout")?).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("admin API listening on http://") {
                        break a.parse::<SocketAddr>()?;
                    }
                }
                _ => bail!("worker {id} did not start: {}", std::fs::read_to_string(&log).unwrap_or_default()),
            }
        };
        Ok(Worker { child, addr })
    }

    /// `POST path` to the admin API; the status code.
    fn post(&self, path: &str) -> Result<u16> {
        let mut s = TcpStream::connect(self.addr)?;
        write!(s, "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", self.addr)?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        answer.split(' ').nth(1).and_then(|c| c.parse().ok()).context("an HTTP answer")
    }

    fn terminate(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn one_run(a: &Args, n: usize, kill: bool) -> Result<Value> {
    let (orgs, per_org) = (a.worker_orgs, a.worker_org_records);
    let tag = format!("workers_{n}{}", if kill { "_kill" } else { "" });
    let db = FreshDatabase::new(&tag);
    let (dir, source) = generated_source(&tag, orgs * per_org, orgs)?;
    let emulator = EmulatorProcess::start_with(ORG_RATE, a.host_latency_ms, dir.0.join("requests.jsonl"))?;
    let jobs = dir.0.join("jobs");
    std::fs::create_dir_all(&jobs)?;
    for t in 0..orgs {
        std::fs::write(jobs.join(format!("org-{t}.toml")), job_text(&org_tenant(&dir.0, &source, t, ORG_RATE, &emulator.base_url))?)?;
    }
    let mut workers = Vec::new();
    for k in 1..=n {
        workers.push(Worker::start(&jobs, &db, &format!("w{k}"), a, dir.0.join(format!("w{k}.log")))?);
    }
    let t0 = Instant::now();
    for t in 0..orgs {
        let status = workers[0].post(&format!("/syncs/org-{t}/run"))?;
        if status != 202 {
            bail!("triggering org-{t} answered {status}");
        }
    }
    // This section runs on the blocking pool: a long-lived blocking client is fine here.
    let mut pg = postgres::Client::connect(db.url(), postgres::NoTls)?;
    let mut killed: Option<(String, SystemTime, Vec<String>)> = None;
    if kill {
        // Half way through the expected run, the last worker dies with the leases it holds.
        std::thread::sleep(Duration::from_secs_f64(per_org as f64 / f64::from(ORG_RATE) / 2.0));
        let victim = format!("w{n}");
        let held: Vec<String> = pg
            .query("SELECT org FROM destination_host.leases WHERE holder = $1 AND expires_at > clock_timestamp()", &[&victim])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut w = workers.pop().context("a victim")?;
        w.child.kill()?;
        let at: SystemTime = pg.query_one("SELECT clock_timestamp()", &[])?.get(0);
        let _ = w.child.wait();
        killed = Some((victim, at, held));
    }
    loop {
        let done: i64 = pg.query_one("SELECT count(DISTINCT sync_id) FROM destination_host.runs WHERE status = 'succeeded'", &[])?.get(0);
        if done as usize == orgs {
            break;
        }
        if t0.elapsed() > RUN_LIMIT {
            bail!("only {done} of {orgs} syncs finished within {RUN_LIMIT:?} (logs in {})", dir.0.display());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let wall = t0.elapsed().as_secs_f64();
    let spread: Vec<Value> = pg
        .query("SELECT holder, count(DISTINCT org) FROM destination_host.lease_grants GROUP BY holder ORDER BY holder", &[])?
        .iter()
        .map(|r| json!({ "worker": r.get::<_, String>(0), "organizations": r.get::<_, i64>(1) }))
        .collect();
    let failover = match &killed {
        None => Value::Null,
        Some((victim, at, held)) => {
            let row = pg.query_one(
                "SELECT EXTRACT(EPOCH FROM (max(first_grant) - $2::timestamptz))::float8, count(*) FROM (
                   SELECT org, min(granted_at) AS first_grant FROM destination_host.lease_grants
                   WHERE holder <> $1 AND granted_at > $2 AND org = ANY($3) GROUP BY org) regranted",
                &[victim, at, held],
            )?;
            json!({
                "victim": victim,
                "organizations_orphaned": held.len(),
                "organizations_taken_over": row.get::<_, i64>(1),
                "secs_to_last_takeover": row.get::<_, Option<f64>>(0).map(|s| round(s, 2)),
            })
        }
    };
    for w in workers {
        w.terminate();
    }
    let reqs = emulator.stop()?;
    let busy = steady_share(&reqs, orgs);
    let throttled = reqs.iter().filter(|r| r.status == Some(429)).count();
    Ok(json!({
        "workers": n,
        "sigkill": kill,
        "requests": reqs.len(),
        "requests_sent_twice": reqs.len().saturating_sub(orgs * per_org),
        "share_of_limit_while_all_busy": round(busy.0, 4),
        "all_busy_secs": round(busy.1, 2),
        "throttled_429": throttled,
        "lease_spread": spread,
        "failover": failover,
        "wall_secs": round(wall, 2),
    }))
}

/// Requests per second while every organization had work, over `orgs` × the limit; and how long
/// that window was.
fn steady_share(reqs: &[gladly_emulator::RecordedRequest], orgs: usize) -> (f64, f64) {
    let mut first = std::collections::BTreeMap::new();
    let mut last = std::collections::BTreeMap::new();
    for r in reqs {
        let f = first.entry(r.org.clone()).or_insert(r.at);
        *f = (*f).min(r.at);
        let l = last.entry(r.org.clone()).or_insert(r.at);
        *l = (*l).max(r.at);
    }
    let (Some(from), Some(to)) = (first.values().max().copied(), last.values().min().copied()) else { return (0.0, 0.0) };
    if to <= from || first.len() < orgs {
        return (0.0, 0.0);
    }
    let inside = reqs.iter().filter(|r| r.at >= from && r.at <= to).count();
    let secs = (to - from).as_secs_f64();
    (inside.saturating_sub(1) as f64 / secs / (orgs as f64 * f64::from(ORG_RATE)), secs)
}
