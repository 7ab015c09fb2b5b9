//! Fingerprint + diff throughput against a real state file.
//!
//! ```text
//! cargo run --release -p host-harness --example plan_throughput -- [ROWS]
//! ```
//!
//! Method: fills a fresh state with ROWS confirmed records (default 200 000, ~300-byte
//! payloads), then plans the same ROWS mapped records in batches of 1 000 twice: once with every
//! record unchanged (the steady state: 1 lookup + 1 fingerprint each, nothing to send) and once
//! with one in ten changed. Mapping is not included (the plugin's `map-row` is measured with the
//! engine); reading the source is not either. Prints rows/s for each pass and the peak resident
//! memory, which stays flat as ROWS grows (batches are dropped after planning).

use std::time::Instant;

use host_harness::contract::model::{Cell, Column, MappedRecord, Outcome, Row};
use host_harness::fingerprint::Fingerprinter;
use host_harness::sync::plan::Planner;
use host_harness::state::State;

fn payload(i: u64, version: u64) -> String {
    format!(
        "{{\"address\":\"{i} Maple Street, Springfield, IL 62704, USA\",\"customAttributes\":{{\"loyaltyTier\":\"gold\",\"lifetimeValue\":\"{}.50\",\"v\":\"{version}\"}},\"emails\":[{{\"original\":\"user{i}@example.com\"}}],\"externalCustomerId\":\"{i}\",\"name\":\"Customer Number {i}\",\"phones\":[{{\"original\":\"+1 217 555 0{:03}\",\"type\":\"MOBILE\"}}]}}",
        i % 9000,
        100 + i % 100
    )
}

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: u64 = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(200_000);
    let dir = std::env::temp_dir().join(format!("hh-plan-throughput-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state = State::open(&dir)?;
    let fp = Fingerprinter::new("mapping", "0.1.0");

    let t = Instant::now();
    for chunk in (0..rows).collect::<Vec<_>>().chunks(5_000) {
        let mut b = state.sync("bench").batch()?;
        for &i in chunk {
            let p = payload(i, 1);
            b.record_success(&i.to_string(), fp.fingerprint(&p), &p, Some(&format!("g{i}")), Outcome::Created)?;
        }
        b.commit()?;
    }
    let fill = t.elapsed();
    println!("state fill: {rows} records in {:.2?} ({:.0} writes/s, batches of 5000)", fill, rows as f64 / fill.as_secs_f64());

    for (label, every) in [("all unchanged", 0u64), ("1 in 10 changed", 10)] {
        let mut planner = Planner::new(state.sync("bench"), "mapping", "0.1.0")?;
        let t = Instant::now();
        let mut sent = 0usize;
        let mut i = 0;
        while i < rows {
            let end = (i + 1000).min(rows);
            let batch: Vec<(Row, MappedRecord)> = (i..end)
                .map(|k| {
                    let key = k.to_string();
                    let version = if every > 0 && k % every == 0 { 2 } else { 1 };
                    (
                        Row { key: key.clone(), columns: vec![Column { name: "id".into(), value: Cell::Integer(k as i64) }] },
                        MappedRecord { key, payload: payload(k, version), match_value: None, remote_id: None },
                    )
                })
                .collect();
            let planned = planner.plan_batch(state.sync("bench"), batch)?;
            sent += planned.iter().filter(|p| p.item.is_some()).count();
            i = end;
        }
        let el = t.elapsed();
        println!(
            "{label}: {rows} records planned in {:.2?} = {:.0} rows/s (to send: {sent}; counts {:?})",
            el,
            rows as f64 / el.as_secs_f64(),
            planner.counts()
        );
    }
    if let Some(kib) = peak_rss_kib() {
        println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    drop(state);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
