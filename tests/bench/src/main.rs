//! Benchmarks of the Gladly destination component and its host. Every figure is a ratio or a
//! count measured in one run against a baseline; BENCHMARKS.md explains each method.
//!
//! ```text
//! cargo xtask bench                         # builds the components, then runs every section
//! cargo run --release -p bench --bin bench -- --only requests,overhead --records 500
//! ```
//!
//! Each section runs in its own child process (this binary with `--child SECTION`), so that the
//! memory figures of one section are not polluted by another. Results are printed and written
//! as JSON to `target/bench-results.json` (or `--out`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use gladly_emulator::{Emulator, EmulatorConfig, RecordedRequest};
use host_harness::job::JobConfig;
use host_harness::contract::model::Outcome;
use host_harness::sync::report::RunReport;
use host_harness::sandbox::{Plugin, Runtime, RuntimeConfig};
use host_harness::state::State;
use host_harness::sync::{Harness, RunOptions};
use serde_json::{Value, json};

/// The per-organization rate the "no rate limit" sections give the host: far above what one
/// machine sends, so the limiter never makes anyone wait (it refills in groups at such rates).
const HOST_MAX_RATE: u32 = 1_000_000;

const SECTIONS: &[&str] = &["requests", "overhead", "instantiate", "planning", "fairness", "rate"];

#[derive(Parser, Debug, Clone)]
#[command(name = "bench", about = "Benchmarks of the Gladly destination component and its host")]
struct Args {
    /// Sections to run, comma separated (default: all): requests, overhead, instantiate,
    /// planning, fairness, rate.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Rate use: records of the upsert at 150 ms latency and 10/s (≈ 2 requests each).
    #[arg(long, default_value_t = 2000)]
    records: usize,
    /// Rate use: records of the sequential baseline (max_concurrency = 1).
    #[arg(long, default_value_t = 2000)]
    baseline_records: usize,
    /// Requests per row: rows synced.
    #[arg(long, default_value_t = 1000)]
    request_rows: usize,
    /// Requests per row: emulator latency (ms) for the host and the naive baseline alike.
    #[arg(long, default_value_t = 20)]
    request_latency_ms: u64,
    /// Host overhead: records synced by each client.
    #[arg(long, default_value_t = 2000)]
    overhead_records: usize,
    /// Host overhead: concurrent instances (host) and connections (native client).
    #[arg(long, default_value_t = 8)]
    overhead_concurrency: usize,
    /// Instantiation: iterations averaged.
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// Planning: row counts, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![100_000usize, 1_000_000])]
    plan_rows: Vec<usize>,
    /// Fairness: tenants.
    #[arg(long, default_value_t = 100)]
    tenants: usize,
    /// Fairness: organizations the tenants are spread over.
    #[arg(long, default_value_t = 20)]
    orgs: usize,
    /// Fairness: records per tenant.
    #[arg(long, default_value_t = 100)]
    tenant_records: usize,
    /// Fairness: each organization's requests per second.
    #[arg(long, default_value_t = 20)]
    org_rate: u32,
    /// Where to write the JSON results.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Internal: run one section in this process and print its result.
    #[arg(long, hide = true)]
    child: Option<String>,
    /// Internal: the row count of a planning child.
    #[arg(long, hide = true)]
    rows: Option<usize>,
    /// Internal: the SQLite file of a planning child.
    #[arg(long, hide = true)]
    db: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.child.clone() {
        Some(section) => {
            let result = rt.block_on(run_section(&section, &args))?;
            println!("RESULT {}", serde_json::to_string(&result)?);
            Ok(())
        }
        None => parent(&args),
    }
}

// ---------------------------------------------------------------------------------------------
// Parent: runs each section in a child process and gathers the results.
// ---------------------------------------------------------------------------------------------

fn parent(args: &Args) -> Result<()> {
    let component = component()?;
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
    // Warm the compile cache once, so children only deserialize the component.
    Runtime::new(RuntimeConfig { cache_dir: Some(cache_dir()), pooling: false, limits: Default::default() })?
        .load(&component)?;

    let cmdline: Vec<String> = std::env::args().skip(1).collect();
    let mut results = BTreeMap::new();
    for s in &sections {
        eprintln!("== {s}");
        let started = Instant::now();
        if s == "planning" {
            let mut per_size = Vec::new();
            for &n in &args.plan_rows {
                let dir = TempDir::new(&format!("plan-gen-{n}"));
                let db = dir.0.join("source.sqlite");
                let t = Instant::now();
                generate_sqlite(&db, n, 1)?;
                eprintln!("   generated {n} rows in {:.1} s", t.elapsed().as_secs_f64());
                let r = child(s, &["--rows".into(), n.to_string(), "--db".into(), db.display().to_string()])?;
                eprintln!("   {n} rows: {r}");
                per_size.push(r);
            }
            let mut out = json!({ "sizes": per_size });
            if per_size_hwm_ratio(&mut out).is_none() {
                eprintln!("   (one size only: no memory ratio)");
            }
            results.insert(s.clone(), out);
        } else {
            let r = child(s, &pass_through(args))?;
            eprintln!("   {r}");
            results.insert(s.clone(), r);
        }
        eprintln!("   ({:.0} s)", started.elapsed().as_secs_f64());
    }
    let doc = json!({
        "command": format!("cargo run --release -p bench --bin bench -- {}", cmdline.join(" ")),
        "machine": machine(),
        "results": results,
    });
    let out = args.out.clone().unwrap_or_else(|| target_dir().join("bench-results.json"));
    std::fs::write(&out, serde_json::to_string_pretty(&doc)?)?;
    println!("{}", serde_json::to_string_pretty(&doc)?);
    eprintln!("results written to {}", out.display());
    Ok(())
}

fn per_size_hwm_ratio(out: &mut Value) -> Option<()> {
    let sizes = out["sizes"].as_array()?.clone();
    if sizes.len() < 2 {
        return None;
    }
    let first = sizes.first()?;
    let last = sizes.last()?;
    let ratio = last["vm_hwm_kib"].as_f64()? / first["vm_hwm_kib"].as_f64()?;
    let rows_ratio = last["rows"].as_f64()? / first["rows"].as_f64()?;
    out["peak_memory_ratio"] = json!(round(ratio, 3));
    out["row_count_ratio"] = json!(rows_ratio);
    Some(())
}

/// The options a child needs, as arguments.
fn pass_through(a: &Args) -> Vec<String> {
    let mut v = Vec::new();
    let mut push = |k: &str, val: String| {
        v.push(format!("--{k}"));
        v.push(val);
    };
    push("records", a.records.to_string());
    push("baseline-records", a.baseline_records.to_string());
    push("request-rows", a.request_rows.to_string());
    push("request-latency-ms", a.request_latency_ms.to_string());
    push("overhead-records", a.overhead_records.to_string());
    push("overhead-concurrency", a.overhead_concurrency.to_string());
    push("iterations", a.iterations.to_string());
    push("tenants", a.tenants.to_string());
    push("orgs", a.orgs.to_string());
    push("tenant-records", a.tenant_records.to_string());
    push("org-rate", a.org_rate.to_string());
    v
}

fn child(section: &str, extra: &[String]) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .arg("--child")
        .arg(section)
        .args(extra)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("section {section} failed ({}):\n{stdout}", out.status);
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .with_context(|| format!("section {section} printed no result:\n{stdout}"))?;
    Ok(serde_json::from_str(line)?)
}

fn machine() -> Value {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_default();
    json!({ "cpus": cpus, "cpu": model, "os": std::env::consts::OS })
}

async fn run_section(section: &str, a: &Args) -> Result<Value> {
    match section {
        "rate" => rate_use(a).await,
        "requests" => requests_per_row(a).await,
        "overhead" => host_overhead(a).await,
        "instantiate" => instantiation(a).await,
        "planning" => planning(a).await,
        "fairness" => fairness(a).await,
        other => bail!("unknown section {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers.
// ---------------------------------------------------------------------------------------------

fn target_dir() -> PathBuf {
    let file = "wasm32-wasip2/release/gladly_destination.wasm";
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(t) if t.join(file).exists() => t,
        _ => default,
    }
}

fn component() -> Result<PathBuf> {
    let p = target_dir().join("wasm32-wasip2/release/gladly_destination.wasm");
    if !p.exists() {
        bail!("{} is missing: run `cargo xtask build` (or `cargo xtask bench`)", p.display());
    }
    Ok(p.canonicalize()?)
}

fn cache_dir() -> PathBuf {
    target_dir().join("bench-cache")
}

/// A folder's path, and the `tempfile` guard that removes it on drop.
struct TempDir(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("gladly-bench-{tag}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary folder: {e}"));
        TempDir(dir.path().to_path_buf(), dir)
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// A `/proc/self/status` field in KiB.
fn proc_kib(field: &str) -> u64 {
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

/// The primary key of generated customer `i`.
fn customer_key(i: usize) -> String {
    format!("c{i:08}")
}

/// Writes `n` customers into an SQLite file: id, tenant (`id % tenants`), name, email, tier, city.
fn generate_sqlite(path: &Path, n: usize, tenants: usize) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         CREATE TABLE customers (id TEXT PRIMARY KEY NOT NULL, tenant INTEGER NOT NULL, name TEXT, email TEXT, tier TEXT, city TEXT);",
    )?;
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare("INSERT INTO customers VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        for i in 0..n {
            let tiers = ["bronze", "silver", "gold"];
            st.execute(rusqlite::params![
                customer_key(i),
                (i % tenants.max(1)) as i64,
                format!("Customer Number {i}"),
                format!("customer{i}@example.com"),
                tiers[i % 3],
                format!("City {}", i % 97),
            ])?;
        }
    }
    tx.commit()?;
    if tenants > 1 {
        conn.execute_batch("CREATE INDEX customers_by_tenant ON customers (tenant, id);")?;
    }
    Ok(())
}

/// One tenant's job file.
struct JobSpec<'a> {
    dir: &'a Path,
    sync_id: String,
    domain: String,
    db: &'a Path,
    query: String,
    rate: u32,
    endpoint: String,
    limits: Vec<String>,
}

/// The query over the generated customers table.
const CUSTOMERS_QUERY: &str = "SELECT id, name, email, tier, city FROM customers ORDER BY id";

/// The common job: organization `acme`, the generated customers of `db`, at most
/// `max_concurrency` instances.
fn customers_job(dir: &Path, sync_id: &str, db: &Path, rate: u32, endpoint: String, max_concurrency: usize) -> Result<JobConfig> {
    job(&JobSpec {
        dir,
        sync_id: sync_id.into(),
        domain: "acme".into(),
        db,
        query: CUSTOMERS_QUERY.into(),
        rate,
        endpoint,
        limits: vec![format!("max_concurrency = {max_concurrency}")],
    })
}

fn job(s: &JobSpec<'_>) -> Result<JobConfig> {
    let token = s.dir.join("token");
    if !token.exists() {
        std::fs::write(&token, format!("{}\n", gladly_emulator::DEFAULT_TOKEN))?;
    }
    let text = format!(
        r#"[sync]
id = "{sync_id}"
mode = "upsert"
component = "{component}"
state_dir = "{state}"
cache_dir = "{cache}"

[source]
kind = "sqlite"
path = "{db}"
query = "{query}"
primary_key = "id"

[destination]
domain = "{domain}"
username = "{user}"

[destination.secrets]
token = {{ file = "{token}" }}

[mapping]
name = "name"
email = "email"
tier = "customAttributes.tier"
city = "customAttributes.city"

[policy]
allow_hosts = ["*.gladly.com"]
rate_limit_per_second = {rate}
endpoint = "{endpoint}"

[limits]
{limits}
"#,
        sync_id = s.sync_id,
        component = component()?.display(),
        state = s.dir.join(format!("state-{}", s.sync_id)).display(),
        cache = cache_dir().display(),
        db = s.db.display(),
        query = s.query,
        domain = s.domain,
        user = gladly_emulator::DEFAULT_USER,
        token = token.display(),
        rate = s.rate,
        endpoint = s.endpoint,
        limits = s.limits.join("\n"),
    );
    Ok(toml::from_str(&text)?)
}

async fn sync(harness: &Harness, job: &JobConfig) -> Result<RunReport> {
    let opts = RunOptions::default();
    let tenant = harness.prepare(job, &opts).await?;
    Ok(harness.run(&tenant, job, &opts).await?)
}

/// Requests per second over a span of requests (first arrival to last), and the largest number
/// of requests counted in one of the emulator's one-second windows (counted after `latency`).
fn rate_figures(reqs: &[&RecordedRequest], latency: Duration) -> (f64, u64, u64) {
    if reqs.len() < 2 {
        return (0.0, reqs.len() as u64, reqs.len() as u64);
    }
    let first = reqs.iter().map(|r| r.at).min().unwrap_or_default();
    let last = reqs.iter().map(|r| r.at).max().unwrap_or_default();
    let span = (last - first).as_secs_f64();
    let rate = if span > 0.0 { (reqs.len() - 1) as f64 / span } else { 0.0 };
    let mut windows: BTreeMap<u64, u64> = BTreeMap::new();
    for r in reqs {
        *windows.entry((r.at + latency).as_secs()).or_default() += 1;
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

// ---------------------------------------------------------------------------------------------
// Rate use: 150 ms latency, 10/s.
// ---------------------------------------------------------------------------------------------

async fn rate_use(a: &Args) -> Result<Value> {
    let latency = Duration::from_millis(150);
    let mut out = serde_json::Map::new();
    for (label, records, max_concurrency) in [("baseline_sequential", a.baseline_records, 1usize), ("adaptive", a.records, 32)] {
        let dir = TempDir::new(&format!("rate-{label}"));
        let db = dir.0.join("source.sqlite");
        generate_sqlite(&db, records, 1)?;
        let emulator = Emulator::start(EmulatorConfig { rate_limit_per_second: 10, latency, ..Default::default() }).await?;
        let job = customers_job(&dir.0, &format!("rate-{label}"), &db, 10, emulator.base_url(), max_concurrency)?;
        let harness = Harness::for_job(&job)?;
        let report = sync(&harness, &job).await?;
        let reqs = emulator.requests();
        let all: Vec<&RecordedRequest> = reqs.iter().collect();
        let (rate, max_fixed, max_sliding) = rate_figures(&all, latency);
        let ours_429 = reqs.iter().filter(|r| r.status == Some(429) && r.fault.is_none()).count();
        out.insert(
            label.into(),
            json!({
                "records": records,
                "max_concurrency": max_concurrency,
                "requests": reqs.len(),
                "created": report.counts.created,
                "failed": report.counts.failed,
                "requests_per_second": round(rate, 3),
                "share_of_limit": round(rate / 10.0, 4),
                "overall_requests_per_second": round(report.requests_per_second, 3),
                "overall_share_of_limit": round(report.requests_per_second / 10.0, 4),
                "self_inflicted_429": ours_429,
                "max_requests_in_a_server_window": max_fixed,
                "max_requests_in_any_1s": max_sliding,
                "elapsed_secs": round(report.elapsed_secs, 1),
            }),
        );
        emulator.shutdown().await;
    }
    let base = out["baseline_sequential"]["share_of_limit"].as_f64().unwrap_or(0.0);
    let ours = out["adaptive"]["share_of_limit"].as_f64().unwrap_or(0.0);
    out.insert("improvement_over_baseline".into(), json!(round(if base > 0.0 { ours / base } else { 0.0 }, 3)));
    let ours_429 = out["adaptive"]["self_inflicted_429"].as_u64().unwrap_or(u64::MAX);
    out.insert("target_at_least_95pct_and_no_429".into(), json!(ours >= 0.95 && ours_429 == 0));
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------------------------
// Requests per row.
// ---------------------------------------------------------------------------------------------

async fn requests_per_row(a: &Args) -> Result<Value> {
    let n = a.request_rows;
    let c = a.overhead_concurrency.max(1);
    let dir = TempDir::new("requests");
    let db = dir.0.join("source.sqlite");
    generate_sqlite(&db, n, 1)?;
    // The same latency for both; no rate limit, so the wall times compare the clients, and the
    // wall time at Gladly's 10/s follows from the request counts.
    let latency = Duration::from_millis(a.request_latency_ms);
    let emulator_cfg = || EmulatorConfig { rate_limit_per_second: 1_000_000, latency, ..Default::default() };
    let emulator = Emulator::start(emulator_cfg()).await?;
    // The naive baseline writes to its own emulator (same data, same latency).
    let naive_emulator = Emulator::start(emulator_cfg()).await?;
    let job = customers_job(&dir.0, "requests", &db, HOST_MAX_RATE, emulator.base_url(), c)?;
    let harness = Harness::for_job(&job)?;
    harness.plugin(&job.sync.component)?;
    let changed = (n / 100).max(1);
    let conn = rusqlite::Connection::open(&db)?;
    let mut phases = Vec::new();
    for phase in ["first_sync", "no_change", "one_percent_name_changed", "one_percent_custom_attribute_changed", "one_percent_email_changed"] {
        match phase {
            "one_percent_name_changed" => {
                conn.execute(&format!("UPDATE customers SET name = 'Renamed ' || name WHERE rowid % {} = 2", n / changed), [])?;
            }
            "one_percent_custom_attribute_changed" => {
                conn.execute(&format!("UPDATE customers SET tier = 'platinum' WHERE rowid % {} = 0", n / changed), [])?;
            }
            "one_percent_email_changed" => {
                conn.execute(&format!("UPDATE customers SET email = 'new.' || email WHERE rowid % {} = 1", n / changed), [])?;
            }
            _ => {}
        }
        emulator.clear_requests();
        let t = Instant::now();
        let report = sync(&harness, &job).await?;
        let secs = t.elapsed().as_secs_f64();
        let reqs = emulator.requests();
        let count = |m: &str, find: bool| {
            reqs.iter().filter(|r| r.method == m && (r.path.contains('?') == find)).count()
        };
        let sent = report.counts.created + report.counts.updated + report.counts.confirmed_unchanged;

        // Naive: find by email, then create or patch, for every row, every run.
        naive_emulator.clear_requests();
        let rows = read_rows(&db)?;
        let t = Instant::now();
        naive_find_write(naive_emulator.addr(), rows, c).await?;
        let naive_secs = t.elapsed().as_secs_f64();
        let naive_requests = naive_emulator.requests().len();

        phases.push(json!({
            "phase": phase,
            "rows": n,
            "changed_rows": if phase.starts_with("one_percent") { json!(changed) } else { Value::Null },
            "records_sent": sent,
            "failed": report.counts.failed,
            "requests": reqs.len(),
            "finds": count("GET", true),
            "reads": count("GET", false),
            "creates": count("POST", false),
            "patches": count("PATCH", false),
            "requests_per_row": round(reqs.len() as f64 / n as f64, 4),
            "requests_per_sent_record": if sent > 0 { json!(round(reqs.len() as f64 / sent as f64, 3)) } else { Value::Null },
            "wall_secs": round(secs, 3),
            "wall_secs_at_10_per_s": round(reqs.len() as f64 / 10.0, 1),
            "naive_requests": naive_requests,
            "naive_requests_per_row": round(naive_requests as f64 / n as f64, 4),
            "naive_wall_secs": round(naive_secs, 3),
            "naive_wall_secs_at_10_per_s": round(naive_requests as f64 / 10.0, 1),
            "requests_ratio_to_naive": round(reqs.len() as f64 / naive_requests.max(1) as f64, 4),
            "wall_ratio_to_naive": round(secs / naive_secs.max(1e-9), 3),
        }));
    }
    emulator.shutdown().await;
    naive_emulator.shutdown().await;
    Ok(json!({ "latency_ms": a.request_latency_ms, "concurrency": c, "phases": phases }))
}

/// One row of a generated source: (rowid, email, name, tier, city).
type NaiveRow = (usize, String, String, String, String);

/// The rows of a generated source.
fn read_rows(db: &Path) -> Result<Vec<NaiveRow>> {
    let conn = rusqlite::Connection::open(db)?;
    let mut st = conn.prepare("SELECT rowid, email, name, tier, city FROM customers ORDER BY id")?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, i64>(0)? as usize, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The naive sync the vendor page describes: for every row, find the profile by email, then
/// PATCH it when found or POST it when not. Two requests per row, every run.
async fn naive_find_write(addr: SocketAddr, rows: Vec<NaiveRow>, concurrency: usize) -> Result<()> {
    use base64::Engine;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", gladly_emulator::DEFAULT_USER, gladly_emulator::DEFAULT_TOKEN))
    );
    let rows = Arc::new(rows);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (next, rows, auth) = (next.clone(), rows.clone(), auth.clone());
        tasks.spawn(async move {
            let mut conn = NativeConn { addr, sender: None };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((_, email, name, tier, city)) = rows.get(i) else { return Ok::<(), anyhow::Error>(()) };
                let find = http::Request::get(format!("/api/v1/customer-profiles?email={}", email.replace('@', "%40")))
                    .header(http::header::HOST, "acme.gladly.com")
                    .header(http::header::AUTHORIZATION, &auth)
                    .header(http::header::ACCEPT, "application/json")
                    .body(Body::default())?;
                let (status, body) = conn.send(find, true).await?;
                if status != 200 {
                    bail!("find answered {status}");
                }
                let found: Vec<Value> = serde_json::from_slice(&body)?;
                let profile = json!({
                    "name": name,
                    "emails": [{"original": email}],
                    "customAttributes": {"city": city, "tier": tier},
                });
                let write = match found.first().and_then(|p| p["id"].as_str()) {
                    Some(id) => http::Request::patch(format!("/api/v1/customer-profiles/{id}")),
                    // Without an id: Gladly generates one (the naive client has no idempotency).
                    None => http::Request::post("/api/v1/customer-profiles"),
                };
                let write = write
                    .header(http::header::HOST, "acme.gladly.com")
                    .header(http::header::AUTHORIZATION, &auth)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Body::from(serde_json::to_vec(&profile)?))?;
                let (status, _) = conn.send(write, true).await?;
                if !(200..300).contains(&status) {
                    bail!("naive write answered {status}");
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Host overhead: component + host vs a native client, same calls, same emulator.
// ---------------------------------------------------------------------------------------------

async fn host_overhead(a: &Args) -> Result<Value> {
    let n = a.overhead_records;
    let c = a.overhead_concurrency.max(1);
    let dir = TempDir::new("overhead");
    let db = dir.0.join("source.sqlite");
    generate_sqlite(&db, n, 1)?;
    let unlimited = || EmulatorConfig { rate_limit_per_second: u32::MAX / 2, ..Default::default() };

    // Component + host.
    let emulator = Emulator::start(unlimited()).await?;
    let job = customers_job(&dir.0, "overhead", &db, HOST_MAX_RATE, emulator.base_url(), c)?;
    let harness = Harness::for_job(&job)?;
    harness.plugin(&job.sync.component)?;
    let t = Instant::now();
    let report = sync(&harness, &job).await?;
    let host_secs = t.elapsed().as_secs_f64();
    let host_requests = emulator.requests().len();
    if report.counts.created as usize != n {
        bail!("the host created {} of {n}: {}", report.counts.created, report.summary());
    }
    emulator.shutdown().await;

    // The native client, keep-alive connections (as reqwest or any pooled client).
    let mut native = serde_json::Map::new();
    for (label, reuse) in [("native_keepalive", true), ("native_new_connection_per_request", false)] {
        let emulator = Emulator::start(unlimited()).await?;
        let t = Instant::now();
        native_sync(emulator.addr(), n, c, reuse).await?;
        let secs = t.elapsed().as_secs_f64();
        let reqs = emulator.requests().len();
        let created = emulator.profiles("acme").len();
        if created != n {
            bail!("the native client created {created} of {n}");
        }
        native.insert(label.into(), json!({ "records_per_second": round(n as f64 / secs, 1), "requests": reqs, "elapsed_secs": round(secs, 3) }));
        emulator.shutdown().await;
    }
    let host_rps = n as f64 / host_secs;
    let ratio = |k: &str| round(host_rps / native[k]["records_per_second"].as_f64().unwrap_or(f64::NAN), 3);
    Ok(json!({
        "records": n,
        "concurrency": c,
        "host": { "records_per_second": round(host_rps, 1), "requests": host_requests, "elapsed_secs": round(host_secs, 3) },
        "native_keepalive": native["native_keepalive"],
        "native_new_connection_per_request": native["native_new_connection_per_request"],
        "ratio_vs_native_keepalive": ratio("native_keepalive"),
        "ratio_vs_native_new_connection": ratio("native_new_connection_per_request"),
        "target_at_least_0_8x_native_keepalive": ratio("native_keepalive") >= 0.8,
    }))
}

type Body = http_body_util::Full<bytes::Bytes>;

struct NativeConn {
    addr: SocketAddr,
    sender: Option<hyper::client::conn::http1::SendRequest<Body>>,
}

impl NativeConn {
    async fn send(&mut self, req: http::Request<Body>, reuse: bool) -> Result<(u16, bytes::Bytes)> {
        use http_body_util::BodyExt;
        if self.sender.is_none() || !reuse {
            let stream = tokio::net::TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().context("no connection")?;
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// Upserts `n` generated customers the naive way: find by email, create when absent.
async fn native_sync(addr: SocketAddr, n: usize, concurrency: usize, reuse: bool) -> Result<()> {
    use base64::Engine;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", gladly_emulator::DEFAULT_USER, gladly_emulator::DEFAULT_TOKEN))
    );
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let auth = auth.clone();
        tasks.spawn(async move {
            let mut conn = NativeConn { addr, sender: None };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                let email = format!("customer{i}@example.com");
                let find = http::Request::get(format!("/api/v1/customer-profiles?email={}", email.replace('@', "%40")))
                    .header(http::header::HOST, "acme.gladly.com")
                    .header(http::header::AUTHORIZATION, &auth)
                    .header(http::header::ACCEPT, "application/json")
                    .body(Body::default())?;
                let (status, body) = conn.send(find, reuse).await?;
                if status != 200 {
                    bail!("find answered {status}");
                }
                let found: Vec<Value> = serde_json::from_slice(&body)?;
                if found.is_empty() {
                    let tiers = ["bronze", "silver", "gold"];
                    let profile = json!({
                        "id": format!("native-{i:08}"),
                        "name": format!("Customer Number {i}"),
                        "emails": [{"original": email}],
                        "customAttributes": {"city": format!("City {}", i % 97), "tier": tiers[i % 3]},
                    });
                    let create = http::Request::post("/api/v1/customer-profiles")
                        .header(http::header::HOST, "acme.gladly.com")
                        .header(http::header::AUTHORIZATION, &auth)
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(Body::from(serde_json::to_vec(&profile)?))?;
                    let (status, _) = conn.send(create, reuse).await?;
                    if status != 201 {
                        bail!("create answered {status}");
                    }
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Instantiation and memory.
// ---------------------------------------------------------------------------------------------

async fn instantiation(a: &Args) -> Result<Value> {
    let component = component()?;
    let dir = TempDir::new("instantiate");
    let fresh_cache = dir.0.join("cache");

    // Compile (empty cache) vs load from the on-disk cache; each with a fresh engine.
    let rt = Runtime::new(RuntimeConfig { cache_dir: Some(fresh_cache.clone()), pooling: false, limits: Default::default() })?;
    let t = Instant::now();
    let compiled = rt.load(&component)?;
    let compile_secs = t.elapsed().as_secs_f64();
    assert!(!compiled.from_cache());
    drop(compiled);
    drop(rt);
    let mut cached_secs = Vec::new();
    for _ in 0..5 {
        let rt = Runtime::new(RuntimeConfig { cache_dir: Some(fresh_cache.clone()), pooling: false, limits: Default::default() })?;
        let t = Instant::now();
        let p = rt.load(&component)?;
        cached_secs.push(t.elapsed().as_secs_f64());
        if !p.from_cache() {
            bail!("the second load did not come from the cache");
        }
    }
    let cached = cached_secs.iter().sum::<f64>() / cached_secs.len() as f64;

    let mut modes = serde_json::Map::new();
    for pooling in [false, true] {
        let rt = Runtime::new(RuntimeConfig { cache_dir: Some(cache_dir()), pooling, limits: Default::default() })?;
        let plugin = rt.load(&component)?;
        let policy = Plugin::no_egress("bench");
        // Warm up, then time.
        for _ in 0..50 {
            drop(plugin.instantiate(policy.clone(), Duration::from_secs(30)).await?);
        }
        let t = Instant::now();
        for _ in 0..a.iterations {
            let inst = plugin.instantiate(policy.clone(), Duration::from_secs(30)).await?;
            drop(inst);
        }
        let mean_us = t.elapsed().as_secs_f64() * 1e6 / a.iterations as f64;

        // Idle instances held alive: resident memory per instance.
        let hold = 200usize;
        let before = proc_kib("VmRSS:");
        let mut live = Vec::with_capacity(hold);
        for _ in 0..hold {
            live.push(plugin.instantiate(policy.clone(), Duration::from_secs(300)).await?);
        }
        let after = proc_kib("VmRSS:");
        drop(live);
        modes.insert(
            if pooling { "pooling".into() } else { "on_demand".into() },
            json!({
                "instantiate_mean_us": round(mean_us, 1),
                "iterations": a.iterations,
                "idle_instances_held": hold,
                "rss_per_idle_instance_kib": round(after.saturating_sub(before) as f64 / hold as f64, 1),
            }),
        );
    }

    // 100 tenants syncing at once: resident memory growth at the peak.
    let tenants = 100usize;
    let records = 20usize;
    let db = dir.0.join("tenants.sqlite");
    generate_sqlite(&db, tenants * records, tenants)?;
    let emulator = Emulator::start(EmulatorConfig { rate_limit_per_second: 1_000_000, latency: Duration::from_millis(50), ..Default::default() }).await?;
    let mut jobs = Vec::new();
    for t in 0..tenants {
        jobs.push(job(&JobSpec {
            dir: &dir.0,
            sync_id: format!("mem-{t}"),
            domain: "acme".into(),
            db: &db,
            query: format!("SELECT id, name, email, tier, city FROM customers WHERE tenant = {t} ORDER BY id"),
            rate: HOST_MAX_RATE,
            endpoint: emulator.base_url(),
            limits: vec!["max_concurrency = 1".into()],
        })?);
    }
    let harness = Arc::new(Harness::for_job(&jobs[0])?);
    harness.plugin(&jobs[0].sync.component)?;
    let mut prepared = Vec::new();
    for j in &jobs {
        prepared.push(harness.prepare(j, &RunOptions::default()).await?);
    }
    let base = proc_kib("VmRSS:");
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(base));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(proc_kib("VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut set = tokio::task::JoinSet::new();
    let prepared = Arc::new(prepared);
    let jobs = Arc::new(jobs);
    for t in 0..tenants {
        let (h, p, j) = (harness.clone(), prepared.clone(), jobs.clone());
        set.spawn(async move { h.run(&p[t], &j[t], &RunOptions::default()).await });
    }
    let mut created = 0;
    while let Some(r) = set.join_next().await {
        created += r??.counts.created;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let peak = peak.load(Ordering::Relaxed);
    emulator.shutdown().await;
    Ok(json!({
        "compile_secs": round(compile_secs, 3),
        "load_from_cache_secs": round(cached, 4),
        "compile_vs_cache_ratio": round(compile_secs / cached, 1),
        "instances": modes,
        "concurrent_tenants": {
            "tenants": tenants,
            "records_each": records,
            "created": created,
            "rss_growth_at_peak_mib": round(peak.saturating_sub(base) as f64 / 1024.0, 1),
        },
    }))
}

// ---------------------------------------------------------------------------------------------
// Planning: map + fingerprint + diff, rows/s and peak memory.
// ---------------------------------------------------------------------------------------------

async fn planning(a: &Args) -> Result<Value> {
    let n = a.rows.context("--rows")?;
    let db = a.db.clone().context("--db")?;
    let dir = TempDir::new(&format!("plan-{n}"));
    let job = job(&JobSpec {
        dir: &dir.0,
        sync_id: "planning".into(),
        domain: "acme".into(),
        db: &db,
        query: CUSTOMERS_QUERY.into(),
        rate: 10,
        // Nothing is sent: no emulator is needed.
        endpoint: "http://127.0.0.1:9".into(),
        limits: vec![],
    })?;
    let harness = Harness::for_job(&job)?;
    let plugin = harness.plugin(&job.sync.component)?;
    let rss_loaded = proc_kib("VmRSS:");
    // Peak resident memory per phase: VmHWM is reset (clear_refs 5) before each phase.
    let reset_hwm = || {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    };
    reset_hwm();

    // 0. The duplicate-key check alone, on the same keys: its share of the peaks below.
    let key_check_peak_kib = {
        let before = proc_kib("VmRSS:");
        let mut keys = host_harness::source::keys::KeyChecker::new("id");
        for i in 0..n {
            keys.remember(&customer_key(i)).map_err(|e| anyhow::anyhow!(e.message))?;
        }
        let peak = proc_kib("VmHWM:").saturating_sub(before);
        drop(keys);
        reset_hwm();
        peak
    };

    // 1. A first-sync preview: every row mapped, fingerprinted and looked up (none known).
    let opts = RunOptions { dry_run: true, ..RunOptions::default() };
    let tenant = harness.prepare(&job, &opts).await?;
    let t = Instant::now();
    let preview = harness.run(&tenant, &job, &opts).await?;
    let preview_secs = t.elapsed().as_secs_f64();
    let hwm_preview = proc_kib("VmHWM:");
    reset_hwm();
    if preview.counts.rows as usize != n {
        bail!("the preview read {} rows of {n}", preview.counts.rows);
    }

    // 2. Make the state say every row was confirmed (what a finished first sync leaves).
    let tenant = harness.prepare(&job, &RunOptions::default()).await?;
    let mapping_fp = host_harness::fingerprint::mapping_fingerprint(tenant.mode, &tenant.mapping, &tenant.settings);
    let version = format!("{} {}", tenant.spec.version, &plugin.hash()[..12]);
    let fper = host_harness::fingerprint::Fingerprinter::new(&mapping_fp, &version);
    let t = Instant::now();
    {
        let state = State::open(&job.sync.state_dir)?;
        let src = host_harness::source::open(&job.source)?;
        for chunk in host_harness::source::batches(src, 1000) {
            let rows: Vec<host_harness::contract::model::Row> = chunk?
                .into_iter()
                .filter_map(|i| match i {
                    host_harness::source::SourceItem::Row(r) => Some(r),
                    _ => None,
                })
                .collect();
            let mapped = plugin.map_rows("bench", &tenant.settings, &tenant.mapping, rows).await?;
            let mut b = state.sync("planning").batch()?;
            for m in mapped.into_iter().flatten() {
                let id = format!("retl-{}", m.key);
                b.record_success(&m.key, fper.fingerprint(&m.payload), &m.payload, Some(&id), Outcome::Created)?;
            }
            b.commit()?;
        }
        state.sync("planning").set_meta(&mapping_fp, &version)?;
    }
    let fill_secs = t.elapsed().as_secs_f64();
    let hwm_fill = proc_kib("VmHWM:");
    reset_hwm();

    // 3. The no-change sync: map, fingerprint, look up (all known, all equal), mark seen; 0 requests.
    let t = Instant::now();
    let resync = harness.run(&tenant, &job, &RunOptions::default()).await?;
    let resync_secs = t.elapsed().as_secs_f64();
    let hwm_resync = proc_kib("VmHWM:");
    if resync.counts.unchanged as usize != n || resync.requests != 0 {
        bail!("the no-change sync was not all unchanged: {}", resync.summary());
    }
    Ok(json!({
        "rows": n,
        "first_sync_preview_rows_per_second": round(n as f64 / preview_secs, 0),
        "no_change_sync_rows_per_second": round(n as f64 / resync_secs, 0),
        "state_fill_secs": round(fill_secs, 1),
        "vm_rss_after_load_kib": rss_loaded,
        "vm_hwm_kib": hwm_preview.max(hwm_resync),
        "vm_hwm_mib": round(hwm_preview.max(hwm_resync) as f64 / 1024.0, 1),
        "peak_mib_first_sync_preview": round(hwm_preview as f64 / 1024.0, 1),
        "peak_mib_no_change_sync": round(hwm_resync as f64 / 1024.0, 1),
        "peak_mib_bench_state_fill_not_the_host": round(hwm_fill as f64 / 1024.0, 1),
        "peak_growth_mib_duplicate_key_check_alone": round(key_check_peak_kib as f64 / 1024.0, 1),
    }))
}

// ---------------------------------------------------------------------------------------------
// Multi-tenant fairness: many tenants over a few organizations, each organization's budget.
// ---------------------------------------------------------------------------------------------

async fn fairness(a: &Args) -> Result<Value> {
    let (tenants, orgs, per_tenant, limit) = (a.tenants, a.orgs.max(1), a.tenant_records, a.org_rate);
    let dir = TempDir::new("fairness");
    let db = dir.0.join("source.sqlite");
    generate_sqlite(&db, tenants * per_tenant, tenants)?;
    let latency = Duration::from_millis(20);
    let emulator = Emulator::start(EmulatorConfig { rate_limit_per_second: limit, latency, ..Default::default() }).await?;
    let mut jobs = Vec::new();
    for t in 0..tenants {
        jobs.push(job(&JobSpec {
            dir: &dir.0,
            sync_id: format!("tenant-{t}"),
            domain: format!("org{}", t % orgs),
            db: &db,
            query: format!("SELECT id, name, email, tier, city FROM customers WHERE tenant = {t} ORDER BY id"),
            rate: limit,
            endpoint: emulator.base_url(),
            limits: vec![],
        })?);
    }
    let harness = Arc::new(Harness::for_job(&jobs[0])?);
    harness.plugin(&jobs[0].sync.component)?;
    let mut prepared = Vec::new();
    for j in &jobs {
        prepared.push(harness.prepare(j, &RunOptions::default()).await?);
    }
    let prepared = Arc::new(prepared);
    let jobs = Arc::new(jobs);
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tenants {
        let (h, p, j) = (harness.clone(), prepared.clone(), jobs.clone());
        set.spawn(async move { (t, h.run(&p[t], &j[t], &RunOptions::default()).await) });
    }
    let mut failed = 0;
    let mut created = 0;
    let mut tenant_secs = vec![0f64; tenants];
    while let Some(r) = set.join_next().await {
        let (t, r) = r?;
        let r = r?;
        failed += r.counts.failed;
        created += r.counts.created;
        tenant_secs[t] = r.elapsed_secs;
    }
    let wall = t0.elapsed().as_secs_f64();
    let reqs = emulator.requests();
    let mut per_org = Vec::new();
    let (mut min_share, mut max_share, mut worst_window, mut total_429) = (f64::MAX, 0f64, 0u64, 0usize);
    for o in 0..orgs {
        let name = format!("org{o}");
        let mine: Vec<&RecordedRequest> = reqs.iter().filter(|r| r.org == name).collect();
        let (rate, max_fixed, max_sliding) = rate_figures(&mine, latency);
        let share = rate / f64::from(limit);
        let throttled = mine.iter().filter(|r| r.status == Some(429)).count();
        min_share = min_share.min(share);
        max_share = max_share.max(share);
        worst_window = worst_window.max(max_fixed);
        total_429 += throttled;
        per_org.push(json!({
            "org": name,
            "requests": mine.len(),
            "requests_per_second": round(rate, 3),
            "share_of_limit": round(share, 4),
            "max_requests_in_a_server_window": max_fixed,
            "max_requests_in_any_1s": max_sliding,
            "throttled_429": throttled,
        }));
    }
    // Tenants of one organization should finish together (fair share of its budget).
    let mut spread = 0f64;
    for o in 0..orgs {
        let secs: Vec<f64> = (0..tenants).filter(|t| t % orgs == o).map(|t| tenant_secs[t]).collect();
        let (lo, hi) = secs.iter().fold((f64::MAX, 0f64), |(l, h), s| (l.min(*s), h.max(*s)));
        if hi > 0.0 {
            spread = spread.max((hi - lo) / hi);
        }
    }
    emulator.shutdown().await;
    Ok(json!({
        "tenants": tenants,
        "organizations": orgs,
        "records_per_tenant": per_tenant,
        "limit_per_org": limit,
        "created": created,
        "failed": failed,
        "wall_secs": round(wall, 1),
        "min_share_of_limit": round(min_share, 4),
        "max_share_of_limit": round(max_share, 4),
        "worst_server_window": worst_window,
        "throttled_429": total_429,
        "max_finish_spread_within_an_org": round(spread, 3),
        "target_every_org_within_2pct": min_share >= 0.98,
        "target_none_above": max_share <= 1.0 && worst_window <= u64::from(limit) && total_429 == 0,
        "per_org": per_org,
    }))
}
