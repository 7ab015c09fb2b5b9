//! The organization's rate limit under load: several tenants of one Gladly organization share
//! one budget, and the host's own rate setting is kept. Rates are asserted on the emulator's
//! recorded one-second windows (the windows Gladly counts), never on wall-clock timings.

use conformance::checks;
use conformance::gladly_emulator::EmulatorConfig;
use conformance::{JobSpec, Rows, Session};

/// Three tenants (three syncs) writing to the same organization at once, 60 records each,
/// against Gladly's default 10 requests/s: no one-second window above 10, no 429 of our own,
/// and every record delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_of_one_org_share_its_rate() {
    let config = EmulatorConfig { rate_limit_per_second: 10, ..EmulatorConfig::default() };
    let s = Session::start(config).await;
    let jobs: Vec<_> = ["t1", "t2", "t3"]
        .iter()
        .map(|t| {
            // Insert mode: one request per record, so the load is 180 requests.
            let spec = JobSpec::new("insert").sync_id(t).tenant(t).people_mapping().rows(Rows::people(t, 60)).rate(10);
            s.job(&spec)
        })
        .collect();
    let (a, b, c) = tokio::join!(s.run(&jobs[0]), s.run(&jobs[1]), s.run(&jobs[2]));
    for r in [a, b, c] {
        let r = r.expect("each tenant's run completes");
        assert!(r.failures.is_empty(), "{}: {:#?}", r.tenant, r.failures);
        assert_eq!(r.counts.created, 60, "{}", r.summary());
        assert_eq!(r.throttled, 0, "{}: no 429 of our own: {}", r.tenant, r.summary());
    }
    let requests = s.requests();
    assert_eq!(requests.len(), 180, "one create per record");
    let windows = checks::requests_per_window(&requests);
    let busiest = windows.values().copied().max().unwrap_or(0);
    assert!(busiest <= 10, "a window got {busiest} requests: {windows:?}");
    assert!(requests.iter().all(|r| r.status != Some(429)), "{}", s.transcript());
    assert_eq!(s.profiles().len(), 180);
    s.assert_invariants(&[]);
}

/// An operator may run a tenant below the organization's limit: `[policy]
/// rate_limit_per_second = 4` against an organization allowing 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_rate_setting_is_kept() {
    let s = Session::start(Session::fast_emulator()).await;
    let spec = JobSpec::new("insert").sync_id("slow-lane").people_mapping().rows(Rows::people("lane", 12)).rate(4);
    let report = s.run_ok(&s.job(&spec)).await;
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert_eq!(report.counts.created, 12);
    let requests = s.requests();
    let violations = checks::rate_violations(&requests, 4);
    assert!(violations.is_empty(), "{violations:#?}");
    s.assert_invariants(&[]);
}

/// Gladly's 429 (the organization's budget taken by another client the host does not know of)
/// is absorbed: the host slows down and retries, every record lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_client_using_the_budget_is_absorbed() {
    // The host believes it has 10/s, Gladly gives only 4/s (another integration uses the rest).
    let config = EmulatorConfig { rate_limit_per_second: 4, ..EmulatorConfig::default() };
    let s = Session::start(config).await;
    let spec = JobSpec::new("insert").sync_id("crowded").people_mapping().rows(Rows::people("crowd", 12)).rate(10);
    let report = s.run_ok(&s.job(&spec)).await;
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert_eq!(report.counts.created, 12, "{}", report.summary());
    assert_eq!(s.profiles().len(), 12);
    // The emulator answered some requests 429; those are the point of this test, so only the
    // other invariants are checked.
    let requests = s.requests();
    assert!(checks::retried_400s(&requests).is_empty());
    assert!(checks::duplicate_profiles(&[], &s.profiles()).is_empty());
    assert!(checks::schema_violations(&requests).is_empty());
}
