//! The invariants every run must keep, whatever the scenario. Each returns the violations it
//! found (empty = kept), so a test can report all of them at once.

use std::collections::{BTreeMap, HashMap};

use gladly_emulator::{RecordedRequest, validate_create_body, validate_update_body};
use serde_json::Value;

use test_kit::PROFILES;
use test_kit::profiles;

fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

fn describe(r: &RecordedRequest) -> String {
    format!("#{} {} {} -> {:?}", r.ordinal, r.method, r.path, r.status)
}

/// Every create and update body the component sent validates against the project's JSON
/// Schemas (`tests/conformance/schemas/*.json`); every request stays under `/api/v1/` and uses GET, POST or
/// PATCH (the destination never deletes).
pub fn schema_violations(requests: &[RecordedRequest]) -> Vec<String> {
    let mut out = Vec::new();
    for r in requests {
        let path = path_only(&r.path);
        if !path.starts_with("/api/v1/") {
            out.push(format!("{}: not a Gladly API path (/api/v1/…)", describe(r)));
        }
        let check = match (r.method.as_str(), path) {
            ("POST", p) if p == PROFILES => Some(("create", validate_create_body as fn(&Value) -> _)),
            ("PATCH", p) if p.starts_with(&format!("{PROFILES}/")) => Some(("update", validate_update_body as fn(&Value) -> _)),
            ("GET", _) => None,
            ("POST", _) | ("PATCH", _) => {
                out.push(format!("{}: no such write operation in Gladly's customer-profile API", describe(r)));
                None
            }
            _ => {
                out.push(format!("{}: the destination only reads, creates and updates", describe(r)));
                None
            }
        };
        if let Some((what, validate)) = check {
            match &r.body {
                None => out.push(format!("{}: the {what} body is not JSON", describe(r))),
                Some(body) => {
                    if let Err(errors) = validate(body) {
                        out.push(format!("{}: the {what} body breaks the schema: {errors:?}; body {body}", describe(r)));
                    }
                }
            }
        }
    }
    out
}

/// A request answered 400 is never sent again (same method, path and body).
pub fn retried_400s(requests: &[RecordedRequest]) -> Vec<String> {
    let mut groups: HashMap<(String, String, String), Vec<&RecordedRequest>> = HashMap::new();
    for r in requests {
        let body = r.body.as_ref().map(Value::to_string).unwrap_or_default();
        groups.entry((r.method.clone(), r.path.clone(), body)).or_default().push(r);
    }
    let mut out: Vec<String> = groups
        .values()
        .filter(|g| g.len() > 1 && g.iter().any(|r| r.status == Some(400)))
        .map(|g| format!("{} was answered 400 and still sent {} times", describe(g[0]), g.len()))
        .collect();
    out.sort();
    out
}

/// The most requests each organization received within one sliding second, read from the
/// emulator's arrival times: the largest count in any window `[t, t + 1 s − ARRIVAL_JITTER)`.
/// The allowance is [`test_kit::rate::ARRIVAL_JITTER`] (150 ms): a request the loaded machine
/// delivered late makes the next ones look closer together than the host sent them. Sliding,
/// not the emulator's own windows, so the check holds whatever shape and phase its limiter has.
pub fn busiest_second(requests: &[RecordedRequest]) -> BTreeMap<String, usize> {
    let mut arrivals: BTreeMap<String, Vec<std::time::Duration>> = BTreeMap::new();
    for r in requests {
        arrivals.entry(r.org.clone()).or_default().push(r.at);
    }
    let width = std::time::Duration::from_secs(1) - test_kit::rate::ARRIVAL_JITTER;
    arrivals.into_iter().map(|(org, times)| (org, test_kit::rate::max_in_window(&times, width))).collect()
}

/// No organization ever got more than `limit` requests within one sliding second (see
/// [`busiest_second`]), and no 429 was caused by the client (injected 429s are not its doing).
pub fn rate_violations(requests: &[RecordedRequest], limit: u32) -> Vec<String> {
    let mut out: Vec<String> = busiest_second(requests)
        .into_iter()
        .filter(|(_, n)| *n > limit as usize)
        .map(|(org, n)| format!("org {org} got {n} requests within one second (limit {limit})"))
        .collect();
    out.extend(
        requests
            .iter()
            .filter(|r| r.status == Some(429) && r.fault.is_none())
            .map(|r| format!("{}: a 429 the client caused by going over the rate", describe(r))),
    );
    out
}

/// No email is held by more profiles after the runs than before them (seeds may hold
/// deliberate duplicates; the destination must never add one).
pub fn duplicate_profiles(before: &[Value], after: &[Value]) -> Vec<String> {
    let owners = |list: &[Value]| {
        let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in list {
            for e in profiles::emails(p) {
                owners.entry(e).or_default().push(profiles::id(p).to_string());
            }
        }
        owners
    };
    let old = owners(before);
    owners(after)
        .into_iter()
        .filter(|(e, ids)| ids.len() > old.get(e).map_or(1, |o| o.len().max(1)))
        .map(|(e, ids)| format!("{e} is held by {} profiles: {}", ids.len(), ids.join(", ")))
        .collect()
}

/// Every profile of `before` still exists (by id) with all of its emails and phones.
pub fn dropped_contacts(before: &[Value], after: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for old in before {
        let id = profiles::id(old);
        let Some(new) = after.iter().find(|p| profiles::id(p) == id) else {
            out.push(format!("profile {id} disappeared"));
            continue;
        };
        let (new_emails, new_phones) = (profiles::emails(new), profiles::phones(new));
        for e in profiles::emails(old) {
            if !new_emails.contains(&e) {
                out.push(format!("profile {id} lost its email {e} (now {new_emails:?})"));
            }
        }
        for p in profiles::phones(old) {
            if !new_phones.contains(&p) {
                out.push(format!("profile {id} lost its phone {p} (now {new_phones:?})"));
            }
        }
    }
    out
}

/// Every request went to `host` (the real Gladly host kept in `Host`), carried the host-attached
/// Basic credentials, asked for JSON, and declared JSON when it had a body.
pub fn header_violations(requests: &[RecordedRequest], host: &str) -> Vec<String> {
    let mut out = Vec::new();
    for r in requests {
        if r.header("host") != Some(host) {
            out.push(format!("{}: Host {:?}, expected {host}", describe(r), r.header("host")));
        }
        if !r.header("authorization").is_some_and(|a| a.starts_with("Basic ")) {
            out.push(format!("{}: no Basic Authorization header", describe(r)));
        }
        if !r.header("accept").is_some_and(|a| a.contains("application/json")) {
            out.push(format!("{}: Accept is {:?}, not application/json", describe(r), r.header("accept")));
        }
        if r.method != "GET" && !r.header("content-type").is_some_and(|a| a.starts_with("application/json")) {
            out.push(format!("{}: Content-Type is {:?}, not application/json", describe(r), r.header("content-type")));
        }
    }
    out
}

/// What [`all`] needs.
pub struct Context<'a> {
    /// Every request of the test.
    pub requests: &'a [RecordedRequest],
    /// The organization's profiles before the runs (after seeding).
    pub before: &'a [Value],
    /// The profiles after the runs.
    pub after: &'a [Value],
    /// The emulator's requests per second.
    pub limit: u32,
    /// The expected `Host`.
    pub host: &'a str,
}

/// Every invariant, each violation prefixed with the guarantee it breaks.
pub fn all(cx: &Context) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |name: &str, v: Vec<String>| out.extend(v.into_iter().map(|m| format!("[{name}] {m}")));
    add("bodies_match_the_schemas", schema_violations(cx.requests));
    add("never_retries_a_400", retried_400s(cx.requests));
    add("never_exceeds_the_org_rate", rate_violations(cx.requests, cx.limit));
    add("no_duplicate_profile", duplicate_profiles(cx.before, cx.after));
    add("never_drops_an_existing_email", dropped_contacts(cx.before, cx.after));
    add("headers", header_violations(cx.requests, cx.host));
    out
}

/// Panics with every violation of [`all`].
pub fn assert_all(cx: &Context) {
    let v = all(cx);
    assert!(v.is_empty(), "{} invariant violation(s):\n  {}", v.len(), v.join("\n  "));
}
