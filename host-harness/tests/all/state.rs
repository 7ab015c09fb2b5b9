//! The state database: migrations, reads and writes, runs, transactional batches and a process
//! killed with SIGKILL in the middle of a batch.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use host_harness::contract::model::{ErrorCategory, ErrorCode, Outcome, RecordError};
use host_harness::fingerprint::Fingerprint;
use host_harness::state::{APPLICATION_ID, MIGRATIONS, RunCounts, RunStatus, STATE_FILE, State, StateError};
use test_kit::TempDir;

pub(crate) fn fp(n: u8) -> Fingerprint {
    Fingerprint([n; 16])
}

pub(crate) fn rejected(msg: &str) -> RecordError {
    let mut e = RecordError::host(ErrorCode::Rejected, ErrorCategory::SkipRecord, msg);
    e.field = Some("email".into());
    e.http_status = Some(400);
    e
}

fn server_error() -> RecordError {
    let mut e = RecordError::host(ErrorCode::ServerError, ErrorCategory::RetryLater, "503 from the API");
    e.http_status = Some(503);
    e
}

#[test]
fn opens_an_empty_directory_and_migrates() {
    let dir = TempDir::new("open");
    let sub = dir.join("nested/state");
    let s = State::open(&sub).unwrap();
    assert_eq!(s.path(), sub.join(STATE_FILE));
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    assert_eq!(s.integrity_check().unwrap(), "ok");
    drop(s);
    // WAL mode sticks to the file.
    let c = rusqlite::Connection::open(sub.join(STATE_FILE)).unwrap();
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["records", "results_outbox", "runs", "syncs"]);
}

#[test]
fn an_empty_file_is_migrated_and_reopening_keeps_data() {
    let dir = TempDir::new("reopen");
    std::fs::write(dir.join(STATE_FILE), b"").unwrap();
    {
        let s = State::open(dir.path()).unwrap();
        s.sync("sync").record_success("k1", fp(1), "{\"a\":1}", Some("remote-1"), Outcome::Created).unwrap();
        s.sync("sync").set_meta("map-1", "0.1.0").unwrap();
    }
    let s = State::open(dir.path()).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let r = s.sync("sync").get("k1").unwrap().unwrap();
    assert_eq!(r.remote_id.as_deref(), Some("remote-1"));
    assert_eq!(s.sync("sync").meta().unwrap().unwrap().mapping_fingerprint, "map-1");
}

#[test]
fn a_version_1_file_is_migrated_without_losing_records() {
    let dir = TempDir::new("v1");
    let c = rusqlite::Connection::open(dir.join(STATE_FILE)).unwrap();
    c.execute_batch(MIGRATIONS[0]).unwrap();
    c.execute_batch(&format!("PRAGMA user_version = 1; PRAGMA application_id = {APPLICATION_ID};")).unwrap();
    c.execute(
        "INSERT INTO records (sync_id, record_key, fingerprint, payload, remote_id, last_outcome, attempts,
            first_seen, last_synced, updated_at, last_seen_run)
         VALUES ('sync', 'k1', ?1, '{\"a\":1}', 'remote-1', 'created', 0, 't0', 't0', 't0', 7)",
        [&fp(4).0[..]],
    )
    .unwrap();
    drop(c);
    let s = State::open(dir.path()).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let r = s.sync("sync").get("k1").unwrap().unwrap();
    assert_eq!((r.fingerprint, r.remote_id.as_deref(), r.payload.as_deref()), (Some(fp(4)), Some("remote-1"), Some("{\"a\":1}")));
    assert_eq!(s.integrity_check().unwrap(), "ok");
}

#[test]
fn newer_and_foreign_files_are_refused() {
    let dir = TempDir::new("refuse");
    drop(State::open(dir.path()).unwrap());
    let c = rusqlite::Connection::open(dir.join(STATE_FILE)).unwrap();
    c.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(c);
    match State::open(dir.path()) {
        Err(e @ StateError::TooNew { found: 99, .. }) => assert!(e.to_string().contains("newer"), "{e}"),
        other => panic!("{other:?}"),
    }

    let other = TempDir::new("foreign");
    let c = rusqlite::Connection::open(other.join(STATE_FILE)).unwrap();
    c.execute_batch("CREATE TABLE customers (id INTEGER)").unwrap();
    drop(c);
    match State::open(other.path()) {
        Err(e @ StateError::Foreign { .. }) => assert!(e.to_string().contains("not a host-harness state database"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn success_then_failures_then_success() {
    let dir = TempDir::new("cycle");
    let s = State::open(dir.path()).unwrap();
    assert!(s.sync("sync").get("k").unwrap().is_none());

    s.sync("sync").record_success("k", fp(1), "{\"v\":1}", Some("g-1"), Outcome::Created).unwrap();
    let r = s.sync("sync").get("k").unwrap().unwrap();
    assert_eq!(r.key, "k");
    assert_eq!(r.fingerprint, Some(fp(1)));
    assert_eq!(r.payload.as_deref(), Some("{\"v\":1}"));
    assert_eq!(r.remote_id.as_deref(), Some("g-1"));
    assert_eq!(r.last_outcome, Outcome::Created);
    assert_eq!(r.last_error, None);
    assert_eq!(r.attempts, 0);
    assert!(r.last_synced.is_some());
    let first_seen = r.first_seen.clone();
    assert!(first_seen.ends_with('Z') && first_seen.contains('T'), "{first_seen}");

    // A validation failure for new data keeps what was confirmed.
    s.sync("sync").record_failure("k", fp(2), &rejected("email is invalid"), false).unwrap();
    let r = s.sync("sync").get("k").unwrap().unwrap();
    assert_eq!(r.last_outcome, Outcome::Failed);
    assert_eq!(r.fingerprint, Some(fp(1)), "confirmed fingerprint kept");
    assert_eq!(r.payload.as_deref(), Some("{\"v\":1}"));
    assert_eq!(r.remote_id.as_deref(), Some("g-1"));
    let e = r.last_error.unwrap();
    assert_eq!((e.code.as_str(), e.retryable, e.fingerprint), ("rejected", false, fp(2)));
    assert_eq!(e.error_code(), Some(ErrorCode::Rejected));
    assert_eq!(e.field.as_deref(), Some("email"));
    assert_eq!(e.http_status, Some(400));
    assert_eq!(e.message, "email is invalid");
    assert_eq!(r.attempts, 1);

    s.sync("sync").record_failure("k", fp(2), &server_error(), true).unwrap();
    let r = s.sync("sync").get("k").unwrap().unwrap();
    assert_eq!(r.attempts, 2);
    assert!(r.last_error.as_ref().unwrap().retryable);

    // Success without an id keeps the known id and clears the error.
    s.sync("sync").record_success("k", fp(2), "{\"v\":2}", None, Outcome::Updated).unwrap();
    let r = s.sync("sync").get("k").unwrap().unwrap();
    assert_eq!(r.last_outcome, Outcome::Updated);
    assert_eq!(r.remote_id.as_deref(), Some("g-1"));
    assert_eq!(r.fingerprint, Some(fp(2)));
    assert_eq!(r.last_error, None);
    assert_eq!(r.attempts, 0);
    assert_eq!(r.first_seen, first_seen);

    // A first attempt that fails leaves no confirmed data.
    s.sync("sync").record_failure("new", fp(9), &server_error(), true).unwrap();
    let r = s.sync("sync").get("new").unwrap().unwrap();
    assert_eq!((r.fingerprint, r.payload, r.remote_id, r.attempts), (None, None, None, 1));
    assert_eq!(s.sync("sync").failures(10).unwrap().iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["new"]);

    // Syncs are separate.
    assert!(s.sync("other").get("k").unwrap().is_none());
    assert_eq!(s.sync("sync").record_count().unwrap(), 2);

    // A "success" with outcome failed is a usage error.
    assert!(matches!(s.sync("sync").record_success("x", fp(1), "{}", None, Outcome::Failed), Err(StateError::Usage(_))));
}

#[test]
fn get_many_spans_chunks_and_skips_unknown_keys() {
    let dir = TempDir::new("many");
    let s = State::open(dir.path()).unwrap();
    let mut b = s.sync("sync").batch().unwrap();
    for i in 0..1000u32 {
        if i % 3 != 0 {
            b.record_success(&format!("k{i}"), fp((i % 250) as u8), &format!("{{\"i\":{i}}}"), Some(&format!("g{i}")), Outcome::Created)
                .unwrap();
        }
    }
    b.commit().unwrap();
    let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
    let got = s.sync("sync").get_many(&keys).unwrap();
    assert_eq!(got.len(), 666);
    for i in 0..1000u32 {
        let k = format!("k{i}");
        match got.get(&k) {
            Some(r) => {
                assert_ne!(i % 3, 0);
                assert_eq!(r.payload.as_deref(), Some(format!("{{\"i\":{i}}}").as_str()));
                assert_eq!(r.remote_id.as_deref(), Some(format!("g{i}").as_str()));
            }
            None => assert_eq!(i % 3, 0, "{k} missing"),
        }
    }
    // Small and empty lookups, and repeated keys.
    assert_eq!(s.sync("sync").get_many(&["k1", "k1", "k3"]).unwrap().len(), 1);
    assert!(s.sync("sync").get_many::<&str>(&[]).unwrap().is_empty());
    assert!(s.sync("other").get_many(&["k1"]).unwrap().is_empty());
}

#[test]
fn a_batch_is_all_or_nothing() {
    let dir = TempDir::new("batch");
    let s = State::open(dir.path()).unwrap();
    {
        let mut b = s.sync("sync").batch().unwrap();
        for i in 0..100 {
            b.record_success(&format!("k{i}"), fp(1), "{}", None, Outcome::Created).unwrap();
        }
        b.record_failure("bad", fp(2), &server_error(), true).unwrap();
        // dropped without commit
    }
    assert_eq!(s.sync("sync").record_count().unwrap(), 0);
    let mut b = s.sync("sync").batch().unwrap();
    for i in 0..100 {
        b.record_success(&format!("k{i}"), fp(1), "{}", None, Outcome::Created).unwrap();
    }
    b.commit().unwrap();
    assert_eq!(s.sync("sync").record_count().unwrap(), 100);
    // Another connection sees the same.
    let other = State::open(dir.path()).unwrap();
    assert_eq!(other.sync("sync").record_count().unwrap(), 100);
}

#[test]
fn runs_and_disappeared_keys() {
    let dir = TempDir::new("runs");
    let s = State::open(dir.path()).unwrap();
    let run1 = s.sync("sync").start_run().unwrap();
    for k in ["a", "b", "c"] {
        s.sync("sync").record_success(k, fp(1), "{}", None, Outcome::Created).unwrap();
    }
    let counts = RunCounts { rows_read: 3, planned_new: 3, created: 3, requests: 6, ..RunCounts::default() };
    s.finish_run(run1, RunStatus::Succeeded, &counts, None).unwrap();

    // Disappeared keys: those in state that the run's source keys do not hold.
    let run2 = s.sync("sync").start_run().unwrap();
    assert!(run2 > run1);
    let source = ["a", "c", "never-synced"];
    assert_eq!(s.sync("sync").count_keys_absent(|k| source.contains(&k)).unwrap(), 1, "b left the source");
    assert_eq!(s.sync("sync").count_keys_absent(|_| true).unwrap(), 0);
    assert_eq!(s.sync("sync").count_keys_absent(|_| false).unwrap(), 3);
    assert_eq!(s.sync("other").count_keys_absent(|_| false).unwrap(), 0, "per sync");
    assert_eq!(s.sync("sync").forget(&["b"]).unwrap(), 1);
    assert_eq!(s.sync("sync").count_keys_absent(|k| source.contains(&k)).unwrap(), 0);
    s.update_run(run2, &RunCounts { rows_read: 2, ..RunCounts::default() }).unwrap();
    assert_eq!(s.run(run2).unwrap().unwrap().status, RunStatus::Running);

    // A run left running (its process died) is marked interrupted by the next start.
    let run3 = s.sync("sync").start_run().unwrap();
    let r2 = s.run(run2).unwrap().unwrap();
    assert_eq!(r2.status, RunStatus::Interrupted);
    assert_eq!(r2.counts.rows_read, 2, "progress counters survive");
    assert!(r2.finished_at.is_some());
    s.finish_run(run3, RunStatus::Failed, &RunCounts::default(), Some("authentication failed")).unwrap();

    let runs = s.sync("sync").runs(10).unwrap();
    assert_eq!(runs.iter().map(|r| (r.run_id, r.status)).collect::<Vec<_>>(), [
        (run3, RunStatus::Failed),
        (run2, RunStatus::Interrupted),
        (run1, RunStatus::Succeeded)
    ]);
    assert_eq!(runs[2].counts, counts);
    assert_eq!(runs[0].message.as_deref(), Some("authentication failed"));
    assert!(s.sync("other").runs(10).unwrap().is_empty());
    assert!(matches!(s.finish_run(9999, RunStatus::Succeeded, &counts, None), Err(StateError::Usage(_))));
}

#[test]
fn sync_meta_round_trip() {
    let dir = TempDir::new("meta");
    let s = State::open(dir.path()).unwrap();
    assert!(s.sync("sync").meta().unwrap().is_none());
    s.sync("sync").set_meta("m1", "0.1.0").unwrap();
    s.sync("sync").set_meta("m2", "0.2.0").unwrap();
    let m = s.sync("sync").meta().unwrap().unwrap();
    assert_eq!((m.mapping_fingerprint.as_str(), m.component_version.as_str()), ("m2", "0.2.0"));
    assert!(!m.updated_at.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Kill safety: a child process (this test binary, running `kill_child_writer`) writes batches of
// records in a loop; the parent SIGKILLs it in the middle of a batch, then re-opens the state.

const KEYS: u32 = 3000;
const CHILD_ENV: &str = "HH_STATE_KILL_CHILD_DIR";

fn payload(generation: u32, i: u32) -> String {
    // ~1 KiB, so a batch (3 MiB) overflows SQLite's page cache and spills into the WAL
    // before it commits.
    format!("{{\"gen\":{generation},\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(1000))
}

fn gen_fp(generation: u32) -> Fingerprint {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&generation.to_le_bytes());
    Fingerprint(b)
}

/// Child side; does nothing unless started by `killed_mid_batch_leaves_consistent_state`.
#[test]
fn kill_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let pause_mid_batch = std::env::var("HH_STATE_KILL_PAUSE").is_ok();
    let s = State::open(&dir).unwrap();
    for generation in 1.. {
        let mut b = s.sync("kill").batch().unwrap();
        for i in 0..KEYS {
            b.record_success(&format!("k{i:05}"), gen_fp(generation), &payload(generation, i), Some(&format!("g{generation}")), Outcome::Updated)
                .unwrap();
            if i == KEYS / 2 && generation >= 3 {
                println!("MID {generation}");
                if pause_mid_batch {
                    loop {
                        std::thread::park();
                    }
                }
            }
        }
        b.commit().unwrap();
        println!("COMMITTED {generation}");
    }
}

fn check_consistent(dir: &std::path::Path, at_least: u32) -> u32 {
    let s = State::open(dir).unwrap();
    assert_eq!(s.integrity_check().unwrap(), "ok");
    let keys: Vec<String> = (0..KEYS).map(|i| format!("k{i:05}")).collect();
    let all = s.sync("kill").get_many(&keys).unwrap();
    assert_eq!(all.len(), KEYS as usize, "every key of a committed batch is there");
    let generation = all["k00000"].fingerprint.map(|f| u32::from_le_bytes(f.0[..4].try_into().unwrap())).unwrap();
    assert!(generation >= at_least, "generation {generation} < committed {at_least}");
    for (k, r) in &all {
        let i: u32 = k[1..].parse().unwrap();
        assert_eq!(r.fingerprint, Some(gen_fp(generation)), "{k}: a half-applied batch");
        assert_eq!(r.payload.as_deref(), Some(payload(generation, i).as_str()), "{k}");
        assert_eq!(r.remote_id.as_deref(), Some(format!("g{generation}").as_str()));
    }
    generation
}

fn run_child_and_kill(pause: bool, kill_after: &str) -> (TempDir, u32) {
    let dir = TempDir::new("kill");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["state::kill_child_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if pause {
        cmd.env("HH_STATE_KILL_PAUSE", "1");
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut committed = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(g) = line.strip_prefix("COMMITTED ") {
            committed = g.trim().parse().unwrap();
        }
        if line.starts_with(kill_after) {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, it did not finish");
    (dir, committed)
}

#[test]
fn killed_mid_batch_leaves_consistent_state() {
    // Deterministic: killed while a transaction holds half a batch (part of it spilled to the
    // WAL without a commit frame).
    let (dir, committed) = run_child_and_kill(true, "MID 3");
    assert_eq!(committed, 2);
    let wal = dir.join(format!("{STATE_FILE}-wal"));
    assert!(wal.exists(), "the WAL is left behind by the kill");
    assert_eq!(check_consistent(dir.path(), committed), 2, "the unfinished batch 3 is not visible");

    // Whenever: killed while it writes flat out, at some point after a commit.
    let (dir, committed) = run_child_and_kill(false, "COMMITTED 4");
    let generation = check_consistent(dir.path(), committed);
    assert!(generation >= 4);
    // And the state is writable again.
    let s = State::open(dir.path()).unwrap();
    s.sync("kill").record_success("after", gen_fp(0), "{}", None, Outcome::Created).unwrap();
}
