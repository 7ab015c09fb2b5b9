//! Requests per row: how many requests the host sends per row synced, against the naive
//! find+write sync.
//!
//! Generated rows are synced five times by the harness against one emulator (same latency for
//! both clients, no rate limit, `max_concurrency = --overhead-concurrency`): first sync; no
//! change; 1% of rows with a changed name; 1% with a changed custom attribute (`tier`); 1% with a
//! changed email. After each harness run the naive baseline (a native client that, for every
//! row, finds the profile by email, then PATCHes or POSTs it: two requests per row, every run)
//! runs on the same data against a second emulator. Counts come from the emulators' request
//! logs; "at 10/s" is requests ÷ 10, the wall time Gladly's default limit would impose.
//! Targets: 0 requests per unchanged row, 1 per changed row with a known id.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use host_harness::sync::Harness;
use serde_json::{Value, json};

use crate::cli::Args;
use crate::fixtures::{Customer, HOST_MAX_RATE, customers_job, generated_source, read_customers, start_emulator, sync};
use crate::native;
use crate::report::round;

pub async fn requests_per_row(a: &Args) -> Result<Value> {
    let n = a.request_rows;
    let c = a.overhead_concurrency.max(1);
    let (dir, db) = generated_source("requests", n, 1)?;
    // The same latency for both; no rate limit, so the wall times compare the clients, and the
    // wall time at Gladly's 10/s follows from the request counts.
    let latency = Duration::from_millis(a.request_latency_ms);
    let emulator = start_emulator(1_000_000, latency).await?;
    // The naive baseline writes to its own emulator (same data, same latency).
    let naive_emulator = start_emulator(1_000_000, latency).await?;
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
        let rows = read_customers(&db)?;
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

/// The naive sync the vendor page describes: for every row, find the profile by email, then
/// PATCH it when found or POST it when not. Two requests per row, every run.
async fn naive_find_write(addr: SocketAddr, rows: Vec<Customer>, concurrency: usize) -> Result<()> {
    let rows = Arc::new(rows);
    native::for_each(addr, rows.len(), concurrency, true, move |mut client, i| {
        let rows = rows.clone();
        async move {
            let row = &rows[i];
            let found = client.find_by_email(&row.email).await?;
            let write = match found.first().and_then(|p| p["id"].as_str()) {
                Some(id) => http::Request::patch(format!("/api/v1/customer-profiles/{id}")),
                // Without an id: Gladly generates one (the naive client has no idempotency).
                None => http::Request::post("/api/v1/customer-profiles"),
            };
            let status = client.write(write, &row.profile()).await?;
            if !(200..300).contains(&status) {
                bail!("naive write answered {status}");
            }
            Ok(client)
        }
    })
    .await
}
