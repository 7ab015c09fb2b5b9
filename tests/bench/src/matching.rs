//! Requests per row of a first sync by match key: `match-on = "email"` (the default) against
//! `match-on = "externalCustomerId,email"`, with the warehouse's row key mapped to
//! `externalCustomerId`.
//!
//! Two organizations are measured for each setting, each on a fresh emulator with the same
//! latency and no rate limit:
//! - **empty**: no customer exists yet;
//! - **known by id**: every customer already exists in Gladly under its warehouse id, with an
//!   older email, as another tool created them.
//!
//! Counts come from the emulator's request log. The profile count after the sync shows the
//! duplicates a key that cannot see the customer creates.

use std::time::Duration;

use anyhow::Result;
use host_harness::sync::Harness;
use serde_json::{Value, json};

use crate::cli::Args;
use crate::fixtures::{HOST_MAX_RATE, customers_job, generated_source, read_customers, start_emulator, sync};
use crate::report::round;

pub async fn first_sync_by_match_key(a: &Args) -> Result<Value> {
    let n = a.request_rows;
    let (dir, db) = generated_source("matching", n, 1)?;
    let customers = read_customers(&db)?;
    let latency = Duration::from_millis(a.request_latency_ms);
    let mut runs = Vec::new();
    for organization in ["empty", "known_by_id"] {
        for match_on in ["email", "externalCustomerId,email"] {
            let emulator = start_emulator(1_000_000, latency).await?;
            if organization == "known_by_id" {
                for c in &customers {
                    emulator.insert_profile(
                        "acme",
                        json!({"externalCustomerId": c.key, "name": c.name, "emails": [{"original": format!("old.{}", c.email)}]}),
                    );
                }
            }
            let sync_id = format!("matching-{organization}-{}", if match_on == "email" { "email" } else { "external-id" });
            let mut job = customers_job(&dir.0, &sync_id, &db, HOST_MAX_RATE, emulator.base_url(), a.overhead_concurrency.max(1))?;
            job.destination.settings.insert("match-on".into(), toml::Value::String(match_on.into()));
            if match_on != "email" {
                job.mapping.insert("id".into(), "externalCustomerId".into());
            }
            let harness = Harness::for_job(&job)?;
            let report = sync(&harness, &job).await?;
            let reqs = emulator.requests();
            let count = |m: &str| reqs.iter().filter(|r| r.method == m).count();
            let profiles = emulator.profiles("acme").len();
            runs.push(json!({
                "organization": organization,
                "match_on": match_on,
                "rows": n,
                "requests": reqs.len(),
                "requests_per_row": round(reqs.len() as f64 / n as f64, 3),
                "finds": count("GET"),
                "creates": count("POST"),
                "patches": count("PATCH"),
                "created": report.counts.created,
                "updated": report.counts.updated,
                "failed": report.counts.failed,
                "profiles_after": profiles,
                "duplicates": profiles.saturating_sub(n),
            }));
            emulator.shutdown().await;
        }
    }
    Ok(json!({ "latency_ms": a.request_latency_ms, "runs": runs }))
}
