//! Rate use: how much of Gladly's per-organization limit the host uses without causing a 429.
//!
//! Generated customers are upserted (first sync: find + create, 2 requests each) against an
//! emulator with 150 ms latency and 10 requests/s per organization. Baseline: the same harness
//! with `max_concurrency = 1` (one instance sending sequentially, what the vendor page
//! describes); ours: adaptive concurrency (at most 32). Requests/s = (requests − 1) / (last
//! arrival − first arrival) from the emulator's log; 429s are counted from the log (no fault is
//! injected, so every 429 is ours); the largest count in any one second of arrivals shows the
//! limit was never exceeded. Target: ≥ 95% of the limit and no 429.
//!
//! Then the same sync (a quarter of the records) against each way a server may count the limit
//! (a leaky bucket, fixed one-second windows, a sliding second), with the latency varying by
//! ± 50 ms per request: the pace must hold against every one of them.

use std::time::Duration;

use anyhow::Result;
use gladly_emulator::{EmulatorConfig, LimiterShape, RecordedRequest};
use host_harness::sync::Harness;
use host_harness::sync::report::RunReport;
use serde_json::{Value, json};

use crate::cli::Args;
use crate::fixtures::{customers_job, generated_source, start_emulator_with, sync};
use crate::measure::rate_figures;
use crate::report::round;

/// One first sync of `records` generated customers at 10/s against an emulator started with
/// `config`, and what its log shows.
struct RateRun {
    report: RunReport,
    requests: usize,
    /// Requests/s from the first to the last arrival.
    rate: f64,
    max_in_a_server_window: u64,
    max_in_any_second: u64,
    self_inflicted_429: usize,
}

async fn rate_run(label: &str, records: usize, max_concurrency: usize, config: EmulatorConfig) -> Result<RateRun> {
    let (dir, db) = generated_source(label, records, 1)?;
    let emulator = start_emulator_with(config).await?;
    let job = customers_job(&dir.0, label, &db, 10, emulator.base_url(), max_concurrency)?;
    let harness = Harness::for_job(&job)?;
    let report = sync(&harness, &job).await?;
    let reqs = emulator.requests();
    let all: Vec<&RecordedRequest> = reqs.iter().collect();
    let (rate, max_in_a_server_window, max_in_any_second) = rate_figures(&all);
    // No fault is injected: every 429 is ours.
    let self_inflicted_429 = reqs.iter().filter(|r| r.status == Some(429) && r.fault.is_none()).count();
    emulator.shutdown().await;
    Ok(RateRun { report, requests: reqs.len(), rate, max_in_a_server_window, max_in_any_second, self_inflicted_429 })
}

pub async fn rate_use(a: &Args) -> Result<Value> {
    let latency = Duration::from_millis(150);
    let mut out = serde_json::Map::new();
    for (label, records, max_concurrency) in [("baseline_sequential", a.baseline_records, 1usize), ("adaptive", a.records, 32)] {
        let config = EmulatorConfig { rate_limit_per_second: 10, latency, ..EmulatorConfig::default() };
        let run = rate_run(&format!("rate-{label}"), records, max_concurrency, config).await?;
        let report = &run.report;
        out.insert(
            label.into(),
            json!({
                "records": records,
                "max_concurrency": max_concurrency,
                "requests": run.requests,
                "created": report.counts.created,
                "failed": report.counts.failed,
                "requests_per_second": round(run.rate, 3),
                "share_of_limit": round(run.rate / 10.0, 4),
                "overall_requests_per_second": round(report.requests_per_second, 3),
                "overall_share_of_limit": round(report.requests_per_second / 10.0, 4),
                "self_inflicted_429": run.self_inflicted_429,
                "max_requests_in_a_server_window": run.max_in_a_server_window,
                "max_requests_in_any_1s": run.max_in_any_second,
                "elapsed_secs": round(report.elapsed_secs, 1),
            }),
        );
    }
    let base = out["baseline_sequential"]["share_of_limit"].as_f64().unwrap_or(0.0);
    let ours = out["adaptive"]["share_of_limit"].as_f64().unwrap_or(0.0);
    out.insert("improvement_over_baseline".into(), json!(round(if base > 0.0 { ours / base } else { 0.0 }, 3)));
    let ours_429 = out["adaptive"]["self_inflicted_429"].as_u64().unwrap_or(u64::MAX);
    out.insert("target_at_least_95pct_and_no_429".into(), json!(ours >= 0.95 && ours_429 == 0));

    let records = (a.records / 4).max(50);
    let mut shapes = serde_json::Map::new();
    let mut all_met = true;
    for shape in LimiterShape::ALL {
        let config = EmulatorConfig {
            rate_limit_per_second: 10,
            rate_limit_shape: shape,
            latency,
            latency_jitter: Duration::from_millis(50),
            seed: 14,
            ..EmulatorConfig::default()
        };
        let run = rate_run(&format!("rate-{}", shape.name()), records, 32, config).await?;
        all_met &= run.rate / 10.0 >= 0.95 && run.self_inflicted_429 == 0;
        shapes.insert(
            shape.name().into(),
            json!({
                "records": records,
                "requests": run.requests,
                "created": run.report.counts.created,
                "failed": run.report.counts.failed,
                "share_of_limit": round(run.rate / 10.0, 4),
                "self_inflicted_429": run.self_inflicted_429,
                "max_requests_in_any_1s": run.max_in_any_second,
            }),
        );
    }
    out.insert("by_limiter_shape_150_plus_minus_50ms".into(), Value::Object(shapes));
    out.insert("target_every_shape_at_least_95pct_and_no_429".into(), json!(all_met));
    Ok(Value::Object(out))
}
