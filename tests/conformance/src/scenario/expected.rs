//! `expected.json`: what a scenario must produce (per run: counts, failures, requests; the
//! profiles after), and the checks of a run against it.

use std::collections::BTreeMap;

use gladly_emulator::RecordedRequest;
use host_harness::sync::report::RunReport;
use serde::Deserialize;
use serde_json::Value;
use test_kit::profiles;

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
    /// The request that arrives next after each 429 comes at least this many milliseconds
    /// after it (read from the emulator's arrival times).
    #[serde(default)]
    pub wait_after_429_ms: Option<u64>,
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
    /// Phones, any order, nothing more: a hand-written E.164 string compared with the phone's
    /// stored `original` (what the component sent), or an object whose fields must match. Never
    /// the emulator's `normalized`: it comes from the same phone crate as the component's, so a
    /// wrong normalization would agree with itself.
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

/// Each 429 whose next request (by arrival) came sooner than `least` after it.
fn waits_after_429(requests: &[RecordedRequest], least: std::time::Duration) -> Vec<String> {
    let mut by_arrival: Vec<&RecordedRequest> = requests.iter().collect();
    by_arrival.sort_by_key(|r| r.at);
    by_arrival
        .windows(2)
        .filter(|w| w[0].status == Some(429) && w[1].at - w[0].at < least)
        .map(|w| format!("request {} came {:?} after the 429 of request {}, expected at least {least:?}", w[1].ordinal, w[1].at - w[0].at, w[0].ordinal))
        .collect()
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
    if let Some(least) = exp.wait_after_429_ms {
        problems.extend(waits_after_429(requests, std::time::Duration::from_millis(least)).into_iter().map(|p| format!("{label}: {p}")));
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
                    Value::String(s) => h["original"].as_str() == Some(s.as_str()),
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

