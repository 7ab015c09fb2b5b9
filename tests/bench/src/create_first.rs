//! Requests per row of a first sync by what the organization already holds, with
//! `create-first = auto` (the default) against `create-first = off` (look up first, the
//! order every peer uses).
//!
//! Three organizations, each on a fresh emulator with the same latency and no rate limit, each
//! synced from fresh state:
//! - **empty**: no customer exists yet (target ≤ 1.05 requests per row);
//! - **holds_every_customer**: every customer exists under its email with an older name, so
//!   each row needs an update (target ≤ 2.1);
//! - **holds_half**: every other customer exists that way (target ≤ 1.6): held and new rows
//!   alternate, so nothing seen so far predicts the next row;
//! - **holds_older_half**: the first half of the customers in key order exists that way, the
//!   second half is new (target ≤ 1.6): the shape of an organization that already holds the
//!   customers of an older system, where held rows come in runs the learned order can follow.
//!
//! Counts come from the emulator's request log. Every row must end created or updated and the
//! organization must hold exactly one profile per customer afterwards (exactly once).

use std::time::Duration;

use anyhow::{Result, bail};
use host_harness::sync::Harness;
use serde_json::{Value, json};

use crate::cli::Args;
use crate::fixtures::{
    HOST_MAX_RATE, customers_job, generated_source, read_customers, start_emulator, sync,
};
use crate::report::round;

/// The organizations measured, each with its target for `auto`.
const HOLDINGS: [(&str, f64); 4] = [
    ("empty", 1.05),
    ("holds_every_customer", 2.1),
    ("holds_half", 1.6),
    ("holds_older_half", 1.6),
];

pub async fn first_sync_by_holding(a: &Args) -> Result<Value> {
    let n = a.request_rows;
    let (dir, db) = generated_source("create-first", n, 1)?;
    let customers = read_customers(&db)?;
    let latency = Duration::from_millis(a.request_latency_ms);
    let mut runs = Vec::new();
    for (holding, target) in HOLDINGS {
        let mut per_setting = serde_json::Map::new();
        for setting in ["auto", "off"] {
            let emulator = start_emulator(1_000_000, latency).await?;
            let held: Vec<_> = match holding {
                "empty" => Vec::new(),
                "holds_every_customer" => customers.iter().collect(),
                "holds_half" => customers.iter().step_by(2).collect(),
                "holds_older_half" => customers.iter().take(n / 2).collect(),
                other => bail!("no holding is defined for organization {other:?}"),
            };
            for c in &held {
                emulator.insert_profile(
                    "acme",
                    json!({"name": format!("Old {}", c.name), "emails": [{"original": c.email}]}),
                );
            }
            let sync_id = format!("create-first-{holding}-{setting}");
            let mut job = customers_job(
                &dir.0,
                &sync_id,
                &db,
                HOST_MAX_RATE,
                emulator.base_url(),
                a.overhead_concurrency.max(1),
            )?;
            job.destination
                .settings
                .insert("create-first".into(), toml::Value::String(setting.into()));
            let harness = Harness::for_job(&job)?;
            let report = sync(&harness, &job).await?;
            let reqs = emulator.requests();
            let count = |m: &str, find: bool| {
                reqs.iter()
                    .filter(|r| r.method == m && r.path.contains('?') == find)
                    .count()
            };
            let profiles = emulator.profiles("acme").len();
            let c = &report.counts;
            if c.failed > 0 || c.created + c.updated != n as u64 || profiles != n {
                bail!(
                    "{holding}, create-first = {setting}: {} created, {} updated, {} failed, {profiles} profiles for {n} rows",
                    c.created,
                    c.updated,
                    c.failed
                );
            }
            per_setting.insert(
                setting.into(),
                json!({
                    "requests": reqs.len(),
                    "requests_per_row": round(reqs.len() as f64 / n as f64, 3),
                    "creates": count("POST", false),
                    "finds": count("GET", true),
                    "reads": count("GET", false),
                    "patches": count("PATCH", false),
                    "created": c.created,
                    "updated": c.updated,
                }),
            );
            emulator.shutdown().await;
        }
        let per_row = |s: &str| {
            per_setting[s]["requests_per_row"]
                .as_f64()
                .unwrap_or(f64::NAN)
        };
        let (auto, off) = (per_row("auto"), per_row("off"));
        runs.push(json!({
            "organization": holding,
            "rows": n,
            "auto": per_setting["auto"],
            "off": per_setting["off"],
            "target_requests_per_row": target,
            "meets_target": auto <= target,
            "requests_ratio_auto_to_off": round(auto / off, 3),
        }));
    }
    Ok(
        json!({ "latency_ms": a.request_latency_ms, "concurrency": a.overhead_concurrency, "runs": runs }),
    )
}
