//! The planner: fingerprints, every decision, context changes, and a streaming run.

use host_harness::contract::model::{
    Cell, Column, ErrorCategory, ErrorCode, FieldMapping, MappedRecord, Outcome, RecordError, Row, Setting, SyncMode,
};
use host_harness::fingerprint::{fingerprint, mapping_fingerprint, Fingerprint, Fingerprinter};
use host_harness::sync::plan::{decide, ChangeCause, Decision, PlanError, Planner, RetryReason};
use host_harness::state::{LastError, RecordState, State};
use test_kit::TempDir;

fn pair(key: &str, payload: &str) -> (Row, MappedRecord) {
    (
        Row { key: key.into(), columns: vec![Column { name: "id".into(), value: Cell::Text(key.into()) }] },
        MappedRecord { key: key.into(), payload: payload.into(), match_value: None, remote_id: None },
    )
}

fn validation_error() -> RecordError {
    RecordError::host(ErrorCode::Rejected, ErrorCategory::SkipRecord, "email is invalid")
}

fn transient_error() -> RecordError {
    RecordError::host(ErrorCode::ServerError, ErrorCategory::RetryLater, "503")
}

// ---------------------------------------------------------------------------------------------
// fingerprints

#[test]
fn fingerprint_depends_on_payload_mapping_and_version() {
    let a = fingerprint("{\"a\":1}", "map", "0.1.0");
    assert_eq!(a, fingerprint("{\"a\":1}", "map", "0.1.0"), "deterministic");
    assert_ne!(a, fingerprint("{\"a\":2}", "map", "0.1.0"));
    assert_ne!(a, fingerprint("{\"a\":1}", "map2", "0.1.0"));
    assert_ne!(a, fingerprint("{\"a\":1}", "map", "0.1.1"));
    // Fields cannot run into each other.
    assert_ne!(fingerprint("x", "ab", "c"), fingerprint("x", "a", "bc"));
    assert_ne!(fingerprint("cx", "ab", ""), fingerprint("x", "ab", "c"));
    // The precomputed form gives the same value.
    assert_eq!(Fingerprinter::new("map", "0.1.0").fingerprint("{\"a\":1}"), a);
    // Hex round trip.
    assert_eq!(a.to_hex().len(), 32);
    assert_eq!(Fingerprint::from_hex(&a.to_hex()), Some(a));
    assert_eq!(Fingerprint::from_hex("abc"), None);
    assert_eq!(Fingerprint::from_slice(&[0; 15]), None);
    assert_eq!(format!("{a}"), a.to_hex());
}

#[test]
fn mapping_fingerprint_is_canonical() {
    let m = |pairs: &[(&str, &str)]| pairs.iter().map(|(s, t)| FieldMapping { source: s.to_string(), target: t.to_string() }).collect::<Vec<_>>();
    let s = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| Setting { key: k.to_string(), value: v.to_string() }).collect::<Vec<_>>();
    let base = mapping_fingerprint(SyncMode::Upsert, &m(&[("email", "email"), ("name", "name")]), &s(&[("domain", "acme"), ("region", "US")]));
    assert_eq!(base.len(), 32);
    assert_eq!(
        base,
        mapping_fingerprint(SyncMode::Upsert, &m(&[("name", "name"), ("email", "email")]), &s(&[("region", "US"), ("domain", "acme")])),
        "order does not matter"
    );
    assert_ne!(base, mapping_fingerprint(SyncMode::Update, &m(&[("email", "email"), ("name", "name")]), &s(&[("domain", "acme"), ("region", "US")])));
    assert_ne!(base, mapping_fingerprint(SyncMode::Upsert, &m(&[("email", "email"), ("full", "name")]), &s(&[("domain", "acme"), ("region", "US")])));
    assert_ne!(base, mapping_fingerprint(SyncMode::Upsert, &m(&[("email", "email"), ("name", "name")]), &s(&[("domain", "acme"), ("region", "GB")])));
}

// ---------------------------------------------------------------------------------------------
// decide(): every case

fn state_entry(outcome: Outcome, confirmed: Option<Fingerprint>, error: Option<(bool, Fingerprint)>) -> RecordState {
    RecordState {
        key: "k".into(),
        fingerprint: confirmed,
        payload: confirmed.map(|_| "{}".to_string()),
        remote_id: Some("g-1".into()),
        last_outcome: outcome,
        last_error: error.map(|(retryable, fingerprint)| LastError {
            code: "rejected".into(),
            message: "m".into(),
            field: None,
            http_status: None,
            retryable,
            fingerprint,
        }),
        attempts: 0,
        first_seen: String::new(),
        last_synced: None,
        updated_at: String::new(),
    }
}

#[test]
fn decide_covers_every_case() {
    let (f1, f2) = (Fingerprint([1; 16]), Fingerprint([2; 16]));
    assert_eq!(decide(None, f1, false), Decision::New);
    assert_eq!(decide(None, f1, true), Decision::New);
    for ok in [Outcome::Created, Outcome::Updated, Outcome::Unchanged, Outcome::Skipped] {
        let s = state_entry(ok, Some(f1), None);
        assert_eq!(decide(Some(&s), f1, false), Decision::Unchanged, "{ok:?}");
        assert_eq!(decide(Some(&s), f2, false), Decision::Changed { cause: ChangeCause::Data });
        assert_eq!(decide(Some(&s), f2, true), Decision::Changed { cause: ChangeCause::Context });
    }
    // Retryable failure: retried whatever the data.
    let s = state_entry(Outcome::Failed, Some(f1), Some((true, f2)));
    assert_eq!(decide(Some(&s), f2, false), Decision::RetryFailed { reason: RetryReason::Retryable });
    assert_eq!(decide(Some(&s), f1, false), Decision::RetryFailed { reason: RetryReason::Retryable });
    // Validation failure: not retried with the same fingerprint, retried once it changed.
    let s = state_entry(Outcome::Failed, None, Some((false, f2)));
    assert_eq!(decide(Some(&s), f2, false), Decision::StillInvalid);
    assert_eq!(decide(Some(&s), f1, false), Decision::RetryFailed { reason: RetryReason::ChangedSinceFailure });
    // Failed without a recorded error (defensive): retried.
    let s = state_entry(Outcome::Failed, None, None);
    assert_eq!(decide(Some(&s), f1, false), Decision::RetryFailed { reason: RetryReason::Retryable });

    assert!(Decision::New.sends() && Decision::Changed { cause: ChangeCause::Data }.sends());
    assert!(Decision::RetryFailed { reason: RetryReason::Retryable }.sends());
    assert!(!Decision::Unchanged.sends() && !Decision::StillInvalid.sends());
}

// ---------------------------------------------------------------------------------------------
// the planner against real state

/// Records a planned batch as the destination would confirm it: success for all.
fn confirm_all(state: &mut State, sync: &str, planned: &[host_harness::sync::plan::Planned]) {
    let mut b = state.sync(sync).batch().unwrap();
    for p in planned.iter().filter(|p| p.decision.sends()) {
        b.record_success(&p.key, p.fingerprint, &p.payload, Some(&format!("g-{}", p.key)), Outcome::Created).unwrap();
    }
    b.commit().unwrap();
}

#[test]
fn planner_walks_through_every_decision() {
    let dir = TempDir::new("walk");
    let mut state = State::open(dir.path()).unwrap();
    let sync = "s1";

    // Run 1: everything is new.
    let mut p = Planner::new(state.sync(sync), "map-1", "0.1.0").unwrap();
    let planned = p.plan_batch(state.sync(sync), vec![pair("a", "{\"v\":1}"), pair("b", "{\"v\":1}"), pair("c", "{\"v\":1}"), pair("d", "{\"v\":1}")]).unwrap();
    assert!(planned.iter().all(|x| x.decision == Decision::New));
    for x in &planned {
        let item = x.item.as_ref().unwrap();
        assert_eq!((item.known_id.as_deref(), item.previous_payload.as_deref()), (None, None));
        assert_eq!(item.row.key, x.key);
        assert_eq!(x.fingerprint, p.fingerprinter().fingerprint(&x.payload));
    }
    assert_eq!(p.counts().new, 4);
    assert_eq!(p.reason(), None);
    confirm_all(&mut state, sync, &planned);
    // c fails validation with new data, d fails transiently with new data.
    let fp = Fingerprinter::new("map-1", "0.1.0");
    state.sync(sync).record_failure("c", fp.fingerprint("{\"v\":\"bad\"}"), &validation_error(), false).unwrap();
    state.sync(sync).record_failure("d", fp.fingerprint("{\"v\":2}"), &transient_error(), true).unwrap();
    state.sync(sync).set_meta("map-1", "0.1.0").unwrap();

    // Run 2: a unchanged, b changed, c still invalid, d retried, e new.
    let mut p = Planner::new(state.sync(sync), "map-1", "0.1.0").unwrap();
    let planned = p
        .plan_batch(state.sync(sync), vec![pair("a", "{\"v\":1}"), pair("b", "{\"v\":2}"), pair("c", "{\"v\":\"bad\"}"), pair("d", "{\"v\":2}"), pair("e", "{}")])
        .unwrap();
    let decisions: Vec<_> = planned.iter().map(|x| (x.key.as_str(), x.decision)).collect();
    assert_eq!(decisions, [
        ("a", Decision::Unchanged),
        ("b", Decision::Changed { cause: ChangeCause::Data }),
        ("c", Decision::StillInvalid),
        ("d", Decision::RetryFailed { reason: RetryReason::Retryable }),
        ("e", Decision::New),
    ]);
    assert!(planned[0].item.is_none() && planned[2].item.is_none());
    let b = planned[1].item.as_ref().unwrap();
    assert_eq!(b.known_id.as_deref(), Some("g-b"));
    assert_eq!(b.previous_payload.as_deref(), Some("{\"v\":1}"));
    let still = planned[2].last_error.as_ref().unwrap();
    assert_eq!((still.code.as_str(), still.retryable), ("rejected", false));
    let d = planned[3].item.as_ref().unwrap();
    assert_eq!(d.known_id.as_deref(), Some("g-d"), "the retried record keeps its id");
    assert_eq!(d.previous_payload.as_deref(), Some("{\"v\":1}"), "and its last confirmed payload");
    assert!(planned[3].last_error.as_ref().unwrap().retryable);
    let c = p.counts();
    assert_eq!((c.new, c.changed, c.unchanged, c.retry_failed, c.still_invalid), (1, 1, 1, 1, 1));
    assert_eq!((c.total(), c.to_send()), (5, 3));

    // Run 3: c's data is fixed → retried as changed since the failure.
    let mut p = Planner::new(state.sync(sync), "map-1", "0.1.0").unwrap();
    let planned = p.plan_batch(state.sync(sync), vec![pair("c", "{\"v\":3}")]).unwrap();
    assert_eq!(planned[0].decision, Decision::RetryFailed { reason: RetryReason::ChangedSinceFailure });
}

#[test]
fn mapping_or_version_change_resends_with_a_reason() {
    let dir = TempDir::new("context");
    let mut state = State::open(dir.path()).unwrap();
    let sync = "s";
    let batch = || vec![pair("a", "{\"v\":1}"), pair("b", "{\"v\":1}"), pair("c", "{\"v\":1}")];
    let mut p = Planner::new(state.sync(sync), "map-1", "0.1.0").unwrap();
    let planned = p.plan_batch(state.sync(sync), batch()).unwrap();
    confirm_all(&mut state, sync, &planned);
    // c failed validation under the old context.
    state.sync(sync).record_failure("c", Fingerprinter::new("map-1", "0.1.0").fingerprint("{\"v\":1}"), &validation_error(), false).unwrap();
    state.sync(sync).set_meta("map-1", "0.1.0").unwrap();

    // Same context: nothing to do.
    let mut p = Planner::new(state.sync(sync), "map-1", "0.1.0").unwrap();
    p.plan_batch(state.sync(sync), batch()).unwrap();
    assert_eq!((p.counts().unchanged, p.counts().still_invalid, p.counts().to_send()), (2, 1, 0));
    assert_eq!(p.reason(), None);
    assert!(p.context_change().is_none());

    // Mapping changed: the same payloads are re-sent, and the validation failure is retried.
    let mut p = Planner::new(state.sync(sync), "map-2", "0.1.0").unwrap();
    let planned = p.plan_batch(state.sync(sync), batch()).unwrap();
    assert_eq!(planned[0].decision, Decision::Changed { cause: ChangeCause::Context });
    assert_eq!(planned[2].decision, Decision::RetryFailed { reason: RetryReason::ChangedSinceFailure });
    assert_eq!(p.counts().changed_by_context, 2);
    assert_eq!(p.reason().as_deref(), Some("mapping changed: 2 records will be re-sent"));
    assert!(p.context_change().unwrap().mapping_changed);

    // Component version changed.
    let mut p = Planner::new(state.sync(sync), "map-1", "0.2.0").unwrap();
    p.plan_batch(state.sync(sync), batch()).unwrap();
    assert_eq!(p.reason().as_deref(), Some("component version changed (0.1.0 → 0.2.0): 2 records will be re-sent"));
    // Both.
    let mut p = Planner::new(state.sync(sync), "map-9", "0.2.0").unwrap();
    p.plan_batch(state.sync(sync), vec![pair("a", "{\"v\":1}")]).unwrap();
    assert_eq!(p.reason().as_deref(), Some("mapping and component version (0.1.0 → 0.2.0) changed: 1 record will be re-sent"));

    // After confirming under the new context and recording it, all is quiet again.
    let mut p = Planner::new(state.sync(sync), "map-2", "0.1.0").unwrap();
    let planned = p.plan_batch(state.sync(sync), batch()).unwrap();
    confirm_all(&mut state, sync, &planned);
    state.sync(sync).set_meta("map-2", "0.1.0").unwrap();
    let mut p = Planner::new(state.sync(sync), "map-2", "0.1.0").unwrap();
    p.plan_batch(state.sync(sync), batch()).unwrap();
    assert_eq!(p.counts().unchanged, 3);
    assert_eq!(p.reason(), None);
}

#[test]
fn a_mispaired_batch_is_refused() {
    let dir = TempDir::new("pair");
    let state = State::open(dir.path()).unwrap();
    let mut p = Planner::new(state.sync("s"), "m", "v").unwrap();
    let (row, _) = pair("a", "{}");
    let (_, rec) = pair("b", "{}");
    assert!(matches!(p.plan_batch(state.sync("s"), vec![(row, rec)]), Err(PlanError::KeyMismatch { .. })));
}

#[test]
fn planning_streams_batch_by_batch() {
    // 20 000 records in batches of 1 000: half confirmed before, one in ten of those changed.
    let dir = TempDir::new("stream");
    let state = State::open(dir.path()).unwrap();
    let fp = Fingerprinter::new("m", "v");
    let payload = |i: u32, version: u32| format!("{{\"email\":\"user{i}@example.com\",\"name\":\"User {i}\",\"v\":{version}}}");
    let mut b = state.sync("s").batch().unwrap();
    for i in (0..20_000u32).step_by(2) {
        let p = payload(i, 1);
        b.record_success(&format!("k{i}"), fp.fingerprint(&p), &p, Some(&format!("g{i}")), Outcome::Created).unwrap();
    }
    b.commit().unwrap();
    let mut planner = Planner::new(state.sync("s"), "m", "v").unwrap();
    let mut to_send = 0;
    for chunk in 0..20u32 {
        let batch: Vec<_> = (chunk * 1000..(chunk + 1) * 1000)
            .map(|i| pair(&format!("k{i}"), &payload(i, if i % 20 == 0 { 2 } else { 1 })))
            .collect();
        let planned = planner.plan_batch(state.sync("s"), batch).unwrap();
        assert_eq!(planned.len(), 1000);
        to_send += planned.iter().filter(|p| p.item.is_some()).count();
    }
    let c = planner.counts();
    assert_eq!((c.new, c.changed, c.unchanged), (10_000, 1_000, 9_000));
    assert_eq!(to_send, 11_000);
}
