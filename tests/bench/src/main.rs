//! Benchmarks of the Gladly destination component and its host. Every figure is a ratio or a
//! count measured in one run against a baseline; BENCHMARKS.md explains each method.
//!
//! ```text
//! cargo xtask bench                         # builds the components, then runs every section
//! cargo run --release -p bench --bin bench -- --only requests,overhead --request-rows 500
//! ```
//!
//! Each section runs in its own child process (this binary with `--child SECTION`), so that the
//! memory figures of one section are not polluted by another. Results are printed and written
//! as JSON to `target/bench-results.json` (or `--out`).
//!
//! Contents:
//! - [`cli`]: the flags, the section names and what a child process is passed;
//! - [`report`]: the parent process: one child per section, the figures gathered, printed and
//!   written;
//! - [`fixtures`]: generated customers, job files, the emulator, the component's paths;
//! - [`measure`]: memory read from `/proc`, request rates read from the emulator's log;
//! - [`native`]: the naive native Rust client of `requests`;
//! - the sections: [`rate`] (rate use), [`requests`] (requests per row), [`create_first`]
//!   (requests per row of a first sync by what the organization holds), [`overhead`] (host
//!   overhead), [`instantiate`] (instantiation and memory), [`planning`] (map + fingerprint +
//!   diff), [`fairness`] (multi-tenant fairness), [`orgs_per_host`] (organizations one host
//!   drives at full rate, the emulator in its own process), [`workers`] (1, 2 and 3 `serve`
//!   workers sharing 60 organizations through PostgreSQL, and their failover).

mod cli;
mod fixtures;
mod measure;
mod native;
mod report;

mod create_first;
mod fairness;
mod instantiate;
mod matching;
mod orgs_per_host;
mod overhead;
mod planning;
mod rate;
mod requests;
mod workers;

use anyhow::{Result, bail};
use clap::Parser;
use serde_json::Value;

use cli::Args;

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.child.clone() {
        Some(section) => {
            let result = rt.block_on(run_section(&section, &args))?;
            println!("RESULT {}", serde_json::to_string(&result)?);
            Ok(())
        }
        None => report::parent(&args),
    }
}

/// Runs one section in this (child) process.
async fn run_section(section: &str, a: &Args) -> Result<Value> {
    match section {
        "rate" => rate::rate_use(a).await,
        "requests" => requests::requests_per_row(a).await,
        "matching" => matching::first_sync_by_match_key(a).await,
        "create_first" => create_first::first_sync_by_holding(a).await,
        "overhead" => overhead::host_overhead(a).await,
        "instantiate" => instantiate::instantiation(a).await,
        "planning" => planning::planning(a).await,
        "fairness" => fairness::fairness(a).await,
        "orgs_per_host" => orgs_per_host::orgs_per_host(a).await,
        "workers" => workers::workers(a).await,
        other => bail!("unknown section {other}"),
    }
}
