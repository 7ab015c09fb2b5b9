//! The retry policy under each injected fault: what is retried, what is not, and that no fault
//! ever leaves a customer with two profiles. Every test ends with the invariants of
//! `conformance::checks::all`.

use std::time::Duration;

use conformance::gladly_emulator::{EmulatorConfig, Fault, FaultRule, Method};
use conformance::host_harness::sync::report::RunReport;
use conformance::job::quick_limits;
use conformance::{JobSpec, Rows, Session};
use toml::Value;

/// A fast session with these fault rules and extra `[limits]`.
async fn session(faults: Vec<FaultRule>, limits: &[(&str, i64)]) -> Session {
    let mut table = quick_limits();
    for (k, v) in limits {
        table.insert((*k).into(), Value::Integer(*v));
    }
    let config = EmulatorConfig { faults, seed: 7, ..Session::fast_emulator() };
    Session::with_limits(config, table).await
}

fn upsert(prefix: &str, n: usize) -> JobSpec {
    JobSpec::new("upsert").people_mapping().rows(Rows::people(prefix, n)).sync_id(prefix)
}

/// Every email of the rows is held by exactly one profile.
fn assert_one_profile_each(s: &Session, prefix: &str, n: usize) {
    for i in 1..=n {
        s.profile_by_email(&format!("{prefix}{i}@example.com"));
    }
    assert_eq!(s.profiles().len(), n, "profiles: {:#?}", s.profiles());
}

fn assert_clean(report: &RunReport, n: u64) {
    assert!(report.failures.is_empty(), "failures: {:#?}", report.failures);
    // A record whose first answer was lost may be confirmed as unchanged by its retry (the
    // write had landed); delivered all the same.
    let c = &report.counts;
    assert_eq!(c.created + c.updated + c.confirmed_unchanged, n, "{}", report.summary());
    assert!(report.aborted.is_none(), "{:?}", report.aborted);
}

fn injected(s: &Session) -> usize {
    s.requests().iter().filter(|r| r.fault.is_some()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_429s_is_retried_until_delivered() {
    let s = session(vec![FaultRule::on_requests(Fault::Status429, [1, 2, 3, 4])], &[]).await;
    let report = s.run_ok(&s.job(&upsert("burst", 5))).await;
    assert_clean(&report, 5);
    assert_eq!(report.counts.created, 5);
    assert_eq!(report.throttled, 4, "{}", report.summary());
    assert!(report.counts.retry_attempts >= 1, "{}", report.summary());
    assert_eq!(injected(&s), 4);
    assert_one_profile_each(&s, "burst", 5);
    s.assert_invariants(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried() {
    let s = session(vec![FaultRule::on_requests(Fault::Status5xx(503), [1, 3, 5]).path_prefix("/api/v1/customer-profiles")], &[]).await;
    let report = s.run_ok(&s.job(&upsert("five", 5))).await;
    assert_clean(&report, 5);
    assert!(report.counts.retry_attempts >= 1, "{}", report.summary());
    assert_eq!(injected(&s), 3);
    assert_one_profile_each(&s, "five", 5);
    s.assert_invariants(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_server_error_fails_after_the_retries_and_the_next_run_delivers() {
    let always = FaultRule::probability(Fault::Status5xx(502), 1.0).method(Method::POST);
    let s = session(vec![always], &[("max_retries", 2)]).await;
    let job = s.job(&upsert("down", 2));
    let report = s.run_ok(&job).await;
    assert_eq!(report.counts.failed, 2, "{}", report.summary());
    for f in &report.failures {
        assert_eq!(f.code.label(), "server-error", "{f:?}");
        assert_eq!(f.http_status, Some(502), "{f:?}");
        assert_eq!(f.attempts, 3, "1 attempt + max_retries 2: {f:?}");
        assert!(f.retried_next_run, "{f:?}");
    }
    assert_eq!(s.requests().iter().filter(|r| r.method == "POST").count(), 6, "{}", s.transcript());
    assert!(s.profiles().is_empty());

    s.emulator.set_faults(Vec::new());
    let report = s.run_ok(&job).await;
    assert_clean(&report, 2);
    assert_eq!(report.counts.created, 2, "{}", report.summary());
    assert_one_profile_each(&s, "down", 2);
    s.assert_invariants(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_response_past_the_timeout_is_retried_without_a_duplicate() {
    // The first create is answered after 2.5 s, past the 1 s request timeout; the emulator
    // still applies it, so the retry must recognise its own earlier create.
    let slow = FaultRule::on_requests(Fault::Slow(Duration::from_millis(2500)), [1]).method(Method::POST);
    let s = session(vec![slow], &[("request_timeout_secs", 1)]).await;
    let report = s.run_ok(&s.job(&upsert("slow", 3))).await;
    assert_clean(&report, 3);
    assert_eq!(report.counts.created, 3, "{}", report.summary());
    assert!(report.counts.retry_attempts >= 1, "{}", report.summary());
    assert_one_profile_each(&s, "slow", 3);
    s.assert_invariants(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_without_retries_fails_as_timeout_and_the_next_run_finishes_it() {
    let slow = FaultRule::on_requests(Fault::Slow(Duration::from_millis(2500)), [1]).method(Method::POST);
    let s = session(vec![slow], &[("request_timeout_secs", 1), ("max_retries", 0)]).await;
    let job = s.job(&upsert("tmo", 1));
    let report = s.run_ok(&job).await;
    assert_eq!(report.failures.len(), 1, "{}", report.summary());
    let f = &report.failures[0];
    assert_eq!(f.code.label(), "timeout", "{f:?}");
    assert!(f.retried_next_run, "{f:?}");
    assert_eq!(f.key, "tmo-1");

    // Gladly applied the slow create after the client gave up; the next run must not add a
    // second profile.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let report = s.run_ok(&job).await;
    assert_clean(&report, 1);
    assert_one_profile_each(&s, "tmo", 1);
    s.assert_invariants(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_dropped_before_apply_is_retried() {
    let drop = FaultRule::on_requests(Fault::DropBeforeApply, [1, 2]).method(Method::POST);
    let s = session(vec![drop], &[]).await;
    let report = s.run_ok(&s.job(&upsert("dropb", 4))).await;
    assert_clean(&report, 4);
    assert_eq!(report.counts.created, 4, "{}", report.summary());
    assert_eq!(injected(&s), 2);
    assert_one_profile_each(&s, "dropb", 4);
    s.assert_invariants(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_dropped_after_apply_creates_no_duplicate() {
    // Gladly created the profile (or applied the update) but the client never heard.
    let on_post = FaultRule::on_requests(Fault::DropAfterApply, [1, 2]).method(Method::POST);
    let on_patch = FaultRule::on_requests(Fault::DropAfterApply, [1]).method(Method::PATCH);
    let s = session(vec![on_post, on_patch], &[]).await;
    s.seed(serde_json::json!({"id": "seed-dropa", "name": "Old", "emails": [{"original": "dropa4@example.com"}]}));
    let before = s.profiles();
    let report = s.run_ok(&s.job(&upsert("dropa", 4))).await;
    assert_clean(&report, 4);
    assert_eq!(injected(&s), 3, "{}", s.transcript());
    // The creates whose answers were lost are still reported as created (the retry finds the
    // profile under the record's own id), the seeded profile as updated.
    assert_eq!((report.counts.created, report.counts.updated + report.counts.confirmed_unchanged), (3, 1), "{}", report.summary());
    for i in 1..=3 {
        assert_eq!(s.profile_by_email(&format!("dropa{i}@example.com"))["name"], format!("Person {i}"));
    }
    assert_eq!(s.profile_by_email("dropa4@example.com")["name"], "Person 4");
    assert_one_profile_each(&s, "dropa", 4);
    assert_eq!(s.profile_by_email("dropa4@example.com")["id"], "seed-dropa");
    s.assert_invariants(&before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_never_taken_for_success() {
    // Finds answered 200 with a body that is not JSON: the component must not read "no match"
    // into it (that would create a second profile for an existing customer).
    let garbage = FaultRule::on_requests(Fault::MalformedBody, [1, 2]).method(Method::GET);
    let s = session(vec![garbage], &[]).await;
    s.seed(serde_json::json!({"id": "seed-mal", "name": "Old", "emails": [{"original": "mal1@example.com"}]}));
    s.seed(serde_json::json!({"id": "seed-mal2", "name": "Old", "emails": [{"original": "mal2@example.com"}]}));
    let before = s.profiles();
    let job = s.job(&upsert("mal", 3));
    let report = s.run_ok(&job).await;
    // The two garbled finds are retried within the run (an unreadable answer is retryable), and
    // the retries find the seeded profiles: two updates, one create, nothing failed.
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    let c = &report.counts;
    assert_eq!((c.created, c.updated, c.retry_attempts), (1, 2, 2), "{}", report.summary());
    assert_one_profile_each(&s, "mal", 3);
    assert_eq!(s.profile_by_email("mal1@example.com")["id"], "seed-mal");
    assert_eq!(s.profile_by_email("mal2@example.com")["id"], "seed-mal2");
    s.assert_invariants(&before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_create_answer_is_checked_not_duplicated() {
    // A create answered 201 with garbage: Gladly did create it; a retry must not add a second.
    let garbage = FaultRule::on_requests(Fault::MalformedBody, [1]).method(Method::POST);
    let s = session(vec![garbage], &[]).await;
    let job = s.job(&upsert("malc", 2));
    let report = s.run_ok(&job).await;
    // The garbled 201 is checked by reading the record's own id: both rows are created, the
    // first without a second POST.
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert_eq!(report.counts.created, 2, "{}", report.summary());
    assert_eq!(s.requests().iter().filter(|r| r.method == "POST").count(), 2, "{}", s.transcript());
    assert_one_profile_each(&s, "malc", 2);
    s.assert_invariants(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_between_two_syncs_updates_the_survivor() {
    // Run 1 creates two profiles; an agent merges the first into a third profile; run 2 (with a
    // changed name) must update the survivor, not recreate the merged-away profile.
    let s = session(Vec::new(), &[]).await;
    s.seed(serde_json::json!({"id": "agent-kept", "name": "Kept", "emails": [{"original": "kept@example.com"}]}));
    let before = s.profiles();
    let spec = upsert("mrg", 2);
    let report = s.run_ok(&s.job(&spec)).await;
    assert_clean(&report, 2);
    let first = s.profile_by_email("mrg1@example.com");
    let first_id = first["id"].as_str().expect("an id").to_string();
    s.emulator.merge_profiles(conformance::ORG, &first_id, "agent-kept");
    let merged_view = s.profiles();

    let spec = spec.rows(Rows::people_named("mrg", 2, "Renamed"));
    let report = s.run_ok(&s.job(&spec)).await;
    // The component follows the merge to the survivor and updates it.
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert_eq!(report.counts.updated, 2, "{}", report.summary());
    let survivor = s.profile_by_email("mrg1@example.com");
    assert_eq!(survivor["id"], "agent-kept", "{survivor:#}");
    assert_eq!(survivor["name"], "Renamed 1");
    assert_eq!(s.profiles().len(), 2, "no profile was recreated: {:#?}", s.profiles());
    assert_eq!(s.profile_by_email("mrg2@example.com")["name"], "Renamed 2");
    let v = s.invariant_violations(&before);
    // The merged-away profile disappears by the agent's hand, not the component's.
    let v: Vec<_> = v.into_iter().filter(|m| !m.contains(&format!("profile {first_id} disappeared"))).collect();
    assert!(v.is_empty(), "{v:#?}");
    let v = conformance::checks::dropped_contacts(&merged_view, &s.profiles());
    assert!(v.is_empty(), "{v:#?}");
}

/// A 429 asking `Retry-After: 3` (three windows, so not the 1 s the host waits without the
/// header): the next request reaches the server no sooner than 3 s after the 429 was sent, read
/// from the emulator's own log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_followed_by_nothing_before_its_retry_after() {
    let switches = conformance::gladly_emulator::Switches { retry_after_secs: Some(3), ..Default::default() };
    let config = EmulatorConfig {
        faults: vec![FaultRule::on_requests(Fault::Status429, [1])],
        seed: 7,
        switches,
        ..Session::fast_emulator()
    };
    let s = Session::with_limits(config, quick_limits()).await;
    let report = s.run_ok(&s.job(&upsert("ra", 1))).await;
    assert_clean(&report, 1);
    let reqs = s.requests();
    assert_eq!(reqs[0].status, Some(429), "{}", s.transcript());
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_secs(3), "the retry came {gap:?} after the 429:\n{}", s.transcript());
}

/// Backoff shape, read from the emulator's log: a create that always meets a 502 is tried
/// 1 + max_retries times, and the wait before retry n is at least base × 2^(n-1) (300, 600,
/// 1200 ms), while the first stays well under the third's floor (a constant delay fails one of
/// the two).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_doubles_between_retries_and_stops_at_the_maximum() {
    let always = FaultRule::probability(Fault::Status5xx(502), 1.0).method(Method::POST);
    let s = session(vec![always], &[("max_retries", 3), ("backoff_base_ms", 300), ("backoff_max_ms", 5000)]).await;
    let report = s.run_ok(&s.job(&upsert("shape", 1))).await;
    assert_eq!(report.counts.failed, 1, "{}", report.summary());
    let posts: Vec<Duration> = s.requests().iter().filter(|r| r.method == "POST").map(|r| r.at).collect();
    assert_eq!(posts.len(), 4, "1 attempt + max_retries 3:\n{}", s.transcript());
    let gaps: Vec<Duration> = posts.windows(2).map(|w| w[1] - w[0]).collect();
    for (n, (gap, least)) in gaps.iter().zip([300u64, 600, 1200]).enumerate() {
        assert!(*gap >= Duration::from_millis(least), "retry {}: {gap:?} < {least} ms", n + 1);
    }
    // The first wait is at most 600 ms (300 plus full jitter); the allowance of another 600 ms
    // covers the retry's instantiation and find. Under 1200 ms, below the third wait's floor:
    // no constant delay passes both bounds.
    assert!(gaps[0] < Duration::from_millis(1200), "the first gap {:?} is not shorter than the third's floor: {gaps:?}", gaps[0]);
}

/// A server that answers the moment a body's last byte is in must not turn a successful write
/// into a transport failure: 1,000 upserts (a create each, into an empty organization) against an emulator
/// without latency, no retries allowed, and every one is created at the first attempt. (The
/// host once handed bodies to the connection as streams; the client dropped a stream once its
/// `Content-Length` was sent, and the component's closing flush then failed on about one create
/// in a few hundred: this test failed in each of the two runs tried against that code.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_answering_at_once_never_fails_a_write_that_went_through() {
    let mut table = quick_limits();
    table.insert("max_retries".into(), Value::Integer(0));
    let s = Session::with_limits(EmulatorConfig { rate_limit_per_second: 100_000, ..EmulatorConfig::default() }, table).await;
    let spec = JobSpec::new("upsert").people_mapping().rows(Rows::people("instant", 1000)).sync_id("instant").rate(100_000);
    let report = s.run_ok(&s.job(&spec)).await;
    assert!(report.failures.is_empty(), "{} failures: {:#?}", report.failures.len(), &report.failures[..report.failures.len().min(3)]);
    assert_eq!((report.counts.created, s.requests().len()), (1000, 1000), "{}", report.summary());
}
