//! The incremental-sync tests' fixture: a temporary folder with a CSV source of generated
//! customers and a job file, an in-process Gladly emulator and a harness, and assertions over
//! what the emulator holds and saw. The parts every test crate shares (folders, job files,
//! components, profiles, the HTTP client) come from the test kit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use std::sync::Mutex;
use std::time::Duration;

use gladly_emulator::{Emulator, EmulatorConfig, RecordedRequest};
use host_harness::job::JobConfig;
use host_harness::state::{RecordState, State};
use host_harness::sync::report::RunReport;
use host_harness::sync::{Harness, RunOptions};
use serde_json::Value;
use test_kit::http::Client;
use test_kit::profiles::{emails, with_email};
use test_kit::{Job, TempDir, destination};

/// The organization every fixture writes to (`acme.gladly.com`).
pub const ORG: &str = "acme";
/// The emulator's API user and token.
pub const USER: &str = gladly_emulator::DEFAULT_USER;
/// The emulator's API token.
pub const TOKEN: &str = gladly_emulator::DEFAULT_TOKEN;

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

/// What a job file is built from (fields the tests change between runs).
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
    /// An upsert of name, email and tier at 200 requests/s with quick backoff.
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

/// The job file of `spec` for the folder `dir` (source `rows.csv`, state `state/`).
pub fn job(dir: &Path, spec: &JobSpec, endpoint: &str) -> Job {
    let mut job = Job::new(&spec.sync_id, &destination(), dir)
        .state_dir(dir.join("state"))
        .mode(spec.mode)
        .csv(&dir.join("rows.csv"), "id")
        .set("domain", ORG)
        .set("username", USER)
        .token_file(&dir.join(&spec.token_file))
        .policy(r#"allow_hosts = ["*.gladly.com"]"#)
        .policy(&format!("rate_limit_per_second = {}", spec.rate_limit))
        .policy(&format!("endpoint = {}", test_kit::q(endpoint)));
    for (column, target) in &spec.mapping {
        job = job.map(column, target);
    }
    for line in &spec.limits {
        job = job.limit(line);
    }
    job
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
        std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
        std::fs::write(dir.join("wrong-token"), "not-the-token\n").unwrap();
        write_csv(&dir.join("rows.csv"), &rows);
        let emulator = Emulator::start(emulator).await.unwrap();
        let job = parse_job(dir.path(), &spec, &emulator.base_url());
        let harness = Harness::for_job(&job).unwrap();
        {
            let _guard = LOAD.lock().unwrap_or_else(|p| p.into_inner());
            harness.plugin(&job.sync.component).unwrap();
        }
        Fixture { dir, emulator, harness, spec, job, rows }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `destination-host sync` of this fixture's job as a process of its own, its report in
    /// `report.json` and its stderr in `stderr.log`.
    pub fn sync_command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(test_kit::components::destination_host());
        c.arg("sync").arg("--config").arg(self.path("job.toml")).arg("--report").arg(self.path("report.json"));
        c.stdout(std::process::Stdio::null());
        c.stderr(std::fs::File::create(self.path("stderr.log")).unwrap());
        c
    }

    /// Start [`Fixture::sync_command`] and SIGKILL it once the emulator has seen `requests`
    /// requests; `Some(status)` when the run ended on its own before that.
    pub async fn sync_killed_after(&self, requests: usize) -> Option<std::process::ExitStatus> {
        let mut child = self.sync_command().spawn().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if self.requests().len() >= requests {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Replace the job (e.g. a new mapping); the harness and its loaded plugin stay.
    pub fn set_job(&mut self, spec: JobSpec) {
        self.job = parse_job(self.dir.path(), &spec, &self.emulator.base_url());
        self.spec = spec;
    }

    /// Rewrite the source.
    pub fn set_rows(&mut self, rows: Vec<Person>) {
        write_csv(&self.dir.join("rows.csv"), &rows);
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
        state.sync(&self.job.sync.id).get_many(&keys).unwrap()
    }

    /// The Gladly id of the live profile holding `email`.
    pub fn id_of(&self, email: &str) -> String {
        let profiles = self.profiles();
        let found = with_email(&profiles, email);
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

    /// A request to the emulator as the API user (e.g. an agent deleting a profile); returns
    /// the status.
    pub async fn raw(&self, method: &str, path: &str) -> u16 {
        Client::new(&self.emulator).send(method, path, None).await.status
    }
}

fn parse_job(dir: &Path, spec: &JobSpec, endpoint: &str) -> JobConfig {
    let job = job(dir, spec, endpoint);
    job.write(dir.join("job.toml"));
    job.config()
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

/// `METHOD path` lines, for failure messages.
pub fn summary(reqs: &[RecordedRequest]) -> Vec<String> {
    reqs.iter().map(|r| format!("{} {} -> {:?}", r.method, r.path, r.status)).collect()
}
