//! Host overhead: the component + host against a native Rust client on exactly the same work.
//!
//! Both sides get the same pre-planned records (new customers of an empty organization, the
//! host with `create-first = off`) and make the same two requests for each: a lookup by email,
//! then the create, with the same JSON body (the native client sends the bodies the component
//! sent, and the request logs of both runs are compared whole). Both go over the host's
//! `ConnectionPool` to a fresh emulator (no latency, no effective limit), `C` batches of the
//! tenant's batch size at once. The host side adds what every request of a sync pays: the
//! sandbox, the egress hook (allow-list, credential, rate permit at an effectively unlimited
//! rate, timeouts); tenant preparation, state open and instantiation are timed apart.
//!
//! Each size is run `--overhead-runs` times (host, then native, each on a fresh emulator); the
//! figures are medians. Per-record cost is the slope between the smallest and the largest size,
//! so fixed costs do not hide it. Ratio = native seconds ÷ host seconds (the host's throughput
//! relative to native). Target: ≥ 0.8 at every size and on the slope.
//!
//! - [`host`]: the component side; [`native`]: the native side; [`same_requests`]: the check.

mod host;
mod native;

use std::time::Duration;

use anyhow::{Result, bail};
use gladly_emulator::{Emulator, RecordedRequest};
use host_harness::contract::model::{Cell, Column, Row, SyncItem};
use serde_json::{Value, json};

use crate::cli::Args;
use crate::fixtures::{Customer, start_emulator};
use crate::report::round;

pub async fn host_overhead(a: &Args) -> Result<Value> {
    let c = a.overhead_concurrency.max(1);
    let runs = a.overhead_runs.max(1);
    let mut sizes = a.overhead_sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let mut per_size = Vec::new();
    for &n in &sizes {
        let items = items(n);
        let (mut host, mut native, mut fixed, mut batch) = (Vec::new(), Vec::new(), Vec::new(), 0);
        let (mut host_cpu, mut native_cpu) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let emulator = unlimited().await?;
            let h = host::run(&emulator, &items, c).await?;
            let host_log = emulator.requests();
            emulator.shutdown().await;

            let emulator = unlimited().await?;
            // The native client takes its records in batches of the tenant's batch size too.
            batch = h.batch_size;
            let (secs, cpu) = native::run(&emulator, native_records(&host_log, n)?, c, batch).await?;
            same_requests(&host_log, &emulator.requests())?;
            if emulator.profiles("acme").len() != n {
                bail!("the native client created {} of {n}", emulator.profiles("acme").len());
            }
            emulator.shutdown().await;
            host.push(h.send_secs);
            native.push(secs);
            host_cpu.push(h.send_cpu_secs);
            native_cpu.push(cpu);
            fixed.push([h.prepare_secs, h.state_open_secs, h.instantiate_secs]);
        }
        per_size.push(SizeFigures {
            n,
            batch,
            host: median(&host),
            native: median(&native),
            host_cpu: median(&host_cpu),
            native_cpu: median(&native_cpu),
            host_runs: host,
            native_runs: native,
            fixed,
        });
    }
    Ok(report(&per_size, c, runs))
}

/// Median seconds of one size, per side.
struct SizeFigures {
    n: usize,
    batch: usize,
    host: f64,
    native: f64,
    /// CPU seconds of the whole process (client and emulator), median.
    host_cpu: f64,
    native_cpu: f64,
    host_runs: Vec<f64>,
    native_runs: Vec<f64>,
    fixed: Vec<[f64; 3]>,
}

fn report(sizes: &[SizeFigures], c: usize, runs: usize) -> Value {
    let ms = |s: f64| round(s * 1e3, 2);
    let table: Vec<Value> = sizes
        .iter()
        .map(|s| {
            json!({
                "records": s.n,
                "requests_per_side": 2 * s.n,
                "host_secs": round(s.host, 4),
                "native_secs": round(s.native, 4),
                "host_runs_secs": s.host_runs.iter().map(|x| round(*x, 4)).collect::<Vec<_>>(),
                "native_runs_secs": s.native_runs.iter().map(|x| round(*x, 4)).collect::<Vec<_>>(),
                "host_records_per_second": round(s.n as f64 / s.host, 1),
                "native_records_per_second": round(s.n as f64 / s.native, 1),
                "ratio": round(s.native / s.host, 3),
                "host_cpu_secs": round(s.host_cpu, 2),
                "native_cpu_secs": round(s.native_cpu, 2),
                "cpu_ratio": round(s.native_cpu / s.host_cpu, 3),
            })
        })
        .collect();
    let all_fixed: Vec<[f64; 3]> = sizes.iter().flat_map(|s| s.fixed.iter().copied()).collect();
    let fixed = |k: usize| ms(median(&all_fixed.iter().map(|f| f[k]).collect::<Vec<_>>()));
    let mut doc = json!({
        "concurrency": c,
        "batch_size": sizes.first().map_or(0, |s| s.batch),
        "runs_per_size": runs,
        "sizes": table,
        "fixed_ms_median": {
            "tenant_prepare": fixed(0),
            "state_open": fixed(1),
            "instantiate_all_instances": fixed(2),
        },
    });
    if let (Some(lo), Some(hi)) = (sizes.first(), sizes.last())
        && hi.n > lo.n
    {
        let d = (hi.n - lo.n) as f64;
        let (host, native) = ((hi.host - lo.host) / d, (hi.native - lo.native) / d);
        let ratio = native / host;
        let at_sizes = sizes.iter().all(|s| s.native / s.host >= 0.8);
        doc["slope"] = json!({
            "host_us_per_record": round(host * 1e6, 2),
            "native_us_per_record": round(native * 1e6, 2),
            "ratio": round(ratio, 3),
            "host_cpu_us_per_record": round((hi.host_cpu - lo.host_cpu) / d * 1e6, 1),
            "native_cpu_us_per_record": round((hi.native_cpu - lo.native_cpu) / d * 1e6, 1),
            "cpu_ratio": round((hi.native_cpu - lo.native_cpu) / (hi.host_cpu - lo.host_cpu), 3),
        });
        doc["target_at_least_0_8x_native"] = json!(ratio >= 0.8 && at_sizes);
    }
    doc
}

fn unlimited() -> impl Future<Output = Result<Emulator>> {
    start_emulator(u32::MAX / 2, Duration::ZERO)
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The first `n` generated customers as the planner hands new records to the senders.
fn items(n: usize) -> Vec<SyncItem> {
    (0..n)
        .map(|i| {
            let c = Customer::generated(i);
            let text = |name: &str, v: &str| Column { name: name.into(), value: Cell::Text(v.into()) };
            let columns = vec![text("id", &c.key), text("name", &c.name), text("email", &c.email), text("tier", &c.tier), text("city", &c.city)];
            SyncItem { row: Row { key: c.key, columns }, known_id: None, previous_payload: None }
        })
        .collect()
}

/// The native client's records: each customer's email and the create body the component sent.
fn native_records(host_log: &[RecordedRequest], n: usize) -> Result<Vec<native::NativeRecord>> {
    let mut bodies = std::collections::HashMap::new();
    for r in host_log.iter().filter(|r| r.method == "POST") {
        let email = r.body.as_ref().and_then(|b| b["emails"][0]["original"].as_str()).map(str::to_string);
        if let (Some(email), Some(body)) = (email, r.body.clone()) {
            bodies.insert(email, body);
        }
    }
    (0..n)
        .map(|i| {
            let email = Customer::generated(i).email;
            match bodies.remove(&email) {
                Some(create) => Ok(native::NativeRecord { email, create }),
                None => bail!("the component sent no create for {email}"),
            }
        })
        .collect()
}

/// Both sides made exactly the same requests: method, path, JSON body and header names, as a
/// multiset (the order differs with scheduling).
fn same_requests(host: &[RecordedRequest], native: &[RecordedRequest]) -> Result<()> {
    let key = |r: &RecordedRequest| {
        let mut names: Vec<String> = r.headers.iter().map(|(k, _)| k.clone()).collect();
        names.sort();
        (r.method.clone(), r.path.clone(), r.body.as_ref().map(Value::to_string), names, r.status)
    };
    let mut h: Vec<_> = host.iter().map(key).collect();
    let mut n: Vec<_> = native.iter().map(key).collect();
    h.sort();
    n.sort();
    if h.len() != n.len() {
        bail!("the host made {} requests, the native client {}", h.len(), n.len());
    }
    if let Some((a, b)) = h.iter().zip(&n).find(|(a, b)| a != b) {
        bail!("the requests differ: host {a:?}, native {b:?}");
    }
    Ok(())
}
