//! The `destination-host` binary as an operator runs it: a subprocess against job files and a
//! Gladly emulator started by the test. Exit codes: 0 all good, 1 a record failed or the config
//! is invalid, 2 an error.
//!
//! Build the components and the binary first: `cargo xtask build` and `cargo build -p
//! host-harness --bin destination-host` (`cargo xtask test` does both). `HH_SHOW=1 … --
//! --nocapture` prints every command's output.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use gladly_emulator::Emulator;
use serde_json::Value;
use test_kit::components::destination_host;
use test_kit::{Creds, Job, TempDir, assert_no_secret, destination, hostile, unique};

/// The guard against a hanging subprocess.
const GUARD: Duration = Duration::from_secs(120);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// Run the binary with `args` and `env` (plus verbose logs), without blocking the runtime the
/// emulator serves on.
async fn cli(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = tokio::process::Command::new(destination_host());
    c.args(args).env("DESTINATION_HOST_LOG", "debug").env_remove("GLADLY_API_TOKEN").kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    let out: Output = tokio::time::timeout(GUARD, c.output())
        .await
        .unwrap_or_else(|_| panic!("destination-host {args:?} hung"))
        .expect("start destination-host");
    let r = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if std::env::var_os("HH_SHOW").is_some() { eprintln!("=== {args:?} -> {:?}\n{}", r.code, r.all()); }
    r
}

/// What every CLI test needs: an emulator knowing `creds`, a folder, and a token variable name.
struct Setup {
    creds: Creds,
    emu: Emulator,
    dir: TempDir,
    token_var: String,
}

impl Setup {
    async fn new(tag: &str) -> Setup {
        let creds = Creds::new();
        let emu = test_kit::emulator::with_user(&creds).await;
        Setup { creds, emu, dir: TempDir::new(tag), token_var: unique("HH_CLI_TOKEN_") }
    }

    /// A job syncing `csv` with the real destination into organization `acme`.
    fn job(&self, id: &str, csv: &Path) -> Job {
        Job::people_into_acme(id, self.dir.path(), &self.creds.user).csv(csv, "id").token_env(&self.token_var)
    }

    /// [`Setup::job`] over the CSV `rows`, written as `c.csv` and `job.toml`; returns the job file.
    fn job_file(&self, id: &str, rows: &str) -> std::path::PathBuf {
        let csv = self.dir.file("c.csv", rows);
        self.job(id, &csv).write(self.dir.join("job.toml"))
    }

    fn token_env(&self) -> (&str, &str) {
        (self.token_var.as_str(), self.creds.token.as_str())
    }

    fn endpoint(&self) -> String {
        self.emu.base_url()
    }

    /// `sync` of the job file `job` into the emulator, the report written to `report`.
    async fn sync(&self, job: &Path, report: &Path) -> Run {
        let (job, report) = (job.to_str().unwrap(), report.to_str().unwrap());
        cli(&["sync", "--config", job, "--endpoint", &self.endpoint(), "--report", report], &[self.token_env()]).await
    }
}

const MIXED_CSV: &str = "id,name,email\n\
c1,Ann Example,ann@example.com\n\
c2,Bob Example,bob@example.com\n\
c3,Bad Email,not-an-email\n\
c4,No Email,\n";

const CLEAN_CSV: &str = "id,name,email\n\
k1,Kim Example,kim@example.com\n\
k2,Lee Example,lee@example.com\n";

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_prints_json_with_the_modes() {
    let dest = destination();
    let r = cli(&["spec", dest.to_str().unwrap()], &[]).await;
    assert_eq!(r.code, Some(0), "{}", r.all());
    let spec: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.all()));
    let modes = spec["modes"].as_array().expect("modes");
    let upsert = modes.iter().find(|m| m["mode"] == "upsert").expect("upsert listed");
    assert_eq!(upsert["supported"], true);
    assert!(modes.len() >= 3, "{modes:?}");
    for m in modes {
        assert!(m["supported"].is_boolean() && m["reason"].is_string(), "{m}");
    }
    assert!(spec["config_fields"].as_array().is_some_and(|f| f.iter().any(|f| f["key"] == "domain")), "{spec}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_reports_every_problem_with_its_key_and_fix() {
    let s = Setup::new("cli-validate").await;
    let csv = s.dir.file("c.csv", CLEAN_CSV);
    let job = Job::new("cli-validate", &destination(), s.dir.path())
        .csv(&csv, "id")
        .set("domain", "https://acme.gladly.com")
        .set("username", "not an email")
        .token_env(&s.token_var)
        .map("name", "name");
    let path = job.write(s.dir.join("bad.toml"));
    let r = cli(&["validate", "--config", path.to_str().unwrap()], &[]).await;
    assert_eq!(r.code, Some(1), "{}", r.all());
    let out = r.all();
    let problem = |key: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("- {key}:")))
            .unwrap_or_else(|| panic!("no problem for `{key}`:\n{out}"))
            .to_string()
    };
    let domain = problem("domain");
    assert!(domain.contains("https://acme.gladly.com") && domain.contains("Fix: Enter `acme`"), "{domain}");
    let username = problem("username");
    assert!(username.contains("email") && username.contains("Fix:"), "{username}");
    let email = problem("email");
    assert!(email.contains("needs `email` mapped") && email.contains("Fix:"), "{email}");
    assert!(out.contains("3 problems"), "{out}");
    assert!(s.emu.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_with_a_wrong_token_fails_with_the_authentication_message() {
    let s = Setup::new("cli-check").await;
    let path = s.job_file("cli-check", CLEAN_CSV);
    let cfg = path.to_str().unwrap();
    let endpoint = s.endpoint();

    let bad = cli(&["check", "--config", cfg, "--endpoint", &endpoint], &[(&s.token_var, "wrong-token")]).await;
    assert_eq!(bad.code, Some(1), "{}", bad.all());
    assert!(bad.stderr.contains("connection failed"), "{}", bad.all());
    assert!(bad.stderr.contains("HTTP 401") && bad.stderr.contains("credentials"), "{}", bad.all());
    let seen = s.emu.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].status, Some(401));

    // The control: the right token passes.
    let good = cli(&["check", "--config", cfg, "--endpoint", &endpoint], &[s.token_env()]).await;
    assert_eq!(good.code, Some(0), "{}", good.all());
    assert!(good.stdout.contains("connection ok: acme"), "{}", good.all());
    assert_no_secret(&s.creds, "check output", &good.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_shows_profiles_counts_and_estimate_without_a_request() {
    let s = Setup::new("cli-preview").await;
    let path = s.job_file("cli-preview", MIXED_CSV);
    let r = cli(
        &["preview", "--config", path.to_str().unwrap(), "--endpoint", &s.endpoint(), "--rows", "2"],
        &[s.token_env()],
    )
    .await;
    assert_eq!(r.code, Some(0), "{}", r.all());
    let out = &r.stdout;
    assert_eq!(out.matches("would be sent as:").count(), 2, "exactly --rows profiles: {}", r.all());
    assert!(out.contains("row c1 ") && out.contains("row c2 ") && !out.contains("row c3 "), "{out}");
    assert!(out.contains("ann@example.com") && out.contains("\"emails\""), "{out}");
    assert!(out.contains("[preview] cli-preview: 4 rows"), "{out}");
    assert!(out.contains("invalid 2"), "{out}");
    assert!(out.contains("a sync would send 2 record(s): about 4 request(s)"), "{out}");
    assert!(out.contains("at 1000/s"), "{out}");
    assert!(s.emu.requests().is_empty(), "a preview sends nothing: {:?}", s.emu.requests());
    assert_no_secret(&s.creds, "preview output", &r.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_prints_the_summary_writes_the_report_and_sets_the_exit_code() {
    let s = Setup::new("cli-sync").await;

    // Some rows fail: exit 1, every failure in the report. Two invalid rows (never sent) and
    // one the destination fails: its email matches two existing profiles.
    for id in ["dupone", "duptwo"] {
        s.emu.insert_profile("acme", serde_json::json!({"id": id, "name": id, "emails": [{"original": "dup@example.com"}]}));
    }
    let mixed = s.dir.file("mixed.csv", &format!("{MIXED_CSV}c5,Dup Person,dup@example.com\n"));
    let job = s.job("cli-sync-mixed", &mixed).write(s.dir.join("mixed.toml"));
    let report = s.dir.join("r.json");
    let r = s.sync(&job, &report).await;
    assert_eq!(r.code, Some(1), "a failed record makes the exit code 1: {}", r.all());
    let out = &r.stdout;
    for part in ["cli-sync-mixed: 5 rows", "created 2", "updated 0", "unchanged 0", "failed 1", "skipped 0", "invalid 2", "requests in", " s ("] {
        assert!(out.contains(part), "summary lacks {part:?}: {}", r.all());
    }
    assert!(out.contains("report written to"), "{out}");
    let text = std::fs::read_to_string(&report).expect("the report was written");
    let rep: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rep["counts"]["created"], 2, "{rep}");
    assert_eq!(rep["counts"]["invalid"], 2, "{rep}");
    assert!(rep["requests"].as_u64().unwrap() >= 2 && rep["elapsed_secs"].is_number(), "{rep}");
    let failures = rep["failures"].as_array().unwrap();
    let mut keys: Vec<&str> = failures.iter().map(|f| f["key"].as_str().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, ["c3", "c4", "c5"], "{rep}");
    assert_eq!(rep["counts"]["failed"], 1, "{rep}");
    for f in failures {
        assert!(f["code"].is_string() && !f["message"].as_str().unwrap().is_empty(), "{f}");
        let key = f["key"].as_str().unwrap();
        assert!(out.contains(&format!("row {key}: ")), "the summary lists {key}: {out}");
        if key == "c5" {
            assert_eq!(f["code"], "ambiguous-match", "{f}");
        } else {
            assert_eq!(f["kind"], "invalid-row", "{f}");
            assert_eq!(f["attempts"], 0, "never sent: {f}");
        }
    }
    assert_eq!(s.emu.profiles("acme").len(), 4, "two created next to the two seeded");
    assert!(s.emu.requests().iter().all(|q| !q.path.contains("not-an-email")));
    assert_no_secret(&s.creds, "sync output", &r.all());
    assert_no_secret(&s.creds, "sync report", &text);

    // Nothing fails: exit 0.
    let clean = s.dir.file("clean.csv", CLEAN_CSV);
    let job = s.job("cli-sync-clean", &clean).write(s.dir.join("clean.toml"));
    let report = s.dir.join("clean.json");
    let r = s.sync(&job, &report).await;
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("created 2") && r.stdout.contains("failed 0"), "{}", r.all());
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(rep["failures"].as_array().map(Vec::len), Some(0), "{rep}");
    assert_eq!(s.emu.profiles("acme").len(), 6);
    assert_no_secret(&s.creds, "sync output", &r.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaking_plugin_cannot_put_the_token_in_any_output() {
    let s = Setup::new("cli-leak").await;
    let csv = s.dir.file("c.csv", test_kit::rows::simple(2));
    let path = Job::new("cli-leak", &hostile(), s.dir.path())
        .csv(&csv, "id")
        .set("behaviour", "leak-attempt")
        .set("username", &s.creds.user)
        .token_env(&s.token_var)
        .map("name", "name")
        .policy(r#"allow_hosts = ["*.gladly.com"]"#)
        .write(s.dir.join("job.toml"));
    let report = s.dir.join("r.json");
    let r = cli(
        &["sync", "--config", path.to_str().unwrap(), "--endpoint", &s.endpoint(), "--report", report.to_str().unwrap()],
        &[s.token_env(), ("DESTINATION_HOST_LOG", "trace")],
    )
    .await;
    assert_eq!(r.code, Some(1), "{}", r.all());
    let text = std::fs::read_to_string(&report).unwrap();
    // What the plugin saw is everywhere, the token nowhere.
    assert!(text.contains("setting behaviour=leak-attempt"), "{text}");
    assert!(r.stderr.contains("setting behaviour=leak-attempt"), "the plugin's log reaches stderr: {}", r.all());
    let seen = s.emu.requests();
    assert!(!seen.is_empty() && seen.iter().all(|q| q.header("authorization") == Some(s.creds.basic().as_str())));
    assert_no_secret(&s.creds, "stdout and stderr", &r.all());
    assert_no_secret(&s.creds, "the report", &text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_token_variable_is_named() {
    let s = Setup::new("cli-missing").await;
    let path = s.job_file("cli-missing", CLEAN_CSV);
    let cfg = path.to_str().unwrap();
    for cmd in ["sync", "check"] {
        let r = cli(&[cmd, "--config", cfg, "--endpoint", &s.endpoint()], &[]).await;
        assert_eq!(r.code, Some(2), "{cmd}: {}", r.all());
        assert!(
            r.stderr.contains(&format!("environment variable {} is not set", s.token_var)),
            "{cmd}: the message names the variable: {}",
            r.all()
        );
    }
    assert!(s.emu.requests().is_empty());
}

/// Failed-row triage: after a run with three kinds of failure (a server error the host retries
/// next run, an ambiguous match it does not retry until the row changes, a row without an email
/// refused before sending), `failures` lists them by code with the fix. Once the causes are
/// fixed in Gladly, `sync --only-failed` re-sends just the failed records: a new row added
/// meanwhile is left for the next normal run, which then sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_lists_failing_rows_by_code_and_only_failed_resends_just_those() {
    use gladly_emulator::{Fault, FaultRule, Method};
    let s = Setup::new("cli-triage").await;
    for id in ["twin-a", "twin-b"] {
        s.emu.insert_profile("acme", serde_json::json!({"id": id, "name": id, "emails": [{"original": "twin@example.com"}]}));
    }
    s.emu.set_faults(vec![FaultRule::probability(Fault::Status5xx(503), 1.0).method(Method::POST)]);
    let rows = "id,name,email\nt1,Tia New,tia@example.com\nt2,Twin,twin@example.com\nt3,No Email,\n";
    let csv = s.dir.file("t.csv", rows);
    // Lookups first, so the twins are found (ambiguous) before a POST could meet the 503s.
    let job = s.job("cli-triage", &csv).set("create-first", "off").write(s.dir.join("triage.toml"));
    let job_arg = job.to_str().unwrap();
    let before = cli(&["failures", "--config", job_arg, "--endpoint", &s.endpoint()], &[s.token_env()]).await;
    assert_eq!(before.code, Some(2), "{}", before.all());
    assert!(before.stderr.contains("has no state in") && before.stderr.contains("yet: run `destination-host sync` first"), "{}", before.all());
    let r = s.sync(&job, &s.dir.join("r1.json")).await;
    assert_eq!(r.code, Some(1), "{}", r.all());

    let r = cli(&["failures", "--config", job_arg, "--endpoint", &s.endpoint()], &[s.token_env()]).await;
    assert_eq!(r.code, Some(0), "{}", r.all());
    let expected = "3 failing row(s) in sync `cli-triage`, by error code:\n\n\
        ambiguous-match (1 row): not retried until the row changes (or --only-failed)\n  \
        fix: merge the duplicate profiles in Gladly, or map `id` to choose one.\n  rows: t2\n\n\
        missing-field (1 row): refused before sending, fix the source row\n  \
        fix: fill in the email column for this row, or filter such rows out of the model.\n  rows: t3\n\n\
        server-error (1 row): retried by the next run\n";
    assert!(r.stdout.starts_with(expected), "{}", r.all());
    assert!(r.stdout.contains("  rows: t1\n\nRe-send just these rows: destination-host sync --only-failed --config <job>"), "{}", r.all());
    assert_no_secret(&s.creds, "failures output", &r.all());

    // The causes fixed in Gladly (no more 503s, the twins merged) and a new row in the source.
    s.emu.set_faults(Vec::new());
    s.emu.merge_profiles("acme", "twin-b", "twin-a");
    s.dir.file("t.csv", &format!("{rows}t4,Uma New,uma@example.com\n"));
    s.emu.clear_requests();
    let only = cli(&["sync", "--only-failed", "--config", job_arg, "--endpoint", &s.endpoint()], &[s.token_env()]).await;
    assert_eq!(only.code, Some(1), "the invalid row still fails: {}", only.all());
    assert!(only.stdout.contains("created 1, updated 1,"), "{}", only.all());
    assert!(only.stdout.contains("not failing (not selected by --only-failed) 1"), "{}", only.all());
    let sent: Vec<String> = s.emu.requests().iter().map(|q| q.path.clone()).collect();
    assert!(!sent.iter().any(|p| p.contains("uma")), "the new row was not sent: {sent:?}");
    assert!(!s.emu.profiles("acme").iter().any(|p| p.to_string().contains("uma")), "no profile for the new row yet");

    // The next normal run sends the new row and nothing else.
    s.emu.clear_requests();
    let next = s.sync(&job, &s.dir.join("r3.json")).await;
    assert!(next.stdout.contains("created 1, updated 0, unchanged 2"), "{}", next.all());
}
