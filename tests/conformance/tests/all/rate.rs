//! The organization's rate limit under load: several tenants of one Gladly organization share
//! one budget, the host's own rate setting is kept, and the pace holds against every shape of
//! the organization's limiter: a leaky bucket, fixed windows, and a sliding window with jittered
//! latency.
//! Rates are read from the emulator's arrival times in sliding
//! one-second windows with a stated jitter allowance (`checks::busiest_second`); the emulator's
//! own limiter, in the shape each test names, answers 429 to any excess.

use std::time::Duration;

use conformance::checks;
use conformance::gladly_emulator::{EmulatorConfig, LimiterShape, Switches};
use conformance::{JobSpec, Rows, Session};

/// Three tenants (three syncs) writing to the same organization at once, 60 records each,
/// against Gladly's default 10 requests/s counted by a leaky bucket: no sliding second above 10,
/// no 429 of our own, and every record delivered once.
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
    let busiest = checks::busiest_second(&requests);
    assert!(busiest.values().all(|n| *n <= 10), "requests within one second: {busiest:?}");
    assert!(requests.iter().all(|r| r.status != Some(429)), "{}", s.transcript());
    assert_eq!(s.profiles().len(), 180);
    s.assert_invariants(&[]);
}

/// At each seed, `rows` inserts at 10/s against an emulator with `config(seed)`: every row
/// created once, no 429 of our own, and the invariants hold.
async fn paces_without_429(tag: &str, rows: usize, seeds: [u64; 3], config: impl Fn(u64) -> EmulatorConfig) {
    for seed in seeds {
        let s = Session::start(config(seed)).await;
        let spec = JobSpec::new("insert").sync_id(tag).people_mapping().rows(Rows::people(tag, rows)).rate(10);
        let report = s.run_ok(&s.job(&spec)).await;
        assert!(report.failures.is_empty(), "seed {seed}: {:#?}", report.failures);
        assert_eq!(report.throttled, 0, "seed {seed}: no 429 of our own: {}\n{}", report.summary(), s.transcript());
        assert_eq!(s.profiles().len(), rows, "seed {seed}");
        s.assert_invariants(&[]);
    }
}

/// Against fixed one-second windows whose boundaries fall at a phase drawn from the seed, the
/// host's even pace causes no 429, at any of three phases: it does not lean on where the
/// server's seconds begin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pace_holds_against_fixed_windows_at_any_phase() {
    paces_without_429("phase", 25, [1, 2, 3], |seed| EmulatorConfig {
        rate_limit_per_second: 10,
        rate_limit_shape: LimiterShape::FixedWindow,
        seed,
        ..EmulatorConfig::default()
    })
    .await;
}

/// Against a sliding one-second window (the strictest way to count the limit) with answers
/// taking 150 ± 50 ms, the host's pace causes no 429 and no sliding second above the limit,
/// at three seeds (three phases and jitter draws).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pace_holds_against_a_sliding_window_with_jittered_latency() {
    paces_without_429("slide", 30, [4, 5, 6], |seed| EmulatorConfig {
        rate_limit_per_second: 10,
        rate_limit_shape: LimiterShape::SlidingWindow,
        latency: Duration::from_millis(150),
        latency_jitter: Duration::from_millis(50),
        seed,
        ..EmulatorConfig::default()
    })
    .await;
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

/// A 429 without `Retry-After` slows the host's pace instead of stopping the organization:
/// against an organization left 6/s of its 10 by another client, and a server that never says
/// how long to wait, each 429 stretches the host's window by a quarter, so after a few the pace
/// is under 6/s and the refusals stop. Without that, about four requests in ten would be
/// refused for the whole run (about 35 of 60 creates and their retries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_without_retry_after_slows_the_pace_until_the_refusals_stop() {
    let switches = Switches { retry_after_on_429: false, ..Switches::default() };
    let config = EmulatorConfig { rate_limit_per_second: 6, switches, ..EmulatorConfig::default() };
    let s = Session::start(config).await;
    let spec = JobSpec::new("insert").sync_id("slowed").people_mapping().rows(Rows::people("slow", 60)).rate(10);
    let report = s.run_ok(&s.job(&spec)).await;
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert_eq!(report.counts.created, 60, "{}", report.summary());
    assert!(report.throttled <= 8, "{} 429s: the pace did not adapt\n{}", report.throttled, report.summary());
}

/// Parallelism: under 40 ms of latency per request, with a rate that does not bind, the default
/// limits (instances of 20 records, as many at once as the component suggests: 5) send 100
/// creates at least three times as fast as the same job with `max_concurrency = 1` (one
/// instance at a time, what the vendor page describes). Both runs are timed in this one test,
/// from the first to the last arrival in the emulator's log, so a slow machine slows both:
/// sequential needs 100 × 40 ms = 4 s at the least, five batches at once about a fifth of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_instances_beat_a_sequential_run_threefold() {
    async fn span(max_concurrency: Option<i64>) -> std::time::Duration {
        let config = EmulatorConfig {
            rate_limit_per_second: 1000,
            latency: std::time::Duration::from_millis(40),
            ..EmulatorConfig::default()
        };
        let mut limits = conformance::job::quick_limits();
        if let Some(n) = max_concurrency {
            limits.insert("max_concurrency".into(), toml::Value::Integer(n));
        }
        let s = Session::with_limits(config, limits).await;
        let spec = JobSpec::new("insert").sync_id("par").people_mapping().rows(Rows::people("par", 100)).rate(1000);
        let report = s.run_ok(&s.job(&spec)).await;
        assert_eq!(report.counts.created, 100, "{}", report.summary());
        let requests = s.requests();
        assert_eq!(requests.len(), 100);
        requests.last().unwrap().at - requests.first().unwrap().at
    }
    let sequential = span(Some(1)).await;
    let parallel = span(None).await;
    let ratio = sequential.as_secs_f64() / parallel.as_secs_f64();
    assert!(ratio >= 3.0, "sequential {sequential:?}, default {parallel:?}: {ratio:.1}× (want at least 3×)");
}
