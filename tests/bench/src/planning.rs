//! Planning: map + fingerprint + diff, rows/s and peak memory, at each `--plan-rows` size.
//!
//! The parent generates an SQLite source of N customers per size and runs one child per size
//! ([`every_size`]); the child ([`planning`]) runs four phases: 0. the duplicate-key check
//! alone, on the same N keys (its share of the peaks); 1. a first-sync preview (dry run: every
//! row read, mapped in the sandbox, fingerprinted and looked up in an empty state); 2. the bench
//! fills the state as a finished first sync would (not timed as planning); 3. a no-change sync
//! (every row mapped, fingerprinted and diffed against state; it must send 0 requests).
//! Rows/s = N ÷ wall time; peak memory is VmHWM, reset before each phase
//! (`/proc/self/clear_refs`). Targets: ≥ 100k rows/s on 2 cores, memory flat in the row count
//! (the ratio of the largest size's peak to the smallest's).

use std::time::Instant;

use anyhow::{Context, Result, bail};
use host_harness::contract::model::Outcome;
use host_harness::state::State;
use host_harness::sync::{Harness, RunOptions};
use serde_json::{Value, json};

use crate::cli::Args;
use crate::fixtures::{CUSTOMERS_QUERY, JobSpec, TempDir, customer_key, generated_source, job};
use crate::measure::proc_kib;
use crate::report::{child, round};

/// In the parent: one planning child per `--plan-rows` size, each on a source generated here,
/// and the peak-memory ratio of the largest size to the smallest.
pub fn every_size(args: &Args) -> Result<Value> {
    let mut per_size = Vec::new();
    for &n in &args.plan_rows {
        let t = Instant::now();
        let (_dir, db) = generated_source(&format!("plan-gen-{n}"), n, 1)?;
        eprintln!("   generated {n} rows in {:.1} s", t.elapsed().as_secs_f64());
        let r = child("planning", &["--rows".into(), n.to_string(), "--db".into(), db.display().to_string()])?;
        eprintln!("   {n} rows: {r}");
        per_size.push(r);
    }
    let mut out = json!({ "sizes": per_size });
    if per_size_hwm_ratio(&mut out).is_none() {
        eprintln!("   (one size only: no memory ratio)");
    }
    Ok(out)
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

/// In a child: the phases at one size (`--rows`, on the source `--db`).
pub async fn planning(a: &Args) -> Result<Value> {
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
            keys.remember(&customer_key(i))?.map_err(|e| anyhow::anyhow!(e.message))?;
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
            let mapped = plugin.map_rows("bench", &tenant.settings, &tenant.mapping, &rows).await?;
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
