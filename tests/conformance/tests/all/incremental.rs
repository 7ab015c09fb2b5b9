//! Incremental, exactly-once syncs: the real component, the host's run pipeline and the Gladly
//! emulator. Every assertion is on counts (the emulator's request log, the run report, the
//! profiles stored, the sync state), never on elapsed time.
//!
//! Needs the components (`cargo xtask build`) and the `destination-host` binary. Run:
//! `cargo test -p conformance --test all incremental::`.

mod support;

use std::time::Duration;

use gladly_emulator::{EmulatorConfig, Fault, FaultRule, Method};
use host_harness::contract::model::{ErrorCode, Outcome};
use host_harness::sync::plan;
use host_harness::state::{RunStatus, State};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::*;
use test_kit::PROFILES;
use test_kit::profiles::{emails, with_email};

// ---------------------------------------------------------------------------------------------
// Re-syncs: nothing changed, one attribute changed, an email changed.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_rerun_sends_nothing_and_one_percent_change_costs_one_patch_each() {
    let mut fx = Fixture::new("rerun", 200).await;

    // First sync into an empty organization: one create per row, no lookup (create-first).
    let first = fx.sync().await;
    assert_eq!(first.counts.created, 200, "{}", first.summary());
    assert!(first.failures.is_empty(), "{}", first.summary());
    let reqs = fx.requests();
    assert_eq!(reqs.iter().filter(|r| is_find(r)).count(), 0);
    assert_eq!(reqs.iter().filter(|r| r.method == "POST").count(), 200);
    assert_eq!(reqs.len(), 200);
    assert_eq!(fx.profiles().len(), 200);

    // Second sync, nothing changed: no request at all, every row reported unchanged.
    fx.clear();
    let second = fx.sync().await;
    assert!(fx.requests().is_empty(), "{:?}", summary(&fx.requests()));
    assert_eq!(second.requests, 0);
    assert_eq!(second.counts.unchanged, 200, "{}", second.summary());
    assert_eq!((second.counts.created, second.counts.updated, second.counts.failed), (0, 0, 0));

    // The same tenant used for two runs (the library API allows it): each report counts its own run.
    let tenant = fx.harness.prepare(&fx.job, &Default::default()).await.unwrap();
    let a = fx.harness.run(&tenant, &fx.job, &Default::default()).await.unwrap();
    let b = fx.harness.run(&tenant, &fx.job, &Default::default()).await.unwrap();
    assert_eq!((a.requests, b.requests), (0, 0));

    // 1% of the rows (2 of 200) change one top-level field (the name): one PATCH each, to the
    // known id.
    let changed = ["c0017", "c0123"];
    fx.edit_rows(|rows| {
        for r in rows.iter_mut().filter(|r| changed.contains(&r.id.as_str())) {
            r.name = format!("Renamed {}", r.id);
        }
    });
    let ids: Vec<String> = changed.iter().map(|k| fx.id_of(&format!("customer{}@example.com", k[1..].parse::<usize>().unwrap()))).collect();
    fx.clear();
    let third = fx.sync().await;
    let reqs = fx.requests();
    assert_eq!(reqs.len(), 2, "{:?}", summary(&reqs));
    assert!(reqs.iter().all(|r| r.method == "PATCH"), "{:?}", summary(&reqs));
    let mut paths: Vec<String> = reqs.iter().map(|r| r.path.clone()).collect();
    paths.sort();
    let mut expected: Vec<String> = ids.iter().map(|id| format!("{PROFILES}/{id}")).collect();
    expected.sort();
    assert_eq!(paths, expected);
    for r in &reqs {
        assert!(r.body.as_ref().unwrap()["name"].as_str().unwrap().starts_with("Renamed c0"));
        assert!(r.body.as_ref().unwrap().get("emails").is_none(), "no emails in a patch that does not change them");
    }
    assert_eq!(third.counts.updated, 2, "{}", third.summary());
    assert_eq!(third.counts.unchanged, 198);
    assert_eq!(third.requests, 2);
    for (id, key) in ids.iter().zip(changed) {
        let p = fx.emulator.profile(ORG, id).unwrap();
        assert_eq!(p["name"], format!("Renamed {key}"));
    }

    // 1% change one custom attribute: with the default `custom-attributes-patch = "replace"`
    // each changed row is read, then patched with the profile's attributes and ours (with
    // "merge" it is one PATCH; the conformance suite's `updates` tests show it). No find.
    fx.edit_rows(|rows| {
        for r in rows.iter_mut().filter(|r| changed.contains(&r.id.as_str())) {
            r.tier = "gold".into();
        }
    });
    fx.clear();
    let fourth = fx.sync().await;
    let reqs = fx.requests();
    assert_eq!(reqs.len(), 4, "{:?}", summary(&reqs));
    assert_eq!(reqs.iter().filter(|r| r.method == "GET").count(), 2, "{:?}", summary(&reqs));
    assert!(!reqs.iter().any(is_find), "{:?}", summary(&reqs));
    let patches: Vec<_> = reqs.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 2, "{:?}", summary(&reqs));
    for r in &patches {
        assert_eq!(r.body.as_ref().unwrap()["customAttributes"]["tier"], "gold");
    }
    assert_eq!(fourth.counts.updated, 2, "{}", fourth.summary());
    for id in &ids {
        assert_eq!(fx.emulator.profile(ORG, id).unwrap()["customAttributes"]["tier"], "gold");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_email_is_read_and_merged_keeping_existing_emails() {
    let mut fx = Fixture::new("email", 10).await;
    assert_eq!(fx.sync().await.counts.created, 10);
    let id = fx.id_of("customer3@example.com");

    // An agent adds a second email to the profile in Gladly.
    let mut p = fx.emulator.profile(ORG, &id).unwrap();
    p["emails"].as_array_mut().unwrap().push(json!({"original": "agent-added@example.com"}));
    fx.emulator.insert_profile(ORG, p);

    fx.edit_rows(|rows| rows[3].email = "new3@example.com".into());
    fx.clear();
    let r = fx.sync().await;
    let reqs = fx.requests();
    assert_eq!(summary(&reqs), vec![format!("GET {PROFILES}/{id} -> Some(200)"), format!("PATCH {PROFILES}/{id} -> Some(204)")]);
    let body = reqs[1].body.as_ref().unwrap();
    let originals: Vec<&str> = body["emails"].as_array().unwrap().iter().map(|e| e["original"].as_str().unwrap()).collect();
    assert_eq!(originals, vec!["customer3@example.com", "agent-added@example.com", "new3@example.com"]);
    assert_eq!(r.counts.updated, 1);
    assert_eq!(r.counts.unchanged, 9);
    let stored = emails(&fx.emulator.profile(ORG, &id).unwrap());
    for e in ["customer3@example.com", "agent-added@example.com", "new3@example.com"] {
        assert!(stored.contains(&e.to_string()), "{e} missing from {stored:?}");
    }
    assert_eq!(fx.profiles().len(), 10);
}

// ---------------------------------------------------------------------------------------------
// Context changes: mapping, component version.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_and_component_changes_resend_and_preview_says_so() {
    let mut fx = Fixture::new("context", 20).await;
    assert_eq!(fx.sync().await.counts.created, 20);

    // Add a column to the mapping.
    let mut spec = fx.spec.clone();
    spec.mapping.push(("city", "customAttributes.city"));
    fx.set_job(spec);

    fx.clear();
    let preview = fx.preview().await;
    assert!(fx.requests().is_empty(), "a preview sends nothing");
    assert!(
        preview.notes.iter().any(|n| n.contains("mapping changed: 20 records will be re-sent")),
        "{:?}",
        preview.notes
    );
    assert!(preview.notes.iter().any(|n| n.contains("a sync would send 20 record(s)")), "{:?}", preview.notes);
    assert!(
        preview.notes.iter().any(|n| n.starts_with("preview: 0 new (would be created), 20 changed (would be updated), 0 unchanged, 0 retried")),
        "{:?}",
        preview.notes
    );

    let sync = fx.sync().await;
    let reqs = fx.requests();
    // Known ids: no find; a changed attribute map is read and merged first (the default
    // `custom-attributes-patch = "replace"`), then one PATCH per record.
    assert_eq!(reqs.len(), 40, "{:?}", summary(&reqs));
    assert!(!reqs.iter().any(is_find), "{:?}", summary(&reqs));
    assert_eq!(reqs.iter().filter(|r| r.method == "GET").count(), 20, "{:?}", summary(&reqs));
    assert_eq!(reqs.iter().filter(|r| r.method == "PATCH").count(), 20, "{:?}", summary(&reqs));
    assert_eq!(sync.counts.updated, 20, "{}", sync.summary());
    let c5 = fx.emulator.profile(ORG, &fx.id_of("customer5@example.com")).unwrap();
    assert_eq!(c5["customAttributes"]["city"], "City 5");
    assert_eq!(c5["customAttributes"]["tier"], "silver");

    fx.clear();
    let again = fx.sync().await;
    assert!(fx.requests().is_empty());
    assert_eq!(again.counts.unchanged, 20);
    assert!(again.notes.is_empty(), "{:?}", again.notes);

    // A new component version: state written by an older build (its fingerprints and meta).
    let old_version = "0.0.1 000000000000";
    {
        let state = State::open(&fx.job.sync.state_dir).unwrap();
        let meta = state.sync(&fx.job.sync.id).meta().unwrap().unwrap();
        let records = fx.state();
        assert_eq!(records.len(), 20);
        let mut b = state.sync(&fx.job.sync.id).batch().unwrap();
        for (key, r) in &records {
            let payload = r.payload.as_deref().unwrap();
            let fp = host_harness::fingerprint::fingerprint(payload, &meta.mapping_fingerprint, old_version);
            b.record_success(key, fp, payload, r.remote_id.as_deref(), Outcome::Updated).unwrap();
        }
        b.commit().unwrap();
        state.sync(&fx.job.sync.id).set_meta(&meta.mapping_fingerprint, old_version).unwrap();
        // The planner sees the version change.
        let planner = plan::Planner::new(state.sync(&fx.job.sync.id), &meta.mapping_fingerprint, "0.0.2 111111111111").unwrap();
        let change = planner.context_change().unwrap();
        assert!(!change.mapping_changed);
        assert_eq!(change.version_change, Some((old_version.to_string(), "0.0.2 111111111111".to_string())));
    }
    fx.clear();
    let preview = fx.preview().await;
    assert!(
        preview.notes.iter().any(|n| n.starts_with(&format!("component version changed ({old_version} →")) && n.ends_with("20 records will be re-sent")),
        "{:?}",
        preview.notes
    );
    let sync = fx.sync().await;
    // Re-sent to the component, which finds the mapped profiles identical to what Gladly
    // confirmed: no request needed.
    assert_eq!(sync.counts.confirmed_unchanged, 20, "{}", sync.summary());
    assert!(fx.requests().is_empty(), "{:?}", summary(&fx.requests()));
    let after = fx.sync().await;
    assert_eq!(after.counts.unchanged, 20, "the state now carries the new version's fingerprints");
}

// ---------------------------------------------------------------------------------------------
// Failed records: transient ones retried next run, validation ones only once changed.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_next_run_and_validation_failures_once_changed() {
    let mut rows = people(10);
    for (i, r) in rows.iter_mut().enumerate() {
        r.mobile = format!("+1415555{:04}", 2600 + i);
    }
    let mut spec = JobSpec::upsert("incr-failures");
    spec.mapping.push(("mobile", "mobilePhone"));
    spec.limits.push("max_retries = 0".into());
    let mut fx = Fixture::with("failures", rows, spec, EmulatorConfig { rate_limit_per_second: 1000, ..Default::default() }).await;
    // An agent's profile already holds c0009's mobile number: creating c0009 conflicts (409).
    fx.emulator.insert_profile(
        ORG,
        json!({"id": "agent-1", "emails": [{"original": "someone.else@example.com"}],
               "phones": [{"original": "+14155552609", "type": "MOBILE"}]}),
    );
    // Two creates fail with 503 on the first run.
    fx.emulator.set_faults(vec![FaultRule::on_requests(Fault::Status5xx(503), [2, 5]).method(Method::POST)]);

    let first = fx.sync().await;
    assert_eq!(first.counts.created, 7, "{}", first.summary());
    assert_eq!(first.counts.failed, 3);
    let transient: Vec<_> = first.failures.iter().filter(|f| f.kind == "transient").collect();
    let validation: Vec<_> = first.failures.iter().filter(|f| f.kind == "validation").collect();
    assert_eq!(transient.len(), 2, "{:?}", first.failures);
    assert!(transient.iter().all(|f| f.retried_next_run && f.code == ErrorCode::ServerError && f.http_status == Some(503)));
    assert_eq!(validation.len(), 1);
    assert_eq!(validation[0].key, "c0009");
    assert_eq!(validation[0].code, ErrorCode::Conflict);
    assert!(!validation[0].retried_next_run);
    let transient_keys: Vec<String> = transient.iter().map(|f| f.key.clone()).collect();

    // Second run, no data change and no faults: the transient ones are sent again, the
    // validation one is not. The preview says so first, without sending anything.
    fx.emulator.set_faults(vec![]);
    fx.clear();
    let preview = fx.preview().await;
    assert!(fx.requests().is_empty(), "a preview sends nothing");
    assert!(
        preview.notes.iter().any(|n| n == "preview: 0 new (would be created), 0 changed (would be updated), 7 unchanged, 2 retried from the last run, 1 rejected (0 invalid rows, 1 still invalid)"),
        "{:?}",
        preview.notes
    );
    assert!(preview.notes.iter().any(|n| n.starts_with("a sync would send 2 record(s): about 4 request(s)")), "{:?}", preview.notes);
    let second = fx.sync().await;
    assert_eq!(second.counts.retried_from_last_run, 2, "{}", second.summary());
    assert_eq!(second.counts.created, 2);
    assert_eq!(second.counts.still_invalid, 1);
    assert_eq!(second.counts.unchanged, 7);
    assert_eq!(second.failures.len(), 1);
    assert_eq!((second.failures[0].key.as_str(), second.failures[0].kind), ("c0009", "validation"));
    assert!(!second.failures[0].retried_next_run);
    assert_eq!(second.failures[0].attempts, 0, "not sent");
    let reqs = fx.requests();
    // Two creates, each its one POST (create-first into an organization without them).
    assert_eq!(reqs.len(), 2, "{:?}", summary(&reqs));
    assert!(!reqs.iter().any(|r| r.path.contains("customer9%40") || r.body.as_ref().is_some_and(|b| b.to_string().contains("customer9@"))));
    for k in &transient_keys {
        let i: usize = k[1..].parse().unwrap();
        fx.id_of(&format!("customer{i}@example.com"));
    }

    // Third run, still unchanged: still not sent.
    fx.clear();
    let third = fx.sync().await;
    assert!(fx.requests().is_empty());
    assert_eq!(third.counts.still_invalid, 1);

    // Fixing the row sends it again.
    fx.edit_rows(|rows| rows[9].mobile = "+14155552699".into());
    let fourth = fx.sync().await;
    assert_eq!(fourth.counts.created, 1, "{}", fourth.summary());
    assert!(fourth.failures.is_empty());
    assert_exactly_once(&fx.profiles(), &fx.rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_failed_by_a_configuration_error_are_sent_once_it_is_fixed() {
    let mut spec = JobSpec::upsert("incr-config");
    spec.token_file = "wrong-token".into();
    let mut fx = Fixture::with("config", people(30), spec.clone(), EmulatorConfig { rate_limit_per_second: 1000, ..Default::default() }).await;
    let bad = fx.sync().await;
    assert!(bad.aborted.is_some(), "{}", bad.summary());
    assert_eq!(bad.counts.created, 0);
    assert!(bad.failures.iter().all(|f| f.retried_next_run), "{:?}", bad.failures);
    assert!(fx.profiles().is_empty());

    spec.token_file = "token".into();
    fx.set_job(spec);
    let good = fx.sync().await;
    assert_eq!(good.counts.created, 30, "{}", good.summary());
    assert_eq!(good.counts.still_invalid, 0);
    assert_exactly_once(&fx.profiles(), &fx.rows);
}

// ---------------------------------------------------------------------------------------------
// Rows that left the source.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disappeared_rows_are_reported_and_left_alone() {
    let mut fx = Fixture::new("gone", 10).await;
    assert_eq!(fx.sync().await.counts.created, 10);
    // Two rows leave the source; one stays but no longer maps (bad email): it did not disappear.
    fx.edit_rows(|rows| {
        rows.retain(|r| r.id != "c0002" && r.id != "c0007");
        rows[0].email = "not-an-email".into();
    });
    fx.clear();
    let r = fx.sync().await;
    assert!(fx.requests().is_empty(), "{:?}", summary(&fx.requests()));
    assert_eq!(r.counts.invalid, 1, "{}", r.summary());
    assert_eq!(r.counts.disappeared, 2, "{}", r.summary());
    assert!(r.notes.iter().any(|n| n.starts_with("2 record(s) synced before are no longer returned by the source")), "{:?}", r.notes);
    assert_eq!(fx.profiles().len(), 10, "left as they are in Gladly");
    // Still reported (not forgotten) on the next run.
    let again = fx.sync().await;
    assert_eq!(again.counts.disappeared, 2);
}

// ---------------------------------------------------------------------------------------------
// Killed mid-run, then re-run.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_run_then_rerun_syncs_every_row_exactly_once() {
    const ROWS: usize = 150;
    for seed in [11u64, 23, 37, 58] {
        let mut spec = JobSpec::upsert(&format!("incr-kill-{seed}"));
        spec.rate_limit = 100;
        let fx = Fixture::with(
            &format!("kill{seed}"),
            people(ROWS),
            spec,
            EmulatorConfig { rate_limit_per_second: 1000, latency: Duration::from_millis(40), seed, ..Default::default() },
        )
        .await;
        // Kill once the emulator has seen a seeded random number of requests (of ~2 per row).
        let kill_at = rand::rngs::StdRng::seed_from_u64(seed).random_range(5..(2 * ROWS - 10));
        let exited = fx.sync_killed_after(kill_at).await;
        assert!(
            exited.is_none(),
            "seed {seed}: the run ended ({exited:?}) before the kill point {kill_at}: {}",
            std::fs::read_to_string(fx.path("stderr.log")).unwrap_or_default()
        );
        let partial = fx.profiles().len();
        fx.settle().await;

        let mut cmd = fx.sync_command();
        let status = tokio::task::spawn_blocking(move || cmd.status()).await.unwrap().unwrap();
        assert!(status.success(), "seed {seed}: the re-run failed ({status}): {}", std::fs::read_to_string(fx.path("stderr.log")).unwrap_or_default());
        let profiles = fx.profiles();
        assert_eq!(profiles.len(), ROWS, "seed {seed}: killed after {kill_at} requests ({partial} profiles)");
        assert_exactly_once(&profiles, &fx.rows);
        let report: Value = serde_json::from_slice(&std::fs::read(fx.path("report.json")).unwrap()).unwrap();
        let c = &report["counts"];
        let handled = c["created"].as_u64().unwrap() + c["updated"].as_u64().unwrap() + c["confirmed_unchanged"].as_u64().unwrap() + c["unchanged"].as_u64().unwrap();
        assert_eq!(handled, ROWS as u64, "seed {seed}: {report}");

        // A third run finds everything confirmed: no request.
        fx.clear();
        let mut cmd = fx.sync_command();
        let status = tokio::task::spawn_blocking(move || cmd.status()).await.unwrap().unwrap();
        assert!(status.success());
        assert!(fx.requests().is_empty(), "seed {seed}: {:?}", summary(&fx.requests()));
        let report: Value = serde_json::from_slice(&std::fs::read(fx.path("report.json")).unwrap()).unwrap();
        assert_eq!(report["counts"]["unchanged"], ROWS as u64);
        let state = State::open(&fx.job.sync.state_dir).unwrap();
        let runs = state.sync(&fx.job.sync.id).runs(10).unwrap();
        assert_eq!(runs.iter().map(|r| r.status).collect::<Vec<_>>(), vec![RunStatus::Succeeded, RunStatus::Succeeded, RunStatus::Interrupted]);
        assert_eq!(state.integrity_check().unwrap(), "ok");
    }
}

/// At Gladly's rate a killed run costs its re-run only the `sync-batch` calls it had in flight,
/// each about 2 s of requests over the senders (`sync/concurrency.rs`), not every row it had
/// started. With 20-record calls over the plugin's 5 suggested senders, the first call was
/// confirmed only after ~100 requests, so a kill at 70 left 69 created rows the state did not
/// know, all sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_at_gladlys_rate_sends_again_only_a_few_seconds_of_rows() {
    const ROWS: usize = 100;
    const KILL_AT: usize = 80; // requests seen by the emulator, one per row (create-first)
    // The most out at once: the 5 senders first admitted each finish their first batch in
    // 10-record calls after the target falls to 2 (later, 2 senders × 10).
    const BOUND: u64 = 50;
    let mut spec = JobSpec::upsert("incr-kill-bound");
    spec.rate_limit = 10;
    let fx = Fixture::with(
        "killbound",
        people(ROWS),
        spec,
        EmulatorConfig { rate_limit_per_second: 1000, latency: Duration::from_millis(50), seed: 5, ..Default::default() },
    )
    .await;
    let exited = fx.sync_killed_after(KILL_AT).await;
    assert!(exited.is_none(), "the run ended ({exited:?}) before the kill point");
    fx.settle().await;
    let created_before_rerun = fx.profiles().len() as u64;

    let mut cmd = fx.sync_command();
    let status = tokio::task::spawn_blocking(move || cmd.status()).await.unwrap().unwrap();
    assert!(status.success(), "the re-run failed ({status})");
    let report: Value = serde_json::from_slice(&std::fs::read(fx.path("report.json")).unwrap()).unwrap();
    // Rows the state had confirmed are skipped without a request; every other row Gladly
    // already held was sent again.
    let confirmed = report["counts"]["unchanged"].as_u64().unwrap();
    let sent_again = created_before_rerun - confirmed;
    assert!(sent_again <= BOUND, "{sent_again} rows sent again ({created_before_rerun} created before the kill, {confirmed} confirmed): {report}");
    assert_eq!(fx.profiles().len(), ROWS);
    assert_exactly_once(&fx.profiles(), &fx.rows);
}

// ---------------------------------------------------------------------------------------------
// Injected faults: no duplicate, no missing profile.
// ---------------------------------------------------------------------------------------------

/// Syncs `rows` rows with `faults` active on the first run (re-running while records fail), then
/// checks every row has exactly one profile holding its data.
async fn create_under_faults(tag: &str, faults: Vec<FaultRule>, extra_limits: &[&str]) -> Vec<host_harness::sync::report::RunReport> {
    let mut spec = JobSpec::upsert(&format!("incr-{tag}"));
    spec.limits.extend(extra_limits.iter().map(|s| s.to_string()));
    let fx = Fixture::with(tag, people(30), spec, EmulatorConfig { rate_limit_per_second: 1000, seed: 3, faults, ..Default::default() }).await;
    let reports = fx.sync_until_clean(4).await;
    let last = reports.last().unwrap();
    assert!(last.failures.is_empty(), "{tag}: {}", last.summary());
    fx.settle().await;
    let profiles = fx.profiles();
    assert_eq!(profiles.len(), 30, "{tag}");
    assert_exactly_once(&profiles, &fx.rows);
    assert!(fx.requests().iter().any(|r| r.fault.is_some()), "{tag}: no fault fired");
    fx.clear();
    let quiet = fx.sync().await;
    assert!(fx.requests().is_empty(), "{tag}: {:?}", summary(&fx.requests()));
    assert_eq!(quiet.counts.unchanged, 30);
    reports
}

/// First syncs 30 rows cleanly, then changes an attribute on all of them and syncs with
/// `faults` on the PATCHes.
async fn update_under_faults(tag: &str, faults: Vec<FaultRule>) {
    let mut fx = Fixture::new(tag, 30).await;
    assert_eq!(fx.sync().await.counts.created, 30);
    fx.edit_rows(|rows| rows.iter_mut().for_each(|r| r.tier = "platinum".into()));
    fx.emulator.set_faults(faults);
    let reports = fx.sync_until_clean(4).await;
    assert!(reports.last().unwrap().failures.is_empty(), "{tag}: {}", reports.last().unwrap().summary());
    fx.settle().await;
    let profiles = fx.profiles();
    assert_eq!(profiles.len(), 30, "{tag}");
    assert_exactly_once(&profiles, &fx.rows);
    assert!(profiles.iter().all(|p| p["customAttributes"]["tier"] == "platinum"), "{tag}");
    assert!(fx.requests().iter().any(|r| r.fault.is_some() && r.method == "PATCH"), "{tag}: no fault fired");
    fx.clear();
    assert_eq!(fx.sync().await.counts.unchanged, 30);
    assert!(fx.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_429_burst() {
    let reports = create_under_faults("f429", vec![FaultRule::on_requests(Fault::Status429, 3..=14)], &[]).await;
    assert!(reports[0].throttled >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_5xx() {
    create_under_faults("f5xx", vec![FaultRule::probability(Fault::Status5xx(503), 0.25)], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_drop_before_apply_on_post() {
    create_under_faults("fdbp", vec![FaultRule::on_requests(Fault::DropBeforeApply, [1, 4, 9, 16]).method(Method::POST)], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_drop_after_apply_on_post() {
    create_under_faults("fdap", vec![FaultRule::on_requests(Fault::DropAfterApply, [1, 4, 9, 16]).method(Method::POST)], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_malformed_body() {
    create_under_faults("fmal", vec![FaultRule::on_requests(Fault::MalformedBody, [2, 5, 11, 17, 30])], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_slow_past_the_timeout() {
    create_under_faults(
        "fslow",
        vec![FaultRule::on_requests(Fault::Slow(Duration::from_millis(2500)), [3, 8]).method(Method::POST)],
        &["request_timeout_secs = 1"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_drop_after_apply_on_patch() {
    update_under_faults("fdapp", vec![FaultRule::on_requests(Fault::DropAfterApply, [1, 4, 9, 16]).method(Method::PATCH)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_drop_before_apply_on_patch() {
    update_under_faults("fdbpp", vec![FaultRule::on_requests(Fault::DropBeforeApply, [2, 6, 12]).method(Method::PATCH)]).await;
}

// ---------------------------------------------------------------------------------------------
// Gladly-side changes between syncs: merges and deletions.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_profile_is_re_resolved_by_email_and_state_rewritten() {
    let mut fx = Fixture::new("merge", 3).await;
    assert_eq!(fx.sync().await.counts.created, 3);
    let old_id = fx.id_of("customer0@example.com");
    assert_eq!(fx.state()["c0000"].remote_id.as_deref(), Some(old_id.as_str()));

    // An agent merges the synced profile into another one.
    fx.emulator.insert_profile(ORG, json!({"id": "agent-survivor", "name": "Survivor", "emails": [{"original": "survivor@example.com"}]}));
    fx.emulator.merge_profiles(ORG, &old_id, "agent-survivor");

    fx.edit_rows(|rows| rows[0].name = "Renamed 0".into());
    fx.clear();
    let r = fx.sync().await;
    assert_eq!(r.counts.updated, 1, "{}", r.summary());
    let reqs = fx.requests();
    assert_eq!(reqs.len(), 3, "{:?}", summary(&reqs));
    assert_eq!((reqs[0].method.as_str(), reqs[0].path.clone(), reqs[0].status), ("PATCH", format!("{PROFILES}/{old_id}"), Some(404)));
    assert!(is_find(&reqs[1]) && reqs[1].path.contains("email=customer0%40example.com"), "{:?}", summary(&reqs));
    assert_eq!((reqs[2].method.as_str(), reqs[2].path.as_str()), ("PATCH", "/api/v1/customer-profiles/agent-survivor"));
    assert!(!reqs.iter().any(|r| r.method == "POST"), "no new profile");
    assert_eq!(fx.state()["c0000"].remote_id.as_deref(), Some("agent-survivor"), "state points at the survivor");
    let survivor = fx.emulator.profile(ORG, "agent-survivor").unwrap();
    assert_eq!(survivor["name"], "Renamed 0");
    assert_eq!(fx.profiles().len(), 3);

    // The next change goes straight to the survivor.
    fx.edit_rows(|rows| rows[0].name = "Renamed again".into());
    fx.clear();
    fx.sync().await;
    assert_eq!(summary(&fx.requests()), vec![format!("PATCH {PROFILES}/agent-survivor -> Some(204)")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_profile_is_recreated_in_upsert_mode_but_not_in_update_mode() {
    let mut fx = Fixture::new("deleted", 4).await;
    assert_eq!(fx.sync().await.counts.created, 4);
    let id1 = fx.id_of("customer1@example.com");
    assert_eq!(fx.raw("DELETE", &format!("{PROFILES}/{id1}")).await, 204);
    assert_eq!(fx.profiles().len(), 3);

    // Upsert: the known id is gone, the email finds nothing, so it is created again.
    fx.edit_rows(|rows| rows[1].name = "Renamed 1".into());
    fx.clear();
    let r = fx.sync().await;
    assert_eq!(r.counts.created, 1, "{}", r.summary());
    let methods: Vec<String> = fx.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["PATCH", "GET", "POST"], "{:?}", summary(&fx.requests()));
    assert_eq!(fx.profiles().len(), 4);
    assert_exactly_once(&fx.profiles(), &fx.rows);
    assert_eq!(fx.emulator.profile(ORG, &fx.id_of("customer1@example.com")).unwrap()["name"], "Renamed 1");

    // Update mode, a second sync keyed by the Gladly id column.
    let ids: Vec<String> = fx.rows.iter().map(|r| fx.id_of(&r.email)).collect();
    fx.edit_rows(|rows| rows.iter_mut().zip(&ids).for_each(|(r, id)| r.gladly_id = id.clone()));
    let mut spec = JobSpec::upsert("incr-deleted-update");
    spec.mode = "update";
    spec.mapping.push(("gladly_id", "id"));
    fx.set_job(spec);
    let first = fx.sync().await;
    assert!(first.failures.is_empty(), "{}", first.summary());
    assert_eq!(first.counts.created, 0);

    let id2 = ids[2].clone();
    assert_eq!(fx.raw("DELETE", &format!("{PROFILES}/{id2}")).await, 204);
    fx.edit_rows(|rows| rows[2].name = "Renamed 2".into());
    fx.clear();
    let r = fx.sync().await;
    assert_eq!(r.counts.failed, 1, "{}", r.summary());
    assert_eq!(r.counts.created, 0);
    assert_eq!(r.failures[0].key, "c0002");
    assert_eq!(r.failures[0].code, ErrorCode::NotFound);
    assert!(!fx.requests().iter().any(|r| r.method == "POST"), "update mode never creates: {:?}", summary(&fx.requests()));
    assert!(with_email(&fx.profiles(), "customer2@example.com").is_empty());
    assert_eq!(fx.profiles().len(), 3);
}
