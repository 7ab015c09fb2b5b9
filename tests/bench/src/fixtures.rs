//! What the sections sync and where: the paths of the release component and its compile cache,
//! temporary folders, generated customers in an SQLite file, the job files that sync them
//! through the real component, the emulator they go to, and many tenants prepared to run at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use gladly_emulator::{Emulator, EmulatorConfig};
use host_harness::job::JobConfig;
use host_harness::sync::report::RunReport;
use host_harness::sync::{Harness, RunOptions, Tenant};
use serde_json::{Value, json};

/// The per-organization rate the "no rate limit" sections give the host: far above what one
/// machine sends, so the limiter never makes anyone wait (it refills in groups at such rates).
pub const HOST_MAX_RATE: u32 = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Paths.
// ---------------------------------------------------------------------------------------------

pub fn target_dir() -> PathBuf {
    let file = "wasm32-wasip2/release/gladly_destination.wasm";
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(t) if t.join(file).exists() => t,
        _ => default,
    }
}

pub fn component() -> Result<PathBuf> {
    let p = target_dir().join("wasm32-wasip2/release/gladly_destination.wasm");
    if !p.exists() {
        bail!("{} is missing: run `cargo xtask build` (or `cargo xtask bench`)", p.display());
    }
    Ok(p.canonicalize()?)
}

pub fn cache_dir() -> PathBuf {
    target_dir().join("bench-cache")
}

/// A folder's path, and the `tempfile` guard that removes it on drop.
pub struct TempDir(pub PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("gladly-bench-{tag}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary folder: {e}"));
        TempDir(dir.path().to_path_buf(), dir)
    }
}

// ---------------------------------------------------------------------------------------------
// Generated customers.
// ---------------------------------------------------------------------------------------------

/// One customer of the generated source.
pub struct Customer {
    pub key: String,
    pub name: String,
    pub email: String,
    pub tier: String,
    pub city: String,
}

impl Customer {
    /// Generated customer `i`, as the source holds it before any section changes it.
    pub fn generated(i: usize) -> Customer {
        let tiers = ["bronze", "silver", "gold"];
        Customer {
            key: customer_key(i),
            name: format!("Customer Number {i}"),
            email: format!("customer{i}@example.com"),
            tier: tiers[i % 3].into(),
            city: format!("City {}", i % 97),
        }
    }

    /// The Gladly profile the mapping makes of this customer (without an id).
    pub fn profile(&self) -> Value {
        json!({
            "name": self.name,
            "emails": [{"original": self.email}],
            "customAttributes": {"city": self.city, "tier": self.tier},
        })
    }
}

/// The query over the generated customers table.
pub const CUSTOMERS_QUERY: &str = "SELECT id, name, email, tier, city FROM customers ORDER BY id";

/// The primary key of generated customer `i`.
pub fn customer_key(i: usize) -> String {
    format!("c{i:08}")
}

/// Writes `n` customers into an SQLite file: id, tenant (`id % tenants`), name, email, tier, city.
pub fn generate_sqlite(path: &Path, n: usize, tenants: usize) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         CREATE TABLE customers (id TEXT PRIMARY KEY NOT NULL, tenant INTEGER NOT NULL, name TEXT, email TEXT, tier TEXT, city TEXT);",
    )?;
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare("INSERT INTO customers VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        for i in 0..n {
            let c = Customer::generated(i);
            st.execute(rusqlite::params![c.key, (i % tenants.max(1)) as i64, c.name, c.email, c.tier, c.city])?;
        }
    }
    tx.commit()?;
    if tenants > 1 {
        conn.execute_batch("CREATE INDEX customers_by_tenant ON customers (tenant, id);")?;
    }
    Ok(())
}

/// A temporary folder (tagged `tag`) holding `source.sqlite`: `n` generated customers over
/// `tenants` tenants.
pub fn generated_source(tag: &str, n: usize, tenants: usize) -> Result<(TempDir, PathBuf)> {
    let dir = TempDir::new(tag);
    let db = dir.0.join("source.sqlite");
    generate_sqlite(&db, n, tenants)?;
    Ok((dir, db))
}

/// The customers of a generated source as they are now, in key order.
pub fn read_customers(db: &Path) -> Result<Vec<Customer>> {
    let conn = rusqlite::Connection::open(db)?;
    let mut st = conn.prepare(CUSTOMERS_QUERY)?;
    let rows = st
        .query_map([], |r| Ok(Customer { key: r.get(0)?, name: r.get(1)?, email: r.get(2)?, tier: r.get(3)?, city: r.get(4)? }))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The query over tenant `t`'s customers of a source generated for several tenants.
pub fn tenant_query(t: usize) -> String {
    format!("SELECT id, name, email, tier, city FROM customers WHERE tenant = {t} ORDER BY id")
}

// ---------------------------------------------------------------------------------------------
// Jobs, the emulator, syncs.
// ---------------------------------------------------------------------------------------------

/// One tenant's job file.
pub struct JobSpec<'a> {
    pub dir: &'a Path,
    pub sync_id: String,
    pub domain: String,
    pub db: &'a Path,
    pub query: String,
    pub rate: u32,
    pub endpoint: String,
    pub limits: Vec<String>,
}

/// Tenant `t` of a generated source as the one sync of organization `org{t}` (sync id `org-{t}`),
/// at `rate` requests per second through `endpoint`.
pub fn org_tenant<'a>(dir: &'a Path, db: &'a Path, t: usize, rate: u32, endpoint: &str) -> JobSpec<'a> {
    JobSpec {
        dir,
        sync_id: format!("org-{t}"),
        domain: format!("org{t}"),
        db,
        query: tenant_query(t),
        rate,
        endpoint: endpoint.to_string(),
        limits: vec![],
    }
}

/// The common job: organization `acme`, the generated customers of `db`, at most
/// `max_concurrency` instances.
pub fn customers_job(dir: &Path, sync_id: &str, db: &Path, rate: u32, endpoint: String, max_concurrency: usize) -> Result<JobConfig> {
    job(&JobSpec {
        dir,
        sync_id: sync_id.into(),
        domain: "acme".into(),
        db,
        query: CUSTOMERS_QUERY.into(),
        rate,
        endpoint,
        limits: vec![format!("max_concurrency = {max_concurrency}")],
    })
}

pub fn job(s: &JobSpec<'_>) -> Result<JobConfig> {
    Ok(toml::from_str(&job_text(s)?)?)
}

/// The job file's text.
pub fn job_text(s: &JobSpec<'_>) -> Result<String> {
    let token = s.dir.join("token");
    if !token.exists() {
        std::fs::write(&token, format!("{}\n", gladly_emulator::DEFAULT_TOKEN))?;
    }
    let text = format!(
        r#"[sync]
id = "{sync_id}"
mode = "upsert"
component = "{component}"
state_dir = "{state}"
cache_dir = "{cache}"

[source]
kind = "sqlite"
path = "{db}"
query = "{query}"
primary_key = "id"

[destination]
domain = "{domain}"
username = "{user}"

[destination.secrets]
token = {{ file = "{token}" }}

[mapping]
name = "name"
email = "email"
tier = "customAttributes.tier"
city = "customAttributes.city"

[policy]
allow_hosts = ["*.gladly.com"]
rate_limit_per_second = {rate}
endpoint = "{endpoint}"

[limits]
{limits}
"#,
        sync_id = s.sync_id,
        component = component()?.display(),
        state = s.dir.join(format!("state-{}", s.sync_id)).display(),
        cache = cache_dir().display(),
        db = s.db.display(),
        query = s.query,
        domain = s.domain,
        user = gladly_emulator::DEFAULT_USER,
        token = token.display(),
        rate = s.rate,
        endpoint = s.endpoint,
        limits = s.limits.join("\n"),
    );
    Ok(text)
}

/// An emulator on 127.0.0.1 admitting `rate_limit_per_second` requests per organization and
/// answering after `latency`.
pub async fn start_emulator(rate_limit_per_second: u32, latency: Duration) -> Result<Emulator> {
    start_emulator_with(EmulatorConfig { rate_limit_per_second, latency, ..Default::default() }).await
}

/// Starts an emulator with any configuration (limiter shape, latency jitter, seed).
pub async fn start_emulator_with(config: EmulatorConfig) -> Result<Emulator> {
    Ok(Emulator::start(config).await?)
}

/// Prepares and runs one sync of `job`.
pub async fn sync(harness: &Harness, job: &JobConfig) -> Result<RunReport> {
    let opts = RunOptions::default();
    let tenant = harness.prepare(job, &opts).await?;
    Ok(harness.run(&tenant, job, &opts).await?)
}

/// Many tenants' jobs in one harness, each prepared, ready to be run at once.
pub struct Tenants {
    harness: Arc<Harness>,
    jobs: Arc<Vec<JobConfig>>,
    prepared: Arc<Vec<Tenant>>,
}

impl Tenants {
    /// One harness for all `jobs` (built for the first, its component loaded), every job prepared.
    pub async fn prepare(jobs: Vec<JobConfig>) -> Result<Tenants> {
        let harness = Arc::new(Harness::for_job(&jobs[0])?);
        harness.plugin(&jobs[0].sync.component)?;
        let mut prepared = Vec::new();
        for j in &jobs {
            prepared.push(harness.prepare(j, &RunOptions::default()).await?);
        }
        Ok(Tenants { harness, jobs: Arc::new(jobs), prepared: Arc::new(prepared) })
    }

    /// Starts every tenant's sync at once; each task answers with its tenant's index.
    pub fn spawn_all(&self) -> tokio::task::JoinSet<(usize, Result<RunReport>)> {
        let mut set = tokio::task::JoinSet::new();
        for t in 0..self.jobs.len() {
            let (h, p, j) = (self.harness.clone(), self.prepared.clone(), self.jobs.clone());
            set.spawn(async move { (t, h.run(&p[t], &j[t], &RunOptions::default()).await.map_err(anyhow::Error::from)) });
        }
        set
    }
}
