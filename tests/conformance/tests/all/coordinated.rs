//! Several `destination-host serve` processes sharing the work through PostgreSQL (a database of
//! the test's own on 127.0.0.1:5432): the shared queue, per-organization leases, fencing and
//! failover, with real worker processes and the emulator.
//!
//! Build the components and the binary first (`cargo xtask test` does both).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use test_kit::postgres::FreshDatabase;
use test_kit::rate::assert_within_rate;

use crate::serve::{RUN_GUARD, Setup, Worker, body};

/// Lease length of the workers here: short, so that failover happens within a test.
const LEASE_TTL: &str = "4s";
const LEASE_TTL_SECS: u64 = 4;

/// What failover may take beyond the lease: one sweep of the queue (half a lease), the queue's
/// poll interval, and the new owner's wait for the lease (rounded up generously for a loaded
/// 2-core machine).
const FAILOVER_BOUND: Duration = Duration::from_secs(LEASE_TTL_SECS + 8);

/// `n` people of tenant `tag` (keys and emails unique to the tenant).
fn tenant_people(tag: &str, n: usize) -> String {
    let mut s = String::from("id,name,email\n");
    for i in 0..n {
        s.push_str(&format!("{tag}-{i:03},Person {i} of {tag},{tag}.{i:03}@example.com\n"));
    }
    s
}

async fn coordinated_worker(s: &Setup, db: &FreshDatabase, id: &str, slots: usize) -> Worker {
    let slots = slots.to_string();
    s.worker(&["--coordinator", db.url(), "--lease-ttl", LEASE_TTL, "--worker-id", id, "--max-parallel-runs", &slots], &[]).await
}

/// The last run of `sync` in the shared database: (run id, status).
fn last_run(db: &FreshDatabase, sync: &str) -> Option<(i64, String)> {
    db.with_client(|c| {
        c.query_opt("SELECT run_id, status FROM destination_host.runs WHERE sync_id = $1 ORDER BY run_id DESC LIMIT 1", &[&sync])
            .expect("read runs")
            .map(|r| (r.get(0), r.get(1)))
    })
}

/// Waits until every sync's latest run has succeeded, and is newer than `after` when given.
async fn wait_succeeded(db: &FreshDatabase, syncs: &[String], after: &BTreeMap<String, i64>, workers: &[&Worker]) {
    let give_up = tokio::time::Instant::now() + RUN_GUARD * 2;
    loop {
        let pending: Vec<&String> = syncs
            .iter()
            .filter(|s| match last_run(db, s) {
                Some((id, status)) => status != "succeeded" || after.get(*s).is_some_and(|a| id <= *a),
                None => true,
            })
            .collect();
        if pending.is_empty() {
            return;
        }
        if tokio::time::Instant::now() > give_up {
            let logs: Vec<String> = workers.iter().map(|w| w.log()).collect();
            panic!("still not succeeded: {pending:?}\n{}", logs.join("\n---\n"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The grants of `org`'s lease, in token order: (token, holder). A lease is keyed by the
/// organization's rate-limit key, its API host.
fn grants(db: &FreshDatabase, org: &str) -> Vec<(i64, String)> {
    let org = format!("{org}.gladly.com");
    db.with_client(|c| {
        c.query("SELECT token, holder FROM destination_host.lease_grants WHERE org = $1 ORDER BY token", &[&org])
            .expect("read grants")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    })
}

fn emails(profiles: &[Value]) -> BTreeSet<String> {
    profiles.iter().flat_map(|p| p["emails"].as_array().cloned().unwrap_or_default()).filter_map(|e| e["original"].as_str().map(str::to_string)).collect()
}

fn expected_emails(tags: &[String], n: usize) -> BTreeSet<String> {
    tags.iter().flat_map(|t| (0..n).map(move |i| format!("{t}.{i:03}@example.com"))).collect()
}

fn send(pid: u32, signal: &str) {
    let ok = std::process::Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().expect("run kill").success();
    assert!(ok, "kill -{signal} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_deliver_twenty_organizations_exactly_once_within_each_limit() {
    const ORGS: usize = 20;
    const TENANTS: usize = 2;
    const ROWS: usize = 100; // per tenant: 200 per organization
    const LIMIT: usize = 25;
    let s = Setup::new("coord-three", Duration::ZERO).await;
    s.emu.set_rate_limit(LIMIT as u32);
    let db = FreshDatabase::new("coord_three");
    let mut syncs = Vec::new();
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for o in 0..ORGS {
        let org = format!("org{o:02}");
        for t in 0..TENANTS {
            let id = format!("{org}-t{t}");
            s.write_job_for(&org, &id, &tenant_people(&id, ROWS), &[&format!("rate_limit_per_second = {LIMIT}")], "");
            tags.entry(org.clone()).or_default().push(id.clone());
            syncs.push(id);
        }
    }
    let w1 = coordinated_worker(&s, &db, "w1", 4).await;
    let w2 = coordinated_worker(&s, &db, "w2", 4).await;
    let w3 = coordinated_worker(&s, &db, "w3", 4).await;

    // Every run is asked for through one worker; the shared queue spreads them.
    let api = w1.api();
    for id in &syncs {
        let r = api.post(&format!("/syncs/{id}/run"), &Value::Null).await;
        assert_eq!(r.status, 202, "{id}: {}", body(&r));
    }
    wait_succeeded(&db, &syncs, &BTreeMap::new(), &[&w1, &w2, &w3]).await;

    for (org, tenants) in &tags {
        let profiles = s.emu.profiles(org);
        assert_eq!(profiles.len(), TENANTS * ROWS, "{org}: one profile per row");
        assert_eq!(emails(&profiles), expected_emails(tenants, ROWS), "{org}: every row exactly once");
        let requests: Vec<_> = s.emu.requests().into_iter().filter(|r| &r.org == org).collect();
        assert_within_rate(&requests.iter().map(|r| r.at).collect::<Vec<_>>(), LIMIT, org);
        assert_eq!(requests.iter().filter(|r| r.status == Some(429)).count(), 0, "{org}: the server never had to refuse a request");
    }
    let holders: BTreeSet<String> = tags.keys().flat_map(|org| grants(&db, org)).map(|(_, h)| h).collect();
    assert_eq!(holders, BTreeSet::from(["w1".to_string(), "w2".to_string(), "w3".to_string()]), "every worker took a share");

    // A second round of the unchanged sources sends nothing.
    let first: BTreeMap<String, i64> = syncs.iter().map(|id| (id.clone(), last_run(&db, id).unwrap().0)).collect();
    let requests = s.emu.requests().len();
    for id in &syncs {
        assert_eq!(w2.api().post(&format!("/syncs/{id}/run"), &Value::Null).await.status, 202);
    }
    wait_succeeded(&db, &syncs, &first, &[&w1, &w2, &w3]).await;
    assert_eq!(s.emu.requests().len(), requests, "an unchanged source costs no request, whichever worker runs it");

    // Every worker's admin API lists the runs of the shared database.
    let listed = w3.api().get(&format!("/syncs/{}/runs", syncs[0])).await.json();
    assert_eq!(listed["runs"].as_array().map(Vec::len), Some(2), "{listed}");
}

/// Kills the worker driving an organization after a seeded number of its requests; the other
/// worker takes the run over from the confirmed state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_sync_is_finished_by_another_exactly_once() {
    const ROWS: usize = 120;
    const LIMIT: usize = 10;
    for (round, seed) in [(0, 17u64), (1, 53)] {
        let s = Setup::new(&format!("coord-kill-{round}"), Duration::ZERO).await;
        s.emu.set_rate_limit(LIMIT as u32);
        let db = FreshDatabase::new("coord_kill");
        let org = "killorg";
        let id = format!("kill-{round}");
        s.write_job_for(org, &id, &tenant_people(&id, ROWS), &[&format!("rate_limit_per_second = {LIMIT}")], "");
        let a = coordinated_worker(&s, &db, "wa", 2).await;
        let b = coordinated_worker(&s, &db, "wb", 2).await;
        assert_eq!(a.api().post(&format!("/syncs/{id}/run"), &Value::Null).await.status, 202);

        // Kill whoever holds the lease once the seeded number of requests has arrived.
        let kill_after = 20 + (seed % 40) as usize;
        let give_up = tokio::time::Instant::now() + RUN_GUARD;
        while s.emu.requests().len() < kill_after {
            assert!(tokio::time::Instant::now() < give_up, "the run did not start:\n{}\n{}", a.log(), b.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let holder = grants(&db, org).last().expect("a grant").1.clone();
        let (victim, survivor) = if holder == "wa" { (a, b) } else { (b, a) };
        let mut victim = victim;
        victim.child.start_kill().expect("SIGKILL");
        let _ = victim.child.wait().await;
        let killed_at = tokio::time::Instant::now();

        // The survivor is granted the lease within its expiry plus the stated bound, and finishes.
        let survivor_id = if holder == "wa" { "wb" } else { "wa" };
        loop {
            if grants(&db, org).last().is_some_and(|(_, h)| h == survivor_id) {
                break;
            }
            assert!(killed_at.elapsed() < FAILOVER_BOUND, "round {round}: no takeover within {FAILOVER_BOUND:?}:\n{}", survivor.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        wait_succeeded(&db, std::slice::from_ref(&id), &BTreeMap::new(), &[&survivor]).await;
        let profiles = s.emu.profiles(org);
        assert_eq!(profiles.len(), ROWS, "round {round}: one profile per row, none twice");
        assert_eq!(emails(&profiles), expected_emails(std::slice::from_ref(&id), ROWS), "round {round}");
        let requests = s.emu.requests();
        assert_within_rate(&requests.iter().map(|r| r.at).collect::<Vec<_>>(), LIMIT, &format!("round {round}, across the failover"));
        assert_eq!(requests.iter().filter(|r| r.status == Some(429)).count(), 0, "round {round}: no 429");
    }
}

/// A worker stopped past its lease (SIGSTOP) and resumed (SIGCONT) after another took over
/// neither sends for the organization nor writes its state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_worker_that_lost_its_lease_neither_sends_nor_writes_when_it_resumes() {
    const ROWS: usize = 100;
    const LIMIT: usize = 10;
    let s = Setup::new("coord-stop", Duration::ZERO).await;
    s.emu.set_rate_limit(LIMIT as u32);
    let db = FreshDatabase::new("coord_stop");
    let org = "stoporg";
    let id = "stop-1".to_string();
    s.write_job_for(org, &id, &tenant_people(&id, ROWS), &[&format!("rate_limit_per_second = {LIMIT}")], "");
    let a = coordinated_worker(&s, &db, "wa", 2).await;
    let b = coordinated_worker(&s, &db, "wb", 2).await;
    assert_eq!(a.api().post(&format!("/syncs/{id}/run"), &Value::Null).await.status, 202);
    let give_up = tokio::time::Instant::now() + RUN_GUARD;
    while s.emu.requests().len() < 15 {
        assert!(tokio::time::Instant::now() < give_up, "the run did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (first_token, holder) = grants(&db, org).last().cloned().expect("a grant");
    let (paused, other, other_id) = if holder == "wa" { (&a, &b, "wb") } else { (&b, &a, "wa") };
    let (paused_run, _) = last_run(&db, &id).expect("the paused worker's run");
    let pid = paused.child.id().expect("running");
    send(pid, "STOP");

    // The other worker takes the lease over and finishes the sync.
    loop {
        if grants(&db, org).last().is_some_and(|(t, h)| h == other_id && *t > first_token) {
            break;
        }
        assert!(give_up > tokio::time::Instant::now(), "no takeover:\n{}", other.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_succeeded(&db, std::slice::from_ref(&id), &BTreeMap::from([(id.clone(), paused_run)]), &[other]).await;
    let requests = s.emu.requests().len();
    let status_of = |run: i64| -> String {
        db.with_client(|c| c.query_one("SELECT status FROM destination_host.runs WHERE run_id = $1", &[&run]).expect("the run").get(0))
    };
    assert_eq!(status_of(paused_run), "interrupted", "the new owner closed the paused worker's run");

    // Resumed: its in-flight work meets a lapsed lease and a fenced database.
    send(pid, "CONT");
    let log_says = |what: &str| paused.log().contains(what);
    let resumed = tokio::time::Instant::now();
    while !log_says("is no longer held by this worker") && !log_says("lease on organization") {
        assert!(resumed.elapsed() < RUN_GUARD, "the resumed worker never noticed it lost the lease:\n{}", paused.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give it time to do anything it still would.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.emu.requests().len(), requests, "nothing was sent for the organization after the takeover");
    assert_eq!(status_of(paused_run), "interrupted", "the stale worker could not mark its run finished");
    let profiles = s.emu.profiles(org);
    assert_eq!(profiles.len(), ROWS, "every row exactly once");
    let requests = s.emu.requests();
    assert_within_rate(&requests.iter().map(|r| r.at).collect::<Vec<_>>(), LIMIT, "across the pause and the takeover");
    assert_eq!(requests.iter().filter(|r| r.status == Some(429)).count(), 0, "no 429");
}
