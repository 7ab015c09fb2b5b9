//! The state in PostgreSQL (a database of the test's own on 127.0.0.1:5432): the same reads and
//! writes as the SQLite ledger, the lease's fence on every write, and the schema version.

use host_harness::contract::model::Outcome;
use host_harness::state::postgres::{Fence, PG_MIGRATIONS};
use host_harness::state::{RunCounts, RunStatus, State, StateError};
use test_kit::postgres::FreshDatabase;

use crate::state::{fp, rejected};

/// Grants `org`'s lease with `token`, expiring in `secs` seconds (negative: already expired).
fn lease(db: &FreshDatabase, org: &str, token: i64, secs: i32) {
    db.with_client(|c| {
        c.execute(
            "INSERT INTO destination_host.leases (org, holder, token, expires_at)
             VALUES ($1, 'test', $2, clock_timestamp() + $3 * interval '1 second')
             ON CONFLICT (org) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at",
            &[&org, &token, &f64::from(secs)],
        )
        .expect("write the lease");
    });
}

#[test]
fn the_postgres_state_keeps_confirmations_failures_runs_and_results_like_the_sqlite_one() {
    let db = FreshDatabase::new("state_pg");
    let s = State::open_postgres(db.url(), None).unwrap();
    let sync = s.sync("sync");
    assert!(sync.get("k").unwrap().is_none());

    sync.record_success("k", fp(1), "{\"v\":1}", Some("g-1"), Outcome::Created).unwrap();
    sync.record_failure("k", fp(2), &rejected("email is invalid"), false).unwrap();
    let r = sync.get("k").unwrap().unwrap();
    assert_eq!(r.last_outcome, Outcome::Failed);
    assert_eq!((r.fingerprint, r.payload.as_deref(), r.remote_id.as_deref()), (Some(fp(1)), Some("{\"v\":1}"), Some("g-1")), "confirmed data kept");
    let e = r.last_error.clone().unwrap();
    assert_eq!((e.code.as_str(), e.retryable, e.fingerprint, e.field.as_deref(), e.http_status), ("rejected", false, fp(2), Some("email"), Some(400)));
    assert_eq!(r.attempts, 1);
    assert!(r.first_seen.ends_with('Z') && r.first_seen.contains('T'), "{}", r.first_seen);

    // Success without an id keeps the known id and clears the error.
    sync.record_success("k", fp(2), "{\"v\":2}", None, Outcome::Updated).unwrap();
    let r = sync.get("k").unwrap().unwrap();
    assert_eq!((r.last_outcome, r.remote_id.as_deref(), r.fingerprint, r.last_error, r.attempts), (Outcome::Updated, Some("g-1"), Some(fp(2)), None, 0));

    // A key holding NUL is kept exactly; an error message holding NUL is stored without it.
    sync.record_failure("nul\0key", fp(3), &rejected("bad\0byte"), true).unwrap();
    let r = sync.get("nul\0key").unwrap().unwrap();
    assert_eq!(r.key, "nul\0key");
    assert_eq!(r.last_error.unwrap().message, "bad\u{FFFD}byte");
    let many = sync.get_many(&["k", "nul\0key", "unknown"]).unwrap();
    assert_eq!(many.keys().cloned().collect::<std::collections::BTreeSet<_>>(), ["k".to_string(), "nul\0key".to_string()].into());
    let mut keys = Vec::new();
    sync.for_each_key(|k| {
        keys.push(k.to_string());
        Ok::<(), StateError>(())
    })
    .unwrap();
    assert_eq!(keys, ["k", "nul\0key"]);
    assert_eq!(sync.failures(10).unwrap().iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["nul\0key"]);
    assert_eq!(s.sync("other").record_count().unwrap(), 0, "syncs are separate");

    // A batch dropped uncommitted sends nothing; a committed one lands whole, results included.
    let mut b = sync.batch().unwrap();
    b.record_success("dropped", fp(4), "{}", None, Outcome::Created).unwrap();
    drop(b);
    assert!(sync.get("dropped").unwrap().is_none());
    let mut b = sync.batch().unwrap();
    b.record_success("a", fp(5), "{}", Some("g-a"), Outcome::Created).unwrap();
    b.queue_result("{\"row_key\":\"a\"}").unwrap();
    b.commit().unwrap();
    assert_eq!(sync.record_count().unwrap(), 3);
    let queued = sync.outbox_peek(10).unwrap();
    assert_eq!(queued.iter().map(|(_, j)| j.as_str()).collect::<Vec<_>>(), ["{\"row_key\":\"a\"}"]);
    assert_eq!(sync.outbox_remove_through(queued[0].0).unwrap(), 1);
    assert_eq!(sync.outbox_len().unwrap(), 0);

    // Runs: a run left running is closed as interrupted by the next one.
    let first = sync.start_run().unwrap();
    let second = sync.start_run().unwrap();
    assert_eq!(s.run(first).unwrap().unwrap().status, RunStatus::Interrupted);
    let counts = RunCounts { created: 1, requests: 2, ..RunCounts::default() };
    s.finish_run(second, RunStatus::Succeeded, &counts, None).unwrap();
    let listed = sync.runs(10).unwrap();
    assert_eq!(listed.iter().map(|r| (r.run_id, r.status)).collect::<Vec<_>>(), [(second, RunStatus::Succeeded), (first, RunStatus::Interrupted)]);
    assert_eq!(listed[0].counts, counts);

    sync.set_meta("map-1", "v1").unwrap();
    assert_eq!(sync.meta().unwrap().unwrap().mapping_fingerprint, "map-1");
}

#[test]
fn a_write_under_a_superseded_or_expired_lease_is_refused_and_lands_nothing() {
    let db = FreshDatabase::new("state_fence");
    drop(State::open_postgres(db.url(), None).unwrap()); // creates the schema
    let org = "acme.gladly.com";
    lease(&db, org, 5, 60);
    let held = State::open_postgres(db.url(), Some(Fence { org: org.into(), token: 5 })).unwrap();
    held.sync("sync").record_success("k", fp(1), "{\"v\":1}", Some("g-1"), Outcome::Created).unwrap();
    let run = held.sync("sync").start_run().unwrap();

    // Another worker took the lease over (token 6): every kind of write by the old holder fails.
    lease(&db, org, 6, 60);
    let stale = held.sync("sync");
    let refused = |r: Result<(), StateError>, what: &str| match r {
        Err(StateError::Fenced { org: o, token: 5 }) => assert_eq!(o, org, "{what}"),
        other => panic!("{what}: {other:?}"),
    };
    refused(stale.record_success("k", fp(2), "{\"v\":2}", None, Outcome::Updated), "a record");
    refused(held.finish_run(run, RunStatus::Failed, &RunCounts::default(), None), "finishing the run");
    refused(stale.set_meta("map-2", "v2"), "the sync's metadata");
    let fresh = State::open_postgres(db.url(), None).unwrap();
    assert_eq!(fresh.sync("sync").get("k").unwrap().unwrap().fingerprint, Some(fp(1)), "the confirmed record stands");
    assert_eq!(fresh.run(run).unwrap().unwrap().status, RunStatus::Running);
    assert!(fresh.sync("sync").meta().unwrap().is_none());

    // The new owner writes; its lease then expires unrenewed, and it may not write either.
    let owner = State::open_postgres(db.url(), Some(Fence { org: org.into(), token: 6 })).unwrap();
    owner.sync("sync").record_success("k", fp(3), "{\"v\":3}", None, Outcome::Updated).unwrap();
    lease(&db, org, 6, -1);
    match owner.sync("sync").record_success("k", fp(4), "{\"v\":4}", None, Outcome::Updated) {
        Err(StateError::Fenced { token: 6, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(fresh.sync("sync").get("k").unwrap().unwrap().fingerprint, Some(fp(3)));
}

#[test]
fn a_database_from_a_newer_host_is_refused() {
    let db = FreshDatabase::new("state_newer");
    drop(State::open_postgres(db.url(), None).unwrap());
    let newer = PG_MIGRATIONS.len() as i64 + 1;
    db.with_client(|c| c.execute("UPDATE destination_host.schema_version SET version = $1", &[&newer]).expect("bump the version"));
    match State::open_postgres(db.url(), None) {
        Err(e @ StateError::PgTooNew { .. }) => {
            assert!(e.to_string().contains(&format!("schema version {newer}, newer than this harness knows")), "{e}")
        }
        other => panic!("{other:?}"),
    }
}
