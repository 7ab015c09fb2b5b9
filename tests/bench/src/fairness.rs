//! Multi-tenant fairness: many tenants over a few organizations, each organization's budget.
//!
//! `--tenants` tenants over `--orgs` organizations start at once in one harness; each upserts
//! `--tenant-records` generated records (2 requests each). The emulator limits each
//! organization to `--org-rate` requests/s, with 20 ms latency. Per organization, the
//! emulator's log gives requests/s over the organization's span, the largest count in one of
//! the emulator's own one-second windows, and 429s; the finish times of one organization's
//! tenants show whether they shared its budget fairly. Targets: every organization within 2% of
//! its limit, none above it.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};

use crate::cli::Args;
use crate::fixtures::{JobSpec, Tenants, generated_source, job, start_emulator, tenant_query};
use crate::measure::org_figures;
use crate::report::round;

pub async fn fairness(a: &Args) -> Result<Value> {
    let (tenants, orgs, per_tenant, limit) = (a.tenants, a.orgs.max(1), a.tenant_records, a.org_rate);
    let (dir, db) = generated_source("fairness", tenants * per_tenant, tenants)?;
    let latency = Duration::from_millis(20);
    let emulator = start_emulator(limit, latency).await?;
    let mut jobs = Vec::new();
    for t in 0..tenants {
        jobs.push(job(&JobSpec {
            dir: &dir.0,
            sync_id: format!("tenant-{t}"),
            domain: format!("org{}", t % orgs),
            db: &db,
            query: tenant_query(t),
            rate: limit,
            endpoint: emulator.base_url(),
            limits: vec![],
        })?);
    }
    let prepared = Tenants::prepare(jobs).await?;
    let t0 = Instant::now();
    let mut set = prepared.spawn_all();
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
        let org = org_figures(&reqs, &name, limit);
        min_share = min_share.min(org.share);
        max_share = max_share.max(org.share);
        worst_window = worst_window.max(org.max_fixed);
        total_429 += org.throttled;
        per_org.push(json!({
            "org": name,
            "requests": org.requests,
            "requests_per_second": round(org.rate, 3),
            "share_of_limit": round(org.share, 4),
            "max_requests_in_a_server_window": org.max_fixed,
            "max_requests_in_any_1s": org.max_sliding,
            "throttled_429": org.throttled,
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
