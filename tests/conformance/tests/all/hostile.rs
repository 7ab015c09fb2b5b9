//! The sandbox fails closed (docs/SECURITY.md): each test here is one promise of the threat
//! model, tried with a hostile plugin (tests/components/hostile) or a hostile server route of the
//! emulator (`/_hostile/…`) in the real host. Every test failed before the promise was kept.

use std::sync::atomic::Ordering;

use host_harness::contract::model::{ErrorCode, Outcome};
use host_harness::error::HostError;
use host_harness::job::JobConfig;
use host_harness::sandbox::{Runtime, RuntimeConfig};
use host_harness::sandbox::limits::Limits;
use host_harness::state::{StateError, lock_run};
use host_harness::sync::RunOptions;
use test_kit::{TempDir, assert_no_secret, hostile, q};

use crate::policy::{Setup, denials, harness, limits, prepare, run, sync_batch};

// ---------------------------------------------------------------------------------------------
// 1. grants come from the operator

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_without_grants_is_refused_with_the_fix() {
    let s = Setup::new("no-grant").await;
    let mut job = s.job("no-grant", "well-behaved", 1).config::<JobConfig>();
    job.policy.allow_hosts.clear();
    let h = harness(limits(|_| {}));
    let err = h.prepare(&job, &RunOptions::default()).await.err().expect("refused");
    assert_eq!(
        err.to_string(),
        "[policy] allow_hosts is missing: the operator must grant the hosts this tenant's plugin may reach (the plugin asks for: acme.gladly.com). Add allow_hosts = [\"acme.gladly.com\"] to the job file's [policy]"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_over_every_host_is_refused() {
    let s = Setup::new("star").await;
    let mut job = s.job("star", "well-behaved", 1).config::<JobConfig>();
    job.policy.allow_hosts = vec!["*".into()];
    let h = harness(limits(|_| {}));
    let err = h.prepare(&job, &RunOptions::default()).await.err().expect("refused");
    assert!(err.to_string().starts_with("[policy] allow_hosts entry \"*\" grants every host;"), "{err}");
}

/// The plugin declares a second host and the operator granted it too: the plugin can reach it,
/// but the credential goes only to the host the validated config resolved as its API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credential_goes_only_to_the_api_host() {
    let s = Setup::new("cred-bound").await;
    let job = s
        .job("cred-bound", "credential-elsewhere", 1)
        .set("extra-host", "collector.example.net")
        .policy(r#"allow_hosts = ["*.gladly.com", "collector.example.net"]"#)
        .config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    assert_eq!(t.policy.allowed_hosts, vec!["acme.gladly.com".to_string(), "collector.example.net".to_string()]);

    sync_batch(&t, 1).await.expect("the call returns");
    let seen: Vec<_> = s.emu.requests().into_iter().filter(|r| r.header("host") == Some("collector.example.net")).collect();
    assert_eq!(seen.len(), 1, "{:?}", s.emu.requests());
    assert_eq!(seen[0].header("authorization"), None, "the collector got the credential: {:?}", seen[0]);
}

// ---------------------------------------------------------------------------------------------
// 2. authority, method, address

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_in_the_authority_is_refused() {
    let s = Setup::new("userinfo").await;
    let job = s.job("userinfo", "userinfo", 1).config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    let results = sync_batch(&t, 1).await.expect("per-record failures");
    assert_eq!(results[0].outcome, Outcome::Failed, "{results:?}");
    assert_eq!(denials(&t), vec!["acme.gladly.com: user information in the URL is not allowed".to_string()]);
    assert!(s.emu.requests().is_empty(), "{:?}", s.emu.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_outside_the_allow_list_is_refused() {
    let s = Setup::new("trace").await;
    let job = s.job("trace", "trace-method", 1).config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    sync_batch(&t, 1).await.expect("per-record failures");
    assert_eq!(
        denials(&t),
        vec!["acme.gladly.com: the method TRACE is not allowed (allowed: GET, HEAD, POST, PUT, PATCH, DELETE)".to_string()]
    );
    assert!(s.emu.requests().is_empty(), "{:?}", s.emu.requests());
}

/// A literal non-public address is refused before anything else is looked at, even if an
/// operator granted it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_literal_metadata_address_is_refused() {
    let s = Setup::new("metadata").await;
    let job = s
        .job("metadata", "metadata-address", 1)
        .policy(r#"allow_hosts = ["*.gladly.com", "169.254.169.254"]"#)
        .config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    sync_batch(&t, 1).await.expect("per-record failures");
    assert_eq!(denials(&t), vec!["169.254.169.254: the address is a cloud metadata address".to_string()]);
    assert!(s.emu.requests().is_empty(), "{:?}", s.emu.requests());
}

/// A granted name that resolves to the host's own loopback is refused after DNS, before any
/// connection (no emulator redirect here: the request would really go to 127.0.0.1:443).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_name_resolving_to_loopback_is_refused() {
    let s = Setup::new("loopback").await;
    let mut job = s.job("loopback", "well-behaved", 1).set("host", "localhost").config::<JobConfig>();
    job.policy.allow_hosts = vec!["localhost".into()];
    job.policy.endpoint = None;
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    let results = sync_batch(&t, 1).await.expect("per-record failures");
    let message = &results[0].error.as_ref().expect("failed").message;
    assert!(message.contains("HttpRequestDenied"), "{message}");
    let d = denials(&t);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].starts_with("localhost: localhost resolved to "), "{d:?}");
    assert!(d[0].ends_with(", a loopback address; only public addresses are reachable"), "{d:?}");
}

// ---------------------------------------------------------------------------------------------
// 3. time hints

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_huge_retry_after_neither_panics_nor_freezes_the_host() {
    let s = Setup::new("retry-after").await;
    let job = s.job("retry-after", "huge-retry-after", 1).config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    let results = sync_batch(&t, 1).await.expect("the call returns");
    assert_eq!(results[0].remote_id.as_deref(), Some("status 429"), "{results:?}");
    assert_eq!(t.policy.stats.throttled.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_huge_retry_after_ms_does_not_park_the_run() {
    let s = Setup::new("retry-ms").await;
    let job = s.job("retry-ms", "huge-retry-after-ms", 2).limit("max_retries = 1").config::<JobConfig>();
    let h = harness(limits(|l| {
        l.max_retries = 1;
        l.backoff_base_ms = 10;
        l.backoff_max_ms = 50;
    }));
    let t = prepare(&h, &job).await;
    let report = run(&h, &t, &job).await.expect("the run ends by itself");
    assert_eq!(report.counts.failed, 2, "{report:?}");
    assert_eq!(report.counts.retry_attempts, 2, "{report:?}");
}

// ---------------------------------------------------------------------------------------------
// 4. host resources

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_flood_stops_at_the_header_cap() {
    let logs = test_kit::logs::captured();
    let s = Setup::new("headers").await;
    let job = s.job("header-flood", "header-flood", 1).config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    match sync_batch(&t, 1).await {
        Err(HostError::Plugin { reason, .. }) => {
            assert!(reason.contains("a header map of the plugin outgrew its size limit ([limits] header_bytes)"), "{reason}")
        }
        other => panic!("expected a plugin failure, got {other:?}"),
    }
    // The last total the plugin logged before the host stopped it: under [limits] header_bytes
    // (32 KiB of the host's representation, so fewer wire bytes fit).
    let text = logs.text();
    let most = text
        .lines()
        .filter(|l| l.contains("header-flood") && l.contains(" bytes appended"))
        .filter_map(|l| l.split("header-flood: ").nth(1)?.split(' ').next()?.parse::<usize>().ok())
        .max()
        .expect("the plugin logged its progress");
    assert!(most < 32 * 1024, "{most} bytes of headers were accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_flood_is_capped_per_instance() {
    let s = Setup::new("flood").await;
    let job = s.job("flood", "request-flood", 1).set("count", "20").set("hold-ms", "500").config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    let results = sync_batch(&t, 1).await.expect("the call returns");
    assert_eq!(results[0].remote_id.as_deref(), Some("ok=8 denied=12"), "{results:?}");
    assert_eq!(t.policy.stats.denied.load(Ordering::Relaxed), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_body_over_the_cap_fails_that_request() {
    let s = Setup::new("big-response").await;
    let job = s.job("big-response", "big-response", 1).set("count", "200000").limit("response_bytes = 65536").config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    let results = sync_batch(&t, 1).await.expect("the call returns");
    let e = results[0].error.as_ref().unwrap_or_else(|| panic!("the response was accepted: {results:?}"));
    assert!(e.message.ends_with("body: HTTP response body size exceeds limit: 65536 bytes"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_over_the_cap_is_refused() {
    let s = Setup::new("big-request").await;
    // The plugin streams its body without declaring its length; the emulator takes that here, so
    // what stops the body is the host's cap, not the server's 411.
    s.emu.set_switches(gladly_emulator::Switches { accept_chunked_bodies: true, ..Default::default() });
    let job = s.job("big-request", "big-request", 1).set("count", "1000000").limit("request_bytes = 65536").config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    let results = sync_batch(&t, 1).await.expect("the call returns");
    let e = results[0].error.as_ref().unwrap_or_else(|| panic!("the request went through: {results:?}"));
    assert!(e.message.contains("HttpRequestBodySize(Some(65536))"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_flood_traps_naming_the_limit() {
    let s = Setup::new("resources").await;
    let job = s.job("resources", "resource-flood", 1).config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    match sync_batch(&t, 1).await {
        Err(HostError::Plugin { reason, .. }) => {
            assert!(reason.contains("the instance holds more host resources than allowed ([limits] resources)"), "{reason}")
        }
        other => panic!("expected a plugin failure, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 5. a poison row costs only itself

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_on_one_row_in_sync_batch_fails_only_that_row() {
    let s = Setup::new("poison-sync").await;
    let job = s.job("poison-sync", "trap-on-key", 30).set("poison-key", "r17").config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    let report = run(&h, &t, &job).await.expect("the run completes");
    assert_eq!((report.counts.created, report.counts.failed), (29, 1), "{report:?}");
    assert_eq!(report.failures.len(), 1, "{report:?}");
    let f = &report.failures[0];
    assert_eq!((f.key.as_str(), f.code, f.retried_next_run), ("r17", ErrorCode::PluginFailure, false), "{f:?}");

    // Unchanged, it is not sent again: the next run sends nothing.
    let again = run(&h, &t, &job).await.expect("the second run completes");
    assert_eq!((again.counts.created, again.counts.failed, again.counts.still_invalid), (0, 0, 1), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_on_one_row_in_map_rows_costs_only_that_row() {
    let s = Setup::new("poison-map").await;
    let job = s.job("poison-map", "trap-on-key-in-map", 30).set("poison-key", "r5").config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    let report = run(&h, &t, &job).await.expect("the run completes");
    assert_eq!((report.counts.created, report.counts.invalid), (29, 1), "{report:?}");
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert_eq!((report.failures[0].key.as_str(), report.failures[0].code), ("r5", ErrorCode::PluginFailure));
}

// ---------------------------------------------------------------------------------------------
// 6. guest output

/// The API host echoes request headers (the Basic credential with them) and the plugin hands
/// the echo back everywhere it can: log, stdout, remote id, payload, error message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_token_is_scrubbed_from_everything_the_plugin_returns() {
    let logs = test_kit::logs::captured();
    let s = Setup::new("echo").await;
    let mut job = s.job("echo-token", "echo-token", 2).config::<JobConfig>();
    let results_file = job.sync.state_dir.with_file_name("echo-results.jsonl");
    job.results = Some(host_harness::results::ResultsConfig { table: None, jsonl: Some(results_file.clone()) });
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    let report = run(&h, &t, &job).await.expect("the run completes");

    let echo = s.emu.requests().into_iter().find(|r| r.path == "/_hostile/echo-headers").expect("the echo was asked");
    assert_eq!(echo.header("authorization"), Some(s.creds.basic().as_str()), "there was a token to leak");
    assert_eq!(report.failures.len(), 2, "{report:?}");
    let r1 = report.failures.iter().find(|f| f.key == "r1").unwrap();
    assert_eq!(r1.message, "row r1: the plugin returned a remote id that contains control characters; the plugin must be fixed");
    let r2 = report.failures.iter().find(|f| f.key == "r2").unwrap();
    assert!(r2.message.contains("authorization: Basic [redacted]"), "{}", r2.message);

    let report_json = serde_json::to_string_pretty(&report).unwrap();
    assert_no_secret(&s.creds, "the run report", &report_json);
    let results = std::fs::read_to_string(&results_file).unwrap();
    assert_eq!(results.lines().count(), 2, "{results}");
    assert!(results.contains("authorization: Basic [redacted]"), "{results}");
    assert_no_secret(&s.creds, "the results file", &results);
    let text = logs.text();
    let mine: Vec<&str> = text.lines().filter(|l| l.contains("echo-token")).collect();
    assert!(mine.iter().any(|l| l.contains("echoed: ") && l.contains("[redacted]")), "the echo was logged: {mine:?}");
    assert_no_secret(&s.creds, "the logs", &text);
    // The database and its write-ahead log (recent writes live there until a checkpoint).
    for entry in std::fs::read_dir(&job.sync.state_dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert_no_secret(&s.creds, &path.display().to_string(), &String::from_utf8_lossy(&bytes));
    }
}

/// The stdio capture's cap (64 KiB) holds per call: a plugin printing 40 KiB in every batch
/// gets a fresh instance (a fresh capture) for each, so five batches through one sender all end
/// well, where an instance kept across them would trap on its second batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_prints_in_every_batch_gets_a_fresh_capture_each_time() {
    let s = Setup::new("chatty").await;
    let job = s.job("chatty", "chatty", 10).config::<JobConfig>();
    let h = harness(limits(|l| {
        l.batch_size = 2;
        l.max_concurrency = 1;
    }));
    let t = prepare(&h, &job).await;
    let report = run(&h, &t, &job).await.expect("the run completes");
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert_eq!(report.counts.created, 10, "{}", report.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_is_budgeted_and_cannot_forge_a_line() {
    let logs = test_kit::logs::captured();
    let s = Setup::new("log-flood").await;
    let job = s.job("log-flood-tenant", "log-flood", 1).set("count", "200").config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    sync_batch(&t, 1).await.expect("the call returns");
    let text = logs.text();
    let mine: Vec<&str> = text.lines().filter(|l| l.contains("log-flood-tenant")).collect();
    let flood = mine.iter().filter(|l| l.contains("plugin: flood ")).count();
    // 65,536 bytes of budget: the escaped forged line takes 72, then 64 flood lines of 1,012 fit.
    assert_eq!(flood, 64, "{} lines", mine.len());
    assert_eq!(mine.iter().filter(|l| l.contains("[log budget of this call used up")).count(), 1);
    assert!(!text.lines().any(|l| l.starts_with("2026-12-02T06:00:00.000000Z  INFO tenant=victim")), "a forged line");
    assert!(mine.iter().any(|l| l.contains("plugin: ok\\n2026-12-02T06:00:00.000000Z")), "the forged line is escaped in place");
}

// ---------------------------------------------------------------------------------------------
// 7. one run per sync

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_of_a_sync_in_progress_is_refused() {
    let s = Setup::new("one-run").await;
    let job = s.job("one-run", "well-behaved", 2).config::<JobConfig>();
    let h = harness(limits(|_| {}));
    let t = prepare(&h, &job).await;
    // What a run in progress holds.
    let held = lock_run(&job.sync.state_dir, "one-run").expect("the lock is free");
    match run(&h, &t, &job).await {
        Err(HostError::State(e @ StateError::Busy { .. })) => assert_eq!(
            e.to_string(),
            format!(
                "another run of sync one-run is in progress (it holds {}); wait for it to finish or stop it, then run again",
                held.path().display()
            )
        ),
        other => panic!("expected the run to be refused, got {other:?}"),
    }
    drop(held);
    assert_eq!(run(&h, &t, &job).await.expect("runs once the first ended").counts.created, 2);
}

// ---------------------------------------------------------------------------------------------
// 8. the compile cache is trusted only when it is ours

fn cached_entry(cache: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(cache).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "cwasm")).unwrap()
}

fn loads_from_cache(cache: &std::path::Path) -> bool {
    let rt = Runtime::new(RuntimeConfig { cache_dir: Some(cache.to_path_buf()), pooling: false, limits: Limits::default() }).unwrap();
    rt.load(&hostile()).expect("load").from_cache()
}

#[test]
fn a_cache_entry_others_can_write_is_recompiled_not_loaded() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("cache-mode");
    let cache = dir.join("cache");
    assert!(!loads_from_cache(&cache));
    assert!(loads_from_cache(&cache), "a private entry is loaded");
    let entry = cached_entry(&cache);
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(!loads_from_cache(&cache), "a world-writable entry must not be loaded");
}

#[test]
fn a_cache_folder_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("cache-dir-mode");
    let cache = dir.join("cache");
    assert!(!loads_from_cache(&cache));
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(!loads_from_cache(&cache), "an entry in a world-writable folder must not be loaded");
}

#[test]
fn a_cache_entry_owned_by_another_user_is_not_loaded() {
    let dir = TempDir::new("cache-owner");
    let cache = dir.join("cache");
    assert!(!loads_from_cache(&cache));
    let entry = cached_entry(&cache);
    // `nobody`; the suite runs as root in CI, which may give files away.
    std::os::unix::fs::chown(&entry, Some(65534), Some(65534)).expect("chown (the suite runs as root)");
    assert!(!loads_from_cache(&cache), "another user's entry must not be loaded");
}

// ---------------------------------------------------------------------------------------------
// 9. job-file limits

#[test]
fn out_of_range_limits_in_a_job_file_are_refused_naming_the_key() {
    let dir = TempDir::new("limits");
    let job = test_kit::Job::new("limits", &hostile(), dir.path())
        .csv(&dir.file("rows.csv", "id\n1\n"), "id")
        .limit("batch_size = 0")
        .write(dir.join("job.toml"));
    let err = JobConfig::load(&job).err().expect("refused");
    assert!(
        err.to_string().contains("[limits] batch_size = 0 is out of range; allowed: 1 to 1000 (records)"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// the development-only redirect

#[test]
fn a_redirect_to_an_emulator_is_refused_without_the_development_switch() {
    let dir = TempDir::new("no-switch");
    let job = test_kit::Job::new("no-switch", &hostile(), dir.path())
        .csv(&dir.file("rows.csv", "id\n1\n"), "id")
        .set("behaviour", "well-behaved")
        .token_env("NO_SWITCH_TOKEN")
        .policy(r#"allow_hosts = ["*.gladly.com"]"#)
        .policy(&format!("endpoint = {}", q("http://127.0.0.1:9")))
        .write(dir.join("job.toml"));
    let out = std::process::Command::new(test_kit::components::destination_host())
        .args(["validate", "--config"])
        .arg(&job)
        .env_remove("DESTINATION_HOST_ALLOW_EMULATOR")
        .env("NO_SWITCH_TOKEN", "t")
        .output()
        .expect("run destination-host");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("for development only") && stderr.contains("DESTINATION_HOST_ALLOW_EMULATOR=1"), "{stderr}");
}
