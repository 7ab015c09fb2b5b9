//! The host's policies against real misbehaving components (tests/components/hostile) in the real
//! host, talking to a real server on 127.0.0.1: the Gladly emulator, or a silent TCP server for
//! the per-request timeout. Each test fails if the policy it checks is removed.
//!
//! Build the components first: `cargo xtask build`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use host_harness::job::JobConfig;
use host_harness::error::HostError;
use host_harness::sandbox::limits::Limits;
use host_harness::contract::model::{BatchContext, ErrorCode, Outcome, RecordResult, Row, SyncItem};
use host_harness::sync::report::RunReport;
use host_harness::sandbox::{Runtime, RuntimeConfig};
use host_harness::sync::{Harness, RunOptions, Tenant};
use test_kit::emulator::requests_of;
use test_kit::rate::{assert_within_rate, max_in_window};
use test_kit::{Creds, Job, TempDir, assert_no_secret, cache_dir, forbidden_import, hostile, q};

/// Guard against hanging: every call here is expected back within this, whatever it does.
const GUARD: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// fixture

/// An emulator with a test user, a folder and the user's token in a file.
pub(crate) struct Setup {
    pub(crate) creds: Creds,
    pub(crate) emu: gladly_emulator::Emulator,
    pub(crate) dir: TempDir,
    pub(crate) token_file: std::path::PathBuf,
}

impl Setup {
    pub(crate) async fn new(tag: &str) -> Setup {
        let creds = Creds::new();
        let emu = test_kit::emulator::with_user(&creds).await;
        let dir = TempDir::new(tag);
        let token_file = dir.file("token", &format!("{}\n", creds.token));
        Setup { creds, emu, dir, token_file }
    }

    /// A job running the hostile component with `behaviour` over `rows` CSV rows, its traffic
    /// redirected to the emulator, a high rate limit and no retries (one attempt per behaviour).
    pub(crate) fn job(&self, id: &str, behaviour: &str, rows: usize) -> Job {
        let csv = self.dir.file(&format!("{id}.csv"), test_kit::rows::simple(rows));
        Job::new(id, &hostile(), self.dir.path())
            .csv(&csv, "id")
            .set("behaviour", behaviour)
            .set("username", &self.creds.user)
            .token_file(&self.token_file)
            .map("name", "name")
            .policy("allow_hosts = [\"*.gladly.com\"]")
            .policy(&format!("endpoint = {}", q(&self.emu.base_url())))
            .policy("rate_limit_per_second = 1000")
            .limit("max_retries = 0")
    }
}

/// A harness whose runtime uses `limits` (and the shared compile cache).
pub(crate) fn harness(limits: Limits) -> Arc<Harness> {
    Arc::new(Harness::new(RuntimeConfig { cache_dir: Some(cache_dir()), pooling: false, limits }).expect("harness"))
}

pub(crate) fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits { max_retries: 0, ..Limits::default() };
    f(&mut l);
    l
}

fn items(n: usize) -> Vec<SyncItem> {
    (1..=n)
        .map(|i| SyncItem { row: Row { key: format!("r{i}"), columns: vec![] }, known_id: None, previous_payload: None })
        .collect()
}

pub(crate) async fn prepare(h: &Harness, job: &JobConfig) -> Arc<Tenant> {
    Arc::new(h.prepare(job, &RunOptions::default()).await.unwrap_or_else(|e| panic!("prepare {}: {e}", job.sync.id)))
}

/// Wait for `fut`, run as its own task so that the guard fires even if the guest held its
/// worker thread (a plugin that is never interrupted makes the test fail, not hang).
pub(crate) async fn guarded<T: Send + 'static>(what: &str, fut: impl Future<Output = T> + Send + 'static) -> T {
    match tokio::time::timeout(GUARD, tokio::spawn(fut)).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
        Err(_) => panic!("{what} did not return within {GUARD:?}"),
    }
}

/// One `sync-batch` call of `n` items through the tenant's own egress policy.
pub(crate) async fn sync_batch(t: &Arc<Tenant>, n: usize) -> Result<Vec<RecordResult>, HostError> {
    let t = t.clone();
    let what = format!("sync-batch of {}", t.name);
    guarded(&what, async move {
        let ctx = BatchContext { sync_id: t.sync_id.clone(), attempt: 0 };
        t.plugin.sync_batch(&mut None, t.policy.clone(), ctx, &t.settings, t.mode, &t.mapping, items(n)).await
    })
    .await
}

/// A whole run of the job.
pub(crate) async fn run(h: &Arc<Harness>, t: &Arc<Tenant>, job: &JobConfig) -> Result<RunReport, HostError> {
    let (h, t, job) = (h.clone(), t.clone(), job.clone());
    let what = format!("the run of {}", t.name);
    guarded(&what, async move { h.run(&t, &job, &RunOptions::default()).await }).await
}

pub(crate) fn denials(t: &Tenant) -> Vec<String> {
    t.policy.stats.denials.lock().unwrap().clone()
}

fn all_failed_with(results: &[RecordResult], code: ErrorCode) -> Vec<String> {
    assert!(!results.is_empty());
    results
        .iter()
        .map(|r| {
            assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
            let e = r.error.as_ref().expect("a failed result carries an error");
            assert_eq!(e.code, code, "{r:?}");
            e.message.clone()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// outbound allow-list

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_host_goes_through_with_host_credentials() {
    let s = Setup::new("allowed").await;
    let job = s.job("allowed", "well-behaved", 2).config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    assert_eq!(t.policy.allowed_hosts, vec!["acme.gladly.com".to_string()]);

    let results = sync_batch(&t, 2).await.expect("the control call works");
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(r.outcome, Outcome::Created, "{r:?}");
        assert_eq!(r.remote_id.as_deref(), Some("status 200"), "the emulator accepted the host's credentials");
    }
    let seen = s.emu.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].org, "acme", "the real Host header is kept through the redirect");
    assert_eq!(seen[0].path, "/api/v1/organization");
    assert_eq!(seen[0].status, Some(200));
    assert_eq!(seen[0].header("authorization"), Some(s.creds.basic().as_str()), "the host attaches Basic auth");
    assert_eq!(t.policy.stats.requests.load(Ordering::Relaxed), 1);
    assert_eq!(t.policy.stats.denied.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_host_is_refused_before_any_socket_opens() {
    let s = Setup::new("other-host").await;
    let job = s.job("other-host", "other-host", 2).config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;

    let report = run(&h, &t, &job).await.expect("the run completes with failed records");
    assert_eq!(report.denied, 1, "{report:?}");
    assert_eq!(report.requests, 0, "nothing was sent: {report:?}");
    assert_eq!(report.counts.failed, 2, "{report:?}");
    for f in &report.failures {
        assert_eq!(f.code, ErrorCode::EgressDenied, "{f:?}");
        assert!(f.message.contains("evil.example.com"), "{f:?}");
    }
    let d = denials(&t);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].starts_with("evil.example.com:") && d[0].contains("not an allowed host"), "{d:?}");
    assert_eq!(t.policy.stats.denied.load(Ordering::Relaxed), 1);
    assert!(s.emu.requests().is_empty(), "the emulator (the redirect target) saw nothing: {:?}", s.emu.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_refused() {
    let s = Setup::new("plain-http").await;
    let job = s.job("plain-http", "plain-http", 2).config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;

    let results = sync_batch(&t, 2).await.expect("the call returns per-record failures");
    for m in all_failed_with(&results, ErrorCode::EgressDenied) {
        assert!(m.contains("http://acme.gladly.com") && m.contains("HttpRequestDenied"), "{m}");
    }
    let d = denials(&t);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].starts_with("acme.gladly.com:") && d[0].contains("https"), "{d:?}");
    assert_eq!(t.policy.stats.requests.load(Ordering::Relaxed), 0);
    assert!(s.emu.requests().is_empty(), "{:?}", s.emu.requests());
}

// ---------------------------------------------------------------------------------------------
// credentials

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_cannot_set_its_own_authorization() {
    let s = Setup::new("set-auth").await;
    let job = s.job("set-auth", "set-authorization", 2).config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;

    let results = sync_batch(&t, 2).await.expect("the call returns per-record failures");
    for m in all_failed_with(&results, ErrorCode::EgressDenied) {
        assert!(m.contains("header refused"), "the guest's Authorization header is refused: {m}");
    }
    assert_eq!(t.policy.stats.requests.load(Ordering::Relaxed), 0);
    assert!(s.emu.requests().is_empty(), "no request left with the guest's header: {:?}", s.emu.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leak_attempt_never_sees_the_token() {
    let logs = test_kit::logs::captured();
    let s = Setup::new("leak").await;
    let job = s.job("leak", "leak-attempt", 2).config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;

    let results = sync_batch(&t, 2).await.expect("the call returns per-record failures");
    let report = run(&h, &t, &job).await.expect("the run completes");

    // The host did attach the token to the guest's request: there was something to leak.
    let seen = s.emu.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|r| r.header("authorization") == Some(s.creds.basic().as_str())));

    // What the guest saw (response, environment, arguments, settings) reached every output...
    let messages: Vec<String> = all_failed_with(&results, ErrorCode::UnexpectedResponse);
    assert!(messages[0].contains("setting behaviour=leak-attempt") && messages[0].contains("status: 200"), "{}", messages[0]);
    let report_json = serde_json::to_string_pretty(&report).unwrap();
    assert!(report_json.contains("setting behaviour=leak-attempt"), "{report_json}");
    let log_text = logs.text();
    assert!(log_text.contains("setting behaviour=leak-attempt") && log_text.contains("leak"), "the guest's log is captured");

    // ...and the token is in none of them, neither plain nor in its Basic form.
    for (i, m) in messages.iter().enumerate() {
        assert_no_secret(&s.creds, &format!("record-result message {i}"), m);
    }
    assert_no_secret(&s.creds, "the run report", &report_json);
    assert_no_secret(&s.creds, "the run summary", &report.summary());
    assert_no_secret(&s.creds, "the captured logs", &log_text);
    assert_no_secret(&s.creds, "the tenant's Debug", &format!("{:?}", t.policy));
}

// ---------------------------------------------------------------------------------------------
// deadline

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spin_and_sleep_hit_the_deadline_while_another_tenant_completes() {
    let s = Setup::new("deadline").await;
    let spin = s.job("deadline-spin", "spin", 2).limit("call_deadline_secs = 1").config::<JobConfig>();
    let sleep = s.job("deadline-sleep", "sleep", 2).config::<JobConfig>();
    let good = s.job("deadline-good", "well-behaved", 2).config::<JobConfig>();
    // One harness (configured from the spinning job's [limits]) runs all three tenants.
    let h = Arc::new(Harness::for_job(&spin).expect("harness"));
    assert_eq!(h.runtime().limits().call_deadline_secs, 1);
    let (ts, tz, tg) = (prepare(&h, &spin).await, prepare(&h, &sleep).await, prepare(&h, &good).await);

    // A single call: the deadline error itself.
    for t in [&ts, &tz] {
        match sync_batch(t, 1).await {
            Err(HostError::Deadline { tenant, seconds }) => {
                assert_eq!(tenant, t.name);
                assert_eq!(seconds, 1);
            }
            other => panic!("{}: expected a deadline error, got {other:?}", t.name),
        }
    }

    // Whole runs at the same time on the same harness.
    let started = std::time::Instant::now();
    let (rs, rz, rg) = tokio::join!(run(&h, &ts, &spin), run(&h, &tz, &sleep), run(&h, &tg, &good));
    assert!(started.elapsed() < GUARD);
    for r in [rs.expect("spin run"), rz.expect("sleep run")] {
        assert_eq!(r.counts.failed, 2, "{r:?}");
        assert_eq!(r.counts.created, 0, "{r:?}");
        for f in &r.failures {
            assert_eq!(f.code, ErrorCode::Timeout, "{f:?}");
            assert!(f.message.contains("deadline") && f.message.contains(&r.tenant), "{f:?}");
        }
    }
    let rg = rg.expect("the well-behaved tenant's run");
    assert_eq!((rg.counts.created, rg.counts.failed), (2, 0), "{rg:?}");
    // The process and the plugin are still fine.
    assert_eq!(sync_batch(&tg, 1).await.expect("still works")[0].outcome, Outcome::Created);
}

// ---------------------------------------------------------------------------------------------
// memory cap

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hog_fails_its_batch_only() {
    let s = Setup::new("memory").await;
    let hog = s.job("memory-hog", "memory-hog", 2).config::<JobConfig>();
    let good = s.job("memory-good", "well-behaved", 2).config::<JobConfig>();
    let h = harness(limits(|l| l.memory_mib = 16));
    let (th, tg) = (prepare(&h, &hog).await, prepare(&h, &good).await);

    let (rh, rg) = tokio::join!(sync_batch(&th, 2), sync_batch(&tg, 2));
    match rh {
        Err(HostError::Plugin { tenant, reason }) => {
            assert_eq!(tenant, "memory-hog");
            assert!(reason.contains("memory"), "the error says memory was the problem: {reason}");
            assert!(reason.contains("memory limit"), "{reason}");
            assert!(!reason.contains("wasm backtrace"), "one line, without the guest backtrace: {reason}");
        }
        other => panic!("expected a plugin error, got {other:?}"),
    }
    assert!(rg.expect("the other tenant is unaffected").iter().all(|r| r.outcome == Outcome::Created));

    // Through the runner: every record of the batch fails with a plugin failure.
    let report = run(&h, &th, &hog).await.expect("the run completes");
    assert_eq!(report.counts.failed, 2, "{report:?}");
    assert!(report.failures.iter().all(|f| f.code == ErrorCode::PluginFailure && f.message.contains("memory")), "{report:?}");
}

// ---------------------------------------------------------------------------------------------
// panic and trap

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_and_trap_fail_that_call_only() {
    let logs = test_kit::logs::captured();
    let s = Setup::new("trap").await;
    let h = harness(limits(|_| {}));
    let good = s.job("trap-good", "well-behaved", 1).config::<JobConfig>();
    let tg = prepare(&h, &good).await;
    for behaviour in ["panic", "trap"] {
        let job = s.job(&format!("trap-{behaviour}"), behaviour, 2).config::<JobConfig>();
        let t = prepare(&h, &job).await;
        let (bad, ok) = tokio::join!(sync_batch(&t, 2), sync_batch(&tg, 1));
        match bad {
            Err(HostError::Plugin { tenant, reason }) => {
                assert_eq!(tenant, t.name);
                assert!(reason.contains("unreachable"), "{behaviour}: {reason}");
                assert!(!reason.contains("wasm backtrace"), "one line, without the guest backtrace: {reason}");
            }
            other => panic!("{behaviour}: expected a plugin error, got {other:?}"),
        }
        assert_eq!(ok.expect("the other tenant's call")[0].outcome, Outcome::Created);

        // In a run, the batch is split until each record is alone; a plugin that fails on every
        // record fails each of them, for good, and the run still ends by itself.
        let report = run(&h, &t, &job).await.expect("the run completes");
        assert_eq!(report.counts.failed, 2, "{behaviour}: {report:?}");
        assert!(
            report.failures.iter().all(|f| f.code == ErrorCode::PluginFailure
                && !f.retried_next_run
                && f.message.contains("even when it is sent alone")),
            "{report:?}"
        );
    }
    // The panic message the guest printed is logged, prefixed with its tenant.
    let log_text = logs.text();
    assert!(
        log_text.lines().any(|l| l.contains("trap-panic") && l.contains("deliberate panic in sync")),
        "{log_text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_in_map_fails_that_tenant_only() {
    let s = Setup::new("panic-map").await;
    let h = harness(limits(|_| {}));
    let bad = s.job("panic-map", "panic-in-map", 2).config::<JobConfig>();
    let good = s.job("panic-map-good", "well-behaved", 2).config::<JobConfig>();
    let (tb, tg) = (prepare(&h, &bad).await, prepare(&h, &good).await);

    let rows = vec![Row { key: "r1".into(), columns: vec![] }];
    match tb.plugin.map_rows(&tb.name, &tb.settings, &tb.mapping, &rows).await {
        Err(HostError::Plugin { tenant, reason }) => {
            assert_eq!(tenant, "panic-map");
            assert!(reason.contains("unreachable"), "{reason}");
        }
        other => panic!("expected a plugin error, got {other:?}"),
    }
    // The same loaded plugin still maps for another tenant.
    let mapped = tg.plugin.map_rows(&tg.name, &tg.settings, &tg.mapping, &rows).await.expect("map for another tenant");
    assert_eq!(mapped.len(), 1);

    // In a run, each row the plugin cannot map even alone is that row's error; the run ends.
    let (rb, rg) = tokio::join!(run(&h, &tb, &bad), run(&h, &tg, &good));
    let rb = rb.expect("the failing tenant's run ends by itself");
    assert_eq!((rb.counts.invalid, rb.counts.created), (2, 0), "{rb:?}");
    assert!(rb.failures.iter().all(|f| f.code == ErrorCode::PluginFailure), "{rb:?}");
    let rg = rg.expect("the other tenant's run");
    assert_eq!(rg.counts.created, 2, "{rg:?}");
}

/// A run that stops after it started (here the plugin reaches for a host nobody granted, a
/// configuration error that stops the run) is stored as failed with the reason, not left
/// `running` (which the next run would report as interrupted, as if the process had died).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_fails_is_recorded_as_failed() {
    let s = Setup::new("failed-run").await;
    let h = harness(limits(|_| {}));
    let bad = s.job("failed-run", "other-host", 2).config::<JobConfig>();
    let t = prepare(&h, &bad).await;
    let report = run(&h, &t, &bad).await.expect("the run ends by itself");
    assert!(report.aborted.as_deref().is_some_and(|a| a.contains("evil.example.com")), "{report:?}");
    let state = host_harness::state::State::open(&bad.sync.state_dir).expect("state");
    let runs = state.sync("failed-run").runs(10).expect("runs");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].status, host_harness::state::RunStatus::Failed, "{runs:?}");
    assert!(runs[0].message.as_deref().is_some_and(|m| m.contains("evil.example.com")), "{runs:?}");
}

// ---------------------------------------------------------------------------------------------
// one result per row

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_result_count_or_keys_fail_the_batch() {
    let s = Setup::new("contract").await;
    let h = harness(limits(|_| {}));
    // A run splits the batch until each record is alone, so its failures say what the plugin
    // did with one record.
    for (behaviour, says, alone) in [
        ("wrong-count", "2 results for 3 rows", "0 results for 1 rows"),
        ("wrong-keys", "for a key that was not sent", "for a key that was not sent"),
    ] {
        let job = s.job(&format!("contract-{behaviour}"), behaviour, 3).config::<JobConfig>();
        let t = prepare(&h, &job).await;
        match sync_batch(&t, 3).await {
            Err(HostError::Plugin { reason, .. }) => {
                assert!(reason.contains("sync-batch") && reason.contains(says), "{behaviour}: {reason}");
                assert!(reason.contains("contract requires exactly one"), "{behaviour}: {reason}");
            }
            other => panic!("{behaviour}: expected a contract error, got {other:?}"),
        }
        let report = run(&h, &t, &job).await.expect("the run completes");
        assert_eq!(report.counts.failed, 3, "{behaviour}: every item fails: {report:?}");
        assert_eq!(report.counts.created, 0, "{behaviour}: nothing is believed: {report:?}");
        let keys: Vec<&str> = report.failures.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["r1", "r2", "r3"]);
        for f in &report.failures {
            assert_eq!(f.code, ErrorCode::PluginFailure, "{f:?}");
            assert!(f.message.contains(alone), "{f:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// per-request timeout

/// A server on 127.0.0.1 that accepts connections, reads, and never answers.
async fn silent_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = sock.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    (url, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out_per_request() {
    let s = Setup::new("slow").await;
    let (url, accepted) = silent_server().await;
    let mut job = s.job("slow", "slow-server", 1);
    job.policy.remove("endpoint");
    let job = job.policy(&format!("endpoint = {}", q(&url))).limit("request_timeout_secs = 1").config::<JobConfig>();
    // The call's own deadline stays long: the request timeout must end it, not the deadline.
    let h = harness(limits(|l| l.request_timeout_secs = 1));
    assert_eq!(h.runtime().limits().call_deadline_secs, Limits::default().call_deadline_secs);
    let t = prepare(&h, &job).await;

    let started = std::time::Instant::now();
    let results = sync_batch(&t, 1).await.expect("a timeout is a per-record failure, not a dead call");
    assert!(started.elapsed() < GUARD);
    for m in all_failed_with(&results, ErrorCode::Timeout) {
        assert!(m.contains("/slow") && m.contains("Timeout"), "{m}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "the request reached the server");
}

// ---------------------------------------------------------------------------------------------
// rate limit

fn at_times(reqs: &[gladly_emulator::RecordedRequest]) -> Vec<Duration> {
    reqs.iter().map(|r| r.at).collect()
}

fn statuses(results: &[RecordResult]) -> Vec<String> {
    results.iter().flat_map(|r| r.remote_id.clone().unwrap_or_default().split(',').map(str::to_string).collect::<Vec<_>>()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_never_exceed_the_limit_in_any_second() {
    let s = Setup::new("rate").await;
    // All 30 requests are started at once: the subject is the rate limiter, so the per-instance
    // in-flight cap is raised out of its way.
    let job = s.job("rate", "many-requests", 1).set("count", "30").limit("in_flight_requests = 32").config::<JobConfig>();
    let mut job = job;
    job.policy.rate_limit_per_second = Some(10);
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    assert_eq!(t.rate_per_second, 10);

    let results = sync_batch(&t, 1).await.expect("the call works");
    let st = statuses(&results);
    assert_eq!(st.len(), 30, "{st:?}");
    assert!(st.iter().all(|s| s == "200"), "{st:?}");
    let reqs = s.emu.requests();
    assert_eq!(reqs.len(), 30);
    let most = max_in_window(&at_times(&reqs), Duration::from_secs(1));
    let mut t = at_times(&reqs);
    t.sort();
    let tightest = t.windows(11).map(|w| w[10] - w[0]).min().unwrap();
    eprintln!("busiest second: {most} requests; tightest 11 requests span {tightest:?}");
    assert_within_rate(&t, 10, "one tenant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_of_one_organization_share_the_budget() {
    let s = Setup::new("rate-shared").await;
    let mut a = s.job("rate-shared-a", "many-requests", 1).set("count", "15").limit("in_flight_requests = 32").config::<JobConfig>();
    let mut b = s.job("rate-shared-b", "many-requests", 1).set("count", "15").limit("in_flight_requests = 32").config::<JobConfig>();
    a.policy.rate_limit_per_second = Some(10);
    b.policy.rate_limit_per_second = Some(10);
    let h = harness(limits(|_| {}));
    let (ta, tb) = (prepare(&h, &a).await, prepare(&h, &b).await);
    let (la, lb) = (ta.policy.limiter.clone().unwrap(), tb.policy.limiter.clone().unwrap());
    assert!(Arc::ptr_eq(&la, &lb), "one limiter per organization");

    let (ra, rb) = tokio::join!(sync_batch(&ta, 1), sync_batch(&tb, 1));
    assert_eq!(statuses(&ra.unwrap()).len() + statuses(&rb.unwrap()).len(), 30);
    let reqs = requests_of(&s.emu, "acme");
    assert_eq!(reqs.len(), 30);
    assert_within_rate(&at_times(&reqs), 10, "two tenants of one organization");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn different_organizations_do_not_share_a_budget() {
    let s = Setup::new("rate-orgs").await;
    let mut a = s.job("rate-orgs-a", "many-requests", 1).set("count", "15").limit("in_flight_requests = 32").config::<JobConfig>();
    let mut b = s.job("rate-orgs-b", "many-requests", 1).set("count", "15").limit("in_flight_requests = 32").set("host", "beta.gladly.com").config::<JobConfig>();
    a.policy.rate_limit_per_second = Some(10);
    b.policy.rate_limit_per_second = Some(10);
    let h = harness(limits(|_| {}));
    let (ta, tb) = (prepare(&h, &a).await, prepare(&h, &b).await);
    assert!(!Arc::ptr_eq(ta.policy.limiter.as_ref().unwrap(), tb.policy.limiter.as_ref().unwrap()));

    let (ra, rb) = tokio::join!(sync_batch(&ta, 1), sync_batch(&tb, 1));
    assert!(statuses(&ra.unwrap()).iter().chain(statuses(&rb.unwrap()).iter()).all(|s| s == "200"));
    let (acme, beta) = (requests_of(&s.emu, "acme"), requests_of(&s.emu, "beta"));
    assert_eq!((acme.len(), beta.len()), (15, 15));
    assert_within_rate(&at_times(&acme), 10, "organization acme");
    assert_within_rate(&at_times(&beta), 10, "organization beta");
    let all = s.emu.requests();
    let most = max_in_window(&at_times(&all), Duration::from_secs(1));
    assert!(most > 12, "two organizations each use their own budget: only {most} requests in the busiest second");
}

// ---------------------------------------------------------------------------------------------
// imports

#[tokio::test]
async fn a_component_importing_sockets_is_refused_at_load() {
    let path = forbidden_import();
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    match rt.load(&path) {
        Err(e @ HostError::ForbiddenImport { .. }) => {
            let HostError::ForbiddenImport { import, path: shown } = &e else { unreachable!() };
            assert!(import.starts_with("wasi:sockets/"), "{import}");
            assert!(shown.contains("forbidden_import_guest.wasm"));
            assert!(e.to_string().contains(import.as_str()), "the message names the import: {e}");
        }
        Err(other) => panic!("expected ForbiddenImport, got {other}"),
        Ok(_) => panic!("a component importing wasi:sockets was loaded"),
    }
    // The harness refuses it the same way (and the hostile component, which imports only the
    // allowed interfaces, loads).
    let h = harness(Limits::default());
    assert!(matches!(h.plugin(&path), Err(HostError::ForbiddenImport { .. })));
    assert!(h.plugin(&hostile()).is_ok());
}

// ---------------------------------------------------------------------------------------------
// compile cache

fn cwasm_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn compiled_components_are_cached_and_a_corrupt_entry_is_recompiled() {
    let dir = TempDir::new("cache");
    let cache = dir.join("cache");
    let config = RuntimeConfig { cache_dir: Some(cache.clone()), pooling: false, limits: Limits::default() };
    let path = hostile();

    let load = |expect_cached: bool| {
        let rt = Runtime::new(config.clone()).unwrap();
        let plugin = rt.load(&path).expect("load");
        assert_eq!(plugin.from_cache(), expect_cached);
        (rt, plugin)
    };

    let (_rt1, p1) = load(false);
    let files = cwasm_files(&cache);
    assert_eq!(files.len(), 1, "exactly the artifact, no temporary file left: {files:?}");
    let entry = files[0].clone();
    assert!(entry.extension().is_some_and(|e| e == "cwasm"), "{entry:?}");
    assert!(entry.file_name().unwrap().to_string_lossy().starts_with(&p1.hash()[..32]));
    let good = std::fs::read(&entry).unwrap();

    {
        let (_rt2, p2) = load(true);
        assert_eq!(p2.hash(), p1.hash());
        assert_eq!(p2.spec().await.expect("a cached component runs").name, "hostile");
    }

    // Garbage, then a truncated artifact: ignored, recompiled, rewritten. The file is replaced
    // (not written in place) because a loaded artifact is memory-mapped.
    for corrupt in [b"not a compiled component".to_vec(), good[..good.len() / 2].to_vec()] {
        std::fs::remove_file(&entry).unwrap();
        std::fs::write(&entry, &corrupt).unwrap();
        {
            let (_rt3, p3) = load(false);
            assert_eq!(p3.spec().await.expect("the recompiled component runs").name, "hostile");
        }
        assert_eq!(cwasm_files(&cache), vec![entry.clone()]);
        assert_ne!(std::fs::read(&entry).unwrap(), corrupt, "the bad entry was rewritten");
        let (_rt4, p4) = load(true);
        drop(p4);
    }
}
