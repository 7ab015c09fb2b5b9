//! The parent process: runs each selected section in a child process of its own (this binary
//! with `--child SECTION`), gathers the figures each child prints as a `RESULT` line, and prints
//! them with the command and the machine, and writes them as JSON (`--out`, by default
//! `target/bench-results.json`).

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use host_harness::sandbox::{Runtime, RuntimeConfig};
use serde_json::{Value, json};

use crate::cli::{self, Args};
use crate::fixtures::{cache_dir, component, target_dir};
use crate::planning;

pub fn parent(args: &Args) -> Result<()> {
    let component = component()?;
    let sections = cli::selected_sections(args)?;
    // Warm the compile cache once, so children only deserialize the component.
    Runtime::new(RuntimeConfig { cache_dir: Some(cache_dir()), pooling: false, limits: Default::default() })?
        .load(&component)?;

    let cmdline: Vec<String> = std::env::args().skip(1).collect();
    let mut results = BTreeMap::new();
    for s in &sections {
        eprintln!("== {s}");
        let started = Instant::now();
        if s == "planning" {
            results.insert(s.clone(), planning::every_size(args)?);
        } else {
            let r = child(s, &cli::pass_through(args))?;
            eprintln!("   {r}");
            results.insert(s.clone(), r);
        }
        eprintln!("   ({:.0} s)", started.elapsed().as_secs_f64());
    }
    let doc = json!({
        "command": format!("cargo run --release -p bench --bin bench -- {}", cmdline.join(" ")),
        "machine": machine(),
        "results": results,
    });
    let out = args.out.clone().unwrap_or_else(|| target_dir().join("bench-results.json"));
    std::fs::write(&out, serde_json::to_string_pretty(&doc)?)?;
    println!("{}", serde_json::to_string_pretty(&doc)?);
    eprintln!("results written to {}", out.display());
    Ok(())
}

/// Runs `section` in a child process with `extra` arguments and returns the result it printed.
pub fn child(section: &str, extra: &[String]) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .arg("--child")
        .arg(section)
        .args(extra)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("section {section} failed ({}):\n{stdout}", out.status);
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .with_context(|| format!("section {section} printed no result:\n{stdout}"))?;
    Ok(serde_json::from_str(line)?)
}

fn machine() -> Value {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_default();
    json!({ "cpus": cpus, "cpu": model, "os": std::env::consts::OS })
}

/// `x` rounded to `digits` decimals, as every figure is reported.
pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
