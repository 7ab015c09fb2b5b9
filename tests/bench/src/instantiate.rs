//! Instantiation and memory: what a compiled component, an instance and a syncing tenant cost.
//!
//! Compile the component with an empty cache vs load it from the on-disk cache (fresh engine
//! each, cache load averaged over 5); `--iterations` instantiations from the pre-instantiated
//! template (after 50 warm-up ones), with and without the pooling allocator; 200 idle instances
//! held alive, VmRSS growth ÷ 200; then 100 tenants (20 records each, 50 ms latency) syncing at
//! once, peak VmRSS growth sampled every 5 ms. Targets: an instance well under 1 ms, a few MiB
//! per idle instance.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use host_harness::sandbox::{Runtime, RuntimeConfig};
use serde_json::{Value, json};

use crate::cli::Args;
use crate::fixtures::{HOST_MAX_RATE, JobSpec, TempDir, Tenants, cache_dir, component, generate_sqlite, job, start_emulator, tenant_query};
use crate::measure::proc_kib;
use crate::report::round;

pub async fn instantiation(a: &Args) -> Result<Value> {
    let component = component()?;
    let dir = TempDir::new("instantiate");
    let fresh_cache = dir.0.join("cache");

    // Compile (empty cache) vs load from the on-disk cache; each with a fresh engine.
    let rt = Runtime::new(RuntimeConfig { cache_dir: Some(fresh_cache.clone()), pooling: false, limits: Default::default() })?;
    let t = Instant::now();
    let compiled = rt.load(&component)?;
    let compile_secs = t.elapsed().as_secs_f64();
    assert!(!compiled.from_cache());
    drop(compiled);
    drop(rt);
    let mut cached_secs = Vec::new();
    for _ in 0..5 {
        let rt = Runtime::new(RuntimeConfig { cache_dir: Some(fresh_cache.clone()), pooling: false, limits: Default::default() })?;
        let t = Instant::now();
        let p = rt.load(&component)?;
        cached_secs.push(t.elapsed().as_secs_f64());
        if !p.from_cache() {
            bail!("the second load did not come from the cache");
        }
    }
    let cached = cached_secs.iter().sum::<f64>() / cached_secs.len() as f64;

    let mut modes = serde_json::Map::new();
    for pooling in [false, true] {
        let rt = Runtime::new(RuntimeConfig { cache_dir: Some(cache_dir()), pooling, limits: Default::default() })?;
        let plugin = rt.load(&component)?;
        let policy = plugin.no_egress("bench");
        // Warm up, then time.
        for _ in 0..50 {
            drop(plugin.instantiate(policy.clone(), Duration::from_secs(30)).await?);
        }
        let t = Instant::now();
        for _ in 0..a.iterations {
            let inst = plugin.instantiate(policy.clone(), Duration::from_secs(30)).await?;
            drop(inst);
        }
        let mean_us = t.elapsed().as_secs_f64() * 1e6 / a.iterations as f64;

        // Idle instances held alive: resident memory per instance.
        let hold = 200usize;
        let before = proc_kib("VmRSS:");
        let mut live = Vec::with_capacity(hold);
        for _ in 0..hold {
            live.push(plugin.instantiate(policy.clone(), Duration::from_secs(300)).await?);
        }
        let after = proc_kib("VmRSS:");
        drop(live);
        modes.insert(
            if pooling { "pooling".into() } else { "on_demand".into() },
            json!({
                "instantiate_mean_us": round(mean_us, 1),
                "iterations": a.iterations,
                "idle_instances_held": hold,
                "rss_per_idle_instance_kib": round(after.saturating_sub(before) as f64 / hold as f64, 1),
            }),
        );
    }

    // 100 tenants syncing at once: resident memory growth at the peak.
    let tenants = 100usize;
    let records = 20usize;
    let db = dir.0.join("tenants.sqlite");
    generate_sqlite(&db, tenants * records, tenants)?;
    let emulator = start_emulator(1_000_000, Duration::from_millis(50)).await?;
    let mut jobs = Vec::new();
    for t in 0..tenants {
        jobs.push(job(&JobSpec {
            dir: &dir.0,
            sync_id: format!("mem-{t}"),
            domain: "acme".into(),
            db: &db,
            query: tenant_query(t),
            rate: HOST_MAX_RATE,
            endpoint: emulator.base_url(),
            limits: vec!["max_concurrency = 1".into()],
        })?);
    }
    let prepared = Tenants::prepare(jobs).await?;
    let base = proc_kib("VmRSS:");
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(base));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(proc_kib("VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut set = prepared.spawn_all();
    let mut created = 0;
    while let Some(r) = set.join_next().await {
        created += r?.1?.counts.created;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let peak = peak.load(Ordering::Relaxed);
    emulator.shutdown().await;
    Ok(json!({
        "compile_secs": round(compile_secs, 3),
        "load_from_cache_secs": round(cached, 4),
        "compile_vs_cache_ratio": round(compile_secs / cached, 1),
        "instances": modes,
        "concurrent_tenants": {
            "tenants": tenants,
            "records_each": records,
            "created": created,
            "rss_growth_at_peak_mib": round(peak.saturating_sub(base) as f64 / 1024.0, 1),
        },
    }))
}
