//! `destination-host serve` as an operator runs it: a worker process over a folder of job files,
//! driven through its admin API on 127.0.0.1, syncing into an emulator started by the test.
//!
//! Build the components and the binary first (`cargo xtask test` does both).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use gladly_emulator::{Emulator, EmulatorConfig, User};
use serde_json::Value;
use test_kit::components::destination_host;
use test_kit::http::{Client, Resp};
use test_kit::{Creds, Job, TempDir, assert_no_secret, unique};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A run of a few dozen rows against the emulator finishes well within this.
pub(crate) const RUN_GUARD: Duration = Duration::from_secs(90);

const TOKEN: &str = "test-admin-token-0123456789abcdef";

/// A `serve` process; killed when dropped.
pub(crate) struct Worker {
    pub(crate) child: tokio::process::Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Worker {
    /// Starts `serve` over `jobs` with `args` and `env`; waits until the admin API listens.
    pub(crate) async fn start(jobs: &Path, log: PathBuf, args: &[&str], env: &[(&str, &str)]) -> Worker {
        let mut c = tokio::process::Command::new(destination_host());
        c.arg("serve").arg("--jobs").arg(jobs).args(["--listen", "127.0.0.1:0"]).args(args);
        c.env("DESTINATION_HOST_LOG", "info").env("DESTINATION_HOST_ALLOW_EMULATOR", "1").env_remove("DESTINATION_HOST_ADMIN_TOKEN");
        for (k, v) in env {
            c.env(k, v);
        }
        let stderr = std::fs::File::create(&log).expect("create the worker log");
        c.stdout(Stdio::piped()).stderr(stderr).kill_on_drop(true);
        let mut child = c.spawn().expect("start destination-host serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(a) = line.strip_prefix("admin API listening on http://") {
                    return a.parse::<SocketAddr>().ok();
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("serve did not start:\n{}", std::fs::read_to_string(&log).unwrap_or_default()));
        Worker { child, addr, log }
    }

    pub(crate) fn api(&self) -> Client {
        Client::at(self.addr)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit code.
    pub(crate) async fn terminate(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().expect("running").to_string();
        let sent = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.expect("run kill");
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("serve did not stop on SIGTERM:\n{}", self.log()))
            .expect("wait");
        (status.code(), self.log())
    }
}

/// An emulator knowing `creds`, a folder with a `jobs/` subfolder, the token's variable.
pub(crate) struct Setup {
    pub(crate) creds: Creds,
    pub(crate) emu: Emulator,
    pub(crate) dir: TempDir,
    pub(crate) token_var: String,
}

impl Setup {
    pub(crate) async fn new(tag: &str, latency: Duration) -> Setup {
        let creds = Creds::new();
        let emu = test_kit::emulator::start_with(EmulatorConfig {
            rate_limit_per_second: 10_000,
            latency,
            users: vec![User::new(creds.user.clone(), creds.token.clone())],
            ..EmulatorConfig::default()
        })
        .await;
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(dir.join("jobs")).unwrap();
        Setup { creds, emu, dir, token_var: unique("HH_SERVE_TOKEN_") }
    }

    pub(crate) fn jobs(&self) -> PathBuf {
        self.dir.join("jobs")
    }

    /// A job `id` over `rows` (CSV text) into `acme` through the emulator, plus `extra` TOML.
    pub(crate) fn write_job(&self, id: &str, rows: &str, extra: &str) -> PathBuf {
        self.write_job_for("acme", id, rows, &[], extra)
    }

    /// A job `id` over `rows` (CSV text) into organization `org` through the emulator, plus
    /// `extra` TOML.
    pub(crate) fn write_job_for(&self, org: &str, id: &str, rows: &str, policy: &[&str], extra: &str) -> PathBuf {
        let csv = self.dir.file(&format!("{id}.csv"), rows);
        let mut job = Job::people_into_acme(id, self.dir.path(), &self.creds.user)
            .set("domain", org)
            .csv(&csv, "id")
            .token_env(&self.token_var)
            .policy(&format!("endpoint = {:?}", self.emu.base_url()));
        for line in policy {
            job = job.policy(line);
        }
        let path = self.jobs().join(format!("{id}.toml"));
        std::fs::write(&path, format!("{}{extra}", job.toml())).unwrap();
        path
    }

    pub(crate) async fn worker(&self, args: &[&str], env: &[(&str, &str)]) -> Worker {
        let mut all = vec![(self.token_var.as_str(), self.creds.token.as_str())];
        all.extend_from_slice(env);
        Worker::start(&self.jobs(), self.dir.join(format!("worker-{}.log", unique(""))), args, &all).await
    }
}

pub(crate) fn people(n: usize) -> String {
    let mut s = String::from("id,name,email\n");
    for i in 0..n {
        s.push_str(&format!("p{i:03},Person {i},person{i:03}@example.com\n"));
    }
    s
}

/// Polls `GET /syncs/{id}` until `done` holds for it.
pub(crate) async fn wait_for(api: &Client, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let give_up = tokio::time::Instant::now() + RUN_GUARD;
    loop {
        let r = api.get(&format!("/syncs/{id}")).await;
        if r.status == 200 {
            let v = r.json();
            if done(&v) {
                return v;
            }
        }
        assert!(tokio::time::Instant::now() < give_up, "sync {id}: {what} did not happen; last answer {} {}", r.status, String::from_utf8_lossy(&r.body));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn last_run_id(v: &Value) -> Option<i64> {
    v["last_run"]["run_id"].as_i64()
}

pub(crate) fn body(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

const MIXED: &str = "id,name,email\n\
c1,Ann Example,ann@example.com\n\
c2,Bob Example,bob@example.com\n\
c3,Bad Email,not-an-email\n\
c4,No Email,\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triggered_run_is_listed_with_its_report_failed_rows_and_metrics() {
    let s = Setup::new("serve-trigger", Duration::ZERO).await;
    s.write_job("svc-a", MIXED, "");
    let w = s.worker(&[], &[]).await;
    let api = w.api();

    let listed = api.get("/syncs").await.json();
    assert_eq!(listed["syncs"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["syncs"][0]["id"], "svc-a");
    assert_eq!(listed["syncs"][0]["schedule"], "on demand");
    assert_eq!(listed["syncs"][0]["phase"], "idle");
    assert_eq!(listed["syncs"][0]["last_run"], Value::Null);
    assert!(s.emu.requests().is_empty(), "an on-demand job does not run by itself");

    let r = api.post("/syncs/svc-a/run", &Value::Null).await;
    assert_eq!(r.status, 202, "{}", body(&r));
    let v = wait_for(&api, "svc-a", "the first run", |v| last_run_id(v).is_some()).await;
    let run = &v["last_run"];
    assert_eq!(run["outcome"], "records-failed", "{v}");
    assert_eq!(run["counts"]["created"], 2, "{v}");
    assert_eq!(run["counts"]["invalid"], 2, "{v}");
    let run_id = last_run_id(&v).unwrap();
    let requests = s.emu.requests().len();
    assert_eq!(s.emu.profiles("acme").len(), 2);

    let runs = api.get("/syncs/svc-a/runs").await.json();
    assert_eq!(runs["runs"][0]["run_id"], run_id, "{runs}");
    let report = api.get(&format!("/syncs/svc-a/runs/{run_id}")).await;
    assert_eq!(report.status, 200, "{}", body(&report));
    assert_eq!(report.json()["counts"]["created"], 2);
    let failures = api.get(&format!("/syncs/svc-a/runs/{run_id}/failures")).await.json();
    let keys: Vec<&str> = failures["failures"].as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["c3", "c4"], "{failures}");

    let metrics = body(&api.get("/metrics").await);
    assert!(metrics.contains("destination_records_total{sync=\"svc-a\",outcome=\"created\"} 2\n"), "{metrics}");
    assert!(metrics.contains("destination_records_total{sync=\"svc-a\",outcome=\"invalid\"} 2\n"), "{metrics}");
    assert!(metrics.contains("destination_runs_total{sync=\"svc-a\",outcome=\"records-failed\"} 1\n"), "{metrics}");
    assert!(metrics.contains(&format!("destination_requests_total{{organization=\"acme.gladly.com\"}} {requests}\n")), "{metrics}");
    assert!(metrics.contains("destination_queue_depth 0\n"), "{metrics}");

    // A second run of the unchanged source sends nothing.
    assert_eq!(api.post("/syncs/svc-a/run", &Value::Null).await.status, 202);
    let v = wait_for(&api, "svc-a", "the second run", |v| last_run_id(v).is_some_and(|id| id > run_id)).await;
    assert_eq!(v["last_run"]["counts"]["unchanged"], 2, "{v}");
    assert_eq!(v["last_run"]["counts"]["created"], 0, "{v}");
    assert_eq!(s.emu.requests().len(), requests, "an unchanged source costs no request");

    for (what, text) in [("the worker's log", w.log()), ("the metrics", metrics), ("the report", body(&report))] {
        assert_no_secret(&s.creds, what, &text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_refuses_bad_tokens_and_malformed_requests_and_changes_nothing() {
    let s = Setup::new("serve-admin", Duration::ZERO).await;
    s.write_job("svc-b", MIXED, "");
    let w = s.worker(&[], &[("DESTINATION_HOST_ADMIN_TOKEN", TOKEN)]).await;
    let anon = w.api();
    let wrong = w.api().bearer("test-admin-token-0123456789abcdeX");
    let admin = w.api().bearer(TOKEN);

    // The probes need no token.
    assert_eq!(anon.get("/healthz").await.status, 200);
    assert_eq!(anon.get("/readyz").await.status, 200);
    for (client, what) in [(&anon, "no token"), (&wrong, "a wrong token")] {
        for (method, path) in [("GET", "/syncs"), ("GET", "/metrics"), ("POST", "/syncs/svc-b/run"), ("POST", "/syncs/svc-b/pause")] {
            let r = client.send(method, path, None).await;
            assert_eq!(r.status, 401, "{method} {path} with {what}: {}", body(&r));
            assert_eq!(r.header("www-authenticate").as_deref(), Some("Bearer"));
        }
    }
    let v = admin.get("/syncs/svc-b").await.json();
    assert_eq!(v["paused"], false, "the refused pause changed nothing: {v}");
    assert_eq!(v["phase"], "idle", "the refused trigger changed nothing: {v}");

    let missing = admin.send("POST", "/syncs/nope/run", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "no sync \"nope\" in the job folder");
    let bad_run = admin.get("/syncs/svc-b/runs/latest").await;
    assert_eq!(bad_run.status, 400, "{}", body(&bad_run));
    assert!(bad_run.json()["error"].as_str().unwrap().contains("a run is named by its number"), "{}", body(&bad_run));
    assert_eq!(admin.get("/syncs/svc-b/runs/999").await.status, 404);
    assert_eq!(admin.send("DELETE", "/syncs/svc-b", None).await.status, 405);
    assert_eq!(admin.get("/no/such/route").await.status, 404);

    // Paused: a trigger is refused and sends nothing; resumed: it runs.
    assert_eq!(admin.send("POST", "/syncs/svc-b/pause", None).await.json()["paused"], true);
    let refused = admin.send("POST", "/syncs/svc-b/run", None).await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.json()["error"], "sync \"svc-b\" is paused; resume it first");
    assert!(s.emu.requests().is_empty());
    assert_eq!(admin.send("POST", "/syncs/svc-b/resume", None).await.json()["paused"], false);
    assert_eq!(admin.send("POST", "/syncs/svc-b/run", None).await.status, 202);
    let v = wait_for(&admin, "svc-b", "the run", |v| last_run_id(v).is_some()).await;
    assert_eq!(v["last_run"]["counts"]["created"], 2, "{v}");
    assert!(!w.log().contains(TOKEN), "the admin token is never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_refuses_to_listen_beyond_loopback_without_a_token() {
    let dir = TempDir::new("serve-bind");
    let out = tokio::process::Command::new(destination_host())
        .args(["serve", "--jobs"])
        .arg(dir.path())
        .args(["--listen", "0.0.0.0:0"])
        .env_remove("DESTINATION_HOST_ADMIN_TOKEN")
        .output()
        .await
        .expect("run destination-host");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the admin API would listen on 0.0.0.0:0, which is not loopback, without a token"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_job_runs_on_its_own_and_job_files_are_picked_up_and_dropped() {
    let s = Setup::new("serve-schedule", Duration::ZERO).await;
    let w = s.worker(&[], &[]).await;
    let api = w.api();
    assert_eq!(api.get("/syncs").await.json()["syncs"], serde_json::json!([]));

    // A job file written while the worker runs is picked up and runs every 2 s.
    let file = s.write_job("svc-c", &people(5), "\n[schedule]\nevery = \"2s\"\n");
    let first = wait_for(&api, "svc-c", "the first scheduled run", |v| last_run_id(v).is_some()).await;
    assert_eq!(first["schedule"], "every 2s");
    assert_eq!(first["last_run"]["counts"]["created"], 5, "{first}");
    let first_id = last_run_id(&first).unwrap();
    let second = wait_for(&api, "svc-c", "the second scheduled run", |v| last_run_id(v).is_some_and(|id| id > first_id)).await;
    assert_eq!(second["last_run"]["counts"]["unchanged"], 5, "{second}");
    assert_eq!(s.emu.profiles("acme").len(), 5);

    // A file that does not parse is listed with its error; a removed job is dropped.
    std::fs::write(s.jobs().join("broken.toml"), "[sync\n").unwrap();
    std::fs::remove_file(&file).unwrap();
    let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = api.get("/syncs").await.json();
        if v["syncs"] == serde_json::json!([]) && v["invalid_files"].as_array().is_some_and(|a| a.len() == 1) {
            assert!(v["invalid_files"][0]["file"].as_str().unwrap().ends_with("broken.toml"), "{v}");
            break;
        }
        assert!(tokio::time::Instant::now() < give_up, "the folder change was not picked up: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_batches_in_flight_and_the_next_run_completes_exactly_once() {
    // 40 ms a request and one sender: the run takes a few seconds, long enough to stop it.
    let s = Setup::new("serve-sigterm", Duration::from_millis(40)).await;
    const ROWS: usize = 120;
    s.write_job("svc-d", &people(ROWS), "");
    let mut job = std::fs::read_to_string(s.jobs().join("svc-d.toml")).unwrap();
    job = job.replace("[limits]\n", "[limits]\nmax_concurrency = 1\nbatch_size = 10\n");
    std::fs::write(s.jobs().join("svc-d.toml"), job).unwrap();

    let w = s.worker(&[], &[]).await;
    assert_eq!(w.api().send("POST", "/syncs/svc-d/run", None).await.status, 202);
    let give_up = tokio::time::Instant::now() + RUN_GUARD;
    while s.emu.profiles("acme").len() < 15 {
        assert!(tokio::time::Instant::now() < give_up, "the run did not start:\n{}", w.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, log) = w.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("shutting down"), "{log}");
    let delivered = s.emu.profiles("acme").len();
    assert!(delivered < ROWS, "the run was stopped part way ({delivered} of {ROWS})");

    // A new worker finishes the job from the confirmed state: every person exactly once.
    let w = s.worker(&[], &[]).await;
    let runs = w.api().get("/syncs/svc-d/runs").await.json();
    assert_eq!(runs["runs"][0]["status"], "failed", "the stopped run is recorded as stopped: {runs}");
    assert!(runs["runs"][0]["message"].as_str().unwrap().contains("the host is shutting down"), "{runs}");
    assert_eq!(w.api().send("POST", "/syncs/svc-d/run", None).await.status, 202);
    let v = wait_for(&w.api(), "svc-d", "the run after the restart", |v| last_run_id(v).is_some()).await;
    assert_eq!(v["last_run"]["outcome"], "succeeded", "{v}");
    assert_eq!(v["last_run"]["counts"]["created"].as_u64().unwrap() as usize + delivered, ROWS, "{v}");
    let profiles = s.emu.profiles("acme");
    assert_eq!(profiles.len(), ROWS);
    let mut emails: Vec<String> = profiles.iter().flat_map(test_kit::profiles::emails).collect();
    emails.sort();
    emails.dedup();
    assert_eq!(emails.len(), ROWS, "no person twice");
}
