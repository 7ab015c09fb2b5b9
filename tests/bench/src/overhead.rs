//! Host overhead: the component + host against a native client, same calls, same emulator.
//!
//! Each client upserts the same generated records (find + create, 2 requests each; the host with
//! `create-first = off`, so it makes the same calls) against a
//! fresh emulator with no latency and no effective limit: the component + host with
//! `max_concurrency = --overhead-concurrency`; a native Rust client (hyper) making the same calls
//! over as many keep-alive connections (as reqwest or any pooled client); the same native client
//! opening a new connection for every request. Ratio = host records/s ÷ native records/s.
//! Target: ≥ 0.8× the keep-alive native client.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use host_harness::sync::Harness;
use serde_json::{Value, json};

use crate::cli::Args;
use crate::fixtures::{Customer, HOST_MAX_RATE, customers_job, generated_source, start_emulator, sync};
use crate::native;
use crate::report::round;

pub async fn host_overhead(a: &Args) -> Result<Value> {
    let n = a.overhead_records;
    let c = a.overhead_concurrency.max(1);
    let (dir, db) = generated_source("overhead", n, 1)?;
    let unlimited = || start_emulator(u32::MAX / 2, Duration::ZERO);

    // Component + host.
    let emulator = unlimited().await?;
    let mut job = customers_job(&dir.0, "overhead", &db, HOST_MAX_RATE, emulator.base_url(), c)?;
    // The same two requests per record as the native client: lookup, then create.
    job.destination.settings.insert("create-first".into(), toml::Value::String("off".into()));
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
        let emulator = unlimited().await?;
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

/// Upserts `n` generated customers the naive way: find by email, create when absent.
async fn native_sync(addr: SocketAddr, n: usize, concurrency: usize, reuse: bool) -> Result<()> {
    native::for_each(addr, n, concurrency, reuse, |mut client, i| async move {
        let customer = Customer::generated(i);
        let found = client.find_by_email(&customer.email).await?;
        if found.is_empty() {
            let mut profile = customer.profile();
            profile["id"] = format!("native-{i:08}").into();
            let status = client.write(http::Request::post("/api/v1/customer-profiles"), &profile).await?;
            if status != 201 {
                bail!("create answered {status}");
            }
        }
        Ok(client)
    })
    .await
}
