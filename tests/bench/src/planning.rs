//! Planning: map + fingerprint + diff, rows/s and peak memory, at each `--plan-rows` size.
//!
//! The parent generates an SQLite source of N customers per size and runs its four phases
//! ([`PHASES`]), each in a child process of its own ([`planning`]) on a shared work folder:
//! 0. the duplicate-key check alone, on the same N keys (its share of the peaks); 1. a
//! first-sync preview (dry run: every row read, mapped in the sandbox, fingerprinted and looked
//! up in an empty state); 2. the bench fills the state as a finished first sync would (not
//! planning, not timed as such); 3. a no-change sync (every row mapped, fingerprinted and diffed
//! against state; it must send 0 requests).
//! Rows/s = N ÷ wall time; peak memory is the child's VmHWM. A process per phase, because an
//! allocator keeps what a phase freed: measured in one process, the next phase's peak carried
//! the bench's own state fill (at 1M rows, 43 of the no-change sync's 48 MiB were resident
//! before it started). Targets: ≥ 100k rows/s on 2 cores, memory flat in the row count (the
//! ratio of the largest size's peak to the smallest's).

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

/// The phases of one size, in order; each runs in a process of its own.
const PHASES: [&str; 4] = ["key_check", "preview", "fill", "no_change"];

/// In the parent: for each `--plan-rows` size a source generated here and one child per phase,
/// then the peak-memory ratio of the largest size to the smallest.
pub fn every_size(args: &Args) -> Result<Value> {
    let mut per_size = Vec::new();
    for &n in &args.plan_rows {
        let t = Instant::now();
        let (_dir, db) = generated_source(&format!("plan-gen-{n}"), n, 1)?;
        eprintln!("   generated {n} rows in {:.1} s", t.elapsed().as_secs_f64());
        let work = TempDir::new(&format!("plan-{n}"));
        let mut size = serde_json::Map::new();
        size.insert("rows".into(), json!(n));
        for phase in PHASES {
            let r = child(
                "planning",
                &[
                    "--rows".into(),
                    n.to_string(),
                    "--db".into(),
                    db.display().to_string(),
                    "--phase".into(),
                    phase.into(),
                    "--work-dir".into(),
                    work.0.display().to_string(),
                ],
            )?;
            if let Value::Object(fields) = r {
                size.extend(fields);
            }
        }
        let peak = |k: &str| size.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        let hwm_mib = peak("peak_mib_first_sync_preview").max(peak("peak_mib_no_change_sync"));
        size.insert("vm_hwm_kib".into(), json!((hwm_mib * 1024.0).round()));
        size.insert("vm_hwm_mib".into(), json!(hwm_mib));
        let size = Value::Object(size);
        eprintln!("   {n} rows: {size}");
        per_size.push(size);
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

/// In a child: one phase (`--phase`) at one size (`--rows`, on the source `--db`), in the
/// shared `--work-dir`.
pub async fn planning(a: &Args) -> Result<Value> {
    let n = a.rows.context("--rows")?;
    let db = a.db.clone().context("--db")?;
    let dir = a.work_dir.clone().context("--work-dir")?;
    let phase = a.phase.clone().context("--phase")?;
    let job = job(&JobSpec {
        dir: &dir,
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
    let mib = |kib: u64| round(kib as f64 / 1024.0, 1);
    match phase.as_str() {
        // 0. The duplicate-key check alone, on the same keys: its share of the peaks below.
        "key_check" => {
            let mut keys = host_harness::source::keys::KeyChecker::new("id");
            for i in 0..n {
                keys.remember(&customer_key(i))?.map_err(|e| anyhow::anyhow!(e.message))?;
            }
            let growth = proc_kib("VmHWM:").saturating_sub(rss_loaded);
            Ok(json!({ "peak_growth_mib_duplicate_key_check_alone": mib(growth) }))
        }
        // 1. A first-sync preview: every row mapped, fingerprinted and looked up (none known).
        "preview" => {
            let opts = RunOptions { dry_run: true, ..RunOptions::default() };
            let tenant = harness.prepare(&job, &opts).await?;
            let t = Instant::now();
            let preview = harness.run(&tenant, &job, &opts).await?;
            let secs = t.elapsed().as_secs_f64();
            if preview.counts.rows as usize != n {
                bail!("the preview read {} rows of {n}", preview.counts.rows);
            }
            Ok(json!({
                "first_sync_preview_rows_per_second": round(n as f64 / secs, 0),
                "peak_mib_first_sync_preview": mib(proc_kib("VmHWM:")),
            }))
        }
        // 2. Make the state say every row was confirmed (what a finished first sync leaves).
        "fill" => {
            let tenant = harness.prepare(&job, &RunOptions::default()).await?;
            let mapping_fp = host_harness::fingerprint::mapping_fingerprint(tenant.mode, &tenant.mapping, &tenant.settings);
            let version = format!("{} {}", tenant.spec.version, &plugin.hash()[..12]);
            let fper = host_harness::fingerprint::Fingerprinter::new(&mapping_fp, &version);
            let t = Instant::now();
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
            Ok(json!({
                "state_fill_secs": round(t.elapsed().as_secs_f64(), 1),
                "peak_mib_bench_state_fill_not_the_host": mib(proc_kib("VmHWM:")),
            }))
        }
        // 3. The no-change sync: map, fingerprint, look up (all known, all equal); 0 requests.
        "no_change" => {
            let tenant = harness.prepare(&job, &RunOptions::default()).await?;
            let t = Instant::now();
            let resync = harness.run(&tenant, &job, &RunOptions::default()).await?;
            let secs = t.elapsed().as_secs_f64();
            if resync.counts.unchanged as usize != n || resync.requests != 0 {
                bail!("the no-change sync was not all unchanged: {}", resync.summary());
            }
            Ok(json!({
                "no_change_sync_rows_per_second": round(n as f64 / secs, 0),
                "peak_mib_no_change_sync": mib(proc_kib("VmHWM:")),
                "vm_rss_after_load_kib": rss_loaded,
            }))
        }
        other => bail!("unknown planning phase {other:?}; known: {}", PHASES.join(", ")),
    }
}
