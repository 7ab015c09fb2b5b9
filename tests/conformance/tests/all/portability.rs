//! The same component in another host: the JavaScript host of `tests/portability/node` (the
//! component transpiled by jco, run by Node.js). The component is the one `cargo xtask build`
//! made; jco transpiles that file.
//!
//! - Both hosts run one fixed batch against two fresh emulators with the same faults and must
//!   report the same outcome, Gladly id and error code for every row, the same as written by
//!   hand below, and leave the same profiles.
//! - The hostile plugin runs in the Node host: its egress and secret promises hold there too.
//! - The Node host paces to the organization's rate and cuts a slow answer off at its timeout.
//! - `docs/PORTABILITY.md` lists exactly the imports of the built file.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use conformance::gladly_emulator::{
    DEFAULT_TOKEN, DEFAULT_USER, Emulator, EmulatorConfig, Fault, FaultRule, Method, Switches, User,
};
use conformance::host_harness::sync::report::RunReport;
use conformance::test_kit::components::workspace_root;
use conformance::test_kit::temp::TempDir;
use conformance::{JobSpec, Rows, Session, component};
use serde_json::{Value, json};

const NODE_HOST: &str = "tests/portability/node";

/// The rows: two new customers (the second one's create answer is lost, so its retry meets a
/// 409 on our own id), a changed customer (its first PATCH meets a 429 with Retry-After), an
/// unchanged one, one whose legacy email makes Gladly answer 400, and one without an email.
const ROWS: &str = "id,email,name,email2\n\
    1,new.one@example.com,New One,\n\
    2,new.two@example.com,New Two,\n\
    3,changed@example.com,Changed Name,\n\
    4,same@example.com,Same,\n\
    5,legacy@example.com,Legacy,legacy.new@example.com\n\
    6,,No Email,\n";

/// What every row must end as, written by hand: (key, outcome, error code).
const EXPECTED: [(&str, &str, Option<&str>); 6] = [
    ("1", "created", None),
    ("2", "created", None),
    ("3", "updated", None),
    ("4", "unchanged", None),
    ("5", "failed", Some("rejected")),
    ("6", "failed", Some("missing-field")),
];

fn emulator_config() -> EmulatorConfig {
    EmulatorConfig {
        rate_limit_per_second: 200,
        seed: 11,
        switches: Switches {
            // A created profile stays out of find for a while, so the retry of the lost create
            // POSTs again and meets its own id.
            index_lag: Duration::from_secs(30),
            retry_after_secs: Some(1),
            ..Switches::default()
        },
        faults: vec![
            FaultRule::on_requests(Fault::DropAfterApply, [2]).method(Method::POST),
            FaultRule::on_requests(Fault::Status429, [1]).method(Method::PATCH),
        ],
        ..EmulatorConfig::default()
    }
}

fn seed(emulator: &Emulator, org: &str) {
    for p in [
        json!({"id": "seed-changed", "name": "Old Name", "emails": [{"original": "changed@example.com"}]}),
        json!({"id": "seed-same", "name": "Same", "emails": [{"original": "same@example.com"}]}),
        json!({"id": "seed-legacy", "name": "Legacy",
            "emails": [{"original": "legacy@example.com"}, {"original": "broken@@example"}]}),
    ] {
        emulator.insert_profile(org, p);
    }
}

/// Node.js and the host's packages, or a failure that says how to get them (never a skip).
fn require_node_host() -> PathBuf {
    let dir = workspace_root().join(NODE_HOST);
    let node = Command::new("node").arg("--version").output();
    match node {
        Ok(out) if out.status.success() => {}
        _ => panic!(
            "the portability test needs Node.js 20 or newer on PATH (Debian: apt install nodejs npm), \
             then `npm ci --prefix {NODE_HOST}`"
        ),
    }
    assert!(
        dir.join("node_modules/@bytecodealliance/jco-transpile").is_dir(),
        "the Node host's packages are missing: run `npm ci --prefix {NODE_HOST}` (cargo xtask test does)"
    );
    dir
}

/// Runs the Node host on `job` (with `env` added to its process) and returns its results file
/// and its stderr; fails the test if the host fails.
async fn run_node(node_dir: &std::path::Path, dir: &TempDir, job: &Value, env: &[(&str, &str)]) -> (Value, String) {
    let job_file = dir.file("job.json", serde_json::to_vec_pretty(job).unwrap());
    let results_file = dir.join("results.json");
    let _ = std::fs::remove_file(&results_file);
    let out = tokio::process::Command::new("node")
        .current_dir(node_dir)
        .arg("src/main.mjs")
        .arg(&job_file)
        .arg(&results_file)
        .env("DESTINATION_HOST_ALLOW_EMULATOR", "1")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("node runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "the Node host failed:\n{stderr}");
    assert!(stdout.is_empty(), "the component's stdout must go through the host's capture, not to the process's:\n{stdout}");
    let results = serde_json::from_slice(&std::fs::read(&results_file).expect("results")).expect("results are JSON");
    (results, stderr)
}

/// Profiles without the server's timestamps, sorted by id: what both hosts must leave behind.
fn comparable(mut profiles: Vec<Value>) -> Vec<Value> {
    for p in &mut profiles {
        if let Some(o) = p.as_object_mut() {
            o.remove("createdAt");
            o.remove("updatedAt");
        }
    }
    profiles.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    profiles
}

type Record = (String, String, Option<String>, Option<String>);

/// (key, outcome, remote id, error code) per row from the reference host: its state for the rows
/// it sent, its report for the rows map-rows refused (those never reach the state).
fn rust_records(state: &std::path::Path, report: &RunReport) -> Vec<Record> {
    let db = rusqlite::Connection::open(state.join("state.sqlite3")).expect("state");
    let mut st = db.prepare("SELECT record_key, last_outcome, remote_id, error_code FROM records").unwrap();
    let mut records: Vec<Record> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap).collect();
    for f in &report.failures {
        if !records.iter().any(|r| r.0 == f.key) {
            records.push((f.key.clone(), "failed".into(), None, Some(f.code.label().to_string())));
        }
    }
    records.sort_by_key(|r| r.0.parse::<u32>().unwrap_or(u32::MAX));
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_host_and_the_reference_host_agree_record_by_record() {
    let node_dir = require_node_host();
    let component = component::require_component();

    // The reference host.
    let s = Session::start(emulator_config()).await;
    seed(&s.emulator, conformance::ORG);
    let spec = JobSpec::new("upsert")
        .sync_id("portability")
        .people_mapping()
        .map("email2", "email")
        .rows(Rows::csv(ROWS));
    let job = s.job(&spec);
    let report = s.run_ok(&job).await;
    let rust = rust_records(&job.sync.state_dir, &report);
    let rust_profiles = comparable(s.profiles());

    // The Node host, against its own emulator. The shim's client cannot replace the Host header
    // on the emulator redirect, so that emulator files the requests under its default
    // organization (see docs/PORTABILITY.md).
    let emulator = Emulator::start(emulator_config()).await.expect("emulator");
    let node_org = conformance::gladly_emulator::DEFAULT_ORG;
    seed(&emulator, node_org);
    let dir = TempDir::new("node-host");
    let token = dir.file("token", DEFAULT_TOKEN);
    let rows: Vec<Value> = ROWS
        .lines()
        .skip(1)
        .map(|line| {
            let c: Vec<&str> = line.split(',').collect();
            let cell = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
            json!({"key": c[0], "columns": {"email": cell(c[1]), "name": cell(c[2]), "email2": cell(c[3])}})
        })
        .collect();
    let limits = &job.limits;
    let node_job = json!({
        "component": component,
        "tenant": "portability",
        "syncId": "portability",
        "mode": "upsert",
        "settings": [["domain", "acme"], ["username", DEFAULT_USER]],
        "mapping": [["email", "email"], ["name", "name"], ["email2", "email"]],
        "rows": rows,
        "grants": ["acme.gladly.com"],
        "credential": {"tokenFile": token},
        "redirect": emulator.base_url(),
        "limits": {
            "ratePerSecond": 200,
            "maxRetries": limits.max_retries,
            "backoffBaseMs": limits.backoff_base_ms,
            "backoffMaxMs": limits.backoff_max_ms,
            "requestTimeoutMs": limits.request_timeout_secs * 1000,
            "batchSize": limits.batch_size,
        },
    });
    let (results, stderr) = run_node(&node_dir, &dir, &node_job, &[]).await;
    assert!(!stderr.contains(DEFAULT_TOKEN), "the token reached the Node host's output:\n{stderr}");
    let node: Vec<Record> = results["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().map(str::to_string);
            (s("key").unwrap(), s("outcome").unwrap(), s("remoteId"), s("code"))
        })
        .collect();
    assert_eq!(results["denials"], json!([]), "{results:#}");

    // Record by record: both hosts, and what was written by hand.
    let expected: Vec<(String, String, Option<String>)> =
        EXPECTED.iter().map(|(k, o, c)| (k.to_string(), o.to_string(), c.map(str::to_string))).collect();
    let without_ids = |v: &[Record]| -> Vec<(String, String, Option<String>)> {
        v.iter().map(|(k, o, _, c)| (k.clone(), o.clone(), c.clone())).collect()
    };
    assert_eq!(without_ids(&rust), expected, "the reference host");
    assert_eq!(without_ids(&node), expected, "the Node host:\n{stderr}");
    assert_eq!(node, rust, "the same Gladly ids, outcomes and codes in both hosts");

    // The same profiles, and the faults met in both runs.
    assert_eq!(comparable(emulator.profiles(node_org)), rust_profiles);
    for (who, requests) in [("reference", s.requests()), ("node", emulator.requests())] {
        assert!(requests.iter().any(|r| r.fault == Some(Fault::DropAfterApply)), "{who}: no lost create answer");
        assert!(requests.iter().any(|r| r.method == "POST" && r.status == Some(409)), "{who}: no 409 on our own id");
        assert!(requests.iter().any(|r| r.status == Some(429)), "{who}: no 429");
        assert!(requests.iter().any(|r| r.status == Some(400)), "{who}: no 400");
    }
}

/// The host's promises hold in the Node host too, against the hostile test plugin: a request to
/// an ungranted host, over plain http, with the plugin's own `Authorization`, or with a method
/// outside the allow-list is refused before it leaves (a denial the host records, nothing at the
/// emulator); a second granted host gets no credential; the token, in the Node process's own
/// environment and echoed back by the server, never reaches the plugin's results or the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_host_keeps_the_egress_and_secret_promises_against_a_hostile_plugin() {
    let node_dir = require_node_host();
    let hostile = conformance::test_kit::components::hostile();
    let token = "tok-N0DE-S3CRET-4711";
    let config = EmulatorConfig {
        rate_limit_per_second: 200,
        users: vec![User::new("api@example.com", token)],
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.expect("emulator");
    let dir = TempDir::new("node-hostile");
    let token_file = dir.file("token", token);
    let job = |behaviour: &str| {
        json!({
            "component": hostile,
            "tenant": "hostile",
            "syncId": "hostile",
            "mode": "upsert",
            "settings": [["behaviour", behaviour], ["username", "api@example.com"], ["extra-host", "collector.example.net"]],
            "mapping": [["email", "email"]],
            "rows": [{"key": "r1", "columns": {"email": "a@example.com"}}, {"key": "r2", "columns": {"email": "b@example.com"}}],
            "grants": ["acme.gladly.com", "collector.example.net"],
            "credential": {"username": "api@example.com", "tokenFile": token_file},
            "redirect": emulator.base_url(),
            "checkConnection": false,
            "limits": {"ratePerSecond": 200, "maxRetries": 0, "backoffBaseMs": 20, "backoffMaxMs": 200, "requestTimeoutMs": 5000, "batchSize": 20},
        })
    };

    for (behaviour, denial) in [
        ("other-host", "host \"evil.example.com\" is not granted (only acme.gladly.com, collector.example.net)"),
        ("plain-http", "scheme HTTP refused: https only"),
        ("set-authorization", "the plugin set its own authorization header"),
        ("trace-method", "method TRACE refused"),
    ] {
        let before = emulator.requests().len();
        let (results, stderr) = run_node(&node_dir, &dir, &job(behaviour), &[]).await;
        assert_eq!(results["denials"], json!([denial]), "{behaviour}:\n{stderr}");
        assert_eq!(emulator.requests().len(), before, "{behaviour}: a refused request reached the server");
        for r in results["records"].as_array().unwrap() {
            assert_eq!(r["outcome"], "failed", "{behaviour}: {r}");
        }
    }

    // A second granted host: reached, without the credential.
    let before = emulator.requests().len();
    let (results, stderr) = run_node(&node_dir, &dir, &job("credential-elsewhere"), &[]).await;
    assert_eq!(results["denials"], json!([]), "{stderr}");
    let seen: Vec<_> = emulator.requests().into_iter().skip(before).collect();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, "/_hostile/echo-headers");
    assert_eq!(seen[0].header("authorization"), None, "the second host got the credential: {:?}", seen[0]);

    // The server echoes the credential back; the plugin logs it, prints it and returns it. The
    // token is also in the Node process's environment, which the plugin tries to read.
    // base64("api@example.com:tok-N0DE-S3CRET-4711")
    let basic = "YXBpQGV4YW1wbGUuY29tOnRvay1OMERFLVMzQ1JFVC00NzEx";
    let env = [("GLADLY_API_TOKEN", token), ("NODE_HOST_PRIVATE", "host-only-7731")];
    for behaviour in ["echo-token", "leak-attempt"] {
        let (results, stderr) = run_node(&node_dir, &dir, &job(behaviour), &env).await;
        let everything = format!("{results}\n{stderr}");
        assert!(!everything.contains(token) && !everything.contains(basic), "{behaviour} leaked the secret:\n{everything}");
        assert!(stderr.contains("[hostile] "), "{behaviour}: the plugin's output is prefixed with its tenant:\n{stderr}");
    }
    // The environment is not the plugin's: jco's shim would hand it the whole process
    // environment; the Node host gives it none (a variable that is no secret shows it, since
    // redaction would hide the token anyway).
    let (results, _) = run_node(&node_dir, &dir, &job("leak-attempt"), &env).await;
    let seen = results["records"][0]["message"].as_str().unwrap();
    assert!(seen.contains("setting behaviour=leak-attempt"), "the plugin reported what it saw: {seen}");
    assert!(!seen.contains("env "), "the plugin saw environment variables: {seen}");
    let (results, stderr) = run_node(&node_dir, &dir, &job("echo-token"), &[]).await;
    assert!(stderr.contains("[redacted]"), "the echoed credential is redacted, not dropped:\n{stderr}");
    assert_eq!(results["records"][0]["code"], "plugin-failure", "an id carrying the credential fails its record: {results:#}");
}

/// `docs/PORTABILITY.md` lists every import of the built component, in file order, and nothing
/// else: the list a host author reads is the component's, not someone's memory of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_table_lists_every_import_of_the_built_component() {
    let config = conformance::host_harness::sandbox::RuntimeConfig {
        cache_dir: Some(conformance::test_kit::components::cache_dir()),
        ..Default::default()
    };
    let harness = conformance::host_harness::sync::Harness::new(config).expect("harness");
    let plugin = harness.plugin(&component::require_component()).expect("the component loads");
    let doc = std::fs::read_to_string(workspace_root().join("docs/PORTABILITY.md")).expect("docs/PORTABILITY.md");
    let section = doc.split("## Imports").nth(1).and_then(|rest| rest.split("\n## ").next()).expect("an Imports section");
    let listed: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    assert_eq!(listed, plugin.imports(), "the table in docs/PORTABILITY.md and the built component disagree");
}

/// Time is the Node host's too: requests to an organization allowing 5 per second arrive no
/// faster (sliding seconds over the emulator's arrival times, with the suite's jitter
/// allowance), and a create whose answer is slower than the host's 1 s request timeout is cut
/// off and retried instead of waited for (the shim's own default would wait 600 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_host_paces_to_the_rate_and_cuts_off_a_slow_answer() {
    let node_dir = require_node_host();
    let config = EmulatorConfig {
        rate_limit_per_second: 5,
        faults: vec![FaultRule::on_requests(Fault::Slow(Duration::from_secs(4)), [1]).method(Method::POST)],
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.expect("emulator");
    let dir = TempDir::new("node-time");
    let token = dir.file("token", DEFAULT_TOKEN);
    let rows: Vec<Value> =
        (1..=10).map(|i| json!({"key": format!("{i}"), "columns": {"email": format!("paced{i}@example.com")}})).collect();
    let job = json!({
        "component": component::require_component(),
        "tenant": "paced",
        "syncId": "paced",
        "mode": "insert",
        "settings": [["domain", "acme"], ["username", DEFAULT_USER]],
        "mapping": [["email", "email"]],
        "rows": rows,
        "grants": ["acme.gladly.com"],
        "credential": {"tokenFile": token},
        "redirect": emulator.base_url(),
        "checkConnection": false,
        "limits": {"ratePerSecond": 5, "maxRetries": 3, "backoffBaseMs": 20, "backoffMaxMs": 200, "requestTimeoutMs": 1000, "batchSize": 20},
    });
    let (results, stderr) = run_node(&node_dir, &dir, &job, &[]).await;
    let requests = emulator.requests();
    let arrivals: Vec<Duration> = requests.iter().map(|r| r.at).collect();
    conformance::test_kit::rate::assert_within_rate(&arrivals, 5, "the Node host at 5/s");
    assert!(requests.iter().all(|r| r.status != Some(429)), "a 429 of the host's own making:\n{stderr}");
    let first = &results["records"][0];
    assert_eq!(first["attempts"], 2, "the slow create was cut off and retried: {first}\n{stderr}");
    assert_eq!(first["code"], Value::Null, "{first}");
    assert_eq!(requests[0].fault, Some(Fault::Slow(Duration::from_secs(4))));
    // Ten creates; then the retry of the first, which the emulator had applied before its slow
    // answer: a 409 on our own id, and the read-back that confirms it.
    let tail: Vec<(&str, Option<u16>)> = requests.iter().skip(10).map(|r| (r.method.as_str(), r.status)).collect();
    assert_eq!(requests.len(), 12, "{requests:#?}");
    assert_eq!(tail, [("POST", Some(409)), ("GET", Some(200))]);
}
