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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gladly_emulator::{
    CustomAttributesPatch, EmulatorConfig, ErrorsShape, Fault, FaultRule, Method, RecordedRequest,
    Switches, User,
};
use host_harness::sync::report::RunReport;
use serde::Deserialize;
use serde_json::Value;
use toml::Table;

use crate::checks;
use crate::job::{JobSpec, Rows, quick_limits};
use test_kit::profiles;
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

/// `job.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioJob {
    /// What the scenario shows (documentation only).
    #[serde(default)]
    pub description: Option<String>,
    /// Sync mode.
    pub mode: String,
    /// Sync id (default `conformance`).
    #[serde(default)]
    pub sync_id: Option<String>,
    /// Key column (default `id`).
    #[serde(default)]
    pub primary_key: Option<String>,
    /// Basic username (default the emulator's user).
    #[serde(default)]
    pub username: Option<String>,
    /// API token (default the emulator's token).
    #[serde(default)]
    pub token: Option<String>,
    /// Host-side rate (default: the emulator's).
    #[serde(default)]
    pub rate_limit_per_second: Option<u32>,
    /// Destination settings.
    #[serde(default)]
    pub settings: Table,
    /// Column → target, in file order.
    #[serde(default)]
    pub mapping: Table,
    /// Source type hints.
    #[serde(default)]
    pub types: Table,
    /// Limits over the quick defaults.
    #[serde(default)]
    pub limits: Table,
}

/// `emulator.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmulatorSpec {
    /// Requests per second per organization (default 200).
    #[serde(default)]
    pub rate_limit_per_second: Option<u32>,
    /// Seed of fault draws and generated ids.
    #[serde(default)]
    pub seed: u64,
    /// Switches.
    #[serde(default)]
    pub switches: SwitchSpec,
    /// Fault rules.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Users (replace the default user when given).
    #[serde(default)]
    pub users: Option<Vec<UserSpec>>,
    /// Merges performed after seeding, before the run: `[from_id, into_id]` pairs (as an agent
    /// merging two profiles between two syncs).
    #[serde(default)]
    pub merges: Vec<[String; 2]>,
}

/// The undocumented-behaviour switches.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchSpec {
    /// `merge` (default) or `replace`.
    #[serde(default)]
    pub custom_attributes_patch: Option<String>,
    /// `array` (default) or `object`.
    #[serde(default)]
    pub errors_shape: Option<String>,
    /// Search-index lag of a create, in milliseconds.
    #[serde(default)]
    pub index_lag_ms: u64,
    /// Whether 429s carry `Retry-After`.
    #[serde(default)]
    pub retry_after_on_429: bool,
}

/// One fault rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// `status429`, `status5xx`, `slow`, `drop_before_apply`, `drop_after_apply`, `malformed_body`.
    pub fault: String,
    /// For `status5xx`.
    #[serde(default)]
    pub status: Option<u16>,
    /// For `slow`: milliseconds.
    #[serde(default)]
    pub ms: Option<u64>,
    /// Fire with this probability.
    #[serde(default)]
    pub probability: Option<f64>,
    /// Or on these 1-based positions among matching requests.
    #[serde(default)]
    pub on_requests: Option<Vec<u64>>,
    /// Only this method.
    #[serde(default)]
    pub method: Option<String>,
    /// Only paths starting with this.
    #[serde(default)]
    pub path_prefix: Option<String>,
}

/// One emulator user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// Basic username.
    pub email: String,
    /// Token.
    pub token: String,
    /// Whether the user has the API User permission (default true).
    #[serde(default = "yes")]
    pub api_permission: bool,
}

fn yes() -> bool {
    true
}

impl EmulatorSpec {
    /// The emulator configuration.
    pub fn config(&self) -> EmulatorConfig {
        let mut c = EmulatorConfig {
            rate_limit_per_second: self.rate_limit_per_second.unwrap_or(200),
            seed: self.seed,
            ..EmulatorConfig::default()
        };
        c.switches = Switches {
            custom_attributes_patch: match self.switches.custom_attributes_patch.as_deref() {
                None | Some("merge") => CustomAttributesPatch::Merge,
                Some("replace") => CustomAttributesPatch::Replace,
                Some(o) => panic!("custom_attributes_patch: merge or replace, not {o}"),
            },
            errors_shape: match self.switches.errors_shape.as_deref() {
                None | Some("array") => ErrorsShape::Array,
                Some("object") => ErrorsShape::Object,
                Some(o) => panic!("errors_shape: array or object, not {o}"),
            },
            index_lag: Duration::from_millis(self.switches.index_lag_ms),
            retry_after_on_429: self.switches.retry_after_on_429,
        };
        c.faults = self.faults.iter().map(FaultSpec::rule).collect();
        if let Some(users) = &self.users {
            c.users = users
                .iter()
                .map(|u| {
                    let user = User::new(u.email.clone(), u.token.clone());
                    if u.api_permission { user } else { user.without_api_permission() }
                })
                .collect();
        }
        c
    }
}

impl FaultSpec {
    /// The emulator rule.
    pub fn rule(&self) -> FaultRule {
        let fault = match self.fault.as_str() {
            "status429" => Fault::Status429,
            "status5xx" => Fault::Status5xx(self.status.unwrap_or(503)),
            "slow" => Fault::Slow(Duration::from_millis(self.ms.expect("a slow fault needs ms"))),
            "drop_before_apply" => Fault::DropBeforeApply,
            "drop_after_apply" => Fault::DropAfterApply,
            "malformed_body" => Fault::MalformedBody,
            other => panic!("unknown fault {other}"),
        };
        let mut rule = match (&self.probability, &self.on_requests) {
            (Some(p), None) => FaultRule::probability(fault, *p),
            (None, Some(list)) => FaultRule::on_requests(fault, list.clone()),
            _ => panic!("a fault needs exactly one of probability or on_requests"),
        };
        if let Some(m) = &self.method {
            rule = rule.method(Method::from_bytes(m.as_bytes()).expect("an HTTP method"));
        }
        if let Some(p) = &self.path_prefix {
            rule = rule.path_prefix(p.clone());
        }
        rule
    }
}

/// `expected.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// What the scenario shows (documentation only).
    #[serde(default)]
    pub description: Option<String>,
    /// The job must be refused before any request, with a message holding each of these.
    #[serde(default)]
    pub config_error: Option<Vec<String>>,
    /// The first run.
    #[serde(flatten)]
    pub run: ExpectedRun,
    /// A second run with the same rows and state, right after the first.
    #[serde(default)]
    pub rerun: Option<ExpectedRun>,
    /// Number of profiles in `acme` at the end.
    #[serde(default)]
    pub profile_count: Option<usize>,
    /// Profiles at the end, by one of their emails.
    #[serde(default)]
    pub profiles: BTreeMap<String, ExpectedProfile>,
    /// Expected `Host` of every request (default `acme.gladly.com`).
    #[serde(default)]
    pub host: Option<String>,
}

/// What one run must report.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedRun {
    /// Report counts (`rows`, `invalid`, `created`, `updated`, `confirmed_unchanged`,
    /// `unchanged`, `failed`, `skipped`, `retry_attempts`…); only the listed ones are checked.
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// Failures by row key; no other key may fail unless `other_failures_allowed`.
    #[serde(default)]
    pub failures: BTreeMap<String, ExpectedFailure>,
    /// Whether failures not listed are tolerated.
    #[serde(default)]
    pub other_failures_allowed: bool,
    /// The run must stop early with a reason holding each of these (else it must not stop).
    #[serde(default)]
    pub aborted: Option<Vec<String>>,
    /// Requests the emulator saw during this run.
    #[serde(default)]
    pub requests: Option<ExpectedRequests>,
    /// The report's `throttled` (429s seen).
    #[serde(default)]
    pub throttled: Option<u64>,
}

/// One expected failure.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFailure {
    /// Stable code (`invalid-value`, `conflict`…).
    pub code: String,
    /// `field` of the error (column, target or config key).
    #[serde(default)]
    pub field: Option<String>,
    /// HTTP status.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// Substrings of the message (row key, column, fix…).
    #[serde(default)]
    pub contains: Vec<String>,
    /// A Gladly error code among `api_errors`.
    #[serde(default)]
    pub api_code: Option<String>,
    /// Attempts made in the run.
    #[serde(default)]
    pub attempts: Option<u32>,
    /// Whether it is retried next run.
    #[serde(default)]
    pub retried_next_run: Option<bool>,
}

/// Request counts of one run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedRequests {
    /// Exactly this many.
    #[serde(default)]
    pub total: Option<usize>,
    /// At most this many.
    #[serde(default)]
    pub max: Option<usize>,
    /// Exactly this many per method.
    #[serde(default)]
    pub by_method: BTreeMap<String, usize>,
    /// Exactly this many requests whose path and query hold the substring.
    #[serde(default)]
    pub by_path: BTreeMap<String, usize>,
}

/// One expected profile (only the listed fields are checked).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedProfile {
    /// Exact id.
    #[serde(default)]
    pub id: Option<String>,
    /// Id prefix (`retl-` for ids this destination minted).
    #[serde(default)]
    pub id_prefix: Option<String>,
    /// Email `original`s, any order, nothing more.
    #[serde(default)]
    pub emails: Option<Vec<String>>,
    /// The `original` of the primary email.
    #[serde(default)]
    pub primary_email: Option<String>,
    /// Phones, any order, nothing more: an E.164 string, or an object whose fields must match.
    #[serde(default)]
    pub phones: Option<Vec<Value>>,
    /// Top-level fields that must equal these values (`name`, `address`, `image`,
    /// `externalCustomerId`, `customAttributes`…).
    #[serde(default)]
    pub fields: serde_json::Map<String, Value>,
    /// Top-level fields that must be absent.
    #[serde(default)]
    pub absent: Vec<String>,
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

/// Compares one run's report and requests with its expectations.
pub fn check_run(label: &str, exp: &ExpectedRun, report: &RunReport, requests: &[RecordedRequest], problems: &mut Vec<String>) {
    let counts = serde_json::to_value(&report.counts).unwrap_or(Value::Null);
    for (k, want) in &exp.counts {
        match counts.get(k).and_then(Value::as_u64) {
            Some(got) if got == *want => {}
            got => problems.push(format!("{label}: count {k} is {got:?}, expected {want}")),
        }
    }
    for (key, want) in &exp.failures {
        let mine: Vec<_> = report.failures.iter().filter(|f| f.key == *key).collect();
        if mine.is_empty() {
            problems.push(format!("{label}: row {key} was expected to fail with {}, it did not", want.code));
            continue;
        }
        let ok = |f: &&host_harness::sync::report::FailedRecord| failure_mismatch(want, f).is_empty();
        if !mine.iter().any(ok) {
            for f in &mine {
                problems.push(format!("{label}: row {key}: {}", failure_mismatch(want, f).join("; ")));
            }
        }
    }
    if !exp.other_failures_allowed {
        for f in &report.failures {
            if !exp.failures.contains_key(&f.key) {
                problems.push(format!("{label}: unexpected failure of row {}: {} {}", f.key, f.code.label(), f.message));
            }
        }
    }
    match (&exp.aborted, &report.aborted) {
        (None, Some(a)) => problems.push(format!("{label}: the run stopped early: {a}")),
        (Some(_), None) => problems.push(format!("{label}: the run was expected to stop early")),
        (Some(parts), Some(a)) => {
            for p in parts {
                if !a.contains(p.as_str()) {
                    problems.push(format!("{label}: the stop reason does not mention {p:?}: {a}"));
                }
            }
        }
        (None, None) => {}
    }
    if let Some(t) = exp.throttled
        && report.throttled != t
    {
        problems.push(format!("{label}: {} 429s seen, expected {t}", report.throttled));
    }
    if let Some(want) = &exp.requests {
        if let Some(t) = want.total
            && requests.len() != t
        {
            problems.push(format!("{label}: {} requests, expected {t}", requests.len()));
        }
        if let Some(m) = want.max
            && requests.len() > m
        {
            problems.push(format!("{label}: {} requests, expected at most {m}", requests.len()));
        }
        for (method, n) in &want.by_method {
            let got = requests.iter().filter(|r| r.method == *method).count();
            if got != *n {
                problems.push(format!("{label}: {got} {method} requests, expected {n}"));
            }
        }
        for (part, n) in &want.by_path {
            let got = requests.iter().filter(|r| r.path.contains(part.as_str())).count();
            if got != *n {
                problems.push(format!("{label}: {got} requests to a path holding {part:?}, expected {n}"));
            }
        }
    }
}

fn failure_mismatch(want: &ExpectedFailure, f: &host_harness::sync::report::FailedRecord) -> Vec<String> {
    let mut out = Vec::new();
    if f.code.label() != want.code {
        out.push(format!("code {} instead of {}", f.code.label(), want.code));
    }
    if let Some(field) = &want.field
        && f.field.as_deref() != Some(field.as_str())
    {
        out.push(format!("field {:?} instead of {field}", f.field));
    }
    if let Some(s) = want.http_status
        && f.http_status != Some(s)
    {
        out.push(format!("HTTP status {:?} instead of {s}", f.http_status));
    }
    for part in &want.contains {
        if !f.message.contains(part.as_str()) {
            out.push(format!("message does not mention {part:?}"));
        }
    }
    if let Some(code) = &want.api_code
        && !f.api_errors.iter().any(|a| a.code.as_deref() == Some(code.as_str()))
    {
        out.push(format!("no Gladly error {code} in {:?}", f.api_errors));
    }
    if let Some(a) = want.attempts
        && f.attempts != a
    {
        out.push(format!("{} attempts instead of {a}", f.attempts));
    }
    if let Some(r) = want.retried_next_run
        && f.retried_next_run != r
    {
        out.push(format!("retried_next_run {} instead of {r}", f.retried_next_run));
    }
    if !out.is_empty() {
        out.push(format!("(message: {})", f.message));
    }
    out
}

/// Compares the final profiles with the expectations.
pub fn check_profiles(exp: &Expected, after: &[Value], problems: &mut Vec<String>) {
    if let Some(n) = exp.profile_count
        && after.len() != n
    {
        problems.push(format!("{} profiles at the end, expected {n}", after.len()));
    }
    for (email, want) in &exp.profiles {
        let hits = profiles::with_email(after, email);
        let [p] = hits.as_slice() else {
            problems.push(format!("{} profiles hold {email}, expected 1", hits.len()));
            continue;
        };
        let mut bad = |m: String| problems.push(format!("profile of {email}: {m}"));
        if let Some(id) = &want.id
            && profiles::id(p) != id
        {
            bad(format!("id {} instead of {id}", profiles::id(p)));
        }
        if let Some(prefix) = &want.id_prefix
            && !profiles::id(p).starts_with(prefix.as_str())
        {
            bad(format!("id {} does not start with {prefix}", profiles::id(p)));
        }
        if let Some(emails) = &want.emails {
            let mut got = profiles::email_originals(p);
            let mut want_sorted = emails.clone();
            got.sort();
            want_sorted.sort();
            if got != want_sorted {
                bad(format!("emails {got:?} instead of {want_sorted:?}"));
            }
        }
        if let Some(primary) = &want.primary_email {
            let prim: Vec<&str> = p["emails"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["primary"] == Value::Bool(true))
                .filter_map(|e| e["original"].as_str())
                .collect();
            if prim != [primary.as_str()] {
                bad(format!("primary email {prim:?} instead of {primary}"));
            }
        }
        if let Some(phones) = &want.phones {
            let have: Vec<Value> = p["phones"].as_array().cloned().unwrap_or_default();
            if have.len() != phones.len() {
                bad(format!("{} phones instead of {}: {have:?}", have.len(), phones.len()));
            }
            for w in phones {
                let matches = |h: &Value| match w {
                    Value::String(s) => h["normalized"].as_str() == Some(s.as_str()),
                    Value::Object(o) => o.iter().all(|(k, v)| h.get(k) == Some(v)),
                    _ => false,
                };
                if !have.iter().any(matches) {
                    bad(format!("no phone matches {w}: {have:?}"));
                }
            }
        }
        for (k, v) in &want.fields {
            if p.get(k) != Some(v) {
                let got = p.get(k).map(|g| {
                    let s = g.to_string();
                    if s.len() > 200 { format!("{}…", &s[..s.floor_char_boundary(200)]) } else { s }
                });
                bad(format!("{k} is {got:?}, expected {v}"));
            }
        }
        for k in &want.absent {
            if let Some(v) = p.get(k) {
                bad(format!("{k} should be absent, is {v}"));
            }
        }
    }
}
