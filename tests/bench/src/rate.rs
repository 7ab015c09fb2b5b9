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
use serde_json::{Value, json};

use crate::cli::Args;
use crate::fixtures::{customers_job, generated_source, start_emulator, start_emulator_with, sync};
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
        let (rate, max_fixed, max_sliding) = rate_figures(&all);
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

    let jitter = Duration::from_millis(50);
    let records = (a.records / 4).max(50);
    let mut shapes = serde_json::Map::new();
    let mut all_met = true;
    for shape in LimiterShape::ALL {
        let label = format!("rate-{}", shape.name());
        let (dir, db) = generated_source(&label, records, 1)?;
        let emulator = start_emulator_with(EmulatorConfig {
            rate_limit_per_second: 10,
            rate_limit_shape: shape,
            latency,
            latency_jitter: jitter,
            seed: 14,
            ..EmulatorConfig::default()
        })
        .await?;
        let job = customers_job(&dir.0, &label, &db, 10, emulator.base_url(), 32)?;
        let harness = Harness::for_job(&job)?;
        let report = sync(&harness, &job).await?;
        let reqs = emulator.requests();
        let all: Vec<&RecordedRequest> = reqs.iter().collect();
        let (rate, _, max_sliding) = rate_figures(&all);
        let ours_429 = reqs.iter().filter(|r| r.status == Some(429) && r.fault.is_none()).count();
        all_met &= rate / 10.0 >= 0.95 && ours_429 == 0;
        shapes.insert(
            shape.name().into(),
            json!({
                "records": records,
                "requests": reqs.len(),
                "created": report.counts.created,
                "failed": report.counts.failed,
                "share_of_limit": round(rate / 10.0, 4),
                "self_inflicted_429": ours_429,
                "max_requests_in_any_1s": max_sliding,
            }),
        );
        emulator.shutdown().await;
    }
    out.insert("by_limiter_shape_150_plus_minus_50ms".into(), Value::Object(shapes));
    out.insert("target_every_shape_at_least_95pct_and_no_429".into(), json!(all_met));
    Ok(Value::Object(out))
}
