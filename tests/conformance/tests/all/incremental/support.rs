//! Helpers for the incremental-sync tests: a temporary folder with a CSV source and a job file,
//! an in-process Gladly emulator, and assertions over what the emulator holds and saw.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use std::sync::Mutex;
use std::time::Duration;

use gladly_emulator::{Emulator, EmulatorConfig, RecordedRequest};
use host_harness::job::JobConfig;
use host_harness::sync::report::RunReport;
use host_harness::state::{RecordState, State};
use host_harness::sync::{Harness, RunOptions};
use serde_json::Value;

/// The organization every fixture writes to (`acme.gladly.com`).
pub const ORG: &str = "acme";
/// The emulator's API user and token.
pub const USER: &str = gladly_emulator::DEFAULT_USER;
pub const TOKEN: &str = gladly_emulator::DEFAULT_TOKEN;

/// The workspace's target folder (where `cargo xtask build` puts the components).
pub fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let default = manifest.parent().map(|p| p.join("target")).unwrap_or_default();
    let file = "wasm32-wasip2/release/gladly_destination.wasm";
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(t) if t.join(file).exists() => t,
        _ => default,
    }
}

/// The real destination component.
pub fn component() -> PathBuf {
    let p = target_dir().join("wasm32-wasip2/release/gladly_destination.wasm");
    assert!(p.exists(), "{} is missing: run `cargo xtask build` first", p.display());
    p
}

/// A compile cache shared by the tests (and the CLI subprocesses) so the component is compiled once.
pub fn cache_dir() -> PathBuf {
    target_dir().join("incremental-test-cache")
}

/// A folder removed when dropped: its path, and the `tempfile` guard that removes it.
pub struct TempDir(pub PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = tempfile::Builder::new().prefix(&format!("hh-incr-{tag}-")).tempdir().unwrap();
        TempDir(dir.path().to_path_buf(), dir)
    }
}


/// One source row.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub email: String,
    pub tier: String,
    pub city: String,
    pub mobile: String,
    pub gladly_id: String,
}

impl Person {
    pub fn new(i: usize) -> Person {
        Person {
            id: format!("c{i:04}"),
            name: format!("Customer {i}"),
            email: format!("customer{i}@example.com"),
            tier: "silver".into(),
            city: format!("City {}", i % 7),
            mobile: String::new(),
            gladly_id: String::new(),
        }
    }
}

/// `n` people `c0000`…
pub fn people(n: usize) -> Vec<Person> {
    (0..n).map(Person::new).collect()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Write the people as the CSV source (empty cells are NULL).
pub fn write_csv(path: &Path, rows: &[Person]) {
    let mut out = String::from("id,name,email,tier,city,mobile,gladly_id\n");
    for r in rows {
        let cells = [&r.id, &r.name, &r.email, &r.tier, &r.city, &r.mobile, &r.gladly_id];
        let line: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

/// What a job file is built from.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub sync_id: String,
    pub mode: &'static str,
    /// `column = "target"` lines of `[mapping]`, in order.
    pub mapping: Vec<(&'static str, &'static str)>,
    pub rate_limit: u32,
    /// Extra lines of `[limits]`.
    pub limits: Vec<String>,
    pub token_file: String,
}

impl JobSpec {
    pub fn upsert(sync_id: &str) -> JobSpec {
        JobSpec {
            sync_id: sync_id.into(),
            mode: "upsert",
            mapping: vec![("name", "name"), ("email", "email"), ("tier", "customAttributes.tier")],
            rate_limit: 200,
            limits: vec!["backoff_base_ms = 10".into(), "backoff_max_ms = 200".into()],
            token_file: "token".into(),
        }
    }
}

/// Render a job file.
pub fn job_toml(dir: &Path, spec: &JobSpec, endpoint: &str) -> String {
    let mapping: Vec<String> = spec.mapping.iter().map(|(c, t)| format!("{c} = \"{t}\"")).collect();
    format!(
        r#"[sync]
id = "{sync_id}"
mode = "{mode}"
component = "{component}"
state_dir = "{state}"
cache_dir = "{cache}"

[source]
kind = "csv"
path = "{csv}"
primary_key = "id"

[destination]
domain = "{ORG}"
username = "{USER}"

[destination.secrets]
token = {{ file = "{token}" }}

[mapping]
{mapping}

[policy]
allow_hosts = ["*.gladly.com"]
rate_limit_per_second = {rate}
endpoint = "{endpoint}"

[limits]
{limits}
"#,
        sync_id = spec.sync_id,
        mode = spec.mode,
        component = component().display(),
        state = dir.join("state").display(),
        cache = cache_dir().display(),
        csv = dir.join("rows.csv").display(),
        token = dir.join(&spec.token_file).display(),
        mapping = mapping.join("\n"),
        rate = spec.rate_limit,
        limits = spec.limits.join("\n"),
    )
}

/// Serializes the first load of the component per process (the compile cache is written once).
static LOAD: Mutex<()> = Mutex::new(());

/// A temporary folder, an emulator, a harness, a job.
pub struct Fixture {
    pub dir: TempDir,
    pub emulator: Emulator,
    pub harness: Harness,
    pub spec: JobSpec,
    pub job: JobConfig,
    pub rows: Vec<Person>,
}

impl Fixture {
    /// An emulator allowing 1000 requests/s per organization, and `n` rows.
    pub async fn new(tag: &str, n: usize) -> Fixture {
        Self::with(tag, people(n), JobSpec::upsert(&format!("incr-{tag}")), EmulatorConfig {
            rate_limit_per_second: 1000,
            seed: 7,
            ..EmulatorConfig::default()
        })
        .await
    }

    pub async fn with(tag: &str, rows: Vec<Person>, spec: JobSpec, emulator: EmulatorConfig) -> Fixture {
        let dir = TempDir::new(tag);
        std::fs::write(dir.0.join("token"), format!("{TOKEN}\n")).unwrap();
        std::fs::write(dir.0.join("wrong-token"), "not-the-token\n").unwrap();
        write_csv(&dir.0.join("rows.csv"), &rows);
        let emulator = Emulator::start(emulator).await.unwrap();
        let job = parse_job(&dir.0, &spec, &emulator.base_url());
        let harness = Harness::for_job(&job).unwrap();
        {
            let _guard = LOAD.lock().unwrap_or_else(|p| p.into_inner());
            harness.plugin(&job.sync.component).unwrap();
        }
        Fixture { dir, emulator, harness, spec, job, rows }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    /// Replace the job (e.g. a new mapping); the harness and its loaded plugin stay.
    pub fn set_job(&mut self, spec: JobSpec) {
        self.job = parse_job(&self.dir.0, &spec, &self.emulator.base_url());
        self.spec = spec;
    }

    /// Rewrite the source.
    pub fn set_rows(&mut self, rows: Vec<Person>) {
        write_csv(&self.dir.0.join("rows.csv"), &rows);
        self.rows = rows;
    }

    /// Change the source rows in place.
    pub fn edit_rows(&mut self, f: impl FnOnce(&mut Vec<Person>)) {
        let mut rows = self.rows.clone();
        f(&mut rows);
        self.set_rows(rows);
    }

    /// Prepare a fresh tenant (as the CLI does per run) and run the sync.
    pub async fn sync(&self) -> RunReport {
        self.run(false).await
    }

    /// A dry run (`preview`).
    pub async fn preview(&self) -> RunReport {
        self.run(true).await
    }

    async fn run(&self, dry_run: bool) -> RunReport {
        let opts = RunOptions { dry_run, ..RunOptions::default() };
        let tenant = self.harness.prepare(&self.job, &opts).await.unwrap();
        self.harness.run(&tenant, &self.job, &opts).await.unwrap()
    }

    /// Sync until a run has no failures (at most `max` runs); returns every report.
    pub async fn sync_until_clean(&self, max: usize) -> Vec<RunReport> {
        let mut reports = Vec::new();
        for _ in 0..max {
            let r = self.sync().await;
            let clean = r.failures.is_empty() && r.aborted.is_none();
            reports.push(r);
            if clean {
                break;
            }
        }
        reports
    }

    /// Requests the emulator recorded since the last [`Fixture::clear`].
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.emulator.requests()
    }

    pub fn clear(&self) {
        self.emulator.clear_requests();
    }

    /// Stored profiles of the organization.
    pub fn profiles(&self) -> Vec<Value> {
        self.emulator.profiles(ORG)
    }

    /// The state of every row key (opened read-only in spirit: a fresh connection each call).
    pub fn state(&self) -> HashMap<String, RecordState> {
        let state = State::open(&self.job.sync.state_dir).unwrap();
        let keys: Vec<&str> = self.rows.iter().map(|r| r.id.as_str()).collect();
        state.get_many(&self.job.sync.id, &keys).unwrap()
    }

    /// The Gladly id of the live profile holding `email`.
    pub fn id_of(&self, email: &str) -> String {
        let profiles = self.profiles();
        let found = profiles_with_email(&profiles, email);
        assert_eq!(found.len(), 1, "profiles with {email}: {found:?}");
        found[0]["id"].as_str().unwrap().to_string()
    }

    /// Wait (at most 5 s) until the emulator has answered every request it received. Requests
    /// whose client went away may never be answered (their handler is dropped); they are
    /// waited for only up to the limit.
    pub async fn settle(&self) {
        for _ in 0..200 {
            let busy = self.requests().iter().any(|r| {
                r.status.is_none()
                    && !matches!(r.fault, Some(gladly_emulator::Fault::DropBeforeApply | gladly_emulator::Fault::DropAfterApply))
            });
            if !busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A raw request to the emulator as the API user (e.g. an agent deleting a profile).
    pub fn raw(&self, method: &str, path: &str) -> u16 {
        raw_request(&self.emulator.base_url(), method, path)
    }
}

fn parse_job(dir: &Path, spec: &JobSpec, endpoint: &str) -> JobConfig {
    let text = job_toml(dir, spec, endpoint);
    std::fs::write(dir.join("job.toml"), &text).unwrap();
    toml::from_str::<JobConfig>(&text).unwrap()
}

/// One HTTP/1.1 request with Basic auth and the organization's Host header; returns the status.
pub fn raw_request(base_url: &str, method: &str, path: &str) -> u16 {
    use base64::Engine;
    let addr = base_url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{TOKEN}"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {ORG}.gladly.com\r\nAuthorization: Basic {auth}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// The normalized emails of a stored profile.
pub fn emails(p: &Value) -> Vec<String> {
    p["emails"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["normalized"].as_str().or(e["original"].as_str()))
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

/// The profiles holding `email`.
pub fn profiles_with_email<'a>(profiles: &'a [Value], email: &str) -> Vec<&'a Value> {
    let email = email.to_ascii_lowercase();
    profiles.iter().filter(|p| emails(p).contains(&email)).collect()
}

/// Every row has exactly one profile, and no profile holds an email twice across profiles.
pub fn assert_exactly_once(profiles: &[Value], rows: &[Person]) {
    let mut owners: HashMap<String, usize> = HashMap::new();
    for p in profiles {
        for e in emails(p) {
            *owners.entry(e).or_default() += 1;
        }
    }
    let dup: Vec<_> = owners.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dup.is_empty(), "emails held by more than one profile: {dup:?}");
    let missing: Vec<&str> = rows
        .iter()
        .filter(|r| !owners.contains_key(&r.email.to_ascii_lowercase()))
        .map(|r| r.id.as_str())
        .collect();
    assert!(missing.is_empty(), "rows without a profile: {missing:?}");
}

/// Whether a recorded request is a find (`GET /customer-profiles?…`).
pub fn is_find(r: &RecordedRequest) -> bool {
    r.method == "GET" && r.path.starts_with("/api/v1/customer-profiles?")
}

/// Whether a recorded request writes (POST, PATCH, PUT, DELETE).
pub fn is_write(r: &RecordedRequest) -> bool {
    matches!(r.method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE")
}

/// `METHOD path` lines, for failure messages.
pub fn summary(reqs: &[RecordedRequest]) -> Vec<String> {
    reqs.iter().map(|r| format!("{} {} -> {:?}", r.method, r.path, r.status)).collect()
}
