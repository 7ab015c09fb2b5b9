//! Data-driven scenarios: one folder per case under `tests/conformance/scenarios/`.
//!
//! | file | what |
//! |---|---|
//! | `job.toml` | `mode`, `[mapping]`, `[settings]` (destination settings over `domain = "acme"` and the emulator's user), `[types]` (source type hints), `[limits]` (over the suite's quick limits), optional `sync_id`, `primary_key`, `username`, `token`, `rate_limit_per_second` |
//! | `rows.csv` or `rows.jsonl` | the source |
//! | `seed.json` | optional: profiles inserted into organization `acme` first |
//! | `emulator.json` | optional: `rate_limit_per_second` (default 200), `seed`, `switches`, `faults`, `users`, `merges` |
//! | `expected.json` | what must come out: see [`Expected`] |
//!
//! Besides what `expected.json` lists, every scenario must keep every invariant of
//! [`crate::checks::all`] (bodies valid against the schemas, no retried 400, the rate, no
//! duplicate profile, no lost email or phone, the right Host and credentials).
//!
//! - [`files`]: the format of `job.toml` and `emulator.json`, and what they become;
//! - [`expected`]: the format of `expected.json`, and the checks of a run against it.

mod expected;
mod files;

pub use expected::*;
pub use files::*;

use std::path::{Path, PathBuf};

use gladly_emulator::RecordedRequest;
use serde_json::Value;
use toml::Table;

use crate::checks;
use crate::job::{JobSpec, Rows, quick_limits};
use crate::session::Session;

/// The scenarios folder.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// Every scenario folder's name, sorted.
pub fn scenario_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(scenarios_dir())
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().join("expected.json").is_file())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A loaded scenario.
#[derive(Debug)]
pub struct Scenario {
    /// Folder name.
    pub name: String,
    /// `job.toml`.
    pub job: ScenarioJob,
    /// Rows.
    pub rows: Rows,
    /// `seed.json`.
    pub seed: Vec<Value>,
    /// `emulator.json`.
    pub emulator: EmulatorSpec,
    /// `expected.json`.
    pub expected: Expected,
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    serde_json::from_slice(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl Scenario {
    /// Loads `tests/conformance/scenarios/<name>`.
    pub fn load(name: &str) -> Scenario {
        let dir = scenarios_dir().join(name);
        assert!(dir.is_dir(), "no scenario folder {}", dir.display());
        let job_text = String::from_utf8(read(&dir.join("job.toml"))).expect("job.toml is UTF-8");
        let job: ScenarioJob = toml::from_str(&job_text).unwrap_or_else(|e| panic!("{name}/job.toml: {e}"));
        let rows = if dir.join("rows.csv").is_file() {
            Rows::Csv(read(&dir.join("rows.csv")))
        } else if dir.join("rows.jsonl").is_file() {
            Rows::Jsonl(String::from_utf8(read(&dir.join("rows.jsonl"))).expect("rows.jsonl is UTF-8"))
        } else {
            panic!("{name} has neither rows.csv nor rows.jsonl");
        };
        let seed = if dir.join("seed.json").is_file() { read_json(&dir.join("seed.json")) } else { Vec::new() };
        let emulator = if dir.join("emulator.json").is_file() { read_json(&dir.join("emulator.json")) } else { EmulatorSpec::default() };
        let expected = read_json(&dir.join("expected.json"));
        Scenario { name: name.to_string(), job, rows, seed, emulator, expected }
    }

    /// The job spec.
    pub fn spec(&self) -> JobSpec {
        let j = &self.job;
        let mut spec = JobSpec::new(&j.mode).rows(self.rows.clone());
        spec.sync_id = j.sync_id.clone().unwrap_or_else(|| "conformance".into());
        if let Some(k) = &j.primary_key {
            spec.primary_key = k.clone();
        }
        if let Some(u) = &j.username {
            spec = spec.setting("username", u.as_str());
        }
        if let Some(t) = &j.token {
            spec.token = t.clone();
        }
        spec.rate_limit_per_second =
            Some(j.rate_limit_per_second.unwrap_or(self.emulator.rate_limit_per_second.unwrap_or(200)));
        for (k, v) in &j.settings {
            spec = spec.setting(k, v.clone());
        }
        for (k, v) in &j.mapping {
            let target = v.as_str().unwrap_or_else(|| panic!("{}: mapping {k} must be a string", self.name));
            spec = spec.map(k, target);
        }
        for (k, v) in &j.types {
            spec = spec.typed(k, v.as_str().unwrap_or_else(|| panic!("{}: type of {k} must be a string", self.name)));
        }
        spec
    }

    /// The `[limits]` table.
    pub fn limits(&self) -> Table {
        let mut limits = quick_limits();
        for (k, v) in &self.job.limits {
            limits.insert(k.clone(), v.clone());
        }
        limits
    }
}

/// Loads and runs a scenario; panics listing every mismatch and broken invariant.
pub async fn run(name: &str) {
    let sc = Scenario::load(name);
    let session = Session::with_limits(sc.emulator.config(), sc.limits()).await;
    for p in &sc.seed {
        session.seed(p.clone());
    }
    for [from, into] in &sc.emulator.merges {
        session.emulator.merge_profiles(crate::ORG, from, into);
    }
    let before = session.profiles();
    let job = session.job(&sc.spec());
    let mut problems: Vec<String> = Vec::new();
    let mut transcript = Vec::new();

    match (&sc.expected.config_error, session.run(&job).await) {
        (Some(parts), Err(e)) => {
            let msg = e.to_string();
            for p in parts {
                if !msg.contains(p.as_str()) {
                    problems.push(format!("the configuration error does not mention {p:?}: {msg}"));
                }
            }
        }
        (Some(_), Ok(r)) => problems.push(format!("expected a configuration error, the run went ahead: {}", r.summary())),
        (None, Err(e)) => problems.push(format!("the run failed as a whole: {e}")),
        (None, Ok(report)) => {
            let seen = session.requests();
            transcript.push(report.summary());
            check_run("run 1", &sc.expected.run, &report, &seen, &mut problems);
            if let Some(rerun) = &sc.expected.rerun {
                let first = seen.len();
                match session.run(&job).await {
                    Ok(report) => {
                        let all = session.requests();
                        transcript.push(report.summary());
                        check_run("run 2", rerun, &report, all.get(first..).unwrap_or(&[]), &mut problems);
                    }
                    Err(e) => problems.push(format!("run 2 failed as a whole: {e}")),
                }
            }
        }
    }
    if sc.expected.config_error.is_some() && !session.requests().is_empty() {
        problems.push(format!("{} request(s) were sent for an invalid job", session.requests().len()));
    }

    let after = session.profiles();
    check_profiles(&sc.expected, &after, &mut problems);
    let requests = session.requests();
    let host = sc.expected.host.clone().unwrap_or_else(|| "acme.gladly.com".into());
    let limit = sc.emulator.rate_limit_per_second.unwrap_or(200);
    problems.extend(checks::all(&checks::Context { requests: &requests, before: &before, after: &after, limit, host: &host }));

    if !problems.is_empty() {
        panic!(
            "scenario {name} failed ({} problem(s)):\n  {}\n\nrun summaries:\n{}\n\nrequests:\n{}\n\nfinal profiles:\n{}",
            problems.len(),
            problems.join("\n  "),
            transcript.join("\n---\n"),
            requests.iter().map(brief).collect::<Vec<_>>().join("\n"),
            serde_json::to_string_pretty(&after).unwrap_or_default()
        );
    }
}

fn brief(r: &RecordedRequest) -> String {
    let body = r.body.as_ref().map(|b| {
        let s = b.to_string();
        if s.len() > 300 { format!("{}…", &s[..s.floor_char_boundary(300)]) } else { s }
    });
    format!(
        "  #{} {:>5}ms {} {} -> {:?}{} {}",
        r.ordinal,
        r.at.as_millis(),
        r.method,
        r.path,
        r.status,
        r.fault.as_ref().map(|f| format!(" [fault {f:?}]")).unwrap_or_default(),
        body.unwrap_or_default()
    )
}

