//! Rate use: how much of Gladly's per-organization limit the host uses without causing a 429.
//!
//! Generated customers are upserted (first sync: find + create, 2 requests each) against an
//! emulator with 150 ms latency and 10 requests/s per organization. Baseline: the same harness
//! with `max_concurrency = 1` (one instance sending sequentially, what the vendor page
//! describes); ours: adaptive concurrency (at most 32). Requests/s = (requests − 1) / (last
//! arrival − first arrival) from the emulator's log; 429s are counted from the log (no fault is
//! injected, so every 429 is ours); the largest count in one of the emulator's own one-second
//! windows shows the limit was never exceeded. Target: ≥ 95% of the limit and no 429.

use std::time::Duration;

use anyhow::Result;
use gladly_emulator::RecordedRequest;
use host_harness::sync::Harness;
use serde_json::{Value, json};

use crate::cli::Args;
use crate::fixtures::{customers_job, generated_source, start_emulator, sync};
use crate::measure::rate_figures;
use crate::report::round;

pub async fn rate_use(a: &Args) -> Result<Value> {
    let latency = Duration::from_millis(150);
    let mut out = serde_json::Map::new();
    for (label, records, max_concurrency) in [("baseline_sequential", a.baseline_records, 1usize), ("adaptive", a.records, 32)] {
        let (dir, db) = generated_source(&format!("rate-{label}"), records, 1)?;
        let emulator = start_emulator(10, latency).await?;
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
