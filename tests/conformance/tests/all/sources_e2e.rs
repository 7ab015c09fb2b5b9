//! End to end from each source kind into the Gladly emulator, with the real destination
//! component: CSV, JSON Lines, SQLite (the bundled host-harness/examples/warehouse.sqlite) and PostgreSQL
//! (`HOST_HARNESS_PG_URL`, default `postgresql://postgres@127.0.0.1:5432/test`; the test makes
//! and drops its own table). In every source one key repeats and one is missing: those rows are
//! reported as invalid and never sent.
//!
//! Build the components first: `cargo xtask build`.

use std::collections::BTreeMap;
use std::time::Duration;

use host_harness::contract::model::ErrorCode;
use host_harness::job::JobConfig;
use host_harness::sync::report::RunReport;
use host_harness::sync::{Harness, RunOptions};
use test_kit::postgres::url as pg_url;
use test_kit::{Creds, Job, TempDir, q, unique, workspace_root};

const GUARD: Duration = Duration::from_secs(120);

/// A row of the test data: key (None = missing), name, email.
type Rec = (Option<&'static str>, &'static str, &'static str);

/// Three good rows, a repeated key (its second row must not be sent) and a missing key.
const DATA: [Rec; 5] = [
    (Some("s1"), "Ann Source", "ann.source@example.com"),
    (Some("s2"), "Bob Source", "bob.source@example.com"),
    (Some("s1"), "Ann Again", "ann.again@example.com"),
    (None, "No Key", "no.key@example.com"),
    (Some("s3"), "Cy Source", "cy.source@example.com"),
];

fn expected_from_data() -> BTreeMap<String, String> {
    [("s1", "ann.source@example.com"), ("s2", "bob.source@example.com"), ("s3", "cy.source@example.com")]
        .into_iter()
        .map(|(k, e)| (k.to_string(), e.to_string()))
        .collect()
}

/// What one end-to-end run is checked against.
struct Expect {
    /// key → email of every profile that must exist afterwards.
    profiles: BTreeMap<String, String>,
    /// The key that repeats.
    duplicate: String,
    /// Emails that must never be sent (the duplicate's and the key-less row's).
    never_sent: Vec<String>,
}

/// Sync `source` (a `[source]` body) twice into a fresh emulator and check the outcome.
async fn sync_and_check(tag: &str, source: &str, expect: Expect) {
    let creds = Creds::new();
    let emu = test_kit::emulator::with_user(&creds).await;
    let dir = TempDir::new(tag);
    let token = dir.file("token", &creds.token);
    let job: JobConfig = Job::people_into_acme(tag, dir.path(), &creds.user).source(source).token_file(&token).config();
    let harness = Harness::for_job(&job).expect("harness");
    let opts = RunOptions { endpoint: Some(emu.base_url()), ..RunOptions::default() };
    let tenant = harness.prepare(&job, &opts).await.expect("prepare");

    let run = || async {
        tokio::time::timeout(GUARD, harness.run(&tenant, &job, &opts)).await.expect("the run hung").expect("the run")
    };
    let report: RunReport = run().await;
    let n = expect.profiles.len() as u64;
    let c = &report.counts;
    assert_eq!((c.rows, c.invalid, c.created, c.failed), (n + 2, 2, n, 0), "{report:#?}");
    assert_eq!(report.aborted, None);

    // The two bad rows are reported, with their key (or where they are) and the column.
    assert_eq!(report.failures.len(), 2, "{:#?}", report.failures);
    let dup = report.failures.iter().find(|f| f.code == ErrorCode::DuplicateKey).expect("a duplicate-key failure");
    assert_eq!(dup.key, expect.duplicate);
    assert!(dup.message.contains("duplicate key"), "{dup:?}");
    let missing = report.failures.iter().find(|f| f.code == ErrorCode::MissingField).expect("a missing-key failure");
    assert!(missing.message.contains("missing key"), "{missing:?}");
    for f in &report.failures {
        assert_eq!((f.kind, f.attempts, f.field.as_deref()), ("invalid-row", 0, Some("id")), "{f:?}");
    }

    // The emulator holds exactly the good rows.
    let mut got = BTreeMap::new();
    for p in emu.profiles("acme") {
        let key = p["externalCustomerId"].as_str().expect("externalCustomerId").to_string();
        let email = p["emails"][0]["original"].as_str().expect("an email").to_string();
        assert!(got.insert(key, email).is_none(), "one profile per key: {p}");
    }
    assert_eq!(got, expect.profiles);

    // The bad rows never left the host.
    let sent: String = emu.requests().iter().map(|r| format!("{} {:?}\n", r.path, r.body)).collect();
    for email in &expect.never_sent {
        let encoded = email.replace('@', "%40");
        assert!(!sent.contains(email.as_str()) && !sent.contains(&encoded), "{email} was sent:\n{sent}");
    }

    // A second run sends nothing: every good row is unchanged, the bad ones are reported again.
    let before = emu.requests().len();
    let again = run().await;
    assert_eq!((again.counts.unchanged, again.counts.invalid, again.requests), (n, 2, 0), "{again:#?}");
    assert_eq!(emu.requests().len(), before);
}

fn data_expect() -> Expect {
    Expect {
        profiles: expected_from_data(),
        duplicate: "s1".into(),
        never_sent: vec!["ann.again@example.com".into(), "no.key@example.com".into()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_into_the_emulator() {
    let dir = TempDir::new("e2e-csv-data");
    let mut text = String::from("id,name,email\n");
    for (k, n, e) in DATA {
        text += &format!("{},{n},{e}\n", k.unwrap_or(""));
    }
    let path = dir.file("people.csv", &text);
    let source = format!("kind = \"csv\"\npath = {}\nprimary_key = \"id\"\n", q(&path.display().to_string()));
    sync_and_check("e2e-csv", &source, data_expect()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_into_the_emulator() {
    let dir = TempDir::new("e2e-jsonl-data");
    let text: String = DATA
        .iter()
        .map(|(k, n, e)| format!("{}\n", serde_json::json!({"id": k, "name": n, "email": e})))
        .collect();
    let path = dir.file("people.jsonl", &text);
    let source = format!("kind = \"jsonl\"\npath = {}\nprimary_key = \"id\"\n", q(&path.display().to_string()));
    sync_and_check("e2e-jsonl", &source, data_expect()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_warehouse_into_the_emulator() {
    let db = workspace_root().join("host-harness/examples/warehouse.sqlite");
    // Customers 1–3, then customer 2 again with another email, then a row without a key.
    let query = "SELECT id, name, email FROM ( \
        SELECT 1 AS o, id, full_name AS name, email FROM customers WHERE id IN (1, 2, 3) \
        UNION ALL SELECT 2, id, full_name, 'again.' || email FROM customers WHERE id = 2 \
        UNION ALL SELECT 3, NULL, 'Nobody', 'nobody.sqlite@example.com' \
        ) ORDER BY o, id";
    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn.prepare("SELECT id, email FROM customers WHERE id IN (1, 2, 3) ORDER BY id").unwrap();
    let profiles: BTreeMap<String, String> = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?.to_string(), r.get::<_, String>(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(profiles.len(), 3);
    let again = format!("again.{}", profiles["2"]);
    let source = format!(
        "kind = \"sqlite\"\npath = {}\nquery = {}\nprimary_key = \"id\"\n",
        q(&db.display().to_string()),
        q(query)
    );
    let expect = Expect { profiles, duplicate: "2".into(), never_sent: vec![again, "nobody.sqlite@example.com".into()] };
    sync_and_check("e2e-sqlite", &source, expect).await;
}

/// A table of its own in the `test` database, dropped at the end.
struct PgTable {
    name: String,
}

impl PgTable {
    fn client() -> postgres::Client {
        postgres::Client::connect(&pg_url(), postgres::NoTls)
            .unwrap_or_else(|e| panic!("PostgreSQL at {} (set HOST_HARNESS_PG_URL): {e}", pg_url()))
    }

    /// Create and fill the table (on a plain thread: the postgres client runs its own runtime).
    fn create(rows: &'static [Rec]) -> PgTable {
        let name = unique("hh_e2e_").to_lowercase();
        let table = name.clone();
        std::thread::spawn(move || {
            let mut c = PgTable::client();
            c.batch_execute(&format!("CREATE TABLE {table} (ord int NOT NULL, id text, name text NOT NULL, email text)"))
                .unwrap();
            for (i, (k, n, e)) in rows.iter().enumerate() {
                c.execute(&format!("INSERT INTO {table} VALUES ($1, $2, $3, $4)"), &[&(i as i32), k, n, e]).unwrap();
            }
        })
        .join()
        .expect("create the PostgreSQL table");
        PgTable { name }
    }
}

impl Drop for PgTable {
    fn drop(&mut self) {
        let table = self.name.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP TABLE IF EXISTS {table}"));
            }
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_into_the_emulator() {
    let table = PgTable::create(&DATA);
    let source = format!(
        "kind = \"postgres\"\nurl = {}\nquery = {}\nprimary_key = \"id\"\n",
        q(&pg_url()),
        q(&format!("SELECT id, name, email FROM {} ORDER BY ord", table.name))
    );
    sync_and_check("e2e-postgres", &source, data_expect()).await;
    drop(table);
}

#[test]
fn the_postgres_table_is_dropped() {
    let name = {
        let t = PgTable::create(&DATA[..1]);
        t.name.clone()
    };
    let exists: bool = std::thread::spawn(move || {
        PgTable::client()
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .map(|r| r.get(0))
            .unwrap()
    })
    .join()
    .unwrap();
    assert!(!exists);
}
