//! The four guarantees the suite exists for, each shown by a test of its own name, and a proof
//! that the checks behind them can fail (so the suite cannot pass by checking nothing).

use std::time::Duration;

use conformance::checks;
use conformance::gladly_emulator::{EmulatorConfig, Fault, FaultRule, RecordedRequest};
use conformance::job::quick_limits;
use conformance::{JobSpec, Rows, Session};
use serde_json::{Value, json};
use toml::Value as Toml;

/// An email or phone already on a profile survives every kind of update: upsert (read path),
/// update by id, and a later run through the no-read fast path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_drops_an_existing_email() {
    let s = Session::start(Session::fast_emulator()).await;
    s.seed(json!({"id": "keep-1", "name": "One",
        "emails": [{"original": "one@example.com", "primary": true}, {"original": "one.other@example.com"}],
        "phones": [{"original": "+12015550111", "type": "MOBILE"}, {"original": "+12015550112", "type": "HOME"}]}));
    s.seed(json!({"id": "keep-2", "name": "Two",
        "emails": [{"original": "two.old@example.com"}, {"original": "two.older@example.com"}]}));
    let before = s.profiles();

    // Upsert by one email, bringing a new phone; update by id, bringing a new email.
    let upsert = JobSpec::new("upsert")
        .sync_id("keep-upsert")
        .map("email", "email")
        .map("phone", "phone")
        .map("name", "name")
        .rows(Rows::csv("id,email,phone,name\n1,one@example.com,+1 201 555 0113,One Renamed\n"));
    let update = JobSpec::new("update")
        .sync_id("keep-update")
        .map("gid", "id")
        .map("email", "email")
        .map("name", "name")
        .rows(Rows::csv("id,gid,email,name\n1,keep-2,two.new@example.com,Two Renamed\n"));
    for spec in [&upsert, &update] {
        let report = s.run_ok(&s.job(spec)).await;
        assert!(report.failures.is_empty(), "{:#?}", report.failures);
        assert_eq!(report.counts.updated, 1, "{}", report.summary());
    }
    // Second runs with changed names and contacts (state now holds the last payload, so the
    // component may take its fast path; it must still not drop anything).
    let upsert = upsert.rows(Rows::csv("id,email,phone,name\n1,one@example.com,+1 201 555 0114,One Again\n"));
    let update = update.rows(Rows::csv("id,gid,email,name\n1,keep-2,two.newest@example.com,Two Again\n"));
    for spec in [&upsert, &update] {
        let report = s.run_ok(&s.job(spec)).await;
        assert!(report.failures.is_empty(), "{:#?}", report.failures);
    }

    let one = s.profile_by_email("one@example.com");
    let mut emails = conformance::profiles::emails(&one);
    emails.sort();
    assert_eq!(emails, ["one.other@example.com", "one@example.com"], "{one:#}");
    let mut phones = conformance::profiles::phones(&one);
    phones.sort();
    assert_eq!(phones, ["+12015550111", "+12015550112", "+12015550113", "+12015550114"], "{one:#}");
    assert_eq!(one["name"], "One Again");

    let two = s.profile_by_email("two.old@example.com");
    let mut emails = conformance::profiles::emails(&two);
    emails.sort();
    assert_eq!(
        emails,
        ["two.new@example.com", "two.newest@example.com", "two.old@example.com", "two.older@example.com"],
        "{two:#}"
    );
    assert!(checks::dropped_contacts(&before, &s.profiles()).is_empty());
    s.assert_invariants(&before);
}

/// A request Gladly answered 400 is not sent again: not by the host's retries, not by the
/// next run while the row is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_retries_a_400() {
    let s = Session::start(Session::fast_emulator()).await;
    // Legacy data: a profile holding an address Gladly's validation now refuses. The row adds
    // a second address, so the merged PATCH writes the emails array back whole, legacy entry
    // included, and Gladly answers 400.
    s.seed(json!({"id": "legacy", "name": "Legacy",
        "emails": [{"original": "legacy@example.com"}, {"original": "broken@@example"}]}));
    let before = s.profiles();
    let spec = JobSpec::new("upsert")
        .sync_id("four-hundred")
        .people_mapping()
        .map("email2", "email")
        .rows(Rows::csv(
            "id,email,name,email2\n1,legacy@example.com,Legacy Renamed,legacy.new@example.com\n2,fresh@example.com,Fresh,\n",
        ));
    let job = s.job(&spec);
    let report = s.run_ok(&job).await;
    let requests = s.requests();
    let answered_400: Vec<&RecordedRequest> = requests.iter().filter(|r| r.status == Some(400)).collect();
    assert!(!answered_400.is_empty(), "the scenario must provoke a 400:\n{}", s.transcript());
    assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
    let f = &report.failures[0];
    assert_eq!(f.key, "1");
    assert_eq!(f.http_status, Some(400), "{f:?}");
    assert_eq!(f.attempts, 1, "a 400 is not retried within the run: {f:?}");
    assert!(!f.api_errors.is_empty(), "Gladly's errors[] detail is kept: {f:?}");
    assert_eq!(report.counts.created, 1, "the other row is delivered: {}", report.summary());

    // The next run with the same rows does not send the refused request again.
    s.run_ok(&job).await;
    assert!(checks::retried_400s(&s.requests()).is_empty(), "{}", s.transcript());
    // The refused PATCH carries the legacy address back, so it breaks the body schema on
    // purpose; every other invariant must hold.
    let v: Vec<String> = s
        .invariant_violations(&before)
        .into_iter()
        .filter(|m| !(m.starts_with("[bodies_match_the_schemas]") && m.contains("-> Some(400)")))
        .collect();
    assert!(v.is_empty(), "{v:#?}\n{}", s.transcript());
}

/// Under load, the organization never gets more requests within one sliding second than its
/// limit (arrival times, 150 ms jitter allowance), and the client causes no 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_exceeds_the_org_rate() {
    let config = EmulatorConfig { rate_limit_per_second: 5, ..EmulatorConfig::default() };
    let s = Session::start(config).await;
    let spec = JobSpec::new("upsert").sync_id("rate").people_mapping().rows(Rows::people("rate", 30)).rate(5);
    let report = s.run_ok(&s.job(&spec)).await;
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert_eq!(report.counts.created, 30);
    assert_eq!(report.throttled, 0, "no 429 of our own: {}", report.summary());
    let requests = s.requests();
    assert_eq!(requests.len(), 30, "one create per new row:\n{}", s.transcript());
    let busiest = checks::busiest_second(&requests).into_values().max().unwrap_or(0);
    assert!(busiest <= 5, "{busiest} requests within one second:\n{}", s.transcript());
    assert!(checks::rate_violations(&requests, 5).is_empty());
    s.assert_invariants(&[]);
}

/// The fault kinds of the emulator, for the loop below.
fn fault_kinds() -> Vec<(&'static str, Fault)> {
    vec![
        ("429", Fault::Status429),
        ("503", Fault::Status5xx(503)),
        ("slow past the timeout", Fault::Slow(Duration::from_millis(1500))),
        ("drop before apply", Fault::DropBeforeApply),
        ("drop after apply", Fault::DropAfterApply),
        ("malformed body", Fault::MalformedBody),
    ]
}

/// One fault kind, one seed: 6 rows (2 of them existing customers) under a 30% fault rate,
/// up to three runs until every row is delivered; returns the problems found.
async fn one_faulty_sync(name: &'static str, fault: Fault, seed: u64) -> Vec<String> {
    let mut limits = quick_limits();
    limits.insert("request_timeout_secs".into(), Toml::Integer(1));
    limits.insert("batch_size".into(), Toml::Integer(3));
    let config = EmulatorConfig { faults: vec![FaultRule::probability(fault, 0.3)], seed, ..Session::fast_emulator() };
    let s = Session::with_limits(config, limits).await;
    let prefix = format!("f{seed}");
    s.seed(json!({"id": format!("old-{seed}-1"), "name": "Old", "emails": [{"original": format!("{prefix}1@example.com")}]}));
    s.seed(json!({"id": format!("old-{seed}-2"), "name": "Old",
        "emails": [{"original": format!("{prefix}2@example.com")}, {"original": format!("{prefix}2.b@example.com")}]}));
    let before = s.profiles();
    let job = s.job(&JobSpec::new("upsert").sync_id(&prefix).people_mapping().rows(Rows::people(&prefix, 6)));
    let mut problems = Vec::new();
    let mut delivered = false;
    for _ in 0..3 {
        match s.run(&job).await {
            Ok(r) if r.failures.is_empty() && r.aborted.is_none() => {
                delivered = true;
                break;
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("a run failed as a whole: {e}")),
        }
        // Let slow requests the client gave up on land before the next run.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    if !delivered {
        problems.push("three runs did not deliver every row".into());
    }
    let after = s.profiles();
    for i in 1..=6 {
        let email = format!("{prefix}{i}@example.com");
        let n = conformance::profiles::with_email(&after, &email).len();
        if n != 1 {
            problems.push(format!("{email} is held by {n} profiles"));
        }
    }
    if after.len() != 6 {
        problems.push(format!("{} profiles instead of 6", after.len()));
    }
    problems.extend(s.invariant_violations(&before));
    problems.into_iter().map(|p| format!("[{name}, seed {seed}] {p}")).collect()
}

/// Under every injected fault kind, with several seeds, no customer ever gets a second profile
/// (and every other invariant holds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_duplicate_under_any_fault() {
    let mut set = tokio::task::JoinSet::new();
    for (name, fault) in fault_kinds() {
        for seed in [11, 23, 37] {
            set.spawn(one_faulty_sync(name, fault.clone(), seed));
        }
    }
    let mut problems = Vec::new();
    let mut runs = 0;
    while let Some(r) = set.join_next().await {
        problems.extend(r.expect("a faulty sync task panicked"));
        runs += 1;
    }
    assert_eq!(runs, 18);
    assert!(problems.is_empty(), "{} problem(s):\n  {}", problems.len(), problems.join("\n  "));
}

fn request(ordinal: u64, ms: u64, method: &str, path: &str, status: Option<u16>, body: Option<Value>) -> RecordedRequest {
    RecordedRequest {
        ordinal,
        at: Duration::from_millis(ms),
        method: method.into(),
        path: path.into(),
        org: "acme".into(),
        status,
        body,
        headers: vec![
            ("host".into(), "acme.gladly.com".into()),
            ("authorization".into(), "Basic eDp5".into()),
            ("accept".into(), "application/json".into()),
            ("content-type".into(), "application/json".into()),
        ],
        fault: None,
    }
}

/// Each check reports synthetic bad data: the suite cannot pass by checking nothing.
#[test]
fn the_checks_can_fail() {
    let body = json!({"emails": [{"original": "a@example.com"}]});
    // A 400 sent again.
    let twice = vec![
        request(1, 0, "PATCH", "/api/v1/customer-profiles/x", Some(400), Some(body.clone())),
        request(2, 100, "PATCH", "/api/v1/customer-profiles/x", Some(400), Some(body.clone())),
    ];
    assert_eq!(checks::retried_400s(&twice).len(), 1);
    // Once is fine; a changed body is a new request.
    assert!(checks::retried_400s(&twice[..1]).is_empty());

    // Eleven requests in one second against a limit of 10, and a 429 the client caused.
    let mut burst: Vec<RecordedRequest> = (0..11).map(|i| request(i, 1000 + i * 50, "GET", "/api/v1/organization", Some(200), None)).collect();
    assert_eq!(checks::rate_violations(&burst, 10).len(), 1);
    assert!(checks::rate_violations(&burst[..10], 10).is_empty());
    burst.truncate(2);
    burst[1].status = Some(429);
    assert_eq!(checks::rate_violations(&burst, 10).len(), 1);
    burst[1].fault = Some(Fault::Status429);
    assert!(checks::rate_violations(&burst, 10).is_empty(), "an injected 429 is not the client's");

    // A second profile for one email; a dropped email and phone; a vanished profile.
    let one = json!({"id": "p1", "emails": [{"original": "a@example.com"}, {"original": "b@example.com"}],
        "phones": [{"original": "+12015550123", "normalized": "+12015550123"}]});
    let dup = json!({"id": "p2", "emails": [{"original": "A@example.com"}]});
    assert_eq!(checks::duplicate_profiles(std::slice::from_ref(&one), &[one.clone(), dup.clone()]).len(), 1);
    assert!(checks::duplicate_profiles(&[one.clone(), dup.clone()], &[one.clone(), dup]).is_empty(), "seeded duplicates are not the component's");
    let thinner = json!({"id": "p1", "emails": [{"original": "a@example.com"}], "phones": []});
    assert_eq!(checks::dropped_contacts(std::slice::from_ref(&one), &[thinner]).len(), 2);
    assert_eq!(checks::dropped_contacts(std::slice::from_ref(&one), &[]).len(), 1);
    assert!(checks::dropped_contacts(std::slice::from_ref(&one), std::slice::from_ref(&one)).is_empty());

    // A body outside the schema; a DELETE; a request without credentials or to another host.
    let bad_body = vec![request(1, 0, "POST", "/api/v1/customer-profiles", Some(201), Some(json!({"nmae": "typo"})))];
    assert_eq!(checks::schema_violations(&bad_body).len(), 1);
    let delete = vec![request(1, 0, "DELETE", "/api/v1/customer-profiles/x", Some(204), None)];
    assert_eq!(checks::schema_violations(&delete).len(), 1);
    let mut naked = request(1, 0, "GET", "/api/v1/organization", Some(200), None);
    naked.headers.retain(|(k, _)| k != "authorization");
    assert_eq!(checks::header_violations(&[naked], "acme.gladly.com").len(), 1);
    let elsewhere = request(1, 0, "GET", "/api/v1/organization", Some(200), None);
    assert_eq!(checks::header_violations(&[elsewhere], "acme.gladly.qa").len(), 1);

    // And `all` gathers them under the names of the guarantees.
    let all = checks::all(&checks::Context {
        requests: &twice,
        before: std::slice::from_ref(&one),
        after: &[],
        limit: 10,
        host: "acme.gladly.com",
    });
    assert!(all.iter().any(|m| m.starts_with("[never_retries_a_400]")), "{all:#?}");
    assert!(all.iter().any(|m| m.starts_with("[never_drops_an_existing_email]")), "{all:#?}");
}
