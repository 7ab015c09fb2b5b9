//! Results write-back: every record's outcome lands in the operator's table (PostgreSQL or the
//! source's SQLite file) or JSON Lines file, never ahead of the state it reports, and survives a
//! killed run without being lost or repeated.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use conformance::gladly_emulator::{EmulatorConfig, Fault, FaultRule, Method};
use conformance::{JobSpec, Rows, Session};
use host_harness::results::ResultsConfig;
use host_harness::source::SourceConfig;
use host_harness::state::State;
use serde_json::{Value, json};
use test_kit::postgres::url as pg_url;
use test_kit::{Job, TempDir, unique};

/// One result row as the tests compare it: (row key, outcome, Gladly id, error code, category,
/// attempts, retried next run).
type Outcome = (String, String, Option<String>, Option<String>, Option<String>, i64, bool);

fn outcome(key: &str, outcome: &str, gladly_id: Option<&str>, code: Option<&str>, category: Option<&str>, attempts: i64, retried: bool) -> Outcome {
    (key.into(), outcome.into(), gladly_id.map(Into::into), code.map(Into::into), category.map(Into::into), attempts, retried)
}

/// The emulator's profiles a run meets: one that will need an update, one already as the row
/// says, and one whose first PATCH fails with a 503.
fn seed_profiles(s: &Session) {
    s.seed(json!({"id": "seed-u1", "name": "Old Name", "emails": [{"original": "u1@example.com"}]}));
    s.seed(json!({"id": "seed-n1", "name": "Nia Same", "emails": [{"original": "n1@example.com"}]}));
    s.seed(json!({"id": "seed-r1", "name": "Old Retry", "emails": [{"original": "r1@example.com"}]}));
}

/// What the run of [`seed_profiles`] and the five rows must leave in the results, with the id
/// the emulator gave the one created profile.
fn expected_outcomes(created_id: &str) -> Vec<Outcome> {
    vec![
        outcome("bad", "rejected", None, Some("missing-field"), Some("skip-record"), 0, false),
        outcome("c1", "created", Some(created_id), None, None, 1, false),
        outcome("n1", "unchanged", Some("seed-n1"), None, None, 1, false),
        outcome("r1", "updated", Some("seed-r1"), None, None, 2, false),
        outcome("u1", "updated", Some("seed-u1"), None, None, 1, false),
    ]
}

/// A session whose first PATCH of `seed-r1` answers 503 (the host retries it once).
async fn session_with_one_retry() -> Session {
    let fault = FaultRule::on_requests(Fault::Status5xx(503), [1]).method(Method::PATCH).path_prefix("/api/v1/customer-profiles/seed-r1");
    let s = Session::start(EmulatorConfig { faults: vec![fault], ..Session::fast_emulator() }).await;
    seed_profiles(&s);
    s
}

fn spec(sync_id: &str) -> JobSpec {
    JobSpec::new("upsert").sync_id(sync_id).map("email", "email").map("name", "name")
}

/// A run with created, updated, unchanged, rejected and retried rows from a PostgreSQL source
/// leaves exactly one row per record in the results table it created in that database, with
/// the outcome, the Gladly id, the error and the attempts of each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_table_in_postgres_holds_each_outcome_of_a_run() {
    let source_table = unique("res_src_");
    let results_table = unique("res_out_");
    pg(&format!(
        "CREATE TABLE {source_table} (id TEXT, email TEXT, name TEXT);
         INSERT INTO {source_table} VALUES
           ('c1', 'c1@example.com', 'Cleo New'),
           ('u1', 'u1@example.com', 'Uma Changed'),
           ('n1', 'n1@example.com', 'Nia Same'),
           ('r1', 'r1@example.com', 'Rex Retried'),
           ('bad', NULL, 'No Email');"
    ));

    let s = session_with_one_retry().await;
    let mut job = s.job(&spec("results-pg"));
    job.source = toml::from_str(&format!(
        "kind = \"postgres\"\nurl = \"{}\"\nquery = \"SELECT id, email, name FROM {source_table} ORDER BY id\"\nprimary_key = \"id\"",
        pg_url()
    ))
    .unwrap();
    job.results = Some(ResultsConfig { table: Some(results_table.clone()), jsonl: None });
    let report = s.run_ok(&job).await;
    let created_id = s.profile_by_email("c1@example.com")["id"].as_str().unwrap().to_string();

    let (rows, runs) = {
        let results_table = results_table.clone();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
            let rows: Vec<Outcome> = c
                .query(
                    &format!(
                        "SELECT row_key, outcome, gladly_id, error_code, category, attempts::bigint, retried_next_run
                         FROM {results_table} ORDER BY row_key"
                    ),
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6)))
                .collect();
            let runs: Vec<(String, i64)> =
                c.query(&format!("SELECT DISTINCT sync_id, run_id FROM {results_table}"), &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
            (rows, runs)
        })
        .join()
        .unwrap()
    };
    pg(&format!("DROP TABLE {source_table}; DROP TABLE {results_table};"));
    assert_eq!(rows, expected_outcomes(&created_id), "{}", report.summary());
    assert_eq!(runs, [("results-pg".to_string(), 1)]);
    assert!(report.notes.contains(&format!("5 result row(s) written to table `{results_table}` on postgresql://postgres@127.0.0.1:5432/test")), "{:?}", report.notes);
}

/// Runs `sql` on the test PostgreSQL (on a plain thread: the driver brings its own runtime).
fn pg(sql: &str) {
    let sql = sql.to_string();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls).expect("PostgreSQL on 127.0.0.1:5432");
        c.batch_execute(&sql).unwrap();
    })
    .join()
    .unwrap();
}

/// An SQLite source file in WAL mode holding `customers(id, email, name)` with `rows`.
fn sqlite_source(path: &Path, rows: &[(&str, &str, &str)]) {
    let c = rusqlite::Connection::open(path).unwrap();
    let mode: String = c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    c.execute_batch("CREATE TABLE customers (id TEXT PRIMARY KEY, email TEXT, name TEXT)").unwrap();
    for (id, email, name) in rows {
        c.execute("INSERT INTO customers VALUES (?1, ?2, ?3)", [id, email, name]).unwrap();
    }
}

fn sqlite_source_config(path: &Path) -> SourceConfig {
    toml::from_str(&format!(
        "kind = \"sqlite\"\npath = {}\nquery = \"SELECT id, email, name FROM customers ORDER BY id\"\nprimary_key = \"id\"",
        test_kit::q(&path.display().to_string())
    ))
    .unwrap()
}

/// The same run from an SQLite source writes the same results into a table of that file, while
/// the source query is still reading it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_table_in_the_sqlite_source_holds_each_outcome_of_a_run() {
    let s = session_with_one_retry().await;
    let dir = TempDir::new("results-sqlite");
    let db = dir.join("warehouse.sqlite");
    sqlite_source(
        &db,
        &[("c1", "c1@example.com", "Cleo New"), ("u1", "u1@example.com", "Uma Changed"), ("n1", "n1@example.com", "Nia Same"), ("r1", "r1@example.com", "Rex Retried")],
    );
    rusqlite::Connection::open(&db).unwrap().execute("INSERT INTO customers VALUES ('bad', NULL, 'No Email')", []).unwrap();
    let mut job = s.job(&spec("results-sqlite"));
    job.source = sqlite_source_config(&db);
    job.results = Some(ResultsConfig { table: Some("gladly_sync_results".into()), jsonl: None });
    let report = s.run_ok(&job).await;
    let created_id = s.profile_by_email("c1@example.com")["id"].as_str().unwrap().to_string();

    let c = rusqlite::Connection::open(&db).unwrap();
    let rows: Vec<Outcome> = c
        .prepare("SELECT row_key, outcome, gladly_id, error_code, category, attempts, retried_next_run FROM gladly_sync_results ORDER BY row_key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, expected_outcomes(&created_id), "{}", report.summary());
    let state = State::open(&job.sync.state_dir).unwrap();
    assert_eq!(state.sync("results-sqlite").outbox_len().unwrap(), 0, "every result was delivered and left the outbox");
}

/// A source database in rollback-journal mode cannot take results while its query reads: the
/// run stops before any request, naming the one-time fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_source_outside_wal_mode_fails_before_any_request() {
    let s = Session::start(Session::fast_emulator()).await;
    let dir = TempDir::new("results-journal");
    let db = dir.join("warehouse.sqlite");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch("CREATE TABLE customers (id TEXT, email TEXT, name TEXT); INSERT INTO customers VALUES ('c1', 'c1@example.com', 'Cleo');").unwrap();
    let mut job = s.job(&spec("results-journal"));
    job.source = sqlite_source_config(&db);
    job.results = Some(ResultsConfig { table: Some("gladly_sync_results".into()), jsonl: None });
    let e = s.run(&job).await.unwrap_err().to_string();
    assert!(e.contains("is in `delete` journal mode") && e.contains("'PRAGMA journal_mode=WAL'"), "{e}");
    assert!(s.requests().is_empty(), "{}", s.transcript());
}

/// Results written to a JSON Lines file after a run whose token the API refuses: one line per
/// record with the configuration error, and the token nowhere in the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_file_names_the_error_and_never_holds_the_token() {
    let s = Session::start(Session::fast_emulator()).await;
    let token = "wrong-token-7f3a9c2e51";
    let mut job = s.job(&spec("results-jsonl").token(token).rows(Rows::csv("id,email,name\nc1,c1@example.com,Cleo\nbad,,No Email\n")));
    let file = job.sync.state_dir.parent().unwrap().join("results.jsonl");
    job.results = Some(ResultsConfig { table: None, jsonl: Some(file.clone()) });
    let report = s.run_ok(&job).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: BTreeMap<String, Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["row_key"].as_str().unwrap().to_string(), v))
        .collect();
    let summary = |k: &str| {
        let v = &lines[k];
        (v["outcome"].as_str().unwrap(), v["error_code"].as_str().unwrap(), v["category"].as_str().unwrap(), v["http_status"].clone(), v["retried_next_run"].clone())
    };
    assert_eq!(lines.len(), 2, "{text}\n{}", report.summary());
    assert_eq!(summary("c1"), ("failed", "authentication-failed", "fix-config", json!(401), json!(true)));
    assert_eq!(summary("bad"), ("rejected", "missing-field", "skip-record", Value::Null, json!(false)));
    assert!(!text.contains(token), "{text}");
    let basic = test_kit::emulator::basic_auth(conformance::gladly_emulator::DEFAULT_USER, token);
    assert!(!text.contains(basic.trim_start_matches("Basic ")), "{text}");
}

/// A run killed (SIGKILL) mid-way: no result row is ahead of the state (each one's record is
/// confirmed there with the same Gladly id); the re-run delivers what the killed run committed
/// but did not deliver, and in the end every row has exactly one `created` result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_leaves_no_result_ahead_of_state_and_the_rerun_loses_none() {
    const ROWS: usize = 120;
    for seed in [5u64, 29, 61] {
        let emu = conformance::gladly_emulator::Emulator::start(EmulatorConfig {
            rate_limit_per_second: 1000,
            latency: Duration::from_millis(30),
            seed,
            ..EmulatorConfig::default()
        })
        .await
        .unwrap();
        let dir = TempDir::new("results-kill");
        let db = dir.join("warehouse.sqlite");
        let people: Vec<(String, String, String)> =
            (0..ROWS).map(|i| (format!("k{i:03}"), format!("k{i:03}@example.com"), format!("Person {i}"))).collect();
        let refs: Vec<(&str, &str, &str)> = people.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
        sqlite_source(&db, &refs);
        let token = dir.file("token", conformance::gladly_emulator::DEFAULT_TOKEN);
        let job = Job::people_into_acme(&format!("results-kill-{seed}"), dir.path(), conformance::gladly_emulator::DEFAULT_USER)
            .source(&format!(
                "kind = \"sqlite\"\npath = {}\nquery = \"SELECT id, email, name FROM customers ORDER BY id\"\nprimary_key = \"id\"",
                test_kit::q(&db.display().to_string())
            ))
            .token_file(&token)
            .policy(&format!("endpoint = {}", test_kit::q(&emu.base_url())))
            .limit("batch_size = 5")
            .limit("max_retries = 3");
        let job_file = dir.join("job.toml");
        std::fs::write(&job_file, format!("{}\n[results]\ntable = \"gladly_sync_results\"\n", job.toml())).unwrap();
        let cli = || {
            let mut c = std::process::Command::new(test_kit::components::destination_host());
            c.arg("sync").arg("--config").arg(&job_file).arg("--report").arg(dir.join("report.json"));
            c.env("DESTINATION_HOST_ALLOW_EMULATOR", "1");
            c.stdout(std::process::Stdio::null()).stderr(std::fs::File::create(dir.join("stderr.log")).unwrap());
            c
        };
        // One create per row into the empty organization: 120 requests in all.
        let kill_at = 10 + (seed as usize * 7) % 100;
        let mut child = cli().spawn().unwrap();
        loop {
            assert!(child.try_wait().unwrap().is_none(), "seed {seed}: the run ended before the kill point {kill_at}");
            if emu.requests().len() >= kill_at {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }

        // No result ahead of state: each delivered result's record is confirmed with its id.
        let delivered = results_by_key(&db);
        let state = State::open(&job.state_dir).unwrap();
        let sync_id = format!("results-kill-{seed}");
        for (key, (outcome, gladly_id)) in &delivered {
            let rec = state.sync(&sync_id).get(key).unwrap().unwrap_or_else(|| panic!("seed {seed}: result for {key} but no state"));
            assert_eq!((outcome.as_str(), rec.remote_id.as_deref()), ("created", Some(gladly_id.as_str())), "seed {seed}: {key}");
        }
        drop(state);

        let mut rerun = cli();
        let status = tokio::task::spawn_blocking(move || rerun.status()).await.unwrap().unwrap();
        assert!(
            status.success(),
            "seed {seed}: {}\n{}",
            std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default(),
            std::fs::read_to_string(dir.join("report.json")).unwrap_or_default()
        );
        let all = results_by_key(&db);
        let c = rusqlite::Connection::open(&db).unwrap();
        let total: i64 = c.query_row("SELECT count(*) FROM gladly_sync_results", [], |r| r.get(0)).unwrap();
        assert_eq!((total, all.len()), (ROWS as i64, ROWS), "seed {seed}: one result per row, none lost or repeated (killed after {kill_at} requests, {} delivered then)", delivered.len());
        assert!(all.values().all(|(o, _)| o == "created"), "seed {seed}");
        emu.shutdown().await;
    }
}

/// key → (outcome, Gladly id) of every row in `gladly_sync_results` (panics on two per key).
fn results_by_key(db: &Path) -> BTreeMap<String, (String, String)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let exists: i64 = c.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'gladly_sync_results'", [], |r| r.get(0)).unwrap();
    if exists == 0 {
        return BTreeMap::new();
    }
    let mut out = BTreeMap::new();
    let mut stmt = c.prepare("SELECT row_key, outcome, gladly_id FROM gladly_sync_results").unwrap();
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))).unwrap() {
        let (k, o, g) = row.unwrap();
        assert!(out.insert(k.clone(), (o, g)).is_none(), "two results for {k}");
    }
    out
}

/// A results table needs a database source: a job reading a CSV file with `table` set is
/// refused when it is checked, with the JSON Lines fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_results_table_for_a_file_source_is_refused_when_the_job_is_checked() {
    let s = Session::start(Session::fast_emulator()).await;
    let mut job = s.job(&spec("results-csv"));
    job.results = Some(ResultsConfig { table: Some("gladly_sync_results".into()), jsonl: None });
    let e = s.prepare(&job).await.err().expect("the job is refused").to_string();
    assert_eq!(e, "[results]: `table` writes into the source database, and this job reads a csv file; use `jsonl = \"results.jsonl\"` instead");
    assert!(s.requests().is_empty());
}
